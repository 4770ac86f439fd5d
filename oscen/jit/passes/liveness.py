"""Dead local stores out of a primitive-level function body (liveness over structured control).

Why: the lanes pass saves every local a masked arm may set before the arm and blends it back
after (``_lane_old*``, ``v128.bitselect``), including arm-local temporaries that no later
statement reads. The save reads the local's value from the *previous* sample, so in the
generated WebAssembly each such temporary becomes a value carried around the sample loop:
Cranelift keeps dozens of v128 values alive across the loop's back edge and spills them. A
store to a local that nothing reads afterwards is dropped here, and with it the loop-carried
read it made. Nothing else changes: the statements kept are the same, in the same order.

The analysis is conservative: a statement or expression it does not know (anything above the
primitive level, ``Seq``, an ``Instance``) leaves the body as it is; a store whose value calls
a function or may trap stays.
"""

from __future__ import annotations

import threading

from .. import kernel as k
from ..ops import Op

_TRAPPING = frozenset(
    {
        Op.I64_DIV_S, Op.I64_DIV_U, Op.I64_REM_S, Op.I64_REM_U,
        Op.I32_DIV_S, Op.I32_DIV_U, Op.I32_REM_S, Op.I32_REM_U,
        Op.I64_TRUNC_F64_S, Op.I32_TRUNC_F64_S,
    }
)  # fmt: skip


class _Unknown(Exception):
    """Something the analysis does not model: the body is left as it is."""


def _uses(e: k.Expr, out: set[str]) -> bool:
    """Add the locals ``e`` reads to ``out``; return whether ``e`` is pure (removable when its
    result is unused: no call, no op that can trap)."""
    t = type(e)
    if t is k.Local:
        out.add(e.name)  # type: ignore[attr-defined]
        return True
    if t is k.Const or t is k.GetGlobal:
        return True
    if t is k.Prim:
        pure = e.op not in _TRAPPING  # type: ignore[attr-defined]
        for a in e.args:  # type: ignore[attr-defined]
            pure = _uses(a, out) and pure
        return pure
    if t is k.Choose:
        a = _uses(e.cond, out)  # type: ignore[attr-defined]
        b = _uses(e.a, out)  # type: ignore[attr-defined]
        return _uses(e.b, out) and a and b  # type: ignore[attr-defined]
    if t is k.Load:
        return _uses(e.addr, out)  # type: ignore[attr-defined]
    if t is k.CallFn:
        for a in e.args:  # type: ignore[attr-defined]
            _uses(a, out)
        return False
    raise _Unknown(t.__name__)


_local = threading.local()
"""``memo``, during one :func:`drop_dead_stores` in this thread (compiles run on several threads):
each expression's locals and purity, by ``id`` (the tree is alive meanwhile; a loop's fixed
point walks its body several times)."""


def _uses_memo(e: k.Expr) -> tuple[frozenset[str], bool]:
    memo: dict[int, tuple[frozenset[str], bool]] | None = getattr(_local, "memo", None)
    got = None if memo is None else memo.get(id(e))
    if got is None:
        used: set[str] = set()
        pure = _uses(e, used)
        got = (frozenset(used), pure)
        if memo is not None:
            memo[id(e)] = got
    return got


def _reads(*exprs: k.Expr | None) -> set[str]:
    out: set[str] = set()
    for e in exprs:
        if e is not None:
            out |= _uses_memo(e)[0]
    return out


class _Labels:
    """Per enclosing Block/Loop label: the locals live where an ``Exit`` goes and, for a loop,
    at its head (where ``Next`` and the end of its body go)."""

    def __init__(self) -> None:
        self.exit: dict[str, frozenset[str]] = {}
        self.head: dict[str, frozenset[str]] = {}


