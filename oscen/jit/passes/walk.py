"""A generic rewriter of kernel IR trees, the base of every pass.

A pass overrides the node types it changes (``x_Binary`` for an expression, ``s_Assign`` for a
statement, which returns a *list* of statements); every other node is copied with its children
rewritten. Input trees are never modified: one lowered method serves several variants (inputs
connected or not, state in locals or in memory), so each pass builds new nodes.
"""

from __future__ import annotations

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
    """Copies a tree, dispatching each node to ``x_<Class>`` / ``s_<Class>`` when defined.

    ``in_place``: rewrite the tree's own nodes instead of copies (for a pass that runs on a tree
    an earlier pass built for it alone: the inliner's output)."""

    in_place = False
    _dispatch: dict[type, Any]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._dispatch = {}

    def _method(self, prefix: str, node_cls: type) -> Any:
        table = type(self)._dispatch
        try:
            return table[node_cls]
        except KeyError:
            method = getattr(type(self), prefix + node_cls.__name__, None)
            table[node_cls] = method
            return method

    def expr(self, e: k.Expr) -> k.Expr:
        cls = type(e)
        method = self._method("x_", cls)
        if method is not None:
            return method(self, e)
        if cls is k.Const:  # a leaf no pass changes: shared, not copied
            return e
        return self.children(e)

    def stmt(self, s: k.Stmt) -> list[k.Stmt]:
        method = self._method("s_", type(s))
        if method is not None:
            return method(self, s)
        return [self.children(s)]

    def stmts(self, body: list[k.Stmt]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for s in body:
            out.extend(self.stmt(s))
        return out

    def children(self, node: Any) -> Any:
        """``node`` (a copy, unless ``in_place``) with its expression and statement children
        rewritten."""
        if self.in_place:
            new = node
        else:
            new = object.__new__(type(node))
            new.__dict__.update(node.__dict__)
        fields = new.__dict__
        for name, v in list(fields.items()):
            if isinstance(v, k.Expr):
                fields[name] = self.expr(v)
            elif type(v) is list and v:
                first = v[0]
                if isinstance(first, k.Stmt):
                    fields[name] = self.stmts(v)
                elif isinstance(first, k.Expr):
                    fields[name] = [self.expr(x) for x in v]
            elif isinstance(v, k.Stmt):  # not used by the IR today; kept total
                (fields[name],) = self.stmt(v)
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
