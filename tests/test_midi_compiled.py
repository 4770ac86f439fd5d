"""Compiled mode: MIDI graphs run by the JIT match the interpreter within 1e-9.

``oscen.graph.jit.JitGraph(graph)`` has the interpreted Graph's running API (``process_block``,
``queue_event``, ``frame``, ``sample_rate``). It falls back to the interpreter when node code is
outside the compilable subset, so these tests insist on compiled mode: they also check that
MidiParser, the generated VoiceAllocator classes and the relays stay inside the subset.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import mido
import numpy as np
import pytest
from midi_support import envelope_voice

from oscen.graph import Graph
from oscen.midi import control_change, note_off, note_on, pitch_bend, poly_voices, render_midi
from oscen.midi.subgraph import SubGraph

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOLERANCE = 1e-9


class Compiled:
    """A JitGraph that must really run compiled code (no silent interpreter fallback)."""

    def __init__(self, graph: Graph) -> None:
        from oscen.graph.jit import JitGraph

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
