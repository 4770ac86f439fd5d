"""MIDI files: events at the samples mido's timing says (tempo changes included), block rendering."""

from __future__ import annotations

import importlib
import tracemalloc
from fractions import Fraction
from pathlib import Path

import mido
import numpy as np
import pytest
from midi_support import SR, envelope_voice

import oscen.io as oscen_io
import oscen.midi as midi_api
from oscen.graph import Graph
from oscen.io import read_wav
from oscen.midi import (
    MidiFileError,
    midi_file_duration,
    midi_file_events,
    poly_voices,
    render_midi,
)
from oscen.midi.files import seconds_to_frame

TPB = 96


def write_song(path: Path) -> Path:
    """Two tracks; 120 BPM, then 240 BPM from tick 96, then 90 BPM from tick 192."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TPB)
    tempo = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=500_000, time=0),
            mido.MetaMessage("set_tempo", tempo=250_000, time=96),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90), time=96),
        ]
    )
    notes = mido.MidiTrack(
        [
            mido.Message("note_on", note=60, velocity=127, time=0),  # 0 s
            mido.Message("note_on", note=64, velocity=100, time=48),  # 0.25 s
            mido.Message("note_off", note=60, time=48),  # tick 96: 0.5 s
            mido.Message("control_change", control=1, value=64, time=48),  # tick 144: 0.625 s
            mido.Message("sysex", data=[1, 2, 3], time=0),  # skipped
            mido.Message("note_off", note=64, time=48),  # tick 192: 0.75 s
            mido.Message("note_on", note=67, velocity=90, time=33),  # tick 225, at 90 BPM
            mido.Message("note_off", note=67, time=50),
        ]
    )
    mid.tracks += [tempo, notes]
    out = path / "song.mid"
    mid.save(out)
    return out


def mido_frames(path: Path, sample_rate: float) -> list[tuple[int, tuple[int, ...]]]:
    """What mido's own playback timing says: cumulative float seconds, rounded to samples."""
    now = 0.0
    out = []
    for msg in mido.MidiFile(path):
        now += msg.time
        if not msg.is_meta and msg.type != "sysex":
            out.append((round(now * sample_rate), tuple(msg.bytes())))
    return out


@pytest.mark.parametrize("sample_rate", [1000.0, 44100.0, 48000.0, 22050.0])
def test_events_land_at_the_samples_mido_timing_says(tmp_path: Path, sample_rate: float) -> None:
    path = write_song(tmp_path)
    events = midi_file_events(path, sample_rate)
    expected = mido_frames(path, sample_rate)
    assert [
        (f, tuple(int(x) for x in fields[: len(raw)]))
        for (f, fields), (_, raw) in zip(events, expected, strict=True)
    ] == expected
    assert len(events) == len(expected) == 7


def test_event_times_across_tempo_changes(tmp_path: Path) -> None:
    events = midi_file_events(write_song(tmp_path), 1000.0)
    frames = [f for f, _ in events]
    beat90 = 60 / 90 / TPB  # seconds per tick at 90 BPM
    assert frames[:5] == [0, 250, 500, 625, 750]
    assert frames[5] == round((0.75 + 33 * beat90) * 1000)
    assert frames[6] == round((0.75 + 83 * beat90) * 1000)
    assert events[0][1] == (144.0, 60.0, 127.0)
    assert events[3][1] == (176.0, 1.0, 64.0)
    assert midi_file_duration(write_song(tmp_path)) == pytest.approx(
        mido.MidiFile(tmp_path / "song.mid").length
    )


def test_rounding_is_python_round_on_the_exact_time() -> None:
    assert seconds_to_frame(0.0005, 1000.0) == 1  # float 0.0005 is just above 1/2000
    assert seconds_to_frame(Fraction(1, 2000), 1000.0) == 0  # ties go to even, as round() does
    assert seconds_to_frame(Fraction(3, 2000), 1000.0) == 2
    # Exact arithmetic: 0.1 s summed 30 times in floats is not 3 s, the rational sum is.
    assert seconds_to_frame(sum([Fraction(1, 10)] * 30), 44100.0) == 132300
    assert seconds_to_frame(Fraction(1, 3), 44100.0) == 14700


