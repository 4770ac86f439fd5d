"""Python semantics: high-level operators to primitive operations and explicit traps.

What CPython means, on 64-bit ints and IEEE doubles: ``+ - * // % ** << >>`` on ints check for
overflow (compiled ints are 64-bit: beyond that, OverflowError instead of a silent wrap), ``//``
floors and ``%`` takes the divisor's sign, dividing by zero raises, an int compared with a float
is compared exactly (not by rounding the int), ``int(x)`` of NaN, an infinity or a float beyond
the 64-bit range raises, an int beyond 2**53 used as a float raises INEXACT_INT (compiled code
refuses to round it silently), and the math library's errors (domain, range) trap with the site
noted before the call. Each check is a ``Trap(code, where=TrapSite)``; the site of a check is
its own (see :class:`~..kernel.TrapSite`).
"""

from __future__ import annotations

import math
import operator

from .. import kernel as k
from .. import wasm_math
from ..frontend.errors import JitError
from ..kernel import T
from ..layout import NODE, TRAP_CODE, TRAP_SITE
from ..ops import Op
from ..traps import ASSERTION, INDEX, INEXACT_INT, MATH, POW_OVERFLOW
from . import runtime
from .context import Unit, Variant
from .inline import expand
from .inline import math_call as call_library
from .runtime import Builder, f64, i32, i64, if_, p, seq, setl
from .walk import Rewriter

F, L, W, B = T.F64, T.I64, T.I32, T.BOOL


def _small_power_of_two(v: float) -> bool:
    if not (v > 0 and math.isfinite(v)):
        return False
    mantissa, exponent = math.frexp(v)
    # b >= 1 only: x * (1 / b) then never overflows
    return mantissa == 0.5 and 1 <= exponent < 60


_F_ARITH = {"+": Op.F64_ADD, "-": Op.F64_SUB, "*": Op.F64_MUL}
_B_LOGIC = {"&": Op.BOOL_AND, "|": Op.BOOL_OR, "^": Op.BOOL_XOR}
_I_BITS = {"&": Op.I64_AND, "|": Op.I64_OR, "^": Op.I64_XOR}
_F_CMP = {"<": Op.F64_LT, "<=": Op.F64_LE, ">": Op.F64_GT, ">=": Op.F64_GE, "==": Op.F64_EQ, "!=": Op.F64_NE}
_I_CMP = {
    "<": Op.I64_LT_S,
    "<=": Op.I64_LE_S,
    ">": Op.I64_GT_S,
    ">=": Op.I64_GE_S,
    "==": Op.I64_EQ,
    "!=": Op.I64_NE,
}
_W_CMP = {
    "<": Op.I32_LT_S,
    "<=": Op.I32_LE_S,
    ">": Op.I32_GT_S,
    ">=": Op.I32_GE_S,
    "==": Op.I32_EQ,
    "!=": Op.I32_NE,
}
_FOLD = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_ROUND = {"floor": Op.F64_FLOOR, "ceil": Op.F64_CEIL, "trunc": Op.F64_TRUNC, "round": Op.F64_NEAREST}
_CHECKED = {
    "+": Builder.i_add,
    "-": Builder.i_sub,
    "*": Builder.i_mul,
    "//": Builder.i_floordiv,
    "%": Builder.i_mod,
    "**": Builder.i_pow,
    "<<": Builder.i_shl,
    ">>": Builder.i_shr,
}


def _positive(e: k.Expr) -> bool:
    """Whether float ``e`` is > 0 or NaN whatever its operands: a positive constant, ``max`` with a
    positive operand (Python's ``max(a, b)`` is ``b if b > a else a``: the positive one, something
    larger, or a NaN first operand), or a constant >= 1 times such a value (no underflow)."""
    if isinstance(e, k.Const):
        return isinstance(e.value, float | int) and not isinstance(e.value, bool) and e.value > 0
    operands = _max_operands(e)
    if operands is not None:
        return _positive(operands[0]) or _positive(operands[1])
    if isinstance(e, k.Binary) and e.op == "*":
        for c, x in ((e.left, e.right), (e.right, e.left)):
            if isinstance(c, k.Const) and isinstance(c.value, float) and c.value >= 1.0 and _positive(x):
                return True
    return False


