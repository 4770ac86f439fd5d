"""WAV files in and out, with oscen's array conventions.

oscen works in float64 with channels first: mono ``(n,)``, multichannel ``(channels, n)``, the
shape ``Graph.process_block`` returns. soundfile (libsndfile) wants ``(n, channels)`` and stores
float32 or integer PCM. The conversion happens here, at the edge, and nowhere else, so the rest of
the library never has to think about file layouts.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf

SUBTYPES = ("FLOAT", "PCM_16", "PCM_24")
"""WAV sample formats accepted by :func:`write_wav`: 32-bit float (lossless for audio work,
keeps overs above 0 dBFS) or 16/24-bit integer PCM (what every player understands)."""

MAX_CHANNELS = 64
"""A 2-D array with more rows than this is almost certainly ``(n, channels)`` by mistake."""


class WavError(ValueError):
    """Samples or a path that cannot become (or come from) a WAV file; the message says why."""


def write_wav(
    path: str | Path,
    samples: np.ndarray,
    sample_rate: float,
    subtype: str = "FLOAT",
    normalize: bool = False,
    peak_db: float = -1.0,
) -> Path:
    """Write ``samples`` (``(n,)`` or ``(channels, n)``) to a WAV file; returns the path.

    ``normalize=True`` scales the signal so its peak sits at ``peak_db`` dBFS (-1 dB leaves room
    for inter-sample peaks in lossy re-encodes). Integer subtypes clip to [-1, 1] rather than
    letting libsndfile wrap around; FLOAT keeps values as they are.
    """
    path = Path(path)
    subtype = subtype.upper()
    if subtype not in SUBTYPES:
        raise WavError(f"write_wav: subtype must be one of {', '.join(SUBTYPES)}, got {subtype!r}")
    rate = _integral_rate(sample_rate)
    data = _as_channels_first(samples)
    _check_finite(data, rate)
    if not path.parent.exists():
        raise WavError(f"write_wav: cannot write {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise WavError(f"write_wav: cannot write {path}: it is a directory")
    if normalize:
        peak = float(np.max(np.abs(data))) if data.size else 0.0
        if peak > 0.0:
            data = data * (10.0 ** (peak_db / 20.0) / peak)
    if subtype != "FLOAT":
        data = np.clip(data, -1.0, 1.0)
    # float64 -> float32 here and only here; soundfile wants frames as rows.
    frames = np.ascontiguousarray(data.T, dtype=np.float32)
    try:
        sf.write(str(path), frames, rate, subtype=subtype, format="WAV")
    except (sf.LibsndfileError, OSError, RuntimeError) as exc:
        raise WavError(f"write_wav: cannot write {path}: {exc}") from exc
    return path


def read_wav(path: str | Path) -> tuple[np.ndarray, float]:
    """Read a sound file into float64 ``(n,)`` (mono) or ``(channels, n)``; returns (samples, sample_rate)."""
    path = Path(path)
    if not path.is_file():
        raise WavError(f"read_wav: no such file: {path}")
    try:
        frames, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (sf.LibsndfileError, OSError, RuntimeError) as exc:
        raise WavError(f"read_wav: cannot read {path}: {exc}") from exc
    data = np.ascontiguousarray(frames.T)
    return (data[0] if data.shape[0] == 1 else data), float(rate)


def _integral_rate(sample_rate: float) -> int:
    """WAV headers store an integer rate; refuse to round a fractional one silently."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
        raise WavError(f"write_wav: sample_rate must be a number, got {sample_rate!r}")
    rate = float(sample_rate)
    if not math.isfinite(rate) or rate <= 0 or rate != round(rate):
        raise WavError(f"write_wav: sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    return int(round(rate))


def _as_channels_first(samples: np.ndarray) -> np.ndarray:
    data = np.asarray(samples)
    if data.dtype.kind not in "fiu":
        raise WavError(f"write_wav: samples must be a numeric array, got dtype {data.dtype}")
    data = data.astype(np.float64, copy=False)
    if data.ndim == 1:
        return data[np.newaxis, :]
    if data.ndim != 2:
        raise WavError(f"write_wav: samples must be (n,) or (channels, n), got shape {data.shape}")
    if data.shape[0] > MAX_CHANNELS:
        raise WavError(
            f"write_wav: samples of shape {data.shape} would be {data.shape[0]} channels; oscen arrays are "
            f"(channels, n) — if this is (n, channels), pass samples.T"
        )
    if data.shape[0] == 0:
        raise WavError("write_wav: samples have no channels")
    return data


def _check_finite(data: np.ndarray, rate: int) -> None:
    """A NaN or inf would make a silent or deafening file; say where the first one is instead."""
    bad = ~np.isfinite(data)
    if not bad.any():
        return
    # The first bad sample in time order (then lowest channel), which is where to look for the cause.
    frame = int(np.argmax(bad.any(axis=0)))
    channel = int(np.argmax(bad[:, frame]))
    value = data[channel, frame]
    where = f"sample {frame} ({frame / rate:.6f} s)"
    if data.shape[0] > 1:
        where += f", channel {channel}"
    raise WavError(
        f"write_wav: samples contain {int(bad.sum())} non-finite values; the first is {value} at {where}. "
        "A node produced NaN or inf (an unstable filter, a division by zero?)"
    )
