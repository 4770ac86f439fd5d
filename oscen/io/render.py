"""Offline rendering: run any graph-like engine block by block, into an array or straight to a file.

"Graph-like" means an object with ``sample_rate`` and ``process_block(n)`` returning ``(n,)`` or
``(channels, n)``: the interpreted :class:`oscen.graph.Graph`, the compiled
``oscen.jit.JitGraph``, or a test double. Rendering in blocks (rather than asking for all
samples at once) keeps memory flat inside the engine, lets a progress bar move, and is exactly how
a real-time callback would drive the graph, so offline and live output agree.

Two sinks share one block loop (:func:`render_blocks`): :func:`render` fills one preallocated
array; :func:`render_to_file` hands each block to an :class:`~oscen.io.wav.AudioWriter`, so a
render of any length streams to disk in memory bounded by the writer's buffer (normalizing takes
a second pass over a temporary float file, still block by block).

Length limit: a render longer than :data:`MAX_RENDER_SECONDS` (one hour) is refused before any
work with a :class:`RenderLimitError`; ``max_seconds=`` (``oscen render --max-seconds``) raises
or, with None, lifts it. The limit catches a typo'd ``--seconds`` or a MIDI file whose last event
lies years in, which would otherwise run for days (and, in memory, exhaust it).
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile as sf

from .wav import AudioFormat, AudioWriter, WavError, audio_format, normalize_gain, write_wav

AUTO_PROGRESS_SECONDS = 2.0
"""Show a progress bar by itself only when the render is expected to take longer than this."""

_ESTIMATE_AFTER = 0.25
"""Wall seconds to measure before deciding whether a progress bar is worth it."""

MAX_RENDER_SECONDS = 3600.0
"""The longest render accepted unless the caller raises the limit (``max_seconds``)."""

_COPY_FRAMES = 65536
"""Frames per block when copying the temporary file of a normalized render."""

Progress = bool | None | Callable[[int], None]
"""True: always a bar; False: never; None: a bar when on a terminal and slow; a callable: called
with the number of frames done after each block (no bar)."""


class GraphLike(Protocol):
    sample_rate: float

    def process_block(self, n: int) -> Any: ...


class RenderLimitError(ValueError):
    """A render longer than the stated limit; raised before any work is done."""


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_to_file` wrote."""

    path: Path
    frames: int
    channels: int
    sample_rate: float
    peak: float
    """Largest absolute sample before normalizing or clipping."""
    clipped: int
    """Samples clipped to -1..1 by an integer or lossy format (0 for float files or when normalized)."""

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def check_length(
    seconds: float,
    max_seconds: float | None,
    who: str,
    why: str = "",
    lift: str = "pass max_seconds= (oscen render --max-seconds)",
) -> None:
    """Refuse a render longer than ``max_seconds`` (None: no limit), naming the limit and how to lift it."""
    if max_seconds is None:
        return
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) or not max_seconds > 0:
        raise ValueError(f"{who}: max_seconds must be a number > 0 or None, got {max_seconds!r}")
    if seconds > max_seconds:
        raise RenderLimitError(
            f"{who}: {seconds:.6g} s of audio{why} is beyond the limit of {max_seconds:g} s; "
            f"{lift} to render longer"
        )


def check_seconds(seconds: float, who: str) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ValueError(f"{who}: seconds must be a finite number, got {seconds!r}")
    if seconds < 0:
        raise ValueError(f"{who}: seconds must be >= 0, got {seconds}")


def check_block_size(block_size: int, who: str, error: type[Exception] = ValueError) -> None:
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise error(f"{who}: block_size must be an int >= 1, got {block_size!r}")


