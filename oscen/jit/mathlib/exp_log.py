"""Exponentials (fdlibm e_exp.c, s_expm1.c) and logarithms (fdlibm / musl / glibc)."""

from __future__ import annotations

import math

from ..kernel import Stmt
from .dsl import (
    F64,
    I32,
    INF,
    Expr,
    Fn,
    Var,
    bits,
    call,
    clear_lo,
    eqz,
    ext_u,
    fabs,
    fnearest,
    from_bits,
    from_words,
    hi32,
    horner,
    if_,
    pow2,
    ret,
    select,
    split,
    to_f64,
    trap,
    trunc_i32,
    two_prod_err,
    with_hi,
    wrap,
)
from .registry import (
    ERR_DOMAIN,
    ERR_RANGE,
    register,
)

_w = from_words

# ---------------------------------------------------------------------------
# Exponentials (fdlibm e_exp.c, s_expm1.c)
# ---------------------------------------------------------------------------

LN2_HI = _w(0x3FE62E42, 0xFEE00000)  # k*LN2_HI exact for |k| < 2^11
LN2_LO = _w(0x3DEA39EF, 0x35793C76)
INVLN2 = _w(0x3FF71547, 0x652B82FE)
EXP_P = [_w(0x3FC55555, 0x5555553E), _w(0xBF66C16C, 0x16BEBD93), _w(0x3F11566A, 0xAF25DE2C),
         _w(0xBEBBBD41, 0xC5D26BF1), _w(0x3E663769, 0x72BEA4D0)]  # fmt: skip
O_THRESHOLD = _w(0x40862E42, 0xFEFA39EF)  # 709.78...: exp overflows above
U_THRESHOLD = _w(0xC0874910, 0xD52D3051)  # -745.13...: exp underflows to 0 below


def _exp_poly(f: Fn, hi: Expr, lo: Expr, y: Var) -> list[Stmt]:
    """y = e^(hi - lo) for |hi - lo| <= ~0.5*ln2 (fdlibm's rational kernel).

    Takes r = hi - lo split in two so callers can feed an argument that is
    more precise than one double (exp's k*ln2 reduction, exp2's r*ln2).
    """
    r, t, c = f.vars("er et ec")
    return [
        r.set(hi - lo),
        t.set(r * r),
        c.set(r - t * horner(t, EXP_P)),
        y.set(1.0 - ((lo - (r * c) / (2.0 - c)) - hi)),
    ]


def _scale_two_step(y: Expr, k: Var) -> Expr:
    """y * 2^k for k in [-1080, 1024] with a single rounding.

    The first factor keeps y normal (exact), so a subnormal result is rounded
    once, like fdlibm's twom1000 trick.
    """
    return y * pow2(k.sar(1)) * pow2(k - k.sar(1))


def define_exp() -> None:
    f = Fn("m_exp", [("x", F64)])
    x = f.param("x")
    hx, ki = f.vars("hx ki", I32)
    kf, hi, lo, y = f.vars("kf hi lo y")
    core = [
        kf.set(fnearest(x * INVLN2)),
        hi.set(x - kf * LN2_HI),
        lo.set(kf * LN2_LO),
        *_exp_poly(f, hi, lo, y),
        ki.set(trunc_i32(kf)),
    ]
    body = [
        hx.set(hi32(x) & 0x7FFFFFFF),
        if_(hx >= 0x4086232B, [  # |x| >= 708.39, inf, nan: rare, keep it out of line
            if_(x.ne(x), [ret(x)]),
            if_(x > O_THRESHOLD, [if_(x.eq(INF), [ret(x)]), trap(ERR_RANGE)]),
            if_(x < U_THRESHOLD, [ret(0.0)]),
            *core,
            ret(_scale_two_step(y, ki)),
        ]),
        *core,
        ret(y * pow2(ki)),  # |k| <= 1022 here
    ]  # fmt: skip
    register("exp", f, body, True)

    # exp2: k = nearest(x), r = x - k exactly, then e^(r*ln2) with r*ln2 as an
    # exact double-double, so integer x gives exact powers of two.
    ln2 = math.log(2.0)
    ln2_tail = 2.3190468138462996e-17  # ln 2 - double(ln 2)
    f = Fn("m_exp2", [("x", F64)])
    x = f.param("x")
    ki = f.local("ki", I32)
    kf, r, p, ah, al, lo, y = f.vars("kf r p ah al lo y")
    err_stmts, err = two_prod_err(r, p, *split(ln2), ah, al)
    body = [
        if_(x.ne(x), [ret(x)]),
        if_(x >= 1024.0, [if_(x.eq(INF), [ret(x)]), trap(ERR_RANGE)]),
        if_(x < -1080.0, [ret(0.0)]),
        kf.set(fnearest(x)),
        r.set(x - kf),
        p.set(r * ln2),
        *err_stmts,
        lo.set(-(err + r * ln2_tail)),
        *_exp_poly(f, p, lo, y),
        ki.set(trunc_i32(kf)),
        if_(fabs(x) < 1022.0, [ret(y * pow2(ki))]),
        ret(_scale_two_step(y, ki)),
    ]
    register("exp2", f, body, True)

    define_expm1()


