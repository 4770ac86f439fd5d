"""The one wasmtime engine (Cranelift) shared by every compiled graph, and its watchdog.

Node code with an endless loop must not hang the process. wasmtime's epoch interruption would do it,
but it checks at every loop header and made the per-sample loop ~2x slower here (it forces values
out of registers around the check). Instead the codegen checks an *interrupt flag* in memory only in
loops written in node code, and a watchdog thread raises that flag when a kernel call has run
longer than its time limit.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import wasmtime

TICK = 0.01
_math_module: wasmtime.Module | None = None
_engine: wasmtime.Engine | None = None
_lock = threading.Lock()
_running: weakref.WeakSet[Any] = weakref.WeakSet()
"""Bindings the watchdog looks after. Changed and copied only under ``_running_lock``: other threads
bind states while the watchdog iterates (a bare WeakSet raised "Set changed size during iteration"
there and killed the watchdog)."""
_running_lock = threading.Lock()
watchdog_errors: list[BaseException] = []
"""Errors the watchdog survived (the newest few), for tests and debugging."""


TIERS = ("optimized", "quick")
"""What a compile is for (see docs/jit.md, "Tiers"): ``optimized`` runs fastest (Cranelift at
opt level "speed", its backtracking register allocator); ``quick`` is playable soonest (opt level
"none", the single-pass register allocator: 2-3x less Cranelift time, code that runs ~0.6x as
fast)."""

QUICK_OPT_LEVEL = "none"
QUICK_REGALLOC = "single_pass"

PARALLEL_COMPILATION = True
"""Whether Cranelift compiles a module's functions on several threads (one per core). The
compile worker turns it off (:func:`oscen.jit.worker.main`, before it makes an engine): its
compile then takes one core, and the playing process's audio thread keeps the other instead of
waiting for a CPU (bench_swap's stalls were mostly that, "runqueue" in ``--trace``). Not a
setting wasmtime checks when machine code moves between engines."""


def _config(tier: str) -> wasmtime.Config:
    config = wasmtime.Config()
    # SIMD is on by default; relaxed SIMD (f64x2.relaxed_madd) is not. Deterministic:
    # the same (fused) result on every host, as the reference backend computes it.
    config.wasm_relaxed_simd = True
    config.wasm_relaxed_simd_deterministic = True
    config.parallel_compilation = PARALLEL_COMPILATION
    if tier == "quick":
        # Neither setting is one wasmtime checks when code moves between engines: the quick
        # engine's machine code loads into the optimized one (see compile_module).
        config.cranelift_opt_level = QUICK_OPT_LEVEL
        config.cranelift_flag_set("regalloc_algorithm", QUICK_REGALLOC)
    else:
        config.cranelift_opt_level = "speed"
    return config


def engine() -> wasmtime.Engine:
    """The engine every store, and so every running kernel, belongs to (the optimized tier's)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = wasmtime.Engine(_config("optimized"))
            threading.Thread(target=_watch, name="oscen-watchdog", daemon=True).start()
        return _engine


_quick_engine: wasmtime.Engine | None = None


def quick_engine() -> wasmtime.Engine:
    """The engine that compiles the quick tier. Nothing runs in it: a wasmtime store belongs to
    one engine, and a graph's state keeps its store across swaps between tiers, so its modules
    are moved into :func:`engine` (``serialize``/``deserialize``, ~0.3 ms for 64 voices)."""
    global _quick_engine
    engine()
    with _lock:
        if _quick_engine is None:
            _quick_engine = wasmtime.Engine(_config("quick"))
        return _quick_engine


def compile_module(wat: str | bytes, tier: str = "optimized") -> wasmtime.Module:
    """Machine code for a module (text or binary) compiled for ``tier``, loadable in :func:`engine`'s
    stores. Releases the GIL while Cranelift works (wasmtime's C API)."""
    if tier == "optimized":
        return wasmtime.Module(engine(), wat)
    if tier != "quick":
        raise ValueError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
    quick = wasmtime.Module(quick_engine(), wat)
    return wasmtime.Module.deserialize(engine(), quick.serialize())


def watch(binding: Any) -> None:
    """Have the watchdog look after a binding (it has ``started``, ``timeout`` and ``interrupt``, a
    one-element view of the flag in its memory); it is forgotten when the binding dies."""
    with _running_lock:
        _running.add(binding)


def _watch() -> None:
    """The watchdog's loop: it must outlive anything that goes wrong in one round, and one
    binding's error must not keep it from the others."""
    while True:
        time.sleep(TICK)
        try:
            _check_running()
        except BaseException as exc:  # noqa: BLE001 - keep watching: no loop is interrupted otherwise
            _survived(exc)


def _check_running() -> None:
    with _running_lock:
        bindings = list(_running)
    now = time.perf_counter()
    for b in bindings:
        try:
            started = b.started
            if started and now - started > b.timeout:
                _lower_budget(b)
        except BaseException as exc:  # noqa: BLE001 - as above, for the other bindings
            _survived(exc)


INTERRUPT_WRITES = 2000
"""Writes of the budget per tick to a call that overran. The kernel counts its loops down with a
plain load and store of that slot; a write landing between them is overwritten with the old
count less one, and in a tight loop most single writes were (a 0.3 s limit took 0.3-3 s to hit,
measured: the watchdog wrote at every 10 ms tick). A burst of writes lands at many points of the
loop, so one survives until the kernel reads it; it runs only for a call already overdue."""


def _lower_budget(binding: Any) -> None:
    """End an overdue call's loops: its budget to 1, which the kernel's next loop step takes to 0."""
    flag = binding.interrupt
    for _ in range(INTERRUPT_WRITES):
        flag[0] = 1
        if not binding.started:  # the call has ended (trapped or returned)
            return


def _survived(exc: BaseException) -> None:
    del watchdog_errors[:-9]
    watchdog_errors.append(exc)


def math_module() -> wasmtime.Module:
    """The whole math library as one module, compiled once per process: kernels import the math
    functions they call (rather than inline) from it, so compiling a graph does not compile sin,
    cos and pow again each time."""
    global _math_module
    owner = engine()  # before the lock: engine() takes it too (asked inside it, a first call hung)
    with _lock:
        if _math_module is None:
            _math_module = wasmtime.Module(owner, math_module_wat())
        return _math_module


def math_module_wat() -> str:
    """The math library module's text: every function exported, with the error global (also what
    a web export ships as ``math.wasm``): the library's IR module, printed."""
    from . import mathlib
    from .backends import wasm

    return wasm.module_text(mathlib.library_module())
