"""Reverb (Freeverb): sample-exact against Freeverb's filters built from their transfer functions,
decay time growing with room size, damping, stereo decorrelation, dry path."""

from __future__ import annotations

import math

import numpy as np
import pytest
from node_harness import assert_compilable, assert_jit_matches, impulse, run
from scipy import signal

from oscen.reverb import Reverb

SR = 22050.0  # half rate: half the samples per second of tail, same structure (tunings scale)

COMBS = [1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617]
ALLPASSES = [556, 441, 341, 225]
SPREAD = 23


def freeverb_reference(
    left: np.ndarray,
    right: np.ndarray,
    room: float,
    damp: float,
    wet: float,
    dry: float,
    width: float,
    sample_rate: float = SR,
) -> tuple[np.ndarray, np.ndarray]:
    """Freeverb from the transfer functions of its parts, with scipy's lfilter.

    Lowpass-feedback comb (delay L, feedback g, damping d): out = line[n-L], line = in + g * lp(out),
    lp = (1-d) / (1 - d z^-1), so H = z^-L (1 - d z^-1) / (1 - d z^-1 - g (1-d) z^-L).
    Freeverb allpass (delay L): out = line[n-L] - in, line = in + 0.5 line[n-L],
    so H = (-1 + 1.5 z^-L) / (1 - 0.5 z^-L).
    """
    g = room * 0.28 + 0.7
    d = damp * 0.4
    scale = sample_rate / 44100.0
    x = (left + right) * 0.015
    outs = []
    for spread in (0, SPREAD):
        acc = np.zeros_like(x)
        for tuning in COMBS:
            L = int((tuning + spread) * scale)
            b = np.zeros(L + 2)
            b[L], b[L + 1] = 1.0, -d
            a = np.zeros(L + 1)
            a[0], a[1] = 1.0, -d
            a[L] += -g * (1 - d)
            acc += signal.lfilter(b, a, x)
        for tuning in ALLPASSES:
            L = int((tuning + spread) * scale)
            b = np.zeros(L + 1)
            b[0], b[L] = -1.0, 1.5
            a = np.zeros(L + 1)
            a[0], a[L] = 1.0, -0.5
            acc = signal.lfilter(b, a, acc)
        outs.append(acc)
    out_l, out_r = outs
    wet1 = 3 * wet * (width / 2 + 0.5)
    wet2 = 3 * wet * ((1 - width) / 2)
    return out_l * wet1 + out_r * wet2 + left * dry, out_r * wet1 + out_l * wet2 + right * dry


def render(
    reverb: Reverb, inputs: dict[str, np.ndarray], n: int, sample_rate: float = SR
) -> tuple[np.ndarray, np.ndarray]:
    result = run(reverb, n, sample_rate, inputs=inputs, outputs=("left", "right"))
    return result["left"], result["right"]


def decay_time(y: np.ndarray, sample_rate: float = SR, frame: float = 0.02) -> float:
    """RT60 from a straight-line fit to the energy envelope (dB) after the first 50 ms."""
    hop = int(frame * sample_rate)
    frames = len(y) // hop
    energy = (y[: frames * hop] ** 2).reshape(frames, hop).mean(axis=1)
    level = 10 * np.log10(energy + 1e-30)
    t = (np.arange(frames) + 0.5) * frame
    fit = t > 0.05
    slope = np.polyfit(t[fit], level[fit], 1)[0]
    return -60.0 / slope


def test_matches_freeverb_transfer_functions_mono() -> None:
    n = 3000
    x = np.zeros(n)
    x[0] = 1.0
    x[200:260] = np.random.default_rng(0).normal(size=60)
    left, right = render(Reverb(0.5, 0.5, 0.33, 0.0, 1.0), {"input": x}, n)
    ref_l, ref_r = freeverb_reference(x, x, 0.5, 0.5, 0.33, 0.0, 1.0)
    np.testing.assert_allclose(left, ref_l, atol=1e-12)
    np.testing.assert_allclose(right, ref_r, atol=1e-12)
    assert np.max(np.abs(left)) > 0.01  # the comparison is not between two silences


def test_matches_freeverb_transfer_functions_stereo_with_all_parameters() -> None:
    n = 2500
    rng = np.random.default_rng(1)
    xl, xr = rng.normal(size=n), rng.normal(size=n)
    node = Reverb(room_size=0.8, damping=0.2, wet=0.5, dry=0.3, width=0.6, stereo_input=True)
    left, right = render(node, {"input": xl, "input_right": xr}, n)
    ref_l, ref_r = freeverb_reference(xl, xr, 0.8, 0.2, 0.5, 0.3, 0.6)
    np.testing.assert_allclose(left, ref_l, atol=1e-10)
    np.testing.assert_allclose(right, ref_r, atol=1e-10)


