"""Reference signals for the peer-benchmark patches, computed with numpy/scipy in float64.

Every peer engine (and oscen itself) renders the same two patches; these functions are the
ground truth their output is checked against, so that a benchmark never compares a fast
engine producing the wrong sound with a slow one producing the right one.

The patches:

* ``seed``: sine 440 Hz, amplitude 0.5 -> RBJ biquad lowpass (1000 Hz, Q 0.707) -> gain 0.8.
* ``voices64``: 64 sines, ``f_k = 110 * 2**(k/12)`` for k = 0..63, i.e. 110 Hz (A2) up to
  4186.0 Hz (C8); the top voice is far below Nyquist at 44.1 kHz, so no capping or wrapping is
  needed. Amplitude 1/64 each, each through its own RBJ lowpass (1000 Hz, Q 0.707), summed.

All sines start at phase 0 (first sample is exactly 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

PATCHES: tuple[str, ...] = ("seed", "voices64")

# Patch constants, shared by every engine so they cannot drift apart.
SEED_FREQ = 440.0
SEED_AMP = 0.5
SEED_GAIN = 0.8
CUTOFF = 1000.0
Q = 0.707
VOICES = 64
VOICE_BASE_FREQ = 110.0
VOICE_AMP = 1.0 / VOICES

# Default comparison tolerances (see README: float32 engines land well inside these).
RMS_TOLERANCE = 0.01
MIN_CORRELATION = 0.999
SKIP_SECONDS = 0.05


def voice_frequencies(n: int = VOICES) -> np.ndarray:
    """Frequencies of the voices64 patch: a chromatic scale upwards from 110 Hz."""
    return VOICE_BASE_FREQ * 2.0 ** (np.arange(n) / 12.0)


def rbj_lowpass(cutoff: float, q: float, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """RBJ audio-EQ-cookbook lowpass as normalised ``(b, a)`` with ``a[0] == 1``."""
    w0 = 2.0 * np.pi * cutoff / sample_rate
    cos_w0 = np.cos(w0)
    alpha = np.sin(w0) / (2.0 * q)
    a0 = 1.0 + alpha
    b = np.array([(1.0 - cos_w0) / 2.0, 1.0 - cos_w0, (1.0 - cos_w0) / 2.0]) / a0
    a = np.array([1.0, -2.0 * cos_w0 / a0, (1.0 - alpha) / a0])
    return b, a


def num_samples(seconds: float, sample_rate: float) -> int:
    """The sample count every engine's ``render`` must return (the interface contract)."""
    return int(seconds * sample_rate)


def _sine(freq: float, n: int, sample_rate: float) -> np.ndarray:
    # Phase from the sample index (not an accumulator): exact to float64 rounding for any n.
    return np.sin(2.0 * np.pi * freq * (np.arange(n, dtype=np.float64) / sample_rate))


def seed(seconds: float, sample_rate: float = 44100.0) -> np.ndarray:
    """Reference output of the ``seed`` patch."""
    n = num_samples(seconds, sample_rate)
    b, a = rbj_lowpass(CUTOFF, Q, sample_rate)
    return SEED_GAIN * lfilter(b, a, SEED_AMP * _sine(SEED_FREQ, n, sample_rate))


def voices64(seconds: float, sample_rate: float = 44100.0) -> np.ndarray:
    """Reference output of the ``voices64`` patch.

    The 64 filters are identical and linear, so filtering the sum equals summing the filtered
    voices (up to rounding); that keeps the reference cheap (one lfilter instead of 64).
    """
    n = num_samples(seconds, sample_rate)
    b, a = rbj_lowpass(CUTOFF, Q, sample_rate)
    mix = np.zeros(n)
    for f in voice_frequencies():
        mix += _sine(float(f), n, sample_rate)
    return lfilter(b, a, VOICE_AMP * mix)


def reference(patch: str, seconds: float, sample_rate: float = 44100.0) -> np.ndarray:
    """Reference output of ``patch`` (one of :data:`PATCHES`)."""
    if patch == "seed":
        return seed(seconds, sample_rate)
    if patch == "voices64":
        return voices64(seconds, sample_rate)
    raise ValueError(f"unknown patch {patch!r}; expected one of {PATCHES}")


@dataclass(frozen=True)
class Comparison:
    """How close an engine's output is to the reference (after skipping the transient)."""

    rms_ratio: float  # rms(out) / rms(ref)
    correlation: float  # Pearson correlation of out and ref
    max_abs_error: float
    length_ok: bool

    def ok(
        self, rms_tolerance: float = RMS_TOLERANCE, min_correlation: float | None = MIN_CORRELATION
    ) -> bool:
        """True if the output is 'the same sound' within the given tolerances."""
        if not self.length_ok or not abs(self.rms_ratio - 1.0) <= rms_tolerance:
            return False
        return min_correlation is None or self.correlation >= min_correlation


def compare(
    out: np.ndarray, ref: np.ndarray, sample_rate: float = 44100.0, skip_seconds: float = SKIP_SECONDS
) -> Comparison:
    """Compare ``out`` with ``ref``, ignoring the first ``skip_seconds`` (filter start-up)."""
    out = np.asarray(out, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    length_ok = out.shape == ref.shape
    n = min(out.size, ref.size)
    skip = min(int(skip_seconds * sample_rate), max(n - 2, 0))
    o, r = out[skip:n], ref[skip:n]
    rms_r = float(np.sqrt(np.mean(r * r))) if r.size else 0.0
    rms_o = float(np.sqrt(np.mean(o * o))) if o.size else 0.0
    rms_ratio = rms_o / rms_r if rms_r > 0 else float("nan")
    if o.size > 1 and np.std(o) > 0 and np.std(r) > 0:
        correlation = float(np.corrcoef(o, r)[0, 1])
    else:
        correlation = float("nan")
    max_err = float(np.max(np.abs(o - r))) if o.size else float("nan")
    return Comparison(rms_ratio, correlation, max_err, length_ok)


def check(patch: str, out: np.ndarray, seconds: float, sample_rate: float = 44100.0) -> Comparison:
    """Compare an engine's rendering of ``patch`` with the reference of the same duration."""
    return compare(out, reference(patch, seconds, sample_rate), sample_rate)
