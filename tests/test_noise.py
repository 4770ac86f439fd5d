"""Noise: determinism, white statistics and flat spectrum, pink -3 dB/octave slope."""

from __future__ import annotations

import numpy as np
import pytest
from node_harness import SR, assert_compilable, assert_jit_matches, run1
from scipy import signal, stats

from oscen.noise import PINK, WHITE, Noise

N = 1 << 16


def octave_band_levels(y: np.ndarray, low: float, octaves: int, nperseg: int) -> np.ndarray:
    """Mean power spectral density (dB) in consecutive octave bands starting at `low` Hz."""
    freqs, psd = signal.welch(y, SR, nperseg=nperseg)
    levels = []
    for k in range(octaves):
        band = (freqs >= low * 2**k) & (freqs < low * 2 ** (k + 1))
        levels.append(10.0 * np.log10(psd[band].mean()))
    return np.array(levels)


def test_same_seed_same_noise_other_seed_other_noise() -> None:
    a = run1(Noise.white(1.0, seed=7), 1000)
    b = run1(Noise.white(1.0, seed=7), 1000)
    c = run1(Noise.white(1.0, seed=8), 1000)
    np.testing.assert_array_equal(a, b)
    assert np.corrcoef(a, c)[0, 1] == pytest.approx(0.0, abs=0.1)


def test_uniform_white_statistics() -> None:
    amp = 0.5
    y = run1(Noise.white(amp, seed=1), N)
    assert np.all(y >= -amp) and np.all(y < amp)
    sigma = amp / np.sqrt(3.0)
    assert abs(np.mean(y)) < 4 * sigma / np.sqrt(N)
    assert np.std(y) == pytest.approx(sigma, rel=0.01)
    # uniform: each tenth of the range holds a tenth of the samples
    counts, _ = np.histogram(y, bins=10, range=(-amp, amp))
    assert stats.chisquare(counts).pvalue > 1e-3
    # no correlation between neighbours
    assert abs(np.corrcoef(y[:-1], y[1:])[0, 1]) < 4 / np.sqrt(N)


def test_gaussian_white_statistics() -> None:
    amp = 0.25
    y = run1(Noise.white(amp, seed=2, gaussian=True), N)
    assert abs(np.mean(y)) < 4 * amp / np.sqrt(N)
    assert np.std(y) == pytest.approx(amp, rel=0.01)
    assert stats.kurtosis(y) == pytest.approx(0.0, abs=0.1)  # excess kurtosis of a normal
    assert stats.kstest(y / amp, "norm").pvalue > 1e-3


@pytest.mark.parametrize("gaussian", [False, True])
def test_white_spectrum_is_flat(gaussian: bool) -> None:
    y = run1(Noise.white(1.0, seed=3, gaussian=gaussian), N)
    levels = octave_band_levels(y, 100.0, 7, 1024)  # 100 Hz .. 12.8 kHz
    assert np.max(np.abs(levels - levels.mean())) < 1.0, levels


def test_pink_slope_is_minus_3_db_per_octave() -> None:
    y = run1(Noise.pink(1.0, seed=4), 1 << 18)
    levels = octave_band_levels(y, 40.0, 9, 8192)  # 40 Hz .. 20.48 kHz
    steps = np.diff(levels)
    np.testing.assert_allclose(steps, -3.0103, atol=1.0)
    slope = np.polyfit(np.arange(len(levels)), levels, 1)[0]
    assert slope == pytest.approx(-3.0103, abs=0.3)


def test_pink_has_the_rms_of_its_white_source() -> None:
    pink = run1(Noise.pink(1.0, seed=5), N)
    assert np.std(pink) == pytest.approx(1.0 / np.sqrt(3.0), rel=0.05)


def test_constructor_checks_and_colors() -> None:
    assert Noise(color="pink").color == PINK
    assert Noise().color == WHITE
    with pytest.raises(ValueError):
        Noise(color="purple")


@pytest.mark.parametrize("color", ["white", "pink"])
@pytest.mark.parametrize("gaussian", [False, True])
def test_compilable_subset(color: str, gaussian: bool) -> None:
    assert_compilable(Noise(0.5, color, gaussian, seed=3))


@pytest.mark.parametrize("color", ["white", "pink"])
@pytest.mark.parametrize("gaussian", [False, True])
def test_jit_matches_interpreter(color: str, gaussian: bool) -> None:
    assert_jit_matches(lambda: Noise(0.7, color, gaussian, seed=5), noise_into=())
