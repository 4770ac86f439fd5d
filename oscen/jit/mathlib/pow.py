"""pow: fdlibm e_pow.c's core, with CPython's math.pow and float ``**`` wrappers."""

from __future__ import annotations

from .dsl import (
    F64,
    I32,
    INF,
    NAN,
    Expr,
    Fn,
    call,
    clear_lo,
    eqz,
    fabs,
    fcopysign,
    ffloor,
    from_hi,
    from_words,
    fsqrt,
    ftrunc,
    hi32,
    horner,
    if_,
    lo32,
    pow2,
    ret,
    select,
    to_f64,
    trap,
    trunc_i64,
    with_hi,
    wrap,
)
from .exp_log import EXP_P
from .registry import (
    ERR_COMPLEX_POW,
    ERR_DOMAIN,
    ERR_POW_OVERFLOW,
    ERR_RANGE,
    ERR_ZERO_POW,
    register,
)

_w = from_words

# ---------------------------------------------------------------------------
# pow (fdlibm e_pow.c core; CPython math.pow and float ** wrappers)
# ---------------------------------------------------------------------------


# fdlibm e_pow.c's constants (module level: the f64x2 form in vector.py uses them too)
L = [_w(0x3FE33333, 0x33333303), _w(0x3FDB6DB6, 0xDB6FABFF), _w(0x3FD55555, 0x518F264D),
     _w(0x3FD17460, 0xA91D4101), _w(0x3FCD864A, 0x93C9DB65), _w(0x3FCA7E28, 0x4A454EEF)]  # fmt: skip
dp_h1, dp_l1 = _w(0x3FE2B803, 0x40000000), _w(0x3E4CFDEB, 0x43CFD006)
two53 = _w(0x43400000)
lg2, lg2_h, lg2_l = _w(0x3FE62E42, 0xFEFA39EF), _w(0x3FE62E43), _w(0xBE205C61, 0x0CA86C39)
ovt = 8.0085662595372944372e-017
cp, cp_h, cp_l = _w(0x3FEEC709, 0xDC3A03FD), _w(0x3FEEC709, 0xE0000000), _w(0xBE3E2FE0, 0x145B01F5)
ivln2, ivln2_h, ivln2_l = (
    _w(0x3FF71547, 0x652B82FE),
    _w(0x3FF71547, 0x60000000),
    _w(0x3E54AE0B, 0xF85DDF44),
)


