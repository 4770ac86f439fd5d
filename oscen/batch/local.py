"""The local backend: worker threads (the default) or worker processes on this machine.

Threads are the default because they measured faster (docs/batch.md has the numbers): a kernel
call goes through ctypes, which releases the GIL, so threads render in parallel, and they skip
process start-up and the pickling of every result. Each thread has its own :class:`Renderer`
(its own wasmtime store and state memory); the kernel is deserialised once per thread.

Processes (``local="processes"``) are started with ``spawn`` and load the kernel once in their
initializer. They isolate a crash: if a worker process dies, the pool is rebuilt and the items
that were in flight are retried one at a time, so the one that kills its worker is found and
recorded as failed and every other item still renders.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from .params import Item
from .worker import ItemResult, Renderer, WorkerSpec

OnResult = Callable[[ItemResult], None]
MODES = ("threads", "processes")


def run_threads(spec: WorkerSpec, chunks: Iterable[list[Item]], workers: int, on_result: OnResult) -> None:
    local = threading.local()

    def render(chunk: list[Item]) -> list[ItemResult]:
        renderer = getattr(local, "renderer", None)
        if renderer is None:
            renderer = local.renderer = Renderer(spec)
        return renderer.render_many(chunk)

    with ThreadPoolExecutor(workers, thread_name_prefix="oscen-batch") as pool:
        _pump(lambda chunk: pool.submit(render, chunk), chunks, workers, on_result)


# ---------------------------------------------------------------------------- processes
_renderer: Renderer | None = None


def _init_process(spec: WorkerSpec) -> None:
    global _renderer
    _renderer = Renderer(spec)


def _render_in_process(chunk: list[Item]) -> list[ItemResult]:
    assert _renderer is not None
    return _renderer.render_many(chunk)


@dataclass
class _Chunk:
    items: list[Item]
    suspect: bool = False  # in flight when a worker died: run alone to find the culprit


def run_processes(spec: WorkerSpec, chunks: Iterable[list[Item]], workers: int, on_result: OnResult) -> None:
    context = multiprocessing.get_context("spawn")  # no fork: the parent has threads (watchdog, tqdm)

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_process, initargs=(spec,))

    pool = new_pool()
    source = iter(chunks)
    retry: deque[_Chunk] = deque()
    inflight: dict[Future[list[ItemResult]], _Chunk] = {}
    try:
        while True:
            while len(inflight) < 2 * workers:
                if retry:
                    if inflight:  # a suspect runs alone
                        break
                    chunk = retry.popleft()
                else:
                    items = next(source, None)
                    if items is None:
                        break
                    chunk = _Chunk(items)
                inflight[pool.submit(_render_in_process, chunk.items)] = chunk
                if chunk.suspect:
                    break
            if not inflight:
                break
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                chunk = inflight.pop(future)
                try:
                    results = future.result()
                except BrokenProcessPool:
                    broken = True
                    _broken(chunk, retry, on_result)
                    continue
                for r in results:
                    on_result(r)
            if broken:
                for future, chunk in list(inflight.items()):  # they all fail with the pool
                    try:
                        for r in future.result():
                            on_result(r)
                    except BrokenProcessPool:
                        _broken(chunk, retry, on_result)
                inflight.clear()
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _broken(chunk: _Chunk, retry: deque[_Chunk], on_result: OnResult) -> None:
    if chunk.suspect and len(chunk.items) == 1:
        item = chunk.items[0]
        on_result(
            ItemResult(item.index, False, "WorkerDied: the worker process died while rendering this item")
        )
        return
    for item in chunk.items:
        retry.append(_Chunk([item], suspect=True))


# ---------------------------------------------------------------------------- shared
def _pump(
    submit: Callable[[list[Item]], Future[list[ItemResult]]],
    chunks: Iterable[list[Item]],
    workers: int,
    on_result: OnResult,
) -> None:
    """Keep about two chunks per worker in flight and hand results over as they finish (so a
    million-item batch never holds a million futures)."""
    source = iter(chunks)
    inflight: set[Future[list[ItemResult]]] = set()
    while True:
        while len(inflight) < 2 * workers:
            items = next(source, None)
            if items is None:
                break
            inflight.add(submit(items))
        if not inflight:
            return
        done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
        for future in done:
            for r in future.result():
                on_result(r)


def run_local(
    spec: WorkerSpec, chunks: Iterable[list[Item]], workers: int, on_result: OnResult, mode: str = "threads"
) -> None:
    if mode == "threads":
        run_threads(spec, chunks, workers, on_result)
    elif mode == "processes":
        run_processes(spec, chunks, workers, on_result)
    else:
        raise ValueError(f"local mode must be one of {MODES}, got {mode!r}")
