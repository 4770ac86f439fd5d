"""A voice group's segment calls its body in a loop over a table-free progression (skeleton:
``group_segment``, ``for_each``).

Where the constants of the calls (voice indices, member bases, per-voice input addresses, the
ramped members' bases) step evenly from one call to the
next, as they do when voices are added one after another, the segment is one loop over the calls
instead of one call each: code per template, not per voice. Each voice must still compute exactly
what it computes alone (and what the interpreter computes), with ramps and events reaching the
right voice, and a fault must name the voice it happened in; voices laid out unevenly keep one
call each. Groups with event queues loop too: each call's ``due`` bound (the first sample an
event is due at in one of its voices' queues) is chained over that call's voices, whose queue
addresses are more columns of the call's row."""

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
from oscen.jit.skeleton import SEG_COUNTER, CallRows, for_each
from oscen.oscillators import Oscillator

SR = 44100.0


def _segment(graph: Graph, jit: CraneliftJit | None = None) -> kernel.Function:
    program = (jit or CraneliftJit()).program(graph.to_ir())
    return next(f for f in program.module.functions if f.name == "seg0")


def loops(graph: Graph, jit: CraneliftJit | None = None) -> list[tuple[str, int]]:
    """(body, calls) of each loop over calls in the group's segment."""
    out = []
    for s in _segment(graph, jit).body:
        if isinstance(s, kernel.Loop) and s.label == "_seg_calls":
            (call,) = [x for x in s.body if isinstance(x, kernel.Invoke)]
            (end,) = [x for x in s.body if isinstance(x, kernel.Exit)]
            assert isinstance(end.cond, kernel.Prim) and isinstance(end.cond.args[1], kernel.Const)
            out.append((call.func, end.cond.args[1].value))
    return out


def unrolled(graph: Graph, jit: CraneliftJit | None = None) -> list[str]:
    return [
        s.func
        for s in _segment(graph, jit).body
        if isinstance(s, kernel.Invoke) and s.func.startswith("voice")
    ]


def _rows(*rows: list[int]) -> CallRows:
    return CallRows.of([list(row) for row in rows])


def _made(rows: CallRows) -> list[kernel.Stmt]:
    return for_each(rows, lambda args, p: [kernel.Invoke("f", [*args, p])])


def test_rows_that_step_evenly_are_one_loop() -> None:
    (start, loop) = _made(_rows([0, 10, 7], [2, 30, 7], [4, 50, 7]))
    assert isinstance(start, kernel.SetLocal) and start.name == SEG_COUNTER
    assert isinstance(loop, kernel.Loop)
    (call,) = [x for x in loop.body if isinstance(x, kernel.Invoke)]
    assert isinstance(call.args[2], kernel.Const) and call.args[2].value == 7  # a step of 0: a constant
    assert not isinstance(call.args[0], kernel.Const) and not isinstance(call.args[1], kernel.Const)


@pytest.mark.parametrize("rows", [([0, 10], [2, 30], [4, 51]), ([1, 2],), ([3], [1]), ([0], [1], [3], [4])])
def test_uneven_or_few_rows_stay_one_call_each(rows) -> None:
    made = _made(_rows(*rows))
    assert [type(s) for s in made] == [kernel.Invoke] * len(rows)
    assert [s.args[-1].value for s in made] == list(range(len(rows)))


def test_many_voices_are_one_loop_and_play_as_node_by_node() -> None:
    # 23 voices: eleven pair calls in the loop (quick tier), then one voice alone
    graph = spread_voices(23)
    quick = CraneliftJit(tier="quick")
    assert loops(graph, quick) == [("voices0", 11)]
    assert unrolled(graph, quick) == ["voice0"]
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
    assert loops(spread_voices(4), jit) == []
    assert unrolled(spread_voices(4), jit) == ["voices0"] * 2


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
    assert loops(tickers(23), CraneliftJit(tier="quick")) == [("voices0", 11)]
    assert fault_of_voice(tickers(23), voice).node == f"tick{voice}"


@pytest.mark.parametrize("blocks", [256, [1, 37, 256, 7, 1024]])
def test_events_reach_their_voice_with_their_calls_in_one_loop(blocks) -> None:
    n = 23
    ((body, calls),) = loops(gated_voices(n))
    assert body.startswith("voices0") and calls in (5, 11)  # four or two voices a call
    assert_jit_same(
        lambda: gated_voices(n), 3500, _frames_ok(gates(3, n=n, count=120)), blocks=blocks, exact=True
    )


def test_the_loop_gives_the_unrolled_calls_bits(monkeypatch) -> None:
    import oscen.jit.skeleton as skeleton

    looped = run_engines(lambda: spread_voices(23), 900, engines=("state",), blocks=[256, 41])["state"]
    monkeypatch.setattr(
        skeleton,
        "for_each",
        lambda rows, make: [
            s
            for p, row in enumerate(rows.rows)
            for s in make([kernel.Const(kernel.T.I32, a) for a in row], kernel.Const(kernel.T.I32, p))
        ],
    )
    assert loops(spread_voices(23), CraneliftJit(tier="quick")) == []
    calls = run_engines(lambda: spread_voices(23), 900, engines=("state",), blocks=[256, 41])["state"]
    assert_engines_match(calls, looped, exact=True, what="loop vs one call each")


def test_the_block_function_compacts_the_voices_queues_in_one_loop() -> None:
    """The gate queues of every voice are compacted by one loop per template member and queue:
    the block function does not grow with the voices (it was the module's largest function
    with gates in every voice)."""

    def block(n: int) -> kernel.Function:
        program = CraneliftJit().program(gated_voices(n).to_ir())
        return next(f for f in program.module.functions if f.name == "block")

    def copies(fn: kernel.Function) -> int:
        from oscen.jit.passes.walk import walk

        return sum(isinstance(x, kernel.Invoke) and x.func == "copy_words" for x in walk(fn.body))

    small, large = block(8), block(40)
    assert any(isinstance(s, kernel.Loop) and s.label == "_seg_calls" for s in large.body)
    assert copies(small) == copies(large) >= 1
