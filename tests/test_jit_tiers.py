"""Compile tiers (``CraneliftJit(tier=...)``, ``compile_first``/``optimize``, JitGraph's tiering).

What is checked, by behaviour (no timings):
- the quick tier's code plays the same bits as the optimized tier's and as the interpreter, with
  ramps and parameter changes mid-stream, for voice groups (whose bodies differ between the tiers)
  and scalar graphs (where only Cranelift's settings differ);
- both tiers lay the state out identically, and a quick -> optimized swap mid-stream (the copy a
  JitGraph swap makes, and a JitGraph itself) is bit-identical to an uninterrupted optimized
  render and to the interpreter;
- ``optimize`` reuses a program that is the same for both tiers (no Python stage), and
  ``compile_first`` gives small graphs the optimized tier at once (no second compile, no swap);
- an optimized tier that fails to compile is reported once (JitTierWarning, ``tier_error``) while
  the quick tier plays on; a bad tier name is refused.
"""

from __future__ import annotations

import sys
import threading
import time
import warnings

import numpy as np
import pytest

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph, GraphError
from oscen.jit import CompiledGraph, CraneliftJit, GraphState, JitGraph, worker
from oscen.jit.compiler import QUICK_TIER_WASM
from oscen.jit.jitgraph import JitTierWarning
from oscen.jit.skeleton import SkeletonBuilder
from oscen.oscillators import Oscillator

SR = 44100.0
BLOCK = 64
TIMEOUT = 60.0
"""Bounds for waits (two shared cores, the suite's other workers compiling too)."""


