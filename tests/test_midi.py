"""MIDI messages, the MidiParser node, the end-to-end timing rule, and live input with a fake port."""

from __future__ import annotations

import threading

import mido
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from midi_support import SR, Recorder, envelope_voice, record

import oscen.midi as midi_api
from oscen.envelopes import AdsrEnvelope
from oscen.graph import Graph
from oscen.midi import (
    MidiBackendError,
    MidiError,
    MidiParser,
    MidiPortError,
    control_change,
    fields_to_bytes,
    find_midi_input,
    is_channel_message,
    midi_fields,
    note_off,
    note_on,
    open_midi_input,
    pitch_bend,
    poly_voices,
    split_messages,
)

# ---------------------------------------------------------------- messages


def test_midi_fields_accepts_bytes_lists_and_mido_messages() -> None:
    assert midi_fields(b"\x90\x3c\x64") == (144.0, 60.0, 100.0)
    assert midi_fields([0x80, 60, 0]) == (128.0, 60.0, 0.0)
    assert midi_fields(bytearray([0xB3, 7, 127])) == (179.0, 7.0, 127.0)
    assert midi_fields(mido.Message("note_on", channel=2, note=64, velocity=90)) == (146.0, 64.0, 90.0)
    assert midi_fields(mido.Message("pitchwheel", channel=0, pitch=0)) == (224.0, 0.0, 64.0)
    assert midi_fields(np.array([0x90, 1, 2])) == (144.0, 1.0, 2.0)


def test_two_byte_messages_get_a_zero_data2() -> None:
    assert midi_fields([0xC0, 5]) == (192.0, 5.0, 0.0)
    assert midi_fields(mido.Message("aftertouch", value=33)) == (208.0, 33.0, 0.0)


def test_note_on_with_velocity_zero_is_kept_as_sent() -> None:
    # The parser, not the converter, turns it into a note-off: what reaches the graph is the wire.
    assert midi_fields([0x90, 60, 0]) == (144.0, 60.0, 0.0)


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ([], "empty"),
        ([0x3C, 0x40], "data byte"),
        ([0xF0, 1, 2, 0xF7], "system message"),
        ([0xF8], "system message"),
        ([0x90, 60], "takes 2 data byte"),
        ([0x90, 60, 100, 1], "takes 2 data byte"),
        ([0xC0, 1, 2], "takes 1 data byte"),
        ([0x90, 60, 200], "must be 0..127"),
        ([0x90, 300, 1], "must be 0..127"),
        ([256, 1, 2], "0..255"),
        ([0x90, "a", 1], "MIDI byte 1"),
        ("90 3c 64", "expected MIDI bytes"),
        (mido.MetaMessage("set_tempo", tempo=500000), "meta message"),
    ],
)
def test_malformed_midi_gives_a_clear_error(message: object, words: str) -> None:
    with pytest.raises(MidiError, match=words):
        midi_fields(message)


def test_is_channel_message() -> None:
    assert is_channel_message(mido.Message("note_on"))
    assert not is_channel_message(mido.Message("clock"))
    assert not is_channel_message(mido.Message("sysex", data=[1, 2]))
    assert not is_channel_message(mido.MetaMessage("end_of_track"))
    assert not is_channel_message([])


def test_builders_and_fields_to_bytes() -> None:
    assert note_on(60, 100, channel=1) == (145.0, 60.0, 100.0)
    assert note_off(60) == (128.0, 60.0, 0.0)
    assert control_change(64, 127, 15) == (191.0, 64.0, 127.0)
    assert pitch_bend(0) == (224.0, 0.0, 64.0)
    assert pitch_bend(-8192) == (224.0, 0.0, 0.0)
    assert pitch_bend(8191) == (224.0, 127.0, 127.0)
    assert fields_to_bytes((192.0, 5.0, 0.0)) == bytes([0xC0, 5])
    with pytest.raises(MidiError, match="channel"):
        note_on(60, 100, channel=16)
    with pytest.raises(MidiError, match="pitch_bend: value must be -8192..8191"):
        pitch_bend(9000)
    with pytest.raises(MidiError, match="field 0 must be a whole number"):
        fields_to_bytes((float("nan"), 60.0, 0.0))


NAN = float("nan")


