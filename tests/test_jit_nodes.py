"""Every built-in node, compiled by the JIT, against the interpreter: 1e-9 absolute, sample by sample.

Each test plays at least one second at 44.1 kHz with parameter changes (immediate and ramped) and
events in the middle of the run, at block boundaries and inside blocks. Blocks of varying sizes,
some longer than the compiler's ``max_block``, exercise the chunking. Both compiled paths run:
``CraneliftJit().compile(ir)`` on a ``GraphState``, and ``JitGraph`` (see ``jit_support``); the
final node state (attributes, arrays, parameters) is compared too.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from jit_support import assert_jit_same, assert_same, event, set_value

from oscen.delay import Delay
from oscen.envelopes import AdsrEnvelope
from oscen.filters import (
    IirBandpass,
    IirHighpass,
    IirHighShelf,
    IirLowpass,
    IirLowShelf,
    IirNotch,
    IirPeak,
    TptFilter,
)
from oscen.gain import Add, Constant, Gain, Mixer, Multiply
from oscen.graph import Graph
from oscen.jit import CraneliftJit, GraphState
from oscen.midi import control_change, find_midi_input, note_off, note_on, pitch_bend
from oscen.noise import Noise
from oscen.oscillators import Oscillator
from oscen.reverb import Reverb

SR = 44100.0
SECOND = 44100
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BLOCKS = (441, 1000, 2500, 63, 4096)  # used in turn; 2500 and 4096 exceed max_block (1024)


def burst(graph: Graph, label: str = "src", amplitude: float = 0.5, seed: int = 3) -> object:
    """A noise source through an envelope (``label_env.gate`` events shape it); returns the VCA output."""
    noise = graph.add_node(Noise.white(amplitude, seed=seed), label)
    env = graph.add_node(AdsrEnvelope(0.001, 0.02, 0.0, 0.01), f"{label}_env")
    vca = graph.add_node(Multiply(0.0), f"{label}_vca")
    graph.connect(noise.output, vca.a)
    graph.connect(env.output, vca.b)
    return vca.output


# ---------------------------------------------------------------------------------------- the seed
def test_seed_graph_through_to_ir_and_compile() -> None:
    """The issue's graph: sine 440 -> IirLowpass(1000, 0.7) -> Gain(0.8), via exactly to_ir/compile."""

    def build() -> Graph:
        graph = Graph(SR)
        osc = graph.add_node(Oscillator.sine(440.0))
        filt = graph.add_node(IirLowpass(1000.0, 0.7))
        gain = graph.add_node(Gain(0.8))
        graph.connect(osc.output, filt.input)
        graph.connect(filt.output, gain.input)
        return graph

    expected = build().process_block(SECOND)
    graph = build()
    ir = graph.to_ir()
    compiled = CraneliftJit().compile(ir)
    state = GraphState.from_graph(graph)
    got = compiled.process_block(state, SECOND)
    assert got.shape == (SECOND,)
    assert 0.3 < np.abs(expected[SECOND // 2 :]).max() < 0.8
    assert_same(expected, got)
    # and in odd-sized blocks, with a cutoff sweep and a gain change in the middle
    actions = [
        set_value(11025, "IirLowpass#1.cutoff", 300.0, ramp=0.25),
        set_value(22050, "Gain#2.gain", 0.3),
        set_value(30000, "Oscillator#0.frequency", 660.0),
    ]
    assert_jit_same(build, SECOND, actions, blocks=BLOCKS)


# ---------------------------------------------------------------------------------------- oscillators
WAVEFORMS = [
    ("sine", False),
    ("saw", False),
    ("saw", True),
    ("square", False),
    ("square", True),
    ("triangle", False),
    ("triangle", True),
]


@pytest.mark.parametrize(
    ("waveform", "band_limited"), WAVEFORMS, ids=[f"{w}{'-bl' if b else ''}" for w, b in WAVEFORMS]
)
def test_oscillator(waveform: str, band_limited: bool) -> None:
    def build() -> Graph:
        graph = Graph(SR)
        osc = graph.add_node(
            Oscillator(220.0, 0.8, waveform, pulse_width=0.3, band_limited=band_limited, phase=0.1), "osc"
        )
        vibrato = graph.add_node(Oscillator.sine(5.0, 30.0), "vibrato")  # fm, Hz
        wobble = graph.add_node(Oscillator.triangle(0.7, 0.05), "wobble")  # pm, cycles
        graph.connect(vibrato.output, osc.fm)
        graph.connect(wobble.output, osc.pm)
        graph.set_output(osc.output)
        return graph

    actions = [
        set_value(4410, "osc.frequency", 8000.0, ramp=0.3),  # sweep into the band-limiting range
        set_value(4410, "osc.amplitude", 0.4, ramp=0.1),
        set_value(22050, "osc.frequency", -330.0),  # through zero: the phase runs backwards
        set_value(26000, "osc.pulse_width", 0.8, ramp=0.05),
        set_value(30000, "osc.frequency", 30000.0),  # above Nyquist: the BLEP width is clamped
        set_value(33000, "vibrato.amplitude", 0.0),
        set_value(36000, "osc.frequency", 97.0, ramp=0.01),
    ]
    # every waveform (the sine too: oscen.sine.sin_cycles, no math.sin) and the ramps are plain
    # float arithmetic: bit for bit
    assert_jit_same(build, SECOND, actions, blocks=BLOCKS, exact=True)


# ---------------------------------------------------------------------------------------- noise
@pytest.mark.parametrize(
    ("color", "gaussian"), [("white", False), ("white", True), ("pink", False), ("pink", True)]
)
def test_noise(color: str, gaussian: bool) -> None:
    def build() -> Graph:
        graph = Graph(SR)
        graph.add_node(Noise(0.5, color, gaussian, seed=1234), "noise")
        return graph

    actions = [set_value(10000, "noise.amplitude", 1.5), set_value(20000, "noise.amplitude", 0.1, ramp=0.2)]
    ref = assert_jit_same(build, SECOND, actions, blocks=BLOCKS)
    assert len(np.unique(ref)) > SECOND // 2


# ---------------------------------------------------------------------------------------- filters
BIQUADS = [
    IirLowpass(800.0, 2.0),
    IirHighpass(2000.0, 0.7),
    IirBandpass(1000.0, 4.0),
    IirNotch(1000.0, 1.0),
    IirPeak(1500.0, 2.0, 9.0),
    IirLowShelf.from_slope(300.0, 1.0, -6.0),
    IirHighShelf(3000.0, 0.9, 6.0),
]


@pytest.mark.parametrize("prototype", BIQUADS, ids=[type(f).__name__ for f in BIQUADS])
def test_biquad(prototype) -> None:
    cls = type(prototype)
    has_gain = hasattr(prototype, "gain_db")

    def build() -> Graph:
        graph = Graph(SR)
        src = graph.add_node(Noise.white(0.5, seed=7), "src")
        node = (
            cls(prototype.cutoff, prototype.q, prototype.gain_db)
            if has_gain
            else cls(prototype.cutoff, prototype.q)
        )
        filt = graph.add_node(node, "filter")
        graph.connect(src.output, filt.input)
        return graph

    actions = [
        set_value(5000, "filter.cutoff", 5000.0, ramp=0.2),  # coefficients recomputed every sample
        set_value(15000, "filter.q", 8.0),
        set_value(20000, "filter.cutoff", 30000.0),  # clamped to 0.49 fs
        set_value(25000, "filter.cutoff", 0.0),  # clamped to 0.01 Hz
        set_value(27000, "filter.cutoff", 440.0, ramp=0.05),
        set_value(27000, "filter.q", 0.0),  # clamped to MIN_Q
        set_value(35000, "filter.q", 0.5, ramp=0.1),
    ]
    if has_gain:
        actions += [
            set_value(12000, "filter.gain_db", -12.0, ramp=0.05),
            set_value(40000, "filter.gain_db", 3.0),
        ]
    assert_jit_same(build, SECOND, actions, blocks=BLOCKS)


def test_tpt_filter_all_outputs() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        src = graph.add_node(Oscillator.saw(110.0, 0.5, band_limited=True), "src")
        lfo = graph.add_node(Oscillator.sine(3.0, 600.0), "lfo")
        svf = graph.add_node(TptFilter(900.0, 3.0), "svf")
        graph.connect(src.output, svf.input)
        graph.connect(lfo.output, svf.cutoff_mod)  # audio-rate cutoff modulation
        graph.set_output(svf.lowpass, svf.bandpass, svf.highpass)
        return graph

    actions = [
        set_value(8000, "svf.cutoff", 4000.0, ramp=0.2),
        set_value(20000, "svf.q", 12.0),
        set_value(26000, "lfo.amplitude", 30000.0),  # pushes cutoff past both clamps
        set_value(32000, "svf.q", 0.3, ramp=0.1),
        set_value(32000, "src.frequency", 55.0),
    ]
    ref = assert_jit_same(build, SECOND, actions, blocks=BLOCKS)
    assert ref.shape == (3, SECOND)


# ---------------------------------------------------------------------------------------- gain & co
def test_gain_mixer_add_multiply_constant() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        a = graph.add_node(Oscillator.sine(330.0, 0.5), "a")
        b = graph.add_node(Oscillator.square(110.0, 0.3, band_limited=True), "b")
        line = graph.add_node(Constant(0.25), "line")
        mixer = graph.add_node(Mixer(3, levels=[0.5, 0.7, 1.0]), "mixer")
        graph.connect(a.output, mixer.input0)
        graph.connect(b.output, mixer.input1)
        graph.connect(a.output, mixer.input2)  # fan-out of a
        graph.connect(b.output, mixer.input2)  # and summing into input2
        offset = graph.add_node(Add(0.1), "offset")
        graph.connect(mixer.output, offset.a)
        vca = graph.add_node(Multiply(1.0), "vca")
        graph.connect(offset.output, vca.a)
        graph.connect(line.output, vca.b)  # a value input driven by a stream
        gain = graph.add_node(Gain.from_db(-3.0), "gain")
        graph.connect(vca.output, gain.input)
        arith = (a.output - b.output) * 0.5 + 0.25  # endpoint arithmetic: Add/Multiply nodes
        graph.set_output(gain.output, arith, mixer.output, line.output)
        return graph

    actions = [
        set_value(3000, "line.value", 1.0, ramp=0.5),  # a line
        set_value(6000, "mixer.level1", 0.0, ramp=0.01),
        set_value(9000, "mixer.level2", -1.0),
        set_value(12000, "offset.b", -0.3, ramp=0.1),
        set_value(15000, "gain.gain", 2.0),
        set_value(30000, "line.value", 0.0),  # cancels the running ramp
        set_value(30000, "line.value", 0.5, ramp=0.0001),  # 4 samples
    ]
    ref = assert_jit_same(build, SECOND, actions, blocks=BLOCKS)
    assert ref.shape == (4, SECOND)


# ---------------------------------------------------------------------------------------- envelope
def test_adsr_with_gate_events_mid_stream() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        osc = graph.add_node(Oscillator.triangle(220.0), "osc")
        env = graph.add_node(AdsrEnvelope(0.01, 0.05, 0.6, 0.1), "env")
        vca = graph.add_node(Multiply(0.0), "vca")
        graph.connect(osc.output, vca.a)
        graph.connect(env.output, vca.b)
        graph.set_output(vca.output, env.output)
        return graph

    gate = "env.gate"
    actions = [
        event(0, gate, 0.0, offset=10),  # note-off while idle: ignored
        event(0, gate, 0.8, offset=100),
        set_value(2000, "env.sustain", 0.3, ramp=0.05),  # sustain follows changes
        event(2000, gate, 1.5, offset=3000),  # retrigger at 5000 from the current level (clipped to 1)
        set_value(5000, "env.attack", 0.2),  # affects the next attack only
        event(8000, gate, 0.0, offset=1234),  # release
        event(10000, gate, 0.6, offset=5),  # retrigger during the release
        event(10000, gate, 0.0, offset=5),  # and off again at the same sample
        event(12000, gate, 0.9),
        set_value(12000, "env.decay", 0.0),  # zero-length decay
        set_value(12000, "env.attack", 0.0),  # zero-length attack: straight to sustain
        event(20000, gate, 0.0, offset=999),
        set_value(25000, "env.release", -1.0),  # negative = 0
        event(25000, gate, 1.0, offset=1),
        event(26000, gate, 0.0, offset=0),
        set_value(30000, "env.attack", 0.05),
        event(30000, gate, 0.7, offset=511),
        event(30000, gate, 0.7, offset=1023),
        event(30000, gate, 0.0, offset=5000),
    ]
    ref = assert_jit_same(build, SECOND, actions, blocks=BLOCKS)
    assert ref[1].max() >= 0.8


# ---------------------------------------------------------------------------------------- delay
def test_delay_with_feedback() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        src = burst(graph)
        echo = graph.add_node(Delay(0.05, feedback=0.6, max_delay=0.5), "echo")
        graph.connect(src, echo.input)
        graph.set_output(echo.output)
        return graph

    actions = [
        event(0, "src_env.gate", 1.0, offset=10),
        event(0, "src_env.gate", 0.0, offset=500),
        set_value(8000, "echo.delay_time", 0.0123456, ramp=0.1),  # fractional, swept
        set_value(13000, "echo.feedback", 0.95),
        event(13000, "src_env.gate", 1.0, offset=7),
        event(13000, "src_env.gate", 0.0, offset=300),
        set_value(20000, "echo.delay_time", 1.5 / SR),  # under two samples: linear interpolation
        set_value(24000, "echo.delay_time", 0.0),  # clamped to one sample
        set_value(28000, "echo.delay_time", 5.0),  # clamped to the line's capacity
        set_value(30000, "echo.delay_time", 0.2, ramp=0.05),
        set_value(30000, "echo.feedback", -2.0),  # clamped to -0.999
        event(31000, "src_env.gate", 1.0),
        event(31000, "src_env.gate", 0.0, offset=200),
    ]
    assert_jit_same(build, SECOND, actions, blocks=BLOCKS)


@pytest.mark.parametrize("junction", ["mixer", "add"])
def test_feedback_loop_through_a_delay(junction: str) -> None:
    """A cycle: filter -> delay -> back into the filter through a Mixer (or an Add)."""

    def build() -> Graph:
        graph = Graph(SR)
        src = burst(graph)
        loop_delay = graph.add_node(Delay(0.01, feedback=0.0, max_delay=0.1), "delay")
        if junction == "mixer":
            join = graph.add_node(Mixer(2, levels=[1.0, 0.7]), "join")
            graph.connect(src, join.input0)
            graph.connect(loop_delay.output, join.input1)
        else:
            join = graph.add_node(Add(0.0), "join")
            graph.connect(src, join.a)
            graph.connect(loop_delay.output, join.b)  # a value input fed back from the delay
        filt = graph.add_node(IirLowpass(2000.0, 0.9), "filter")
        graph.connect(join.output, filt.input)
        graph.connect(filt.output, loop_delay.input)  # closes the cycle
        graph.set_output(filt.output, loop_delay.output)
        return graph

    ir = build().to_ir()
    assert any(c.back_edge for c in ir.connections), "the cycle should have a back edge"
    actions = [
        event(0, "src_env.gate", 1.0, offset=50),
        event(0, "src_env.gate", 0.0, offset=400),
        set_value(10000, "delay.delay_time", 0.0031, ramp=0.1),
        set_value(15000, "filter.cutoff", 600.0, ramp=0.05),
        event(20000, "src_env.gate", 1.0, offset=3),
        event(20000, "src_env.gate", 0.0, offset=100),
        set_value(25000, "delay.delay_time", 1.0 / SR),  # the shortest loop: one sample
        set_value(35000, "delay.delay_time", 0.02),
    ]
    if junction == "mixer":
        actions.append(set_value(30000, "join.level1", 0.9, ramp=0.02))
    assert_jit_same(build, SECOND, actions, blocks=BLOCKS)


# ---------------------------------------------------------------------------------------- reverb
@pytest.mark.parametrize("stereo_input", [False, True], ids=["mono-in", "stereo-in"])
def test_reverb_stereo(stereo_input: bool) -> None:
    def build() -> Graph:
        graph = Graph(SR)
        src = burst(graph)
        rev = graph.add_node(Reverb(0.8, 0.3, 0.4, 0.5, 1.0, stereo_input=stereo_input), "reverb")
        graph.connect(src, rev.input)
        if stereo_input:
            right = graph.add_node(Oscillator.saw(330.0, 0.2), "right")
            graph.connect(right.output, rev.input_right)
        graph.set_output(rev.left, rev.right)
        return graph

    actions = [
        event(0, "src_env.gate", 1.0, offset=20),
        event(0, "src_env.gate", 0.0, offset=2000),
        set_value(10000, "reverb.room_size", 0.95, ramp=0.1),
        set_value(15000, "reverb.damping", 0.9),
        set_value(20000, "reverb.width", 0.0, ramp=0.2),
        set_value(25000, "reverb.wet", 1.0),
        set_value(25000, "reverb.dry", 0.0, ramp=0.01),
        event(30000, "src_env.gate", 1.0, offset=11),
        event(30000, "src_env.gate", 0.0, offset=211),
        set_value(35000, "reverb.room_size", 2.0),  # clamped to 1
    ]
    ref = assert_jit_same(build, SECOND, actions, blocks=BLOCKS, engines=("state",))
    assert ref.shape == (2, SECOND)
    assert not np.allclose(ref[0], ref[1])


# ---------------------------------------------------------------------------------------- MIDI
def _load_polysynth():
    name = "oscen_example_polysynth"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / "polysynth.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # the JIT reads node source through the module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_polysynth_example_with_four_voices() -> None:
    polysynth = _load_polysynth()

    def build() -> Graph:
        return polysynth.patch(SR, voices=4)

    midi = find_midi_input(build())
    midi_ref = f"{midi.node_label}.midi"
    notes = [
        (0, 50, note_on(57, 100)),
        (0, 50, note_on(60, 90)),
        (4096, 100, note_on(64, 110)),
        (8000, 0, note_on(69, 127)),
        (8000, 1, note_on(72, 80)),  # a fifth note on four voices: steals the oldest
        (12000, 17, pitch_bend(5000)),
        (12000, 18, control_change(64, 127)),  # sustain pedal down
        (16000, 0, note_off(60)),  # held by the pedal
        (16000, 1, note_off(57)),  # stolen earlier: ignored
        (20000, 333, control_change(64, 0)),  # pedal up: 60 releases
        (24000, 0, note_off(64)),
        (24000, 0, note_off(69)),
        (24000, 0, note_on(48, 60, channel=3)),
        (30000, 900, pitch_bend(0, channel=3)),
        (34000, 2, note_off(72)),
        (36000, 0, control_change(123, 0, channel=3)),  # all notes off on channel 3
    ]
    actions = [event(at, midi_ref, fields, offset=offset) for at, offset, fields in notes]
    actions.append(set_value(14000, "voices.bend_range", 12.0))
    actions.append(set_value(26000, "reverb.room_size", 0.3, ramp=0.1))
    ref = assert_jit_same(build, SECOND, actions, blocks=BLOCKS)
    assert ref.shape == (2, SECOND)
    assert np.abs(ref).max() > 0.05


def test_demo_patch() -> None:
    from oscen.demo import demo_patch

    def build() -> Graph:
        return demo_patch(SR, events=True)  # the song's events are queued on the graph

    n = SECOND
    actions = [
        set_value(15000, "lfo.frequency", 3.0, ramp=0.2),
        set_value(25000, "echo.feedback", 0.8),
        set_value(30000, "svf.q", 6.0, ramp=0.1),
        event(35000, "lead_pitch.note", 880.0, offset=17),
        event(35000, "amp_env.gate", 1.0, offset=17),
    ]
    ref = assert_jit_same(build, n, actions, blocks=BLOCKS, engines=("state",))
    assert ref.shape == (2, n)