def render_blocks(
    graph_like: GraphLike,
    total: int,
    block_size: int,
    progress: Progress = None,
    before_block: Callable[[int, int], None] | None = None,
    who: str = "render",
) -> Iterator[np.ndarray]:
    """Yield ``total`` frames as float64 blocks of at most ``block_size``, ``(n,)`` or ``(k, n)``.

    ``before_block(start, n)`` runs before each ``process_block(n)`` (``start`` counts frames
    from the first block): :func:`oscen.midi.render_midi` queues each block's MIDI events there.
    A yielded block may be the engine's own buffer: use it before asking for the next.
    """
    meter = _Meter(progress, total, float(graph_like.sample_rate))
    done = 0
    try:
        while done < total:
            n = min(block_size, total - done)
            if before_block is not None:
                before_block(done, n)
            block = np.asarray(graph_like.process_block(n), dtype=np.float64)
            if block.shape[-1:] != (n,) or block.ndim not in (1, 2):
                raise ValueError(
                    f"{who}: process_block({n}) returned shape {block.shape}, expected ({n},) or (k, {n})"
                )
            yield block
            done += n
            meter.update(done)
    finally:
        meter.close()


def render(
    graph_like: GraphLike,
    seconds: float,
    block_size: int = 512,
    progress: Progress = None,
    max_seconds: float | None = MAX_RENDER_SECONDS,
) -> np.ndarray:
    """Render ``seconds`` of audio; returns float64 ``(n,)`` for mono or ``(channels, n)``.

    ``progress``: True always shows a tqdm bar on stderr, False never does, None (the default)
    shows one only when stderr is a terminal and the render looks like it will take more than
    ~2 s, so scripts, pipes and test runs stay quiet; a callable gets the frames done per block.
    Longer than ``max_seconds`` is refused (:data:`MAX_RENDER_SECONDS`); for long renders prefer
    :func:`render_to_file`, which does not hold the signal in memory.
    """
    check_seconds(seconds, "render")
    check_block_size(block_size, "render")
    check_length(seconds, max_seconds, "render")
    total = int(round(seconds * float(graph_like.sample_rate)))
    return collect(graph_like, render_blocks(graph_like, total, block_size, progress), total)


def collect(graph_like: GraphLike, blocks: Iterator[np.ndarray], total: int) -> np.ndarray:
    """Gather ``total`` frames of blocks into one preallocated array (the layout of a zero-length
    render comes from ``process_block(0)``)."""
    out: np.ndarray | None = None
    done = 0
    for block in blocks:
        if out is None:
            out = np.empty(block.shape[:-1] + (total,), dtype=np.float64)
        n = block.shape[-1]
        out[..., done : done + n] = block
        done += n
    return out if out is not None else _empty(graph_like)


def render_to_file(
    graph_like: GraphLike,
    path: str | Path,
    seconds: float,
    block_size: int = 512,
    progress: Progress = None,
    subtype: str | None = None,
    normalize: bool = False,
    peak_db: float = -1.0,
    max_seconds: float | None = MAX_RENDER_SECONDS,
) -> RenderResult:
    """Render ``seconds`` of audio straight into a sound file, in bounded memory (one write buffer).

    The format follows the extension (``.wav``, ``.flac``, ``.ogg``, ``.mp3``, ``.aiff``; see
    :data:`oscen.io.wav.FORMATS`), ``subtype`` overrides its default sample format. Everything is
    checked before rendering: name, folder, format, length. The file appears only when complete
    (written beside it under a temporary name, then renamed), so a failed render leaves no
    half-file and does not destroy an older one. Integer and lossy formats clip at ±1 with a
    :class:`~oscen.io.wav.ClippingWarning` naming the peak, unless ``normalize``.
    """
    check_seconds(seconds, "render_to_file")
    check_block_size(block_size, "render_to_file")
    fmt = prepare_output(path, subtype, "render_to_file")
    check_length(seconds, max_seconds, "render_to_file")
    total = int(round(seconds * float(graph_like.sample_rate)))
    blocks = render_blocks(graph_like, total, block_size, progress, who="render_to_file")
    return stream_to_file(graph_like, blocks, path, fmt, normalize, peak_db, "render_to_file")


