"""``render_batch``: many variations of one patch, compiled once, rendered on many workers."""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .output import OutputDir, require_pyarrow
from .params import Item, ItemSource, ParamError, as_source, fingerprint, param_names
from .plan import PatchSpec, resolve_targets
from .worker import AudioFormat, ItemResult, KernelImage, Renderer, WorkerSpec

BACKENDS = ("local", "ray")
ENGINES = ("jit", "interpret")
FORMATS = {"flac": ("FLAC", "PCM_24"), "wav": ("WAV", "FLOAT")}
MAX_IN_MEMORY_BYTES = 4 << 30


@dataclass
class BatchResult:
    """What a batch did. ``audio`` (in-memory batches only) is float64, ``(n, samples)`` for mono
    patches and ``(n, channels, samples)`` otherwise, NaN where an item failed."""

    n: int
    rendered: int = 0
    skipped: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    engine: str = "jit"
    backend: str = "local"
    workers: int = 1
    elapsed: float = 0.0
    out: Path | None = None
    audio: np.ndarray | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def items_per_second(self) -> float:
        return self.rendered / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        text = (
            f"{self.rendered} rendered, {len(self.failed)} failed, {self.skipped} already done "
            f"of {self.n} ({self.engine}, {self.backend}, {self.workers} workers, {self.elapsed:.1f} s, "
            f"{self.items_per_second:.1f} items/s)"
        )
        return text


