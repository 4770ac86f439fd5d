"""The oscillator's phase wrap: two selects for an increment under a cycle, floor only beyond.

The wrap must give the floats ``phase - floor(phase)`` gave (with a result of exactly 1.0 made
0.0) for every phase in [0, 1) and every increment, forwards and backwards, and its rare test
reads only the increment (so the JIT's fast sample loop tests it once per run of samples with
one increment). Checked against that formula directly, and compiled against interpreted while
frequencies change sign, cross zero on a ramp, and jump beyond the sample rate mid-block, in a
voice group (lanes) and alone.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from jit_support import assert_engines_match, run_engines, set_value

from oscen.gain import Gain
from oscen.graph import Graph
from oscen.jit import CraneliftJit
from oscen.oscillators import Oscillator

SR = 48000.0


def floor_wrap(phase: float, increment: float) -> float:
    """The wrap as the oscillator computed it before the selects (the reference)."""
    p = phase + increment
    p = p - 1.0 if p >= 1.0 else p
    if p >= 1.0 or p < 0.0:
        p = p - math.floor(p)
        if p >= 1.0:
            p = 0.0
    return p


def stepped(phase: float, increment: float) -> float:
    """The oscillator's own phase after one sample from ``phase`` at ``increment`` cycles a sample."""
    osc = Oscillator.sine(increment, 1.0)  # at a sample rate of 1.0 Hz the increment is the frequency
    osc._phase = phase
    osc.process(1.0)
    return osc._phase


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _edge_cases() -> list[tuple[float, float]]:
    below_one = math.nextafter(1.0, 0.0)
    tiny = 5e-324
    phases = [0.0, tiny, 1e-20, 0.25, 0.5, 0.75, below_one]
    increments = [
        0.0, -0.0, tiny, -tiny, 1e-20, -1e-20, 1e-17, -1e-17, 0.01, -0.01, 0.5, -0.5,
        below_one, -below_one, 1.0, -1.0, 1.5, -1.5, 3.7, -3.7, 1e6, -1e6,
    ]  # fmt: skip
    return [(p, i) for p in phases for i in increments]


def test_the_selects_give_the_floor_wraps_floats_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    cases = _edge_cases()
    cases += [
        (float(p), float(i)) for p, i in zip(rng.random(3000), rng.uniform(-1.0, 1.0, 3000), strict=True)
    ]
    cases += [
        (float(p), float(i)) for p, i in zip(rng.random(500), rng.uniform(-40.0, 40.0, 500), strict=True)
    ]
    cases += [
        (float(p), -float(p) - float(d))
        for p, d in zip(rng.random(500), rng.uniform(0.0, 1e-15, 500), strict=True)
    ]
    for phase, increment in cases:
        got = stepped(phase, increment)
        assert bits(got) == bits(floor_wrap(phase, increment)), (phase, increment, got)
        assert 0.0 <= got < 1.0


def test_a_tiny_negative_start_phase_is_zero_not_one() -> None:
    osc = Oscillator.sine(440.0, phase=-1e-20)  # -1e-20 % 1.0 rounds up to 1.0
    assert osc._phase == 0.0
    assert Oscillator.sine(440.0, phase=-0.25)._phase == 0.75


def voices() -> Graph:
    graph = Graph(SR)
    mix = graph.add_node(Gain(0.25), "mix")
    for k, f in enumerate([220.0, -330.0, 0.0, 47000.0, -96500.0, 1000.0]):
        osc = graph.add_node(Oscillator.sine(f, 0.5), f"osc{k}")
        graph.connect(osc.output, mix.input)
    graph.set_output(mix.output)
    return graph


ACTIONS = [
    set_value(70, "osc0.frequency", -440.0),  # turns backwards mid-block
    set_value(200, "osc1.frequency", 880.0, 0.004),  # a ramp through zero
    set_value(333, "osc2.frequency", 60000.0),  # more than a cycle a sample: the floor branch
    set_value(420, "osc3.frequency", 300.0),  # back under a cycle
    set_value(500, "osc4.frequency", -SR),  # exactly a cycle backwards
    set_value(610, "osc5.frequency", -1000.0, 0.002),
    set_value(700, "osc2.frequency", -0.5),
]


@pytest.mark.parametrize("voice_groups", [True, False])
def test_compiled_wraps_match_the_interpreter_bit_for_bit(voice_groups: bool) -> None:
    jit = CraneliftJit(voice_groups=voice_groups)
    out = run_engines(
        voices, 1100, ACTIONS, engines=("interpreted", "state"), blocks=[256, 37, 1, 300], jit=jit
    )
    assert np.any(np.abs(out["state"]) > 1e-3)
    assert_engines_match(
        out["interpreted"], out["state"], exact=True, what="phase wrap, compiled vs interpreted"
    )
