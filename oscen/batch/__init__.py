"""Batch rendering for datasets: many parameter variations of one patch, compiled once.

``render_batch(patch, params, out=..., seconds=..., backend="local" | "ray")`` compiles the patch
once, ships the compiled kernel (wasmtime's serialised module) and its memory layout to every
worker, and renders each item from its index alone, seeded noise included, so any item is
bit-identical on any worker, in any run, on either backend. docs/batch.md is the guide.

Modules: ``params`` (grids, seeded samplers, tables), ``plan`` (parameter names to value
inputs), ``worker`` (the kernel image and the per-item renderer), ``local`` and ``ray_backend``
(where the workers run), ``output`` (files, metadata, resume), ``api`` (``render_batch``).
"""

from .api import BatchResult, render_batch
from .output import OutputError
from .params import (
    Choice,
    Grid,
    IntUniform,
    Item,
    LogUniform,
    ParamError,
    RandomSpace,
    Records,
    Uniform,
    from_table,
    load_space,
)
from .traps import restore as restore_trap_handlers
from .traps import snapshot as _snapshot_trap_handlers
from .worker import KernelImage

_snapshot_trap_handlers()  # before anyone calls ray.init: see traps.py

__all__ = [
    "BatchResult",
    "Choice",
    "Grid",
    "IntUniform",
    "Item",
    "KernelImage",
    "LogUniform",
    "OutputError",
    "ParamError",
    "RandomSpace",
    "Records",
    "Uniform",
    "from_table",
    "load_space",
    "render_batch",
    "restore_trap_handlers",
]
