"""Real-time output without hardware: FakeOutputStream stands in for the sound card.

The fake calls the Player's callback from a timer thread at a device's pace (see
``oscen.io.realtime.FakeOutputStream``), so these tests exercise the very callback a sound card
would call: the audio it delivers must equal an offline render, block for block; a slow graph must
show up as xruns; missing sounddevice/PortAudio and missing devices must say what to install or do;
and ``oscen play`` (with ``OSCEN_FAKE_AUDIO=1``) and its ``--midi-in`` run end to end.
"""

from __future__ import annotations

import builtins
import functools
import math
import sys
import textwrap
import time
import tracemalloc
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mido
import numpy as np
import pytest

from oscen.cli import main
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.io import realtime, render
from oscen.io.realtime import (
    AudioBackendError,
    AudioDeviceError,
    FakeCallbackFlags,
    FakeOutputStream,
    Player,
    play,
)
from oscen.jit import JitGraph
from oscen.oscillators import Oscillator

SR = 44100.0
BLOCK = 256


@pytest.fixture(autouse=True)
def no_fake_audio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their stream explicitly; an OSCEN_FAKE_AUDIO from the shell must not leak in."""
    monkeypatch.delenv(realtime.FAKE_AUDIO_ENV, raising=False)


@pytest.fixture
def recording() -> Iterator[tuple[Callable[..., FakeOutputStream], list[FakeOutputStream]]]:
    """A stream factory making recording FakeOutputStreams (8 blocks of buffer, 46 ms at 256: about
    PortAudio's 'high' latency on Linux, and room for a loaded test machine's scheduling), and the
    list of streams it made."""
    streams: list[FakeOutputStream] = []

    def factory(**kwargs: Any) -> FakeOutputStream:
        stream = FakeOutputStream(**kwargs, record=True, buffers=8)
        streams.append(stream)
        return stream

    yield factory, streams
    for stream in streams:
        stream.close()


@pytest.fixture
def jits() -> Iterator[Callable[[Graph], JitGraph]]:
    made: list[JitGraph] = []

    def make(graph: Graph) -> JitGraph:
        jit = JitGraph(graph)
        made.append(jit)
        assert jit.wait_compiled(timeout=60.0), jit.last_error
        return jit

    yield make
    for jit in made:
        jit.close()


def delivered(stream: FakeOutputStream) -> np.ndarray:
    """Everything the device was given, as (channels, frames) float32."""
    return np.concatenate(stream.recorded, axis=0).T


def demo_graph() -> tuple[Graph, Callable[[Any], None]]:
    """The built-in demo (stereo, events, reverb) and a function queuing its song on an engine."""
    from oscen.demo import demo_events, demo_patch

    graph = demo_patch(SR, events=False)
    return graph, lambda engine: demo_events(engine, graph)


# ---------------------------------------------------------------------------------- the callback
def test_fake_stream_delivers_exactly_the_offline_render(
    jits: Callable[[Graph], JitGraph],
    recording: tuple[Callable[..., FakeOutputStream], list[FakeOutputStream]],
) -> None:
    """One second of the stereo demo through the real-time callback, at the device's pace, equals
    an offline render of the same graph (in float32), with no xruns: the callback is fast."""
    factory, streams = recording
    graph, song = demo_graph()
    live = jits(graph)
    song(live)
    stats = play(live, BLOCK, seconds=1.0, stream_factory=factory)

    offline_graph, offline_song = demo_graph()
    offline = jits(offline_graph)
    offline_song(offline)
    want = render(offline, 1.0, block_size=BLOCK)

    got = delivered(streams[0])
    frames = int(SR)
    assert got.dtype == np.float32 and got.shape[0] == 2
    assert np.abs(want).max() > 0.05  # the song is playing
    np.testing.assert_allclose(got[:, :frames], want, rtol=0, atol=1e-6)
    assert not got[:, frames:].any()  # after `seconds`, silence
    assert stats.frames == frames and live.frame == frames
    assert stats.blocks == math.ceil(frames / BLOCK)
    assert stats.xruns == 0 and streams[0].underflows == 0
    # A callback takes ~0.1 ms of its 5.8; one descheduled by a busy machine may still overrun.
    assert stats.late_blocks <= 2
    assert "no xruns" in stats.summary()


def test_summary_reports_late_blocks_apart_from_xruns() -> None:
    """A late block the device's buffer absorbed is not an xrun: the summary says both (CI once
    failed on "1 late block" replacing "no xruns" when a busy machine delayed one callback)."""
    stats = realtime.PlayStats(
        sample_rate=SR,
        block_size=BLOCK,
        channels=2,
        blocks=10,
        frames=10 * BLOCK,
        xruns=0,
        late_blocks=1,
        max_callback_seconds=0.0125,
    )
    assert "no xruns, 1 late block;" in stats.summary()
    stats.xruns, stats.late_blocks = 2, 0
    assert "2 xruns (device underflows);" in stats.summary() and "late" not in stats.summary()


class SlowGraph:
    """A graph-like that misses its deadline now and then: it sleeps ten block periods, more than
    the eight blocks the recording fixture's fake device buffers."""

    sample_rate = SR

    def __init__(self, every: int = 10) -> None:
        self.calls = 0
        self.every = every

    def process_block(self, n: int) -> np.ndarray:
        return np.zeros(n)

    def process_into(self, out: np.ndarray) -> None:
        self.calls += 1
        if self.calls % self.every == 0:
            time.sleep(10 * BLOCK / SR)
        out[...] = 0.1


