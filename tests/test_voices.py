"""The VoiceAllocator: free-voice order, stealing, release, retrigger, pitch, bend, sustain."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from midi_support import SR, Recorder, record

from oscen.graph import EventOutput, Graph, Node, StreamOutput
from oscen.midi import MidiParser, VoiceAllocator, control_change, note_off, note_on, pitch_bend
from oscen.midi.voices import GATE_QUEUE, generated_source, voice_allocator_class


def hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


class Rig:
    """MidiParser -> VoiceAllocator(n), a Recorder on every gate, the pitches as graph outputs."""

    def __init__(self, n: int = 4) -> None:
        self.graph = Graph(SR)
        self.parser = self.graph.add_node(MidiParser())
        self.alloc = self.graph.add_node(VoiceAllocator(n))
        for name in ("note_on", "note_off", "pitch_bend", "control_change"):
            self.graph.connect(getattr(self.parser, name), getattr(self.alloc, name))
        self.gates: list[Recorder] = [record(self.graph, getattr(self.alloc, f"gate{k}")) for k in range(n)]
        self.graph.set_output(*(getattr(self.alloc, f"pitch{k}") for k in range(n)))
        self.pitches = np.zeros((n, 0))

    def play(self, *events: tuple[int, tuple[float, ...]], frames: int = 1) -> None:
        """Queue events at offsets from now, then run ``frames`` samples (recording the pitches)."""
        for offset, fields in events:
            self.graph.queue_event(self.parser.midi, offset, fields)
        self.pitches = np.concatenate([self.pitches, self.graph.process_block(frames)], axis=1)

    def gate_log(self) -> list[tuple[int, int, float]]:
        """All gate events as (frame, voice, velocity), in time then voice order."""
        return sorted((t, k, fields[0]) for k, rec in enumerate(self.gates) for t, fields in rec.log)

    def voice_of_last_on(self) -> int:
        return max(((t, k) for t, k, v in self.gate_log() if v > 0))[1]


def test_generated_class_per_voice_count_with_source() -> None:
    a = VoiceAllocator(3)
    assert type(a).__name__ == "VoiceAllocator3"
    assert isinstance(a, VoiceAllocator)
    assert type(VoiceAllocator(3)) is type(a) is voice_allocator_class(3)
    names = list(type(a).endpoints())
    assert [n for n in names if n[-1].isdigit()] == [
        "gate0", "pitch0", "gate1", "pitch1", "gate2", "pitch2",
    ]  # fmt: skip
    # The JIT compiles from source: the generated methods and class must have it.
    src = inspect.getsource(type(a)._emit_gate)
    assert "self.gate2.emit(velocity)" in src
    assert inspect.getsource(type(a)) == generated_source(3)
    assert "self.pitch2 = hz" in inspect.getsource(type(a)._set_pitch)
    with pytest.raises(ValueError, match="1..256"):
        VoiceAllocator(0)
    with pytest.raises(TypeError, match="how many voices"):
        VoiceAllocator()
    with pytest.raises(ValueError, match="has 3 voices"):
        voice_allocator_class(3)(4)


def test_free_voices_in_order_then_released_longest_ago_first() -> None:
    rig = Rig(4)
    rig.play((0, note_on(60, 100)), (1, note_on(62, 100)), (2, note_on(64, 100)), frames=3)
    assert [k for _, k, _ in rig.gate_log()] == [0, 1, 2]
    rig.play((0, note_off(62)), (1, note_off(60)), frames=2)  # voice 1 released, then voice 0
    assert rig.gate_log()[-2:] == [(3, 1, 0.0), (4, 0, 0.0)]
    rig.play((0, note_on(65, 100)))
    assert rig.voice_of_last_on() == 3  # never used: counts as released longest ago
    rig.play((0, note_on(67, 100)))
    assert rig.voice_of_last_on() == 1  # released before voice 0
    rig.play((0, note_on(69, 100)))
    assert rig.voice_of_last_on() == 0


def test_stealing_takes_the_oldest_note_with_pitch_and_gate_at_the_same_sample() -> None:
    rig = Rig(3)
    rig.play((0, note_on(60, 100)), (1, note_on(62, 100)), (2, note_on(64, 100)), frames=5)
    # Retrigger the oldest note (60): it becomes the youngest, so 62 (voice 1) is now the oldest.
    rig.play((0, note_on(60, 90)), frames=2)
    rig.play((0, note_on(72, 127)), frames=3)
    t, k, v = rig.gate_log()[-1]
    assert (k, v) == (1, 1.0)
    assert t == 7
    # The pitch changes at the very sample of the new gate, not before, not after.
    assert rig.pitches[1, 6] == pytest.approx(hz(62))
    assert rig.pitches[1, 7] == pytest.approx(hz(72))
    # No release was sent to the stolen voice: the envelope continues from its level.
    assert [e for e in rig.gate_log() if e[1] == 1] == [(1, 1, 100 / 127), (7, 1, 1.0)]
    # The stolen note's note-off finds no voice and is ignored; 72's releases voice 1.
    rig.play((0, note_off(62)), frames=1)
    assert rig.gate_log()[-1] == (7, 1, 1.0)
    rig.play((0, note_off(72)), frames=1)
    assert rig.gate_log()[-1] == (11, 1, 0.0)


def test_steal_when_all_voices_sound_in_arrival_order() -> None:
    rig = Rig(2)
    notes = [60, 62, 64, 65, 67]
    rig.play(*((i, note_on(n, 100)) for i, n in enumerate(notes)), frames=len(notes))
    assert [k for _, k, _ in rig.gate_log()] == [0, 1, 0, 1, 0]
    assert rig.pitches[:, -1] == pytest.approx([hz(67), hz(65)])


def test_release_picks_the_voice_holding_the_note() -> None:
    rig = Rig(4)
    rig.play(*((0, note_on(n, 100)) for n in (60, 64, 67, 71)), frames=1)
    rig.play((0, note_off(67)), frames=1)
    assert rig.gate_log()[-1] == (1, 2, 0.0)
    rig.play((0, note_off(67)), (0, note_off(50)), frames=1)  # already released / never played
    assert len(rig.gate_log()) == 5


def test_retrigger_reuses_the_sounding_voice() -> None:
    rig = Rig(4)
    rig.play((0, note_on(60, 64)), (3, note_on(60, 127)), frames=5)
    assert rig.gate_log() == [(0, 0, 64 / 127), (3, 0, 1.0)]
    rig.play((0, note_off(60)), frames=1)
    assert rig.gate_log()[-1] == (5, 0, 0.0)


def test_same_note_on_two_channels_takes_two_voices() -> None:
    rig = Rig(4)
    rig.play((0, note_on(60, 100, channel=0)), (0, note_on(60, 100, channel=1)), frames=1)
    assert [k for _, k, _ in rig.gate_log()] == [0, 1]
    rig.play((0, note_off(60, channel=1)), frames=1)
    assert rig.gate_log()[-1] == (1, 1, 0.0)


def test_pitch_in_equal_temperament() -> None:
    rig = Rig(2)
    rig.play((0, note_on(69, 100)), (0, note_on(60, 100)), frames=2)
    assert rig.pitches[0, 0] == 440.0
    assert rig.pitches[1, 0] == pytest.approx(261.6255653005986, rel=1e-12)


def test_pitch_bend_per_channel_and_range() -> None:
    rig = Rig(3)
    rig.play((0, note_on(69, 100, 0)), (0, note_on(60, 100, 1)), (0, note_on(64, 100, 0)), frames=1)
    rig.play((0, pitch_bend(8191, channel=0)), frames=1)  # +1: two semitones up (default range)
    assert rig.pitches[:, -1] == pytest.approx([hz(71), hz(60), hz(66)])
    rig.play((0, pitch_bend(-4096, channel=1)), frames=1)
    assert rig.pitches[1, -1] == pytest.approx(hz(59))
    rig.graph.set_value(rig.alloc.bend_range, 12.0)  # retunes at the next sample
    rig.play(frames=1)
    assert rig.pitches[:, -1] == pytest.approx([hz(81), hz(54), hz(76)])
    # A released voice keeps following the bend (its release tail), and a new note starts bent.
    rig.play((0, note_off(69, channel=0)), (1, pitch_bend(0, channel=0)), (2, pitch_bend(-8192, 0)), frames=3)
    assert rig.pitches[:, -2] == pytest.approx([hz(69), hz(54), hz(64)])
    rig.play((0, note_on(67, 90, 0)), frames=1)
    assert rig.gate_log()[-1][1] == 0  # the released voice 0 was the only free one
    assert rig.pitches[:, -1] == pytest.approx([hz(67 - 12), hz(54), hz(64 - 12)])


def test_sustain_pedal_defers_note_offs() -> None:
    rig = Rig(3)
    rig.play((0, control_change(64, 127)), (0, note_on(60, 100)), (1, note_off(60)), frames=3)
    assert rig.gate_log() == [(0, 0, 100 / 127)]
    # Replaying a pedal-held note reuses its voice.
    rig.play((0, note_on(60, 80)), (0, note_on(62, 80)), (0, note_off(60)), (0, note_off(62)), frames=1)
    assert [k for _, k, _ in rig.gate_log()] == [0, 0, 1]
    rig.play((0, control_change(64, 0)), frames=1)
    assert rig.gate_log()[-2:] == [(4, 0, 0.0), (4, 1, 0.0)]


def test_all_notes_off() -> None:
    rig = Rig(3)
    rig.play(*((0, note_on(n, 100)) for n in (60, 62, 64)), frames=1)
    rig.play((0, control_change(123, 0)), frames=1)
    assert sorted(rig.gate_log()[-3:]) == [(1, 0, 0.0), (1, 1, 0.0), (1, 2, 0.0)]


def test_sixteen_voices() -> None:
    rig = Rig(16)
    rig.play(*((i, note_on(40 + i, 100)) for i in range(17)), frames=17)
    assert [k for _, k, _ in rig.gate_log()] == [*range(16), 0]
    assert rig.pitches[0, -1] == pytest.approx(hz(56))
    assert math.isclose(rig.pitches[15, -1], hz(55))


def test_several_gates_of_one_voice_at_one_sample_arrive_in_order() -> None:
    """The handlers queue gates and process emits them at the same sample, in the order decided."""
    rig = Rig(2)
    rig.play((0, note_on(60, 100)), (0, note_off(60)), (0, note_on(60, 50)), (0, note_on(62, 127)), frames=2)
    assert [(t, k) for t, k, _ in rig.gate_log()] == [(0, 0), (0, 0), (0, 0), (0, 1)]
    # The node handles its note_on input's events before its note_off input's (input order).
    assert [fields[0] for _, fields in rig.gates[0].log] == [100 / 127, 50 / 127, 0.0]
    rig.play((0, control_change(64, 127)), (0, note_on(64, 100)), (1, note_off(64)), frames=2)
    assert rig.gate_log()[-1] == (2, 0, 100 / 127)  # the free voice; its note-off is held by the pedal
    rig.play((0, control_change(64, 0)), (1, control_change(123, 0)), frames=2)
    assert rig.gate_log()[-2:] == [(4, 0, 0.0), (5, 1, 0.0)]  # pedal up releases 64, all-notes-off 62


class Flood(Node):
    """Sends ``count`` note-ons (distinct keys over the 16 channels) at its first sample."""

    note_on = EventOutput()
    output = StreamOutput()

    def __init__(self, count: int) -> None:
        self.count = count
        self.sent = 0

    def process(self, sample_rate: float) -> None:
        if self.sent == 0:
            for i in range(self.count):
                self.note_on.emit(float(i % 128), 1.0, float(i // 128))
            self.sent = 1


def test_more_gates_at_one_sample_than_the_queue_holds_is_a_clear_error() -> None:
    graph = Graph(SR)
    flood = graph.add_node(Flood(GATE_QUEUE + 1))
    alloc = graph.add_node(VoiceAllocator(4))
    graph.connect(flood.note_on, alloc.note_on)
    graph.set_output(alloc.pitch0)
    with pytest.raises(AssertionError, match="more than GATE_QUEUE"):
        graph.process_block(1)


def allocator_program_size(voices: int) -> int:
    """WAT size of MidiParser -> VoiceAllocator(voices) -> one envelope per gate."""
    from oscen.envelopes import AdsrEnvelope
    from oscen.gain import Gain
    from oscen.jit import CraneliftJit

    graph = Graph(SR)
    parser = graph.add_node(MidiParser())
    alloc = graph.add_node(VoiceAllocator(voices))
    for name in ("note_on", "note_off", "pitch_bend", "control_change"):
        graph.connect(getattr(parser, name), getattr(alloc, name))
    mix = graph.add_node(Gain(1.0))
    for k in range(voices):
        env = graph.add_node(AdsrEnvelope())
        graph.connect(getattr(alloc, f"gate{k}"), env.gate)
        graph.connect(env.output, mix.input)
    graph.set_output(mix.output)
    return len(CraneliftJit().program(graph.to_ir()).wat)


def test_the_compiled_allocator_grows_by_one_dispatch_per_voice() -> None:
    """``_emit_gate`` is pasted into its caller (emitting code cannot be out of line): with gates
    emitted from five places the allocator's WAT grew ~10 KB per voice (~300 KB for 16). Emitted
    from one place, one voice adds its two dispatch leaves and its pitch's save/restore lines."""
    per_voice = (allocator_program_size(40) - allocator_program_size(8)) / 32
    assert per_voice < 3000, f"{per_voice:.0f} bytes of WAT per voice"


