"""A voice pair's fast-loop invariants in module globals (oscen.jit.passes.invariants).

The SynthMark voice's pair loop reads more locals than the registers hold twice over: they move
to globals, and every sample must still compute exactly what it computed with them in locals:
exact against the pass off and node by node, within the policy against the interpreter, across
gates at arbitrary frames (envelope stage changes in the arms that write those locals), ramps,
coefficient updates every 8 frames, odd block sizes and a voice left over.
"""

from __future__ import annotations

import numpy as np
from jit_support import assert_engines_match, event, run_engines, set_value

from benchmarks.bench_synthmark import synthmark_graph
from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass
from oscen.jit import CraneliftJit, kernel
from oscen.jit.passes import invariants
from oscen.jit.skeleton import SkeletonBuilder
from oscen.oscillators import Oscillator


def build(voices: int = 5):
    return lambda: synthmark_graph(voices, update_every=8)


def nodes_of(graph, cls, pred=lambda h: True) -> list:
    return [h for h in graph.nodes if isinstance(h.node, cls) and pred(h)]


def actions(graph) -> list:
    envs = nodes_of(graph, AdsrEnvelope)
    lows = nodes_of(graph, IirLowpass)
    saws = nodes_of(graph, Oscillator, lambda h: h.node.band_limited)
    rng = np.random.default_rng(5)
    out = []
    for at in sorted(int(x) for x in rng.integers(1, 3000, 14)):
        env = envs[int(rng.integers(0, len(envs)))]
        out.append(event(at, env.gate, float(rng.choice([0.0, 1.0]))))  # release or retrigger
    out += [
        set_value(500, lows[1].q, 5.0),
        set_value(900, saws[2].amplitude, 0.1, 0.004),  # a ramp of one voice
        set_value(1500, lows[3].cutoff, 1200.0),
        set_value(2100, saws[0].frequency, 30000.0),  # past a cycle a sample: the floor arm
    ]
    return out


def test_the_synthmark_pair_loop_reads_its_invariants_from_globals() -> None:
    program = CraneliftJit().program(synthmark_graph(4, update_every=8).to_ir())
    names = [g.name for g in program.module.globals]
    moved = [n for n in names if n.startswith("voices0.")]
    assert len(moved) > invariants.READ_ONLY_VALUES
    fn = next(f for f in program.module.functions if f.name == "voices0")
    assert not set(n.split(".", 1)[1] for n in moved) & set(fn.locals) - _invoke_targets(fn.body)


def _invoke_targets(stmts) -> set[str]:
    out: set[str] = set()
    invariants._scan_targets(stmts, out)
    return out


def test_a_loop_that_fits_keeps_its_locals() -> None:
    from test_unswitch import voices

    program = CraneliftJit().program(voices(6).to_ir())
    assert not any("." in g.name and g.name.startswith("voices") for g in program.module.globals)


def test_the_same_bits_as_without_and_node_by_node(monkeypatch) -> None:
    graph = build()()
    acts = actions(graph)
    blocks = [96, 1, 37, 256, 5, 300]
    on = run_engines(build(), 3000, acts, engines=("interpreted", "state", "jitgraph"), blocks=blocks)
    single = run_engines(
        build(), 3000, acts, engines=("state",), blocks=blocks, jit=CraneliftJit(voice_groups=False)
    )
    monkeypatch.setattr(SkeletonBuilder, "invariant_globals", False)
    off = run_engines(build(), 3000, acts, engines=("state",), blocks=blocks)
    assert np.any(np.abs(on["state"]) > 1e-3)
    assert_engines_match(off["state"], on["state"], exact=True, what="invariants in globals vs locals")
    assert_engines_match(
        single["state"], on["state"], exact=True, what="invariants in globals vs node by node"
    )
    assert_engines_match(on["interpreted"], on["state"], what="invariants in globals vs interpreted")
    assert_engines_match(on["state"], on["jitgraph"], exact=True, what="invariants in globals in JitGraph")


def test_a_function_without_a_fast_loop_is_left_alone() -> None:
    i32 = kernel.T.I32
    fn = kernel.Function("f", [("n", i32)], (), {"i": i32}, [])
    assert invariants.invariants_in_globals(fn) == (fn, [])