def test_slow_blocks_are_counted_as_xruns(
    recording: tuple[Callable[..., FakeOutputStream], list[FakeOutputStream]],
) -> None:
    factory, streams = recording
    stats = play(SlowGraph(), BLOCK, seconds=0.3, stream_factory=factory)
    assert stats.late_blocks >= 3
    assert stats.xruns >= 2  # reported by the "device" to the callback after each dropout
    assert stats.xruns <= streams[0].underflows
    assert "xruns (device underflows)" in stats.summary() and "late blocks" in stats.summary()


def test_mono_graph_plays_on_every_channel_and_channel_counts_are_checked(
    recording: tuple[Callable[..., FakeOutputStream], list[FakeOutputStream]],
) -> None:
    factory, streams = recording
    graph = Graph(SR)
    graph.add_node(Oscillator.sine(440.0, 0.5))
    play(graph, 64, seconds=0.05, channels=2, stream_factory=factory)
    got = delivered(streams[0])
    assert got.shape[0] == 2
    np.testing.assert_array_equal(got[0], got[1])
    assert np.abs(got).max() > 0.4

    stereo, _ = demo_graph()
    with pytest.raises(ValueError, match="outputs 2 channels"):
        Player(stereo, channels=1, stream_factory=factory)


def test_odd_callback_sizes_are_split_into_blocks() -> None:
    """A device may ask for more (or fewer) frames than the block size: the graph still sees blocks
    of at most ``block_size``, and the frames add up."""
    graph = Graph(SR)
    graph.add_node(Oscillator.sine(440.0, 0.5))
    reference = Graph(SR)
    reference.add_node(Oscillator.sine(440.0, 0.5))
    player = Player(graph, 64, stream_factory=FakeOutputStream)
    chunks = []
    for frames in (64, 100, 200, 17):
        out = np.full((frames, 1), np.nan, dtype=np.float32)
        player._callback(out, frames, None, FakeCallbackFlags())
        chunks.append(out[:, 0])
    np.testing.assert_allclose(np.concatenate(chunks), reference.process_block(381), rtol=0, atol=1e-7)
    assert player.stats.frames == graph.frame == 381


class BufferedGraph:
    """A graph-like whose own processing allocates nothing (so only the Player's work is measured)."""

    sample_rate = SR

    def process_block(self, n: int) -> np.ndarray:
        return np.zeros((2, n))

    def process_into(self, out: np.ndarray) -> None:
        out.fill(0.25)


