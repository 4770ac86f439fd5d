"""The runtime helpers of node code, as kernel IR built in Python.

Python's integer operations with their overflow checks, floor division and modulo, float
division by zero, float-to-int conversion: each is a small piece of primitive IR expanded in
place where it is used (a call in the sample loop costs more than its body, see
:mod:`.inline`). Each builder takes its operands as expressions and the :class:`TrapSite` of the
operation, evaluates each operand once, and returns an expression. ``cmp_if`` (Python's exact
int-vs-float comparison) is a :class:`~..kernel.Function`, expanded by :func:`.inline.expand`;
``trap`` is what ``Trap(via="trap")`` calls (:func:`trap_function`).
"""

from __future__ import annotations

from collections.abc import Callable

from .. import kernel as k
from ..kernel import T
from ..layout import NODE, TRAP_CODE, TRAP_SITE
from ..ops import Op
from ..traps import FLOAT_TOO_BIG, FLOAT_ZERO_DIV, INF_TO_INT, INT_ZERO_DIV, NAN_TO_INT, NEG_SHIFT, OVERFLOW
from .context import Unit, Variant

F, L, W, B = T.F64, T.I64, T.I32, T.BOOL
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1


def p(op: Op, *args: k.Expr) -> k.Prim:
    return k.Prim(op.result, op, list(args))


def i64(v: int) -> k.Const:
    return k.Const(L, v)


def f64(v: float) -> k.Const:
    return k.Const(F, float(v))


def i32(v: int) -> k.Const:
    return k.Const(W, v)


def seq(body: list[k.Stmt], value: k.Expr) -> k.Seq:
    """Run ``body``, then yield ``value``."""
    return k.Seq(value.type, body, value)


def if_(cond: k.Expr, then: list[k.Stmt], orelse: list[k.Stmt] | None = None) -> k.If:
    return k.If(k.NOSITE, cond, then, orelse or [])


def setl(loc: k.Local, value: k.Expr) -> k.SetLocal:
    return k.SetLocal(name=loc.name, value=value)