def test_decay_time_grows_with_room_size_and_matches_comb_theory() -> None:
    sr = 11025.0  # two seconds of tail for the price of one at 22.05 kHz
    n = int(2.0 * sr)
    # Lowpass the tail so the combs' damping (which shortens the highs) drops out: near DC each comb
    # loses a factor g (its feedback) every L samples, RT60 = 3 L / (sr * -log10 g). The tail's
    # low-frequency RT60 must lie between those of the shortest and the longest comb.
    lowpass = signal.butter(4, 100.0, fs=sr, output="sos")
    times = []
    for room in (0.2, 0.5, 0.85):
        left, _ = render(Reverb(room_size=room, damping=0.5), {"input": impulse(n)}, n, sr)
        g = room * 0.28 + 0.7
        comb_rt60 = [3 * (t / 44100.0) / -math.log10(g) for t in COMBS]
        low = decay_time(signal.sosfilt(lowpass, left), sr)
        broadband = decay_time(left, sr)
        assert 0.9 * min(comb_rt60) < low < 1.1 * max(comb_rt60), (room, low, comb_rt60)
        assert 0.3 < broadband <= low * 1.05
        times.append(broadband)
    assert times[0] < times[1] < times[2]


def test_damping_shortens_the_high_frequencies() -> None:
    n = int(0.5 * SR)
    highpass = signal.butter(4, 4000.0, btype="highpass", fs=SR, output="sos")
    bright, _ = render(Reverb(room_size=0.7, damping=0.0), {"input": impulse(n)}, n)
    dark, _ = render(Reverb(room_size=0.7, damping=1.0), {"input": impulse(n)}, n)
    assert decay_time(signal.sosfilt(highpass, dark)) < 0.5 * decay_time(signal.sosfilt(highpass, bright))


def test_stereo_outputs_are_decorrelated_and_width_zero_is_mono() -> None:
    n = 4000
    x = impulse(n)
    left, right = render(Reverb(0.6, 0.5, 0.33, 0.0, 1.0), {"input": x}, n)
    assert abs(np.corrcoef(left, right)[0, 1]) < 0.2
    assert np.sum(left**2) == pytest.approx(np.sum(right**2), rel=0.3)
    left, right = render(Reverb(0.6, 0.5, 0.33, 0.0, 0.0), {"input": x}, n)
    np.testing.assert_allclose(left, right, atol=1e-15)


def test_wet_zero_dry_one_passes_the_input() -> None:
    n = 500
    rng = np.random.default_rng(2)
    x, xr = rng.normal(size=n), rng.normal(size=n)
    left, right = render(Reverb(wet=0.0, dry=1.0), {"input": x}, n)
    np.testing.assert_array_equal(left, x)
    np.testing.assert_array_equal(right, x)
    left, right = render(Reverb(wet=0.0, dry=1.0, stereo_input=True), {"input": x, "input_right": xr}, n)
    np.testing.assert_array_equal(left, x)
    np.testing.assert_array_equal(right, xr)


def test_lines_are_laid_out_for_the_sample_rate() -> None:
    node = Reverb()
    render(node, {"input": impulse(10)}, 10, 48000.0)
    comb_lengths = node._comb_end - node._comb_start
    allpass_lengths = node._allpass_end - node._allpass_start
    assert list(comb_lengths[:8]) == [int(t * 48000.0 / 44100.0) for t in COMBS]
    assert list(allpass_lengths[4:]) == [int((t + SPREAD) * 48000.0 / 44100.0) for t in ALLPASSES]
    # back to back, no overlap
    starts = np.r_[node._comb_start, node._allpass_start]
    ends = np.r_[node._comb_end, node._allpass_end]
    np.testing.assert_array_equal(starts[1:], ends[:-1])
    assert ends[-1] <= len(node._buffer)
    render(node, {"input": impulse(10)}, 10, 192000.0)  # the largest rate the lines were sized for
    assert node._allpass_end[-1] <= len(node._buffer)


@pytest.mark.parametrize("stereo_input", [False, True])
def test_compilable_subset(stereo_input: bool) -> None:
    assert_compilable(
        Reverb(stereo_input=stereo_input), 50, inputs={"input": impulse(50), "input_right": impulse(50)}
    )


@pytest.mark.parametrize("stereo_input", [False, True])
def test_jit_matches_interpreter(stereo_input: bool) -> None:
    make = lambda: Reverb(0.8, 0.3, 0.33, 0.2, 0.7, stereo_input)  # noqa: E731
    assert_jit_matches(make, noise_into=("input",), outputs=("left", "right"))