def test_the_callback_allocates_nothing_block_sized() -> None:
    """The Player's own work per callback (the graph's is not measured here) allocates only small
    objects (views, floats): with 4096-sample blocks, anything block-sized would show as >= 16 KB."""
    block = 4096
    player = Player(BufferedGraph(), block, stream_factory=FakeOutputStream)
    out = np.zeros((block, 2), dtype=np.float32)
    flags = FakeCallbackFlags()
    player._callback(out, block, None, flags)  # warm up
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(200):
            player._callback(out, block, None, flags)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 4096  # (other threads' small allocations are traced too)
    assert current - before < 4096  # and nothing accumulates
    assert (out == 0.25).all()


def test_an_exception_in_the_graph_stops_playback_and_is_raised(
    recording: tuple[Callable[..., FakeOutputStream], list[FakeOutputStream]],
) -> None:
    factory, streams = recording

    class Broken(SlowGraph):
        def process_into(self, out: np.ndarray) -> None:
            self.calls += 1
            if self.calls == 5:
                raise ZeroDivisionError("a node divided by zero")
            out[...] = 0.1

    with pytest.raises(ZeroDivisionError, match="divided by zero"):
        play(Broken(), BLOCK, seconds=5.0, stream_factory=factory)
    assert not streams[0].active


def test_player_plays_while_the_graph_is_edited(
    jits: Callable[[Graph], JitGraph],
    recording: tuple[Callable[..., FakeOutputStream], list[FakeOutputStream]],
) -> None:
    """The live-coding loop: start, edit the JitGraph from this thread (a topology change compiled
    in the background and swapped in by the callback, then a parameter), stop."""
    factory, streams = recording
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5))
    graph.set_output(osc.output)
    live = jits(graph)
    with Player(live, BLOCK, stream_factory=factory) as player:
        time.sleep(0.1)
        quiet = live.add_node(Gain(0.25))
        live.connect(osc.output, quiet.input)
        live.set_output(quiet.output)
        assert live.wait_compiled(timeout=60.0)
        deadline = time.monotonic() + 10.0
        while live.compiled_version != graph.version and time.monotonic() < deadline:
            time.sleep(0.01)  # the callback swaps the new code in at its next block
        time.sleep(0.1)
        live.set_value(osc.amplitude, 0.0)
        time.sleep(0.1)
    assert live.compiled_version == graph.version
    blocks = streams[0].recorded
    peaks = [float(np.abs(b).max()) for b in blocks]
    assert max(peaks[:5]) > 0.45  # the plain sine
    assert any(0.05 < p < 0.13 for p in peaks)  # through the 0.25 gain
    assert peaks[-1] == 0.0  # amplitude 0
    assert player.stats.frames == live.frame and player.stats.xruns == 0


