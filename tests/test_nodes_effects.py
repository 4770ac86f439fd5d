"""Chorus, Flanger and Phaser in both engines: measured delay sweeps and notch sweeps against the
stated laws, frozen sweeps against scipy.signal.lfilter, and dry at mix 0.

Delay sweeps are measured with an impulse train: with mix 1 and no feedback each impulse comes out
once, and the centroid of its echo (the Hermite interpolator reproduces linear functions, so the
centroid of an interpolated impulse is its fractional position) is the delay at that moment.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from both_engines import SR, check_example, run_node
from node_harness import assert_compilable, assert_jit_matches, impulse
from scipy import signal

from oscen.effects import MAX_FEEDBACK, Chorus, Flanger, Phaser

STEREO = ("left", "right", "output")


def impulse_train(n: int, period: int) -> np.ndarray:
    x = np.zeros(n)
    x[::period] = 1.0
    return x


def echo_delays(y: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray]:
    """(arrival sample, delay in samples) of each impulse's echo: the centroid in its period."""
    arrivals, delays = [], []
    t = np.arange(period)
    for k in range(len(y) // period):
        part = y[k * period : (k + 1) * period]
        centroid = float(np.sum(t * part) / np.sum(part))
        arrivals.append(k * period + centroid)
        delays.append(centroid)
    return np.array(arrivals), np.array(delays)


def stated_delay(t: np.ndarray, base: float, depth: float, rate: float, phase: float) -> np.ndarray:
    """The documented law, in samples, at (fractional) sample t."""
    return (base + depth * 0.5 * (1 + np.sin(2 * np.pi * (phase + rate * t / SR)))) * SR


@pytest.mark.parametrize(
    ("cls", "base", "depth"), [(Chorus, 0.010, 0.004), (Flanger, 0.0005, 0.005), (Chorus, 0.002, 0.015)]
)
def test_delay_sweeps_follow_the_stated_law_on_both_channels(cls, base: float, depth: float) -> None:
    rate, period = 2.0, 1024
    n = int(SR)
    make = lambda: cls(rate=rate, depth=depth, delay_time=base, mix=1.0, feedback=0.0)  # noqa: E731
    outs = run_node(make, n, inputs={"input": impulse_train(n, period)}, outputs=STEREO)
    for y in outs.values():
        for channel, phase in ((0, 0.0), (1, 0.25)):
            arrivals, delays = echo_delays(y[channel], period)
            np.testing.assert_allclose(delays, stated_delay(arrivals, base, depth, rate, phase), atol=0.1)
            # the sweep covers [base, base + depth] (sampled 43 times a second: within 1 % of depth)
            assert delays.min() == pytest.approx(base * SR, abs=0.01 * depth * SR)
            assert delays.max() == pytest.approx((base + depth) * SR, abs=0.01 * depth * SR)
            assert delays.min() >= base * SR - 0.1 and delays.max() <= (base + depth) * SR + 0.1


@pytest.mark.parametrize("make", [Chorus, Flanger, lambda: Phaser(6, feedback=0.7)])
def test_mix_zero_is_the_dry_input(make) -> None:
    n = 3000
    x = np.random.default_rng(0).normal(size=n)

    def dry():
        node = make()
        node.mix = 0.0
        return node

    for y in run_node(dry, n, inputs={"input": x}, outputs=STEREO).values():
        for row in y:
            np.testing.assert_array_equal(row, x)


@pytest.mark.parametrize(("feedback", "mix"), [(0.5, 0.5), (-0.8, 0.7), (2.0, 1.0)])
def test_frozen_flanger_is_a_feedback_comb(feedback: float, mix: float) -> None:
    # rate 0 at phase 0.75: sin = -1, the delay stays at delay_time (here exactly 40 samples)
    d = 40
    fb = min(max(feedback, -MAX_FEEDBACK), MAX_FEEDBACK)
    b = np.zeros(d + 1)
    b[0], b[d] = 1 - mix, mix - (1 - mix) * fb
    a = np.zeros(d + 1)
    a[0], a[d] = 1.0, -fb
    x = np.random.default_rng(1).normal(size=4000)
    expected = signal.lfilter(b, a, x)
    make = lambda: Flanger(rate=0.0, depth=0.003, delay_time=d / SR, feedback=feedback, mix=mix, phase=0.75)  # noqa: E731
    for y in run_node(make, len(x), inputs={"input": x}, outputs=STEREO).values():
        np.testing.assert_allclose(y[0], expected, atol=1e-9)
        assert np.abs(y[1] - y[0]).max() > 0.1  # the right channel's LFO is elsewhere


# ------------------------------------------------------------------------------------- phaser
def phaser_reference(fc: float, stages: int, feedback: float, mix: float) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of the frozen phaser: H = (1 - mix) + mix A^N / (1 - feedback z^-1 A^N), with the
    prewarped bilinear first-order allpass A = ((g - 1) + (g + 1) z^-1) / ((g + 1) + (g - 1) z^-1)."""
    g = math.tan(math.pi * fc / SR)
    bn, an = np.array([1.0]), np.array([1.0])
    for _ in range(stages):
        bn = np.convolve(bn, [g - 1, g + 1])
        an = np.convolve(an, [g + 1, g - 1])
    den = np.concatenate([an, [0.0]]) - feedback * np.concatenate([[0.0], bn])
    num = (1 - mix) * den + mix * np.concatenate([bn, [0.0]])
    return num, den


def notch_frequencies(fc: float, stages: int) -> np.ndarray:
    g = math.tan(math.pi * fc / SR)
    m = np.arange(stages // 2)
    return SR / np.pi * np.arctan(g * np.tan((2 * m + 1) * np.pi / (2 * stages)))


@pytest.mark.parametrize(("stages", "feedback"), [(4, 0.0), (6, 0.5), (2, -0.7)])
def test_frozen_phaser_matches_lfilter(stages: int, feedback: float) -> None:
    # rate 0: the left LFO stays at phase 0.25 (fc = max_frequency), the right at 0.5 (the geometric mean)
    lo, hi, mix = 300.0, 3000.0, 0.6
    x = np.random.default_rng(2).normal(size=4000)
    make = lambda: Phaser(stages, rate=0.0, min_frequency=lo, max_frequency=hi, feedback=feedback, mix=mix, phase=0.25)  # noqa: E731
    for y in run_node(make, len(x), inputs={"input": x}, outputs=STEREO).values():
        for row, fc in ((y[0], hi), (y[1], math.sqrt(lo * hi))):
            np.testing.assert_allclose(row, signal.lfilter(*phaser_reference(fc, stages, feedback, mix), x), atol=1e-9)


def lowest_notch(h: np.ndarray, near: float) -> float:
    """The frequency of the deepest point of |H| within 30 % of ``near`` (zero-padded FFT)."""
    pad = 1 << 16
    spectrum = np.abs(np.fft.rfft(h, pad))
    freqs = np.fft.rfftfreq(pad, 1 / SR)
    band = (freqs > 0.7 * near) & (freqs < 1.3 * near)
    return float(freqs[band][np.argmin(spectrum[band])])


@pytest.mark.parametrize("stages", [4, 8])
def test_phaser_notches_at_the_stated_frequencies(stages: int) -> None:
    fc = 1000.0
    n = 4096
    make = lambda: Phaser(stages, rate=0.0, min_frequency=fc, max_frequency=fc, mix=0.5)  # noqa: E731
    for y in run_node(make, n, inputs={"input": impulse(n)}, outputs=STEREO).values():
        for f in notch_frequencies(fc, stages):
            assert lowest_notch(y[0], f) == pytest.approx(f, rel=0.002)


def test_phaser_notch_sweeps_between_the_stated_bounds() -> None:
    lo, hi, rate, period = 200.0, 4000.0, 1.0, 2048
    n = int(SR)
    make = lambda: Phaser(4, rate=rate, min_frequency=lo, max_frequency=hi, mix=0.5)  # noqa: E731
    for y in run_node(make, n, inputs={"input": impulse_train(n, period)}, outputs=STEREO).values():
        measured, predicted = [], []
        for k in range(n // period):
            t = k * period + 20  # the response is dominated by its first few tens of samples
            phase = rate * t / SR
            fc = lo * (hi / lo) ** (0.5 * (1 + math.sin(2 * math.pi * phase)))
            f = notch_frequencies(fc, 4)[0]
            measured.append(lowest_notch(y[0, k * period : (k + 1) * period], f))
            predicted.append(f)
        measured, predicted = np.array(measured), np.array(predicted)
        np.testing.assert_allclose(measured, predicted, rtol=0.05)
        # one full cycle: the lowest notch goes from its place at min_frequency to its place at max
        assert measured.min() == pytest.approx(notch_frequencies(lo, 4)[0], rel=0.05)
        assert measured.max() == pytest.approx(notch_frequencies(hi, 4)[0], rel=0.05)


def test_effects_refuse_bad_construction_and_stay_compilable() -> None:
    with pytest.raises(ValueError, match="stages"):
        Phaser(5)
    with pytest.raises(ValueError, match="max_delay"):
        Chorus(max_delay=-1.0)
    noise = np.random.default_rng(3).uniform(-1, 1, 300)
    for node in (Chorus(), Flanger(), Phaser(), Phaser(12, feedback=0.9)):
        assert_compilable(node, inputs={"input": noise})


def test_effects_follow_modulated_parameters_in_both_engines() -> None:
    # rate, depth, mix and the phaser bounds driven by signals: both engines agree (run_node checks)
    n = 6000
    rng = np.random.default_rng(4)
    x = rng.normal(size=n)
    wobble = np.sin(np.linspace(0, 30, n))
    inputs = {"input": x, "rate": 3.0 + 2.0 * wobble, "mix": 0.5 + 0.4 * wobble}
    for make, extra in ((Chorus, {"depth": 0.003 + 0.002 * wobble}), (Flanger, {"feedback": 0.9 * wobble}),
                        (Phaser, {"min_frequency": 300.0 + 200.0 * wobble})):  # fmt: skip
        outs = run_node(make, n, inputs={**inputs, **extra}, outputs=STEREO)
        assert all(np.all(np.isfinite(y)) for y in outs.values())


def test_example_patch_renders_the_same_in_both_engines() -> None:
    check_example("effects_patch.py")


@pytest.mark.parametrize("make", [lambda: Chorus(rate=3.0, feedback=0.3), lambda: Flanger(rate=1.5, feedback=-0.8)])
def test_chorus_and_flanger_compiled_are_bit_exact(make) -> None:
    # their LFO is oscen.sine.sin_cycles and the rest plain float arithmetic: the exact class of
    # the tolerance policy (the phaser's exp and tan keep it within the tolerance, not exact)
    assert_jit_matches(make, n=6000, noise_into=("input", "rate"), outputs=STEREO, exact=True)