def prepare_output(path: str | Path, subtype: str | None, who: str) -> AudioFormat:
    """Check an output file name before rendering: its format, subtype and folder."""
    path = Path(path)
    fmt = audio_format(path, subtype, who=who)
    if not path.parent.exists():
        raise WavError(f"{who}: cannot write {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise WavError(f"{who}: cannot write {path}: it is a directory")
    return fmt


def stream_to_file(
    graph_like: GraphLike,
    blocks: Iterator[np.ndarray],
    path: str | Path,
    fmt: AudioFormat,
    normalize: bool = False,
    peak_db: float = -1.0,
    who: str = "render_to_file",
) -> RenderResult:
    """Write ``blocks`` to ``path`` as they come (see :func:`render_to_file`)."""
    path = Path(path)
    rate = float(graph_like.sample_rate)
    if normalize:
        normalize_gain(1.0, peak_db)  # check peak_db before rendering
    partial = _temporary_beside(path, ".part")
    try:
        if normalize:
            raw_path = _temporary_beside(path, ".float.wav")
            try:
                AudioWriter(partial, rate, fmt, who=who, shown_as=path).probe()
                with AudioWriter(raw_path, rate, AudioFormat("WAV", "DOUBLE"), who=who, shown_as=path) as raw:
                    _write_all(raw, blocks, graph_like)
                gain = normalize_gain(raw.peak, peak_db)
                with (
                    AudioWriter(partial, rate, fmt, raw.channels, who, path) as writer,
                    sf.SoundFile(str(raw_path)) as f,
                ):
                    for frames in f.blocks(_COPY_FRAMES, dtype="float64", always_2d=True):
                        writer.write(frames.T * gain)
                peak = raw.peak
            finally:
                raw_path.unlink(missing_ok=True)
        else:
            with AudioWriter(partial, rate, fmt, who=who, shown_as=path) as writer:
                writer.probe()
                _write_all(writer, blocks, graph_like)
            peak = writer.peak
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return RenderResult(path, writer.frames, writer.channels or 1, rate, peak, writer.clipped)


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

    The path is checked before rendering, so a typo costs nothing. This keeps the whole signal
    in memory (it returns it); :func:`render_to_file` streams instead.
    """
    path = Path(path)
    if not path.parent.exists():
        raise ValueError(f"render_to_wav: cannot write {path}: directory {path.parent} does not exist")
    samples = render(graph_like, seconds, block_size=block_size, progress=progress)
    write_wav(path, samples, graph_like.sample_rate, subtype=subtype, normalize=normalize)
    return samples


def _temporary_beside(path: Path, suffix: str) -> Path:
    """A fresh name in ``path``'s folder (same file system, so the final rename is atomic).

    Only a name: libsndfile creates the file, with the permissions any new file gets (mkstemp's
    private 0600 would survive the rename).
    """
    while True:
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
        if not candidate.exists():
            return candidate


def _write_all(writer: AudioWriter, blocks: Iterator[np.ndarray], graph_like: GraphLike) -> None:
    for block in blocks:
        writer.write(block)
    if writer.channels is None:  # a zero-length render: the file still needs the graph's layout
        block = _empty(graph_like)
        writer.channels = 1 if block.ndim == 1 else int(block.shape[0])


class _Meter:
    """Progress reporting for one render: a tqdm bar (on request, or when slow on a terminal) or a callback."""

    def __init__(self, progress: Progress, total: int, sample_rate: float) -> None:
        self.callback = progress if callable(progress) else None
        self.total = total
        self.sample_rate = sample_rate
        self.decided = progress is not None
        self.bar = _bar(total / sample_rate, 0.0) if progress is True and total > 0 else None
        self.start = time.perf_counter()
        self.first: tuple[float, int] | None = None
        self.shown = 0

    def update(self, done: int) -> None:
        if self.callback is not None:
            self.callback(done)
            return
        now = time.perf_counter()
        if self.first is None:
            self.first = (now, done)
        if self.bar is not None:
            self.bar.update((done - self.shown) / self.sample_rate)
            self.shown = done
        elif not self.decided and now - self.start >= _ESTIMATE_AFTER and done < self.total:
            self.decided = True
            if _expect_long(self.start, self.first, now, done, self.total):
                self.bar = _bar(self.total / self.sample_rate, done / self.sample_rate)
                self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
