"""The skeleton's per-sample overhead (issue 11, lane "hoist"): real-time factor of the voices64
and seed patches compiled (``CraneliftJit(max_block=256)``), their WebAssembly size and compile
time. CPU time (``time.process_time``), best of several rounds: the machine may be shared.

    .venv/bin/python benchmarks/bench_hoist.py [--seconds 2.0] [--rounds 5]

To compare with another checkout, run it with ``PYTHONPATH=<that checkout>`` (the patches come
from this file's ``benchmarks/oscen_engine.py``; the library from wherever ``oscen`` imports).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after PYTHONPATH: A/B runs

import oscen  # noqa: E402
from benchmarks.oscen_engine import seed_graph, voices_graph  # noqa: E402
from oscen.jit import CraneliftJit, GraphState  # noqa: E402

SR = 44100.0
BLOCK = 256


def measure(graph, seconds: float, rounds: int) -> tuple[float, int, float]:
    """(real-time factor, WAT bytes, compile ms: best of 3) of ``graph``."""
    ir = graph.to_ir()
    best_compile = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        compiled = CraneliftJit(max_block=BLOCK).compile(ir)
        best_compile = min(best_compile, time.process_time() - t0)
    state = GraphState.from_graph(graph, max_block=BLOCK, ir=ir)
    out = np.zeros((1, BLOCK))
    blocks = max(1, int(seconds * SR / BLOCK))
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(blocks):
            compiled.process_into(state, out)
        best = min(best, time.process_time() - t0)
    return blocks * BLOCK / SR / best, len(compiled.wat), 1000 * best_compile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="audio seconds per round")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(f"oscen from {Path(oscen.__file__).parent}")
    print(f"{'patch':<10} {'x real time':>12} {'WAT bytes':>10} {'compile ms':>11}")
    for name, graph in (("voices64", voices_graph(64, SR)), ("seed", seed_graph(SR))):
        rtf, wat, ms = measure(graph, args.seconds, args.rounds)
        print(f"{name:<10} {rtf:>12.1f} {wat:>10} {ms:>11.1f}")


if __name__ == "__main__":
    main()
