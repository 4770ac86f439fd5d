"""The Ray backend: one actor per worker, each loading the kernel once.

The driver puts the :class:`WorkerSpec` (the serialised kernel and the layout, a few hundred KB)
in Ray's object store once; every actor receives it and builds its :class:`Renderer` in its
constructor, then renders chunk after chunk of items. Results (encoded audio) come back to the
driver, which writes the files, so the cluster needs no shared filesystem. The workers need the
same oscen and wasmtime versions as the driver (a different wasmtime refuses the kernel with a
clear error); the patch file itself is only needed there when it must be interpreted.

If Ray is not initialised, :func:`run_ray` calls ``ray.init(address=address)`` (a new local
cluster when ``address`` is None, with ``workers`` CPUs) and shuts it down afterwards; initialise
Ray yourself to keep a cluster up across batches (and see traps.py: Ray replaces the signal
handlers that compiled code's faults need, so oscen puts them back). An actor that dies has its
chunk recorded as failed and is replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import traps
from .params import Item
from .worker import ItemResult, Renderer, WorkerSpec

OnResult = Callable[[ItemResult], None]


class RayUnavailable(RuntimeError):
    """Ray is not installed, or cannot start or connect."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("the Ray backend needs Ray: pip install 'oscen[ray]'") from None
    return ray


class BatchActor:
    """The body of the Ray actor (wrapped with ``ray.remote`` on first use)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.renderer = Renderer(spec)

    def render(self, items: list[Item]) -> list[ItemResult]:
        return self.renderer.render_many(items)


_actor_class: Any = None


def _actor(ray: Any) -> Any:
    global _actor_class
    if _actor_class is None:
        _actor_class = ray.remote(num_cpus=1)(BatchActor)
    return _actor_class


def start(address: str | None, workers: int | None) -> bool:
    """Initialise Ray unless it is; returns True if this call started it (and must shut it down)."""
    ray = _import_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address is None and workers is not None:
        kwargs["num_cpus"] = workers
    try:
        ray.init(address=address, **kwargs)
    except Exception as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise RayUnavailable(f"could not start or join {where}: {type(exc).__name__}: {exc}") from exc
    traps.restore()  # ray.init replaced wasmtime's trap handlers in this process
    return True


def stop() -> None:
    """Shut Ray down and put wasmtime's trap handlers back (ray.shutdown resets them)."""
    _import_ray().shutdown()
    traps.restore()


def cluster_cpus() -> int:
    ray = _import_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def run_ray(
    spec: WorkerSpec,
    chunks: Iterable[list[Item]],
    workers: int | None,
    on_result: OnResult,
    address: str | None = None,
) -> None:
    ray = _import_ray()
    started = start(address, workers)
    traps.restore()  # a cluster the caller started replaced them too
    try:
        count = workers or cluster_cpus()
        actor = _actor(ray)
        spec_ref = ray.put(spec)
        actors = [actor.remote(spec_ref) for _ in range(count)]
        source = iter(chunks)
        inflight: dict[Any, tuple[int, list[Item]]] = {}

        def submit(k: int) -> bool:
            items = next(source, None)
            if items is None:
                return False
            inflight[actors[k].render.remote(items)] = (k, items)
            return True

        for k in range(count):
            for _ in range(2):  # two chunks per actor: one rendering, one waiting
                submit(k)
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                k, items = inflight.pop(ref)
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    for item in items:
                        on_result(ItemResult(item.index, False, f"WorkerDied: the Ray actor died: {exc}"))
                    actors[k] = actor.remote(spec_ref)
                    continue
                for r in results:
                    on_result(r)
                submit(k)
        for a in actors:
            ray.kill(a)
    finally:
        if started:
            stop()
