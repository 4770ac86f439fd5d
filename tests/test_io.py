"""Rendering and WAV files: layouts, round trips, and the errors a user meets first."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import soundfile as sf

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