def _synth() -> tuple[Graph, object]:
    graph = Graph(SR)
    synth = poly_voices(graph, envelope_voice, 2)
    graph.set_output(synth.output)
    return graph, synth.midi


@pytest.mark.parametrize("block_size", [1, 7, 64, 256, 10_000])
def test_render_midi_places_events_exactly_whatever_the_block_size(tmp_path: Path, block_size: int) -> None:
    path = write_song(tmp_path)
    graph, midi = _synth()
    out = render_midi(graph, midi, path, block_size=block_size, tail_seconds=0.1)
    length = round(mido.MidiFile(path).length * SR) + 100
    assert out.shape == (length,)
    expected = np.zeros(length)
    on = {60: (0, 500), 64: (250, 750)}
    for start, stop in on.values():
        expected[start:stop] += 1.0 if start == 0 else 100 / 127
    events = midi_file_events(path, SR)
    expected[events[5][0] : events[6][0]] += 90 / 127
    assert np.allclose(out, expected, atol=1e-12)


def test_render_midi_seconds_progress_and_rate_check(tmp_path: Path) -> None:
    path = write_song(tmp_path)
    graph, midi = _synth()
    done: list[int] = []
    out = render_midi(graph, midi, path, block_size=100, seconds=0.3, progress=done.append)
    assert out.shape == (300,)
    assert done == [100, 200, 300]
    assert out[0] == 1.0 and out[260] == pytest.approx(1 + 100 / 127)
    graph, midi = _synth()
    with pytest.raises(MidiFileError, match="differs from the graph's"):
        render_midi(graph, midi, path, sample_rate=44100.0)
    with pytest.raises(MidiFileError, match="block_size"):
        render_midi(graph, midi, path, block_size=0)


class FakeGraph:
    """Anything with process_block / queue_event / sample_rate / frame works (the JIT's JitGraph too)."""

    def __init__(self) -> None:
        self.sample_rate = SR
        self.frame = 0
        self.calls: list[tuple] = []

    def queue_event(self, endpoint, frame_offset, payload) -> None:
        self.calls.append(("queue", self.frame, frame_offset, payload))

    def process_block(self, n: int) -> np.ndarray:
        self.calls.append(("block", self.frame, n))
        self.frame += n
        return np.zeros((2, n))


def test_render_midi_queues_each_block_just_before_it_relative_to_its_start(tmp_path: Path) -> None:
    path = write_song(tmp_path)
    fake = FakeGraph()
    out = render_midi(fake, "midi-in", path, block_size=300, tail_seconds=0.0)
    assert out.shape[0] == 2
    queued = [(c[1], c[2]) for c in fake.calls if c[0] == "queue"]
    total = sum(c[2] for c in fake.calls if c[0] == "block")
    assert total == round(mido.MidiFile(path).length * SR)
    # Each event queued from the block holding it, offset from that block's start; the last
    # note-off sits exactly at the file's end, which a render with no tail does not reach.
    assert [start + off for start, off in queued] == [f for f, _ in midi_file_events(path, SR) if f < total]
    assert all(0 <= off < 300 and start % 300 == 0 for start, off in queued)
    # Every queue call comes right before the block that holds it.
    for i, call in enumerate(fake.calls):
        if call[0] == "queue":
            nxt = next(c for c in fake.calls[i:] if c[0] == "block")
            assert nxt[1] == call[1]


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MidiFileError, match="not found"):
        midi_file_events(tmp_path / "missing.mid", SR)
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"this is not a midi file")
    with pytest.raises(MidiFileError, match="not a readable standard MIDI file"):
        midi_file_events(junk, SR)
    multi = mido.MidiFile(type=2)
    multi.tracks.append(mido.MidiTrack([mido.Message("note_on", time=0)]))
    multi.save(tmp_path / "type2.mid")
    with pytest.raises(MidiFileError, match="type 2"):
        midi_file_events(tmp_path / "type2.mid", SR)
    with pytest.raises(MidiFileError, match="sample_rate"):
        midi_file_events(write_song(tmp_path), 0)


