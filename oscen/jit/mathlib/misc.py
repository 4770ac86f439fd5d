"""The trivial functions (fabs, degrees, radians, copysign, the predicates, sqrt), cbrt and
hypot."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

from ..kernel import Stmt
from .dsl import (
    F64,
    I32,
    I64,
    INF,
    NAN,
    Expr,
    Fn,
    bits,
    const,
    ext_u,
    fabs,
    fcopysign,
    fmax,
    from_bits,
    from_words,
    fsqrt,
    hi32,
    horner,
    if_,
    pow2,
    ret,
    select,
    trap,
    with_hi,
    wrap,
)
from .exp_log import TWO54
from .registry import (
    ERR_DOMAIN,
    register,
)

_w = from_words

# ---------------------------------------------------------------------------
# Trivial functions
# ---------------------------------------------------------------------------


def _unary(name: str, wasm: str, expr_of: Callable[[Expr], Expr], can_trap: bool = False) -> None:
    f = Fn(wasm, [("x", F64)])
    x = f.param("x")
    register(name, f, [ret(expr_of(x))], can_trap)


def define_trivial() -> None:
    _unary("fabs", "m_fabs", fabs)
    # CPython: degrees = x * (180/pi), radians = x * (pi/180), both consts in double.
    _unary("degrees", "m_degrees", lambda x: x * (180.0 / math.pi))
    _unary("radians", "m_radians", lambda x: x * (math.pi / 180.0))

    f = Fn("m_copysign", [("x", F64), ("y", F64)])
    register("copysign", f, [ret(fcopysign(f.param("x"), f.param("y")))], False)

    for name, test in (
        ("isnan", lambda x: x.ne(x)),
        ("isinf", lambda x: fabs(x).eq(INF)),
        ("isfinite", lambda x: fabs(x) < INF),
    ):
        f = Fn(f"m_{name}", [("x", F64)], I32)
        register(name, f, [ret(test(f.param("x")), I32)], False)

    # sqrt: the native instruction is correctly rounded; only the error differs.
    # sqrt(-0.0) is -0.0 (no error); -inf and negatives are domain errors.
    f = Fn("m_sqrt", [("x", F64)])
    x = f.param("x")
    register("sqrt", f, [if_(x < 0.0, [trap(ERR_DOMAIN)]), ret(fsqrt(x))], True)


# ---------------------------------------------------------------------------
# cbrt (FreeBSD s_cbrt.c), hypot (CPython vector_norm for n == 2)
# ---------------------------------------------------------------------------


def define_cbrt_hypot() -> None:
    # cbrt: glibc's s_cbrt.c, which CPython's math.cbrt calls on Linux: a degree-6 polynomial
    # on the frexp mantissa, one Halley step, a table for the exponent's remainder mod 3. It is
    # up to 3 ulp from the true cube root (FreeBSD's, used before, is 0.67 ulp), but it is what
    # the interpreter computes: the same operations give the same bits.
    cbrt2, sqr_cbrt2 = 1.2599210498948731648, 1.5874010519681994748
    factor = [1.0 / sqr_cbrt2, 1.0 / cbrt2, 1.0, cbrt2, sqr_cbrt2]
    poly = [0.354895765043919860, 1.50819193781584896, -2.11499494167371287, 2.44693122563534430,
            -1.83469277483613086, 0.784932344976639262, -0.145263899385486377]  # fmt: skip
    f = Fn("m_cbrt", [("x", F64)])
    x = f.param("x")
    hx, xe, r = f.vars("hx xe r", I32)
    ax, xm, u, t2, ym = f.vars("ax xm u t2 ym")
    scale = select(
        factor[0],
        select(factor[1], select(factor[2], select(factor[3], factor[4], r.eq(1)), r.eq(0)), r.eq(-1)),
        r.eq(-2),
    )
    body = [
        ax.set(fabs(x)),
        hx.set(hi32(ax)),
        if_(hx >= 0x7FF00000, [ret(x + x)]),  # nan, inf
        if_(ax.eq(0.0), [ret(x + x)]),  # signed zeros
        xe.set(0),
        if_(hx < 0x00100000, [  # subnormal: frexp scales it first
            ax.set(ax * TWO54),
            xe.set(-54),
            hx.set(hi32(ax)),
        ]),
        xe.set(xe + (hx >> 20) - 1022),
        xm.set(with_hi(ax, (hx & 0x000FFFFF) | 0x3FE00000)),  # frexp: [0.5, 1)
        u.set(horner(xm, poly)),
        t2.set(u * u * u),
        r.set(xe.rem_s(3)),
        ym.set(u * (t2 + 2.0 * xm) / (2.0 * t2 + xm) * scale),
        ret(fcopysign(ym, x) * pow2(xe.div_s(3))),  # ldexp: |xe/3| <= 358, exact
    ]  # fmt: skip
    register("cbrt", f, body, False)

    # hypot: CPython's vector_norm() for two coordinates -- power-of-two
    # scaling, exact Dekker squares, compensated sum and a differential
    # correction of the square root -- so results match math.hypot bit for bit
    # in practice.  Overflow returns inf, as math.hypot does (no error).  When
    # both inputs are below 2^-1024 CPython <= 3.11 and >= 3.12 differ; we
    # generate the variant of the running interpreter.
    f = Fn("m_hypot", [("x", F64), ("y", F64)])
    x, y = f.param("x"), f.param("y")
    e = f.local("e", I32)
    ax, ay, mx, post, scale, csum, frac1, frac2, h, v, hi, lo, sm = f.vars(
        "ax ay mx post scale csum frac1 frac2 h v hi lo sm"
    )
    xh, xl, p, q = f.vars("xh xl p q")
    dbl_min = 2.0**-1022

    def dl_mul(a: Expr, b_sign: float) -> list[Stmt]:
        """(hi, lo) = a * (b_sign*a) exactly: Dekker mul12 as in CPython."""
        t = a * 134217729.0
        return [
            xh.set(t - (t - a)),
            xl.set(a - xh),
            p.set(xh * xh * b_sign),
            q.set((xh * xl + xl * xh) * b_sign),
            hi.set(p + q),
            lo.set(p - hi + q + xl * xl * b_sign),
        ]

    def accumulate(a: Expr, b_sign: float) -> list[Stmt]:
        return [
            *dl_mul(a, b_sign),
            sm.set(csum + hi),  # dl_fast_sum(csum, hi), |csum| >= |hi|
            frac2.set(frac2 + ((csum - sm) + hi)),
            csum.set(sm),
            frac1.set(frac1 + lo),
        ]

    if sys.version_info >= (3, 12):  # rescale subnormals by 1/DBL_MIN, then as usual
        tiny_path = [
            ax.set(ax / dbl_min), ay.set(ay / dbl_min), mx.set(mx / dbl_min),
            post.set(dbl_min),
        ]  # fmt: skip
    else:  # 3.10/3.11: divide by the max, plain compensated sum of squares
        tiny_path = [
            csum.set(1.0), frac1.set(0.0),
            *[
                stmt
                for a in (ax, ay)
                for stmt in (
                    v.set(a / mx), v.set(v * v), sm.set(csum + v),
                    frac1.set(frac1 + ((csum - sm) + v)), csum.set(sm),
                )
            ],
            ret(mx * fsqrt(csum - 1.0 + frac1)),
        ]  # fmt: skip
    body = [
        ax.set(fabs(x)),
        ay.set(fabs(y)),
        if_(ax.eq(INF) | ay.eq(INF), [ret(INF)]),
        if_(x.ne(x) | y.ne(y), [ret(NAN)]),
        mx.set(fmax(ax, ay)),
        if_(mx.eq(0.0), [ret(mx)]),
        post.set(1.0),
        if_(mx < 2.0**-1024, tiny_path),  # frexp exponent < -1023
        e.set(wrap(bits(mx) >> 52)),  # biased exponent; frexp's is e - 1022
        # scale = 2^(1022 - e) = ldexp(1, -frexp_e), subnormal for e >= 2045
        scale.set(select(
            from_bits(ext_u(2045 - e) << 52),
            from_bits(const(1, I64) << ext_u(2096 - e)),  # 2096 - e in {50, 51}
            e <= 2044,
        )),
        csum.set(1.0), frac1.set(0.0), frac2.set(0.0),
        *accumulate(ax * scale, 1.0),
        *accumulate(ay * scale, 1.0),
        h.set(fsqrt(csum - 1.0 + (frac1 + frac2))),
        *accumulate(h, -1.0),
        v.set(csum - 1.0 + (frac1 + frac2)),
        h.set(h + v / (2.0 * h)),
        ret(h / scale * post),
    ]  # fmt: skip
    register("hypot", f, body, False)