def _max_operands(e: k.Expr) -> tuple[k.Expr, k.Expr] | None:
    """(a, b) when ``e`` is ``max(a, b)`` as the frontend lowers it (builtins._min_max, its Lets
    already sequences here): ``t1 = a; t2 = b; t2 if t2 > t1 else t1``; else None."""
    if not (isinstance(e, k.Seq) and len(e.body) == 1 and isinstance(e.value, k.Seq)):
        return None
    inner = e.value
    first, second, pick = e.body[0], inner.body[0] if len(inner.body) == 1 else None, inner.value
    if not (isinstance(first, k.SetLocal) and isinstance(second, k.SetLocal) and isinstance(pick, k.Select)):
        return None
    a, b = k.Local(first.value.type, first.name), k.Local(second.value.type, second.name)
    cond = pick.cond
    if (
        isinstance(cond, k.Prim)
        and cond.op == Op.F64_GT
        and cond.args == [b, a]
        and pick.then == b
        and pick.orelse == a
    ):
        return first.value, second.value
    return None


def _never_zero(e: k.Expr) -> bool:
    """Whether a float divisor can never be zero, so that ``/`` needs no ZeroDivisionError check
    (which would keep a voice-lane arm from running packed): a non-zero constant or a
    :func:`_positive` expression."""
    if isinstance(e, k.Const):
        return float(e.value) != 0.0
    return _positive(e)


