"""C fmod, math.fmod and Python's float ``%`` and ``//``."""

from __future__ import annotations

from .dsl import (
    F64,
    I32,
    I64,
    INF,
    Fn,
    bits,
    call,
    eqz,
    exit_,
    ext_u,
    fabs,
    fcopysign,
    ffloor,
    from_bits,
    from_words,
    if_,
    ret,
    select,
    trap,
    u64_to_f64,
    while_,
    wrap,
)
from .registry import (
    ERR_DOMAIN,
    ERR_FLOORDIV,
    ERR_MODULO,
    register,
)

_w = from_words

# ---------------------------------------------------------------------------
# fmod and Python's float % and //
# ---------------------------------------------------------------------------


def define_fmod() -> None:
    """C fmod, exact: integer remainder of the mantissas, 11 bits per step.

    With |x| = mx*2^ex, |y| = my*2^ey (53-bit integer mantissas, ex >= ey),
    x mod y = (mx * 2^(ex-ey) mod my) * 2^ey.  ``i64.rem_u`` lets us shift in
    11 bits per iteration (m < my < 2^53 keeps m << 11 below 2^64) instead of
    the classic one bit, so even fmod(1e308, 1e-308) is ~190 steps.
    """
    f = Fn("m_fmod_raw", [("x", F64), ("y", F64)])
    x, y = f.param("x"), f.param("y")
    ax, ay, mx, my, m = f.vars("ax ay mx my m", I64)
    ex, ey, d, s = f.vars("ex ey d s", I32)
    r = f.local("r")
    frac = 0xFFFFFFFFFFFFF
    body = [
        ax.set(bits(x) & 0x7FFFFFFFFFFFFFFF),
        ay.set(bits(y) & 0x7FFFFFFFFFFFFFFF),
        if_(eqz(ay) | ay.ugt(0x7FF0000000000000) | ax.uge(0x7FF0000000000000), [
            ret((x * y) / (x * y)),  # nan (x inf, y zero, or a nan)
        ]),
        if_(ax.ule(ay), [
            if_(ax.eq(ay), [ret(x * 0.0)]),  # zero with the sign of x
            ret(x),
        ]),
        ex.set(wrap(ax >> 52)),
        ey.set(wrap(ay >> 52)),
        mx.set(select(ax & frac | (1 << 52), ax & frac, ex)),
        my.set(select(ay & frac | (1 << 52), ay & frac, ey)),
        ex.set(select(ex, 1, ex)),  # subnormals: exponent field 0 means 2^-1074 units
        ey.set(select(ey, 1, ey)),
        # m = mx * 2^d mod my, 11 bits per remainder (the first step also
        # reduces mx itself, so |x/y| < 2^11 costs a single rem_u)
        d.set(ex - ey),
        m.set(mx),
        while_(1, [
            s.set(select(d, 11, d < 11)),
            m.set((m << ext_u(s)).rem_u(my)),
            d.set(d - s),
            exit_("fmod_done", d <= 0),
        ], label="fmod_done"),
        if_(eqz(m), [ret(x * 0.0)]),
        # m < 2^53 converts exactly; scaling by 2^(ey-1075) is exact too since
        # the result is a multiple of y's ulp.  2^(ey-1075) may be subnormal.
        r.set(u64_to_f64(m) * select(
            from_bits(ext_u(ey - 52) << 52),
            from_bits(1 << ext_u(ey - 1)),
            ey > 52,
        )),
        ret(fcopysign(r, x)),
    ]  # fmt: skip
    register("_fmod_raw", f, body, False, helper=True)

    # math.fmod: fmod(finite, inf) is x; any other nan from non-nan is an error.
    f = Fn("m_fmod", [("x", F64), ("y", F64)])
    x, y = f.param("x"), f.param("y")
    r = f.local("r")
    body = [
        if_(fabs(y).eq(INF) & (fabs(x) < INF), [ret(x)]),
        r.set(call("m_fmod_raw", x, y)),
        if_(r.ne(r) & x.eq(x) & y.eq(y), [trap(ERR_DOMAIN)]),
        ret(r),
    ]
    register("fmod", f, body, True)

    # Python's float %: CPython float_rem
    f = Fn("m_pymod", [("x", F64), ("y", F64)])
    x, y = f.param("x"), f.param("y")
    mod = f.local("mod")
    body = [
        if_(y.eq(0.0), [trap(ERR_MODULO)]),
        mod.set(call("m_fmod_raw", x, y)),
        if_(mod.ne(0.0), [  # true for nan as well, like C's `if (mod)`
            if_((y < 0.0) ^ (mod < 0.0), [mod.set(mod + y)]),
        ], [
            mod.set(fcopysign(0.0, y)),
        ]),
        ret(mod),
    ]  # fmt: skip
    register("pymod", f, body, True)

    # Python's float //: CPython _float_div_mod
    f = Fn("m_pyfloordiv", [("x", F64), ("y", F64)])
    x, y = f.param("x"), f.param("y")
    mod, div, fd = f.vars("mod div fd")
    body = [
        if_(y.eq(0.0), [trap(ERR_FLOORDIV)]),
        mod.set(call("m_fmod_raw", x, y)),
        div.set((x - mod) / y),
        if_(mod.ne(0.0), [
            if_((y < 0.0) ^ (mod < 0.0), [mod.set(mod + y), div.set(div - 1.0)]),
        ]),
        if_(div.ne(0.0), [
            fd.set(ffloor(div)),
            if_(div - fd > 0.5, [fd.set(fd + 1.0)]),  # snap to the nearest integer
            ret(fd),
        ]),
        ret(fcopysign(0.0, x / y)),
    ]  # fmt: skip
    register("pyfloordiv", f, body, True)