def test_fake_stream_keeps_the_device_pace() -> None:
    calls: list[float] = []

    def callback(outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        calls.append(time.perf_counter())
        outdata.fill(0.0)

    stream = FakeOutputStream(samplerate=SR, blocksize=BLOCK, channels=1, dtype="float32", callback=callback)
    stream.start()
    time.sleep(0.3)
    stream.close()
    expected = 0.3 * SR / BLOCK + stream.buffers  # the buffer is primed at once
    assert expected - 8 <= len(calls) <= expected + 2
    fast = FakeOutputStream(SR, BLOCK, 1, callback=callback, speed=math.inf, max_blocks=500)
    calls.clear()
    fast.start()
    deadline = time.monotonic() + 10
    while fast.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 500 and fast.underflows == 0


# ------------------------------------------------------------------------- no sounddevice / device
def test_missing_sounddevice_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # `import sounddevice` raises ImportError
    graph = Graph(SR)
    graph.add_node(Oscillator.sine())
    with pytest.raises(AudioBackendError, match=r"pip install sounddevice"):
        play(graph, seconds=0.1)


def test_missing_portaudio_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "sounddevice":
            raise OSError("PortAudio library not found")  # what sounddevice raises without libportaudio2
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(AudioBackendError, match=r"apt-get install libportaudio2") as info:
        realtime.import_sounddevice()
    assert "PortAudio library not found" in str(info.value)


class PortAudioError(Exception):
    pass


def fake_sounddevice(devices: list[dict[str, Any]]) -> types.ModuleType:
    """A stand-in sounddevice module with the given devices (the real one needs PortAudio)."""
    sd = types.ModuleType("sounddevice")
    sd.PortAudioError = PortAudioError  # type: ignore[attr-defined]

    def query_devices(device: Any = None, kind: str | None = None) -> Any:
        if kind is None:
            return devices
        outputs = [d for d in devices if d["max_output_channels"] > 0]
        if device is None:
            if not outputs:
                raise PortAudioError("Error querying device -1")
            return outputs[0]
        matches = [d for d in outputs if str(device) in d["name"]]
        if len(matches) != 1:
            raise ValueError(f"No output device matching {device!r}")
        return matches[0]

    def check_output_settings(**kwargs: Any) -> None:
        if kwargs["samplerate"] != 48000:
            raise PortAudioError("Invalid sample rate")

    sd.query_devices = query_devices  # type: ignore[attr-defined]
    sd.check_output_settings = check_output_settings  # type: ignore[attr-defined]
    sd.OutputStream = functools.partial(FakeOutputStream, speed=math.inf)  # type: ignore[attr-defined]
    return sd


def test_no_output_device_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice([]))
    graph = Graph(SR)
    graph.add_node(Oscillator.sine())
    with pytest.raises(AudioDeviceError, match="no audio output device found") as info:
        play(graph, seconds=0.1)
    assert "OSCEN_FAKE_AUDIO=1" in str(info.value)


def test_wrong_device_or_rate_lists_what_there_is(monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [
        {"name": "Mic", "max_output_channels": 0, "default_samplerate": 48000.0},
        {"name": "Speakers", "max_output_channels": 2, "default_samplerate": 48000.0},
    ]
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(devices))
    graph = Graph(SR)
    graph.add_node(Oscillator.sine())
    with pytest.raises(AudioDeviceError, match=r"'Headphones' is not available") as info:
        play(graph, seconds=0.1, device="Headphones")
    assert "1: Speakers (2 channels)" in str(info.value) and "Mic" not in str(info.value)
    with pytest.raises(AudioDeviceError, match=r"cannot play 1 channel\(s\) at 44100 Hz.*48000 Hz"):
        play(graph, seconds=0.1)
    at_48k = Graph(48000.0)
    at_48k.add_node(Oscillator.sine())
    assert play(at_48k, seconds=0.1).frames == 4800  # the device is fine at its own rate


# ------------------------------------------------------------------------------------ oscen play
TONE = """
from oscen import Graph
from oscen.oscillators import Oscillator


def patch(sample_rate):
    graph = Graph(sample_rate)
    graph.add_node(Oscillator.sine(440.0, 0.3))
    return graph
"""

SYNTH = """
from oscen import Graph
from oscen.envelopes import AdsrEnvelope
from oscen.gain import Multiply
from oscen.midi import SubGraph, poly_voices
from oscen.oscillators import Oscillator


def voice(graph):
    osc = graph.add_node(Oscillator.sine(440.0, 0.5))
    env = graph.add_node(AdsrEnvelope(0.001, 0.05, 0.8, 0.05))
    vca = graph.add_node(Multiply(0.0))
    graph.connect(osc.output, vca.a)
    graph.connect(env.output, vca.b)
    return SubGraph(graph, inputs={"pitch": osc.frequency, "gate": env.gate}, outputs={"output": vca.output})


def patch(sample_rate):
    graph = Graph(sample_rate)
    poly_voices(graph, voice, 2)
    return graph
"""