class PySemantics(Rewriter):
    """Rewrites one unit's operators (Attr, Input, arrays and loops are left to :mod:`.bind`)."""

    in_place = True  # it runs on the inliner's output, which no one else holds

    def __init__(self, v: Variant, unit: Unit) -> None:
        self.v = v
        self.unit = unit
        self.b = Builder(v, unit)

    def stmt(self, s: k.Stmt) -> list[k.Stmt]:
        self.v.last_site = s.site
        return super().stmt(s)

    def site(self, site: k.Site | None, detail: str = "") -> k.TrapSite:
        return self.v.site(site, detail)

    # ------------------------------------------------------------------ statements
    def s_Raise(self, s: k.Raise) -> list[k.Stmt]:
        return [self.v.trap(ASSERTION, self.site(s.site, s.message))]

    # ------------------------------------------------------------------ expressions
    def x_Unary(self, e: k.Unary) -> k.Expr:
        v = self.expr(e.operand)
        if e.op == "not":
            return p(Op.BOOL_NOT, v)
        if e.op == "neg":
            if e.type == F:
                return p(Op.F64_NEG, v)
            return self.b.i_neg(v, self.site(e.site))
        if e.op == "abs":
            return self.b.i_abs(v, self.site(e.site))
        if e.op == "invert":
            return p(Op.I64_XOR, v, i64(-1))
        raise JitError(f"internal: unary {e.op}", e.site)

    def x_Binary(self, e: k.Binary) -> k.Expr:
        a, b = self.expr(e.left), self.expr(e.right)
        op = e.op
        if e.type == F:
            if op in _F_ARITH:
                return p(_F_ARITH[op], a, b)
            if op == "sq":
                return self.square(a, e.site)
            if op == "/":
                if _never_zero(e.right):
                    return p(Op.F64_DIV, a, b)
                return self.b.f_div(a, b, self.site(e.site))
            if op == "%" and isinstance(e.right, k.Const) and _small_power_of_two(float(e.right.value)):
                return self.mod_power_of_two(a, float(e.right.value))
            if op in ("%", "//"):
                return self.math_call("pymod" if op == "%" else "pyfloordiv", [a, b], e.site)
        if e.type == B:
            return p(_B_LOGIC[op], a, b)
        if op in _CHECKED:
            return _CHECKED[op](self.b, a, b, self.site(e.site))
        return p(_I_BITS[op], a, b)

    def square(self, a: k.Expr, site: k.Site) -> k.Expr:
        """``x ** 2`` as ``x * x``, with pow's OverflowError when a finite x overflows."""
        x, r = self.b.tmp("_sqx", F), self.b.tmp("_sqr", F)
        ts = self.site(site, "x ** 2")
        inf = f64(math.inf)
        overflow = p(Op.BOOL_AND, p(Op.F64_EQ, p(Op.F64_ABS, r), inf), p(Op.F64_NE, p(Op.F64_ABS, x), inf))
        return seq(
            [setl(x, a), setl(r, p(Op.F64_MUL, x, x)), if_(overflow, [self.v.trap(POW_OVERFLOW, ts)])], r
        )

    def mod_power_of_two(self, a: k.Expr, divisor: float) -> k.Expr:
        """``x % 2**k``: x - b*trunc(x/b) is exact (scaling by a power of two and taking the
        integer part are), which is C's fmod; Python then adds b to a negative result."""
        m = self.b.tmp("_mod", F)
        b = f64(divisor)
        reduced = p(Op.F64_SUB, m, p(Op.F64_MUL, b, p(Op.F64_TRUNC, p(Op.F64_MUL, m, f64(1.0 / divisor)))))
        return seq(
            [setl(m, a), setl(m, reduced)],
            k.Select(F, p(Op.F64_LT, m, f64(0.0)), p(Op.F64_ADD, m, b), m),
        )

    def x_Compare(self, e: k.Compare) -> k.Expr:
        left_int = isinstance(e.left, k.Convert) and e.left.mode == "exact"
        right_int = isinstance(e.right, k.Convert) and e.right.mode == "exact"
        if left_int != right_int:
            # int against float: compared exactly, as Python does (not by rounding the int)
            op = e.op
            if left_int:
                i, f = e.left.operand, e.right  # type: ignore[union-attr]
            else:
                i, f = e.right.operand, e.left  # type: ignore[union-attr]
                op = _MIRROR[op]
            r = expand(runtime.INLINE, "cmp_if", [self.expr(i), self.expr(f)], self.unit, self.v.fresh(""))
            return {
                "<": lambda: p(Op.I32_EQ, r, i32(-1)),
                "<=": lambda: p(Op.I32_LE_S, r, i32(0)),
                ">": lambda: p(Op.I32_EQ, r, i32(1)),
                ">=": lambda: p(Op.I32_LE_U, r, i32(1)),
                "==": lambda: p(Op.I32_EQZ, r),
                "!=": lambda: p(Op.I32_NE, r, i32(0)),
            }[op]()
        a, b = self.expr(e.left), self.expr(e.right)
        t = e.left.type
        if t == F and isinstance(a, k.Const) and isinstance(b, k.Const):
            # two constants (``self.pm != 0.0`` where pm is unconnected): the answer, so that no
            # compare and branch is left for the backend to fold (Cranelift keeps float compares)
            return k.Const(B, _FOLD[e.op](float(a.value), float(b.value)))  # type: ignore[arg-type]
        table = _F_CMP if t == F else _I_CMP if t == L else _W_CMP
        return p(table[e.op], a, b)

    def x_Convert(self, e: k.Convert) -> k.Expr:
        src, dst = e.operand.type, e.type
        if dst == F and e.mode == "exact":
            x = self.b.tmp("_exact", L)
            ts = self.site(e.site)
            beyond = p(Op.I64_GT_U, p(Op.I64_ADD, x, i64(2**53)), i64(2**54))
            return seq(
                [setl(x, self.expr(e.operand)), if_(beyond, [self.v.trap(INEXACT_INT, ts)])],
                p(Op.F64_CONVERT_I64_S, x),
            )
        if dst == F:
            inner = e.operand
            if isinstance(inner, k.Convert) and inner.operand.type == F and inner.mode in _ROUND:
                # float(math.floor(x)) and friends: the rounded float itself, exact for any size
                # (Python's int is unbounded); only NaN and infinities raise, as in Python.
                x = self.b.tmp("_rnd", F)
                ts = self.site(inner.site)
                # + 0.0: an int has no sign of zero, so float(round(-0.3)) is 0.0, not -0.0
                rounded = p(Op.F64_ADD, p(_ROUND[inner.mode], self.expr(inner.operand)), f64(0.0))
                not_finite = p(Op.F64_NE, p(Op.F64_SUB, x, x), f64(0.0))
                return seq([setl(x, rounded), if_(not_finite, self.b.trap_not_finite(x, ts))], x)
            v = self.expr(e.operand)
            return p(Op.F64_CONVERT_I64_S, v) if src == L else p(Op.F64_CONVERT_I32_U, v)
        v = self.expr(e.operand)
        if dst == L and src == B:
            return p(Op.I64_EXTEND_I32_U, v)
        if dst == L and src == F:
            if e.mode in _ROUND and e.mode != "trunc":
                v = p(_ROUND[e.mode], v)
            elif e.mode not in ("trunc", "plain"):
                raise KeyError(e.mode)
            return self.b.f_to_int(v, self.site(e.site))
        raise JitError(f"internal: conversion {src} -> {dst}", e.site)

    def x_MathCall(self, e: k.MathCall) -> k.Expr:
        args = [self.expr(a) for a in e.args]
        if e.func == "fabs":
            return p(Op.F64_ABS, args[0])
        if e.func == "copysign":
            return p(Op.F64_COPYSIGN, args[0], args[1])
        return self.math_call(e.func, args, e.site)

    def math_call(self, name: str, args: list[k.Expr], site: k.Site) -> k.Expr:
        """A call of the math library. One that can trap notes its site (and the MATH code) after
        its arguments are evaluated (an argument's own trap keeps its site), before the call: the
        library has no site table of its own."""
        fn = wasm_math.FUNCTIONS[name]
        (rtype,) = fn.function.results
        if not fn.can_trap:
            return call_library(self.v, self.unit, k.CallFn(rtype, fn.wasm_name, args))
        # the arguments evaluated first (into locals), then the site noted, then the call
        pre: list[k.Stmt] = []
        temps = [self.b.once("_marg", a, a.type, pre) for a in args]
        ts = self.site(site, f"math.{name}")
        note = [
            k.Store(type=W, addr=i32(NODE), offset=0, value=k.Local(W, "nb")),
            k.Store(type=W, addr=i32(TRAP_SITE), offset=0, value=i32(self.v.site_id(ts))),
            k.Store(type=W, addr=i32(TRAP_CODE), offset=0, value=i32(MATH)),
        ]
        return seq([*pre, *note], call_library(self.v, self.unit, k.CallFn(rtype, fn.wasm_name, temps)))

    def x_ConstTable(self, e: k.ConstTable) -> k.Expr:
        """An element of a constant tuple: Python's negative indices, a bounds check, then a
        chain of selects (the tables are small; the values are immediates, no memory)."""
        n = len(e.values)
        ts = self.site(e.site, f"a constant tuple of {n} numbers")
        ix = self.b.tmp("_tix", L)
        chain: k.Expr = k.Const(e.type, e.values[n - 1])
        for j in range(n - 2, -1, -1):
            chain = k.Choose(e.type, p(Op.I64_EQ, ix, i64(j)), k.Const(e.type, e.values[j]), chain)
        return seq(
            [
                setl(ix, self.expr(e.index)),
                if_(p(Op.I64_LT_S, ix, i64(0)), [setl(ix, p(Op.I64_ADD, ix, i64(n)))]),
                if_(p(Op.I64_GE_U, ix, i64(n)), [self.v.trap(INDEX, ts)]),
            ],
            chain,
        )


def lower(v: Variant, unit: Unit, body: list[k.Stmt]) -> list[k.Stmt]:
    return PySemantics(v, unit).stmts(body)
