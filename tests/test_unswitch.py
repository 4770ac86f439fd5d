"""Exits tested before each run of the fast loop instead of in it (passes.unswitch, behind
``SkeletonBuilder.unswitch``).

The fast loop must run exactly the samples the loop without the split ran, in the same order:
exact against the same graph with the pass off and node by node, and within the policy against
the interpreter, across ramps, parameter and frequency changes mid-block, voices that stop and
start, resynchronisation countdowns at different samples in each lane, and odd block sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
from jit_support import assert_engines_match, run_engines, set_value
from random_graphs import SR
from test_fastpath import tickers

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.jit import CraneliftJit, kernel
from oscen.jit.ops import Op
from oscen.jit.passes import unswitch
from oscen.jit.skeleton import SkeletonBuilder
from oscen.oscillators import Oscillator

F64 = kernel.T.F64
I32 = kernel.T.I32


def voices(n: int = 6) -> Graph:
    """The voices64 shape: sines, each into its own lowpass, summed."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(0.3), "mix")
    for k in range(n):
        osc = graph.add_node(Oscillator.sine(110.0 * (k + 1) + 3.0 * k, 0.5), f"osc{k}")
        low = graph.add_node(IirLowpass(900.0 + 150.0 * k, 0.8), f"low{k}")
        graph.connect(osc.output, low.input)
        graph.connect(low.output, mix.input)
    graph.set_output(mix.output)
    return graph


ACTIONS = [
    set_value(90, "osc1.frequency", 460.0),  # a restart in one lane: the lanes' countdowns differ
    set_value(300, "low2.cutoff", 2500.0),  # the biquad's coefficients, once
    set_value(500, "osc3.frequency", 40.0, 0.003),  # a ramp: the ramps test holds every sample
    set_value(700, "low0.q", 3.0, 0.001),
    set_value(900, "osc0.amplitude", 0.0),  # a voice stops...
    set_value(1300, "osc0.amplitude", 0.7),  # ...and starts again
    set_value(1500, "osc4.frequency", -300.0),  # backwards
    set_value(1700, "osc5.frequency", 50000.0),  # more than a cycle a sample
    set_value(2100, "osc2.frequency", 0.0),
]
BLOCKS = [256, 37, 1, 300, 1024, 5]


def _fast_loops(fn: kernel.Function) -> list[kernel.Loop]:
    out = []
    stack = list(fn.body)
    while stack:
        s = stack.pop()
        if isinstance(s, kernel.Loop) and s.label == "_fast":
            out.append(s)
        for name in ("body", "orelse"):
            inner = getattr(s, name, None)
            if isinstance(inner, list):
                stack.extend(inner)
    return out


def test_every_exit_of_the_voice_pairs_fast_loop_leaves_it(monkeypatch) -> None:
    monkeypatch.setattr(SkeletonBuilder, "unswitch", True)
    monkeypatch.setattr(SkeletonBuilder, "voice_inner", False)  # the pair functions as called per pair
    program = CraneliftJit().program(voices().to_ir())
    bodies = [f for f in program.module.functions if f.name.startswith("voices0")]
    assert bodies
    for fn in bodies:
        (fast,) = _fast_loops(fn)
        exits = [s for s in fast.body if isinstance(s, kernel.Exit)]
        assert [s.label for s in exits] == ["_enter"]  # the run's end: no rare if's exit left
        assert unswitch.STOP in fn.locals


@pytest.mark.parametrize("lanes", [2, 4])
def test_runs_match_the_loop_without_the_pass(monkeypatch, lanes: int) -> None:
    off = run_engines(voices, 3000, ACTIONS, engines=("state",), blocks=BLOCKS, jit=CraneliftJit(lanes=lanes))
    monkeypatch.setattr(SkeletonBuilder, "unswitch", True)
    on = run_engines(
        voices, 3000, ACTIONS, engines=("interpreted", "state"), blocks=BLOCKS, jit=CraneliftJit(lanes=lanes)
    )
    single = run_engines(
        voices, 3000, ACTIONS, engines=("state",), blocks=BLOCKS, jit=CraneliftJit(voice_groups=False)
    )
    assert np.any(np.abs(on["state"]) > 1e-3)
    assert_engines_match(off["state"], on["state"], exact=True, what="unswitched vs not")
    assert_engines_match(single["state"], on["state"], exact=True, what="unswitched vs node by node")
    assert_engines_match(on["interpreted"], on["state"], what="unswitched vs interpreted")


