"""A compare of two float constants compiles to its answer (pysemantics).

``if self.pm != 0.0:`` with ``pm`` unconnected compares two constants; Cranelift does not fold
float compares, so each such ``if`` cost a compare and a branch per sample (per oscillator, in
every voice loop) until pysemantics folded it. The fold must give Python's answer, NaN included."""

from __future__ import annotations

import math

import pytest
from jit_support import assert_jit_same

from oscen.graph import Graph, Node, StreamInput, StreamOutput
from oscen.jit import CraneliftJit
from oscen.oscillators import Oscillator

NAN = math.nan
UNFOLDED = "(f64.ne (f64.const 0x0.0p+0) (f64.const 0x0.0p+0))"


def test_an_oscillator_without_pm_has_no_constant_compare_left() -> None:
    for make in (Oscillator.sine, Oscillator.saw, Oscillator.square):
        graph = Graph(48000.0)
        osc = graph.add_node(make(220.0, 0.5))
        graph.set_output(osc.output)
        wat = CraneliftJit(max_block=64).compile(graph.to_ir()).wat
        assert UNFOLDED not in wat


class Constants(Node):
    """Each output counts the constant compares that hold (plus the input, so it is audible)."""

    x = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        n = 0.0
        if 1.0 < 2.0:
            n = n + 1.0
        if 2.0 <= 2.0:
            n = n + 2.0
        if -0.0 == 0.0:
            n = n + 4.0
        if NAN != NAN:
            n = n + 8.0
        if NAN == NAN:
            n = n + 16.0
        if NAN < 1.0 or NAN >= 1.0:
            n = n + 32.0
        if 3.0 > 2.5:
            n = n + 64.0
        if self.x != 0.0:  # not constant: the saw
            n = n + 128.0
        self.output = n * 0.001 + self.x


@pytest.mark.parametrize("blocks", [64, [7, 64, 1]])
def test_constant_compares_give_python_s_answers_in_both_engines(blocks) -> None:
    def build() -> Graph:
        graph = Graph(48000.0)
        saw = graph.add_node(Oscillator.saw(110.0, 0.5))
        node = graph.add_node(Constants())
        graph.connect(saw.output, node.x)
        graph.set_output(node.output)
        return graph

    assert_jit_same(build, 200, blocks=blocks, exact=True)
    # 1 + 2 + 4 + 8 + 64, + 128 for the saw (it starts at -0.5): what Python computes
    assert build().process_block(1).ravel()[0] == pytest.approx(0.207 - 0.5)
