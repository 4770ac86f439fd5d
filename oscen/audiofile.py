"""Reading sound files: what the node library needs of them (``Sampler`` loads its sound at
construction), in a module of its own below both the node library and :mod:`oscen.io`, which
re-exports it with the writers (``oscen.io.read_wav``, ``oscen.io.WavError``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["WavError", "read_wav"]


class WavError(ValueError):
    """Samples or a path that cannot become (or come from) a sound file; the message says why."""


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
