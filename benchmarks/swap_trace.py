"""What holds up the processing thread during bench_swap's edits (``bench_swap.py --trace N``).

While tracing, the compile's stages are wrapped to record when each ran and on which thread
(to_ir, the worker round trip, the frontend, the WAT printer, Cranelift, the bind, the copy plan,
the swap, every garbage collection), and the player reads its own ``/proc/thread-self/schedstat``
(Linux) around each block. For each of the N longest stalls (a block's end minus when it was due)
the table splits the stall into

* ``run``: the player's own CPU time,
* ``runqueue``: runnable but waiting for a CPU (the OS ran something else: CPU starvation),
* ``blocked``: neither (waiting for the GIL, or on a virtual machine whose kernel accounts steal
  time (``CONFIG_PARAVIRT_TIME_ACCOUNTING``, as KVM guests have) the host having taken the CPU:
  bench_swap's ``VM steal`` column tells how much there was; the player only sleeps before the
  block, and that sleep is not counted),

and lists the stages of the other threads that overlapped it, ``to start`` (from when the block
was due to when the player began it: the wake-up and getting the GIL back after its sleep), and the
stacks a sampler thread saw other threads run during the stall (sampled every
``SAMPLE_INTERVAL``, idle waits left out): the GIL holder's code, as the sampler gets the GIL
only when that thread lets it go. Reading schedstat and sampling cost the player GIL hand-overs
of their own, so traced stalls are somewhat longer than untraced ones.
"""

from __future__ import annotations

import bisect
import gc
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

SCHEDSTAT = "/proc/thread-self/schedstat"
SAMPLE_INTERVAL = 0.0005
"""Seconds between the sampler's looks at the other threads' stacks."""
IDLE_CALLS = frozenset(
    {"wait", "select", "sleep", "_wait_for_tstate_lock", "wait_for", "_read_exactly", "acquire"}
)
"""Innermost functions of a thread that waits (it does not hold the GIL there): not sampled."""
STACK_DEPTH = 4

Span = tuple[str, str, float, float]  # thread name, stage, start, end
Sample = tuple[float, str, str]  # time, thread name, stack (innermost first)


class Tracer:
    """Records stage spans of every thread while installed (``with Tracer() as t``)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.samples: list[Sample] = []
        self._undo: list[Callable[[], None]] = []
        self._gc_start: dict[str, float] = {}
        self._sampling = threading.Event()

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
        self.wrap(state.GraphState, "__init__", "new state")
        for name, label in (
            ("_snapshot", "to_ir (edit lock)"),
            ("_collect", "collect+freeze"),
            ("_plan_copy", "plan+partial load"),
            ("_fall_back", "fall back"),
        ):
            if hasattr(jitgraph.JitGraph, name):
                self.wrap(jitgraph.JitGraph, name, label)
        if hasattr(jitgraph, "_free_retired"):
            self.wrap(jitgraph, "_free_retired", "free retired (waits included)")
        try:
            from oscen.jit import worker
        except ImportError:
            pass
        else:
            self.wrap(worker.CompileWorker, "_request", "worker round trip")
            self.wrap(worker, "_deserialize", "deserialize")
            self.wrap(worker, "_program", "worker program")
            shim = _ModuleShim(worker.pickle, None)
            shim.loads = self._timed(worker.pickle.loads, "reply load")  # type: ignore[attr-defined]
            worker.pickle = shim  # type: ignore[assignment]
            self._undo.append(lambda: setattr(worker, "pickle", shim._real))
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
        sampler = threading.Thread(target=self._sample, name="trace-sampler", daemon=True)
        sampler.start()
        self._undo.append(lambda: (self._sampling.set(), sampler.join(1.0)))
        return self

    def __exit__(self, *exc: object) -> None:
        while self._undo:
            self._undo.pop()()

    def _timed(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        spans = self.spans

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spans.append((threading.current_thread().name, label, t0, time.perf_counter()))

        return timed

    def _sample(self) -> None:
        """Every SAMPLE_INTERVAL, the innermost frames of every other thread that ran since the
        sample before (its CPU clock moved; Linux) and is not in a known wait (IDLE_CALLS): a
        sleeping thread's stack says nothing about who held the GIL."""
        me = threading.get_ident()
        samples = self.samples
        frame = f = None
        before: dict[int, float] = {}
        while not self._sampling.wait(SAMPLE_INTERVAL):
            now = time.perf_counter()
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                name = names.get(ident, "?")
                if ident == me or name == "bench-player" or frame.f_code.co_name in IDLE_CALLS:
                    continue
                try:
                    cpu = time.clock_gettime(time.pthread_getcpuclockid(ident))
                except (AttributeError, OSError):  # no per-thread clocks here: sample it anyway
                    cpu = now
                ran = before.get(ident) != cpu
                before[ident] = cpu
                if not ran:
                    continue
                parts = []
                f: Any = frame
                while f is not None and len(parts) < STACK_DEPTH:
                    code = f.f_code
                    parts.append(f"{code.co_name} ({os.path.basename(code.co_filename)}:{f.f_lineno})")
                    f = f.f_back
                samples.append((now, name, " < ".join(parts)))
            frame = f = None  # (no frame kept alive between samples)