@pytest.mark.parametrize(
    "call, message",
    [
        # MIDI integer units: a float is refused, naming the argument, its range and the other family
        (
            lambda: pitch_bend(0.5),
            r"pitch_bend: value must be an int -8192..8191 .*got 0.5 .*pitch_bend_normalized",
        ),
        (lambda: pitch_bend(-8193), r"pitch_bend: value must be -8192..8191, got -8193"),
        (
            lambda: pitch_bend("0"),
            r"pitch_bend: value must be an int -8192..8191 \(MIDI units\), got '0' \(str\)",
        ),
        (lambda: pitch_bend(0, channel=16), r"pitch_bend: channel must be an int 0..15"),
        (lambda: note_on(60, 1.0), r"note_on: velocity must be an int 0..127 .*got 1.0 .*note_on_normalized"),
        (lambda: note_on(60, 128), r"note_on: velocity must be 0..127, got 128"),
        (lambda: note_on(128), r"note_on: note must be 0..127, got 128"),
        (lambda: note_on(-1), r"note_on: note must be 0..127, got -1"),
        (lambda: note_on(60.0), r"note_on: note must be an int 0..127 \(MIDI units\), got 60.0"),
        (lambda: note_on(True), r"note_on: note must be an int 0..127 .*got True \(bool\)"),
        (lambda: note_on(60, 100, channel=1.0), r"note_on: channel must be an int 0..15 .*got 1.0"),
        (lambda: note_on(60, 100, channel=-1), r"note_on: channel must be an int 0..15 .*got -1"),
        (lambda: note_off(60, 0.5), r"note_off: velocity must be an int 0..127 .*note_off_normalized"),
        (lambda: note_off(200), r"note_off: note must be 0..127, got 200"),
        (lambda: note_off(60, channel=99), r"note_off: channel must be an int 0..15"),
        (
            lambda: control_change(7, 0.5),
            r"control_change: value must be an int 0..127 .*control_change_normalized",
        ),
        (lambda: control_change(128, 0), r"control_change: controller must be 0..127, got 128"),
        (lambda: control_change(7, 300), r"control_change: value must be 0..127, got 300"),
        (lambda: control_change(7, 1, channel=16), r"control_change: channel must be an int 0..15"),
        # normalized units
        (lambda: midi_api.note_on_normalized(60, 1.5), r"note_on_normalized: velocity must be 0..1, got 1.5"),
        (lambda: midi_api.note_on_normalized(60, NAN), r"note_on_normalized: velocity must be 0..1, got nan"),
        (
            lambda: midi_api.note_on_normalized(60, "loud"),
            r"note_on_normalized: velocity must be a number 0..1, got 'loud'",
        ),
        (lambda: midi_api.note_on_normalized(60.5, 0.5), r"note_on_normalized: note must be an int 0..127"),
        (
            lambda: midi_api.note_on_normalized(60, 0.5, channel=16),
            r"note_on_normalized: channel must be an int 0..15",
        ),
        (
            lambda: midi_api.note_off_normalized(60, -0.1),
            r"note_off_normalized: velocity must be 0..1, got -0.1",
        ),
        (lambda: midi_api.note_off_normalized(128), r"note_off_normalized: note must be 0..127"),
        (
            lambda: midi_api.control_change_normalized(7, 2.0),
            r"control_change_normalized: value must be 0..1, got 2.0",
        ),
        (
            lambda: midi_api.control_change_normalized(7.0, 0.5),
            r"control_change_normalized: controller must be an int",
        ),
        (
            lambda: midi_api.pitch_bend_normalized(8191),
            r"pitch_bend_normalized: bend must be -1..1, got 8191",
        ),
        (
            lambda: midi_api.pitch_bend_normalized(float("inf")),
            r"pitch_bend_normalized: bend must be -1..1, got inf",
        ),
        (
            lambda: midi_api.pitch_bend_normalized(None),
            r"pitch_bend_normalized: bend must be a number -1..1, got None",
        ),
        (
            lambda: midi_api.pitch_bend_normalized(0.0, channel="1"),
            r"pitch_bend_normalized: channel must be an int 0..15",
        ),
    ],
)
def test_every_builder_refuses_bad_input_naming_the_argument_and_range(call, message: str) -> None:
    with pytest.raises(MidiError, match=message):
        call()


