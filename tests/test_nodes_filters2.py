"""One-poles, DC blocker, comb, allpass and the ladder, in both engines, against independent references.

Every test runs the node interpreted and compiled (``both_engines.run_node`` checks the two agree to
1e-9) and then holds each engine's output to the reference: ``scipy.signal.lfilter`` of the
difference equation written out here, and the analytic magnitude response of that equation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from both_engines import SR, check_example, run_node
from node_harness import assert_compilable, impulse
from scipy import signal

from oscen.filters import (
    LADDER_K_MAX,
    AllpassFilter,
    CombFilter,
    DcBlocker,
    LadderFilter,
    OnePoleHighpass,
    OnePoleLowpass,
    delay_line_size,
)

N_IR = 8192
FREQS = np.fft.rfftfreq(N_IR, 1.0 / SR)
W = 2 * np.pi * FREQS / SR  # rad/sample


def responses(make, n: int = N_IR, amplitude: float = 1.0, **kw) -> list[np.ndarray]:
    """The node's impulse response in each engine (scaled back by the impulse's amplitude)."""
    outs = run_node(make, n, inputs={"input": impulse(n, amplitude)}, **kw)
    return [out / amplitude for out in outs.values()]


def db(x: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(np.abs(x), 1e-300))


# ------------------------------------------------------------------------------------- one-poles
@pytest.mark.parametrize("fc", [50.0, 1000.0, 9000.0])
def test_one_pole_lowpass_and_highpass_match_lfilter_and_the_analytic_response(fc: float) -> None:
    g = math.tan(math.pi * fc / SR)
    a = [1.0, (g - 1) / (1 + g)]
    x = impulse(N_IR)
    references = {
        OnePoleLowpass: (signal.lfilter([g / (1 + g), g / (1 + g)], a, x), lambda r: 1 / np.sqrt(1 + r**2)),
        OnePoleHighpass: (signal.lfilter([1 / (1 + g), -1 / (1 + g)], a, x), lambda r: r / np.sqrt(1 + r**2)),
    }
    r = np.tan(W / 2) / g
    for cls, (expected, magnitude) in references.items():
        for h in responses(lambda cls=cls: cls(fc)):
            np.testing.assert_allclose(h, expected, atol=1e-12)
            if fc >= 1000.0:  # (at 50 Hz 8192 samples do not hold the whole response)
                measured = np.abs(np.fft.rfft(h))
                ok = magnitude(r[:-1]) > 1e-3
                np.testing.assert_allclose(db(measured[:-1][ok]), db(magnitude(r[:-1][ok])), atol=0.01)
            if fc >= 1000.0:  # -3 dB at the cutoff: the DTFT of the impulse response there
                at_fc = np.sum(h * np.exp(-2j * np.pi * fc / SR * np.arange(len(h))))
                assert db(at_fc) == pytest.approx(-3.0103, abs=0.001)


def test_one_pole_cutoff_is_clamped_and_modulatable() -> None:
    # cutoff driven by a signal sweeping far outside [0.01, 0.49 fs]: stays finite and bounded
    n = 4000
    sweep = 30000.0 * np.sin(np.linspace(0, 20, n))
    noise = np.random.default_rng(0).uniform(-1, 1, n)
    for cls in (OnePoleLowpass, OnePoleHighpass):
        for out in run_node(lambda cls=cls: cls(0.0), n, inputs={"input": noise, "cutoff": sweep}).values():
            assert np.all(np.isfinite(out)) and np.abs(out).max() < 3.0


# ------------------------------------------------------------------------------------- DC blocker
@pytest.mark.parametrize("fc", [10.0, 40.0])
def test_dc_blocker_matches_lfilter_and_removes_dc(fc: float) -> None:
    R = math.exp(-2 * math.pi * fc / SR)
    c = (1 + R) / 2
    n = 20000
    x = np.random.default_rng(1).normal(size=n) + 0.7  # noise with a DC offset
    expected = signal.lfilter([c, -c], [1, -R], x)
    for y in run_node(lambda: DcBlocker(fc), n, inputs={"input": x}).values():
        np.testing.assert_allclose(y, expected, atol=1e-10)
        assert abs(y[n // 2 :].mean()) < 0.03  # the 0.7 offset is gone
    for h in responses(lambda: DcBlocker(fc), n=1 << 16):
        H = np.fft.rfft(h)
        w = 2 * np.pi * np.fft.rfftfreq(1 << 16, 1 / SR) / SR
        analytic = c * np.abs(1 - np.exp(-1j * w)) / np.abs(1 - R * np.exp(-1j * w))
        np.testing.assert_allclose(np.abs(H)[1:], analytic[1:], atol=1e-6)
        assert abs(H[0]) < 1e-3 and abs(H[-1]) == pytest.approx(1.0, abs=1e-9)


# ------------------------------------------------------------------------------------- comb, allpass
@pytest.mark.parametrize("delay", [1, 37, 100])
@pytest.mark.parametrize("g", [0.7, -0.5])
def test_combs_match_lfilter_and_the_analytic_response(delay: int, g: float) -> None:
    x = np.random.default_rng(2).normal(size=3000)
    taps = np.zeros(delay + 1)
    taps[0] = 1.0
    taps[delay] = g
    loop = np.zeros(delay + 1)
    loop[0] = 1.0
    loop[delay] = -g
    cases = {"feedforward": (taps, [1.0]), "feedback": ([1.0], loop)}
    for mode, (b, a) in cases.items():
        make = lambda mode=mode: CombFilter(delay / SR, g, mode)  # noqa: E731
        expected = signal.lfilter(b, a, x)
        for y in run_node(make, len(x), inputs={"input": x}).values():
            np.testing.assert_allclose(y, expected, atol=1e-9)
        for h in responses(make):
            measured = np.abs(np.fft.rfft(h))
            e = np.exp(-1j * W * delay)
            analytic = np.abs(1 + g * e) if mode == "feedforward" else 1 / np.abs(1 - g * e)
            np.testing.assert_allclose(measured, analytic, rtol=1e-6, atol=1e-9)


def test_fractional_comb_peaks_at_the_tuned_frequency() -> None:
    # A feedback comb of delay fs / 440 (100.227 samples) resonates at 440 Hz and its harmonics.
    f0 = 440.0
    n = 1 << 16
    for h in responses(lambda: CombFilter(1 / f0, 0.95), n=n):
        spectrum = np.abs(np.fft.rfft(h))
        freqs = np.fft.rfftfreq(n, 1 / SR)
        band = (freqs > 300) & (freqs < 600)
        peak = freqs[band][np.argmax(spectrum[band])]
        assert peak == pytest.approx(f0, abs=SR / n)


def test_feedback_comb_gain_is_clamped_and_stable() -> None:
    x = np.random.default_rng(3).normal(size=5000)
    for y in run_node(lambda: CombFilter(0.001, 5.0), len(x), inputs={"input": x}).values():
        assert np.all(np.isfinite(y)) and np.abs(y).max() < 1000.0


@pytest.mark.parametrize(("delay", "g"), [(1, 0.5), (113, 0.7), (347, -0.6)])
def test_allpass_matches_lfilter_and_is_flat(delay: int, g: float) -> None:
    b = np.zeros(delay + 1)
    b[0], b[delay] = -g, 1.0
    a = np.zeros(delay + 1)
    a[0], a[delay] = 1.0, -g
    x = np.random.default_rng(4).normal(size=3000)
    expected = signal.lfilter(b, a, x)
    for y in run_node(lambda: AllpassFilter(delay / SR, g), len(x), inputs={"input": x}).values():
        np.testing.assert_allclose(y, expected, atol=1e-9)
    for h in responses(lambda: AllpassFilter(delay / SR, g), n=1 << 15):
        np.testing.assert_allclose(np.abs(np.fft.rfft(h)), 1.0, atol=1e-6)
        assert h[0] == pytest.approx(-g) and h[delay] == pytest.approx(1 - g * g)


def test_delay_line_filters_refuse_bad_sizes() -> None:
    with pytest.raises(ValueError, match="max_delay"):
        CombFilter(max_delay=0.0)
    with pytest.raises(ValueError, match="mode"):
        CombFilter(mode="sideways")
    assert delay_line_size(0.1, 96000.0) == 16384


# ------------------------------------------------------------------------------------- ladder
def ladder_reference(fc: float, k: float) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of the small-signal ladder: four prewarped bilinear one-poles H1 in a loop of gain -k,
    H = H1^4 / (1 + k H1^4), written out from the one-pole's coefficients."""
    g = math.tan(math.pi * fc / SR)
    b1 = np.array([g, g])
    a1 = np.array([1 + g, g - 1])
    b4 = np.convolve(np.convolve(b1, b1), np.convolve(b1, b1))
    a4 = np.convolve(np.convolve(a1, a1), np.convolve(a1, a1))
    return b4, a4 + k * b4