def voices(n: int = 6) -> Graph:
    """n sines (different pitches), each through its own lowpass, into one Gain: a voice group."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0 / n), "mix")
    for k in range(n):
        osc = graph.add_node(Oscillator.sine(110.0 * (k + 2), 0.7), f"osc{k}")
        filt = graph.add_node(IirLowpass(900.0 + 150.0 * k, 0.9), f"lp{k}")
        graph.connect(osc.output, filt.input)
        graph.connect(filt.output, mix.input)
    graph.set_output(mix.output)
    return graph


def chain() -> Graph:
    """A sine through two lowpasses and a gain: scalar code, no voice group."""
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(330.0, 0.5), "osc")
    a = graph.add_node(IirLowpass(1200.0, 0.8), "a")
    b = graph.add_node(IirLowpass(2400.0, 1.3), "b")
    gain = graph.add_node(Gain(0.9), "gain")
    graph.connect(osc.output, a.input)
    graph.connect(a.output, b.input)
    graph.connect(b.output, gain.input)
    graph.set_output(gain.output)
    return graph


def edit(target: object, graph: Graph, block: int) -> None:
    """The parameter changes every render below makes before block ``block`` (ramps, jumps)."""
    set_value = target.set_value  # type: ignore[attr-defined]
    nodes = {h.label: h for h in graph.nodes}
    if block == 3:
        set_value(nodes.get("osc0", nodes.get("osc")).frequency, 987.0, ramp=0.01)
    if block == 7:
        set_value(nodes.get("mix", nodes.get("gain")).gain, 0.3, ramp=0.004)
    if block == 11:
        set_value(nodes.get("lp1", nodes.get("a")).cutoff, 3000.0)


def interpreted(build: object, blocks: int) -> np.ndarray:
    graph = build()  # type: ignore[operator]
    out = []
    for b in range(blocks):
        edit(graph, graph, b)
        out.append(graph.process_block(BLOCK))
    return np.concatenate(out)


def rendered(
    compiled: CompiledGraph, graph: Graph, blocks: range, state: GraphState | None = None
) -> tuple[np.ndarray, GraphState]:
    state = state or GraphState.from_graph(graph, max_block=BLOCK, ir=compiled.ir)
    out = []
    for b in blocks:
        edit(state, graph, b)
        out.append(compiled.process_block(state, BLOCK))
    return np.concatenate(out), state


@pytest.mark.parametrize("build", [voices, chain], ids=["voice-group", "scalar"])
def test_quick_tier_plays_the_optimized_tiers_bits_and_the_interpreters(build: object) -> None:
    jit = CraneliftJit(max_block=BLOCK)
    graph = build()  # type: ignore[operator]
    ir = graph.to_ir()
    quick, best = jit.compile(ir, "quick"), jit.compile(ir, "optimized")
    assert (quick.tier, best.tier) == ("quick", "optimized")
    assert quick.layout.size == best.layout.size and quick.key == best.key
    assert quick.layout.nodes == best.layout.nodes  # the state layout is the same for both tiers
    blocks = 16
    got_quick, _ = rendered(quick, build(), range(blocks))  # type: ignore[operator]
    got_best, _ = rendered(best, build(), range(blocks))  # type: ignore[operator]
    np.testing.assert_array_equal(got_quick, got_best)
    np.testing.assert_array_equal(got_quick, interpreted(build, blocks))
    if build is voices:  # the bodies differ: no fast loop, no four-voice copy in the quick tier
        assert not quick.tier_independent and len(quick.wat) < len(best.wat)
    else:  # scalar fast loops (passes.scalarloop) only in the optimized tier
        assert not quick.tier_independent and quick.wat != best.wat


@pytest.mark.parametrize("build", [voices, chain], ids=["voice-group", "scalar"])
def test_a_quick_to_optimized_swap_mid_stream_is_bit_identical(build: object) -> None:
    """What JitGraph's swap does (a fresh state for the optimized code, the copy plan from the
    quick one's), at block 9, with ramps under way: the same samples as the optimized code from
    the start, and as the interpreter."""
    jit = CraneliftJit(max_block=BLOCK)
    graph = build()  # type: ignore[operator]
    quick = jit.compile(graph.to_ir(), "quick")
    best = jit.optimize(quick)
    assert best.tier == "optimized"
    blocks, at = 16, 9
    head, played = rendered(quick, graph, range(at))
    fresh = GraphState(best.ir, best.layout)
    fresh.load_from_graph(graph)
    fresh.copy_nodes_from(played, fresh.copy_plan(played))
    tail, _ = rendered(best, graph, range(at, blocks), fresh)
    whole, _ = rendered(best, build(), range(blocks))  # type: ignore[operator]
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)
    np.testing.assert_array_equal(whole, interpreted(build, blocks))


def test_optimize_reuses_a_program_both_tiers_share(monkeypatch) -> None:
    # without scalar fast loops (passes.scalarloop: optimized tier only) a scalar graph's
    # program is the same for both tiers
    monkeypatch.setattr(SkeletonBuilder, "scalar_fast_loops", False)
    jit = CraneliftJit(max_block=BLOCK)
    ir = chain().to_ir()
    quick = jit.compile(ir, "quick")
    best = jit.optimize(quick)
    assert best.program is quick.program and best.module is not quick.module
    assert best.stats.frontend_seconds == 0.0  # Cranelift only
    assert jit.optimize(best) is best
    group = jit.compile(voices().to_ir(), "quick")
    assert jit.optimize(group).program is not group.program  # other bodies: compiled anew


def test_compile_first_gives_small_graphs_the_optimized_tier_at_once() -> None:
    jit = CraneliftJit(max_block=BLOCK)
    small = Graph(SR)
    small.add_node(Gain(0.5), "g")
    first = jit.compile_first(small.to_ir())
    assert len(first.program.binary) < QUICK_TIER_WASM and first.tier == "optimized"
    big = jit.compile_first(voices().to_ir())
    assert big.tier == "quick"
    assert CraneliftJit(max_block=BLOCK, tier="quick").compile_first(small.to_ir()).tier == "quick"


def test_a_bad_tier_is_refused() -> None:
    with pytest.raises(GraphError, match="tier must be one of"):
        CraneliftJit(tier="fast")
    with pytest.raises(GraphError, match="tier must be one of"):
        CraneliftJit().compile(chain().to_ir(), "turbo")


class GatedJit(CraneliftJit):
    """Holds its optimized tier back until ``gate`` is set (or fails it, with ``fail``)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(max_block=BLOCK)
        self.gate = threading.Event()
        self.fail = fail
        self.optimized = 0

    def optimize(self, compiled: CompiledGraph) -> CompiledGraph:
        assert self.gate.wait(TIMEOUT)
        self.optimized += 1
        if self.fail:
            raise RuntimeError("no optimized code today")
        return super().optimize(compiled)


def test_jitgraph_plays_the_quick_tier_then_swaps_in_the_optimized_one_bit_identically() -> None:
    """With a crossfade set too: two tiers of one topology play the same samples, so their swap
    does not fade (a fade of x into x is not x to the bit)."""
    jit = GatedJit()
    graph = voices()
    live = JitGraph(graph, jit=jit, tiered=True, compile_worker=False, crossfade=0.004)
    try:
        assert live.wait_compiled(TIMEOUT, first=True)
        out, tiers = [], []
        for b in range(6):  # the optimized code is held back: these play the quick tier
            edit(live, graph, b)
            out.append(live.process_block(BLOCK))
            tiers.append(live._current.compiled.tier if live._current else None)
        assert tiers == ["quick"] * 6
        jit.gate.set()
        assert live.wait_compiled(TIMEOUT)
        for b in range(6, 16):
            edit(live, graph, b)
            out.append(live.process_block(BLOCK))
            tiers.append(live._current.compiled.tier if live._current else None)
        assert tiers[6:] == ["optimized"] * 10
        assert [s.version for s in live.swaps] == [graph.version] * 2 and jit.optimized == 1
        np.testing.assert_array_equal(np.concatenate(out), interpreted(voices, 16))
        best = CraneliftJit(max_block=BLOCK).compile(voices().to_ir())
        np.testing.assert_array_equal(np.concatenate(out), rendered(best, voices(), range(16))[0])
    finally:
        jit.gate.set()
        live.close()


