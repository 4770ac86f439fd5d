"""Kernel-to-kernel passes: one node variant's lowered methods (high-level kernel IR) to
primitive :class:`~..kernel.Code` and module :class:`~..kernel.Function`\\ s.

1. :mod:`.inline`: calls of the node's helper methods expanded in place (or outlined into
   functions of the variant taking the node base), locals renamed per inlined body;
2. :mod:`.pysemantics`: Python's operators, conversions and math calls to primitive operations
   with explicit checks and ``Trap``\\ s (helpers from :mod:`.runtime`);
3. :mod:`.bind`: attributes, inputs, arrays and events to loads and stores relative to the node
   base ``nb`` (or to state locals ``S_<name>``), loops to ``Loop``\\ s with the iteration budget.

The result, a :class:`VariantCode`, holds no text: a backend prints or evaluates it. All its
Codes and Functions number their trap sites in one table (``sites``), which the program maps per
node, so the code of a variant serves every node of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...graph.ir import NodeIR
from .. import kernel as k
from ..frontend.errors import deep_recursion, too_deep
from ..frontend.lowering import NodeLowering
from ..kernel import T
from ..layout import NodeLayout
from . import bind, pysemantics
from .context import Unit, Variant
from .inline import inline_statement


@dataclass
class VariantCode:
    """A node variant compiled to primitive IR (see the module docstring)."""

    process: k.Code
    handlers: dict[str, k.Code]  # event input -> its handler; fields are read at local ``ev_at``
    functions: list[k.Function]  # the variant's outlined helpers, called with ``nb`` first
    sites: list[k.TrapSite]  # site numbers: index in this list (0: unknown); Code.sites is sites[1:]
    state_used: dict[str, T]  # with state in locals: the scalars the code keeps in ``S_<name>``
    math_called: set[str]  # math library functions (wasm names) called out of line
    runtime_called: set[str]  # runtime functions called (``trap``: the ``via`` of traps)
    lowering: NodeLowering | None = field(default=None, repr=False)
    params_used: frozenset[str] = frozenset()  # with state in locals: value inputs read as ``P_<name>``
    _index: dict[int, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def site_index(self, where: k.TrapSite | None) -> int:
        """The number of a trap site (its position in ``sites``; 0 for unknown)."""
        if where is None:
            return 0
        if not self._index:  # by identity, in a table that lives as long as the sites it holds
            self._index.update((id(s), i) for i, s in enumerate(self.sites))
        return self._index.get(id(where), 0)


class _Lower(pysemantics.PySemantics, bind.Bind):
    """Passes 2 and 3 in one walk of the tree (their rewrites are of disjoint node types; an
    operand is bound as it is lowered): half the work of two walks."""

    def __init__(self, v: Variant, unit: Unit) -> None:
        pysemantics.PySemantics.__init__(self, v, unit)
        bind.Bind.__init__(self, v, unit)


def lower_body(v: Variant, unit: Unit, body: list[k.Stmt]) -> list[k.Stmt]:
    """Passes 2 and 3 on statements the inliner produced (small math functions are expanded as
    their calls are made, see :func:`.inline.math_call`)."""
    return _Lower(v, unit).stmts(body)


def lower_function(v: Variant, unit: Unit, fn: k.Function) -> k.Function:
    """An outlined helper's high-level body, lowered (its locals: all but its parameters)."""
    body = lower_body(v, unit, fn.body)
    params = {n for n, _ in fn.params}
    local_types = {n: t for n, t in unit.locals.items() if n not in params}
    return k.Function(fn.name, fn.params, fn.results, local_types, body, fn.export)


def compile_variant(
    node: NodeIR,
    layout: NodeLayout,
    lowering: NodeLowering,
    connected: frozenset[str],
    inline_math: bool = True,
    state_in_locals: bool = False,
    prefix: str = "v",
) -> VariantCode:
    """The primitive code of one node variant: ``process``, a handler per event input, and the
    functions they call. ``prefix`` names the variant's functions and labels: unique among the
    variants of one program (a :class:`~oscen.jit.session.CompileSession` hands them out)."""
    v = Variant(node, layout, connected, inline_math, state_in_locals, prefix)
    v.lower_function = lower_function
    with deep_recursion():
        try:
            return _compile(v, lowering)
        except RecursionError:
            raise too_deep(v.last_site, lowering.name) from None


def _compile(v: Variant, lowering: NodeLowering) -> VariantCode:
    unit = Unit(in_function=False)  # process and handlers share the locals of the node's step
    process = lower_body(v, unit, inline_statement(v, unit, lowering.process(), []))
    handlers: dict[str, list[k.Stmt]] = {}
    for e in v.node.endpoints:
        if e.direction == "input" and e.kind == "event":
            fn = lowering.handler(e.name, e.arity)
            fields: list[k.Expr] = [k.Load(T.F64, k.Local(T.I32, "ev_at"), 8 + 8 * j) for j in range(e.arity)]
            handlers[e.name] = lower_body(v, unit, inline_statement(v, unit, fn, fields))
    for name in ("nb", "i", "ev_at"):  # the skeleton's
        unit.locals.pop(name, None)
    sites = v.sites[1:]
    return VariantCode(
        k.Code(process, unit.locals, sites),
        {name: k.Code(body, unit.locals, sites) for name, body in handlers.items()},
        v.functions,
        v.sites,
        v.state_used,
        v.math_called,
        v.runtime_called,
        lowering,
        frozenset(v.params_used),
    )
