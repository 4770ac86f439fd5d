"""sinh, cosh, tanh (glibc's fdlibm), asinh, acosh, atanh (musl)."""

from __future__ import annotations

import math

from .dsl import (
    F64,
    I32,
    Fn,
    call,
    fabs,
    fcopysign,
    from_words,
    fsqrt,
    hi32,
    if_,
    lo32,
    ret,
    trap,
)
from .registry import (
    ERR_DOMAIN,
    ERR_RANGE,
    register,
)

_w = from_words

# ---------------------------------------------------------------------------
# Hyperbolic functions: sinh, cosh, tanh as glibc ships them (fdlibm e_sinh.c, e_cosh.c,
# s_tanh.c, which CPython's math calls on Linux): the same formulas on our expm1/exp, so results
# are mostly bit-identical to the interpreter's. asinh, acosh, atanh: musl.
# ---------------------------------------------------------------------------

LN2 = math.log(2.0)
OVERFLOW_HI, OVERFLOW_LO = 0x408633CE, 0x8FB9F87D  # fdlibm's overflow threshold of sinh/cosh


def define_hyperbolic() -> None:
    # sinh (fdlibm e_sinh.c)
    f = Fn("m_sinh", [("x", F64)])
    x = f.param("x")
    ix, lx = f.vars("ix lx", I32)
    h, ax, t, w = f.vars("h ax t w")
    body = [
        ix.set(hi32(x) & 0x7FFFFFFF),
        if_(ix >= 0x7FF00000, [ret(x + x)]),  # nan, +-inf
        h.set(fcopysign(0.5, x)),
        ax.set(fabs(x)),
        if_(ix < 0x40360000, [  # |x| < 22
            if_(ix < 0x3E300000, [ret(x)]),  # |x| < 2^-28
            t.set(call("m_expm1", ax)),
            if_(ix < 0x3FF00000, [ret(h * (2.0 * t - t * t / (t + 1.0)))]),
            ret(h * (t + t / (t + 1.0))),
        ]),
        if_(ix < 0x40862E42, [ret(h * call("m_exp", ax))]),  # |x| < log(DBL_MAX)
        lx.set(lo32(x)),
        if_(ix.ugt(OVERFLOW_HI) | (ix.eq(OVERFLOW_HI) & lx.ugt(OVERFLOW_LO)), [trap(ERR_RANGE)]),
        w.set(call("m_exp", 0.5 * ax)),
        t.set(h * w),
        ret(t * w),
    ]  # fmt: skip
    register("sinh", f, body, True)

    # cosh (fdlibm e_cosh.c)
    f = Fn("m_cosh", [("x", F64)])
    x = f.param("x")
    ix, lx = f.vars("ix lx", I32)
    ax, t, w = f.vars("ax t w")
    body = [
        ix.set(hi32(x) & 0x7FFFFFFF),
        ax.set(fabs(x)),
        if_(ix < 0x40360000, [  # |x| < 22
            if_(ix < 0x3FD62E43, [  # |x| < ln2/2
                if_(ix < 0x3C800000, [ret(1.0)]),
                t.set(call("m_expm1", ax)),
                w.set(1.0 + t),
                ret(1.0 + (t * t) / (w + w)),
            ]),
            t.set(call("m_exp", ax)),
            ret(0.5 * t + 0.5 / t),
        ]),
        if_(ix < 0x40862E42, [ret(0.5 * call("m_exp", ax))]),
        if_(ix >= 0x7FF00000, [ret(x * x)]),  # nan, inf
        lx.set(lo32(x)),
        if_(ix.ugt(OVERFLOW_HI) | (ix.eq(OVERFLOW_HI) & lx.ugt(OVERFLOW_LO)), [trap(ERR_RANGE)]),
        w.set(call("m_exp", 0.5 * ax)),
        t.set(0.5 * w),
        ret(t * w),
    ]  # fmt: skip
    register("cosh", f, body, True)

    # tanh (fdlibm s_tanh.c): expm1 of 2|x|; exact sign symmetry
    f = Fn("m_tanh", [("x", F64)])
    x = f.param("x")
    ix = f.local("ix", I32)
    ax, t, z = f.vars("ax t z")
    body = [
        ix.set(hi32(x) & 0x7FFFFFFF),
        if_(ix >= 0x7FF00000, [
            if_(x.ne(x), [ret(x)]),
            ret(fcopysign(1.0, x)),
        ]),
        ax.set(fabs(x)),
        if_(ix < 0x40360000, [  # |x| < 22
            if_(ix < 0x3C800000, [ret(x * (1.0 + x))]),  # |x| < 2^-55
            if_(ix >= 0x3FF00000, [
                t.set(call("m_expm1", 2.0 * ax)),
                z.set(1.0 - 2.0 / (t + 2.0)),
            ], [
                t.set(call("m_expm1", -2.0 * ax)),
                z.set(-t / (t + 2.0)),
            ]),
        ], [
            z.set(1.0),  # 1 - tiny
        ]),
        ret(fcopysign(z, x)),
    ]  # fmt: skip
    register("tanh", f, body, False)

    # asinh
    f = Fn("m_asinh", [("x", F64)])
    x = f.param("x")
    e = f.local("e", I32)
    ax, r = f.vars("ax r")
    body = [
        e.set((hi32(x) >> 20) & 0x7FF),
        ax.set(fabs(x)),
        if_(e >= 0x3FF + 26, [
            r.set(call("m_log", ax) + LN2),  # also inf and nan
        ], [
            if_(e >= 0x3FF + 1, [
                r.set(call("m_log", 2.0 * ax + 1.0 / (fsqrt(ax * ax + 1.0) + ax))),
            ], [
                if_(e >= 0x3FF - 26, [
                    r.set(call("m_log1p", ax + ax * ax / (fsqrt(ax * ax + 1.0) + 1.0))),
                ], [r.set(ax)]),
            ]),
        ]),
        ret(fcopysign(r, x)),
    ]  # fmt: skip
    register("asinh", f, body, False)

    # acosh
    f = Fn("m_acosh", [("x", F64)])
    x = f.param("x")
    e = f.local("e", I32)
    body = [
        if_(x.ne(x), [ret(x)]),
        if_(x < 1.0, [trap(ERR_DOMAIN)]),
        e.set(hi32(x) >> 20),
        if_(e < 0x3FF + 1, [
            ret(call("m_log1p", x - 1.0 + fsqrt((x - 1.0) * (x - 1.0) + 2.0 * (x - 1.0)))),
        ]),
        if_(e < 0x3FF + 26, [
            ret(call("m_log", 2.0 * x - 1.0 / (x + fsqrt(x * x - 1.0)))),
        ]),
        ret(call("m_log", x) + LN2),
    ]  # fmt: skip
    register("acosh", f, body, True)

    # atanh
    f = Fn("m_atanh", [("x", F64)])
    x = f.param("x")
    e = f.local("e", I32)
    y = f.local("y")
    body = [
        if_(x.ne(x), [ret(x)]),
        y.set(fabs(x)),
        if_(y >= 1.0, [trap(ERR_DOMAIN)]),  # atanh(+-1) is a ValueError in Python
        e.set(hi32(y) >> 20),
        if_(e < 0x3FF - 1, [
            if_(e >= 0x3FF - 32, [
                y.set(0.5 * call("m_log1p", 2.0 * y + 2.0 * y * y / (1.0 - y))),
            ]),
        ], [
            y.set(0.5 * call("m_log1p", 2.0 * (y / (1.0 - y)))),
        ]),
        ret(fcopysign(y, x)),
    ]  # fmt: skip
    register("atanh", f, body, True)
