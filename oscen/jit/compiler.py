"""CraneliftJit and CompiledGraph: GraphIR in, machine code out, run on a GraphState.

Calls into the kernel go through wasmtime's C API (``wasmtime_func_call_unchecked``) with
argument buffers prepared once: ~2 µs a call instead of ~25 µs through ``Func.__call__``, which
matters for the small blocks of real-time audio (tests/test_jit_runtime.py guards this path).
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import wasmtime
from wasmtime import _bindings as ffi

from ..graph import validation as check
from ..graph.graph import GraphError
from ..graph.ir import GraphIR
from . import validate, wasm_math
from .backends import wasm_binary
from .engine import TIERS, compile_module, math_module, watch
from .frontend import JitError
from .frontend.typing import settled
from .groups import find_groups
from .layout import INTERRUPT, LOOP_BUDGET, MAX_BLOCK, NODE, TRAP_SITE, Layout
from .session import CompileSession, SessionView
from .skeleton import FUSE_NODES, INLINE_MATH_NODES, LANES, Program, SkeletonBuilder
from .state import GraphState
from .traps import MATH, TIMEOUT, TRAP_MESSAGES


class NodeFault(Exception):
    """A node's compiled code failed (the Python exception it would raise, or a timeout).

    Concrete errors subclass both this and the Python exception (``IndexError``,
    ``ZeroDivisionError``…), so ``except ZeroDivisionError`` works as it would interpreted.
    """

    node: str = ""
    location: str = ""
    done: int = 0
    """Samples of the call's output produced before the faulting block."""


_FAULT_TYPES: dict[type[BaseException], type[NodeFault]] = {}


def _fault_type(exc: type[BaseException]) -> type[NodeFault]:
    if exc not in _FAULT_TYPES:
        _FAULT_TYPES[exc] = type(f"Compiled{exc.__name__}", (NodeFault, exc), {})
    return _FAULT_TYPES[exc]


class NodeTimeout(NodeFault, TimeoutError):
    """Compiled node code ran past the time limit of one block (an endless loop?)."""


@dataclass
class CompileStats:
    frontend_seconds: float
    wasm_seconds: float
    wat: int | Callable[[], int]
    """The WebAssembly text's size in bytes, or what gives it: a compile prints no text (it
    hands Cranelift the binary), so the stats print it only when asked (:attr:`wat_bytes`)."""
    segments: int

    @property
    def wat_bytes(self) -> int:
        if callable(self.wat):
            self.wat = self.wat()
        return self.wat

    @property
    def total_seconds(self) -> float:
        return self.frontend_seconds + self.wasm_seconds


