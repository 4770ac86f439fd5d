"""Exits of a fast sample loop that it never needs to test inside: loop-invariant tests and
countdowns, decided once before each run of the loop instead (loop unswitching).

Why: the fast loop of :mod:`.fastpath` leaves for the full body at the first rare ``if`` whose
condition holds. Any such way out, even one never taken, makes Cranelift keep the loop's values
on the stack around it: on the 64-voice pair body, the loop without any exit ran at 112x real
time, with one (the phase test) at 76x. Most of these conditions cannot change while the fast
loop runs: a ramp (``ramps``, a parameter), a biquad's coefficient test (its parameters against
the values it last computed them for: both set only in rare arms), an oscillator's "new
frequency" test. The one that does, an oscillator's resynchronisation countdown
(``_left <= 0`` with ``_left = _left - 1.0`` each sample), fires at a sample known in advance.

An exit's condition is split into disjuncts (``a or b``, ``any_true(a | b)``,
``bitmask(a | b) != 0``), each read through the locals the loop body set before it in the same
sample (a local's last top-level assignment, if nothing it reads was written since). The exit
leaves the fast loop when every disjunct is either

* **invariant**: it reads only locals the fast loop never writes, so its value is the same at
  every sample of a run; it is tested before the run, or
* **a countdown** ``L <= 0.0`` (per lane for a vector), where the fast loop's only write of ``L``
  is ``L = L - 1.0``: from ``L0`` at the run's start the test holds first ``ceil(L0)`` samples
  later (one sooner when the test reads ``L`` after the step). Each step is exact while
  ``L >= 1`` (and ``L0 < 2**53``), so the values tested are ``L0 - m`` exactly; a NaN, or
  anything not understood, gives a run of no samples.

Before each run the invariant tests send the sample to the full body, and the run is cut to the
countdowns' least trip count (and the block's end): the loop's ``i >= n`` becomes
``i >= stop``. Where a run stops, the sample runs the full body, which tests every rare ``if``
again as the loop without the split did: the same statements, in the same order, every sample.

Measured (hence ``SkeletonBuilder.unswitch = False`` by default): on the 64-voice body every
exit goes and 17 % of the instructions with them, but the body ran 5-7 % slower, because with the
full body still reachable (after a run) in the same function Cranelift spills more of the fast
loop's values. The 112x above needs the full body unreachable from the fast loop's function.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .. import kernel as k
from ..ops import Op
from .liveness import _TRAPPING

STOP = "_stop"
"""The local holding the sample at which the current run of the fast loop ends."""

_SIMPLE_STMTS = (k.SetLocal, k.Store, k.Exit, k.Next, k.Invoke, k.If, k.Block, k.Loop, k.Trap, k.Unreachable)
_EXPAND_BUDGET = 400
"""At most this many IR nodes in one exit's condition read through the body's assignments."""


def _writes(s: k.Stmt, out: set[str]) -> bool:
    """Add the locals ``s`` writes (nested statements included) to ``out``; False for a
    statement (or an expression holding statements) this analysis does not know."""
    t = type(s)
    if t not in _SIMPLE_STMTS:
        return False
    if t is k.SetLocal:
        out.add(s.name)  # type: ignore[attr-defined]
    elif t is k.Invoke:
        out.update(s.targets)  # type: ignore[attr-defined]
    elif t is k.If:
        return all(_writes(x, out) for x in (*s.body, *s.orelse))  # type: ignore[attr-defined]
    elif t is k.Block or t is k.Loop:
        return all(_writes(x, out) for x in s.body)  # type: ignore[attr-defined]
    return True


def _simple(e: k.Expr) -> bool:
    """Whether ``e`` is locals, constants and non-trapping primitive ops only: safe to evaluate
    anywhere, its value fixed by the locals it reads."""
    t = type(e)
    if t is k.Local or t is k.Const:
        return True
    if t is k.Prim:
        return e.op not in _TRAPPING and all(_simple(a) for a in e.args)  # type: ignore[attr-defined]
    if t is k.Choose:
        return _simple(e.cond) and _simple(e.a) and _simple(e.b)  # type: ignore[attr-defined]
    return False


def _locals(e: k.Expr, out: set[str]) -> set[str]:
    t = type(e)
    if t is k.Local:
        out.add(e.name)  # type: ignore[attr-defined]
    elif t is k.Prim:
        for a in e.args:  # type: ignore[attr-defined]
            _locals(a, out)
    elif t is k.Choose:
        _locals(e.cond, out)  # type: ignore[attr-defined]
        _locals(e.a, out)  # type: ignore[attr-defined]
        _locals(e.b, out)  # type: ignore[attr-defined]
    return out


def _size(e: k.Expr) -> int:
    t = type(e)
    if t is k.Prim:
        return 1 + sum(_size(a) for a in e.args)  # type: ignore[attr-defined]
    if t is k.Choose:
        return 1 + _size(e.cond) + _size(e.a) + _size(e.b)  # type: ignore[attr-defined]
    return 1


def _is_const(e: k.Expr, value: float) -> bool:
    """``e`` is the f64 constant ``value`` (0.0 matches -0.0), or a v128 of two such lanes."""
    if type(e) is not k.Const:
        return False
    v = e.value  # type: ignore[attr-defined]
    if e.type is k.T.F64:
        return isinstance(v, float) and v == value
    if e.type is k.T.V128 and isinstance(v, bytes) and len(v) == 16:
        a, b = struct.unpack("<dd", v)
        return a == value and b == value
    return False


def _prim(op: Op, *args: k.Expr) -> k.Prim:
    return k.Prim(op.result, op, list(args))


@dataclass
class Countdown:
    """A local the fast loop counts down by 1.0 a sample, tested against 0.0."""

    name: str
    vector: bool
    after_step: bool  # the test reads this sample's stepped value


class _Body:
    """The fast loop's body: what each of its top-level statements writes."""

    def __init__(self, body: list[k.Stmt]) -> None:
        self.body = body
        self.writes: list[set[str]] = []
        self.known = True
        for s in body:
            w: set[str] = set()
            self.known = _writes(s, w) and self.known
            self.writes.append(w)
        self.ever: set[str] = set().union(*self.writes) if self.writes else set()

    def written(self, names: set[str], lo: int, hi: int) -> bool:
        return any(names & self.writes[p] for p in range(lo, hi))

    def expand(self, e: k.Expr, pos: int, budget: list[int]) -> k.Expr:
        """``e`` as evaluated before statement ``pos``, each local read through the assignment
        that set it earlier in the same iteration, where that gives the same value there."""
        t = type(e)
        if t is k.Local:
            name = e.name  # type: ignore[attr-defined]
            for p in range(pos - 1, -1, -1):
                if name in self.writes[p]:
                    s = self.body[p]
                    if type(s) is not k.SetLocal or not _simple(s.value):  # type: ignore[attr-defined]
                        return e
                    if budget[0] <= 0:
                        return e
                    budget[0] -= _size(s.value)  # type: ignore[attr-defined]
                    value = self.expand(s.value, p, budget)  # type: ignore[attr-defined]
                    if self.written(_locals(value, set()), p, pos):
                        return e
                    return value
            return e
        if t is k.Prim:
            args = [self.expand(a, pos, budget) for a in e.args]  # type: ignore[attr-defined]
            return k.Prim(e.type, e.op, args)  # type: ignore[attr-defined]
        if t is k.Choose:
            return k.Choose(
                e.type,
                self.expand(e.cond, pos, budget),  # type: ignore[attr-defined]
                self.expand(e.a, pos, budget),  # type: ignore[attr-defined]
                self.expand(e.b, pos, budget),  # type: ignore[attr-defined]
            )
        return e

    def countdown(self, e: k.Expr, pos: int) -> Countdown | None:
        """``e`` (a disjunct read at ``pos``) as ``L <= 0.0`` of a countdown ``L``, or None."""
        if type(e) is not k.Prim or e.op not in (Op.F64_LE, Op.F64X2_LE):  # type: ignore[attr-defined]
            return None
        left, right = e.args  # type: ignore[attr-defined]
        if type(left) is not k.Local or not _is_const(right, 0.0):
            return None
        name = left.name
        steps = [p for p, w in enumerate(self.writes) if name in w]
        if len(steps) != 1:
            return None
        s = self.body[steps[0]]
        if type(s) is not k.SetLocal or s.name != name:  # type: ignore[attr-defined]
            return None
        v = s.value  # type: ignore[attr-defined]
        sub = Op.F64X2_SUB if e.op is Op.F64X2_LE else Op.F64_SUB  # type: ignore[attr-defined]
        if not (type(v) is k.Prim and v.op is sub and type(v.args[0]) is k.Local and v.args[0].name == name):
            return None
        if not _is_const(v.args[1], 1.0) or v.args[1].type is not left.type:
            return None
        return Countdown(name, e.op is Op.F64X2_LE, steps[0] < pos)  # type: ignore[attr-defined]