def _body(stmts: list[k.Stmt], live: set[str], env: _Labels, rewrite: bool) -> tuple[list[k.Stmt], set[str]]:
    """The locals live before ``stmts`` given those live after; with ``rewrite``, also the
    statements without the dead stores (else the input list)."""
    kept: list[k.Stmt] = []
    for s in reversed(stmts):
        t = type(s)
        if t is k.SetLocal:
            used, pure = _uses_memo(s.value)  # type: ignore[attr-defined]
            if s.name not in live and pure:  # type: ignore[attr-defined]
                continue
            live.discard(s.name)  # type: ignore[attr-defined]
            live |= used
        elif t is k.Store:
            live |= _reads(s.addr, s.value)  # type: ignore[attr-defined]
        elif t is k.If:
            then, a = _body(s.body, set(live), env, rewrite)  # type: ignore[attr-defined]
            other, b = _body(s.orelse, set(live), env, rewrite)  # type: ignore[attr-defined]
            live = a | b | _reads(s.cond)  # type: ignore[attr-defined]
            if rewrite:
                s = k.If(site=s.site, cond=s.cond, body=then, orelse=other)  # type: ignore[attr-defined]
        elif t is k.Block:
            saved = env.exit.get(s.label)  # type: ignore[attr-defined]
            env.exit[s.label] = frozenset(live)  # type: ignore[attr-defined]
            inner, live = _body(s.body, live, env, rewrite)  # type: ignore[attr-defined]
            _restore(env.exit, s.label, saved)  # type: ignore[attr-defined]
            if rewrite:
                s = k.Block(site=s.site, label=s.label, body=inner)  # type: ignore[attr-defined]
        elif t is k.Loop:
            saved, saved_head = env.exit.get(s.label), env.head.get(s.label)  # type: ignore[attr-defined]
            s, live = _loop(s, live, env, rewrite)  # type: ignore[arg-type]
            _restore(env.exit, s.label, saved)  # type: ignore[attr-defined]
            _restore(env.head, s.label, saved_head)  # type: ignore[attr-defined]
        elif t is k.Exit:
            target = env.exit[s.label]  # type: ignore[attr-defined]
            if s.cond is None:  # type: ignore[attr-defined]
                live = set(target)
            else:
                live |= target | _reads(s.cond)  # type: ignore[attr-defined]
        elif t is k.Next:
            live = set(env.head[s.label])  # type: ignore[attr-defined]
        elif t is k.Invoke:
            live.difference_update(s.targets)  # type: ignore[attr-defined]
            live |= _reads(*s.args)  # type: ignore[attr-defined]
        elif t is k.Trap:
            live |= _reads(s.node)  # type: ignore[attr-defined]
        elif t is k.ReturnValues:
            live = _reads(*s.values)  # type: ignore[attr-defined]
        elif t is k.SetGlobal or t is k.ExprStmt:
            live |= _reads(s.value)  # type: ignore[attr-defined]
        elif t is k.MemCopy:
            live |= _reads(s.dst, s.src, s.nbytes)  # type: ignore[attr-defined]
        elif t is not k.Unreachable:
            raise _Unknown(t.__name__)
        kept.append(s)
    if not rewrite:
        return stmts, live
    kept.reverse()
    return kept, live


def _restore(table: dict[str, frozenset[str]], label: str, saved: frozenset[str] | None) -> None:
    """Labels are reused (every event loop is ``ev``): an inner construct's entry ends with it."""
    if saved is None:
        table.pop(label, None)
    else:
        table[label] = saved


def _loop(s: k.Loop, after: set[str], env: _Labels, rewrite: bool) -> tuple[k.Stmt, set[str]]:
    """A loop: the locals live at its head, to a fixed point (its body's end and ``Next`` go
    back there; a ``cond`` is tested there, and exits to ``after``)."""
    test = _reads(s.cond) | after if s.cond is not None else set()
    head: set[str] = set()
    env.exit[s.label] = frozenset(after)
    while True:
        env.head[s.label] = frozenset(head)
        _, live = _body(s.body, set(head), env, False)
        new = live | test
        if new <= head:
            break
        head |= new
    if not rewrite:
        return s, head
    env.head[s.label] = frozenset(head)
    body, _ = _body(s.body, set(head), env, True)
    return k.Loop(site=s.site, label=s.label, cond=s.cond, body=body), head


def drop_dead_stores(fn: k.Function) -> k.Function:
    """``fn`` without the stores to locals that nothing reads afterwards, and without the locals
    no statement mentions any more; ``fn`` itself where the body holds something the analysis
    does not model."""
    _local.memo = {}
    try:
        body, _ = _body(fn.body, set(), _Labels(), True)
    except _Unknown:
        return fn
    finally:
        _local.memo = None
    mentioned: set[str] = set()
    _mentions(body, mentioned)
    locals_ = {n: t for n, t in fn.locals.items() if n in mentioned}
    return k.Function(fn.name, fn.params, fn.results, locals_, body, fn.export)


def _mentions(stmts: list[k.Stmt], out: set[str]) -> None:
    for s in stmts:
        t = type(s)
        if t is k.SetLocal:
            out.add(s.name)  # type: ignore[attr-defined]
            _uses(s.value, out)  # type: ignore[attr-defined]
        elif t is k.If:
            _uses(s.cond, out)  # type: ignore[attr-defined]
            _mentions(s.body, out)  # type: ignore[attr-defined]
            _mentions(s.orelse, out)  # type: ignore[attr-defined]
        elif t is k.Block or t is k.Loop:
            if t is k.Loop and s.cond is not None:  # type: ignore[attr-defined]
                _uses(s.cond, out)  # type: ignore[attr-defined]
            _mentions(s.body, out)  # type: ignore[attr-defined]
        elif t is k.Invoke:
            out.update(s.targets)  # type: ignore[attr-defined]
            out |= _reads(*s.args)  # type: ignore[attr-defined]
        elif t is k.Store:
            out |= _reads(s.addr, s.value)  # type: ignore[attr-defined]
        elif t is k.Exit:
            out |= _reads(s.cond)  # type: ignore[attr-defined]
        elif t is k.Trap:
            out |= _reads(s.node)  # type: ignore[attr-defined]
        elif t is k.ReturnValues:
            out |= _reads(*s.values)  # type: ignore[attr-defined]
        elif t is k.SetGlobal or t is k.ExprStmt:
            out |= _reads(s.value)  # type: ignore[attr-defined]
        elif t is k.MemCopy:
            out |= _reads(s.dst, s.src, s.nbytes)  # type: ignore[attr-defined]
