"""Oscillator: pitch, amplitude, waveform shapes, aliasing of the band-limited variants, FM and PM."""

from __future__ import annotations

import math

import numpy as np
import pytest
from node_harness import SR, assert_compilable, assert_jit_matches, run, run1

from oscen.oscillators import SAW, SINE, SQUARE, TRIANGLE, Oscillator


def zero_crossing_frequency(y: np.ndarray, sample_rate: float = SR) -> float:
    """Frequency from the first and last rising zero crossings, linearly interpolated."""
    idx = np.nonzero((y[:-1] < 0.0) & (y[1:] >= 0.0))[0]
    times = idx + (-y[idx]) / (y[idx + 1] - y[idx])
    return (len(times) - 1) / (times[-1] - times[0]) * sample_rate


def fft_peak_frequency(y: np.ndarray, sample_rate: float = SR) -> float:
    """Strongest spectral peak, refined by a parabola through the log magnitudes (Hann window)."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    k = int(np.argmax(spectrum[1:])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + offset) * sample_rate / len(y)


def alias_ratio_db(y: np.ndarray, f0: float, sample_rate: float = SR) -> float:
    """Energy away from the harmonics of f0 (below Nyquist) relative to the total, in dB."""
    spectrum = np.abs(np.fft.rfft(y * np.blackman(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1.0 / sample_rate)
    away = freqs > 40.0
    for k in range(1, int(sample_rate / 2 / f0) + 1):
        away &= np.abs(freqs - k * f0) > 40.0
    return float(10.0 * np.log10(spectrum[away].sum() / spectrum.sum()))


@pytest.mark.parametrize("freq", [55.0, 440.0, 1000.5, 4321.0])
def test_sine_pitch_by_zero_crossings(freq: float) -> None:
    y = run1(Oscillator.sine(freq, 1.0), 8192)
    assert zero_crossing_frequency(y) == pytest.approx(freq, abs=0.01)


@pytest.mark.parametrize("make", [Oscillator.saw, Oscillator.square, Oscillator.triangle])
@pytest.mark.parametrize("band_limited", [False, True])
def test_pitch_by_fft_peak(make, band_limited: bool) -> None:
    freq = 612.3
    y = run1(make(freq, 1.0, band_limited=band_limited), 16384)
    assert fft_peak_frequency(y) == pytest.approx(freq, abs=0.1)


def test_sine_matches_formula_and_amplitude() -> None:
    freq, amp = 440.0, 0.5
    y = run1(Oscillator.sine(freq, amp), 2000)
    n = np.arange(2000)
    # The phase accumulates in floating point: agreement to ~1e-9, not exactly.
    np.testing.assert_allclose(y, amp * np.sin(2 * np.pi * freq * n / SR), atol=1e-9)
    assert np.max(np.abs(y)) == pytest.approx(amp, rel=1e-3)


def test_amplitude_is_a_live_input() -> None:
    osc = Oscillator.square(100.0, 1.0)
    out = run(osc, 10, inputs={"amplitude": np.full(10, 0.25)})["output"]
    np.testing.assert_allclose(np.abs(out), 0.25)


def test_naive_shapes_follow_their_definition() -> None:
    freq = 441.0  # exactly 100 samples per cycle
    n = 400
    p = (np.arange(n) * freq / SR) % 1.0
    saw = run1(Oscillator.saw(freq), n)
    square = run1(Oscillator.square(freq, pulse_width=0.3), n)
    triangle = run1(Oscillator.triangle(freq), n)
    # Phase accumulation rounding can put a sample a hair either side of a corner: compare away from them.
    np.testing.assert_allclose(
        saw[(p > 1e-6) & (p < 1 - 1e-6)], (2 * p - 1)[(p > 1e-6) & (p < 1 - 1e-6)], atol=1e-9
    )
    clear = np.abs(p - 0.3) > 1e-6
    np.testing.assert_array_equal(square[clear], np.where(p < 0.3, 1.0, -1.0)[clear])
    tri_ref = np.interp(p, [0.0, 0.25, 0.75, 1.0], [0.0, 1.0, -1.0, 0.0])
    np.testing.assert_allclose(triangle, tri_ref, atol=1e-9)


@pytest.mark.parametrize("waveform", [SAW, SQUARE, TRIANGLE])
def test_band_limited_reduces_aliasing(waveform: int) -> None:
    f0 = 2345.6  # high enough that many harmonics fold back
    naive = run1(Oscillator(f0, 1.0, waveform), 16384)
    blep = run1(Oscillator(f0, 1.0, waveform, band_limited=True), 16384)
    naive_db = alias_ratio_db(naive, f0)
    blep_db = alias_ratio_db(blep, f0)
    assert blep_db < naive_db - 12.0, (naive_db, blep_db)


@pytest.mark.parametrize("waveform", [SAW, SQUARE, TRIANGLE])
def test_band_limited_equals_naive_away_from_discontinuities(waveform: int) -> None:
    # At a low pitch the corrections only touch the two samples around each discontinuity.
    freq = 100.0
    n = 2000
    naive = run1(Oscillator(freq, 1.0, waveform), n)
    blep = run1(Oscillator(freq, 1.0, waveform, band_limited=True), n)
    differs = np.abs(naive - blep) > 1e-12
    assert differs.sum() <= 2 * 2 * (n * freq / SR + 1)
    assert np.max(np.abs(blep)) <= 1.0 + 1e-9


@pytest.mark.parametrize("width", [0.1, 0.25, 0.5, 0.8])
@pytest.mark.parametrize("band_limited", [False, True])
def test_pulse_width_sets_duty_cycle(width: float, band_limited: bool) -> None:
    freq = 200.0
    n = int(SR / freq) * 20  # whole cycles (220.5 samples each: near enough over 20)
    y = run1(Oscillator.square(freq, 1.0, pulse_width=width, band_limited=band_limited), n)
    # The mean of a +/-1 pulse is 2 duty - 1
    assert (np.mean(y) + 1.0) / 2.0 == pytest.approx(width, abs=0.005)
    if not band_limited:
        assert np.mean(y > 0) == pytest.approx(width, abs=0.005)


def test_fm_adds_to_frequency() -> None:
    osc = Oscillator.sine(440.0)
    y = run1(osc, 8192, fm=60.0)
    assert zero_crossing_frequency(y) == pytest.approx(500.0, abs=0.01)


def test_fm_through_zero_runs_backwards() -> None:
    # frequency + fm = -300 Hz: a sine played backwards is a negated sine.
    y = run1(Oscillator.sine(100.0), 1000, fm=-400.0)
    n = np.arange(1000)
    np.testing.assert_allclose(y, -np.sin(2 * np.pi * 300.0 * n / SR), atol=1e-9)


def test_audio_rate_fm_matches_integrated_phase() -> None:
    n = 3000
    t = np.arange(n)
    modulator = 200.0 * np.sin(2 * np.pi * 30.0 * t / SR)
    y = run1(Oscillator.sine(440.0), n, fm=modulator)
    # phase[k] = sum of the increments before sample k
    phase = np.concatenate([[0.0], np.cumsum((440.0 + modulator) / SR)[:-1]])
    np.testing.assert_allclose(y, np.sin(2 * np.pi * phase), atol=1e-9)


def test_pm_shifts_phase() -> None:
    n = 1000
    t = np.arange(n)
    quarter = run1(Oscillator.sine(440.0), n, pm=0.25)
    np.testing.assert_allclose(quarter, np.cos(2 * np.pi * 440.0 * t / SR), atol=1e-9)
    modulator = 0.3 * np.sin(2 * np.pi * 50.0 * t / SR)
    y = run1(Oscillator.sine(440.0), n, pm=modulator)
    np.testing.assert_allclose(y, np.sin(2 * np.pi * (440.0 * t / SR + modulator)), atol=1e-9)


def test_pm_does_not_accumulate() -> None:
    n = 2000
    plain = run1(Oscillator.saw(300.0), n)
    pm = np.zeros(n)
    pm[500:700] = 0.4  # a temporary phase offset leaves the phase where it would have been
    y = run1(Oscillator.saw(300.0), n, pm=pm)
    np.testing.assert_allclose(y[800:], plain[800:], atol=1e-12)
    assert not np.allclose(y[500:700], plain[500:700])


def test_initial_phase_and_constructors() -> None:
    y = run1(Oscillator.sine(441.0, 1.0, phase=0.25), 1)
    assert y[0] == pytest.approx(1.0)
    assert Oscillator.polyblep_saw(100.0).band_limited
    assert Oscillator.polyblep_square(100.0, pulse_width=0.2).pulse_width == 0.2
    assert Oscillator.polyblamp_triangle(100.0).waveform == TRIANGLE
    assert Oscillator(100.0, waveform="saw").waveform == SAW
    assert Oscillator.sine().waveform == SINE
    with pytest.raises(ValueError):
        Oscillator(waveform="wobble")


def test_phase_stays_in_unit_interval_under_extreme_modulation() -> None:
    osc = Oscillator.saw(1000.0, band_limited=True)
    fm = np.random.default_rng(1).uniform(-1e5, 1e5, 2000)
    y = run1(osc, 2000, fm=fm, pm=-fm / 1000.0)
    assert 0.0 <= osc._phase < 1.0
    assert np.all(np.isfinite(y))
    assert math.isfinite(float(np.max(np.abs(y))))


@pytest.mark.parametrize("waveform", [SINE, SAW, SQUARE, TRIANGLE])
@pytest.mark.parametrize("band_limited", [False, True])
def test_compilable_subset(waveform: int, band_limited: bool) -> None:
    n = 300
    fm = np.linspace(-500.0, 500.0, n)
    assert_compilable(
        Oscillator(1000.0, 0.5, waveform, 0.3, band_limited), n, inputs={"fm": fm, "pm": fm / 900.0}
    )


@pytest.mark.parametrize("waveform", [SINE, SAW, SQUARE, TRIANGLE])
@pytest.mark.parametrize("band_limited", [False, True])
def test_jit_matches_interpreter(waveform: int, band_limited: bool) -> None:
    # noise into fm (x 0.5 Hz) and pm (x 0.5 cycle): every branch of the phase handling runs. Bit
    # for bit: every waveform is float arithmetic and floor only (the sine is oscen.sine.sin_cycles,
    # not math.sin), the exact class of the tolerance policy (docs/jit.md).
    assert_jit_matches(
        lambda: Oscillator(1234.5, 0.8, waveform, 0.3, band_limited), noise_into=("fm", "pm"), exact=True
    )
