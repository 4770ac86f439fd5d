"""Rendering and WAV files: layouts, round trips, and the errors a user meets first."""

from __future__ import annotations

import importlib
import math
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import oscen.io as oscen_io
from oscen import Graph, Node, StreamOutput
from oscen.io import WavError, read_wav, render, render_to_wav, write_wav

# oscen.io.render the function shadows oscen.io.render the module as an attribute of the package.
render_module = importlib.import_module("oscen.io.render")


class Counter(Node):
    """Outputs 0, 1, 2, ... so every sample says where it came from."""

    output = StreamOutput()

    def __init__(self) -> None:
        self.n = 0.0

    def process(self, sample_rate: float) -> None:
        self.output = self.n
        self.n += 1.0


class Stereo(Node):
    left = StreamOutput()
    right = StreamOutput()

    def __init__(self) -> None:
        self.n = 0

    def process(self, sample_rate: float) -> None:
        self.left = math.sin(self.n * 0.01) * 0.5
        self.right = -self.left
        self.n += 1


class FakeEngine:
    """The smallest graph-like object: render must not need more than this."""

    def __init__(self, sample_rate: float = 1000.0, channels: int = 1) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.calls: list[int] = []

    def process_block(self, n: int) -> np.ndarray:
        self.calls.append(n)
        start = sum(self.calls) - n
        block = np.arange(start, start + n, dtype=np.float64)
        return block if self.channels == 1 else np.stack([block * (c + 1) for c in range(self.channels)])


def counter_graph(sample_rate: float = 1000.0) -> Graph:
    graph = Graph(sample_rate)
    graph.add_node(Counter())
    return graph


# ------------------------------------------------------------------------------ render
def test_render_is_continuous_across_blocks() -> None:
    out = render(counter_graph(), 1.0, block_size=64, progress=False)
    assert out.dtype == np.float64
    assert out.shape == (1000,)
    np.testing.assert_array_equal(out, np.arange(1000.0))


def test_render_stereo_layout_is_channels_first() -> None:
    graph = Graph(8000.0)
    node = graph.add_node(Stereo())
    graph.set_output(node.left, node.right)
    out = render(graph, 0.1, block_size=100, progress=False)
    assert out.shape == (2, 800)
    np.testing.assert_allclose(out[0], -out[1])


def test_render_works_with_any_graph_like_and_last_block_is_short() -> None:
    engine = FakeEngine(1000.0, channels=3)
    out = render(engine, 0.25, block_size=100, progress=False)
    assert engine.calls == [100, 100, 50]
    assert out.shape == (3, 250)
    np.testing.assert_array_equal(out[2], np.arange(250.0) * 3)


def test_render_zero_seconds_keeps_layout() -> None:
    graph = Graph(8000.0)
    node = graph.add_node(Stereo())
    graph.set_output(node.left, node.right)
    assert render(graph, 0.0, progress=False).shape == (2, 0)
    assert render(counter_graph(), 0.0, progress=False).shape == (0,)


@pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
def test_render_rejects_bad_seconds(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        render(counter_graph(), seconds)


def test_render_rejects_bad_block_size() -> None:
    with pytest.raises(ValueError, match="block_size"):
        render(counter_graph(), 0.1, block_size=0)


def test_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    render(counter_graph(), 0.5, progress=None)
    render(counter_graph(), 0.5, progress=False)
    assert capsys.readouterr().err == ""
    render(counter_graph(), 0.5, progress=True)
    assert "rendering" in capsys.readouterr().err


def test_auto_progress_needs_a_long_render_and_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_module, "_stderr_is_terminal", lambda: True)
    # 1 ms per 10 samples, 100 000 samples to go: about 10 s expected -> a bar.
    assert render_module._expect_long(0.0, (0.001, 10), 0.3, 3000, 100_000)
    # The same speed for a short render: no bar.
    assert not render_module._expect_long(0.0, (0.001, 10), 0.3, 3000, 4000)
    monkeypatch.setattr(render_module, "_stderr_is_terminal", lambda: False)
    assert not render_module._expect_long(0.0, (0.001, 10), 0.3, 3000, 100_000)


# ------------------------------------------------------------------------------ WAV
def test_mono_round_trip(tmp_path) -> None:
    samples = np.sin(np.arange(4410) * 0.05) * 0.7
    path = write_wav(tmp_path / "mono.wav", samples, 44100)
    info = sf.info(str(path))
    assert (info.channels, info.frames, info.samplerate, info.subtype) == (1, 4410, 44100, "FLOAT")
    back, rate = read_wav(path)
    assert rate == 44100.0
    assert back.shape == (4410,) and back.dtype == np.float64
    np.testing.assert_allclose(back, samples, atol=1e-7)  # float32 on disk