def test_the_example_song_is_there_and_has_a_tempo_change() -> None:
    path = Path(__file__).resolve().parent.parent / "examples" / "song.mid"
    mid = mido.MidiFile(path)
    assert 10.0 <= mid.length <= 20.0
    tempi = {m.tempo for m in mido.merge_tracks(mid.tracks) if m.type == "set_tempo"}
    assert len(tempi) >= 2
    assert len(midi_file_events(path, 44100.0)) > 100


def write_huge(path: Path) -> Path:
    """A valid 44-byte file whose note-off lies 4.5e9 s in: the longest delta (2**28 - 1 ticks) at
    the slowest tempo (2**24 - 1 us per beat) and one tick per beat."""
    mid = mido.MidiFile(type=0, ticks_per_beat=1)
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=0xFFFFFF, time=0),
                mido.Message("note_on", note=60, velocity=100, time=0),
                mido.Message("note_off", note=60, time=0x0FFFFFFF),
            ]
        )
    )
    out = path / "huge.mid"
    mid.save(out)
    assert out.stat().st_size == 44
    return out


class NoWork(FakeGraph):
    """A graph-like that must not be run: the length check comes before any block."""

    def process_block(self, n: int) -> np.ndarray:
        raise AssertionError(f"process_block({n}) was called: the render started")


def test_a_file_lasting_years_is_refused_before_any_work(tmp_path: Path) -> None:
    huge = write_huge(tmp_path)
    message = (
        r"render_midi: 4\.5036e\+09 s of audio \(the file's last message is at 4\.5036e\+09 s, plus a 2 s tail\) "
        r"is beyond the limit of 3600 s; pass max_seconds="
    )
    with pytest.raises(oscen_io.RenderLimitError, match=message):
        render_midi(NoWork(), "midi", huge)
    out = tmp_path / "huge.wav"
    with pytest.raises(oscen_io.RenderLimitError, match=message):
        midi_api.render_midi_to_file(NoWork(), "midi", huge, out)
    assert not out.exists()
    with pytest.raises(oscen_io.RenderLimitError, match=r"0\.5 s of audio is beyond the limit of 0\.25 s"):
        render_midi(NoWork(), "midi", huge, seconds=0.5, max_seconds=0.25)
    # A stated length plays the start of it; the far note-off is never reached.
    graph, midi = _synth()
    played = render_midi(graph, midi, huge, seconds=0.2)
    np.testing.assert_allclose(played, 100 / 127)


def test_render_midi_to_file_equals_render_midi(tmp_path: Path) -> None:
    song = write_song(tmp_path)
    graph, midi = _synth()
    expected = render_midi(graph, midi, song, block_size=64, tail_seconds=0.1)
    graph, midi = _synth()
    result = midi_api.render_midi_to_file(
        graph, midi, song, tmp_path / "song.wav", block_size=64, tail_seconds=0.1
    )
    back, rate = read_wav(result.path)
    assert rate == SR and result.frames == expected.shape[-1] and result.channels == 1
    np.testing.assert_allclose(back, expected, rtol=0, atol=1e-7)  # float32 on disk


