"""Waveshaper: the shapes' definitions, the oversampling filters (flat pass band, stated latency,
stop band) and the measured alias energy at 1x, 2x and 4x, in both engines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from engines_support import both_engines, example_renders, one_node
from node_harness import assert_compilable

from oscen.distortion import STAGE1_ORDER, STAGE1_TAPS, STAGE2_ORDER, STAGE2_TAPS, Waveshaper

SR = 44100.0
N = 4096
BIN = 371  # the sine sits exactly on FFT bin 371 of 4096 (3994.6 Hz); 371 is odd, so no alias
# of its harmonics (|m 371 - q 4096| bins) lands on a harmonic bin: aliases are separable


def alias_db(y: np.ndarray) -> float:
    """Energy outside the harmonic bins relative to the harmonics, over the last N samples (a
    whole number of periods: rectangular window, no leakage)."""
    power = np.abs(np.fft.rfft(y[-N:])) ** 2
    harmonic = np.zeros(len(power), bool)
    harmonic[np.arange(BIN, len(power), BIN)] = True
    return float(10 * np.log10(power[~harmonic].sum() / power[harmonic].sum()))


def test_shapes_at_1x_are_their_formulas() -> None:
    x = np.linspace(-3, 3, 601)
    formulas = {
        "tanh": np.tanh(2 * x),
        "clip": np.clip(2 * x, -1, 1),
        "cubic": np.where(np.abs(2 * x) >= 1, np.sign(x), 1.5 * (2 * x - (2 * x) ** 3 / 3)),
        "atan": 2 / np.pi * np.arctan(2 * x),
    }
    for shape, want in formulas.items():
        outs = both_engines(
            one_node(lambda shape=shape: Waveshaper(2.0, shape, 1, level=0.5), {"input": x}), len(x)
        )
        for y in outs.values():
            np.testing.assert_allclose(y, 0.5 * want, atol=1e-15, err_msg=shape)


def test_halfband_filters_meet_their_specification() -> None:
    for taps, order, passband, stopband, floor in ((STAGE1_TAPS, STAGE1_ORDER, 0.225, 0.275, -90.0),
                                                   (STAGE2_TAPS, STAGE2_ORDER, 0.1125, 0.3875, -99.0)):  # fmt: skip
        h = np.zeros(2 * order + 1)
        h[0::2] = taps
        h[order] = 0.5
        assert h.sum() == pytest.approx(1.0, abs=1e-15)
        np.testing.assert_allclose(h, h[::-1], atol=0)  # linear phase
        f = np.linspace(0, 0.5, 4001)
        response = np.abs(np.exp(-2j * np.pi * np.outer(f, np.arange(len(h)))) @ h)
        db = 20 * np.log10(np.maximum(response, 1e-300))
        assert np.max(np.abs(db[f <= passband])) < 1e-3
        assert np.max(db[f >= stopband]) < floor


@pytest.mark.parametrize("oversample", [2, 4])
def test_oversampling_passes_a_linear_signal_delayed_by_the_latency(oversample: int) -> None:
    # inside [-1, 1] the clip is the identity: what comes out is the resampling chain alone
    n = 3000
    t = np.arange(n)
    freqs = (1000.0, 5000.0, 15000.0)
    x = sum(0.3 * np.sin(2 * np.pi * f * t / SR) for f in freqs)
    node = Waveshaper(1.0, "clip", oversample)
    latency = node.latency
    assert latency == {2: 62.5, 4: 69.75}[oversample]
    outs = both_engines(one_node(lambda: Waveshaper(1.0, "clip", oversample), {"input": x}), n)
    for y in outs.values():
        want = sum(0.3 * np.sin(2 * np.pi * f * (t - latency) / SR) for f in freqs)
        np.testing.assert_allclose(y[300:], want[300:], atol=1e-4)


@pytest.mark.parametrize(("shape", "drive", "gain_2x", "gain_4x"), [("tanh", 4.0, 25.0, 60.0),
                                                                   ("clip", 2.0, 10.0, 20.0)])  # fmt: skip
def test_oversampling_reduces_the_alias_energy(
    shape: str, drive: float, gain_2x: float, gain_4x: float
) -> None:
    x = np.sin(2 * np.pi * BIN * np.arange(2 * N) / N)
    measured = {}
    for oversample in (1, 2, 4):
        outs = both_engines(one_node(lambda o=oversample: Waveshaper(drive, shape, o), {"input": x}), 2 * N,
                            blocks=1024)  # fmt: skip
        values = [alias_db(y) for y in outs.values()]
        assert values[0] == pytest.approx(values[1], abs=0.5)
        measured[oversample] = values[0]
    print(f"{shape} drive {drive}: alias energy {measured} dB (1x, 2x, 4x)")
    assert measured[1] > -35.0  # there is aliasing to remove: the test can fail
    assert measured[2] < measured[1] - gain_2x
    assert measured[4] < measured[1] - gain_4x


def test_oversampling_keeps_the_harmonics() -> None:
    x = np.sin(2 * np.pi * 15 * np.arange(2 * N) / N)  # 161 Hz: harmonics far below Nyquist
    levels = []
    for oversample in (1, 4):
        y = both_engines(one_node(lambda o=oversample: Waveshaper(3.0, "tanh", o), {"input": x}), 2 * N)[
            "state"
        ]
        spectrum = np.abs(np.fft.rfft(y[-N:])) * 2 / N
        levels.append(spectrum[[15, 45, 75]])
    np.testing.assert_allclose(levels[0], levels[1], rtol=1e-3)
    assert levels[0][1] > 0.05


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="oversample must be 1, 2 or 4, got 3"):
        Waveshaper(oversample=3)
    with pytest.raises(ValueError, match="unknown shape 'fuzz'"):
        Waveshaper(shape="fuzz")
    assert math.isclose(Waveshaper(oversample=1).latency, 0.0)


@pytest.mark.parametrize("oversample", [1, 2, 4])
def test_compilable_subset(oversample: int) -> None:
    assert_compilable(Waveshaper(3.0, "cubic", oversample), inputs={"input": np.linspace(-1, 1, 300)})


def test_example_patch_renders_in_both_engines() -> None:
    out = example_renders("distortion_patch.py", seconds=0.1)
    assert np.max(np.abs(out)) > 0.05