def test_stereo_is_written_as_soundfile_frames(tmp_path) -> None:
    left = np.linspace(-0.5, 0.5, 1000)
    right = np.full(1000, 0.25)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right]), 48000.0)
    frames, rate = sf.read(str(path))
    assert rate == 48000 and frames.shape == (1000, 2)
    np.testing.assert_allclose(frames[:, 0], left, atol=1e-7)
    np.testing.assert_allclose(frames[:, 1], right, atol=1e-7)
    back, _ = read_wav(path)
    assert back.shape == (2, 1000)


@pytest.mark.parametrize(("subtype", "tolerance"), [("PCM_16", 1 / 2**14), ("PCM_24", 1 / 2**22)])
def test_pcm_subtypes_round_trip_and_clip(tmp_path, subtype: str, tolerance: float) -> None:
    samples = np.array([0.0, 0.5, -0.5, 1.5, -1.5, 0.123])
    with pytest.warns(
        oscen_io.ClippingWarning, match=rf"peaks at 1.5 \(\+3.5 dBFS\) but WAV {subtype} .*2 samples clipped"
    ):
        path = write_wav(tmp_path / "pcm.wav", samples, 8000, subtype=subtype.lower())
    assert sf.info(str(path)).subtype == subtype
    back, _ = read_wav(path)
    np.testing.assert_allclose(back, np.clip(samples, -1, 1), atol=tolerance)


def test_float_keeps_overs(tmp_path) -> None:
    back, _ = read_wav(write_wav(tmp_path / "loud.wav", np.array([2.0, -3.0]), 8000))
    np.testing.assert_array_equal(back, [2.0, -3.0])


def test_normalize_to_peak(tmp_path) -> None:
    samples = np.stack([np.array([0.1, -0.2, 0.05]), np.array([0.0, 0.4, -0.1])])
    back, _ = read_wav(write_wav(tmp_path / "n.wav", samples, 8000, normalize=True, peak_db=0.0))
    assert np.max(np.abs(back)) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(back, samples / 0.4, atol=1e-6)  # one gain for all channels


def test_nan_error_says_where(tmp_path) -> None:
    samples = np.zeros((2, 2000))
    samples[1, 1500] = np.nan
    samples[0, 1700] = np.inf
    with pytest.raises(WavError, match=r"first is nan at sample 1500 \(1\.500000 s\), channel 1"):
        write_wav(tmp_path / "bad.wav", samples, 1000)
    assert not (tmp_path / "bad.wav").exists()


def test_bad_paths_are_clear(tmp_path) -> None:
    with pytest.raises(WavError, match="does not exist"):
        write_wav(tmp_path / "missing" / "x.wav", np.zeros(10), 8000)
    with pytest.raises(WavError, match="is a directory"):
        write_wav(tmp_path, np.zeros(10), 8000)
    with pytest.raises(WavError, match="no such file"):
        read_wav(tmp_path / "nothing.wav")


def test_bad_shapes_and_rates(tmp_path) -> None:
    with pytest.raises(WavError, match=r"pass samples\.T"):
        write_wav(tmp_path / "x.wav", np.zeros((1000, 2)), 8000)
    with pytest.raises(WavError, match="shape"):
        write_wav(tmp_path / "x.wav", np.zeros((2, 2, 2)), 8000)
    with pytest.raises(WavError, match="whole number"):
        write_wav(tmp_path / "x.wav", np.zeros(10), 44100.5)
    with pytest.raises(WavError, match="subtype"):
        write_wav(tmp_path / "x.wav", np.zeros(10), 8000, subtype="MP3")


def test_render_to_wav(tmp_path) -> None:
    graph = Graph(8000.0)
    node = graph.add_node(Stereo())
    graph.set_output(node.left, node.right)
    samples = render_to_wav(graph, tmp_path / "out.wav", 0.5, block_size=128, progress=False)
    back, rate = read_wav(tmp_path / "out.wav")
    assert rate == 8000.0 and back.shape == samples.shape == (2, 4000)
    np.testing.assert_allclose(back, samples, atol=1e-7)


def test_render_to_wav_checks_the_path_before_rendering(tmp_path) -> None:
    engine = FakeEngine()
    with pytest.raises(ValueError, match="does not exist"):
        render_to_wav(engine, tmp_path / "no" / "out.wav", 10.0)
    assert engine.calls == []