@pytest.mark.parametrize(("fc", "resonance"), [(500.0, 0.0), (2000.0, 0.5), (1000.0, 0.85)])
def test_ladder_small_signal_matches_the_linear_ladder(fc: float, resonance: float) -> None:
    # an impulse of 1e-6: tanh is linear there to 1e-12 relative
    b, a = ladder_reference(fc, LADDER_K_MAX * resonance)
    expected = signal.lfilter(b, a, impulse(N_IR))
    for h in responses(lambda: LadderFilter(fc, resonance), amplitude=1e-6):
        np.testing.assert_allclose(h, expected, atol=1e-9)


def test_ladder_slope_is_24_db_per_octave_and_cutoff_is_exact() -> None:
    fc = 200.0
    n = 1 << 15
    for h in responses(lambda: LadderFilter(fc, 0.0), n=n, amplitude=1e-6):
        H = np.abs(np.fft.rfft(h))
        freqs = np.fft.rfftfreq(n, 1 / SR)
        slope = float(np.diff(np.interp([8 * fc, 16 * fc], freqs, db(H)))[0])  # dB/octave, above fc
        assert slope == pytest.approx(-24.0, abs=0.5)
        # the cutoff: where the response is -12 dB (each of the four stages -3 dB), within 0.5 %
        above = np.flatnonzero(db(H) < -12.0)[0]
        f12 = np.interp(-12.0, [db(H)[above], db(H)[above - 1]], [freqs[above], freqs[above - 1]])
        assert f12 == pytest.approx(fc, rel=0.005)
        assert db(H)[0] == pytest.approx(0.0, abs=1e-6)  # unity at DC at resonance 0


