"""A voice pair's fast-loop invariants in module globals: the registers for the state it carries.

Why: a lanes body's fast loop (:mod:`.fastpath`) reads many values it never writes: the
parameters, an oscillator's increment and rotation, a biquad's five coefficients and the values
they were computed for, an envelope's start, slope and length. Each is a value Cranelift keeps
for the whole loop, and with the state the loop carries (phases, filter state, counters) the
SynthMark voice's pair loop holds about forty vectors: x86-64 has sixteen vector registers, so
the register allocator spilled, and every sample stored about 170 vectors to the stack (their
bundles live in stack slots; each definition stores). Here each such local lives in a global of
the module instead, everywhere in the function: a read is ``global.get`` (in the fast loop a load
folded into its use), a write ``global.set``. No value of those locals is then live across the
loop, so the carried state and the sample's temporaries get the registers.

Only where the loop reads more such locals than :data:`READ_ONLY_VALUES` (the 64-voice body
and the polysynth's voice are left alone). The function runs one pair at a time (segments run one after another),
so one global per local serves every call; each global is named after the function. The same
values flow as before, through memory instead of registers: bit for bit the same.
"""

from __future__ import annotations

from dataclasses import replace

from .. import kernel as k
from ..kernel import T
from .liveness import _Unknown, _uses

READ_ONLY_VALUES = 32
"""A fast loop that only reads more vector/f64 locals than this (twice x86-64's 16 vector
registers) gets them moved to globals: then the allocator cannot hold even those, and spills
the carried state for them. Measured (Dec 2026, one process, alternated, 60 runs each): the
SynthMark voice's pair loop (37 such locals) 29.3 / 31.2 / 34.4 ns per voice-sample (min, p25,
median) against 31.2 / 33.1 / 36.4 without; the polysynth's (28) ran about 6 % slower with
them moved (40.3x against 42.8x median), so it keeps them."""

_VALUE_TYPES = (T.V128, T.F64)


def _find(stmts: list[k.Stmt], label: str) -> k.Loop | None:
    for s in stmts:
        t = type(s)
        if t is k.Loop and s.label == label:  # type: ignore[attr-defined]
            return s  # type: ignore[return-value]
        if t in (k.Block, k.Loop):
            got = _find(s.body, label)  # type: ignore[attr-defined]
            if got is not None:
                return got
        elif t is k.If:
            got = _find(s.body, label) or _find(s.orelse, label)  # type: ignore[attr-defined]
            if got is not None:
                return got
    return None


def _scan(stmts: list[k.Stmt], reads: set[str], writes: set[str]) -> None:
    """Locals read and written anywhere in ``stmts``; :class:`_Unknown` for what it cannot see."""
    for s in stmts:
        t = type(s)
        if t is k.SetLocal:
            _uses(s.value, reads)  # type: ignore[attr-defined]
            writes.add(s.name)  # type: ignore[attr-defined]
        elif t is k.Store:
            _uses(s.addr, reads)  # type: ignore[attr-defined]
            _uses(s.value, reads)  # type: ignore[attr-defined]
        elif t is k.Invoke:
            for a in s.args:  # type: ignore[attr-defined]
                _uses(a, reads)
            writes.update(s.targets)  # type: ignore[attr-defined]
        elif t is k.If:
            _uses(s.cond, reads)  # type: ignore[attr-defined]
            _scan(s.body, reads, writes)  # type: ignore[attr-defined]
            _scan(s.orelse, reads, writes)  # type: ignore[attr-defined]
        elif t in (k.Block, k.Loop):
            if t is k.Loop and s.cond is not None:  # type: ignore[attr-defined]
                _uses(s.cond, reads)  # type: ignore[attr-defined]
            _scan(s.body, reads, writes)  # type: ignore[attr-defined]
        elif t is k.Exit:
            if s.cond is not None:  # type: ignore[attr-defined]
                _uses(s.cond, reads)  # type: ignore[attr-defined]
        elif t is k.Trap:
            if s.node is not None:  # type: ignore[attr-defined]
                _uses(s.node, reads)  # type: ignore[attr-defined]
        elif t is k.ReturnValues:
            for v in s.values:  # type: ignore[attr-defined]
                _uses(v, reads)
        elif t in (k.Next, k.Unreachable):
            pass
        else:
            raise _Unknown(t.__name__)