def write(tmp_path: Path, body: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize("engine", [[], ["--interpret"]], ids=["jit", "interpret"])
def test_oscen_play_with_fake_audio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], engine: list[str]
) -> None:
    monkeypatch.setenv(realtime.FAKE_AUDIO_ENV, "1")
    code = main(
        ["play", str(write(tmp_path, TONE, "tone.py")), "--seconds", "0.2", "--block-size", "128", *engine]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "on fake audio output" in captured.out
    assert f"engine {'interpret' if engine else 'jit'}" in captured.out
    assert "played 0.20 s in 69 blocks of 128 at 44100 Hz: " in captured.out  # xruns: depends on load
    assert captured.err == ""


def test_oscen_play_without_an_audio_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice([]))
    assert main(["play", str(write(tmp_path, TONE, "tone.py")), "--seconds", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "oscen play: error: no audio output device found" in err and "OSCEN_FAKE_AUDIO=1" in err


def test_oscen_play_without_sounddevice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    assert main(["play", str(write(tmp_path, TONE, "tone.py"))]) == 2
    assert "pip install sounddevice" in capsys.readouterr().err


class FakeMidiBackend:
    """mido's backend interface, with ports that play ``messages`` as soon as they are opened."""

    def __init__(self, names: list[str], messages: list[mido.Message] | None = None) -> None:
        self.names = names
        self.messages = messages or []
        self.closed = 0

    def get_input_names(self) -> list[str]:
        return list(self.names)

    def open_input(self, name: str | None = None, *, callback: Callable[[Any], None] | None = None) -> Any:
        assert callback is not None
        for message in self.messages:
            callback(message)  # on the backend's thread in real life; queued for the audio callback
        backend = self

        class Port:
            def close(self) -> None:
                backend.closed += 1

        return Port()


def test_oscen_play_midi_in_from_a_fake_port(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recording: tuple[Callable[..., FakeOutputStream], list[FakeOutputStream]],
) -> None:
    """A note played on the (fake) keyboard reaches the patch's MidiParser through the callback."""
    factory, streams = recording
    backend = FakeMidiBackend(
        ["Fake Keys 20:0", "Other Port"], [mido.Message("note_on", note=69, velocity=100)]
    )
    monkeypatch.setattr("oscen.midi.live._default_backend", lambda: backend)
    monkeypatch.setattr(realtime, "default_stream_factory", lambda: factory)
    monkeypatch.setenv(realtime.FAKE_AUDIO_ENV, "1")
    synth = write(tmp_path, SYNTH, "synth.py")
    assert main(["play", str(synth), "--seconds", "0.2", "--midi-in", "keys"]) == 0
    out = capsys.readouterr().out
    assert "MIDI from 'Fake Keys 20:0'" in out and "; 1 MIDI message" in out
    assert backend.closed == 1
    audio = delivered(streams[0])[0]
    assert np.abs(audio[:2000]).max() > 0.3  # the note sounds from the first block on
    spectrum = np.abs(np.fft.rfft(audio[:8192]))
    assert abs(np.argmax(spectrum) * SR / 8192 - 440.0) < 10.0  # note 69 is A 440


def test_oscen_play_midi_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(realtime.FAKE_AUDIO_ENV, "1")
    synth = write(tmp_path, SYNTH, "synth.py")

    monkeypatch.setattr("oscen.midi.live._default_backend", lambda: FakeMidiBackend([]))
    assert main(["play", str(synth), "--midi-in"]) == 2
    assert "no MIDI input ports found" in capsys.readouterr().err

    class NoRtmidi:
        def get_input_names(self) -> list[str]:
            raise ImportError("No module named 'rtmidi'")

    monkeypatch.setattr("oscen.midi.live._default_backend", lambda: NoRtmidi())
    assert main(["play", str(synth), "--midi-in", "keys"]) == 2
    assert "pip install python-rtmidi" in capsys.readouterr().err

    assert main(["play", str(write(tmp_path, TONE, "tone.py")), "--midi-in"]) == 2
    assert "has no MidiParser node" in capsys.readouterr().err
