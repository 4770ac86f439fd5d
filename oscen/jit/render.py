"""Node variants as WebAssembly text, for the text-level program assembly (:mod:`.codegen`).

A thin layer during the move to an IR skeleton: the passes (:mod:`.passes`) compile a variant to
primitive :class:`~.kernel.Code`; here it is printed (:mod:`.backends.wasm`) into the
:class:`Template` codegen pastes for each node. Until the math library is kernel IR, its small
functions are expanded into the printed per-sample code at the text level (:mod:`.inline`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..graph.ir import NodeIR
from . import wasm_math
from .backends import wasm as printer
from .frontend import NodeLowering, deep_recursion, too_deep
from .inline import Inliner, WatFunction, parse, parse_function, render
from .kernel import TrapSite
from .layout import NodeLayout
from .passes import VariantCode, compile_variant
from .passes import runtime as _runtime
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

__all__ = ["BodyRenderer", "Template", "TrapSite", "math_imports", "wat_of_functions"]


def _i32(v: int) -> str:
    return f"(i32.const {int(v)})"


_LIBRARY: dict[str, WatFunction] | None = None


def library() -> dict[str, WatFunction]:
    """The whole math library, parsed once (for the text-level expansion of its calls)."""
    global _LIBRARY
    if _LIBRARY is None:
        functions = {}
        for item in parse(wasm_math.wat_for(sorted(wasm_math.FUNCTIONS))):
            if isinstance(item, list) and item and item[0] == "func":
                fn = parse_function(render(item))
                functions[fn.name] = fn
        _LIBRARY = functions
    return _LIBRARY


RUNTIME_NAMES = frozenset({*_runtime.FUNCTIONS, "trap"})


def wat_of_functions(names: set[str]) -> str:
    """The runtime's functions, if the program calls any (they touch the kernel's memory, so they
    live in each kernel; math functions are imported from the shared library, see engine.py)."""
    if not names & RUNTIME_NAMES:
        return ""
    return "\n".join(_runtime_text())


def _runtime_text() -> list[str]:
    return [_runtime.TRAP_WAT, printer.function_text(_runtime.RAMP)]


def math_imports(names: set[str]) -> list[str]:
    """Import declarations for the math functions node code calls (not inlined)."""
    lib = library()
    out = []
    for name in sorted(names - RUNTIME_NAMES):
        fn = lib[name]
        params = " ".join(f"(param {t})" for _, t in fn.params)
        results = f"(result {' '.join(fn.results)})" if fn.results else ""
        out.append(f'(import "math" "{name}" (func ${name} {params} {results}))')
    return out


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


_CALLEE = re.compile(r"\(call \$(\w+)")
# A math call as the passes leave it: arguments are locals or constants (evaluated before).
_MATH_CALL = re.compile(r"\(call \$(\w+)((?: \((?:local\.get \$[\w.]+|[fi](?:32|64)\.const [^()]+)\))*)\)")


def _expand_math(text: str, inliner: Inliner) -> str:
    """``text`` with its calls of small math functions expanded in place (per-sample code: the
    call and its argument shuffling cost as much as sin's polynomial)."""
    functions = inliner.functions

    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in functions:
            return m.group(0)
        args = [render(a) for a in parse(m.group(2))]
        return inliner.inline(name, args)

    return _MATH_CALL.sub(one, text)


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
        if self.inline_math:
            inliner = Inliner(library())
            process = _expand_math(process, inliner)
            handlers = {name: _expand_math(text, inliner) for name, text in handlers.items()}
            local_types.update(inliner.locals)
        functions = [printer.function_text(f, vc.site_index) for f in vc.functions]
        called = set()
        lib = library()
        for text in [process, *handlers.values(), *functions]:
            called.update(name for name in _CALLEE.findall(text) if name in lib or name == "trap")
        state = {name: printer.WT[t] for name, t in vc.state_used.items()}
        return Template(process, handlers, local_types, state, called, functions, vc.sites, self.lowering, vc)