def test_normalized_builders_invert_the_parsers_scaling() -> None:
    """Parser outputs fed back give the same MIDI bytes: velocity v/127, CC v/127, bend per half."""
    for v in range(128):
        assert midi_api.note_on_normalized(60, v / 127) == note_on(60, v)
        assert midi_api.note_off_normalized(60, v / 127, channel=3) == note_off(60, v, channel=3)
        assert midi_api.control_change_normalized(74, v / 127) == control_change(74, v)
    for wheel in range(-8192, 8192):
        bend = wheel / 8192 if wheel < 0 else wheel / 8191  # MidiParser's mapping
        assert midi_api.pitch_bend_normalized(bend, channel=2) == pitch_bend(wheel, channel=2)
    assert midi_api.note_on_normalized(60, 0.001)[2] == 1.0  # any velocity above 0 sounds
    assert midi_api.note_on_normalized(60, 0.0)[2] == 0.0
    assert note_on(60, np.int64(100)) == (144.0, 60.0, 100.0)  # numpy ints are MIDI ints


def test_normalized_builders_round_trip_through_the_parser() -> None:
    graph = Graph(SR)
    parser = graph.add_node(MidiParser())
    ons, ccs, bends = (
        record(graph, parser.note_on),
        record(graph, parser.control_change),
        record(graph, parser.pitch_bend),
    )
    graph.queue_event(parser.midi, 0, midi_api.note_on_normalized(64, 0.5))
    graph.queue_event(parser.midi, 1, midi_api.control_change_normalized(1, 0.25))
    graph.queue_event(parser.midi, 2, midi_api.pitch_bend_normalized(-0.5))
    graph.process_block(3)
    assert ons.log == [(0, (64.0, 64 / 127, 0.0, 0.0))]
    assert ccs.log == [(1, (1.0, 32 / 127, 0.0, 0.0))]
    assert bends.log == [(2, (-0.5, 0.0, 0.0, 0.0))]


@given(
    status=st.integers(0x80, 0xEF),
    d1=st.integers(0, 127),
    d2=st.integers(0, 127),
)
def test_fields_round_trip_through_mido(status: int, d1: int, d2: int) -> None:
    raw = [status, d1, d2] if status & 0xF0 not in (0xC0, 0xD0) else [status, d1]
    fields = midi_fields(raw)
    assert fields_to_bytes(fields) == bytes(raw)
    assert midi_fields(mido.Message.from_bytes(raw)) == fields


def test_split_messages_resolves_running_status_and_skips_system_bytes() -> None:
    stream = [0x90, 60, 100, 62, 100, 0xF8, 64, 0, 0xF0, 1, 2, 3, 0xF7, 0xB0, 7, 90, 0xC1, 3, 4]
    assert list(split_messages(stream)) == [
        (144.0, 60.0, 100.0),
        (144.0, 62.0, 100.0),
        (144.0, 64.0, 0.0),
        (176.0, 7.0, 90.0),
        (193.0, 3.0, 0.0),
        (193.0, 4.0, 0.0),
    ]
    with pytest.raises(MidiError, match="no status byte"):
        list(split_messages(bytes([60, 100])))


# ---------------------------------------------------------------- the parser node


def _parser_graph() -> tuple[Graph, object, dict[str, Recorder]]:
    graph = Graph(SR)
    parser = graph.add_node(MidiParser())
    recs = {
        name: record(graph, getattr(parser, name))
        for name in ("note_on", "note_off", "control_change", "pitch_bend", "aftertouch", "program_change")
    }
    return graph, parser.midi, recs


def test_parser_emits_each_kind_at_its_frame() -> None:
    graph, midi, recs = _parser_graph()
    graph.queue_event(midi, 3, note_on(60, 127, channel=2))
    graph.queue_event(midi, 5, note_off(60, 64, channel=2))
    graph.queue_event(midi, 5, (0x90, 61, 0))  # note-on with velocity 0 = note-off
    graph.queue_event(midi, 7, control_change(74, 127, channel=0))
    graph.queue_event(midi, 8, (0xD4, 127, 0))
    graph.queue_event(midi, 9, (0xC1, 12, 0))
    graph.process_block(12)
    assert recs["note_on"].log == [(3, (60.0, 1.0, 2.0, 0.0))]
    assert recs["note_off"].log == [(5, (60.0, 64 / 127, 2.0, 0.0)), (5, (61.0, 0.0, 0.0, 0.0))]
    assert recs["control_change"].log == [(7, (74.0, 1.0, 0.0, 0.0))]
    assert recs["aftertouch"].log == [(8, (1.0, 4.0, 0.0, 0.0))]
    assert recs["program_change"].log == [(9, (12.0, 1.0, 0.0, 0.0))]