def test_a_failed_optimized_tier_is_reported_and_the_quick_tier_plays_on() -> None:
    jit = GatedJit(fail=True)
    jit.gate.set()
    graph = voices()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        live = JitGraph(graph, jit=jit, tiered=True, compile_worker=False)
        try:
            assert live.wait_compiled(TIMEOUT)  # the final code: the quick tier, since the other failed
            out = [live.process_block(BLOCK) for _ in range(4)]
            deadline = time.monotonic() + TIMEOUT
            while live.tier_error is None and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            live.close()
    assert live.mode == "compiled" and live._current is not None and live._current.compiled.tier == "quick"
    assert isinstance(live.tier_error, RuntimeError) and live.last_error is None
    assert sum(issubclass(w.category, JitTierWarning) for w in caught) == 1
    reference = voices()
    np.testing.assert_array_equal(
        np.concatenate(out), np.concatenate([reference.process_block(BLOCK) for _ in range(4)])
    )


def test_an_edit_while_the_quick_tier_plays_compiles_the_newer_topology_first() -> None:
    """The optimized tier of a topology edited away is not compiled: the newest topology's quick
    tier comes first, then its optimized tier."""
    jit = GatedJit()
    graph = voices()
    live = JitGraph(graph, jit=jit, tiered=True, compile_worker=False)
    try:
        assert live.wait_compiled(TIMEOUT, first=True)
        live.process_block(BLOCK)
        first_version = graph.version
        tail = live.add_node(Gain(0.5), "tail")
        mix = next(h for h in graph.nodes if h.label == "mix")
        live.connect(mix.output, tail.input)
        live.set_output(tail.output)
        jit.gate.set()  # the held optimize (of the first version) runs, then the newer topology
        assert live.wait_compiled(TIMEOUT)
        live.process_block(BLOCK)
        assert live._current is not None and live._current.compiled.tier == "optimized"
        assert live.compiled_version == graph.version != first_version
    finally:
        jit.gate.set()
        live.close()


def long_chain(n: int = 30) -> Graph:
    """A sine and ``n`` alternating lowpasses and gains in series: scalar code of 64 KiB and more
    (so it starts with the quick tier), the same program for both tiers."""
    graph = Graph(SR)
    prev = graph.add_node(Oscillator.sine(220.0, 0.5), "osc")
    for i in range(n):
        node = graph.add_node(IirLowpass(800.0 + 40.0 * i, 0.8) if i % 2 == 0 else Gain(0.99), f"n{i}")
        graph.connect(prev.output, node.input)
        prev = node
    graph.set_output(prev.output)
    return graph


@pytest.mark.skipif(sys.platform == "win32", reason="the compile worker's pipes use select()")
@pytest.mark.parametrize("build", [voices, long_chain], ids=["voice-group", "scalar"])
def test_both_tiers_compile_in_the_worker_and_play_the_interpreters_bits(build: object) -> None:
    """Through the compile worker: the quick tier, then the optimized one (for a program that is
    the same for both, only Cranelift again in the worker: no frontend time), samples exact."""
    assert worker.shared().wait_ready(TIMEOUT)
    graph = build()  # type: ignore[operator]
    live = JitGraph(graph, jit=CraneliftJit(max_block=BLOCK), compile_worker=True)
    try:
        assert live.tiered and live.wait_compiled(TIMEOUT)
        out = [live.process_block(BLOCK) for _ in range(8)]
        current = live._current
        assert current is not None and current.compiled.tier == "optimized"
        assert [s.tier for s in live.swaps][-1] == "optimized"
        assert live.worker_compiles == 2 and live.worker_error is None and live.tier_error is None
        # the scalar chain compiles anew too: its fast loops are the optimized tier's only
        assert current.compiled.stats.frontend_seconds > 0.0
    finally:
        live.close()
    reference = build()  # type: ignore[operator]
    np.testing.assert_array_equal(
        np.concatenate(out), np.concatenate([reference.process_block(BLOCK) for _ in range(8)])
    )
