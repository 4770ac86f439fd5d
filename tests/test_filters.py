"""Filters: magnitude responses against independent references.

The biquads are compared with ``scipy.signal.freqz`` of coefficients computed here, straight from
the Audio EQ Cookbook; the TPT state-variable filter with scipy's bilinear transform of the analog
SVF, prewarped at the cutoff. The node's response is the FFT of its impulse response.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from node_harness import SR, assert_compilable, assert_jit_matches, impulse, magnitude_db, run, run1
from scipy import signal

from oscen.filters import (
    Biquad,
    IirBandpass,
    IirHighpass,
    IirHighShelf,
    IirLowpass,
    IirLowShelf,
    IirNotch,
    IirPeak,
    TptFilter,
    shelf_q,
)

N_IR = 8192
FREQS = np.fft.rfftfreq(N_IR, 1.0 / SR)


def cookbook(kind: str, f0: float, q: float, gain_db: float = 0.0, fs: float = SR) -> tuple[list, list]:
    """(b, a) of the RBJ cookbook filter ``kind``, written out independently of oscen."""
    A = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * f0 / fs
    c, s = math.cos(w0), math.sin(w0)
    alpha = s / (2 * q)
    if kind == "lowpass":
        b = [(1 - c) / 2, 1 - c, (1 - c) / 2]
        a = [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "highpass":
        b = [(1 + c) / 2, -(1 + c), (1 + c) / 2]
        a = [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "bandpass":  # constant 0 dB peak gain
        b = [alpha, 0, -alpha]
        a = [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "notch":
        b = [1, -2 * c, 1]
        a = [1 + alpha, -2 * c, 1 - alpha]
    elif kind == "peak":
        b = [1 + alpha * A, -2 * c, 1 - alpha * A]
        a = [1 + alpha / A, -2 * c, 1 - alpha / A]
    elif kind == "lowshelf":
        r = 2 * math.sqrt(A) * alpha
        b = [
            A * ((A + 1) - (A - 1) * c + r),
            2 * A * ((A - 1) - (A + 1) * c),
            A * ((A + 1) - (A - 1) * c - r),
        ]
        a = [(A + 1) + (A - 1) * c + r, -2 * ((A - 1) + (A + 1) * c), (A + 1) + (A - 1) * c - r]
    elif kind == "highshelf":
        r = 2 * math.sqrt(A) * alpha
        b = [
            A * ((A + 1) + (A - 1) * c + r),
            -2 * A * ((A - 1) + (A + 1) * c),
            A * ((A + 1) + (A - 1) * c - r),
        ]
        a = [(A + 1) - (A - 1) * c + r, 2 * ((A - 1) - (A + 1) * c), (A + 1) - (A - 1) * c - r]
    else:
        raise ValueError(kind)
    return b, a


def node_response(node, output: str = "output") -> np.ndarray:
    h = run(node, N_IR, inputs={"input": impulse(N_IR)}, outputs=(output,))[output]
    return np.fft.rfft(h)


def assert_response_matches(measured: np.ndarray, reference: np.ndarray, floor_db: float = -60.0) -> None:
    """Within 0.1 dB wherever the reference is above floor_db; below it, within 1e-3 absolute."""
    ref_db = magnitude_db(reference)
    loud = ref_db > floor_db
    assert loud.sum() > 100
    np.testing.assert_allclose(magnitude_db(measured)[loud], ref_db[loud], atol=0.1)
    np.testing.assert_allclose(np.abs(measured)[~loud], np.abs(reference)[~loud], atol=1e-3)


CASES = [
    (IirLowpass, "lowpass", 1000.0, 0.7071, 0.0),
    (IirLowpass, "lowpass", 5000.0, 4.0, 0.0),
    (IirHighpass, "highpass", 300.0, 0.7071, 0.0),
    (IirHighpass, "highpass", 8000.0, 2.0, 0.0),
    (IirBandpass, "bandpass", 1500.0, 2.0, 0.0),
    (IirBandpass, "bandpass", 400.0, 0.5, 0.0),
    (IirNotch, "notch", 2000.0, 1.0, 0.0),
    (IirPeak, "peak", 1000.0, 1.5, 9.0),
    (IirPeak, "peak", 3000.0, 0.8, -12.0),
    (IirLowShelf, "lowshelf", 500.0, 0.7071, 6.0),
    (IirLowShelf, "lowshelf", 2000.0, 1.2, -9.0),
    (IirHighShelf, "highshelf", 4000.0, 0.7071, 6.0),
    (IirHighShelf, "highshelf", 800.0, 0.5, -15.0),
]


@pytest.mark.parametrize(("cls", "kind", "f0", "q", "gain_db"), CASES)
def test_biquad_matches_cookbook(cls, kind: str, f0: float, q: float, gain_db: float) -> None:
    node = cls(f0, q, gain_db) if gain_db else cls(f0, q)
    b, a = cookbook(kind, f0, q, gain_db)
    _, reference = signal.freqz(b, a, worN=FREQS, fs=SR)
    assert_response_matches(node_response(node), reference)


def test_characteristic_gains() -> None:
    # Sanity of the references themselves, from the definitions: -3 dB at a Butterworth cutoff,
    # 0 dB at the bandpass centre, gain_db at the peak's centre, half the gain at a shelf's midpoint.
    def gain_at(node, f: float) -> float:
        h = node_response(node)
        return float(np.interp(f, FREQS, magnitude_db(h)))

    assert gain_at(IirLowpass(1000.0, 1 / math.sqrt(2)), 1000.0) == pytest.approx(-3.01, abs=0.05)
    assert gain_at(IirBandpass(1500.0, 3.0), 1500.0) == pytest.approx(0.0, abs=0.05)
    assert gain_at(IirPeak(2000.0, 2.0, 7.5), 2000.0) == pytest.approx(7.5, abs=0.05)
    assert gain_at(IirLowShelf(1000.0, 0.7071, 10.0), 1000.0) == pytest.approx(5.0, abs=0.05)
    assert gain_at(IirNotch(3000.0, 2.0), 3000.0) < -30.0


def test_shelf_slope_one_is_butterworth_q() -> None:
    assert shelf_q(1.0, 6.0) == pytest.approx(1 / math.sqrt(2))
    node = IirHighShelf.from_slope(3000.0, 0.5, 6.0)
    assert node.q == pytest.approx(shelf_q(0.5, 6.0))
    b, a = cookbook("highshelf", 3000.0, node.q, 6.0)
    _, reference = signal.freqz(b, a, worN=FREQS, fs=SR)
    assert_response_matches(node_response(node), reference)


def test_base_biquad_is_identity() -> None:
    x = np.random.default_rng(0).normal(size=100)
    np.testing.assert_allclose(run1(Biquad(), 100, input=x), x)


def test_parameter_change_recomputes_coefficients() -> None:
    # Switch the cutoff mid-run: the output must equal a fresh scipy lfilter with the new coefficients
    # continuing from the same state (direct form II transposed, as lfilter's zi).
    rng = np.random.default_rng(1)
    x = rng.normal(size=600)
    node = IirLowpass(500.0, 0.7071)
    first = run1(node, 300, input=x[:300])
    node.cutoff = 3000.0
    second = run1(node, 300, input=x[300:])
    b1, a1 = cookbook("lowpass", 500.0, 0.7071)
    b2, a2 = cookbook("lowpass", 3000.0, 0.7071)
    b1, a1 = np.array(b1) / a1[0], np.array(a1) / a1[0]
    b2, a2 = np.array(b2) / a2[0], np.array(a2) / a2[0]
    ref1, zf = signal.lfilter(b1, a1, x[:300], zi=np.zeros(2))
    # lfilter's state is the same transposed-DF-II state the node carries: continue with new coefficients
    ref2, _ = signal.lfilter(b2, a2, x[300:], zi=zf)
    np.testing.assert_allclose(first, ref1, atol=1e-12)
    np.testing.assert_allclose(second, ref2, atol=1e-12)


def test_gain_change_recomputes_coefficients() -> None:
    node = IirPeak(1000.0, 1.0, 0.0)
    flat = node_response(node)
    np.testing.assert_allclose(np.abs(flat), 1.0, atol=1e-9)  # 0 dB peak is the identity
    node = IirPeak(1000.0, 1.0, 0.0)
    run1(node, 1)
    node.gain_db = 6.0
    node._s1 = node._s2 = 0.0
    b, a = cookbook("peak", 1000.0, 1.0, 6.0)
    _, reference = signal.freqz(b, a, worN=FREQS, fs=SR)
    assert_response_matches(node_response(node), reference)


def test_sample_rate_is_honoured() -> None:
    sr = 96000.0
    h = run(IirLowpass(10000.0, 2.0), N_IR, sr, inputs={"input": impulse(N_IR)})["output"]
    freqs = np.fft.rfftfreq(N_IR, 1.0 / sr)
    b, a = cookbook("lowpass", 10000.0, 2.0, fs=sr)
    _, reference = signal.freqz(b, a, worN=freqs, fs=sr)
    assert_response_matches(np.fft.rfft(h), reference)


def test_cutoff_is_clamped_below_nyquist_and_output_stays_finite() -> None:
    x = np.random.default_rng(2).normal(size=200)
    for cls in (IirLowpass, IirHighpass, IirBandpass, IirNotch):
        y = run1(cls(30000.0, 0.0), 200, input=x)  # above Nyquist, Q = 0: both clamped
        assert np.all(np.isfinite(y))
        y = run1(cls(0.0, 1.0), 200, input=x)
        assert np.all(np.isfinite(y))


# ------------------------------------------------------------------ TPT state-variable filter


def svf_reference(f0: float, q: float, fs: float = SR) -> dict[str, np.ndarray]:
    """Frequency responses of the analog SVF outputs, bilinear-transformed with prewarping at f0."""
    wa = 2 * fs * math.tan(math.pi * f0 / fs)  # the analog cutoff that maps to f0
    k = 1 / q
    den = [1.0, k * wa, wa * wa]
    analog = {"lowpass": [wa * wa], "bandpass": [k * wa, 0.0], "highpass": [1.0, 0.0, 0.0]}
    responses = {}
    for name, num in analog.items():
        b, a = signal.bilinear(num, den, fs)
        _, responses[name] = signal.freqz(b, a, worN=FREQS, fs=fs)
    return responses


@pytest.mark.parametrize(("f0", "q"), [(1000.0, 0.7071), (200.0, 0.5), (6000.0, 5.0), (15000.0, 1.0)])
def test_tpt_svf_matches_prewarped_analog(f0: float, q: float) -> None:
    outputs = ("lowpass", "bandpass", "highpass")
    result = run(TptFilter(f0, q), N_IR, inputs={"input": impulse(N_IR)}, outputs=outputs)
    reference = svf_reference(f0, q)
    for name in outputs:
        assert_response_matches(np.fft.rfft(result[name]), reference[name])


def test_tpt_outputs_sum_to_input() -> None:
    x = np.random.default_rng(3).normal(size=500)
    result = run(
        TptFilter(2000.0, 3.0), 500, inputs={"input": x}, outputs=("lowpass", "bandpass", "highpass")
    )
    np.testing.assert_allclose(result["lowpass"] + result["bandpass"] + result["highpass"], x, atol=1e-12)


def test_tpt_cutoff_mod_adds_hz_and_is_clamped() -> None:
    outputs = ("lowpass", "bandpass", "highpass")
    modulated = run(
        TptFilter(500.0, 1.0), N_IR, inputs={"input": impulse(N_IR), "cutoff_mod": 1500.0}, outputs=outputs
    )
    reference = svf_reference(2000.0, 1.0)
    assert_response_matches(np.fft.rfft(modulated["lowpass"]), reference["lowpass"])
    # pushed far beyond Nyquist / below zero: clamped, still finite and stable
    x = np.random.default_rng(4).normal(size=1000)
    wild = np.random.default_rng(5).uniform(-1e6, 1e6, 1000)
    y = run(TptFilter(1000.0, 0.7), 1000, inputs={"input": x, "cutoff_mod": wild}, outputs=outputs)
    for name in outputs:
        assert np.all(np.isfinite(y[name]))
        assert np.max(np.abs(y[name])) < 100.0


def test_tpt_audio_rate_sweep_stays_bounded() -> None:
    n = 4000
    t = np.arange(n)
    x = np.sin(2 * np.pi * 220.0 * t / SR)
    sweep = 3000.0 * np.sin(2 * np.pi * 3.0 * t / SR)
    y = run(TptFilter(4000.0, 8.0), n, inputs={"input": x, "cutoff_mod": sweep}, outputs=("lowpass",))
    assert np.max(np.abs(y["lowpass"])) < 10.0


@pytest.mark.parametrize(
    "cls",
    [Biquad, IirLowpass, IirHighpass, IirBandpass, IirNotch, IirPeak, IirLowShelf, IirHighShelf, TptFilter],
)
def test_compilable_subset(cls) -> None:
    n = 300
    x = np.random.default_rng(9).normal(size=n)
    inputs = {"input": x, "cutoff": np.linspace(200.0, 5000.0, n)}
    if cls is TptFilter:
        inputs["cutoff_mod"] = 100.0 * x
    assert_compilable(cls(), n, inputs=inputs)


@pytest.mark.parametrize(
    "make",
    [
        lambda: IirLowpass(800.0, 3.0),
        lambda: IirHighpass(800.0, 0.7),
        lambda: IirBandpass(2000.0, 2.0),
        lambda: IirNotch(1000.0, 1.0),
        lambda: IirPeak(1000.0, 1.0, 6.0),
        lambda: IirLowShelf(300.0, 0.7, -6.0),
        lambda: IirHighShelf(3000.0, 0.7, 6.0),
    ],
)
def test_jit_matches_interpreter(make) -> None:
    assert_jit_matches(make)


def test_tpt_jit_matches_interpreter() -> None:
    outputs = ("lowpass", "bandpass", "highpass")
    assert_jit_matches(lambda: TptFilter(1500.0, 4.0), noise_into=("input", "cutoff_mod"), outputs=outputs)
