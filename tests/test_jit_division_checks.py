"""Float divisions whose divisor can never be zero compile without the ZeroDivisionError check.

A division checks its divisor (Python raises ZeroDivisionError); that check is a trap, and a trap
keeps a voice-lane arm from running packed (oscen.jit.passes.lanes: such an arm runs lane by lane,
outlined). ``pysemantics`` drops the check where the divisor is a non-zero constant or can only be
positive (or NaN): ``max(x, c)`` with a constant ``c > 0``, a constant ``>= 1`` times such a value.
The biquads use that (``1.0 / max(a0, TINY)``), so a coefficient recomputation of voices packs.
These tests fail where the check is kept (the WAT checks), or dropped where it must stay (the
errors), and compare the engines bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from jit_support import assert_jit_same, compile_graph

from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass
from oscen.gain import Gain, Multiply
from oscen.graph import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.jit import CraneliftJit
from oscen.jit.layout import TRAP_CODE
from oscen.jit.traps import FLOAT_ZERO_DIV
from oscen.oscillators import Oscillator

SR = 48000.0
ZERO_DIV_TRAP = f"(i32.store (i32.const {TRAP_CODE}) (i32.const {FLOAT_ZERO_DIV}))"


class ByPositive(Node):
    """Divides by divisors that are positive (or NaN) whatever ``d`` is."""

    d = ValueInput(0.0)
    x = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = self.x / max(self.d, 0.01) + self.x / (2.0 * max(0.5, self.d))


class ByMaybeZero(Node):
    """``max(d, 0.0)`` is zero for d <= 0, and ``0.5 * max(d, 5e-324)`` underflows to zero: checked."""

    d = ValueInput(0.0)
    scale = ValueInput(1.0)
    output = StreamOutput()

    def process(self, sample_rate):
        if self.scale > 0.0:
            self.output = 1.0 / max(self.d, 0.0)
        else:
            self.output = 1.0 / (0.5 * max(self.d, 5e-324))


def _graph(node: Node, d: float, scale: float | None = None) -> Graph:
    graph = Graph(SR)
    h = graph.add_node(node)
    graph.set_value(h.d, d)
    if scale is not None:
        graph.set_value(h.scale, scale)
    else:
        src = graph.add_node(Oscillator.saw(110.0, 0.5))
        graph.connect(src.output, h.x)
    graph.set_output(h.output)
    return graph


def test_a_divisor_that_cannot_be_zero_has_no_check_and_the_engines_agree() -> None:
    wat = CraneliftJit(max_block=64).compile(_graph(ByPositive(), 0.0).to_ir()).wat
    assert ZERO_DIV_TRAP not in wat
    for d in (0.0, -3.0, 0.25, 7.0):
        assert_jit_same(lambda d=d: _graph(ByPositive(), d), 300, exact=True)


@pytest.mark.parametrize("scale", [1.0, -1.0])
def test_a_divisor_that_may_be_zero_keeps_its_check(scale: float) -> None:
    wat = CraneliftJit(max_block=64).compile(_graph(ByMaybeZero(), 0.0, scale).to_ir()).wat
    assert ZERO_DIV_TRAP in wat
    interpreted = _graph(ByMaybeZero(), 0.0, scale)
    with pytest.raises(ZeroDivisionError):
        interpreted.process_block(16)
    compiled, state = compile_graph(_graph(ByMaybeZero(), 0.0, scale))
    with pytest.raises(ZeroDivisionError):
        compiled.process_into(state, np.empty((1, 16)))


def _voices(n: int) -> Graph:
    """SynthMark-like voices: a saw into a lowpass whose cutoff an envelope sweeps, recomputed
    at most every 8 frames; the voices start at different frames (their recomputations differ)."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(0.25))
    for v in range(n):
        saw = graph.add_node(Oscillator.saw(0.0, 0.5, band_limited=True))
        graph.set_value(saw.frequency, 110.0 * (v + 1))
        env = graph.add_node(AdsrEnvelope(0.002 * (v + 1), 0.01, 0.3, 0.01))
        depth = graph.add_node(Multiply(3000.0))
        lowpass = graph.add_node(IirLowpass(400.0, 2.0, update_every=8))
        graph.connect(env.output, depth.a)
        graph.connect(depth.output, lowpass.cutoff)
        graph.connect(saw.output, lowpass.input)
        graph.connect(lowpass.output, mix.input)
        graph.queue_event(env.gate, 3 * v, 1.0)
        graph.queue_event(env.gate, 700 + 5 * v, 0.0)
    graph.set_output(mix.output)
    return graph


def test_voices_recompute_their_lowpass_packed_and_equal_the_interpreter() -> None:
    wat = CraneliftJit(max_block=96).compile(_voices(4).to_ir()).wat
    assert "(func $voices" in wat  # the voices run as lanes
    arms = [part for part in wat.split("(func ")[1:] if part.startswith("$_lane_arm")]
    # the recomputation (two polynomials, two divisions) is not an outlined lane-by-lane arm
    assert not [a for a in arms if "f64.div" in a and "_sin_cos" in a]
    assert ZERO_DIV_TRAP not in wat.split("(func $voices", 1)[1].split("(func ", 1)[0]
    out = assert_jit_same(lambda: _voices(4), 1500, blocks=[96, 37, 96, 200], exact=True)
    assert np.abs(out).max() > 1e-3
