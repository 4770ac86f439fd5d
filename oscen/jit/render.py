"""A node variant's code for the program skeleton: the passes' :class:`~.passes.VariantCode`,
and its text (printed by :mod:`.backends.wasm`), in the :class:`Template` :mod:`.codegen` caches.

Transitional, as codegen is: the skeleton takes the variant's Codes from ``Template.code``; the
codes' old home (the trap codes) stays importable from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..graph.ir import NodeIR
from .backends import wasm as printer
from .frontend import NodeLowering, deep_recursion, too_deep
from .kernel import TrapSite
from .layout import NodeLayout
from .passes import VariantCode, compile_variant
from .passes.inline import OUTLINE_SIZE, _measure  # noqa: F401  (their old home)
from .traps import (  # noqa: F401  (re-exported: the codes' old home)
    ASSERTION,
    FLOAT_TOO_BIG,
    FLOAT_ZERO_DIV,
    INDEX,
    INEXACT_INT,
    INF_TO_INT,
    INT_ZERO_DIV,
    MATH,
    NAN_TO_INT,
    NEG_SHIFT,
    OVERFLOW,
    POW_OVERFLOW,
    QUEUE_FULL,
    RANGE_STEP,
    TIMEOUT,
    TRAP_MESSAGES,
)

__all__ = ["BodyRenderer", "Template", "TrapSite"]


@dataclass
class Template:
    """The printed code of one node variant."""

    process: str
    handlers: dict[str, str]  # event input -> handler body, reading its fields at $ev_at
    locals: dict[str, str]
    state_used: dict[str, str]  # with state in locals: the scalars the code uses ($S_<name>)
    called: set[str]  # runtime and library functions called out of line
    functions: list[str]  # the variant's outlined helpers (WAT functions)
    sites: list[TrapSite] = field(default_factory=lambda: [TrapSite(None)])  # trap site ids: indices
    lowering: NodeLowering | None = None
    code: VariantCode | None = field(default=None, repr=False)  # what the text was printed from

    def still_valid(self) -> bool:
        """False once a global the code folded in has changed (the template is then stale)."""
        return self.lowering is None or self.lowering.still_valid()


class BodyRenderer:
    """One node variant as a :class:`Template`: compiled by the passes, printed to text."""

    def __init__(
        self,
        node: NodeIR,
        layout: NodeLayout,
        lowering: NodeLowering,
        connected: frozenset[str],
        inline_math: bool = True,
        state_in_locals: bool = False,
    ) -> None:
        self.node = node
        self.layout = layout
        self.lowering = lowering
        self.connected = connected
        self.inline_math = inline_math
        self.state_in_locals = state_in_locals

    def render(self) -> Template:
        with deep_recursion():
            try:
                return self._render()
            except RecursionError:
                raise too_deep(None, self.lowering.name) from None

    def _render(self) -> Template:
        vc = compile_variant(
            self.node, self.layout, self.lowering, self.connected, self.inline_math, self.state_in_locals
        )
        process = printer.code_text(vc.process)
        handlers = {name: printer.code_text(code) for name, code in vc.handlers.items()}
        local_types = {f"${n}": printer.WT[t] for n, t in vc.process.locals.items()}
        functions = [printer.function_text(f, vc.site_index) for f in vc.functions]
        called = vc.math_called | vc.runtime_called
        state = {name: printer.WT[t] for name, t in vc.state_used.items()}
        return Template(process, handlers, local_types, state, called, functions, vc.sites, self.lowering, vc)
