"""Lfo, SampleAndHold, Slew: measured rate, phase and tempo-sync period, exact holds, bounded slope,
each in the interpreter and in compiled code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from engines_support import both_engines, example_renders, one_node
from jit_support import event
from node_harness import assert_compilable

from oscen.modulation import Lfo, SampleAndHold, Slew

SR = 8000.0


def wraps(saw: np.ndarray) -> np.ndarray:
    """Sample indices where a rising saw jumps down (the start of each cycle after the first)."""
    return np.flatnonzero(np.diff(saw) < -1.0) + 1


def test_lfo_sine_has_the_measured_rate_and_phase() -> None:
    rate, phase = 3.7, 0.125
    n = 8000
    outs = both_engines(one_node(lambda: Lfo(rate, "sine", phase=phase), sample_rate=SR), n)
    t = np.arange(n)
    for y in outs.values():
        np.testing.assert_allclose(y, np.sin(2 * np.pi * (rate * t / SR + phase)), atol=1e-9)
        # independent of the formula: the frequency from the upward zero crossings
        up = np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0))
        frac = -y[up] / (y[up + 1] - y[up])
        crossings = up + frac
        measured = SR * (len(crossings) - 1) / (crossings[-1] - crossings[0])
        assert measured == pytest.approx(rate, abs=1e-4)


@pytest.mark.parametrize(("bpm", "division", "period"), [(120.0, 0.25, 4000.0), (150.0, 1 / 16, 800.0),
                                                         (90.0, 0.375, 8000.0), (120.0, 1 / 12, 1333.333333)])  # fmt: skip
def test_lfo_tempo_sync_period_in_samples(bpm: float, division: float, period: float) -> None:
    # period = 240 * division * sample_rate / bpm: a quarter note at 120 bpm is half a second
    n = int(3.5 * period) + 10
    outs = both_engines(one_node(lambda: Lfo(99.0, "saw", bpm=bpm, division=division), sample_rate=SR), n)
    for y in outs.values():
        w = wraps(y)
        assert len(w) == 3
        np.testing.assert_allclose(w, np.ceil(period * np.arange(1, 4) - 1e-6), atol=1.0)
        # the saw's value at each wrap gives the fractional cycle start: exact period
        starts = w - (y[w] + 1.0) / 2.0 * period
        np.testing.assert_allclose(np.diff(starts), period, atol=1e-6)


def test_lfo_shapes_against_their_definitions() -> None:
    n = 1000
    rate = 17.0
    p = (rate * np.arange(n) / SR) % 1.0
    expected = {
        "triangle": 1.0 - 4.0 * np.abs((p + 0.25) % 1.0 - 0.5),
        "saw": 2 * p - 1,
        "ramp": 1 - 2 * p,
        "square": np.where(p < 0.5, 1.0, -1.0),
    }
    for shape, want in expected.items():
        outs = both_engines(
            one_node(lambda shape=shape: Lfo(rate, shape, depth=0.5, offset=0.5), sample_rate=SR), n
        )
        for y in outs.values():
            close = np.abs(y - (0.5 + 0.5 * want)) < 1e-9
            # the square may differ where p is within rounding of its edge
            assert close.mean() > 0.995 if shape == "square" else close.all(), shape
            assert y.min() >= 0.0 and y.max() <= 1.0


def test_lfo_random_steps_once_per_cycle_and_is_seeded() -> None:
    n = 4000
    outs = both_engines(one_node(lambda: Lfo(10.0, "random", seed=7), sample_rate=SR), n)
    for y in outs.values():
        changes = np.flatnonzero(np.diff(y) != 0) + 1
        # one step per cycle of 800 samples (the accumulated phase may reach 1.0 one sample late)
        np.testing.assert_allclose(changes, np.arange(1, 5) * 800, atol=1)
        assert np.all(np.abs(y) <= 1.0)
        assert len(set(np.round(y, 12))) == 5
    other = both_engines(one_node(lambda: Lfo(10.0, "random", seed=8), sample_rate=SR), n)["state"]
    assert not np.array_equal(other, outs["state"])


def test_lfo_reset_restarts_the_cycle() -> None:
    n = 2000
    outs = both_engines(one_node(lambda: Lfo(5.0, "saw"), sample_rate=SR), n,
                        [event(512, "node.reset", (), offset=88)])  # fmt: skip
    for y in outs.values():
        assert y[600] == -1.0  # phase 0 at the reset sample
        np.testing.assert_allclose(y[600:1000], 2 * (5.0 * np.arange(400) / SR) - 1, atol=1e-12)


def test_lfo_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown shape 'wobble'"):
        Lfo(1.0, "wobble")
    with pytest.raises(ValueError, match="division must be a positive"):
        Lfo(1.0, bpm=120, division=0)
    assert Lfo(bpm=120, division=0.25).frequency() == 2.0


def test_sample_and_hold_holds_exactly_per_trigger() -> None:
    n = 1500
    x = np.sin(np.arange(n) * 0.01) + 0.1 * np.cos(np.arange(n) * 0.37)
    at = [10, 300, 301, 900]
    actions = [event(0, "node.trigger", (), offset=f) for f in at]
    outs = both_engines(one_node(SampleAndHold, {"input": x}), n, actions)
    for y in outs.values():
        assert np.all(y[: at[0]] == 0.0)
        bounds = [*at, n]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            assert np.all(y[a:b] == x[a]), f"held {x[a]} from {a} to {b}"


def test_sample_and_hold_clocked_by_rising_edges() -> None:
    n = 1000
    x = np.arange(n) * 0.001
    clock = np.where((np.arange(n) // 100) % 2 == 1, 1.0, -1.0)  # rises at 100, 300, 500, ...
    outs = both_engines(one_node(SampleAndHold, {"input": x, "clock": clock}), n)
    for y in outs.values():
        for k, edge in enumerate(range(100, n, 200)):
            end = edge + 200
            assert np.all(y[edge:end] == x[edge]), k
        assert np.all(y[:100] == 0.0)


def test_slew_never_exceeds_its_rate_and_reaches_the_target() -> None:
    n = 3000
    rng = np.random.default_rng(3)
    x = np.repeat(rng.uniform(-1, 1, size=15), 200)
    rise, fall = 0.02, 0.05  # seconds per unit: 1/160 and 1/400 per sample at 8 kHz
    outs = both_engines(one_node(lambda: Slew(rise, fall), {"input": x}, sample_rate=SR), n)
    for y in outs.values():
        d = np.diff(np.concatenate([[0.0], y]))
        assert d.max() <= 1 / (rise * SR) + 1e-12 and d.min() >= -1 / (fall * SR) - 1e-12
        assert d.max() == pytest.approx(1 / (rise * SR), rel=1e-9)  # the limit is reached, not just respected
        # wherever the output moves it moves at the full rate until it lands exactly on the input
        moving = np.abs(d) > 1e-15
        exact = np.isclose(d, 1 / (rise * SR), rtol=1e-9, atol=0) | np.isclose(
            d, -1 / (fall * SR), rtol=1e-9, atol=0
        )
        landed = y == x
        assert np.all(~moving | exact | landed)
    # a unit step takes exactly rise * SR samples
    step = both_engines(one_node(lambda: Slew(0.01), {"input": np.ones(200)}, sample_rate=SR), 200)
    for y in step.values():
        # 80 steps of 1/80 (the accumulated sum may fall an ulp short, leaving one more tiny step)
        assert np.flatnonzero(y == 1.0)[0] in (79, 80)
        np.testing.assert_allclose(y[:80], np.arange(1, 81) / 80.0, atol=1e-12)


def test_slew_zero_time_is_instant() -> None:
    x = np.array([0.0, 1.0, -2.0, 3.0, 3.0])
    y = both_engines(one_node(lambda: Slew(0.0, 0.0), {"input": x}), 5)["state"]
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("make", [lambda: Lfo(2.0, "random", bpm=100.0), lambda: Lfo(3.0, "triangle"),
                                  SampleAndHold, Slew])  # fmt: skip
def test_compilable_subset(make) -> None:
    assert_compilable(
        make(), inputs={"input": np.linspace(-1, 1, 300)} if not isinstance(make(), Lfo) else None
    )


def test_lfo_division_clamp_matches_python_helper() -> None:
    lfo = Lfo(bpm=60.0, division=0.5)
    assert lfo.frequency() == pytest.approx(0.5)
    assert math.isclose(240 * 0.5 * SR / 60.0, SR / lfo.frequency())


def test_example_patch_renders_in_both_engines() -> None:
    out = example_renders("modulation_patch.py", seconds=0.5)
    assert np.max(np.abs(out)) > 0.05