# ------------------------------------------------------------------------------ streaming to files
class LoudEngine:
    """Stereo blocks of a known signal (a ramp times ``gain``), each a fresh array, like an engine's."""

    def __init__(self, sample_rate: float = 8000.0, gain: float = 0.5, nan_at: int | None = None) -> None:
        self.sample_rate = sample_rate
        self.gain = gain
        self.nan_at = nan_at
        self.frame = 0
        self.calls = 0

    def signal(self, start: int, n: int) -> np.ndarray:
        t = np.arange(start, start + n, dtype=np.float64)
        block = np.stack([np.sin(t * 0.01) * self.gain, np.cos(t * 0.003) * self.gain])
        if self.nan_at is not None and start <= self.nan_at < start + n:
            block[1, self.nan_at - start] = np.nan
        return block

    def process_block(self, n: int) -> np.ndarray:
        self.calls += 1
        block = self.signal(self.frame, n)
        self.frame += n
        return block


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".aiff"])
def test_render_to_file_equals_render_in_every_lossless_format(tmp_path: Path, suffix: str) -> None:
    result = oscen_io.render_to_file(
        LoudEngine(), tmp_path / f"out{suffix}", 0.5, block_size=300, progress=False
    )
    expected = render(LoudEngine(), 0.5, block_size=300, progress=False)
    back, rate = read_wav(result.path)
    assert (result.frames, result.channels, rate) == (4000, 2, 8000.0)
    assert result.peak == pytest.approx(np.max(np.abs(expected))) and result.clipped == 0
    tolerance = 1e-7 if suffix == ".wav" else 2 / 2**23  # float32 / 24-bit PCM on disk
    np.testing.assert_allclose(back, expected, atol=tolerance)
    assert sf.info(str(result.path)).format == {".wav": "WAV", ".flac": "FLAC", ".aiff": "AIFF"}[suffix]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("suffix", "fmt"), [(".ogg", "OGG"), (".mp3", "MP3")])
def test_render_to_file_writes_lossy_formats_by_extension(tmp_path: Path, suffix: str, fmt: str) -> None:
    if fmt not in sf.available_formats():
        with pytest.raises(WavError, match=f"no {fmt} support"):
            oscen_io.render_to_file(LoudEngine(), tmp_path / f"out{suffix}", 0.5)
        return
    result = oscen_io.render_to_file(LoudEngine(44100.0), tmp_path / f"out{suffix}", 0.5, progress=False)
    info = sf.info(str(result.path))
    assert info.format == fmt and info.channels == 2 and info.samplerate == 44100
    assert abs(info.frames - 22050) <= 2048  # codec padding
    back, _ = read_wav(result.path)
    assert 0.3 < np.max(np.abs(back)) < 0.7


def test_an_unknown_extension_is_refused_before_rendering(tmp_path: Path) -> None:
    engine = LoudEngine()
    for name in ("out.m4a", "out", "out.txt"):
        with pytest.raises(WavError, match=r"not a sound file format oscen writes; use one of \.wav, \.flac"):
            oscen_io.render_to_file(engine, tmp_path / name, 1.0)
    with pytest.raises(WavError, match="subtype must be one of PCM_16, PCM_24 for a FLAC file, got 'FLOAT'"):
        oscen_io.render_to_file(engine, tmp_path / "out.flac", 1.0, subtype="FLOAT")
    with pytest.raises(WavError, match="does not exist"):
        oscen_io.render_to_file(engine, tmp_path / "no" / "out.wav", 1.0)
    assert engine.calls == 0 and list(tmp_path.iterdir()) == []
    with pytest.raises(WavError, match="names a MP3 file; write_audio writes that format"):
        write_wav(tmp_path / "x.mp3", np.zeros(10), 8000)


def test_clipping_says_so_with_the_peak(tmp_path: Path) -> None:
    with pytest.warns(
        oscen_io.ClippingWarning, match=r"peaks at 3 \(\+9.5 dBFS\) but WAV PCM_16 holds only -1..1"
    ):
        result = oscen_io.render_to_file(
            LoudEngine(gain=3.0), tmp_path / "loud.wav", 0.5, subtype="PCM_16", progress=False
        )
    assert result.peak == pytest.approx(3.0, rel=1e-3) and result.clipped > 1000
    back, _ = read_wav(result.path)
    assert np.max(np.abs(back)) <= 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float keeps the overs: nothing to say
        oscen_io.render_to_file(LoudEngine(gain=3.0), tmp_path / "float.wav", 0.5, progress=False)
        quiet = oscen_io.render_to_file(LoudEngine(gain=0.9), tmp_path / "quiet.flac", 0.5, progress=False)
    assert quiet.clipped == 0