def define_pow() -> None:

    f = Fn("m_pow_core", [("x", F64), ("y", F64)])
    x, y = f.param("x"), f.param("y")
    hx, hy, ix, iy, lx, ly, yisint, k, j, n, i = f.vars("hx hy ix iy lx ly yisint k j n i", I32)
    ax, s, t, w, u, v, t1, t2, ss, s2, s_h, s_l, t_h, t_l, r, p_h, p_l, z_h, z_l, z, y1, bp, dph, dpl = (
        f.vars("ax s t w u v t1 t2 ss s2 s_h s_l t_h t_l r p_h p_l z_h z_l z y1 bp dph dpl")
    )
    body = [
        hx.set(hi32(x)), lx.set(lo32(x)), hy.set(hi32(y)), ly.set(lo32(y)),
        ix.set(hx & 0x7FFFFFFF), iy.set(hy & 0x7FFFFFFF),
        if_(eqz(iy | ly), [ret(1.0)]),
        if_(hx.eq(0x3FF00000) & eqz(lx), [ret(1.0)]),
        if_(x.ne(x) | y.ne(y), [ret(x + y)]),
        # yisint: 0 = not an integer, 1 = odd, 2 = even (only needed for x < 0)
        yisint.set(0),
        if_(hx < 0, [
            if_(iy >= 0x43400000, [yisint.set(2)], [
                if_(iy >= 0x3FF00000, [
                    k.set((iy >> 20) - 0x3FF),
                    if_(k > 20, [
                        j.set(ly >> (52 - k)),
                        if_((j << (52 - k)).eq(ly), [yisint.set(2 - (j & 1))]),
                    ], [
                        if_(eqz(ly), [
                            j.set(iy >> (20 - k)),
                            if_((j << (20 - k)).eq(iy), [yisint.set(2 - (j & 1))]),
                        ]),
                    ]),
                ]),
            ]),
        ]),
        if_(eqz(ly), [
            if_(iy.eq(0x7FF00000), [  # y is +-inf
                if_(eqz((ix - 0x3FF00000) | lx), [ret(1.0)]),
                if_(ix >= 0x3FF00000, [ret(select(y, 0.0, hy >= 0))]),
                ret(select(-y, 0.0, hy < 0)),
            ]),
            if_(iy.eq(0x3FF00000), [ret(select(1.0 / x, x, hy < 0))]),
            if_(hy.eq(0x40000000), [ret(x * x)]),
            if_(hy.eq(0x3FE00000) & (hx >= 0), [ret(fsqrt(x))]),
        ]),
        ax.set(fabs(x)),
        if_(eqz(lx) & (ix.eq(0x7FF00000) | eqz(ix) | ix.eq(0x3FF00000)), [
            z.set(ax),  # x is +-0, +-inf, +-1
            if_(hy < 0, [z.set(1.0 / z)]),
            if_(hx < 0, [
                if_(eqz((ix - 0x3FF00000) | yisint), [z.set(NAN)], [
                    if_(yisint.eq(1), [z.set(-z)]),
                ]),
            ]),
            ret(z),
        ]),
        n.set((hx >> 31) - 1),
        if_(eqz(n | yisint), [ret(NAN)]),  # (x<0)**(non-int)
        s.set(select(-1.0, 1.0, eqz(n | (yisint - 1)))),  # (-ve)**(odd int)
        if_(iy > 0x41E00000, [  # |y| > 2^31
            if_(iy > 0x43F00000, [  # |y| > 2^64: must over/underflow
                if_(ix <= 0x3FEFFFFF, [ret(select(INF, 0.0, hy < 0))]),
                if_(ix >= 0x3FF00000, [ret(select(INF, 0.0, hy > 0))]),
            ]),
            if_(ix < 0x3FEFFFFF, [ret(s * select(INF, 0.0, hy < 0))]),
            if_(ix > 0x3FF00000, [ret(s * select(INF, 0.0, hy > 0))]),
            # |1-x| <= 2^-20: log(x) by x - x^2/2 + x^3/3 - x^4/4
            t.set(ax - 1.0),
            w.set((t * t) * (0.5 - t * (0.3333333333333333333333 - t * 0.25))),
            u.set(ivln2_h * t),
            v.set(t * ivln2_l - w * ivln2),
            t1.set(clear_lo(u + v)),
            t2.set(v - (t1 - u)),
        ], [
            n.set(0),
            if_(ix < 0x00100000, [ax.set(ax * two53), n.set(n - 53), ix.set(hi32(ax))]),
            n.set(n + (ix >> 20) - 0x3FF),
            j.set(ix & 0x000FFFFF),
            ix.set(j | 0x3FF00000),
            # interval: k=0 below sqrt(3/2), k=1 below sqrt(3), else x/2 (branch-free:
            # the mantissa is effectively random, so branches would mispredict)
            i.set(j >= 0xBB67A),
            k.set((j > 0x3988E) & eqz(i)),
            n.set(n + i),
            ix.set(ix - (i << 20)),
            ax.set(with_hi(ax, ix)),
            bp.set(select(1.5, 1.0, k)),
            dph.set(select(dp_h1, 0.0, k)),
            dpl.set(select(dp_l1, 0.0, k)),
            # ss = s_h + s_l = (x-1)/(x+1) or (x-1.5)/(x+1.5)
            u.set(ax - bp),
            v.set(1.0 / (ax + bp)),
            ss.set(u * v),
            s_h.set(clear_lo(ss)),
            t_h.set(from_hi(((ix >> 1) | 0x20000000) + 0x00080000 + (k << 18))),
            t_l.set(ax - (t_h - bp)),
            s_l.set(v * ((u - s_h * t_h) - s_h * t_l)),
            # log(ax)
            s2.set(ss * ss),
            r.set(s2 * s2 * horner(s2, L)),
            r.set(r + s_l * (s_h + ss)),
            s2.set(s_h * s_h),
            t_h.set(clear_lo(3.0 + s2 + r)),
            t_l.set(r - ((t_h - 3.0) - s2)),
            u.set(s_h * t_h),
            v.set(s_l * t_h + t_l * ss),
            p_h.set(clear_lo(u + v)),
            p_l.set(v - (p_h - u)),
            z_h.set(cp_h * p_h),
            z_l.set(cp_l * p_h + p_l * cp + dpl),
            # log2(ax) = (ss+..)*2/(3*log2) = n + dp_h + z_h + z_l
            t.set(to_f64(n)),
            t1.set(clear_lo(((z_h + z_l) + dph) + t)),
            t2.set(z_l - (((t1 - t) - dph) - z_h)),
        ]),
        # (y1+y2)*(t1+t2) with y1 the high half of y
        y1.set(clear_lo(y)),
        p_l.set((y - y1) * t1 + y * t2),
        p_h.set(y1 * t1),
        z.set(p_l + p_h),
        j.set(hi32(z)),
        i.set(lo32(z)),
        if_(j >= 0x40900000, [  # z >= 1024
            if_(((j - 0x40900000) | i).ne(0), [ret(s * INF)]),
            if_(p_l + ovt > z - p_h, [ret(s * INF)]),
        ], [
            if_((j & 0x7FFFFFFF) >= 0x4090CC00, [  # z <= -1075
                if_(((j - 0xC090CC00) | i).ne(0), [ret(s * 0.0)]),
                if_(p_l <= z - p_h, [ret(s * 0.0)]),
            ]),
        ]),
        # 2^(p_h+p_l)
        i.set(j & 0x7FFFFFFF),
        k.set((i >> 20) - 0x3FF),
        n.set(0),
        if_(i > 0x3FE00000, [  # |z| > 0.5: n = [z+0.5]
            n.set(j + (0x00100000 >> (k + 1))),
            k.set(((n & 0x7FFFFFFF) >> 20) - 0x3FF),
            t.set(from_hi(n & ~(0x000FFFFF >> k))),
            n.set(((n & 0x000FFFFF) | 0x00100000) >> (20 - k)),
            if_(j < 0, [n.set(-n)]),
            p_h.set(p_h - t),
        ]),
        t.set(clear_lo(p_l + p_h)),
        u.set(t * lg2_h),
        v.set((p_l - (t - p_h)) * lg2 + t * lg2_l),
        z.set(u + v),
        w.set(v - (z - u)),
        t.set(z * z),
        t1.set(z - t * horner(t, EXP_P)),
        r.set((z * t1) / (t1 - 2.0) - (w + z * w)),
        z.set(1.0 - (r - z)),
        j.set(hi32(z) + (n << 20)),
        if_(j.sar(20) <= 0, [  # subnormal output: scale in two steps, round once
            ret(s * (z * pow2(n + 1022) * 2.0**-1022)),
        ]),
        ret(s * with_hi(z, j)),
    ]  # fmt: skip
    register("_pow_core", f, body, False, helper=True)

    def odd_integer(v: Expr) -> Expr:
        """CPython's DOUBLE_IS_ODD_INTEGER (fmod(|v|, 2) == 1) without fmod."""
        a = fabs(v)
        return (a < 2.0**53) & ftrunc(a).eq(a) & (wrap(trunc_i64(a)) & 1)

    # math.pow: CPython handles non-finite inputs itself, then maps libm's
    # nan -> ValueError, inf from 0**neg -> ValueError, overflow -> OverflowError.
    f = Fn("m_pow", [("x", F64), ("y", F64)])
    x, y = f.param("x"), f.param("y")
    r = f.local("r")
    finite = (fabs(x) < INF) & (fabs(y) < INF)
    body = [
        if_(eqz(finite), [
            if_(x.ne(x), [ret(select(1.0, x, y.eq(0.0)))]),
            if_(y.ne(y), [ret(select(1.0, y, x.eq(1.0)))]),
            if_(fabs(x).eq(INF), [
                if_(y > 0.0, [ret(select(x, fabs(x), odd_integer(y)))]),
                if_(y.eq(0.0), [ret(1.0)]),
                ret(select(fcopysign(0.0, x), 0.0, odd_integer(y))),
            ]),
            # y is +-inf
            if_(fabs(x).eq(1.0), [ret(1.0)]),
            if_((y > 0.0) & (fabs(x) > 1.0), [ret(y)]),
            if_((y < 0.0) & (fabs(x) < 1.0), [ret(-y)]),
            ret(0.0),
        ]),
        r.set(call("m_pow_core", x, y)),
        if_(r.ne(r), [trap(ERR_DOMAIN)]),
        if_(fabs(r).eq(INF), [if_(x.eq(0.0), [trap(ERR_DOMAIN)]), trap(ERR_RANGE)]),
        ret(r),
    ]  # fmt: skip
    register("pow", f, body, True)

    # float ** float: CPython float_pow, except that a negative base with a
    # non-integral exponent (a complex result in Python) is refused.
    f = Fn("m_pypow", [("x", F64), ("y", F64)])
    x, y = f.param("x"), f.param("y")
    neg = f.local("neg", I32)
    r = f.local("r")
    body = [
        if_(y.eq(0.0), [ret(1.0)]),
        if_(x.ne(x), [ret(x)]),
        if_(y.ne(y), [ret(select(1.0, y, x.eq(1.0)))]),
        if_(fabs(y).eq(INF), [
            if_(fabs(x).eq(1.0), [ret(1.0)]),
            if_((y > 0.0) ^ (fabs(x) > 1.0), [ret(0.0)]),
            ret(INF),
        ]),
        if_(fabs(x).eq(INF), [
            if_(y > 0.0, [ret(select(x, fabs(x), odd_integer(y)))]),
            ret(select(fcopysign(0.0, x), 0.0, odd_integer(y))),
        ]),
        if_(x.eq(0.0), [
            if_(y < 0.0, [trap(ERR_ZERO_POW)]),
            ret(select(x, 0.0, odd_integer(y))),
        ]),
        neg.set(0),
        if_(x < 0.0, [
            if_(y.ne(ffloor(y)), [trap(ERR_COMPLEX_POW)]),
            x.set(-x),
            neg.set(odd_integer(y)),
        ]),
        if_(x.eq(1.0), [ret(select(-1.0, 1.0, neg))]),
        r.set(call("m_pow_core", x, y)),
        if_(r.eq(INF), [trap(ERR_POW_OVERFLOW)]),
        ret(select(-r, r, neg)),
    ]  # fmt: skip
    register("pypow", f, body, True)
