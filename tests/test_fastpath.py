"""The lanes body's sample loop split into a straight fast loop and the full body (passes.fastpath).

Every sample must run the statements it ran before, in the same order: exact against the same
graph compiled node by node and with ``fast_loops`` off, and within the policy against the
interpreter, while rare ifs fire in one lane and not the other, on ramps (the ramps if fires on
every sample), at block edges, and when a fault happens inside a rare if's arm.
"""

from __future__ import annotations

import numpy as np
import pytest
from jit_support import assert_engines_match, run_engines, set_value
from random_graphs import SR

from oscen.gain import Gain
from oscen.graph import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.jit import CraneliftJit, GraphState, NodeFault, kernel
from oscen.jit.passes.fastpath import fast_sample_loop, split_loop
from oscen.jit.skeleton import SkeletonBuilder
from oscen.oscillators import Oscillator


class Ticker(Node):
    """Every ``period`` samples its level moves towards its input divided by ``divisor``: a rare
    if, at a different sample in each voice, with a division that may fault inside it."""

    input = StreamInput()
    period = ValueInput(5.0)
    divisor = ValueInput(1.0)
    output = StreamOutput()

    def __init__(self, period: float = 5.0) -> None:
        self.period = period
        self.count = 0.0
        self.level = 0.0

    def process(self, sample_rate: float) -> None:
        self.count = self.count + 1.0
        if self.count >= self.period:
            self.count = 0.0
            self.level = self.level * -0.5 + self.input / self.divisor
        self.output = self.level + self.input


def tickers(n: int = 5) -> Graph:
    graph = Graph(SR)
    mix = graph.add_node(Gain(0.5), "mix")
    for k in range(n):
        osc = graph.add_node(Oscillator.sine(120.0 + 17.0 * k, 0.4 + 0.1 * k), f"osc{k}")
        tick = graph.add_node(Ticker(3.0 + 2.0 * k), f"tick{k}")
        graph.connect(osc.output, tick.input)
        graph.connect(tick.output, mix.input)
    graph.set_output(mix.output)
    return graph


def lane_function(graph: Graph, jit: CraneliftJit | None = None) -> kernel.Function:
    program = (jit or CraneliftJit()).program(graph.to_ir())
    (pair,) = [f for f in program.module.functions if f.name == "voices0"]
    return pair


def test_the_lanes_body_runs_a_loop_without_ifs_and_leaves_it_for_the_full_body() -> None:
    pair = lane_function(tickers())
    (outer,) = [s for s in pair.body if isinstance(s, kernel.Block) and s.label == "sample"]
    fast = [x for x in _walk_stmts(outer.body) if isinstance(x, kernel.Loop) and x.label == "_fast"]
    assert len(fast) == 1
    assert not any(isinstance(s, kernel.If) for s in fast[0].body)
    exits = {s.label for s in fast[0].body if isinstance(s, kernel.Exit)}
    assert "sample" in exits and any(label.startswith("_slow") for label in exits)


def _walk_stmts(stmts):
    for s in stmts:
        yield s
        for name in ("body", "orelse"):
            inner = getattr(s, name, None)
            if isinstance(inner, list):
                yield from _walk_stmts(inner)


@pytest.mark.parametrize("lanes", [2, 4])
def test_rare_ifs_firing_in_one_lane_ramps_and_block_edges_stay_exact(lanes: int) -> None:
    jit = CraneliftJit(lanes=lanes)
    actions = [
        set_value(90, "tick1.period", 7.0),
        set_value(400, "osc2.frequency", 900.0, 0.003),  # a ramp: the ramps if on every sample
        set_value(650, "tick0.divisor", 3.0, 0.002),
    ]
    blocks = [1, 37, 256, 64]
    grouped = run_engines(tickers, 1200, actions, engines=("interpreted", "state"), blocks=blocks, jit=jit)
    single = run_engines(
        tickers, 1200, actions, engines=("state",), blocks=blocks, jit=CraneliftJit(voice_groups=False)
    )
    assert np.any(np.abs(grouped["state"]) > 1e-3)
    assert_engines_match(grouped["interpreted"], grouped["state"], what="fast loop vs interpreted")
    assert_engines_match(single["state"], grouped["state"], exact=True, what="fast loop vs node by node")


def test_fast_loops_off_gives_the_same_bits(monkeypatch) -> None:
    actions = [set_value(300, "tick3.period", 2.0), set_value(500, "osc0.amplitude", 0.9, 0.004)]
    fast = run_engines(tickers, 900, actions, engines=("state",), blocks=[256, 33])["state"]
    monkeypatch.setattr(SkeletonBuilder, "fast_loops", False)
    pair = lane_function(tickers(), CraneliftJit())
    assert not any(isinstance(s, kernel.Block) and s.label == "sample" for s in pair.body)
    slow = run_engines(tickers, 900, actions, engines=("state",), blocks=[256, 33])["state"]
    assert_engines_match(slow, fast, exact=True, what="fast loops vs none")


def fault_of_voice(graph: Graph, voice: int) -> NodeFault:
    """The fault of compiled ``graph`` after one block, once voice ``voice``'s divisor is 0."""
    ir = graph.to_ir()
    compiled = CraneliftJit().compile(ir)
    state = GraphState.from_graph(graph, ir=ir)
    compiled.bind(state)
    compiled.process_block(state, 64)
    tick = next(h for h in graph.nodes if h.label == f"tick{voice}")
    state.set_value(tick.divisor, 0.0)
    with pytest.raises(NodeFault) as info:
        compiled.process_block(state, 64)
    return info.value


@pytest.mark.parametrize("voice", [1, 2, 4])
def test_a_fault_inside_a_rare_arm_names_the_voice(voice: int) -> None:
    fault = fault_of_voice(tickers(), voice)
    assert isinstance(fault, ZeroDivisionError)
    assert fault.node == f"tick{voice}"


def test_loops_the_split_does_not_understand_are_left_alone() -> None:
    i32 = kernel.T.I32
    cond = kernel.Prim(i32, kernel_op("I32_EQZ"), [kernel.Local(i32, "n")])
    rare = kernel.If(kernel.NOSITE, cond, [kernel.SetLocal(name="n", value=kernel.Const(i32, 1))], [])
    with_else = kernel.If(kernel.NOSITE, cond, [], [kernel.SetLocal(name="n", value=kernel.Const(i32, 2))])
    assert split_loop(kernel.Loop(label="sample", cond=cond, body=[rare])) is None  # a while loop
    assert (
        split_loop(kernel.Loop(label="sample", cond=None, body=[rare, kernel.Next(label="sample")])) is None
    )
    assert split_loop(kernel.Loop(label="sample", cond=None, body=[with_else])) is None  # no rare if
    fn = kernel.Function("f", [("n", i32)], (), {}, [kernel.Loop(label="other", cond=None, body=[rare])])
    assert fast_sample_loop(fn) is fn


def kernel_op(name: str):
    from oscen.jit.ops import Op

    return Op[name]
