"""What holds up the processing thread during bench_swap's edits (``bench_swap.py --trace N``).

While tracing, the compile's stages are wrapped to record when each ran and on which thread
(to_ir, the worker round trip, the frontend, the WAT printer, Cranelift, the bind, the copy plan,
the swap, every garbage collection), and the player reads its own ``/proc/thread-self/schedstat``
(Linux) around each block. For each of the N longest stalls (a block's end minus when it was due)
the table splits the stall into

* ``run``: the player's own CPU time,
* ``runqueue``: runnable but waiting for a CPU (the OS ran something else: CPU starvation),
* ``blocked``: neither (waiting for the GIL, almost always: the player only sleeps before the
  block, and that sleep is not counted),

and lists the stages of the other threads that overlapped it. Reading schedstat costs the player
GIL hand-overs of its own, so traced stalls are somewhat longer than untraced ones.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

SCHEDSTAT = "/proc/thread-self/schedstat"

Span = tuple[str, str, float, float]  # thread name, stage, start, end


class Tracer:
    """Records stage spans of every thread while installed (``with Tracer() as t``)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._undo: list[Callable[[], None]] = []
        self._gc_start: dict[str, float] = {}

    def wrap(self, owner: Any, name: str, label: str) -> None:
        original = owner.__dict__[name] if name in getattr(owner, "__dict__", {}) else getattr(owner, name)
        raw = original.__func__ if isinstance(original, (classmethod, staticmethod)) else original
        spans = self.spans

        def traced(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return raw(*args, **kwargs)
            finally:
                spans.append((threading.current_thread().name, label, t0, time.perf_counter()))

        replacement: Any = (
            type(original)(traced) if isinstance(original, (classmethod, staticmethod)) else traced
        )
        setattr(owner, name, replacement)
        self._undo.append(lambda: setattr(owner, name, original))

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        thread = threading.current_thread().name
        now = time.perf_counter()
        if phase == "start":
            self._gc_start[thread] = now
        else:
            self.spans.append((thread, f"gc{info['generation']}", self._gc_start.pop(thread, now), now))

    def __enter__(self) -> Tracer:
        from oscen.graph.graph import Graph
        from oscen.jit import compiler, jitgraph, skeleton, state
        from oscen.jit.backends import wasm

        self.wrap(Graph, "to_ir", "to_ir")
        self.wrap(compiler.CraneliftJit, "program", "frontend+codegen")
        self.wrap(skeleton, "lane_body", "lanes pass")
        self.wrap(wasm, "module_text", "WAT printer")
        self.wrap(compiler.CompiledGraph, "_bind", "bind")
        self.wrap(state.GraphState, "copy_plan", "copy plan")
        self.wrap(state.GraphState, "load_from_graph", "load from graph")
        self.wrap(jitgraph.JitGraph, "_swap_in", "swap")
        self.wrap(jitgraph._Beat, "after_block", "waits for a block end")
        try:
            from oscen.jit import worker
        except ImportError:
            pass
        else:
            self.wrap(worker.CompileWorker, "_request", "worker round trip")
            self.wrap(worker, "_deserialize", "deserialize")
        module_cls = compiler.wasmtime.Module
        spans = self.spans

        def cranelift(engine: Any, wat: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return module_cls(engine, wat)
            finally:
                spans.append((threading.current_thread().name, "Cranelift", t0, time.perf_counter()))

        compiler.wasmtime = _ModuleShim(compiler.wasmtime, cranelift)
        self._undo.append(lambda: setattr(compiler, "wasmtime", compiler.wasmtime._real))
        gc.callbacks.append(self._gc)
        self._undo.append(lambda: gc.callbacks.remove(self._gc))
        return self

    def __exit__(self, *exc: object) -> None:
        while self._undo:
            self._undo.pop()()


class _ModuleShim:
    """compiler.wasmtime with ``Module(engine, wat)`` timed (the rest passes through)."""

    def __init__(self, real: Any, module: Callable[..., Any]) -> None:
        self._real = real
        self.Module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def schedstat() -> tuple[float, float]:
    """(seconds run, seconds waited runnable) of the calling thread so far."""
    with open(SCHEDSTAT) as f:
        run, wait, _ = f.read().split()
    return int(run) / 1e9, int(wait) / 1e9


def table(spans: list[Span], blocks: list[tuple[float, float, float, float, float, float]], top: int) -> str:
    """The ``top`` longest stalls: ``blocks`` are (due, end, run0, wait0, run1, wait1) per block."""
    rows = []
    for due, end, run0, wait0, run1, wait1 in blocks:
        stall = end - due
        run, queue = run1 - run0, wait1 - wait0
        overlap: dict[str, float] = {}
        for thread, label, a, b in spans:
            o = min(b, end) - max(a, due)
            if o > 0 and thread != "bench-player":
                key = f"{label} ({'compiler' if thread == 'oscen-jit' else thread})"
                overlap[key] = overlap.get(key, 0.0) + o
        rows.append((stall, run, queue, stall - run - queue, overlap))
    rows.sort(key=lambda r: -r[0])
    lines = [
        "| stall | run | runqueue | blocked | other threads' stages during it (ms) |",
        "|---|---|---|---|---|",
    ]
    for stall, run, queue, blocked, overlap in rows[:top]:
        stages = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in sorted(overlap.items(), key=lambda kv: -kv[1]))
        lines.append(
            f"| {stall * 1e3:.1f} | {run * 1e3:.1f} | {queue * 1e3:.1f} | {max(blocked, 0.0) * 1e3:.1f} "
            f"| {stages or '-'} |"
        )
    return "\n".join(lines)