def test_parser_pitch_bend_scaling() -> None:
    graph, midi, recs = _parser_graph()
    for i, value in enumerate((-8192, -4096, 0, 4096, 8191)):
        graph.queue_event(midi, i, pitch_bend(value, channel=3))
    graph.process_block(6)
    values = [fields[0] for _, fields in recs["pitch_bend"].log]
    assert values == pytest.approx([-1.0, -0.5, 0.0, 4096 / 8191, 1.0], abs=1e-12)
    assert {fields[1] for _, fields in recs["pitch_bend"].log} == {3.0}


def test_parser_cc_values_are_normalized() -> None:
    graph, midi, recs = _parser_graph()
    for i, value in enumerate((0, 64, 127)):
        graph.queue_event(midi, i, control_change(1, value, channel=9))
    graph.process_block(4)
    assert recs["control_change"].log == [
        (0, (1.0, 0.0, 9.0, 0.0)),
        (1, (1.0, 64 / 127, 9.0, 0.0)),
        (2, (1.0, 1.0, 9.0, 0.0)),
    ]


def test_parser_drops_malformed_events_silently_and_filters_channels() -> None:
    graph = Graph(SR)
    parser = graph.add_node(MidiParser(channel=1))
    rec = record(graph, parser.note_on)
    graph.queue_event(parser.midi, 0, (0x20, 60, 100))  # data byte as status
    graph.queue_event(parser.midi, 0, (0xF8, 0, 0))  # clock
    graph.queue_event(parser.midi, 0, (0x90, 300, 100))  # out of range data
    graph.queue_event(parser.midi, 1, note_on(60, 100, channel=0))  # other channel
    graph.queue_event(parser.midi, 2, note_on(62, 100, channel=1))
    graph.process_block(3)
    assert rec.log == [(2, (62.0, 100 / 127, 1.0, 0.0))]
    with pytest.raises(ValueError, match="0..15"):
        MidiParser(channel=16)


# ---------------------------------------------------------------- end to end timing


@pytest.mark.parametrize("k", [0, 1, 37, 255, 256, 300])
def test_note_on_at_frame_k_starts_the_envelope_at_sample_k(k: int) -> None:
    graph = Graph(SR)
    synth = poly_voices(graph, envelope_voice, 2)
    graph.set_output(synth.output)
    graph.queue_event(synth.midi, k, note_on(60, 127))
    out = graph.process_block(k + 20)
    assert np.all(out[:k] == 0.0)
    assert out[k] == 1.0  # attack 0: the peak (velocity 127 -> 1.0) at the very sample


def test_note_on_at_frame_k_with_an_attack_rises_from_sample_k() -> None:
    graph = Graph(SR)
    synth = poly_voices(graph, lambda g: envelope_voice(g, attack=0.01), 2)
    graph.set_output(synth.output)
    k = 50
    graph.queue_event(synth.midi, k, note_on(60, 127))
    out = graph.process_block(k + 15)
    assert np.all(out[: k + 1] == 0.0)  # the attack's first sample is its start level, 0
    assert np.allclose(out[k : k + 11], np.arange(11) / 10)  # 10-sample attack to the peak
    graph.queue_event(synth.midi, 0, note_off(60))
    tail = graph.process_block(3)
    assert np.all(tail == 0.0)  # release 0


def test_midi_events_drive_the_same_sample_regardless_of_where_they_are_queued() -> None:
    # Queued all up front, or just before the block that contains them: identical output.
    def build() -> tuple[Graph, object]:
        graph = Graph(SR)
        synth = poly_voices(graph, lambda g: envelope_voice(g, attack=0.005), 3)
        graph.set_output(synth.output)
        return graph, synth.midi

    events = [(5, note_on(60, 100)), (17, note_on(64, 80)), (40, note_off(60)), (41, note_off(64))]
    g1, m1 = build()
    for frame, fields in events:
        g1.queue_event(m1, frame, fields)
    a = g1.process_block(60)
    g2, m2 = build()
    blocks = []
    for start in range(0, 60, 8):
        for frame, fields in events:
            if start <= frame < start + 8:
                g2.queue_event(m2, frame - start, fields)
        blocks.append(g2.process_block(8))
    b = np.concatenate(blocks)[:60]
    assert np.array_equal(a, b)


