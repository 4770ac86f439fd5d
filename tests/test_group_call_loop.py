"""A voice group's segment calls its body in a loop over a table-free progression (skeleton:
``group_segment``, ``_strides``, ``LOOP_CALLS``).

Where the constants of the calls (voice indices, member bases, per-voice input addresses, the
ramped members' bases and the queues under the ``due`` gate) step evenly from one call to the
next, as they do when voices are added one after another, the segment is one loop over the calls
instead of one call each: code per template, not per voice. Each voice must still compute exactly
what it computes alone (and what the interpreter computes), with ramps and events reaching the
right voice, and a fault must name the voice it happened in; voices laid out unevenly keep one
call each."""

from __future__ import annotations

import pytest
from jit_support import assert_engines_match, assert_jit_same, run_engines, set_value
from test_fastpath import fault_of_voice, tickers
from test_voice_events import _frames_ok, gates
from test_voice_events import voices as gated_voices
from test_voice_mix import same_as_node_by_node, spread_voices

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.jit import CraneliftJit, kernel
from oscen.jit.skeleton import LOOP_CALLS, _strides
from oscen.oscillators import Oscillator

SR = 44100.0


def _segment(graph: Graph, jit: CraneliftJit | None = None) -> kernel.Function:
    program = (jit or CraneliftJit()).program(graph.to_ir())
    return next(f for f in program.module.functions if f.name == "seg0")


def loops(graph: Graph, jit: CraneliftJit | None = None) -> list[tuple[str, int]]:
    """(body, calls) of each loop over calls in the group's segment."""
    out = []
    for s in _segment(graph, jit).body:
        if isinstance(s, kernel.Loop):
            (call,) = [x for x in s.body if isinstance(x, kernel.Invoke)]
            assert isinstance(s.cond, kernel.Prim) and isinstance(s.cond.args[1], kernel.Const)
            out.append((call.func, s.cond.args[1].value))
    return out


def unrolled(graph: Graph, jit: CraneliftJit | None = None) -> list[str]:
    return [
        s.func
        for s in _segment(graph, jit).body
        if isinstance(s, kernel.Invoke) and s.func.startswith("voice")
    ]


def test_strides_of_rows() -> None:
    assert _strides([[0, 10, 7], [2, 30, 7], [4, 50, 7]]) == ([0, 10, 7], [2, 20, 0])
    assert _strides([[0, 10], [2, 30], [4, 51]]) is None
    assert _strides([[1, 2]]) is None
    assert _strides([[3], [1], [-1]]) == ([3], [-2])


def test_many_voices_are_one_loop_and_play_as_node_by_node() -> None:
    # 23 voices: five calls of four in the loop, then a pair and one voice alone
    graph = spread_voices(23)
    assert loops(graph) == [("voices0", 5)]
    assert unrolled(graph) == ["voices0p", "voice0"]
    actions = [
        set_value(100, "osc6.frequency", 900.0, 0.004),  # a ramp in a voice the loop runs
        set_value(333, "lp13.cutoff", 2500.0),
        set_value(700, "osc19.frequency", 300.0, 0.002),
        set_value(900, "lp21.q", 2.0),  # in the pair after the loop
    ]
    same_as_node_by_node(lambda: spread_voices(23), 1500, actions, blocks=[256, 1, 37, 512])


def test_the_quick_tier_loops_over_its_pairs() -> None:
    jit = CraneliftJit(tier="quick")
    assert loops(spread_voices(12), jit) == [("voices0", 6)]
    actions = [set_value(50, "osc9.frequency", 700.0, 0.003), set_value(400, "lp2.cutoff", 1800.0)]
    same_as_node_by_node(lambda: spread_voices(12), 1000, actions, blocks=[256, 13], jit=jit)


def test_fewer_calls_stay_unrolled() -> None:
    jit = CraneliftJit(tier="quick")
    pairs = 2 * (LOOP_CALLS - 1)
    assert loops(spread_voices(pairs), jit) == []
    assert unrolled(spread_voices(pairs), jit) == ["voices0"] * (LOOP_CALLS - 1)


def uneven(n: int) -> Graph:
    """``n`` sine -> lowpass voices into one Gain with a lone node added after the third voice:
    the later voices' bases no longer step evenly from the earlier ones'."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0), "mix")
    for k in range(n):
        if k == 3:
            graph.add_node(Gain(0.5), "lone")
        osc = graph.add_node(Oscillator.sine(97.0 + 31.0 * k, 0.1 + 0.05 * k), f"osc{k}")
        lp = graph.add_node(IirLowpass(400.0 + 150.0 * k, 0.8), f"lp{k}")
        graph.connect(osc.output, lp.input)
        graph.connect(lp.output, mix.input)
    graph.set_output(mix.output)
    return graph


def test_voices_laid_out_unevenly_keep_one_call_each() -> None:
    jit = CraneliftJit(tier="quick")
    graph = uneven(12)
    assert loops(graph, jit) == []
    assert unrolled(graph, jit) == ["voices0"] * 6
    out = run_engines(lambda: uneven(12), 800, engines=("interpreted", "state"), blocks=[256, 41], jit=jit)
    assert_engines_match(out["interpreted"], out["state"])


@pytest.mark.parametrize("voice", [0, 5, 13, 19, 21, 22])
def test_a_fault_in_the_loop_names_its_voice(voice: int) -> None:
    assert loops(tickers(23)) == [("voices0", 5)]
    assert fault_of_voice(tickers(23), voice).node == f"tick{voice}"


@pytest.mark.parametrize("blocks", [256, [1, 37, 256, 7, 1024]])
def test_events_reach_their_voice_in_the_loop(blocks) -> None:
    n = 23
    assert loops(gated_voices(n)) == [("voices0", 5)]
    assert_jit_same(
        lambda: gated_voices(n), 3500, _frames_ok(gates(3, n=n, count=120)), blocks=blocks, exact=True
    )


def test_the_loop_gives_the_unrolled_calls_bits(monkeypatch) -> None:
    import oscen.jit.skeleton as skeleton

    looped = run_engines(lambda: spread_voices(23), 900, engines=("state",), blocks=[256, 41])["state"]
    monkeypatch.setattr(skeleton, "LOOP_CALLS", 10**9)
    assert loops(spread_voices(23)) == []
    calls = run_engines(lambda: spread_voices(23), 900, engines=("state",), blocks=[256, 41])["state"]
    assert_engines_match(calls, looped, exact=True, what="loop vs one call each")