def define_expm1() -> None:
    Q = [1.0, _w(0xBFA11111, 0x111110F4), _w(0x3F5A01A0, 0x19FE5585), _w(0xBF14CE19, 0x9EAADBB7),
         _w(0x3ED0CFCA, 0x86E65239), _w(0xBE8AFDB7, 0x6E09C32D)]  # fmt: skip
    f = Fn("m_expm1", [("x", F64)])
    x = f.param("x")
    hx, k, sign = f.vars("hx k sign", I32)
    hi, lo, c, r, kf, hfx, hxs, r1, t, e, y, twopk, u = f.vars("hi lo c r kf hfx hxs r1 t e y twopk u")
    body = [
        hx.set(hi32(x) & 0x7FFFFFFF),
        sign.set(wrap(bits(x) >> 63)),
        if_(hx >= 0x4043687A, [  # |x| >= 56*ln2
            if_(x.ne(x), [ret(x)]),
            if_(sign, [ret(-1.0)]),
            if_(x > O_THRESHOLD, [if_(x.eq(INF), [ret(x)]), trap(ERR_RANGE)]),
        ]),
        if_(hx > 0x3FD62E42, [  # |x| > 0.5*ln2: reduce
            if_(hx < 0x3FF0A2B2, [
                hi.set(x - select(-LN2_HI, LN2_HI, sign)),
                lo.set(select(-LN2_LO, LN2_LO, sign)),
                k.set(select(-1, 1, sign)),
            ], [
                kf.set(fnearest(INVLN2 * x)),
                hi.set(x - kf * LN2_HI),
                lo.set(kf * LN2_LO),
                k.set(trunc_i32(kf)),
            ]),
            r.set(hi - lo),
            c.set((hi - r) - lo),
        ], [
            if_(hx < 0x3C900000, [ret(x)]),  # |x| < 2^-54 (keeps -0.0)
            k.set(0),
            r.set(x),
            c.set(0.0),
        ]),
        hfx.set(0.5 * r),
        hxs.set(r * hfx),
        r1.set(horner(hxs, Q)),
        t.set(3.0 - r1 * hfx),
        e.set(hxs * ((r1 - t) / (6.0 - r * t))),
        if_(eqz(k), [ret(r - (r * e - hxs))]),
        e.set(r * (e - c) - c),
        e.set(e - hxs),
        if_(k.eq(-1), [ret(0.5 * (r - e) - 0.5)]),
        if_(k.eq(1), [
            if_(r < -0.25, [ret(-2.0 * (e - (r + 0.5)))]),
            ret(1.0 + 2.0 * (r - e)),
        ]),
        twopk.set(from_bits(ext_u(k + 0x3FF) << 52)),
        if_((k < 0) | (k > 56), [
            y.set(r - e + 1.0),
            y.set(select(y * 2.0 * 2.0**1023, y * twopk, k.eq(1024))),
            ret(y - 1.0),
        ]),
        u.set(from_bits(ext_u(0x3FF - k) << 52)),  # 2^-k
        if_(k < 20, [ret((r - e + (1.0 - u)) * twopk)]),
        ret((r - (e + u) + 1.0) * twopk),
    ]  # fmt: skip
    register("expm1", f, body, True)


# ---------------------------------------------------------------------------
# Logarithms (fdlibm e_log.c as simplified by musl; k_log.h for log2/log10)
# ---------------------------------------------------------------------------

LG = [
    _w(0x3FE55555, 0x55555593), _w(0x3FD99999, 0x9997FA04), _w(0x3FD24924, 0x94229359),
    _w(0x3FCC71C5, 0x1D8E78AF), _w(0x3FC74664, 0x96CB03DE), _w(0x3FC39A09, 0xD078C69F),
    _w(0x3FC2F112, 0xDF3E5244),
]  # fmt: skip
TWO54 = _w(0x43500000)


