"""Delay: exact integer delays, fractional delay of a sine, feedback decay, causality."""

from __future__ import annotations

import numpy as np
import pytest
from node_harness import SR, assert_compilable, assert_jit_matches, impulse, run1

from oscen.delay import Delay


@pytest.mark.parametrize("samples", [1, 2, 3, 100, 4410])
def test_impulse_reappears_at_the_exact_delay(samples: int) -> None:
    n = samples + 50
    y = run1(Delay(samples / SR), n, input=impulse(n))
    assert int(np.argmax(np.abs(y))) == samples
    assert y[samples] == pytest.approx(1.0, abs=1e-9)
    others = np.delete(y, samples)
    assert np.max(np.abs(others)) < 1e-9


def test_output_never_depends_on_the_current_input() -> None:
    # Delay shorter than a sample is clamped to one: the output at t only sees inputs up to t - 1.
    assert Delay.breaks_feedback
    x = np.random.default_rng(0).normal(size=100)
    y = run1(Delay(0.0), 100, input=x)
    np.testing.assert_allclose(y[1:], x[:-1], atol=1e-12)
    assert y[0] == 0.0
    for d in (1.3, 1.7, 2.5):  # interpolated delays read no input younger than one sample
        node = Delay(d / SR)
        first = run1(node, 10, input=x[:10])
        node2 = Delay(d / SR)
        changed = x[:10].copy()
        changed[9] = 1e6
        second = run1(node2, 10, input=changed)
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("samples", [1.5, 2.25, 10.5, 37.8])
def test_fractional_delay_shifts_a_sine(samples: float) -> None:
    freq = 441.0
    n = 2000
    t = np.arange(n)
    x = np.sin(2 * np.pi * freq * t / SR)
    y = run1(Delay(samples / SR), n, input=x)
    # Least-squares fit of y = a sin + b cos over the settled part: its phase lag is the delay.
    settled = slice(100, n)
    basis = np.stack([np.sin(2 * np.pi * freq * t / SR), np.cos(2 * np.pi * freq * t / SR)], axis=1)[settled]
    (a, b), *_ = np.linalg.lstsq(basis, y[settled], rcond=None)
    measured = -np.arctan2(b, a) / (2 * np.pi * freq / SR)
    assert measured == pytest.approx(samples, abs=0.01)
    assert np.hypot(a, b) == pytest.approx(1.0, abs=0.01)  # interpolation barely attenuates at low frequency
    np.testing.assert_allclose(y[settled], np.sin(2 * np.pi * freq * (t[settled] - samples) / SR), atol=0.01)


def test_hermite_is_exact_on_a_parabola() -> None:
    # 4-point Hermite (Catmull-Rom) reproduces polynomials up to degree 2 exactly at any fraction.
    n = 200
    t = np.arange(n, dtype=float)
    x = 1e-4 * t**2 - 0.01 * t + 0.3
    d = 12.37
    y = run1(Delay(d / SR), n, input=x)
    tau = t[20:] - d
    np.testing.assert_allclose(y[20:], 1e-4 * tau**2 - 0.01 * tau + 0.3, atol=1e-9)


@pytest.mark.parametrize("feedback", [0.5, -0.7])
def test_feedback_scales_each_repeat(feedback: float) -> None:
    d = 100
    n = 6 * d + 1
    y = run1(Delay(d / SR, feedback), n, input=impulse(n))
    repeats = y[d::d]
    np.testing.assert_allclose(repeats, feedback ** np.arange(len(repeats)), atol=1e-9)
    mask = np.ones(n, bool)
    mask[d::d] = False
    assert np.max(np.abs(y[mask])) < 1e-9


def test_feedback_is_clamped_and_stays_bounded() -> None:
    n = 3000
    x = np.random.default_rng(1).normal(size=n)
    y = run1(Delay(10.3 / SR, 5.0), n, input=x)
    assert np.all(np.isfinite(y))
    assert np.max(np.abs(y)) < 1e4


def test_delay_time_is_clamped_to_the_line() -> None:
    node = Delay(0.01, max_delay=0.01, max_sample_rate=SR)
    n = 2000
    y = run1(node, n, input=impulse(n), delay_time=10.0)  # far longer than the line holds
    assert np.all(np.isfinite(y))
    assert np.argmax(np.abs(y)) == int(node._max_samples)


def test_line_is_sized_for_max_delay_at_max_rate() -> None:
    node = Delay(0.1, max_delay=1.0, max_sample_rate=48000.0)
    assert len(node._buffer) >= 48000 + 4
    assert len(node._buffer) & (len(node._buffer) - 1) == 0
    with pytest.raises(ValueError):
        Delay(0.1, max_delay=0.0)


def test_compilable_subset() -> None:
    n = 300
    x = np.random.default_rng(3).normal(size=n)
    assert_compilable(
        Delay(0.001, 0.5, max_delay=0.01), n, inputs={"input": x, "delay_time": np.linspace(0.0, 0.002, n)}
    )


def test_jit_matches_interpreter() -> None:
    assert_jit_matches(lambda: Delay(0.0021, 0.6, max_delay=0.1), noise_into=("input", "delay_time"))