def test_exits_it_cannot_take_out_stay_and_stay_exact(monkeypatch) -> None:
    # a Ticker counts up to its period: not a countdown, so its exit stays in the fast loop
    actions = [set_value(90, "tick1.period", 7.0), set_value(400, "osc2.frequency", 900.0, 0.003)]
    off = run_engines(tickers, 1200, actions, engines=("state",), blocks=[1, 37, 256, 64])
    monkeypatch.setattr(SkeletonBuilder, "unswitch", True)
    on = run_engines(tickers, 1200, actions, engines=("state",), blocks=[1, 37, 256, 64])
    assert_engines_match(off["state"], on["state"], exact=True, what="unswitched vs not")
    program = CraneliftJit().program(tickers().to_ir())
    (pair,) = [f for f in program.module.functions if f.name == "voices0"]
    (fast,) = _fast_loops(pair)
    assert any(s.label.startswith("_slow") for s in fast.body if isinstance(s, kernel.Exit))


# ------------------------------------------------------------------ the analysis on small bodies
def _loop(*middle: kernel.Stmt) -> list[kernel.Stmt]:
    """A fast loop body: ``i >= n`` exit, ``middle``, ``i = i + 1``."""
    i, n = kernel.Local(I32, "i"), kernel.Local(I32, "n")
    return [
        kernel.Exit(label="sample", cond=kernel.Prim(Op.I32_GE_U.result, Op.I32_GE_U, [i, n])),
        *middle,
        kernel.SetLocal(name="i", value=kernel.Prim(I32, Op.I32_ADD, [i, kernel.Const(I32, 1)])),
    ]


def _le0(name: str) -> kernel.Expr:
    return kernel.Prim(Op.F64_LE.result, Op.F64_LE, [kernel.Local(F64, name), kernel.Const(F64, 0.0)])


def _step(name: str, by: float) -> kernel.SetLocal:
    return kernel.SetLocal(
        name=name, value=kernel.Prim(F64, Op.F64_SUB, [kernel.Local(F64, name), kernel.Const(F64, by)])
    )


def _or(a: kernel.Expr, b: kernel.Expr) -> kernel.Expr:
    return kernel.Prim(I32, Op.I32_OR, [a, b])


def _ne(a: str, b: str) -> kernel.Expr:
    return kernel.Prim(Op.F64_NE.result, Op.F64_NE, [kernel.Local(F64, a), kernel.Local(F64, b)])


def test_a_countdown_and_an_invariant_test_leave_an_exit_taken_sooner_by_a_step() -> None:
    body = _loop(
        kernel.SetLocal(
            name="inc",
            value=kernel.Prim(F64, Op.F64_MUL, [kernel.Local(F64, "freq"), kernel.Const(F64, 2.0)]),
        ),
        kernel.Exit(label="_slow0", cond=_or(_le0("left"), _ne("inc", "last"))),
        _step("left", 1.0),
        kernel.Exit(label="_slow1", cond=_le0("left")),  # after the step: one sample sooner
    )
    assert unswitch.counter(body, "sample") == ("i", "n", Op.I32_GE_U)
    plan = unswitch.plan(body, [2, 4], True)
    assert plan.removed == {2, 4}
    assert [(c.name, c.after_step) for c in plan.countdowns] == [("left", False), ("left", True)]
    (test,) = plan.tests  # inc read through its assignment: freq * 2.0 != last
    assert isinstance(test, kernel.Prim) and test.op is Op.F64_NE
    assert isinstance(test.args[0], kernel.Prim) and test.args[0].op is Op.F64_MUL


@pytest.mark.parametrize(
    "middle",
    [
        [kernel.Exit(label="_slow0", cond=_le0("left")), _step("left", 2.0)],  # not a step of 1.0
        [kernel.Exit(label="_slow0", cond=_le0("left")), _step("left", 1.0), _step("left", 1.0)],  # two steps
        [
            kernel.Exit(label="_slow0", cond=_ne("x", "y")),
            kernel.SetLocal(name="x", value=kernel.Local(F64, "z")),
        ],
        # x set after the test: its value there is the previous sample's
    ],
)
def test_exits_the_loop_may_take_at_any_sample_stay(middle: list[kernel.Stmt]) -> None:
    body = _loop(*middle)
    assert unswitch.plan(body, [1], True).removed == set()


def test_no_countdown_without_a_counter_of_the_known_shape() -> None:
    body = _loop(kernel.Exit(label="_slow0", cond=_le0("left")), _step("left", 1.0))
    assert unswitch.plan(body, [1], False).removed == set()
    assert unswitch.counter(body[1:], "sample") is None