def render_batch(
    patch: Any,
    params: Any = None,
    *,
    out: str | Path | None = None,
    seconds: float = 2.0,
    n: int | None = None,
    seed: int = 0,
    sample_rate: float | None = None,
    backend: str = "local",
    workers: int | None = None,
    local: str = "threads",
    address: str | None = None,
    format: str = "flac",
    engine: str = "jit",
    reseed_noise: bool = True,
    progress: bool | None = None,
    chunk_size: int | None = None,
) -> BatchResult:
    """Render every item of ``params`` through ``patch`` for ``seconds`` each.

    ``patch``: a patch file, a function ``patch(sample_rate) -> Graph``, or a Graph (copied).
    ``params``: a :class:`~oscen.batch.params.RandomSpace`, :class:`~oscen.batch.params.Grid`, a
    space dict or JSON file (docs/batch.md), a list of dicts, or a pandas/pyarrow table; ``n``
    limits (or, for a random space, sets) the number of items; ``seed`` seeds random spaces given
    as dicts and each item's noise. ``out``: a folder (audio files, metadata.csv, items.parquet;
    resumable) or None to return the audio in memory. ``backend``: "local" (``workers`` threads,
    or processes with ``local="processes"``) or "ray" (``address`` of a cluster, or a new local
    one). ``format``: "flac" (24-bit) or "wav" (32-bit float). ``engine``: "jit" (the interpreter
    if the patch cannot be compiled, with a warning) or "interpret". A failing item is recorded
    in ``BatchResult.failed`` and the metadata; it never stops the batch.
    """
    _check(seconds, backend, workers, local, format, engine, chunk_size)
    source = as_source(params, n, seed)
    patch_spec = PatchSpec.of(patch, sample_rate)
    graph = patch_spec.build()
    rate = float(graph.sample_rate)
    names = param_names(source)
    targets = resolve_targets(graph, names)
    from ..jit.frontend import settled

    ir = settled(graph.to_ir())  # the graph's identity below does not depend on samples run
    channels = max(1, len(ir.outputs))
    samples = int(round(seconds * rate))
    total = len(source)
    if out is None and total * channels * samples * 8 > MAX_IN_MEMORY_BYTES:
        raise ParamError(
            f"{total} items of {seconds:g} s would take {total * channels * samples * 8 / 2**30:.1f} GiB in "
            "memory; give out= a folder to write them to files instead"
        )

    kernel = None
    used = engine
    if engine == "jit":
        from ..jit import JitError, JitFallbackWarning

        try:
            kernel = KernelImage.compile(graph)
        except JitError as exc:
            used = "interpret"
            warnings.warn(
                f"oscen: the patch cannot be compiled, so every item is interpreted (much slower): {exc}",
                JitFallbackWarning,
                stacklevel=2,
            )
    fmt, subtype = FORMATS[format]
    audio = AudioFormat(None if out is None else fmt, None if out is None else subtype)
    spec = WorkerSpec(
        kernel=kernel,
        patch=patch_spec if kernel is None else None,
        targets=targets,
        sample_rate=rate,
        samples=samples,
        channels=channels,
        seed=int(seed),
        reseed_noise=reseed_noise,
        audio=audio,
    )
    Renderer(spec)  # load it here once: a kernel or patch that cannot load fails now, not per worker
    if (
        total
        and (source.item(0).note is not None or source.item(0).midi is not None)
        and targets.midi is None
    ):
        raise ParamError(
            "the items carry MIDI notes or sequences but the patch has no MIDI input (MidiParser)"
        )

    result = BatchResult(total, engine=used, backend=backend)
    writer = None
    done: set[int] = set()
    if out is not None:
        require_pyarrow()
        config = {
            "patch": _describe_patch(patch_spec),
            "graph": hashlib.sha256(ir.to_json().encode()).hexdigest()[:16],
            "params": fingerprint(source),
            "n": total,
            "seconds": float(seconds),
            "sample_rate": rate,
            "seed": int(seed),
            "format": format,
            "reseed_noise": bool(reseed_noise),
            "engine": used,
        }
        writer = OutputDir(out, config, audio, total)
        done = writer.done()
        result.out = Path(out)
    else:
        shape = (total, samples) if channels == 1 else (total, channels, samples)
        result.audio = np.full(shape, np.nan)
    result.skipped = len(done)
    todo = [i for i in range(total) if i not in done]

    if backend == "ray":
        from . import ray_backend

        started = ray_backend.start(address, workers)
        count = workers or ray_backend.cluster_cpus()
    else:
        started = False
        count = workers or os.cpu_count() or 1
    result.workers = count
    size = chunk_size or max(1, min(16, len(todo) // (count * 8)))
    waiting: dict[int, Item] = {}

    def chunks() -> Iterator[list[Item]]:
        for start in range(0, len(todo), size):
            chunk = [source.item(i) for i in todo[start : start + size]]
            waiting.update((it.index, it) for it in chunk)
            yield chunk

    bar = _progress(total, len(done), progress)

    def on_result(r: ItemResult) -> None:
        item = waiting.pop(r.index)
        if writer is not None:
            row = writer.write(item, r)
        else:
            row = {
                "index": item.index,
                **item.columns(),
                "status": "ok" if r.ok else "error",
                "error": r.error,
            }
            if r.ok and result.audio is not None:
                result.audio[item.index] = r.array
            result.rows.append(row)
        if r.ok:
            result.rendered += 1
        else:
            result.failed[r.index] = r.error
            bar.set_postfix(failed=len(result.failed), refresh=False)
        bar.update(1)

    t0 = time.perf_counter()
    try:
        if not todo:
            pass
        elif backend == "ray":
            from .ray_backend import run_ray

            run_ray(spec, chunks(), count, on_result, address)
        else:
            from .local import run_local

            run_local(spec, chunks(), count, on_result, local)
    finally:
        result.elapsed = time.perf_counter() - t0
        bar.close()
        if writer is not None:
            writer.close()
            result.rows = [writer.rows[i] for i in sorted(writer.rows)]
        if started:
            from .ray_backend import stop

            stop()
    result.rows.sort(key=lambda r: r["index"])
    return result


def _check(
    seconds: Any, backend: str, workers: Any, local: str, format: str, engine: str, chunk_size: Any
) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise ParamError(f"render_batch: seconds must be a finite number, got {seconds!r}")
    if seconds <= 0:
        raise ParamError(f"render_batch: seconds must be > 0, got {seconds}")
    if backend not in BACKENDS:
        raise ParamError(f"render_batch: backend must be one of {BACKENDS}, got {backend!r}")
    for name, value in (("workers", workers), ("chunk_size", chunk_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ParamError(f"render_batch: {name} must be an int >= 1 or None, got {value!r}")
    if local not in ("threads", "processes"):
        raise ParamError(f"render_batch: local must be 'threads' or 'processes', got {local!r}")
    if format not in FORMATS:
        raise ParamError(f"render_batch: format must be one of {sorted(FORMATS)}, got {format!r}")
    if engine not in ENGINES:
        raise ParamError(f"render_batch: engine must be one of {ENGINES}, got {engine!r}")


def _describe_patch(spec: PatchSpec) -> str:
    if spec.path is not None:
        digest = hashlib.sha256(Path(spec.path).read_bytes()).hexdigest()[:16]
        return f"{spec.path} ({digest})"
    if spec.builder is not None:
        return f"{getattr(spec.builder, '__module__', '?')}:{getattr(spec.builder, '__qualname__', spec.builder)}"
    return "<Graph>"


def _progress(total: int, initial: int, progress: bool | None) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="item",
        desc="oscen batch",
        disable=None if progress is None else not progress,
        smoothing=0.1,
        dynamic_ncols=True,
    )


__all__ = ["BatchResult", "ItemSource", "render_batch"]
