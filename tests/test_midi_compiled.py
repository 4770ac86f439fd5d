"""Compiled mode: MIDI graphs run by the JIT match the interpreter within 1e-9.

``oscen.jit.JitGraph(graph)`` has the interpreted Graph's running API (``process_block``,
``queue_event``, ``frame``, ``sample_rate``). It falls back to the interpreter when node code is
outside the compilable subset, so these tests insist on compiled mode: they also check that
MidiParser, the generated VoiceAllocator classes and the relays stay inside the subset.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import mido
import numpy as np
import pytest
from midi_support import envelope_voice

from oscen.graph import EventInput, EventOutput, Graph, Node, StreamOutput
from oscen.midi import MidiParser, control_change, note_off, note_on, pitch_bend, poly_voices, render_midi
from oscen.midi.subgraph import SubGraph

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOLERANCE = 1e-9


class Compiled:
    """A JitGraph that must really run compiled code (no silent interpreter fallback)."""

    def __init__(self, graph: Graph) -> None:
        from oscen.jit import JitGraph

        self.jit = JitGraph(graph, background=False)
        if not self.jit.wait_compiled(timeout=60.0):
            raise AssertionError(f"the graph did not compile: {self.jit.last_error!r}")
        self.sample_rate = self.jit.sample_rate

    @property
    def frame(self) -> int:
        return self.jit.frame

    def queue_event(self, endpoint, frame_offset, payload) -> None:
        self.jit.queue_event(endpoint, frame_offset, payload)

    def process_block(self, n: int) -> np.ndarray:
        out = self.jit.process_block(n)
        assert self.jit.mode == "compiled", f"fell back to the interpreter: {self.jit.last_error!r}"
        return out


def jit_graph(graph: Graph) -> Compiled:
    return Compiled(graph)


def both(build: Callable[[], tuple[Graph, object]], events: list[tuple[int, tuple[float, ...]]], n: int):
    """Render ``n`` samples of two identically built graphs, interpreted and compiled."""
    graph, midi = build()
    for frame, fields in events:
        graph.queue_event(midi, frame, fields)
    expected = graph.process_block(n)
    graph2, midi2 = build()
    compiled = jit_graph(graph2)
    for frame, fields in events:
        compiled.queue_event(midi2, frame, fields)
    got = compiled.process_block(n)
    return expected, np.asarray(got)


def envelope_synth(voices: int = 2) -> Callable[[], tuple[Graph, object]]:
    def build() -> tuple[Graph, object]:
        graph = Graph(1000.0)
        synth = poly_voices(graph, envelope_voice, voices)
        graph.set_output(synth.output)
        return graph, synth.midi

    return build


@pytest.mark.parametrize("k", [0, 37, 300])
def test_note_on_at_frame_k_compiled(k: int) -> None:
    expected, got = both(envelope_synth(), [(k, note_on(60, 127))], k + 20)
    assert np.all(got[:k] == 0.0) and got[k] == 1.0
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_allocator_stealing_bend_and_sustain_compiled() -> None:
    def build() -> tuple[Graph, object]:
        graph = Graph(1000.0)
        synth = poly_voices(graph, envelope_voice, 3)
        alloc = synth.allocator
        graph.set_output(synth.output, *(getattr(alloc, f"pitch{k}") for k in range(3)))
        return graph, synth.midi

    events = [
        (1, note_on(60, 100)),
        (2, note_on(64, 90)),
        (2, note_on(67, 80, channel=1)),
        (4, note_on(72, 127)),  # steals voice 0
        (5, note_off(60)),  # stolen: ignored
        (6, pitch_bend(4096, channel=0)),
        (7, control_change(64, 127)),
        (8, note_off(64)),  # held by the pedal
        (9, note_on(64, 50)),  # retrigger of a pedal-held note
        (11, control_change(64, 0)),
        (12, note_off(72)),
        (13, (0x90, 48, 0)),  # velocity-0 note-on of a note not playing
        (14, control_change(123, 0, channel=1)),
    ]
    expected, got = both(build, events, 20)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def _load_polysynth():
    spec = importlib.util.spec_from_file_location("oscen_example_polysynth", EXAMPLES / "polysynth.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the JIT reads node source through the module
    spec.loader.exec_module(module)
    return module


def test_polysynth_with_four_voices_compiled() -> None:
    polysynth = _load_polysynth()

    def build() -> tuple[Graph, object]:
        from oscen.midi import find_midi_input

        graph = polysynth.patch(22050.0, voices=4)
        return graph, find_midi_input(graph)

    events = [
        (10, note_on(57, 100)),
        (10, note_on(60, 90)),
        (200, note_on(64, 110)),
        (400, note_on(69, 127)),
        (900, note_on(72, 80)),  # a fifth note on four voices: steals 57
        (1500, pitch_bend(-3000)),
        (2000, note_off(60)),
        (2500, note_off(64)),
        (3000, note_off(69)),
        (3000, note_off(72)),
    ]
    expected, got = both(build, events, 4000)
    assert np.abs(expected).max() > 0.01
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_render_midi_drives_the_jit_graph_like_the_interpreter(tmp_path: Path) -> None:
    mid = mido.MidiFile(ticks_per_beat=48)
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=250_000, time=0),
                mido.Message("note_on", note=60, velocity=100, time=5),
                mido.MetaMessage("set_tempo", tempo=400_000, time=20),
                mido.Message("note_on", note=62, velocity=70, time=7),
                mido.Message("note_off", note=60, time=30),
                mido.Message("note_off", note=62, time=11),
            ]
        )
    )
    path = tmp_path / "tiny.mid"
    mid.save(path)
    graph, midi = envelope_synth()()
    expected = render_midi(graph, midi, path, block_size=64, tail_seconds=0.05)
    graph2, midi2 = envelope_synth()()
    got = render_midi(jit_graph(graph2), midi2, path, block_size=64, tail_seconds=0.05)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_fan_out_relays_compile() -> None:
    def build() -> tuple[Graph, object]:
        from oscen.envelopes import AdsrEnvelope
        from oscen.gain import Add
        from oscen.midi import MidiParser, VoiceAllocator

        graph = Graph(1000.0)
        parser = graph.add_node(MidiParser())
        alloc = graph.add_node(VoiceAllocator(1))
        graph.connect(parser.note_on, alloc.note_on)
        graph.connect(parser.note_off, alloc.note_off)
        env1 = graph.add_node(AdsrEnvelope(0.005, 0.0, 1.0, 0.003))
        env2 = graph.add_node(AdsrEnvelope(0.0, 0.01, 0.5, 0.0))
        pitch = graph.add_node(Add())
        total = graph.add_node(Add())
        sub = SubGraph(graph, inputs={"gate": [env1.gate, env2.gate], "pitch": [pitch.b, total.b]})
        graph.connect(alloc.gate0, sub.gate)  # relays
        graph.connect(alloc.pitch0, sub.pitch)
        graph.connect(env1.output, total.a)
        graph.connect(env2.output, pitch.a)
        graph.set_output(total.output, pitch.output)
        return graph, parser.midi

    events = [(3, note_on(69, 127)), (12, note_off(69)), (15, note_on(57, 60))]
    expected, got = both(build, events, 30)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


class Malformer(Node):
    """Sends the MidiParser one malformed (status, data1, data2) per ``go`` event.

    ``go`` carries finite fields and a ``poison`` code that swaps one field for NaN (1..3), inf
    (4..6) or -inf (7..9), made by arithmetic inside the node: no validation in front of the graph
    can stop them, exactly like a patch whose own code computes a bad MIDI byte.
    """

    go = EventInput()
    midi = EventOutput()

    def __init__(self) -> None:
        self.huge = 1e300

    def on_go(self, status: float, data1: float, data2: float, poison: float) -> None:
        inf = self.huge * self.huge
        bad = inf
        if poison >= 7.0:
            bad = -inf
        elif poison <= 3.0:
            bad = inf - inf  # NaN
        which = poison
        if poison >= 7.0:
            which = poison - 6.0
        elif poison >= 4.0:
            which = poison - 3.0
        if poison == 0.0:
            which = 0.0
        if which == 1.0:
            status = bad
        elif which == 2.0:
            data1 = bad
        elif which == 3.0:
            data2 = bad
        self.midi.emit(status, data1, data2)

    def process(self, sample_rate: float) -> None:
        pass


class Tally(Node):
    """Counts every typed event the parser emits and keeps the sum of their first two fields."""

    note_on = EventInput()
    note_off = EventInput()
    control = EventInput()
    bend = EventInput()
    touch = EventInput()
    program = EventInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.count = 0.0
        self.total = 0.0

    def on_note_on(self, a: float, b: float, c: float) -> None:
        self.count += 1.0
        self.total += a + b

    def on_note_off(self, a: float, b: float, c: float) -> None:
        self.count += 1.0
        self.total += a + b

    def on_control(self, a: float, b: float, c: float) -> None:
        self.count += 1.0
        self.total += a + b

    def on_bend(self, a: float, b: float) -> None:
        self.count += 1.0
        self.total += a

    def on_touch(self, a: float, b: float) -> None:
        self.count += 1.0
        self.total += a

    def on_program(self, a: float, b: float) -> None:
        self.count += 1.0
        self.total += a

    def process(self, sample_rate: float) -> None:
        self.output = self.count * 1000.0 + self.total


MALFORMED = [
    # (status, data1, data2, poison): every one must be dropped by the parser, in both engines
    (1e20, 60.0, 100.0, 0.0),
    (-1e20, 60.0, 100.0, 0.0),
    (144.0, 1e20, 100.0, 0.0),
    (144.0, 60.0, 1e20, 0.0),
    (224.0, 0.0, 1e20, 0.0),  # pitch bend
    (176.0, -1e20, 64.0, 0.0),  # control change
    (144.0, 60.0, 100.0, 1.0),  # NaN status
    (144.0, 60.0, 100.0, 2.0),  # NaN note
    (144.0, 60.0, 100.0, 3.0),  # NaN velocity
    (144.0, 60.0, 100.0, 4.0),  # inf status
    (144.0, 60.0, 100.0, 5.0),
    (144.0, 60.0, 100.0, 6.0),
    (144.0, 60.0, 100.0, 7.0),  # -inf status
    (144.0, 60.0, 100.0, 8.0),
    (224.0, 0.0, 64.0, 9.0),
    (-144.0, 60.0, 100.0, 0.0),
    (144.0, -1.0, 100.0, 0.0),
    (144.0, -0.5, 100.0, 0.0),  # int() would make it 0
    (144.0, 60.0, -1.0, 0.0),
    (144.0, 128.0, 100.0, 0.0),
    (144.0, 60.0, 127.5, 0.0),  # int() would make it 127
    (144.5, 60.0, 100.0, 0.0),  # not a byte
    (127.0, 60.0, 100.0, 0.0),  # a data byte, not a status
    (240.0, 60.0, 100.0, 0.0),  # a system message
]


def _malformed_graph() -> tuple[Graph, object]:
    graph = Graph(1000.0)
    source = graph.add_node(Malformer())
    parser = graph.add_node(MidiParser())
    tally = graph.add_node(Tally())
    graph.connect(source.midi, parser.midi)
    for out, into in [
        (parser.note_on, tally.note_on),
        (parser.note_off, tally.note_off),
        (parser.control_change, tally.control),
        (parser.pitch_bend, tally.bend),
        (parser.aftertouch, tally.touch),
        (parser.program_change, tally.program),
    ]:
        graph.connect(out, into)
    graph.set_output(tally.output)
    return graph, source.go


def test_malformed_fields_are_dropped_alike_and_the_graph_stays_compiled() -> None:
    """Out-of-range, non-finite and fractional fields: no OverflowError in compiled code, no
    ValueError from int(nan) in the interpreter; both drop them, and JitGraph keeps its code."""
    events = [(i, fields) for i, fields in enumerate(MALFORMED)]
    n = len(MALFORMED)
    events.append((n, (0x90 + 2, 61.0, 127.0, 0.0)))  # then a valid note-on still plays
    events.append((n + 1, (0xE0, 0.0, 64.0, 0.0)))  # and a centred bend
    expected, got = both(_malformed_graph, events, n + 4)
    assert np.all(expected[:n] == 0.0), "a malformed message got through the interpreter"
    assert expected[n] == 1000.0 + 61.0 + 1.0 and expected[n + 1] == 2000.0 + 62.0
    np.testing.assert_array_equal(got, expected)


def test_a_malformed_message_keeps_jit_graph_compiled() -> None:
    """After the malformed burst the same JitGraph compiles no fallback and reports no error."""
    from oscen.jit import JitGraph

    graph, go = _malformed_graph()
    jit = JitGraph(graph, background=False)
    try:
        assert jit.wait_compiled(timeout=60.0), jit.last_error
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a JitFallbackWarning would fail the test
            for fields in MALFORMED:
                jit.queue_event(go, 0, fields)
                jit.process_block(2)
            jit.queue_event(go, 1, (0x90, 60.0, 127.0, 0.0))
            out = jit.process_block(4)
        assert jit.mode == "compiled" and jit.last_error is None
        np.testing.assert_array_equal(out, [0.0, 1061.0, 1061.0, 1061.0])
    finally:
        jit.close()


def test_render_midi_to_file_streams_the_jit_graph_like_the_interpreter(tmp_path: Path) -> None:
    from oscen.io import read_wav
    from oscen.midi import render_midi_to_file

    mid = mido.MidiFile(ticks_per_beat=48)
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.Message("note_on", note=60, velocity=100, time=5),
                mido.Message("note_on", note=62, velocity=70, time=7),
                mido.Message("note_off", note=60, time=30),
                mido.Message("note_off", note=62, time=11),
            ]
        )
    )
    path = tmp_path / "tiny.mid"
    mid.save(path)
    graph, midi = envelope_synth()()
    expected = render_midi(graph, midi, path, block_size=64, tail_seconds=0.05)
    graph2, midi2 = envelope_synth()()
    result = render_midi_to_file(
        jit_graph(graph2), midi2, path, tmp_path / "tiny.wav", block_size=64, tail_seconds=0.05
    )
    back, _ = read_wav(result.path)
    np.testing.assert_allclose(back, expected, rtol=0, atol=1e-7)  # float32 on disk


def test_a_long_compiled_midi_render_to_a_file_holds_one_block_not_the_signal(tmp_path: Path) -> None:
    """60 s at 44.1 kHz through the compiled engine: 21 MB of float64 signal, streamed in a few hundred kB."""
    import tracemalloc

    from oscen.midi import render_midi_to_file

    mid = mido.MidiFile(type=0, ticks_per_beat=96)
    track = mido.MidiTrack()
    for i in range(120):
        track.append(mido.Message("note_on", note=60 + i % 12, velocity=100, time=0 if i == 0 else 48))
        track.append(mido.Message("note_off", note=60 + i % 12, time=48))
    mid.tracks.append(track)
    song = tmp_path / "long.mid"
    mid.save(song)

    graph = Graph(44100.0)
    synth = poly_voices(graph, envelope_voice, 2)
    graph.set_output(synth.output)
    engine = jit_graph(graph)
    engine.process_block(1)
    seconds = 60
    full = seconds * 44100 * 8
    tracemalloc.start()
    try:
        result = render_midi_to_file(
            engine, synth.midi, song, tmp_path / "long.wav", seconds=seconds, block_size=2048, progress=False
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.frames == seconds * 44100 and engine.jit.mode == "compiled"
    assert peak < full / 20, f"peak {peak / 1e6:.2f} MB while streaming a {full / 1e6:.0f} MB signal"
