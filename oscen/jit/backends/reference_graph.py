"""A compiled graph run by the reference backend: ``oscen.jit.compile(ir, backend="reference")``.

The program is the one the WebAssembly backend prints (the skeleton's :class:`~..kernel.Module`),
evaluated in Python on the state's own memory (``GraphState.bytes``, the layout the wasm kernel
uses), with the math library's IR functions as its imports. :class:`ReferenceGraph` is a
:class:`~..compiler.CompiledGraph`: the same ``bind`` / ``process_block`` / ``process_into``,
and the same :class:`~..compiler.NodeFault` errors, read from the same memory header after a
trap. The host gives each call the loop budget (INTERRUPT) and the engine's watchdog lowers it
when a call overruns its timeout, so an endless loop in node code ends with ``NodeTimeout`` here
too.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Any

import numpy as np

from ...graph.ir import GraphIR
from .. import kernel as k
from ..compiler import CompiledGraph, CompileStats, NodeFault, memory_views, node_fault
from ..engine import watch
from ..frontend import JitError
from ..frontend.typing import settled
from ..layout import LOOP_BUDGET
from ..state import GraphState
from . import reference as ref
from .wasm import MATH_ERROR_GLOBAL

_LIBRARY: ref.CompiledModule | None = None
_LIBRARY_LOCK = threading.Lock()


def library_module() -> k.Module:
    """The whole math library as one module of kernel IR (every function, the error global): the
    module the WebAssembly backend prints as the shared math module."""
    from .. import mathlib

    return mathlib.library_module()


def library() -> ref.CompiledModule:
    """The math library translated for the reference backend, once per process."""
    global _LIBRARY
    with _LIBRARY_LOCK:
        if _LIBRARY is None:
            _LIBRARY = ref.CompiledModule(library_module())
        return _LIBRARY


def _refuse_text_code(module: k.Module) -> None:
    """Node code the skeleton took as printed text (before the passes produced IR for it)
    cannot be evaluated: say so rather than run an empty body."""
    vias = {t.via for t in _all_traps(module) if t.via}  # run in place, never called (reference.py)
    stack: list[Any] = [f.body for f in module.functions if f.name not in vias]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, k.Instance):
            if not x.code.body and x.code.derived.get("wat"):
                raise JitError(
                    "the reference backend runs kernel IR; this program holds node code as "
                    "WebAssembly text (the passes have not lowered it)"
                )
            stack.extend(x.code.body)
        elif isinstance(x, (k.If, k.Loop, k.Block)):
            stack.append(x.body)
            if isinstance(x, k.If):
                stack.append(x.orelse)


def _all_traps(module: k.Module) -> list[k.Trap]:
    from ..validate import _traps

    found: list[k.Trap] = []
    for f in module.functions:
        found.extend(_traps(f.body))
        stack: list[Any] = list(f.body)
        while stack:  # and in the Codes of Instances
            x = stack.pop()
            if isinstance(x, k.Instance):
                found.extend(_traps(x.code.body))
            elif isinstance(x, (k.If, k.Loop, k.Block)):
                stack.extend(x.body)
                if isinstance(x, k.If):
                    stack.extend(x.orelse)
    return found


class ReferenceGraph(CompiledGraph):
    """A graph's program run by the reference backend (slow: for tests and debugging)."""

    def __init__(self, ir: Any, program: Any, stats: CompileStats, timeout: float) -> None:
        module = program.module
        if module is None:
            raise JitError("the reference backend needs the program as kernel IR (Program.module)")
        _refuse_text_code(module)
        compiled = ref.CompiledModule(module)
        super().__init__(ir, program, compiled, stats, timeout)  # type: ignore[arg-type]
        self.python_source = compiled.source
        """The Python the module became (for debugging)."""

    def _make_binding(self, state: GraphState) -> Any:
        return ReferenceBinding(self, state)


class ReferenceBinding:
    """The module instantiated on a memory of its own (the state moves into it, as into a wasm
    instance's), with the math library instantiated beside it."""

    def __init__(self, compiled: ReferenceGraph, state: GraphState) -> None:
        self.program = compiled.program
        self.bytes = np.zeros(len(state.bytes), dtype=np.uint8)
        names = compiled.module.import_names
        self.library = library().instantiate() if names else None  # one per binding: its error global
        imports = {name: self.library.functions[name] for name in names} if self.library else {}
        self.instance = compiled.module.instantiate(self.bytes, imports)
        layout = compiled.layout
        outputs = [layout.nodes[n].buffers[e] for n, e in compiled.ir.outputs]
        memory_views(self, self.bytes, layout, outputs, compiled.timeout)
        self.exports = self.instance.exports
        watch(self)

    def call(self, n: int) -> None:
        self._run("process", n)

    def render(self, blocks: int, size: int) -> None:
        self._run("render", blocks, size)

    def set_param(self, slot: int, value: float, seconds: float, rate: float) -> None:
        """The kernel's own ``set_param`` (the memory protocol)."""
        self._protocol("set_param", slot, value, seconds, rate)

    def queue_event(self, base: int, capacity: int, frame: int, fields: tuple[float, ...]) -> bool:
        """The kernel's own ``queue_event``: False if the queue at ``base`` is full."""
        padded = [float(fields[j]) if j < len(fields) else 0.0 for j in range(4)]
        return bool(self._protocol("queue_event", base, capacity, frame, *padded))

    def _protocol(self, name: str, *args: Any) -> Any:
        try:
            return self.exports[name](*args)
        except (ref.WasmTrap, IndexError, struct.error) as exc:  # a bug of ours: the slots are ours
            raise RuntimeError(f"internal error: a memory-protocol call trapped: {exc}") from exc

    def _run(self, name: str, *args: Any) -> None:
        self.interrupt[0] = LOOP_BUDGET
        self.started = time.perf_counter()
        try:
            self.exports[name](*args)
        except ref.WasmTrap as trap:
            raise self.fault(str(trap)) from None
        except (IndexError, struct.error):  # memoryview / struct: an access past the memory
            raise self.fault(ref.OOB[1]) from None
        except RecursionError:
            raise self.fault(ref.STACK[1]) from None
        finally:
            self.started = 0.0

    def fault(self, message: str) -> NodeFault:
        """The NodeFault the wasm binding raises for the same memory header."""
        return node_fault(self, message, self._math_error)

    def _math_error(self) -> int:
        """Inlined math sets the kernel's error global, imported math the library's (and reset)."""
        error = 0
        for inst in (self.instance, self.library):
            if inst is None:
                continue
            try:
                value = int(inst.global_value(MATH_ERROR_GLOBAL))
            except KeyError:
                continue
            error = error or value
            inst.set_global(MATH_ERROR_GLOBAL, 0)
        return error


def compile_reference(ir: Any, **options: Any) -> ReferenceGraph:
    """``ir`` through the same front end and skeleton as ``CraneliftJit(**options).compile``,
    then run by the reference backend."""
    from ..compiler import CraneliftJit

    jit = CraneliftJit(**options)
    if not isinstance(ir, GraphIR):
        raise TypeError(f"compile takes a GraphIR (graph.to_ir()), got {type(ir).__name__}")
    t0 = time.perf_counter()
    ir = settled(ir)  # the attribute types the kernel is compiled with (as CraneliftJit.compile)
    program = jit.program(ir)  # validated there when the tests' switch is on
    t1 = time.perf_counter()
    stats = CompileStats(t1 - t0, 0.0, len(program.wat), len(program.segments))
    return ReferenceGraph(ir, program, stats, jit.timeout)