class Builder:
    """Fresh locals and traps for the builders, in one unit of one variant."""

    def __init__(self, v: Variant, unit: Unit) -> None:
        self.v = v
        self.unit = unit

    def tmp(self, base: str, t: T) -> k.Local:
        return self.unit.local(self.v.fresh(base), t)

    def trap(self, code: int, ts: k.TrapSite) -> k.Trap:
        return self.v.trap(code, ts)

    def once(self, base: str, e: k.Expr, t: T, out: list[k.Stmt]) -> k.Expr:
        """``e`` evaluated once: itself if a constant or a local, else a temporary set in ``out``."""
        if isinstance(e, (k.Const, k.Local)):
            return e
        loc = self.tmp(base, t)
        out.append(setl(loc, e))
        return loc

    def block(
        self, base: str, t: T, build: Callable[[k.Local, str], list[k.Stmt]], pre: list[k.Stmt]
    ) -> k.Expr:
        """A body with early returns: ``build(result local, label)`` gives statements that set the
        result and ``Exit(label)``; the expression yields the result."""
        r = self.tmp(base, t)
        label = self.v.fresh("_done")
        return seq([*pre, k.Block(label=label, body=build(r, label))], r)

    # ------------------------------------------------------------------ integers
    def i_add(self, a: k.Expr, b: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a, b = self.once("_a", a, L, pre), self.once("_b", b, L, pre)
        r = self.tmp("_r", L)
        if isinstance(b, k.Const) and isinstance(a, k.Local) and b.value != 0:
            # a constant step (``index + 1``): one compare of the operand with the limit it
            # may reach, instead of the sign test of the sum (a shorter chain: two xors, an and)
            c = int(b.value)
            overflow = p(Op.I64_GT_S, a, i64(I64_MAX - c)) if c > 0 else p(Op.I64_LT_S, a, i64(I64_MIN - c))
        else:
            overflow = p(Op.I64_LT_S, p(Op.I64_AND, p(Op.I64_XOR, a, r), p(Op.I64_XOR, b, r)), i64(0))
        return seq([*pre, setl(r, p(Op.I64_ADD, a, b)), if_(overflow, [self.trap(OVERFLOW, ts)])], r)

    def i_sub(self, a: k.Expr, b: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a, b = self.once("_a", a, L, pre), self.once("_b", b, L, pre)
        r = self.tmp("_r", L)
        if isinstance(b, k.Const) and isinstance(a, k.Local) and b.value != 0:  # ``count - 1``
            c = int(b.value)
            overflow = p(Op.I64_LT_S, a, i64(I64_MIN + c)) if c > 0 else p(Op.I64_GT_S, a, i64(I64_MAX + c))
        else:
            overflow = p(Op.I64_LT_S, p(Op.I64_AND, p(Op.I64_XOR, a, b), p(Op.I64_XOR, a, r)), i64(0))
        return seq([*pre, setl(r, p(Op.I64_SUB, a, b)), if_(overflow, [self.trap(OVERFLOW, ts)])], r)

    def i_mul(self, a: k.Expr, b: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a, b = self.once("_a", a, L, pre), self.once("_b", b, L, pre)

        def body(r: k.Local, done: str) -> list[k.Stmt]:
            return [
                if_(p(Op.I64_EQZ, a), [setl(r, i64(0)), k.Exit(label=done)]),
                if_(
                    p(Op.I64_EQ, a, i64(-1)),
                    [
                        if_(p(Op.I64_EQ, b, i64(I64_MIN)), [self.trap(OVERFLOW, ts)]),
                        setl(r, p(Op.I64_SUB, i64(0), b)),
                        k.Exit(label=done),
                    ],
                ),
                setl(r, p(Op.I64_MUL, a, b)),
                if_(p(Op.I64_NE, p(Op.I64_DIV_S, r, a), b), [self.trap(OVERFLOW, ts)]),
            ]

        return self.block("_r", L, body, pre)

    def i_neg(self, a: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a = self.once("_a", a, L, pre)
        return seq(
            [*pre, if_(p(Op.I64_EQ, a, i64(I64_MIN)), [self.trap(OVERFLOW, ts)])], p(Op.I64_SUB, i64(0), a)
        )

    def i_abs(self, a: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a = self.once("_a", a, L, pre)
        r = self.tmp("_r", L)
        return seq([*pre, setl(r, a), if_(p(Op.I64_LT_S, a, i64(0)), [setl(r, self.i_neg(a, ts))])], r)

    def i_floordiv(self, a: k.Expr, b: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a, b = self.once("_a", a, L, pre), self.once("_b", b, L, pre)

        def body(q: k.Local, done: str) -> list[k.Stmt]:
            inexact = p(
                Op.BOOL_AND,
                p(Op.I64_NE, p(Op.I64_REM_S, a, b), i64(0)),
                p(Op.I64_LT_S, p(Op.I64_XOR, a, b), i64(0)),
            )
            return [
                if_(p(Op.I64_EQZ, b), [self.trap(INT_ZERO_DIV, ts)]),
                if_(p(Op.I64_EQ, b, i64(-1)), [setl(q, self.i_neg(a, ts)), k.Exit(label=done)]),
                setl(q, p(Op.I64_DIV_S, a, b)),
                if_(inexact, [setl(q, p(Op.I64_SUB, q, i64(1)))]),
            ]

        return self.block("_q", L, body, pre)

    def i_mod(self, a: k.Expr, b: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a, b = self.once("_a", a, L, pre), self.once("_b", b, L, pre)

        def body(r: k.Local, done: str) -> list[k.Stmt]:
            wrong_sign = p(Op.BOOL_AND, p(Op.I64_NE, r, i64(0)), p(Op.I64_LT_S, p(Op.I64_XOR, r, b), i64(0)))
            return [
                if_(p(Op.I64_EQZ, b), [self.trap(INT_ZERO_DIV, ts)]),
                if_(p(Op.I64_EQ, b, i64(-1)), [setl(r, i64(0)), k.Exit(label=done)]),
                setl(r, p(Op.I64_REM_S, a, b)),
                if_(wrong_sign, [setl(r, p(Op.I64_ADD, r, b))]),
            ]

        return self.block("_r", L, body, pre)

    def i_pow(self, a: k.Expr, e: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a = self.once("_a", a, L, pre)
        n = self.tmp("_e", L)
        r = self.tmp("_r", L)
        loop = k.Loop(
            label=self.v.fresh("_pow"),
            cond=p(Op.I64_NE, n, i64(0)),
            body=[setl(r, self.i_mul(r, a, ts)), setl(n, p(Op.I64_SUB, n, i64(1)))],
        )
        return seq([*pre, setl(n, e), setl(r, i64(1)), loop], r)

    def i_shl(self, a: k.Expr, n: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a, n = self.once("_a", a, L, pre), self.once("_n", n, L, pre)

        def body(r: k.Local, done: str) -> list[k.Stmt]:
            return [
                if_(p(Op.I64_LT_S, n, i64(0)), [self.trap(NEG_SHIFT, ts)]),
                if_(p(Op.I64_EQZ, a), [setl(r, i64(0)), k.Exit(label=done)]),
                if_(p(Op.I64_GE_S, n, i64(64)), [self.trap(OVERFLOW, ts)]),
                setl(r, p(Op.I64_SHL, a, n)),
                if_(p(Op.I64_NE, p(Op.I64_SHR_S, r, n), a), [self.trap(OVERFLOW, ts)]),
            ]

        return self.block("_r", L, body, pre)

    def i_shr(self, a: k.Expr, n: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a, n = self.once("_a", a, L, pre), self.once("_n", n, L, pre)

        def body(r: k.Local, done: str) -> list[k.Stmt]:
            return [
                if_(p(Op.I64_LT_S, n, i64(0)), [self.trap(NEG_SHIFT, ts)]),
                if_(p(Op.I64_GE_S, n, i64(64)), [setl(r, p(Op.I64_SHR_S, a, i64(63))), k.Exit(label=done)]),
                setl(r, p(Op.I64_SHR_S, a, n)),
            ]

        return self.block("_r", L, body, pre)

    # ------------------------------------------------------------------ floats
    def f_div(self, a: k.Expr, b: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        a, b = self.once("_a", a, F, pre), self.once("_b", b, F, pre)
        check = if_(p(Op.F64_EQ, b, f64(0.0)), [self.trap(FLOAT_ZERO_DIV, ts)])
        return seq([*pre, check], p(Op.F64_DIV, a, b))

    def trap_not_finite(self, x: k.Expr, ts: k.TrapSite) -> list[k.Stmt]:
        """The trap of a conversion of NaN or an infinity to int (``x`` is one of them)."""
        return [if_(p(Op.F64_NE, x, x), [self.trap(NAN_TO_INT, ts)]), self.trap(INF_TO_INT, ts)]

    def f_to_int(self, x: k.Expr, ts: k.TrapSite) -> k.Expr:
        pre: list[k.Stmt] = []
        x = self.once("_x", x, F, pre)
        too_big = p(Op.BOOL_OR, p(Op.F64_GE, x, f64(2.0**63)), p(Op.F64_LT, x, f64(-(2.0**63))))
        return seq(
            [
                *pre,
                if_(p(Op.F64_NE, x, x), [self.trap(NAN_TO_INT, ts)]),
                if_(p(Op.F64_EQ, p(Op.F64_ABS, x), f64(float("inf"))), [self.trap(INF_TO_INT, ts)]),
                if_(too_big, [self.trap(FLOAT_TOO_BIG, ts)]),
            ],
            p(Op.I64_TRUNC_F64_S, x),
        )


def _cmp_if() -> k.Function:
    """Python's exact int-vs-float comparison: -1, 0, 1, or 2 when f is NaN."""
    i, f = k.Local(L, "i"), k.Local(F, "f")
    fi, j = k.Local(F, "fi"), k.Local(L, "j")

    def ret(v: int) -> list[k.Stmt]:
        return [k.ReturnValues(values=[i32(v)])]

    body: list[k.Stmt] = [
        if_(p(Op.F64_NE, f, f), ret(2)),
        setl(fi, p(Op.F64_CONVERT_I64_S, i)),
        if_(p(Op.F64_LT, fi, f), ret(-1)),
        if_(p(Op.F64_GT, fi, f), ret(1)),
        if_(p(Op.F64_GE, f, f64(2.0**63)), ret(-1)),
        setl(j, p(Op.I64_TRUNC_F64_S, f)),
        if_(p(Op.I64_LT_S, i, j), ret(-1)),
        if_(p(Op.I64_GT_S, i, j), ret(1)),
        *ret(0),
    ]
    return k.Function("cmp_if", [("i", L), ("f", F)], (W,), {"fi": F, "j": L}, body)


CMP_IF = _cmp_if()
INLINE: dict[str, k.Function] = {"cmp_if": CMP_IF}
"""Those expanded where they are called."""


TRAP_WAT = f"""(i32.store (i32.const {NODE}) (local.get $node))
(i32.store (i32.const {TRAP_SITE}) (local.get $site))
(i32.store (i32.const {TRAP_CODE}) (local.get $code))
unreachable"""


def trap_function() -> k.Function:
    """``trap(site, code, node)``, what ``Trap(via="trap")`` calls: the node's base, the site and
    the code into the header, then stop. Its body is given as WebAssembly text (a Code printed in advance): the
    kernel IR has no bare ``unreachable`` (a ``Trap`` stores a site known where it is built, not
    one passed in), and which traps are calls is the WebAssembly backend's business anyway."""
    code = k.Code([], {})
    code.derived["wat"] = TRAP_WAT
    return k.Function("trap", [("site", W), ("code", W), ("node", W)], (), {}, [k.Instance(code=code)])