def _log_entry(f: Fn, x: Var, hx: Var, k: Var) -> list[Stmt]:
    """Special cases shared by log/log2/log10 and the subnormal rescale.

    One unsigned compare sends zero, negatives, subnormals, inf and nan to
    the slow path, so normal positive inputs take a single branch.
    """
    return [
        hx.set(hi32(x)),
        k.set(0),
        if_((hx - 0x00100000).uge(0x7FE00000), [
            if_(x.ne(x), [ret(x)]),
            if_(x <= 0.0, [trap(ERR_DOMAIN)]),  # log(0) and log(-x): ValueError
            if_(x.eq(INF), [ret(x)]),
            x.set(x * TWO54),  # subnormal
            k.set(-54),
            hx.set(hi32(x)),
        ]),
    ]  # fmt: skip


def _log1p_kernel(f: Fn, fv: Var, hfsq: Var, r: Var) -> list[Stmt]:
    """k_log1p: r = log(1+f) - f + f*f/2 for 1+f in [sqrt(2)/2, sqrt(2)]."""
    s, z, w = f.vars("ls lz lw")
    return [
        hfsq.set(0.5 * fv * fv),
        s.set(fv / (2.0 + fv)),
        z.set(s * s),
        w.set(z * z),
        r.set(s * (hfsq + (z * horner(w, LG[0::2]) + w * horner(w, LG[1::2])))),
    ]


def define_log() -> None:
    # log: fdlibm's reduction and kernel, but summed in extra precision (the hi/lo split of
    # FreeBSD's k_log.h, and an exact two-sum of k*ln2_hi + hi), so the result is nearly always
    # the correctly rounded one -- which is what glibc's table-driven log (CPython's) returns,
    # so the two agree bit for bit far more often than plain fdlibm did.
    f = Fn("m_log", [("x", F64)])
    x = f.param("x")
    hx, k = f.vars("hx k", I32)
    fv, hfsq, r, dk, hi, lo, a, w, b = f.vars("f hfsq r dk hi lo a w b")
    body = [
        *_log_entry(f, x, hx, k),
        # reduce x into [sqrt(2)/2, sqrt(2)]
        hx.set(hx + (0x3FF00000 - 0x3FE6A09E)),
        k.set(k + (hx >> 20) - 0x3FF),
        x.set(with_hi(x, (hx & 0x000FFFFF) + 0x3FE6A09E)),
        fv.set(x - 1.0),
        *_log1p_kernel(f, fv, hfsq, r),
        hi.set(clear_lo(fv - hfsq)),  # log(1+f) = hi + lo, hi exact in 21 bits
        lo.set((fv - hi) - hfsq + r),
        dk.set(to_f64(k)),
        a.set(dk * LN2_HI),  # exact: LN2_HI has 32 trailing zero bits
        w.set(a + hi),
        b.set(w - a),
        ret(w + (((a - (w - b)) + (hi - b)) + (lo + dk * LN2_LO))),  # two-sum error + low parts
    ]
    register("log", f, body, True)

    # log2 / log10: like log, but the final scaling by 1/ln(b) and the add of
    # k*log_b(2) are done in extra precision (FreeBSD e_log2.c/e_log10.c), so
    # exact powers give exact results.
    ivln2hi, ivln2lo = _w(0x3FF71547, 0x65200000), _w(0x3DE705FC, 0x2EEFA200)
    ivln10hi, ivln10lo = _w(0x3FDBCB7B, 0x15200000), _w(0x3DBB9438, 0xCA9AADD5)
    log10_2hi, log10_2lo = _w(0x3FD34413, 0x509F6000), _w(0x3D59FEF3, 0x11F12B36)
    for base in (2,):
        f = Fn(f"m_log{base}", [("x", F64)])
        x = f.param("x")
        hx, k, i = f.vars("hx k i", I32)
        fv, hfsq, r, hi, lo, vhi, vlo, y, y2, w = f.vars("f hfsq r hi lo vhi vlo y y2 w")
        body = [
            *_log_entry(f, x, hx, k),
            k.set(k + (hx >> 20) - 1023),
            hx.set(hx & 0x000FFFFF),
            i.set((hx + 0x95F64) & 0x100000),
            x.set(with_hi(x, hx | (i ^ 0x3FF00000))),  # normalize x or x/2
            k.set(k + (i >> 20)),
            y.set(to_f64(k)),
            fv.set(x - 1.0),
            *_log1p_kernel(f, fv, hfsq, r),
            hi.set(clear_lo(fv - hfsq)),
            lo.set((fv - hi) - hfsq + r),
        ]
        if base == 2:
            body += [
                vhi.set(hi * ivln2hi),
                vlo.set((lo + hi) * ivln2lo + lo * ivln2hi),
                y2.set(y),
            ]
        else:
            body += [
                vhi.set(hi * ivln10hi),
                y2.set(y * log10_2hi),
                vlo.set(y * log10_2lo + (lo + hi) * ivln10lo + lo * ivln10hi),
            ]
        body += [
            w.set(y2 + vhi),
            vlo.set(vlo + ((y2 - w) + vhi)),
            ret(vlo + w),
        ]
        register(f"log{base}", f, body, True)

    define_log10()
    define_log1p()