def _disjuncts(e: k.Expr) -> list[tuple[str, k.Expr]]:
    """``e`` (a branch condition: nonzero = taken) as disjuncts: ("int", x) holds when x is
    nonzero, ("any", v) when any bit of vector v is set, ("bits", v) when any lane's sign bit is."""
    t = type(e)
    if t is k.Const and e.type is not k.T.V128 and not isinstance(e.value, bytes):  # type: ignore[attr-defined]
        return [] if not e.value else [("int", e)]  # type: ignore[attr-defined]
    if t is k.Prim:
        op = e.op  # type: ignore[attr-defined]
        args = e.args  # type: ignore[attr-defined]
        if op is Op.I32_OR:
            return _disjuncts(args[0]) + _disjuncts(args[1])
        if op is Op.V128_ANY_TRUE:
            return [("any", v) for v in _vector_disjuncts(args[0])]
        if op is Op.I64X2_BITMASK:
            return [("bits", v) for v in _vector_disjuncts(args[0])]
        if op is Op.I32_NE:
            for x, zero in ((args[0], args[1]), (args[1], args[0])):
                if type(zero) is k.Const and zero.value == 0 and zero.type is k.T.I32:  # type: ignore[attr-defined]
                    return _disjuncts(x)
    return [("int", e)]


