"""Pluck (Karplus-Strong) in both engines: measured pitch, measured decay and release times,
velocity, seeds, and a string whose pitch is modulated while it rings."""

from __future__ import annotations

import numpy as np
import pytest
from both_engines import SR, check_example, run_node
from node_harness import assert_compilable

from oscen.pluck import Pluck

N = int(SR)


def pitch_near(x: np.ndarray, f: float) -> float:
    """The spectral peak within a semitone of ``f`` (Hann window, 16x zero padding, parabolic)."""
    m = len(x)
    pad = 16 * m
    spectrum = np.abs(np.fft.rfft(x * np.hanning(m), pad))
    freqs = np.fft.rfftfreq(pad, 1 / SR)
    band = np.flatnonzero((freqs > f * 2 ** (-1 / 12)) & (freqs < f * 2 ** (1 / 12)))
    i = band[np.argmax(spectrum[band])]
    a, b, c = np.log(spectrum[i - 1 : i + 2])
    return (i + 0.5 * (a - c) / (a - 2 * b + c)) * SR / pad


def fundamental_db(y: np.ndarray, f: float, frame: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame centre times in s, level of the component at f in dB) over y[start:stop]."""
    t = np.arange(frame)
    times, levels = [], []
    for s in range(start, stop - frame + 1, frame):
        z = np.sum(y[s : s + frame] * np.exp(-2j * np.pi * f * (s + t) / SR))
        times.append((s + frame / 2) / SR)
        levels.append(20 * np.log10(abs(z)))
    return np.array(times), np.array(levels)


def pluck(make, n: int = N, events=((0, "trigger", 0.8),), **kw) -> list[np.ndarray]:
    return list(run_node(make, n, events=list(events), **kw).values())


@pytest.mark.parametrize("f", [110.0, 440.0, 1318.51])
@pytest.mark.parametrize("brightness", [0.0, 1.0])
def test_pitch_is_the_frequency_within_a_tenth_of_a_cent(f: float, brightness: float) -> None:
    for y in pluck(lambda: Pluck(f, decay=1.0, brightness=brightness), n=N // 2):
        cents = 1200 * np.log2(pitch_near(y[2000:], f) / f)
        assert abs(cents) < 0.1  # measured: under 0.02 cent


@pytest.mark.parametrize(("f", "brightness", "decay"), [(110.0, 0.5, 1.0), (440.0, 0.0, 0.5), (440.0, 1.0, 1.0),
                                                       (1318.51, 0.5, 0.7)])  # fmt: skip
def test_fundamental_decays_60_db_in_the_decay_time(f: float, brightness: float, decay: float) -> None:
    for y in pluck(lambda: Pluck(f, decay=decay, brightness=brightness)):
        times, levels = fundamental_db(y, f, 2048, 4096, int(decay * SR))
        slope = np.polyfit(times, levels, 1)[0]  # dB per second
        assert -60.0 / slope == pytest.approx(decay, rel=0.02)


def test_note_off_damps_with_the_release_time() -> None:
    f, off = 440.0, 11025
    for y in pluck(lambda: Pluck(f, decay=3.0, release=0.1), events=[(0, "trigger", 1.0), (off, "trigger", 0.0)]):
        before_t, before = fundamental_db(y, f, 1000, 1000, off)
        after_t, after = fundamental_db(y, f, 500, off + 500, off + 4500)
        assert -60.0 / np.polyfit(before_t, before, 1)[0] == pytest.approx(3.0, rel=0.05)
        assert -60.0 / np.polyfit(after_t, after, 1)[0] == pytest.approx(0.1, rel=0.02)


def test_velocity_scales_the_pluck_and_seeds_choose_the_noise() -> None:
    loud = pluck(lambda: Pluck(330.0, seed=3), n=5000, events=[(10, "trigger", 0.8)])[0]
    soft = pluck(lambda: Pluck(330.0, seed=3), n=5000, events=[(10, "trigger", 0.4)])[0]
    other = pluck(lambda: Pluck(330.0, seed=4), n=5000, events=[(10, "trigger", 0.8)])[0]
    np.testing.assert_allclose(soft, 0.5 * loud, atol=1e-12)  # the string is linear
    assert np.all(loud[:10] == 0.0) and np.abs(loud[10:200]).max() > 0.3  # nothing before the trigger
    assert np.abs(other - loud).max() > 0.1


def test_repluck_and_vibrato_in_both_engines() -> None:
    n = 20000
    vibrato = 220.0 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.0 * np.arange(n) / SR))
    outs = pluck(lambda: Pluck(220.0, decay=1.5, brightness=0.7), n=n,
                 events=[(0, "trigger", 1.0), (7000, "trigger", 0.6), (15000, "trigger", 0.0)],
                 inputs={"frequency": vibrato}, engines=("interpreted", "state", "jitgraph"))  # fmt: skip
    for y in outs:
        assert np.all(np.isfinite(y)) and np.abs(y).max() < 2.0
        assert np.abs(y[-500:]).max() < np.abs(y[14000:14500]).max() * 1e-2  # damped after the note off


def test_pluck_refuses_bad_construction_and_stays_compilable() -> None:
    with pytest.raises(ValueError, match="min_frequency"):
        Pluck(min_frequency=0.0)
    assert_compilable(Pluck(), events=[(0, "trigger", (1.0,)), (100, "trigger", (0.0,))])


def test_example_patch_renders_the_same_in_both_engines() -> None:
    check_example("pluck_patch.py", seconds=0.1)  # 29 nodes: keep the interpreted run short


def test_nan_frequency_plays_the_lowest_note_instead_of_faulting() -> None:
    for y in pluck(lambda: Pluck(float("nan"), min_frequency=40.0), n=3000):
        assert np.all(np.isfinite(y)) and np.abs(y).max() > 0.1