class _ModuleShim:
    """compiler.wasmtime with ``Module(engine, wat)`` timed (the rest passes through)."""

    def __init__(self, real: Any, module: Callable[..., Any] | None) -> None:
        self._real = real
        if module is not None:
            self.Module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def schedstat() -> tuple[float, float]:
    """(seconds run, seconds waited runnable) of the calling thread so far."""
    with open(SCHEDSTAT) as f:
        run, wait, _ = f.read().split()
    return int(run) / 1e9, int(wait) / 1e9


def table(
    spans: list[Span],
    blocks: list[tuple[float, float, float, float, float, float, float]],
    top: int,
    samples: list[Sample] | None = None,
) -> str:
    """The ``top`` longest stalls: ``blocks`` are (due, start, end, run0, wait0, run1, wait1) per
    block; ``samples`` the sampler's stacks (the two most seen during each stall are listed)."""
    rows = []
    for due, start, end, run0, wait0, run1, wait1 in blocks:
        stall = end - due
        run, queue = run1 - run0, wait1 - wait0
        overlap: dict[str, float] = {}
        for thread, label, a, b in spans:
            o = min(b, end) - max(a, due)
            if o > 0 and thread != "bench-player":
                key = f"{label} ({'compiler' if thread == 'oscen-jit' else thread})"
                overlap[key] = overlap.get(key, 0.0) + o
        rows.append((stall, start - due, run, queue, stall - run - queue, overlap, due, end))
    rows.sort(key=lambda r: -r[0])
    lines = [
        "| stall | to start | run | runqueue | blocked | other threads' stages during it (ms) | stacks seen (samples) |",
        "|---|---|---|---|---|---|---|",
    ]
    ordered = sorted(samples or [])
    times = [t for t, _, _ in ordered]
    for stall, to_start, run, queue, blocked, overlap, due, end in rows[:top]:
        stages = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in sorted(overlap.items(), key=lambda kv: -kv[1]))
        seen = Counter(
            f"{name}: {stack}"
            for _, name, stack in ordered[bisect.bisect_left(times, due) : bisect.bisect_right(times, end)]
        )
        stacks = "; ".join(f"{k} ({n})" for k, n in seen.most_common(2))
        lines.append(
            f"| {stall * 1e3:.1f} | {to_start * 1e3:.1f} | {run * 1e3:.1f} | {queue * 1e3:.1f} "
            f"| {max(blocked, 0.0) * 1e3:.1f} | {stages or '-'} | {stacks or '-'} |"
        )
    return "\n".join(lines)
