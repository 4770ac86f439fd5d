"""Packed arms outlined and blends cut to what is seen afterwards (oscen.jit.passes.lanes,
"masked ifs" and :func:`~oscen.jit.passes.lanes._outline_packed`).

A pure arm of a masked ``if`` runs packed for a pair of lanes when a lane takes it, and the
locals it sets are blended with the mask. Only the locals the body names outside the ``if``, or
that an arm reads before it sets them, are saved and blended: an inlined polynomial's terms are
not. A large packed section (the oscillator's rotation restart: five sine/cos polynomials)
becomes one module function called under the ``any_true`` guard. Each lane must still do exactly
what the voice run alone does (bit-identical memory block after block), a lane that did not take
the arm must not trap, and a fault inside the function names the voice whose arm raised."""

from __future__ import annotations

import math

import pytest
import wasmtime
from jit_support import assert_engines_match
from jit_support import run_both as run_engines_both
from lanes_support import Runner, lane_module, sequential_module, voice_body
from test_lanes_masked import branchy, hot_path, logs, run_both, sample_loop, wrappers

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph, Node, StreamOutput, ValueInput
from oscen.jit import CraneliftJit
from oscen.jit import kernel as k
from oscen.jit.backends import wasm
from oscen.jit.layout import LANE, TRAP_CODE
from oscen.jit.passes import lanes as lanes_mod
from oscen.jit.passes.lanes import lanes
from oscen.jit.passes.walk import walk
from oscen.oscillators import Oscillator

SR = 1000.0


class Step(Node):
    """``size`` from sample ``at`` on, 0 before (an FM input that changes a voice's increment
    at its own sample: the oscillator's restart arm for that lane alone, twice)."""

    size = ValueInput(0.0)
    at = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self, size: float, at: float) -> None:
        self.size = float(size)
        self.at = float(at)
        self.t = 0.0

    def process(self, sample_rate: float) -> None:
        self.output = self.size if self.t >= self.at else 0.0
        self.t = self.t + 1.0


def stepped_sines(v: int) -> Graph:
    """Voice v: a sine whose frequency steps at a sample of its own (voice 2 never)."""
    g = Graph(SR)
    step = g.add_node(Step(3.0 + v, [5.0, 40.0, 1e9, 41.0][v % 4]))
    osc = g.add_node(Oscillator.sine(7.0 + 3.0 * v, 0.5 + 0.1 * v, phase=0.1 * v))
    g.connect(step.output, osc.fm)
    g.set_output(osc.output)
    return g


def packed_calls(stmts: list) -> list[k.Invoke]:
    return [x for x in walk(stmts) if isinstance(x, k.Invoke) and x.func.startswith("_lane_packed_")]


def packed_functions(lb) -> list[k.Function]:
    return [f for f in lb.functions if f.name.startswith("_lane_packed_")]


def lane_text(lb) -> str:
    return wasm.function_text(k.Function("voices", [], (), lb.locals, lb.body))


@pytest.mark.parametrize("width", [2, 4])
def test_the_rotation_restart_is_one_packed_function_called_under_its_guard(width: int) -> None:
    vb = voice_body(stepped_sines, 4)
    lb = lanes(vb.body, vb.locals, width)
    fns = packed_functions(lb)
    assert len(fns) == width // 2  # one per pair (its locals' names differ)
    loop = sample_loop(lb.body)
    calls = packed_calls(loop.body)
    assert len(calls) == width // 2  # one per pair of lanes
    assert not packed_calls(hot_path(loop.body))  # each under its any_true guard
    polynomials = sum(isinstance(x, k.Prim) and x.op.name == "F64X2_MUL" for x in walk(fns[0].body))
    assert polynomials > 20  # the restart's arithmetic moved into the function
    inline = lanes(vb.body, vb.locals, width, outline=False)
    assert not packed_calls(inline.body)
    assert len(lane_text(lb)) * 2 < len(lane_text(inline))
    run_both(vb, 4, width, blocks=(64, 29, 64, 64))


def test_the_restart_saves_and_blends_only_what_is_seen_afterwards() -> None:
    """The oscillator's state and the values the rest of the sample reads are blended; the
    polynomials' terms (``sin_cycles``' locals, the helpers' returns) are not saved at all."""
    vb = voice_body(stepped_sines, 2)
    lb = lanes(vb.body, vb.locals, 2, outline=False)
    saved = {n for n in lb.locals if n.startswith("_lane_old")}
    assert saved
    assert not [n for n in saved if "sin_cycles" in n or "cos_cycles" in n or "__ret" in n], sorted(saved)
    assert any(n.endswith("__s__v0") for n in saved) and any(n.endswith("__left__v0") for n in saved)