def define_log10() -> None:
    """glibc's e_log10.c (fdlibm), which CPython's math.log10 calls on Linux: the mantissa's log
    (our log) over ln(10), plus k*log10(2) split in two. The same operations on the same log give
    the interpreter's results, mostly bit for bit (FreeBSD's more accurate variant differed by up
    to 2 ulp from it)."""
    ivln10 = 4.34294481903251816668e-01
    log10_2hi, log10_2lo = 3.01029995663611771306e-01, 3.69423907715893078616e-13
    f = Fn("m_log10", [("x", F64)])
    x = f.param("x")
    hx, k, i = f.vars("hx k i", I32)
    y, z = f.vars("y z")
    body = [
        *_log_entry(f, x, hx, k),
        k.set(k + (hx >> 20) - 1023),
        i.set(k >> 31),  # 1 if k < 0: the mantissa goes to [0.5, 1) then
        hx.set((hx & 0x000FFFFF) | ((0x3FF - i) << 20)),
        y.set(to_f64(k + i)),
        x.set(with_hi(x, hx)),
        z.set(y * log10_2lo + ivln10 * call("m_log", x)),
        ret(z + y * log10_2hi),
    ]
    register("log10", f, body, True)


def define_log1p() -> None:
    """FreeBSD s_log1p.c: log(1+x) with a correction term for 1+x's rounding."""
    f = Fn("m_log1p", [("x", F64)])
    x = f.param("x")
    hx, ax, k, hu = f.vars("hx ax k hu", I32)
    u, c, fv, hfsq, s, z, R, dk = f.vars("u c f hfsq s z R dk")
    lp = LG  # Lp1..Lp7 == Lg1..Lg7
    body = [
        hx.set(hi32(x)),
        ax.set(hx & 0x7FFFFFFF),
        k.set(1),
        hu.set(0),
        c.set(0.0),
        if_(hx < 0x3FDA827A, [  # 1+x < sqrt(2)+
            if_(ax >= 0x3FF00000, [  # x <= -1.0 (or -nan)
                if_(x.ne(x), [ret(x)]),
                trap(ERR_DOMAIN),
            ]),
            if_(ax < 0x3E200000, [  # |x| < 2^-29
                if_(ax < 0x3C900000, [ret(x)]),
                ret(x - x * x * 0.5),
            ]),
            if_((hx > 0) | (hx <= -0x402D413C), [  # sqrt(2)/2- <= 1+x < sqrt(2)+
                k.set(0), fv.set(x), hu.set(1),
            ]),
        ]),
        if_(hx >= 0x7FF00000, [ret(x)]),  # +inf, +nan
        if_(k, [
            if_(hx < 0x43400000, [
                u.set(1.0 + x),
                hu.set(hi32(u)),
                k.set((hu >> 20) - 1023),
                c.set(select(1.0 - (u - x), x - (u - 1.0), k > 0) / u),
            ], [
                u.set(x),
                hu.set(hi32(u)),
                k.set((hu >> 20) - 1023),
                c.set(0.0),
            ]),
            hu.set(hu & 0x000FFFFF),
            if_(hu < 0x6A09E, [
                u.set(with_hi(u, hu | 0x3FF00000)),
            ], [
                k.set(k + 1),
                u.set(with_hi(u, hu | 0x3FE00000)),
                hu.set((0x00100000 - hu) >> 2),
            ]),
            fv.set(u - 1.0),
        ]),
        hfsq.set(0.5 * fv * fv),
        dk.set(to_f64(k)),
        if_(eqz(hu), [  # |f| < 2^-20
            if_(fv.eq(0.0), [
                if_(eqz(k), [ret(0.0)]),
                ret(dk * LN2_HI + (c + dk * LN2_LO)),
            ]),
            R.set(hfsq * (1.0 - 0.66666666666666666 * fv)),
            if_(eqz(k), [ret(fv - R)]),
            ret(dk * LN2_HI - ((R - (dk * LN2_LO + c)) - fv)),
        ]),
        s.set(fv / (2.0 + fv)),
        z.set(s * s),
        R.set(z * horner(z, lp)),
        if_(eqz(k), [ret(fv - (hfsq - s * (hfsq + R)))]),
        ret(dk * LN2_HI - ((hfsq - (s * (hfsq + R) + (dk * LN2_LO + c))) - fv)),
    ]  # fmt: skip
    register("log1p", f, body, True)