class _Rewrite:
    def __init__(self, names: dict[str, str], types: dict[str, T]) -> None:
        self.names = names
        self.types = types

    def expr(self, e: k.Expr) -> k.Expr:
        t = type(e)
        if t is k.Local:
            g = self.names.get(e.name)  # type: ignore[attr-defined]
            return e if g is None else k.GetGlobal(e.type, g)
        if t is k.Const or t is k.GetGlobal:
            return e
        if t is k.Prim:
            return replace(e, args=[self.expr(a) for a in e.args])  # type: ignore[attr-defined]
        if t is k.Choose:
            return replace(e, cond=self.expr(e.cond), a=self.expr(e.a), b=self.expr(e.b))  # type: ignore[attr-defined]
        if t is k.Load:
            return replace(e, addr=self.expr(e.addr))  # type: ignore[attr-defined]
        if t is k.CallFn:
            return replace(e, args=[self.expr(a) for a in e.args])  # type: ignore[attr-defined]
        raise _Unknown(t.__name__)

    def stmts(self, stmts: list[k.Stmt]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for s in stmts:
            out.extend(self.stmt(s))
        return out

    def stmt(self, s: k.Stmt) -> list[k.Stmt]:  # noqa: C901 - one dispatch
        t = type(s)
        x = self.expr
        if t is k.SetLocal:
            g = self.names.get(s.name)  # type: ignore[attr-defined]
            if g is not None:
                return [k.SetGlobal(site=s.site, name=g, value=x(s.value))]  # type: ignore[attr-defined]
            return [replace(s, value=x(s.value))]  # type: ignore[attr-defined]
        if t is k.Store:
            return [replace(s, addr=x(s.addr), value=x(s.value))]  # type: ignore[attr-defined]
        if t is k.Invoke:
            out: list[k.Stmt] = [replace(s, args=[x(a) for a in s.args])]  # type: ignore[attr-defined]
            for name in s.targets:  # type: ignore[attr-defined]
                g = self.names.get(name)
                if g is not None:  # the result lands in the local, then goes to its global
                    out.append(k.SetGlobal(name=g, value=k.Local(self.types[name], name)))
            return out
        if t is k.If:
            return [replace(s, cond=x(s.cond), body=self.stmts(s.body), orelse=self.stmts(s.orelse))]  # type: ignore[attr-defined]
        if t is k.Block:
            return [replace(s, body=self.stmts(s.body))]  # type: ignore[attr-defined]
        if t is k.Loop:
            cond = None if s.cond is None else x(s.cond)  # type: ignore[attr-defined]
            return [replace(s, cond=cond, body=self.stmts(s.body))]  # type: ignore[attr-defined]
        if t is k.Exit:
            cond = None if s.cond is None else x(s.cond)  # type: ignore[attr-defined]
            return [replace(s, cond=cond)]  # type: ignore[attr-defined]
        if t is k.Trap:
            node = None if s.node is None else x(s.node)  # type: ignore[attr-defined]
            return [replace(s, node=node)]  # type: ignore[attr-defined]
        if t is k.ReturnValues:
            return [replace(s, values=[x(v) for v in s.values])]  # type: ignore[attr-defined]
        if t in (k.Next, k.Unreachable):
            return [s]
        raise _Unknown(t.__name__)


def invariants_in_globals(fn: k.Function) -> tuple[k.Function, list[k.Global]]:
    """``fn`` with its fast loop's read-only vector and f64 locals in globals (see the module
    docstring), and those globals; ``fn`` itself and none where there is no fast loop, it fits
    the registers, or the function holds what the rewrite does not know."""
    loop = _find(fn.body, "_fast")
    if loop is None:
        return fn, []
    types = {**dict(fn.params), **fn.locals}
    try:
        reads: set[str] = set()
        writes: set[str] = set()
        _scan(loop.body, reads, writes)
    except _Unknown:
        return fn, []
    values = {n for n in reads | writes if types.get(n) in _VALUE_TYPES}
    params = {p for p, _ in fn.params}
    moved = sorted(n for n in values - writes if n not in params)
    if len(moved) <= READ_ONLY_VALUES:
        return fn, []
    names = {n: f"{fn.name}.{n}" for n in moved}
    try:
        body = _Rewrite(names, types).stmts(fn.body)
    except _Unknown:
        return fn, []
    locals_ = dict(fn.locals)
    for n in moved:
        locals_.pop(n, None)
    # a moved local an Invoke sets stays a local too (the call's target, then its global)
    kept: set[str] = set()
    _scan_targets(body, kept)
    for n in moved:  # in ``moved``'s (sorted) order: the module's text must not depend on the hash seed
        if n in kept:
            locals_[n] = types[n]
    zero = {T.V128: bytes(16), T.F64: 0.0}
    globals_ = [k.Global(names[n], types[n], zero[types[n]]) for n in moved]
    return k.Function(fn.name, fn.params, fn.results, locals_, body, fn.export), globals_


def _scan_targets(stmts: list[k.Stmt], out: set[str]) -> None:
    for s in stmts:
        t = type(s)
        if t is k.Invoke:
            out.update(s.targets)  # type: ignore[attr-defined]
        elif t is k.If:
            _scan_targets(s.body, out)  # type: ignore[attr-defined]
            _scan_targets(s.orelse, out)  # type: ignore[attr-defined]
        elif t in (k.Block, k.Loop):
            _scan_targets(s.body, out)  # type: ignore[attr-defined]