def measured_pitch(x: np.ndarray) -> float:
    """Frequency of the strongest spectral peak, with a Hann window and parabolic interpolation."""
    n = len(x)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(n), 8 * n))
    i = int(np.argmax(spectrum[1:])) + 1
    a, b, c = np.log(spectrum[i - 1 : i + 2])
    return (i + 0.5 * (a - c) / (a - 2 * b + c)) * SR / (8 * n)


@pytest.mark.parametrize("fc", [220.0, 1000.0, 4000.0])
def test_ladder_self_oscillates_at_the_cutoff(fc: float) -> None:
    n = int(SR)
    kick = impulse(n, 0.01)
    for y in run_node(lambda: LadderFilter(fc, 1.0), n, inputs={"input": kick}).values():
        tail = y[n // 2 :]
        assert measured_pitch(tail) == pytest.approx(fc, rel=0.002)  # within 3.5 cents (measured: < 0.1)
        rms = [np.sqrt(np.mean(part**2)) for part in np.array_split(tail, 4)]
        assert 0.05 < rms[0] < 1.0 and rms[-1] == pytest.approx(rms[0], rel=0.01)  # sustained


def test_ladder_below_the_threshold_rings_out() -> None:
    n = int(SR)
    for y in run_node(lambda: LadderFilter(1000.0, 0.85), n, inputs={"input": impulse(n, 0.01)}).values():
        assert np.abs(y[n // 2 :]).max() < 1e-9


def test_ladder_stays_bounded_when_overdriven_and_modulated() -> None:
    n = 8000
    rng = np.random.default_rng(5)
    loud = 50.0 * rng.uniform(-1, 1, n)
    sweep = 3000.0 * np.sin(np.linspace(0, 40, n))
    outs = run_node(
        lambda: LadderFilter(2000.0, 1.0, drive=4.0), n, inputs={"input": loud, "cutoff_mod": sweep}
    )
    for y in outs.values():
        assert np.all(np.isfinite(y)) and np.abs(y).max() < 1.5


def test_new_filters_stay_in_the_compilable_subset() -> None:
    noise = np.random.default_rng(6).uniform(-1, 1, 300)
    for node in (OnePoleLowpass(), OnePoleHighpass(), DcBlocker(), LadderFilter(resonance=1.0),
                 CombFilter(), CombFilter(mode="feedforward"), AllpassFilter()):  # fmt: skip
        assert_compilable(node, inputs={"input": noise})


def test_example_patch_renders_the_same_in_both_engines() -> None:
    check_example("ladder_patch.py")