def long_song(path: Path, seconds: int) -> Path:
    """A note every half second for ``seconds`` (events all along the render, not just at its start)."""
    mid = mido.MidiFile(type=0, ticks_per_beat=TPB)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    for i in range(seconds * 2):
        note = 60 + i % 12
        track.append(mido.Message("note_on", note=note, velocity=100, time=0 if i == 0 else TPB // 2))
        track.append(mido.Message("note_off", note=note, time=TPB // 2))
    mid.tracks.append(track)
    out = path / "long.mid"
    mid.save(out)
    return out


def streamed_peak(song: Path, out: Path, rate: float, seconds: float) -> tuple[int, int]:
    """(frames, tracemalloc peak) of an interpreted render_midi_to_file of ``seconds`` of ``song``."""
    graph = Graph(rate)
    synth = poly_voices(graph, envelope_voice, 2)
    graph.set_output(synth.output)
    graph.process_block(1)  # the graph's first-block set-up is not the render's memory
    tracemalloc.start()
    try:
        result = midi_api.render_midi_to_file(graph, synth.midi, song, out, seconds=seconds, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result.frames, peak


def test_a_long_midi_render_to_a_file_holds_one_block_not_the_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 s interpreted (at 200 Hz to keep the interpreter quick): memory does not grow with the length.

    Both renders hold the same file's events; the 60 s one writes 54 s more signal (86 kB as float64),
    which must not show in its peak (the old render_midi accumulated every block). The writer's
    buffer is made smaller than either render, so that it cannot hide an accumulating loop.
    """
    monkeypatch.setattr(importlib.import_module("oscen.io.wav"), "WRITE_BUFFER_FRAMES", 256)
    song = long_song(tmp_path, 60)
    frames, long_peak = streamed_peak(song, tmp_path / "long.wav", 200.0, 60.0)
    _, short_peak = streamed_peak(song, tmp_path / "short.wav", 200.0, 6.0)
    assert frames == 12_000
    growth, extra = long_peak - short_peak, (frames - 1200) * 8
    assert growth < extra / 8, f"peak grew {growth} B for {extra} B more signal"
    back, _ = read_wav(tmp_path / "long.wav")
    assert (
        back[10] == pytest.approx(100 / 127) and back[60] == 0.0 and back[11_810] == pytest.approx(100 / 127)
    )


# ---------------------------------------------------------------- oscen render --midi

PATCH = """
from oscen.graph import Graph
from oscen.envelopes import AdsrEnvelope
from oscen.midi import SubGraph, poly_voices


def voice(graph):
    env = graph.add_node(AdsrEnvelope(0.0, 0.0, 1.0, 0.0))
    return SubGraph(graph, inputs={"gate": env.gate}, outputs={"output": env.output})


def patch(sample_rate):
    graph = Graph(sample_rate)
    synth = poly_voices(graph, voice, 2, gain=0.5)
    graph.set_output(synth.output)
    return graph
"""


def test_cli_render_midi_plays_the_file_for_its_length_plus_tail(tmp_path: Path) -> None:
    import soundfile as sf

    from oscen.cli import main

    song = write_song(tmp_path)
    patch = tmp_path / "env_synth.py"
    patch.write_text(PATCH)
    out = tmp_path / "out.wav"
    argv = ["render", str(patch), "--midi", str(song), "--sample-rate", "1000", "--engine", "interpret"]
    assert main([*argv, "--out", str(out)]) == 0
    data, rate = sf.read(str(out))
    assert rate == 1000
    assert data.shape == (round(mido.MidiFile(song).length * 1000) + 2000,)
    assert data[0] == 0.5 and data[300] == pytest.approx(0.5 + 0.5 * 100 / 127)
    assert main([*argv, "--seconds", "0.4", "--out", str(out)]) == 0
    assert sf.info(str(out)).frames == 400


def test_cli_render_midi_errors_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from oscen.cli import main

    no_midi = tmp_path / "plain.py"
    no_midi.write_text(
        "from oscen.graph import Graph\nfrom oscen.gain import Constant\n\n"
        "def patch(sample_rate):\n    graph = Graph(sample_rate)\n    graph.add_node(Constant(0.0))\n    return graph\n"
    )
    song = write_song(tmp_path)
    out = str(tmp_path / "x.wav")
    assert main(["render", str(no_midi), "--midi", str(song), "--out", out, "--engine", "interpret"]) == 2
    assert "no MidiParser" in capsys.readouterr().err
    patch = tmp_path / "env_synth.py"
    patch.write_text(PATCH)
    missing = str(tmp_path / "nope.mid")
    assert main(["render", str(patch), "--midi", missing, "--out", out, "--engine", "interpret"]) == 2
    err = capsys.readouterr().err
    assert "MIDI file not found" in err and "Traceback" not in err
