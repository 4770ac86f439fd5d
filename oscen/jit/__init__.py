"""The JIT: GraphIR → kernel IR → WebAssembly → machine code (Cranelift, through wasmtime).

``graph.to_ir()`` gives the :class:`GraphIR`; ``CraneliftJit().compile(ir)`` gives a
:class:`CompiledGraph`, run on a :class:`GraphState`; :class:`JitGraph` ties them together for live
use (background compiles, hot swaps, interpreter fallback).
"""

from typing import Any

from ..graph.ir import GraphIR
from .compiler import CompiledGraph, CompileStats, CraneliftJit, NodeFault, NodeTimeout
from .frontend import JitError
from .jitgraph import JitFallbackWarning, JitGraph, SwapRecord
from .state import GraphState

BACKENDS = ("wasm", "reference")


def compile(ir: GraphIR, backend: str = "wasm", **options: Any) -> CompiledGraph:  # noqa: A001
    """Compile ``ir`` for a backend: ``"wasm"`` (``CraneliftJit(**options).compile(ir)``: machine
    code) or ``"reference"`` (the same program evaluated in Python: slow, for tests and
    debugging). Either gives ``bind(state)``, ``process_block(state, n)`` and
    ``process_into(state, out)`` on a :class:`GraphState`, and the same :class:`NodeFault` errors.
    ``options`` are CraneliftJit's (``max_block``, ``fuse``, ``timeout``, ``state_in_locals``).

    Not in ``__all__``: ``from oscen.jit import *`` must not hide the builtin ``compile``."""
    if backend == "wasm":
        return CraneliftJit(**options).compile(ir)
    if backend == "reference":
        from .backends.reference_graph import compile_reference

        return compile_reference(ir, **options)
    raise ValueError(f"compile: backend must be one of {BACKENDS}, got {backend!r}")


__all__ = [
    "BACKENDS",
    "CompileStats",
    "CompiledGraph",
    "CraneliftJit",
    "GraphIR",
    "GraphState",
    "JitError",
    "JitFallbackWarning",
    "JitGraph",
    "SwapRecord",
    "NodeFault",
    "NodeTimeout",
]
