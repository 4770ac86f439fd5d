"""A generic rewriter of kernel IR trees, the base of every pass.

A pass overrides the node types it changes (``x_Binary`` for an expression, ``s_Assign`` for a
statement, which returns a *list* of statements); every other node is copied with its children
rewritten. Input trees are never modified: one lowered method serves several variants (inputs
connected or not, state in locals or in memory), so each pass builds new nodes.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import kernel as k

_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    got = _FIELDS.get(cls)
    if got is None:
        got = tuple(cls.__dataclass_fields__)
        _FIELDS[cls] = got
    return got


class Rewriter:
    """Copies a tree, dispatching each node to ``x_<Class>`` / ``s_<Class>`` when defined."""

    def expr(self, e: k.Expr) -> k.Expr:
        method = getattr(self, "x_" + type(e).__name__, None)
        if method is not None:
            return method(e)
        return self.children(e)

    def stmt(self, s: k.Stmt) -> list[k.Stmt]:
        method = getattr(self, "s_" + type(s).__name__, None)
        if method is not None:
            return method(s)
        return [self.children(s)]

    def stmts(self, body: list[k.Stmt]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for s in body:
            out.extend(self.stmt(s))
        return out

    def children(self, node: Any) -> Any:
        """A copy of ``node`` with its expression and statement children rewritten."""
        new = copy.copy(node)
        for name in _fields(type(node)):
            v = getattr(node, name)
            if isinstance(v, k.Expr):
                setattr(new, name, self.expr(v))
            elif isinstance(v, k.Stmt):  # not used by the IR today; kept total
                (one,) = self.stmt(v)
                setattr(new, name, one)
            elif isinstance(v, list) and v:
                if isinstance(v[0], k.Stmt):
                    setattr(new, name, self.stmts(v))
                elif isinstance(v[0], k.Expr):
                    setattr(new, name, [self.expr(x) for x in v])
        return new


def walk(obj: object):
    """Every kernel IR node inside ``obj`` (statements, expressions, called functions' bodies)."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, (k.Expr, k.Stmt)):
            yield x
            for f in _fields(type(x)):
                v = getattr(x, f)
                if isinstance(v, (list, k.Expr, k.Stmt)):
                    stack.append(v)
                elif isinstance(v, k.KFunction):
                    stack.append(v.body)