def allocator_synth(voices: int) -> Graph:
    """MidiParser -> VoiceAllocator -> envelope voices, with every voice's pitch as an output."""
    from midi_support import envelope_voice

    from oscen.midi import poly_voices

    graph = Graph(SR)
    synth = poly_voices(graph, lambda g: envelope_voice(g, attack=0.003), voices)
    alloc = synth.allocator
    graph.set_output(synth.output, *(getattr(alloc, f"pitch{k}") for k in range(voices)))
    return graph


@pytest.mark.parametrize(("voices", "blocks"), [(3, 64), (5, [1, 13, 200])])
def test_allocator_compiled_equals_interpreted_on_random_midi(voices: int, blocks) -> None:
    """Chords, steals, retriggers, velocity-0 note-ons, two channels, bends, the sustain pedal and
    all-notes-off at random frames (several at one frame), and a bend range change: the compiled
    allocator gates and tunes its voices exactly as the interpreter does."""
    from jit_support import assert_jit_same, event, set_value

    rng = np.random.default_rng(voices)
    actions = []
    for _ in range(70):
        at, ch, r, note = (
            int(rng.integers(0, 600)),
            int(rng.integers(0, 2)),
            rng.random(),
            int(rng.integers(60, 67)),
        )
        if r < 0.4:
            msg = note_on(note, int(rng.choice([0, 1, 64, 127])), channel=ch)
        elif r < 0.7:
            msg = note_off(note, channel=ch)
        elif r < 0.8:
            msg = pitch_bend(int(rng.integers(-8192, 8192)), channel=ch)
        elif r < 0.9:
            msg = control_change(64, int(rng.choice([0, 127])), channel=ch)
        else:
            msg = control_change(int(rng.choice([120, 123])), 0, channel=ch)
        actions.append(event(at, "midi.midi", tuple(float(x) for x in msg)))
    actions.append(set_value(350, "voices.bend_range", 7.0))
    actions.sort(key=lambda a: a.at)
    assert_jit_same(lambda: allocator_synth(voices), 650, actions, blocks=blocks)
