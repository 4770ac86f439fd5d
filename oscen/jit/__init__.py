"""The JIT: GraphIR → kernel IR → WebAssembly → machine code (Cranelift, through wasmtime).

``graph.to_ir()`` gives the :class:`GraphIR`; ``CraneliftJit().compile(ir)`` gives a
:class:`CompiledGraph`, run on a :class:`GraphState`; :class:`JitGraph` ties them together for live
use (background compiles, hot swaps, interpreter fallback).
"""

from ..graph.ir import GraphIR
from .compiler import CompiledGraph, CompileStats, CraneliftJit, NodeFault, NodeTimeout
from .frontend import JitError
from .jitgraph import JitFallbackWarning, JitGraph, SwapRecord
from .state import GraphState

__all__ = [
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