class CompiledGraph:
    """Machine code for a whole graph. Run it with ``process_block(state, n)``."""

    def __init__(
        self,
        ir: GraphIR,
        program: Any,
        module: wasmtime.Module,
        stats: CompileStats,
        timeout: float,
        tier: str = "optimized",
        tier_independent: bool = False,
    ) -> None:
        self.ir = ir
        self.program = program
        self.layout: Layout = program.layout
        self.module = module
        self.stats = stats
        self.timeout = timeout
        self.tier = tier
        """What the code was compiled for: "optimized" or "quick" (see :data:`.engine.TIERS`)."""
        self.tier_independent = tier_independent
        """The program (its WebAssembly) is the same for every tier: only Cranelift's settings
        differ, so :meth:`CraneliftJit.optimize` reuses it (no voice group made a lanes body)."""
        self._outputs = [self.layout.nodes[n].buffers[e] for n, e in ir.outputs]
        self.key = ir.key()

    @property
    def wat(self) -> str:
        """The generated WebAssembly text (for the curious and for debugging)."""
        return self.program.wat

    def bind(self, state: GraphState) -> None:
        """Instantiate this kernel on ``state`` now (the first ``process_block`` does it otherwise).

        The state then lives in the kernel's own memory: numpy views of it (``state.array``,
        ``state.scalar``) taken from here on alias exactly what the kernel reads and writes."""
        guard = state._processing
        if not guard.acquire(blocking=False):
            raise GraphError("bind called while another thread processes this GraphState")
        try:
            self._bind(state)
        finally:
            guard.release()

    def _bind(self, state: GraphState) -> _Binding:
        binding = state._binding
        if binding is not None and binding.program is self.program:
            return binding
        if state.layout.size != self.layout.size or state.key != self.key:
            raise ValueError(
                "this GraphState was made for another graph topology (or max_block); "
                "build one with GraphState.from_graph(graph, max_block=...)"
            )
        # One instance per (state, kernel), made once: a wasmtime store frees nothing before it
        # dies, so instantiating at every switch between two kernels grew the store each time.
        binding = state._bindings.get(self)
        if binding is None:
            binding = state._bindings[self] = self._make_binding(state)
        state._move_to_bytes(binding.bytes)
        state._binding = binding
        return binding

    def _make_binding(self, state: GraphState) -> Any:
        """This kernel instantiated for ``state`` (the one thing a backend's CompiledGraph changes)."""
        return _Binding(self, state)

    def process_block(self, state: GraphState, n: int) -> np.ndarray:
        """Process ``n`` samples (at most MAX_BLOCK_SAMPLES); returns shape (n,) for one output,
        (k, n) for k outputs."""
        n = check.block_size(n, "CompiledGraph.process_block")
        out = np.empty((len(self._outputs), n))
        self.process_into(state, out)
        return out[0] if len(self._outputs) == 1 else out

    def process_into(self, state: GraphState, out: np.ndarray) -> None:
        """Process ``out.shape[-1]`` samples into a preallocated (k, n) array: no allocation per
        call beyond small views, for the audio thread.

        A fault raises a :class:`NodeFault` whose ``done`` says how many samples of ``out`` were
        produced before the faulting block (the state's frame is at that block's start, with the
        events due in it waiting again)."""
        guard = state._processing
        if not guard.acquire(blocking=False):
            raise GraphError(
                "process_block called concurrently from two threads on one GraphState: "
                "process a graph from one thread only"
            )
        try:
            self._process_into(state, out)
        finally:
            guard.release()

    def _process_into(self, state: GraphState, out: np.ndarray) -> None:
        binding = state._binding
        if binding is None or binding.program is not self.program:
            binding = self._bind(state)
        if state._overflow_count:  # more events queued than the kernel's queues hold
            state.run_overflowing(binding, out)
            return
        n = out.shape[-1]
        maxb = self.layout.max_block
        if n <= maxb:  # the real-time case: one block, one call
            try:
                binding.call(n)
            except NodeFault as fault:
                fault.done = 0
                raise
            for k, buf in enumerate(binding.buffers):
                out[k, :n] = buf[:n]
            return
        # Offline: whole blocks of max_block go through `render`, many per call into the kernel
        # (the same samples as one call per block).
        pos = 0
        per_call = self.layout.render_samples // maxb
        while n - pos >= maxb:
            blocks = min(per_call, (n - pos) // maxb)
            frame = state.frame
            try:
                binding.render(blocks, maxb)
            except NodeFault as fault:  # keep the blocks this call completed before the fault
                m = state.frame - frame
                out[:, pos : pos + m] = binding.rendered[:, :m]
                fault.done = pos + m
                raise
            m = blocks * maxb
            out[:, pos : pos + m] = binding.rendered[:, :m]
            pos += m
        if pos < n:
            try:
                binding.call(n - pos)
            except NodeFault as fault:
                fault.done = pos
                raise
            for k, buf in enumerate(binding.buffers):
                out[k, pos:n] = buf[: n - pos]


def memory_views(
    binding: Any, memory: np.ndarray, layout: Layout, outputs: list[int], timeout: float
) -> None:
    """What every backend's binding keeps of a kernel's memory, as numpy views: the output buffers,
    the render area, the loop budget, the external queues' heads (rewound after a fault), and
    the watchdog's timing fields."""
    binding.buffers = [memory[a : a + 8 * layout.max_block].view(np.float64) for a in outputs]
    area, samples = layout.render_area, layout.render_samples
    binding.rendered = (
        memory[area : area + 8 * samples * len(outputs)].view(np.float64).reshape(len(outputs), samples)
    )
    binding.interrupt = memory[INTERRUPT : INTERRUPT + 4].view(np.int32)
    binding.external_heads = [
        memory[q.base + 4 : q.base + 8].view(np.int32)
        for nl in layout.nodes.values()
        for q in nl.external_queues.values()
    ]
    binding.timeout = timeout
    binding.started = 0.0


class _Binding:
    """A compiled module instantiated in one state's store, with its call prepared.

    It refers neither to its state nor to its kernel (only to the kernel's program and to the
    state's store and memory): the state keeps its bindings, and a cycle between them would make
    every replaced state immortal once JitGraph has frozen the collector's generations
    (``gc.freeze``)."""

    def __init__(self, compiled: CompiledGraph, state: GraphState) -> None:
        self.program = compiled.program
        self.store = store = state.store
        imports = []
        self.mathlib_error: wasmtime.Global | None = None
        if compiled.program.math_imports:  # else the library is not instantiated (~0.4 ms a bind)
            if state._mathlib is None:
                state._mathlib = wasmtime.Instance(store, math_module(), [])
            mathlib = state._mathlib.exports(store)
            self.mathlib_error = mathlib[wasm_math.ERROR_GLOBAL]
            imports = [mathlib[name] for name in compiled.program.math_imports]
        self.instance = wasmtime.Instance(store, compiled.module, imports)
        exports = self.instance.exports(store)
        state._move_to(exports["memory"])
        self.bytes = state.bytes
        self.func = exports["process"]
        self.math_error = exports["math_error"]
        self.ctx = store._context()
        self.func_ref = ctypes.byref(self.func._func)
        self.args = (ffi.wasmtime_val_raw_t * 1)()
        self.trap = ctypes.POINTER(ffi.wasm_trap_t)()
        self.trap_ref = ctypes.byref(self.trap)
        layout = compiled.layout
        memory_views(self, self.bytes, layout, compiled._outputs, compiled.timeout)
        self.render_ref = ctypes.byref(exports["render"]._func)
        self.render_args = (ffi.wasmtime_val_raw_t * 2)()
        # the memory protocol (oscen/jit/protocol.py): GraphState sets parameters and queues
        # events through these while the state lives in this instance's memory
        self.set_param_ref = ctypes.byref(exports["set_param"]._func)
        self.set_param_args = (ffi.wasmtime_val_raw_t * 4)()
        self.queue_event_ref = ctypes.byref(exports["queue_event"]._func)
        self.queue_event_args = (ffi.wasmtime_val_raw_t * 7)()
        self._call = ffi._wasmtime_func_call_unchecked
        watch(self)

    def call(self, n: int) -> None:
        self.args[0].i32 = n
        self._run(self.func_ref, self.args, 1)

    def render(self, blocks: int, size: int) -> None:
        self.render_args[0].i32 = blocks
        self.render_args[1].i32 = size
        self._run(self.render_ref, self.render_args, 2)

    def set_param(self, slot: int, value: float, seconds: float, rate: float) -> None:
        """The kernel's ``set_param``: set the parameter whose value slot is at ``slot``."""
        args = self.set_param_args
        args[0].i32 = slot
        args[1].f64 = value
        args[2].f64 = seconds
        args[3].f64 = rate
        self._protocol(self.set_param_ref, args, 4)

    def queue_event(self, base: int, capacity: int, frame: int, fields: tuple[float, ...]) -> bool:
        """The kernel's ``queue_event``: False if the queue at ``base`` is full."""
        args = self.queue_event_args
        args[0].i32 = base
        args[1].i32 = capacity
        args[2].i64 = frame
        for j in range(4):
            args[3 + j].f64 = fields[j] if j < len(fields) else 0.0
        self._protocol(self.queue_event_ref, args, 7)
        return bool(args[0].i32)

    def _protocol(self, func_ref: Any, args: Any, nargs: int) -> None:
        """A call of a memory-protocol function (no node code runs: no watchdog, no fault)."""
        error = self._call(self.ctx, func_ref, args, nargs, self.trap_ref)
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
        if self.trap:  # a bug of ours (the functions only address the slots they are given)
            trap = wasmtime.Trap._from_ptr(self.trap)
            self.trap = ctypes.POINTER(ffi.wasm_trap_t)()
            self.trap_ref = ctypes.byref(self.trap)
            raise RuntimeError(f"internal error: a memory-protocol call trapped: {trap.message}")

    def _run(self, func_ref: Any, args: Any, nargs: int) -> None:
        self.interrupt[0] = LOOP_BUDGET
        self.started = time.perf_counter()
        error = self._call(self.ctx, func_ref, args, nargs, self.trap_ref)
        self.started = 0.0
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
        if self.trap:
            trap = wasmtime.Trap._from_ptr(self.trap)
            self.trap = ctypes.POINTER(ffi.wasm_trap_t)()
            self.trap_ref = ctypes.byref(self.trap)
            raise self.fault(trap) from None

    def fault(self, trap: wasmtime.Trap) -> NodeFault:
        return node_fault(self, str(trap.message).splitlines()[0], self._math_error)

    def _math_error(self) -> int:
        """Inlined math sets the kernel's error global, imported math the library's (both reset)."""
        store = self.store
        error = self.math_error.value(store)
        self.math_error.set_value(store, 0)
        if self.mathlib_error is not None:  # (a kernel without imported math has none)
            error = error or self.mathlib_error.value(store)
            self.mathlib_error.set_value(store, 0)
        return error


def node_fault(binding: Any, message: str, math_error: Callable[[], int]) -> NodeFault:
    """The NodeFault for a trapped call, read off the kernel's memory header (TRAP_SITE,
    TRAP_CODE, SEGMENT, NODE: the faulting node's base, LANE: its voice) the same way whichever
    backend ran it; ``math_error`` reads (and
    resets) the math library's error code. The abandoned block consumed events from the external
    queues by moving their heads (compacted only at the end of a block): they are rewound, so that
    the events wait again."""
    program, memory = binding.program, binding.bytes
    for head in binding.external_heads:
        head[0] = 0
    header = memory[TRAP_SITE : TRAP_SITE + 20].view(np.int32)
    site_id, code, segment = int(header[0]), int(header[1]), int(header[2])
    slots = memory[NODE : NODE + 8].view(np.int32)
    found = program.fault_node(int(slots[0]), int(slots[1]))
    node_id = -1 if found is None else found
    header[0] = header[1] = 0
    slots[0] = 0  # a later trap that stores no base (none of ours should) names its segment
    node = program.node_labels.get(node_id) or ", ".join(
        program.node_labels[n] for n in program.segments[segment]
    )
    site = program.trap_site(node_id, site_id)
    location = str(site.site) if site is not None and site.site else ""
    if site is None or code == 0:
        err: NodeFault = _fault_type(RuntimeError)(f"compiled code of {node} trapped: {message}")
    elif code == TIMEOUT:
        err = NodeTimeout(
            f"{node} at {location}: compiled node code ran longer than {binding.timeout:g} s "
            "in one block (an endless loop?); the block was abandoned"
        )
    else:
        if code == MATH:
            exc, text = wasm_math.ERROR_MESSAGES.get(math_error(), (ValueError, "math domain error"))
        else:
            exc, text = TRAP_MESSAGES[code]
            text = text or site.detail
        detail = f" ({site.detail})" if site.detail and text != site.detail else ""
        err = _fault_type(exc)(f"{exc.__name__} in {node} at {location}: {text}{detail}")
    err.node = node
    err.location = location
    return err


class CraneliftJit:
    """Compiles a GraphIR to machine code: Python node methods → kernel IR → WebAssembly → Cranelift.

    ``max_block``: samples per kernel call (states must be made with the same value). ``fuse``:
    nodes per sample loop. ``timeout``: seconds a call may run before node code in a loop is
    interrupted. ``state_in_locals``: keep node state in locals across the sample loop (faster node
    code, larger modules) or in memory; by default, locals for graphs up to 300 nodes.
    ``voice_groups``: compile copies of one sub-graph (voices) as one body run for each voice
    (:mod:`.groups`); off, every node is compiled on its own. ``lanes``: voices of a group run
    at once by its body (:mod:`.passes.lanes`: interleaved, packed in f64x2 pairs); 1 runs them one
    by one.

    ``tier``: what the code is for (docs/jit.md, "Tiers"). "optimized" (the default) runs
    fastest. "quick" is playable soonest: voice groups' bodies without the fast loop and the
    four-voice copy (:mod:`.passes.fastpath`, :mod:`.passes.interleave`), and Cranelift at opt
    level "none" with its single-pass register allocator; it runs slower (~0.6x). Both tiers lay
    the state out identically, so a state runs on either and a swap between them keeps it
    (JitGraph plays the quick tier first, then swaps in the optimized one, see :meth:`optimize`).

    Each compiler has its own :class:`~.session.CompileSession` (``session``): the node variants it
    has compiled, so that a recompile after an edit redoes only what changed. Compilers share
    nothing mutable; one compiler may compile on several threads at once.
    """

    def __init__(
        self,
        max_block: int = MAX_BLOCK,
        fuse: int = FUSE_NODES,
        timeout: float = 2.0,
        state_in_locals: bool | None = None,
        voice_groups: bool = True,
        lanes: int = LANES,
        tier: str = "optimized",
    ) -> None:
        self.max_block = check.max_block(max_block, "CraneliftJit")
        self.fuse = check.positive_int(fuse, "CraneliftJit", "fuse")
        self.timeout = check.timeout(timeout, "CraneliftJit")
        self.state_in_locals = check.optional_bool(state_in_locals, "CraneliftJit", "state_in_locals")
        self.voice_groups = check.optional_bool(voice_groups, "CraneliftJit", "voice_groups") is not False
        self.lanes = check.positive_int(lanes, "CraneliftJit", "lanes")
        if self.lanes > 1 and self.lanes % 2:
            raise GraphError(f"CraneliftJit: lanes must be 1 or an even number (f64x2 pairs), got {lanes!r}")
        self.tier = _tier(tier, "CraneliftJit")
        self.session = CompileSession()

    def options(self) -> dict[str, Any]:
        """The constructor's arguments that shape the code (what the compile worker is sent)."""
        return {
            "max_block": self.max_block,
            "fuse": self.fuse,
            "timeout": self.timeout,
            "state_in_locals": self.state_in_locals,
            "voice_groups": self.voice_groups,
            "lanes": self.lanes,
            "tier": self.tier,
        }

    def program(self, ir: GraphIR, tier: str | None = None) -> Program:
        """The whole program for ``ir`` (settled) as kernel IR and its WebAssembly text, before
        Cranelift: what every backend runs (the reference backend takes ``program.module``)."""
        return self._program(ir, self.tier if tier is None else _tier(tier, "CraneliftJit.program"))[0]

    def _program(self, ir: GraphIR, tier: str) -> tuple[Program, bool]:
        """(the program for ``tier``, whether it is the same for every tier)."""
        layout = Layout.of(ir, self.max_block)
        groups = find_groups(ir) if self.voice_groups else []
        # Nodes whose code the module holds: a voice group's body counts once.
        compiled = len(ir.nodes) - sum(len(g.members) - len(g.template) for g in groups)
        in_locals = self.state_in_locals
        if in_locals is None:  # faster node code for ordinary graphs, faster compiles for huge ones
            in_locals = compiled <= INLINE_MATH_NODES
        view = SessionView(self.session)  # counts the lanes bodies this compile asks for
        builder = SkeletonBuilder(
            ir,
            layout,
            self.fuse,
            in_locals,
            view,  # type: ignore[arg-type]
            groups,
            inline_math=compiled <= INLINE_MATH_NODES,
            lanes=self.lanes,
        )
        if tier == "quick":  # the plain lanes body: about 0.7x the WebAssembly for Cranelift
            builder.fast_loops = False
            builder.interleave = False
        program = builder.build()
        if validate.ENABLED:  # the tests' switch (OSCEN_VALIDATE_IR): every kernel they build
            validate.check_program(ir, program, self.session)
            same_module(program)
        # a scalar segment's fast loop (passes.scalarloop) is the optimized tier's only: with it
        # on, the tiers' programs differ even without lanes bodies
        scalar_differs = SkeletonBuilder.fast_loops and SkeletonBuilder.scalar_fast_loops
        return program, view.lane_bodies == 0 and not scalar_differs

    def compile(self, ir: GraphIR, tier: str | None = None) -> CompiledGraph:
        """Compile ``ir`` (for ``tier``, this compiler's by default). Raises :class:`JitError` for
        node code outside the compilable subset."""
        if not isinstance(ir, GraphIR):
            raise TypeError(f"compile takes a GraphIR (graph.to_ir()), got {type(ir).__name__}")
        tier = self.tier if tier is None else _tier(tier, "CraneliftJit.compile")
        t0 = time.perf_counter()
        ir = settled(ir)  # the attribute types every assignment in the node code needs
        program, independent = self._program(ir, tier)
        return self._finish(ir, program, independent, tier, t0)

    def compile_first(self, ir: GraphIR) -> CompiledGraph:
        """The code to play first (what JitGraph compiles for a new topology): the quick tier when
        its program has at least :data:`QUICK_TIER_WASM` bytes of WebAssembly, where the optimized
        tier would keep the graph waiting noticeably longer; else the optimized tier at once (one
        compile, no swap later). A compiler made for the quick tier gives the quick tier."""
        if not isinstance(ir, GraphIR):
            raise TypeError(f"compile_first takes a GraphIR (graph.to_ir()), got {type(ir).__name__}")
        t0 = time.perf_counter()
        ir = settled(ir)
        program, independent = self._program(ir, "quick")
        tier = "quick"
        if self.tier == "optimized" and _wasm_size(program) < QUICK_TIER_WASM:
            tier = "optimized"
            if not independent:  # small, but its lanes bodies differ: the optimized program
                program, independent = self._program(ir, tier)
        return self._finish(ir, program, independent, tier, t0)

    def _finish(
        self, ir: GraphIR, program: Program, independent: bool, tier: str, t0: float
    ) -> CompiledGraph:
        t1 = time.perf_counter()
        module = _machine_code(program, tier)
        t2 = time.perf_counter()
        stats = CompileStats(t1 - t0, t2 - t1, lambda: len(program.wat), len(program.segments))
        return CompiledGraph(ir, program, module, stats, self.timeout, tier, independent)

    def optimize(self, compiled: CompiledGraph) -> CompiledGraph:
        """The optimized tier of ``compiled`` (itself if it is one): the same graph, the same state
        layout. Where the program does not depend on the tier only Cranelift runs again, on the
        same WebAssembly (no Python stage)."""
        if compiled.tier == "optimized":
            return compiled
        if not compiled.tier_independent:
            return self.compile(compiled.ir, "optimized")
        t0 = time.perf_counter()
        module = _machine_code(compiled.program, "optimized")
        stats = CompileStats(0.0, time.perf_counter() - t0, compiled.stats.wat, compiled.stats.segments)
        return CompiledGraph(compiled.ir, compiled.program, module, stats, self.timeout, "optimized", True)


QUICK_TIER_WASM = 7680
"""Bytes of binary WebAssembly from which :meth:`CraneliftJit.compile_first` starts with the
quick tier. Below it (a seed patch: one sine, one biquad, 5.2 KiB; 48 KiB of text) the optimized
compile is only ~3 ms slower than the quick one, less than a second compile and a swap are
worth. (It was 64 KiB of text, :data:`QUICK_TIER_WAT`, when the compile printed text: the text
is 8.2-9.4 times the binary, and both thresholds split the graphs of the tests and benchmarks
alike: the seed 5.2 KiB and the feedback loop 6.7 KiB below, two voices 8.4 KiB and a chain of
ten nodes 8.0 KiB above.)"""
QUICK_TIER_WAT = 64 * 1024
"""The threshold in bytes of text, for a program that has no binary (a worker's)."""


def _wasm_size(program: Program) -> int:
    if program.binary is not None:
        return len(program.binary)
    return len(program.wat) * QUICK_TIER_WASM // QUICK_TIER_WAT


def same_module(program: Program) -> None:
    """Check that the program's binary is the module wat2wasm makes of its text, section by
    section (the custom ``name`` sections aside: wat2wasm's also names the locals): the binary
    printer (:mod:`.backends.wasm_binary`) must write what the text printer says."""
    if program.binary is None:
        return
    ours = [s for s in wasm_binary.sections(program.binary) if s[0] != 0]
    theirs = [s for s in wasm_binary.sections(bytes(wasmtime.wat2wasm(program.wat))) if s[0] != 0]
    if ours != theirs:
        where = next(
            (f"section {a[0]}" for a, b in zip(ours, theirs, strict=False) if a != b),
            f"{len(ours)} sections, wat2wasm's {len(theirs)}",
        )
        raise JitError(f"internal error: the binary module differs from its text's assembly ({where})")


def _tier(tier: Any, call: str) -> str:
    if tier not in TIERS:
        raise GraphError(f"{call}: tier must be one of {', '.join(map(repr, TIERS))}, got {tier!r}")
    return str(tier)


def _machine_code(program: Program, tier: str) -> wasmtime.Module:
    """Cranelift's code for the program's binary (its text where it has none)."""
    try:
        return compile_module(program.wat if program.binary is None else program.binary, tier)
    except wasmtime.WasmtimeError as exc:  # a bug of ours, not the user's: say so
        raise JitError(f"internal error: generated WebAssembly did not compile: {exc}") from exc
