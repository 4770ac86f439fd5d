"""The compiled module of a graph is the same text in every process, whatever the hash seed.

Python randomises the hash of strings per process (PYTHONHASHSEED), so iterating a set of names
gives another order in each one. The compile worker and the playing process compile the same
graph (the worker's binary, the playing process's text on demand), compile caches are keyed by
text, and Cranelift's code depends on the order of a function's locals: a module must not depend
on that order. Found: the fast loop's read-only values moved to globals (passes.invariants) kept
the ones a call sets as locals in set order, so the SynthMark voice's module differed between
processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import hashlib, sys
sys.path.insert(0, {repo!r})
from benchmarks.bench_synthmark import synthmark_graph
from benchmarks.oscen_engine import parallel_graph, polysynth_graph, seed_graph, voices_graph
from oscen import demo
from oscen.jit import CraneliftJit

jit = CraneliftJit()
graphs = {{
    "voices": voices_graph(7),
    "pairs": parallel_graph(21),
    "seed": seed_graph(44100.0),
    "polysynth": polysynth_graph(44100.0, 5),
    "synthmark": synthmark_graph(4, update_every=8),
    "demo": demo.demo_patch(44100.0),
}}
for name, graph in graphs.items():
    ir = graph.to_ir()
    for tier in ("quick", "optimized"):
        print(name, tier, hashlib.sha1(jit.program(ir, tier).wat.encode()).hexdigest())
"""


def _digests(seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(repo=str(REPO))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_module_text_does_not_depend_on_the_hash_seed() -> None:
    first, second = _digests("1"), _digests("2")
    assert len(first) == 12
    assert first == second