def _vector_disjuncts(v: k.Expr) -> list[k.Expr]:
    if type(v) is k.Prim and v.op is Op.V128_OR:  # type: ignore[attr-defined]
        return _vector_disjuncts(v.args[0]) + _vector_disjuncts(v.args[1])  # type: ignore[attr-defined]
    return [v]


def _test(kind: str, e: k.Expr) -> k.Expr:
    if kind == "any":
        return _prim(Op.V128_ANY_TRUE, e)
    if kind == "bits":
        return _prim(Op.I32_NE, _prim(Op.I64X2_BITMASK, e), k.Const(k.T.I32, 0))
    return e


@dataclass
class Plan:
    """What replaces a fast loop's removable exits: ``tests`` before each run (any true: no
    run), ``countdowns`` cutting the run short, and the exits' positions in the loop body."""

    tests: list[k.Expr]
    countdowns: list[Countdown]
    removed: set[int]


def plan(fast: list[k.Stmt], exits: list[int], counted: bool) -> Plan:
    """Which of the exits at positions ``exits`` of the fast loop body ``fast`` can leave it;
    ``counted``: the loop's sample counter is of the shape a trip count needs."""
    body = _Body(fast)
    out = Plan([], [], set())
    if not body.known:
        return out
    for pos in exits:
        s = fast[pos]
        assert type(s) is k.Exit and s.cond is not None
        tests: list[k.Expr] = []
        counts: list[Countdown] = []
        for kind, d in _disjuncts(body.expand(s.cond, pos, [_EXPAND_BUDGET])):
            if _simple(d) and not (_locals(d, set()) & body.ever):
                tests.append(_test(kind, d))
                continue
            c = body.countdown(d, pos) if counted else None
            if c is None:
                break
            counts.append(c)
        else:
            out.tests.extend(tests)
            out.countdowns.extend(counts)
            out.removed.add(pos)
    return out


def trips(c: Countdown) -> k.Expr:
    """Samples the fast loop can run before countdown ``c``'s test holds (a float; NaN when
    unknown), from its value at the run's start."""
    L = k.Local(k.T.V128 if c.vector else k.T.F64, c.name)
    if c.vector:
        up = _prim(Op.F64X2_CEIL, L)
        n = _prim(Op.F64_MIN, _prim(Op.F64X2_EXTRACT_LANE0, up), _prim(Op.F64X2_EXTRACT_LANE1, up))
    else:
        n = _prim(Op.F64_CEIL, L)
    return _prim(Op.F64_SUB, n, k.Const(k.T.F64, 1.0)) if c.after_step else n


def counter(fast: list[k.Stmt], label: str) -> tuple[str, str, Op] | None:
    """The fast loop's sample counter ``i``, its end ``n`` and the compare of ``Exit(label, i >= n)``
    when the body starts with that exit, ends with ``i = i + 1`` and writes neither elsewhere."""
    if len(fast) < 2:
        return None
    first, last = fast[0], fast[-1]
    if type(first) is not k.Exit or first.label != label or type(first.cond) is not k.Prim:  # type: ignore[attr-defined]
        return None
    cond = first.cond  # type: ignore[attr-defined]
    if cond.op not in (Op.I32_GE_U, Op.I32_GE_S) or not all(type(a) is k.Local for a in cond.args):
        return None
    i, n = cond.args[0].name, cond.args[1].name
    step = last.value if type(last) is k.SetLocal and last.name == i else None  # type: ignore[attr-defined]
    if not (
        type(step) is k.Prim
        and step.op is Op.I32_ADD
        and type(step.args[0]) is k.Local
        and step.args[0].name == i
        and type(step.args[1]) is k.Const
        and step.args[1].value == 1
    ):
        return None
    for s in fast[:-1]:
        w: set[str] = set()
        if not _writes(s, w) or i in w or n in w:
            return None
    return i, n, cond.op


def stop(i: str, n: str, countdowns: list[Countdown]) -> k.SetLocal:
    """``stop = i + min(trips of every countdown, n - i)`` (no fewer than 0 samples)."""
    left = _prim(Op.F64_CONVERT_I32_S, _prim(Op.I32_SUB, k.Local(k.T.I32, n), k.Local(k.T.I32, i)))
    for c in countdowns:
        left = _prim(Op.F64_MIN, trips(c), left)
    count = _prim(Op.I32_TRUNC_SAT_F64_S, _prim(Op.F64_MAX, left, k.Const(k.T.F64, 0.0)))
    return k.SetLocal(name=STOP, value=_prim(Op.I32_ADD, k.Local(k.T.I32, i), count))
