"""Sampler and AudioFileInput: pitch measured on a resampled sine, interpolation error against the
analytic signal (and against 4-point Hermite), exact loop points and seamless loops, modes,
velocity, key zones, files, in both engines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from engines_support import both_engines, example_renders, one_node
from jit_support import event, set_value
from node_harness import assert_compilable

from oscen.sampler import AudioFileInput, Sampler, Zone

SR = 44100.0


def sine(freq: float, n: int, rate: float = SR, amplitude: float = 1.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(n) / rate)


def measured_frequency(y: np.ndarray, rate: float = SR) -> float:
    """From the upward zero crossings, interpolated linearly."""
    up = np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0))
    crossings = up - y[up] / (y[up + 1] - y[up])
    return float(rate * (len(crossings) - 1) / (crossings[-1] - crossings[0]))


def note(at: int, number: float, velocity: float = 1.0, label: str = "node"):
    return event(0, f"{label}.note", (number, velocity), offset=at)


def hermite4(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """4-point, 3rd-order Hermite (Catmull-Rom) at fractional positions, for comparison."""
    i = np.floor(pos).astype(int)
    t = pos - i
    xm1, x0, x1, x2 = (x[np.clip(i + k, 0, len(x) - 1)] for k in (-1, 0, 1, 2))
    c1 = 0.5 * (x1 - xm1)
    c2 = xm1 - 2.5 * x0 + 2 * x1 - 0.5 * x2
    c3 = 0.5 * (x2 - xm1) + 1.5 * (x0 - x1)
    return ((c3 * t + c2) * t + c1) * t + x0


@pytest.mark.parametrize("semitones", [0, 7, -5, 12])
def test_pitch_follows_the_note(semitones: int) -> None:
    source = sine(440.0, 44100)
    n = 8000
    outs = both_engines(one_node(lambda: Sampler(source, root=69)), n, [note(0, 69 + semitones)])
    ratio = 2 ** (semitones / 12)
    for y in outs.values():
        assert measured_frequency(y) == pytest.approx(440.0 * ratio, abs=0.01)
        # against the analytic resampled sine: sin(2 pi 440 ratio t)
        np.testing.assert_allclose(y[10:], sine(440.0 * ratio, n)[10:], atol=1e-8)


def test_interpolation_error_against_analytic_and_hermite() -> None:
    # a sine at a tenth of Nyquist and one at a fifth, read at 0.7937x (4 semitones down)
    n = 6000
    ratio = 2 ** (-4 / 12)
    pos = np.arange(n) * ratio
    for freq, bound_db, better_db in ((2205.0, -110.0, 40.0), (4410.0, -75.0, 20.0)):
        source = sine(freq, 10000)
        outs = both_engines(one_node(lambda source=source: Sampler(source, root=60)), n, [note(0, 56)])
        exact = np.sin(2 * np.pi * freq * pos / SR)
        hermite_db = 20 * np.log10(np.sqrt(np.mean((hermite4(source, pos)[10:] - exact[10:]) ** 2)))
        for y in outs.values():
            error_db = 20 * np.log10(np.sqrt(np.mean((y[10:] - exact[10:]) ** 2)))
            print(
                f"{freq} Hz read at {ratio:.4f}x: 6-point {error_db:.1f} dB, 4-point Hermite {hermite_db:.1f} dB"
            )
            assert error_db < bound_db, f"{freq} Hz: {error_db:.1f} dB"
            assert error_db < hermite_db - better_db, (
                f"{freq} Hz: 6-point {error_db:.1f} dB, Hermite {hermite_db:.1f} dB"
            )


def test_loop_points_are_exact() -> None:
    rng = np.random.default_rng(1)
    source = rng.uniform(-1, 1, 1000)
    start, end = 300, 700
    n = 2500
    outs = both_engines(one_node(lambda: Sampler(source, 60, "loop", start, end)), n, [note(0, 60)])
    want = np.concatenate([source[:end]] + [source[start:end]] * 5)[:n]
    for y in outs.values():
        np.testing.assert_array_equal(y, want)  # unpitched: the samples themselves, bit for bit


def test_a_loop_of_whole_periods_is_seamless_at_any_pitch() -> None:
    # 441 Hz has a period of exactly 100 samples; loop 20 periods and play 3 semitones up: with
    # the interpolator reading across the seam from the loop's other end, it stays the pure sine
    source = sine(441.0, 4000)
    n = 20000
    outs = both_engines(one_node(lambda: Sampler(source, 60, "loop", 1000, 3000)), n, [note(0, 63)])
    ratio = 2 ** (3 / 12)
    for y in outs.values():
        np.testing.assert_allclose(y[10:], sine(441.0 * ratio, n)[10:], atol=1e-7)


def test_oneshot_ignores_release_and_stops_at_the_end() -> None:
    source = np.ones(500)
    outs = both_engines(one_node(lambda: Sampler(source)), 1000, [note(10, 60), note(100, 60, 0.0)])
    for y in outs.values():
        assert np.all(y[:10] == 0) and np.all(y[10:510] == 1.0) and np.all(y[510:] == 0)


def test_gate_mode_fades_out_over_the_release() -> None:
    source = np.ones(5000)
    release = 100 / SR
    outs = both_engines(one_node(lambda: Sampler(source, mode="gate", release=release)), 1000,
                        [note(0, 60, 0.8), note(300, 60, 0.0)])  # fmt: skip
    for y in outs.values():
        assert np.all(y[:300] == 0.8)
        np.testing.assert_allclose(y[300:400], 0.8 * (1 - np.arange(100) / 100), atol=1e-12)
        assert np.all(y[400:] == 0.0)


def test_release_of_another_note_is_ignored() -> None:
    source = np.ones(5000)
    outs = both_engines(one_node(lambda: Sampler(source, mode="gate", release=0.0)), 600,
                        [note(0, 60), note(100, 62, 0.0), note(200, 60, 0.0)])  # fmt: skip
    for y in outs.values():
        assert np.all(y[:200] == 1.0) and np.all(y[200:] == 0.0)


def test_velocity_scales_the_level() -> None:
    source = np.ones(1000)
    for sensitivity, levels in ((1.0, (0.25, 1.0)), (0.5, (0.625, 1.0)), (0.0, (1.0, 1.0))):
        outs = both_engines(one_node(lambda s=sensitivity: Sampler(source, velocity_sensitivity=s, gain=0.5)), 400,
                            [note(0, 60, 0.25), note(200, 60, 1.0)])  # fmt: skip
        for y in outs.values():
            assert y[100] == pytest.approx(0.5 * levels[0]) and y[300] == pytest.approx(0.5 * levels[1])


def test_key_and_velocity_zones_pick_the_sample() -> None:
    low = Zone(sine(220.0, 20000), root=57, high=59)
    high_soft = Zone(sine(880.0, 20000), root=81, low=60, velocity_high=0.5)
    high_loud = Zone(sine(880.0, 20000, amplitude=0.5), root=81, low=60, velocity_low=0.5)
    make = lambda: Sampler.zones([low, high_soft, high_loud], mode="gate", release=0.0)  # noqa: E731
    n = 12000
    actions = [note(0, 55), note(3000, 55, 0.0), note(4000, 84, 0.4), note(8000, 84, 0.9)]
    for y in both_engines(one_node(make), n, actions).values():
        assert measured_frequency(y[100:2900]) == pytest.approx(220 * 2 ** (-2 / 12), abs=0.05)
        assert np.all(y[3000:4000] == 0)
        assert measured_frequency(y[4100:7900]) == pytest.approx(880 * 2 ** (3 / 12), abs=0.05)
        assert np.max(np.abs(y[4100:7900])) == pytest.approx(0.4, abs=1e-3)  # soft layer, velocity 0.4
        assert np.max(np.abs(y[8100:])) == pytest.approx(0.45, abs=1e-3)  # loud layer (0.5) at 0.9
    # a velocity above 1 counts as 1: the loud layer, at full level
    for y in both_engines(one_node(make), 2000, [note(0, 84, 1.5)]).values():
        assert np.max(np.abs(y[100:])) == pytest.approx(0.5, abs=1e-3)
    # a note no zone covers is ignored
    silent = one_node(lambda: Sampler.zones([Zone(np.ones(100), low=60, high=60)]))().process_block(10)
    assert np.all(silent == 0)


def test_gate_plays_at_the_frequency_input(tmp_path: Path) -> None:
    # the voice interface: pitch on `frequency`, velocity on `gate`; a file at 48 kHz played at
    # 44.1 kHz keeps its pitch (the rate ratio is applied)
    path = tmp_path / "tone.wav"
    sf.write(str(path), sine(1000.0, 48000, rate=48000.0, amplitude=0.5), 48000, subtype="FLOAT")
    n = 6000
    actions = [set_value(0, "node.frequency", 2 * 261.6255653005986), event(0, "node.gate", 1.0)]
    for y in both_engines(one_node(lambda: Sampler(path, root=60)), n, actions).values():
        assert measured_frequency(y) == pytest.approx(2000.0, abs=0.02)  # an octave up
        assert np.max(np.abs(y)) == pytest.approx(0.5, abs=1e-3)


def test_audio_file_input_passes_samples_unchanged_and_loops(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    stereo = rng.uniform(-0.9, 0.9, (2, 300)).astype(np.float32).astype(np.float64)
    path = tmp_path / "in.wav"
    sf.write(str(path), stereo.T, 44100, subtype="FLOAT")
    build = one_node(lambda: AudioFileInput(path, loop=True), outputs=("left", "right", "output"))
    for left, right, mono in both_engines(build, 700).values():
        np.testing.assert_array_equal(left, np.tile(stereo[0], 3)[:700])
        np.testing.assert_array_equal(right, np.tile(stereo[1], 3)[:700])
        np.testing.assert_allclose(mono, np.tile(stereo.mean(axis=0), 3)[:700], atol=1e-15)


def test_audio_file_input_play_and_stop_events() -> None:
    data = np.arange(1, 101, dtype=float)
    build = one_node(lambda: AudioFileInput(data, autoplay=False))
    actions = [event(0, "node.play", (), offset=10), event(0, "node.stop", (), offset=60),
               event(0, "node.play", (), offset=80)]  # fmt: skip
    for y in both_engines(build, 300, actions).values():
        assert np.all(y[:10] == 0)
        np.testing.assert_array_equal(y[10:60], data[:50])
        assert np.all(y[60:80] == 0)
        np.testing.assert_array_equal(y[80:180], data)
        assert np.all(y[180:] == 0)


def test_audio_file_input_resamples_to_the_graph_rate() -> None:
    source = sine(1000.0, 48000, rate=48000.0)
    for y in both_engines(one_node(lambda: AudioFileInput(source, sample_rate=48000.0)), 8000).values():
        assert measured_frequency(y) == pytest.approx(1000.0, abs=0.01)
        np.testing.assert_allclose(y[10:], sine(1000.0, 8000)[10:], atol=1e-8)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown mode 'hold'"):
        Sampler(np.ones(10), mode="hold")
    with pytest.raises(ValueError, match="loop points must satisfy 0 <= loop_start < loop_end <= 10"):
        Sampler(np.ones(10), loop_start=5, loop_end=20)
    with pytest.raises(
        ValueError, match="Sampler zone 0: cannot load the sound: .*no such file: .*missing.wav"
    ):
        Sampler(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ValueError, match="AudioFileInput: cannot load the sound: .*text.wav"):
        AudioFileInput(tmp_path / "text.wav")
    with pytest.raises(ValueError, match="has no samples"):
        AudioFileInput(np.zeros(0))
    with pytest.raises(ValueError, match="key range"):
        Sampler.zones([Zone(np.ones(4), low=70, high=60)])
    with pytest.raises(ValueError, match="NaN"):
        Sampler(np.array([0.0, np.nan]))


@pytest.mark.parametrize("make", [lambda: Sampler(np.ones(50), mode="loop", loop_start=10),
                                  lambda: AudioFileInput(np.ones(50), sample_rate=48000.0)])  # fmt: skip
def test_compilable_subset(make) -> None:
    assert_compilable(make())


def test_example_patch_renders_in_both_engines() -> None:
    out = example_renders("sampler_patch.py", seconds=0.15)
    assert np.max(np.abs(out)) > 0.05


def test_pitch_changes_while_playing_are_followed() -> None:
    # a gate follows `frequency` (a bend), a note follows `transpose`, both from the next sample
    source = sine(440.0, 44100)
    n = 8000
    gate = [
        set_value(0, "node.frequency", 440.0),
        event(0, "node.gate", 1.0),
        set_value(4000, "node.frequency", 660.0),
    ]
    for y in both_engines(one_node(lambda: Sampler(source, root=69)), n, gate).values():
        assert measured_frequency(y[:3990]) == pytest.approx(440.0, abs=0.02)
        assert measured_frequency(y[4010:]) == pytest.approx(660.0, abs=0.02)
    transposed = [note(0, 69), set_value(4000, "node.transpose", -12.0)]
    for y in both_engines(one_node(lambda: Sampler(source, root=69)), n, transposed).values():
        assert measured_frequency(y[:3990]) == pytest.approx(440.0, abs=0.02)
        assert measured_frequency(y[4010:]) == pytest.approx(220.0, abs=0.02)


def test_loop_shorter_than_a_step_wraps_exactly() -> None:
    # three octaves up a step is 8 samples, almost a whole 10-sample loop: positions wrap by
    # whole loop lengths and stay on exact samples
    rng = np.random.default_rng(2)
    source = rng.uniform(-1, 1, 200)
    n = 300
    outs = both_engines(one_node(lambda: Sampler(source, 60, "loop", 100, 110)), n, [note(0, 96)])
    p = 8 * np.arange(n)
    index = np.where(p < 110, p, 100 + (p - 100) % 10)
    for y in outs.values():
        np.testing.assert_array_equal(y, source[index])
