"""Offline rendering: run any graph-like engine block by block into one array.

"Graph-like" means an object with ``sample_rate`` and ``process_block(n)`` returning ``(n,)`` or
``(channels, n)``: the interpreted :class:`oscen.graph.Graph`, the compiled
``oscen.graph.jit.JitGraph``, or a test double. Rendering in blocks (rather than asking for all
samples at once) keeps memory flat inside the engine, lets a progress bar move, and is exactly how
a real-time callback would drive the graph, so offline and live output agree.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .wav import write_wav

AUTO_PROGRESS_SECONDS = 2.0
"""Show a progress bar by itself only when the render is expected to take longer than this."""

_ESTIMATE_AFTER = 0.25
"""Wall seconds to measure before deciding whether a progress bar is worth it."""


class GraphLike(Protocol):
    sample_rate: float

    def process_block(self, n: int) -> Any: ...


def render(
    graph_like: GraphLike,
    seconds: float,
    block_size: int = 512,
    progress: bool | None = None,
) -> np.ndarray:
    """Render ``seconds`` of audio; returns float64 ``(n,)`` for mono or ``(channels, n)``.

    ``progress``: True always shows a tqdm bar on stderr, False never does, None (the default)
    shows one only when stderr is a terminal and the render looks like it will take more than
    ~2 s, so scripts, pipes and test runs stay quiet.
    """
    sample_rate = float(graph_like.sample_rate)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ValueError(f"render: seconds must be a finite number, got {seconds!r}")
    if seconds < 0:
        raise ValueError(f"render: seconds must be >= 0, got {seconds}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"render: block_size must be an int >= 1, got {block_size!r}")
    total = int(round(seconds * sample_rate))
    if total == 0:
        return _empty(graph_like)

    out: np.ndarray | None = None
    done = 0
    bar = None
    decided = progress is not None
    if progress:
        bar = _bar(seconds, 0.0)
    start = time.perf_counter()
    first_block_end = None
    try:
        while done < total:
            n = min(block_size, total - done)
            block = np.asarray(graph_like.process_block(n), dtype=np.float64)
            if block.shape[-1] != n or block.ndim not in (1, 2):
                raise ValueError(
                    f"render: process_block({n}) returned shape {block.shape}, expected ({n},) or (k, {n})"
                )
            if out is None:
                out = np.empty(block.shape[:-1] + (total,), dtype=np.float64)
            out[..., done : done + n] = block
            done += n
            now = time.perf_counter()
            if first_block_end is None:
                first_block_end = (now, done)
            if bar is not None:
                bar.update(n / sample_rate)
            elif not decided and now - start >= _ESTIMATE_AFTER and done < total:
                decided = True
                if _expect_long(start, first_block_end, now, done, total):
                    bar = _bar(seconds, done / sample_rate)
    finally:
        if bar is not None:
            bar.close()
    assert out is not None
    return out


def render_to_wav(
    graph_like: GraphLike,
    path: str | Path,
    seconds: float,
    block_size: int = 512,
    progress: bool | None = None,
    subtype: str = "FLOAT",
    normalize: bool = False,
) -> np.ndarray:
    """Render ``seconds`` of audio and write it to ``path`` as WAV; returns the rendered samples.

    The path is checked before rendering, so a typo costs nothing.
    """
    path = Path(path)
    if not path.parent.exists():
        raise ValueError(f"render_to_wav: cannot write {path}: directory {path.parent} does not exist")
    samples = render(graph_like, seconds, block_size=block_size, progress=progress)
    write_wav(path, samples, graph_like.sample_rate, subtype=subtype, normalize=normalize)
    return samples


def _expect_long(start: float, first: tuple[float, int], now: float, done: int, total: int) -> bool:
    """Project the remaining time from the blocks after the first (which may include compiling)."""
    first_time, first_done = first
    if done > first_done and now > first_time:
        per_sample = (now - first_time) / (done - first_done)
    else:
        per_sample = (now - start) / done
    expected = (now - start) + per_sample * (total - done)
    return expected > AUTO_PROGRESS_SECONDS and _stderr_is_terminal()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _bar(seconds: float, initial: float) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=seconds,
        initial=initial,
        desc="rendering",
        file=sys.stderr,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s of audio [{elapsed}<{remaining}]",
        leave=False,
    )


def _empty(graph_like: GraphLike) -> np.ndarray:
    """A zero-length render still has the graph's channel layout, when the engine can tell."""
    try:
        block = np.asarray(graph_like.process_block(0), dtype=np.float64)
        if block.ndim in (1, 2) and block.shape[-1] == 0:
            return block.copy()
    except Exception:  # an engine that refuses n=0: mono is the safe guess
        pass
    return np.zeros(0)
