"""Panner and StereoWidth: equal power, the -3 dB centre, the mid/side identities, in both engines."""

from __future__ import annotations

import numpy as np
import pytest
from engines_support import both_engines, example_renders, one_node
from jit_support import set_value
from node_harness import assert_compilable

from oscen.stereo import Panner, StereoWidth

N = 2000
RNG = np.random.default_rng(5)
X = RNG.uniform(-1, 1, N)


def test_panner_keeps_power_across_a_sweep() -> None:
    pan = np.linspace(-1.2, 1.2, N)  # beyond the ends: clamped
    outs = both_engines(one_node(Panner, {"input": X, "pan": pan}, outputs=("left", "right")), N)
    for y in outs.values():
        left, right = y
        np.testing.assert_allclose(left**2 + right**2, X**2, atol=1e-12)
        theta = (np.clip(pan, -1, 1) + 1) * np.pi / 4
        np.testing.assert_allclose(left, X * np.cos(theta), atol=1e-12)
        ends = np.abs(pan) >= 1
        assert np.all(np.abs(right[pan <= -1]) < 1e-15) and np.all(np.abs(left[pan >= 1]) < 1e-15)
        assert np.all(left[ends & (pan < 0)] == X[ends & (pan < 0)])


def test_panner_centre_is_minus_3_db_per_side() -> None:
    outs = both_engines(one_node(Panner, {"input": X}, outputs=("left", "right")), N)
    for left, right in outs.values():
        gain_db = 20 * np.log10(np.sqrt(np.mean(left**2) / np.mean(X**2)))
        assert gain_db == pytest.approx(-3.0103, abs=1e-3)
        np.testing.assert_allclose(left, right, atol=1e-15)  # cos and sin of pi/4 differ by an ulp


def test_panner_follows_set_value_with_a_ramp() -> None:
    build = one_node(Panner, {"input": np.ones(N)}, outputs=("left", "right"))
    outs = both_engines(build, N, [set_value(500, "node.pan", 1.0, ramp=1000 / 44100.0)])
    for left, right in outs.values():
        assert left[499] == pytest.approx(np.sqrt(0.5)) and right[1600] == pytest.approx(1.0)
        assert np.all(np.diff(right[500:1500]) > 0)  # moving right, monotonically
        np.testing.assert_allclose(left**2 + right**2, 1.0, atol=1e-12)


@pytest.mark.parametrize("width", [0.0, 0.3, 1.0, 2.0])
def test_width_scales_side_and_keeps_mid(width: float) -> None:
    left_in, right_in = X, RNG.uniform(-1, 1, N)
    build = one_node(lambda: StereoWidth(width), {"input": left_in, "input_right": right_in},
                     outputs=("left", "right"))  # fmt: skip
    for left, right in both_engines(build, N).values():
        np.testing.assert_allclose((left + right) / 2, (left_in + right_in) / 2, atol=1e-15)
        np.testing.assert_allclose((left - right) / 2, width * (left_in - right_in) / 2, atol=1e-15)
        if width == 1.0:  # exactly the identity
            np.testing.assert_array_equal(left, left_in)
            np.testing.assert_array_equal(right, right_in)
        if width == 0.0:  # exactly mono
            np.testing.assert_array_equal(left, right)


def test_negative_width_is_clamped_to_mono() -> None:
    build = one_node(
        lambda: StereoWidth(-1.0), {"input": X, "input_right": 0.5 * X}, outputs=("left", "right")
    )
    for left, right in both_engines(build, 200).values():
        np.testing.assert_array_equal(left, right)
        np.testing.assert_allclose(left, 0.75 * X[:200], atol=1e-15)


@pytest.mark.parametrize("make", [Panner, StereoWidth])
def test_compilable_subset(make) -> None:
    assert_compilable(make(), inputs={"input": X[:300]})


def test_example_patch_renders_in_both_engines() -> None:
    out = example_renders("stereo_patch.py", seconds=0.2)
    assert np.max(np.abs(out)) > 0.05