@pytest.mark.parametrize(
    "make",
    [branchy, wrappers({0: (2.5, 3.0), 1: (-1.5, 40.0), 3: (-3.0, 11.0)})],
    ids=["branchy", "wrappers"],
)
@pytest.mark.parametrize("width", [2, 4])
def test_every_packed_section_outlined_is_exact(monkeypatch, make, width: int) -> None:
    """With the threshold at 0 every top-level packed section (a then arm, an if/else with both
    arms packed, nested masked ifs inside) is a function: the same memory as the voices alone."""
    monkeypatch.setattr(lanes_mod, "PACKED_OUTLINE_MIN", 0)
    vb = voice_body(make, 4)
    lb = lanes(vb.body, vb.locals, width)
    if make is branchy:
        assert packed_functions(lb)
    run_both(vb, 4, width, blocks=(64, 29, 64))


def test_math_calls_in_an_outlined_packed_arm_set_no_error(monkeypatch) -> None:
    monkeypatch.setattr(lanes_mod, "PACKED_OUTLINE_MIN", 0)
    vb = voice_body(logs, 4, inline_math=False)
    lb = lanes(vb.body, vb.locals, 2)
    assert any(
        isinstance(x, k.Invoke) and x.func.endswith("_f64x2_main")
        for f in packed_functions(lb)
        for x in walk(f.body)
    )
    seq, lan = run_both(vb, 4, 2)
    assert seq.math_error() == lan.math_error() == 0


class BadLog(Node):
    """From sample 3 on, ``log(x)``: a domain error for a voice whose ``x`` is negative, in a pure
    arm (its scalar fallback raises, for that lane only)."""

    x = ValueInput(1.0)
    output = StreamOutput()

    def __init__(self, x: float) -> None:
        self.x = float(x)
        self.t = 0.0

    def process(self, sample_rate: float) -> None:
        y = 0.0
        if self.t >= 3.0 + self.x * 0.0:
            y = math.log(self.x) * 0.5 + self.x
        self.t = self.t + 1.0
        self.output = y


def bad_logs(lane: int):
    def make(v: int) -> Graph:
        g = Graph(SR)
        g.set_output(g.add_node(BadLog(-2.0 if v == lane else 1.5 + v)).output)
        return g

    return make


@pytest.mark.parametrize("lane", [1, 2, 3])
def test_a_fault_in_an_outlined_packed_arm_names_that_voice(monkeypatch, lane: int) -> None:
    monkeypatch.setattr(lanes_mod, "PACKED_OUTLINE_MIN", 0)
    vb = voice_body(bad_logs(lane), 4, inline_math=False)
    lb = lanes(vb.body, vb.locals, 4)
    assert packed_functions(lb)
    seq = Runner(sequential_module(vb, 4), vb, 4)
    lan = Runner(lane_module(vb, 4, 4, lb), vb, 4)
    for r in (seq, lan):
        with pytest.raises(wasmtime.Trap):
            r.run(16)
    assert lan.header(LANE)[0] == seq.header(LANE)[0] == lane
    assert lan.math_error() == seq.math_error() != 0
    assert lan.header(TRAP_CODE)[0] == seq.header(TRAP_CODE)[0]


def fm_voices(n: int) -> Graph:
    """``n`` sines, each frequency-modulated by a slow sine of its own (the restart arm runs
    every sample, in the function), into lowpasses, one gain."""
    g = Graph(48000.0)
    mix = g.add_node(Gain(1.0 / n))
    for v in range(n):
        lfo = g.add_node(Oscillator.sine(3.0 + 0.5 * v, 4.0 * (v % 3)))  # voice 0, 3: no FM
        osc = g.add_node(Oscillator.sine(110.0 * 2 ** (v / 12), 0.5))
        lp = g.add_node(IirLowpass(300.0 + 90.0 * v, 0.9))
        g.connect(lfo.output, osc.fm)
        g.connect(osc.output, lp.input)
        g.connect(lp.output, mix.input)
    g.set_output(mix.output)
    return g


@pytest.mark.parametrize("lanes_", [2, 4])
def test_frequency_modulated_voices_through_the_packed_function_equal_the_interpreter(lanes_: int) -> None:
    jit = CraneliftJit(lanes=lanes_)
    wat = jit.compile(fm_voices(6).to_ir()).wat
    assert "(func $_lane_packed_" in wat and "(call $_lane_packed_" in wat
    interp, compiled = run_engines_both(lambda: fm_voices(6), 3000, jit=jit, blocks=[256, 77, 512])
    assert_engines_match(interp, compiled)