def test_find_midi_input_is_the_first_midi_parser() -> None:
    graph = Graph(SR)
    graph.add_node(AdsrEnvelope())
    assert find_midi_input(graph) is None
    first = graph.add_node(MidiParser())
    graph.add_node(MidiParser())
    assert find_midi_input(graph) == first.midi


# ---------------------------------------------------------------- live input (fake backend)


class FakePort:
    def __init__(self, callback) -> None:
        self.callback = callback
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeBackend:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.ports: list[FakePort] = []
        self.opened: list[str] = []

    def get_input_names(self) -> list[str]:
        return list(self.names)

    def open_input(self, name=None, *, callback=None) -> FakePort:
        port = FakePort(callback)
        self.opened.append(name)
        self.ports.append(port)
        return port


class MissingRtmidi:
    def get_input_names(self) -> list[str]:
        raise ModuleNotFoundError("No module named 'rtmidi'")

    def open_input(self, name=None, *, callback=None) -> None:
        raise ModuleNotFoundError("No module named 'rtmidi'")


def test_live_input_without_rtmidi_says_how_to_install_it() -> None:
    with pytest.raises(MidiBackendError) as info:
        open_midi_input(None, backend=MissingRtmidi())
    assert "pip install python-rtmidi" in str(info.value)
    assert "libasound2" in str(info.value)


def test_live_input_with_the_real_mido_backend_fails_clearly_or_works() -> None:
    # python-rtmidi is not a test dependency: either it is missing (clear error) or there are no
    # ports in CI (clear error); both must be our errors, not a raw ImportError.
    try:
        port = open_midi_input(None)
    except (MidiBackendError, MidiPortError) as exc:
        assert "python-rtmidi" in str(exc) or "no MIDI input ports" in str(exc)
    else:  # pragma: no cover - a developer machine with a MIDI device
        port.close()


def test_live_input_with_no_ports_lists_none() -> None:
    with pytest.raises(MidiPortError, match="no MIDI input ports found"):
        open_midi_input(None, backend=FakeBackend([]))


def test_live_input_port_selection() -> None:
    backend = FakeBackend(["Midi Through:0", "KeyStep 32:0"])
    assert open_midi_input(None, backend=backend).name == "Midi Through:0"
    assert open_midi_input("keystep", backend=backend).name == "KeyStep 32:0"
    with pytest.raises(MidiPortError, match="matches none") as info:
        open_midi_input("Launchpad", backend=backend)
    assert "KeyStep 32:0" in str(info.value)
    with pytest.raises(MidiPortError, match="matches several"):
        open_midi_input(":0", backend=backend)


def test_live_messages_cross_threads_and_land_in_the_next_block() -> None:
    backend = FakeBackend(["fake"])
    now = [10.0]
    midi_in = open_midi_input(None, backend=backend, clock=lambda: now[0])
    callback = backend.ports[0].callback

    def player() -> None:  # the backend's thread
        callback(mido.Message("clock"))  # system real-time: dropped
        callback(mido.Message("note_on", note=60, velocity=127))

    thread = threading.Thread(target=player)
    thread.start()
    thread.join()
    assert midi_in.dropped == 1

    graph = Graph(SR)
    synth = poly_voices(graph, envelope_voice, 2)
    graph.set_output(synth.output)
    assert midi_in.queue_block(graph, synth.midi, 16) == 1
    out = graph.process_block(16)
    assert out[0] == 1.0  # "immediate": at the block's first sample

    # "smoothed": arrival times keep their spacing, one block late.
    now[0] = 10.010
    callback(mido.Message("note_off", note=60))
    now[0] = 10.016
    assert midi_in.queue_block(graph, synth.midi, 16, timing="smoothed") == 1
    out = graph.process_block(16)
    assert np.all(out[:10] == 1.0) and np.all(out[10:] == 0.0)  # 10 ms after the previous drain

    with midi_in:
        pass
    assert midi_in.closed and backend.ports[0].closed