def test_normalize_streams_to_the_same_result_as_write_audio(tmp_path: Path) -> None:
    samples = render(LoudEngine(gain=3.0), 0.5, progress=False)
    oscen_io.write_audio(tmp_path / "ref.flac", samples, 8000, normalize=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # normalized: nothing clips
        result = oscen_io.render_to_file(
            LoudEngine(gain=3.0), tmp_path / "n.flac", 0.5, block_size=77, normalize=True
        )
    back, _ = read_wav(result.path)
    ref, _ = read_wav(tmp_path / "ref.flac")
    np.testing.assert_array_equal(back, ref)
    assert np.max(np.abs(back)) == pytest.approx(10 ** (-1 / 20), abs=1e-6)
    assert result.peak == pytest.approx(3.0, rel=1e-3) and result.clipped == 0
    assert leftovers(tmp_path) == []  # the temporary float file is gone


@pytest.mark.parametrize(("nan_at", "when"), [(2345, r"0\.293125 s"), (20_000, r"2\.500000 s")])
def test_a_nan_mid_render_says_where_and_leaves_the_old_file(tmp_path: Path, nan_at: int, when: str) -> None:
    path = tmp_path / "out.wav"
    write_wav(path, np.full(10, 0.25), 8000)
    with pytest.raises(WavError, match=rf"first is nan at sample {nan_at} \({when}\), channel 1"):
        oscen_io.render_to_file(LoudEngine(nan_at=nan_at), path, 3.0, block_size=1000)
    back, _ = read_wav(path)
    np.testing.assert_array_equal(back, np.full(10, 0.25))  # a failed render replaces nothing
    assert leftovers(tmp_path) == []


def test_a_zero_length_file_keeps_the_layout(tmp_path: Path) -> None:
    graph = Graph(8000.0)
    node = graph.add_node(Stereo())
    graph.set_output(node.left, node.right)
    result = oscen_io.render_to_file(graph, tmp_path / "empty.wav", 0.0)
    assert (result.frames, result.channels) == (0, 2)
    assert sf.info(str(result.path)).channels == 2


def test_renders_beyond_the_limit_are_refused_before_any_work(tmp_path: Path) -> None:
    engine = LoudEngine(sample_rate=10.0)  # on a build without the limit, this fails fast too
    with pytest.raises(
        oscen_io.RenderLimitError,
        match=r"render: 3601 s of audio is beyond the limit of 3600 s; pass max_seconds=",
    ):
        render(engine, oscen_io.MAX_RENDER_SECONDS + 1)
    with pytest.raises(oscen_io.RenderLimitError, match="beyond the limit of 3600 s"):
        oscen_io.render_to_file(engine, tmp_path / "long.wav", oscen_io.MAX_RENDER_SECONDS + 1)
    with pytest.raises(oscen_io.RenderLimitError, match=r"2 s of audio is beyond the limit of 1 s"):
        render(engine, 2.0, max_seconds=1.0)
    assert engine.calls == 0 and list(tmp_path.iterdir()) == []
    assert render(engine, 2.0, max_seconds=None, progress=False).shape == (2, 20)


def test_a_long_render_to_file_holds_one_block_not_the_signal(tmp_path: Path) -> None:
    """60 s of stereo at 44.1 kHz is 42 MB as float64; the streamed render must stay far below."""
    engine = LoudEngine(sample_rate=44100.0)
    full = 2 * 60 * 44100 * 8
    tracemalloc.start()
    try:
        result = oscen_io.render_to_file(
            engine, tmp_path / "long.flac", 60.0, block_size=4096, progress=False
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.frames == 60 * 44100
    assert peak < full / 40, f"peak {peak / 1e6:.1f} MB while streaming a {full / 1e6:.0f} MB signal"


def test_the_writer_refuses_a_change_of_layout(tmp_path: Path) -> None:
    from oscen.io.wav import AudioWriter

    with pytest.raises(WavError, match="a block of 1 channels for 2-channel audio"):
        with AudioWriter(tmp_path / "x.wav", 8000) as writer:
            writer.write(np.zeros((2, 10)))
            writer.write(np.zeros(10))
    assert list(tmp_path.iterdir()) == []  # the half-written file is gone
