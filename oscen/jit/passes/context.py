"""What the passes of one node variant share: fresh names, the trap-site table, the locals.

Every Code and Function of a variant numbers its trap sites in one table (``sites``; index 0 is
"unknown"), so a site's number is known where the check is built (the math library's callers
store it in the TRAP_SITE slot before a call that can trap) and the program maps it per node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...graph.ir import NodeIR
from .. import kernel as k
from ..kernel import T
from ..layout import NodeLayout


@dataclass
class Unit:
    """One body being built: the variant's entry code (process and handlers) or an outlined
    function. ``locals``: what it declares (beyond the skeleton's ``nb``, ``i``, ``ev_at``,
    ``in_*``, ``S_*``, ``P_*`` for the entry code; beyond the parameters for a function)."""

    in_function: bool
    locals: dict[str, T] = field(default_factory=dict)

    def local(self, name: str, t: T) -> k.Local:
        self.locals[name] = t
        return k.Local(t, name)


@dataclass
class Variant:
    """The node variant being compiled: its placement (layout, connected inputs) and options."""

    node: NodeIR
    layout: NodeLayout
    connected: frozenset[str]
    inline_math: bool = True
    state_in_locals: bool = False
    prefix: str = "v"
    sites: list[k.TrapSite] = field(default_factory=lambda: [k.TrapSite(None)])
    state_used: dict[str, T] = field(default_factory=dict)
    params_used: set[str] = field(default_factory=set)  # unconnected value inputs read as ``P_<name>``
    functions: list[k.Function] = field(default_factory=list)
    outlined: dict[tuple, str] = field(default_factory=dict)
    math_called: set[str] = field(default_factory=set)  # math functions called out of line
    runtime_called: set[str] = field(default_factory=set)  # runtime functions (``trap``)
    uid: int = 0
    last_site: k.Site | None = None
    # the passes after inlining, for an outlined helper (set by the driver: no import cycle)
    lower_function: Callable[[Any, Unit, k.Function], k.Function] | None = None

    def fresh(self, base: str) -> str:
        self.uid += 1
        return f"{self.prefix}{base}{self.uid}"

    def site(self, site: k.Site | None, detail: str = "") -> k.TrapSite:
        ts = k.TrapSite(site, detail)
        self.sites.append(ts)
        return ts

    def site_id(self, ts: k.TrapSite) -> int:
        """The number of a site of this variant (its index in ``sites``)."""
        for i in range(len(self.sites) - 1, -1, -1):
            if self.sites[i] is ts:
                return i
        raise KeyError(ts)

    def trap(self, code: int, ts: k.TrapSite) -> k.Trap:
        """Stop with ``code`` at ``ts``. Traps are cold and never return: a call of ``$trap``
        keeps every node's code short; with state in locals, though, any call in the loop makes
        Cranelift spill them, so the trap is expanded in place."""
        nb = k.Local(T.I32, "nb")  # the node's base: the fault names the node
        if self.state_in_locals:
            return k.Trap(code=code, where=ts, node=nb)
        self.runtime_called.add("trap")
        return k.Trap(code=code, where=ts, via="trap", node=nb)
