"""f64x2 forms of the math library: two arguments at once, each lane bit-identical to the scalar
function.

The contract (what lets vector code replace scalar code without changing a single output bit):

* On the **main path** (the arguments audio meets: moderate finite ``|x|`` for sin/cos/exp/tanh,
  positive normal ``x`` for the logarithms: each builder's ``ok`` mask below) a lane computes the
  scalar function's own operations, in the same order, as f64x2 operations: the scalar code's
  branches become masks and ``v128.bitselect`` (both sides computed, the right one kept), its
  word manipulations i64x2 operations on the same bits. The float helpers are literally shared:
  a :class:`VFn` makes every f64 local of the scalar library's kernels (``_sincos_kernels``,
  ``_exp_poly``, ``_log1p_kernel``, Dekker products) an f64x2 local, so the same Python builds
  both forms.
* A lane **off the main path** (tiny, huge, non-finite, negative for log, beyond 2^20*pi/2 for
  sin/cos where the scalar code reduces with Payne-Hanek...) is given to the scalar function: extract
  the lane, call, replace. Its result (or its math error: the scalar function raises) is then
  the scalar one by construction. Lane 0 is done before lane 1.

Each function comes in two forms (see :mod:`.registry`): ``m_<name>_f64x2(x)`` (complete) and
``m_<name>_f64x2_main(x) -> (v128, i32)`` (the main path only, and the bitmask of the lanes it
computed; never traps), for a caller that makes the scalar calls itself (to note which lane
raises). No relaxed SIMD: ``relaxed_madd`` would round differently.

Integer values in f64 lanes are read without conversions: for an integer-valued ``v`` with
``|v| < 2^51``, the bits of ``v + 1.5*2^52`` are ``0x4338000000000000 + v`` (so the low bits are
``v`` in two's complement), and back again.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .. import kernel as k
from ..kernel import Stmt
from ..ops import Op
from . import exp_log, trig
from . import pow as P
from .dsl import (
    F64,
    I32,
    INF,
    V128,
    Expr,
    Fn,
    Var,
    _prim,
    call,
    eqz,
    from_words,
    horner,
    if_,
    lift,
    ret,
    ret_many,
)
from .dsl import split as _split
from .dsl import two_prod_err as _two_prod_err
from .registry import FUNCTIONS, register_vector

MAGIC = 6755399441055744.0  # 1.5 * 2^52
MAGIC_BITS = 0x4338000000000000
SIGN = 1 << 63


class VFn(Fn):
    """A function whose f64 locals are f64x2 (V128): the scalar library's float helpers, given a
    VFn and V128 variables, build their two-lane form, operation for operation."""

    def local(self, name: str, ty: k.T = F64) -> Var:
        return super().local(name, V128 if ty == F64 else ty)


# --------------------------------------------------------------------------- lane operations
def isplat(v: int) -> Expr:
    """An i64x2 constant (``v`` in both lanes)."""
    return Expr(k.v128_i64x2(v, v))


def _v(e: Expr | float) -> Expr:
    return lift(e, V128)


def iadd(a: Expr, b: Expr | int) -> Expr:
    return _prim(Op.I64X2_ADD, a, b if isinstance(b, Expr) else isplat(b))


def isub(a: Expr | int, b: Expr | int) -> Expr:
    return _prim(
        Op.I64X2_SUB, a if isinstance(a, Expr) else isplat(a), b if isinstance(b, Expr) else isplat(b)
    )


def shl(a: Expr, n: int) -> Expr:
    return _prim(Op.I64X2_SHL, a, Expr(k.Const(I32, n)))


def shr_u(a: Expr, n: int) -> Expr:
    return _prim(Op.I64X2_SHR_U, a, Expr(k.Const(I32, n)))


def shr_s(a: Expr, n: int) -> Expr:
    return _prim(Op.I64X2_SHR_S, a, Expr(k.Const(I32, n)))


def vand(a: Expr, b: Expr | int) -> Expr:
    return _prim(Op.V128_AND, a, b if isinstance(b, Expr) else isplat(b))


def vor(a: Expr, b: Expr) -> Expr:
    return _prim(Op.V128_OR, a, b)


def vnot(a: Expr) -> Expr:
    return _prim(Op.V128_NOT, a)


def pick(a: Expr | float, b: Expr | float, mask: Expr) -> Expr:
    """``a`` in the lanes where ``mask`` is set, else ``b`` (the scalar code's ``select``)."""
    return _prim(Op.V128_BITSELECT, _v(a), _v(b), mask)


def ieq(a: Expr, b: int) -> Expr:
    return _prim(Op.I64X2_EQ, a, isplat(b))


def ilt(a: Expr, b: int) -> Expr:
    return _prim(Op.I64X2_LT_S, a, isplat(b))


def igt(a: Expr, b: int) -> Expr:
    return _prim(Op.I64X2_GT_S, a, isplat(b))


def ile(a: Expr, b: int) -> Expr:
    return _prim(Op.I64X2_LE_S, a, isplat(b))


def ige(a: Expr, b: int) -> Expr:
    return _prim(Op.I64X2_GE_S, a, isplat(b))


def vabs(x: Expr) -> Expr:
    return _prim(Op.F64X2_ABS, x)


def vnearest(x: Expr) -> Expr:
    return _prim(Op.F64X2_NEAREST, x)


def vcopysign(mag: Expr | float, sign: Expr) -> Expr:
    """f64.copysign per lane."""
    return _prim(Op.V128_BITSELECT, sign, _v(mag), isplat(SIGN))


def lane_int(v: Expr) -> Expr:
    """The i64 lanes of an integer-valued f64x2 ``v`` (``|v| < 2^51``): ``trunc_i32``'s values."""
    return isub(v + MAGIC, MAGIC_BITS)


def int_f64(n: Expr) -> Expr:
    """i64 lanes (``|n| < 2^51``) as f64 lanes, exactly (the scalar ``to_f64``)."""
    return iadd(n, MAGIC_BITS) - MAGIC


def clear_lo(v: Expr) -> Expr:
    """fdlibm's SET_LOW_WORD(v, 0) per lane."""
    return vand(v, 0xFFFFFFFF00000000)


# --------------------------------------------------------------------------- main paths
Main = tuple[list[Stmt], Var, Expr]
"""A main path: its statements, the variable holding the lanes' results, the mask of lanes on it."""


def _reduce_medium(f: VFn, x: Var, ax: Var) -> tuple[list[Stmt], Var, Var, Var]:
    """fdlibm's medium-range Cody-Waite reduction ``x = fn*pi/2 + (y0 + y1)`` (the scalar
    ``trig._reduce_pio2`` for ``|x| < 2^20 pi/2``), its second and third steps (taken where
    cancellation ate more than 16, then 49 bits) computed in the lanes that take them, when any
    does. ``ax`` must hold ``|x|``. Returns (statements, fn, y0, y1)."""
    fn, r, w, y0, y1 = f.vars("fn r w y0 y1")

    def lost() -> Expr:  # exponent bits cancelled so far
        return isub(shr_u(ax, 52), vand(shr_u(y0, 52), 0x7FF))

    def step(i: int, p: float, pt: float, after: int, then: list[Stmt]) -> list[Stmt]:
        """The scalar code's extra step ``if lost() > after: ...; then``, in the lanes that
        take it, when any lane does (rare below |x| ~ 2^7: skipping it is most of the gain)."""
        take, t_, w_, r_, y_ = f.vars(f"take{i} t{i} w{i} r{i} y{i}")
        return [
            take.set(igt(lost(), after)),
            if_(Expr(k.Prim(k.T.BOOL, Op.V128_ANY_TRUE, [take.node])), [
                t_.set(r),
                w_.set(fn * p),
                r_.set(t_ - w_),
                w_.set(fn * pt - ((t_ - r_) - w_)),
                y_.set(r_ - w_),
                r.set(pick(r_, r, take)),
                w.set(pick(w_, w, take)),
                y0.set(pick(y_, y0, take)),
                *then,
            ]),
        ]  # fmt: skip

    stmts = [
        fn.set(vnearest(x * trig.INVPIO2)),
        r.set(x - fn * trig.PIO2_1),
        w.set(fn * trig.PIO2_1T),
        y0.set(r - w),
        *step(2, trig.PIO2_2, trig.PIO2_2T, 16, step(3, trig.PIO2_3, trig.PIO2_3T, 49, [])),
        y1.set((r - y0) - w),
    ]
    return stmts, fn, y0, y1


def _sincos(name: str) -> Callable[[VFn, Var], Main]:
    """sin/cos: fdlibm's medium-range Cody-Waite reduction (:func:`_reduce_medium`), both
    kernels computed, the quadrant's choice a select."""

    def build(f: VFn, x: Var) -> Main:
        ax, ts, tc, t, res, ok = f.vars("ax ts tc t res ok")
        red, fn, y0, y1 = _reduce_medium(f, x, ax)
        z, zz = f.local("kz"), f.local("kw")
        sin_k, _ = trig._sincos_kernels(f, y0, y1, ts)
        _, cos_k = trig._sincos_kernels(f, y0, y1, tc)
        nb = lane_int(fn)
        odd = _prim(Op.I64X2_EQ, vand(nb, 1), isplat(1))  # masks by compares (native on x86-64,
        if name == "sin":  # unlike i64x2.shr_s). sin: s, c, -s, -c by quadrant; cos: c, -s, -c, s
            use_cos, neg = odd, _prim(Op.I64X2_EQ, vand(nb, 2), isplat(2))
        else:
            use_cos, neg = vnot(odd), _prim(Op.I64X2_EQ, vand(iadd(nb, 1), 2), isplat(2))
        stmts = [
            ax.set(vabs(x)),
            ok.set(vand(ax >= from_words(0x3E500000), ax < from_words(trig.MEDIUM_LIMIT))),
            *red,
            z.set(y0 * y0),
            zz.set(z * z),
            *sin_k,
            *cos_k,
            t.set(pick(tc, ts, use_cos)),
            res.set(pick(-t, t, neg)),
        ]
        return stmts, res, ok

    return build


def _tan(f: VFn, x: Var) -> Main:
    """tan (fdlibm __kernel_tan, as ``trig.define_tan``) for 2^-27 <= |x| < 2^20 pi/2.

    What a TPT filter asks (``tan(pi fc / fs)``, 0 < x < 0.49 pi, mostly below 0.6744) takes
    the short way: the reduction only when a lane has |x| >= 0.75 (below, the scalar reduction
    gives n = 0, y0 = x, y1 = +0.0 exactly), the kernel, and each of its other two endings
    (|y| >= 0.6744 by pi/4 - y; an odd quadrant's -1/(y + r) in hi/lo halves) only when a lane
    takes it, selected per lane as the scalar code branches."""
    T = trig.TAN_T
    ax, neg, big, odd, by0, z, w, r, v, s, vv, bres, zc, vo, a, tt, ores, res, ok = f.vars(
        "ax neg big odd by0 tz tw tr tv ts tvv bres tzc tvo ta ttt ores res ok"
    )
    red, fn, y0, y1 = _reduce_medium(f, x, ax)

    def any_(mask: Expr) -> Expr:
        return Expr(k.Prim(k.T.BOOL, Op.V128_ANY_TRUE, [mask.node]))

    stmts = [
        ax.set(vabs(x)),
        ok.set(vand(ax >= from_words(0x3E400000), ax < from_words(trig.MEDIUM_LIMIT))),
        y0.set(x),
        y1.set(0.0),
        odd.set(isplat(0)),
        if_(any_(ax >= 0.75), [*red, odd.set(_prim(Op.I64X2_EQ, vand(lane_int(fn), 1), isplat(1)))]),
        neg.set(y0 < 0.0),  # the scalar hx < 0 (y0 is not -0.0 where it matters: |y0| >= 0.67)
        big.set(vabs(y0) >= from_words(0x3FE59428)),
        if_(any_(big), [
            by0.set((trig.PIO4 - pick(-y0, y0, neg)) + (trig.PIO4LO - pick(-y1, y1, neg))),
            y0.set(pick(by0, y0, big)),
            y1.set(pick(0.0, y1, big)),
        ]),
        z.set(y0 * y0),
        w.set(z * z),
        r.set(horner(w, [T[1], T[3], T[5], T[7], T[9], T[11]])),
        v.set(z * horner(w, [T[2], T[4], T[6], T[8], T[10], T[12]])),
        s.set(z * y0),
        r.set(y1 + z * (s * (r + v) + y1) + T[0] * s),
        w.set(y0 + r),
        res.set(w),
        if_(any_(big), [
            vv.set(pick(-1.0, 1.0, odd)),
            bres.set(pick(-1.0, 1.0, neg) * (vv - 2.0 * (y0 - (w * w / (w + vv) - r)))),
            res.set(pick(bres, res, big)),
        ]),
        if_(any_(vand(odd, vnot(big))), [
            zc.set(clear_lo(w)),
            vo.set(r - (zc - y0)),
            a.set(-1.0 / w),
            tt.set(clear_lo(a)),
            ores.set(tt + a * ((1.0 + tt * zc) + tt * vo)),
            res.set(pick(ores, res, vand(odd, vnot(big)))),
        ]),
    ]  # fmt: skip
    return stmts, res, ok


def _exp(f: VFn, x: Var) -> Main:
    """exp for |x| < 708.39 (the scalar code's in-line path): k = nearest(x/ln2), fdlibm's kernel,
    times 2^k built from k's bits."""
    kf, hi, lo, y, res, ok = f.vars("kf hi lo y res ok")
    stmts = [
        ok.set(vabs(x) < from_words(0x4086232B)),
        kf.set(vnearest(x * exp_log.INVLN2)),
        hi.set(x - kf * exp_log.LN2_HI),
        lo.set(kf * exp_log.LN2_LO),
        *exp_log._exp_poly(f, hi, lo, y),
        res.set(y * shl(iadd(lane_int(kf), 1023), 52)),
    ]
    return stmts, res, ok


def _exp2(f: VFn, x: Var) -> Main:
    """exp2 for |x| < 1022: r = x - nearest(x) exactly, e^(r*ln2) with r*ln2 double-double."""
    kf, r, p, ah, al, lo, y, res, ok = f.vars("kf r p ah al lo y res ok")
    ln2, ln2_tail = math.log(2.0), 2.3190468138462996e-17  # as exp_log.define_exp
    err_stmts, err = _two_prod_err(r, p, *_split(ln2), ah, al)
    stmts = [
        ok.set(vabs(x) < 1022.0),
        kf.set(vnearest(x)),
        r.set(x - kf),
        p.set(r * ln2),
        *err_stmts,
        lo.set(-(err + r * ln2_tail)),
        *exp_log._exp_poly(f, p, lo, y),
        res.set(y * shl(iadd(lane_int(kf), 1023), 52)),
    ]
    return stmts, res, ok


def _log_core(f: VFn, x: Expr, p: str) -> tuple[list[Stmt], Var]:
    """The scalar log's path for positive normal ``x`` (locals prefixed ``p``)."""
    hx, kk, xm, fv, hfsq, r, dk, hi, lo, a, w, b, res = (
        f.local(p + n) for n in "hx k xm f hfsq r dk hi lo a w b res".split()
    )
    ln2_hi, ln2_lo = exp_log.LN2_HI, exp_log.LN2_LO
    stmts = [
        hx.set(iadd(shr_u(x, 32), 0x3FF00000 - 0x3FE6A09E)),
        kk.set(isub(shr_u(hx, 20), 0x3FF)),
        xm.set(vor(vand(x, 0xFFFFFFFF), shl(iadd(vand(hx, 0x000FFFFF), 0x3FE6A09E), 32))),
        fv.set(xm - 1.0),
        *exp_log._log1p_kernel(f, fv, hfsq, r),
        hi.set(clear_lo(fv - hfsq)),
        lo.set((fv - hi) - hfsq + r),
        dk.set(int_f64(kk)),
        a.set(dk * ln2_hi),
        w.set(a + hi),
        b.set(w - a),
        res.set(w + (((a - (w - b)) + (hi - b)) + (lo + dk * ln2_lo))),
    ]
    return stmts, res


def _normal_positive(x: Expr) -> Expr:
    return vand(x >= 2.2250738585072014e-308, x < INF)


def _log(f: VFn, x: Var) -> Main:
    """log for positive normal x (the scalar code's one-branch path)."""
    ok = f.local("ok")
    stmts, res = _log_core(f, x, "")
    return [ok.set(_normal_positive(x)), *stmts], res, ok


def _log10(f: VFn, x: Var) -> Main:
    """log10 for positive normal x: glibc's mantissa log over ln 10 plus k*log10(2)."""
    ivln10 = 4.34294481903251816668e-01
    log10_2hi, log10_2lo = 3.01029995663611771306e-01, 3.69423907715893078616e-13
    kk, i, xm, y, z, res, ok = f.vars("k i xm y z res ok")
    inner, lg = _log_core(f, xm, "l_")
    stmts = [
        ok.set(_normal_positive(x)),
        kk.set(isub(shr_u(x, 52), 1023)),
        i.set(shr_u(kk, 63)),  # 1 if k < 0: the mantissa goes to [0.5, 1) then
        xm.set(vor(vand(x, 0x000FFFFFFFFFFFFF), shl(isub(0x3FF, i), 52))),
        y.set(int_f64(iadd(kk, i))),
        *inner,
        z.set(y * log10_2lo + ivln10 * lg),
        res.set(z + y * log10_2hi),
    ]
    return stmts, res, ok


def _log2(f: VFn, x: Var) -> Main:
    """log2 for positive normal x (FreeBSD e_log2.c, as the scalar code)."""
    ivln2hi, ivln2lo = from_words(0x3FF71547, 0x65200000), from_words(0x3DE705FC, 0x2EEFA200)
    kk, hx, i, xm, y, fv, hfsq, r, hi, lo, vhi, vlo, w, res, ok = f.vars(
        "k hx i xm y f hfsq r hi lo vhi vlo w res ok"
    )
    stmts = [
        ok.set(_normal_positive(x)),
        hx.set(vand(shr_u(x, 32), 0x000FFFFF)),
        i.set(vand(iadd(hx, 0x95F64), 0x100000)),
        kk.set(iadd(isub(shr_u(x, 52), 1023), shr_u(i, 20))),
        xm.set(vor(vand(x, 0xFFFFFFFF), shl(vor(hx, _prim(Op.V128_XOR, i, isplat(0x3FF00000))), 32))),
        y.set(int_f64(kk)),
        fv.set(xm - 1.0),
        *exp_log._log1p_kernel(f, fv, hfsq, r),
        hi.set(clear_lo(fv - hfsq)),
        lo.set((fv - hi) - hfsq + r),
        vhi.set(hi * ivln2hi),
        vlo.set((lo + hi) * ivln2lo + lo * ivln2hi),
        w.set(y + vhi),
        vlo.set(vlo + ((y - w) + vhi)),
        res.set(vlo + w),
    ]
    return stmts, res, ok


def _expm1_core(f: VFn, x: Expr, p: str) -> tuple[list[Stmt], Var, Expr]:
    """fdlibm expm1 with every branch a select (locals prefixed ``p``); its main path: 2^-54 <=
    |x| < 56*ln2, or x positive up to the overflow threshold (the scalar code's big-argument
    block falls through to the general path there)."""
    names = "ax sgn kf hi lo kk r c hfx hxs r1 t e0 e y0 twopk u res"
    ax, sgn, kf, hi, lo, kk, r, c, hfx, hxs, r1, t, e0, e, y0, twopk, u, res = (
        f.local(p + n) for n in names.split()
    )
    q = [1.0, from_words(0xBFA11111, 0x111110F4), from_words(0x3F5A01A0, 0x19FE5585),
         from_words(0xBF14CE19, 0x9EAADBB7), from_words(0x3ED0CFCA, 0x86E65239),
         from_words(0xBE8AFDB7, 0x6E09C32D)]  # fmt: skip
    ln2_hi, ln2_lo, invln2 = exp_log.LN2_HI, exp_log.LN2_LO, exp_log.INVLN2
    reduce = ax >= from_words(0x3FD62E43)  # |x| > 0.5*ln2
    near = ax < from_words(0x3FF0A2B2)  # |x| < 1.5*ln2: k = +-1
    ok = vand(
        ax >= from_words(0x3C900000),
        vor(ax < from_words(0x4043687A), vand(x >= 0.0, x <= exp_log.O_THRESHOLD)),
    )
    stmts = [
        ax.set(vabs(x)),
        sgn.set(ilt(x, 0)),  # the sign bit as a mask
        kf.set(vnearest(invln2 * x)),
        hi.set(pick(x - pick(-ln2_hi, ln2_hi, sgn), x - kf * ln2_hi, near)),
        lo.set(pick(pick(-ln2_lo, ln2_lo, sgn), kf * ln2_lo, near)),
        kk.set(pick(pick(isplat(-1), isplat(1), sgn), lane_int(kf), near)),
        r.set(hi - lo),
        c.set((hi - r) - lo),
        kk.set(vand(kk, reduce)),  # k = 0 unreduced
        r.set(pick(r, x, reduce)),
        c.set(pick(c, 0.0, reduce)),
        hfx.set(0.5 * r),
        hxs.set(r * hfx),
        r1.set(horner(hxs, q)),
        t.set(3.0 - r1 * hfx),
        e0.set(hxs * ((r1 - t) / (6.0 - r * t))),
        e.set(r * (e0 - c) - c),
        e.set(e - hxs),
        twopk.set(shl(iadd(kk, 0x3FF), 52)),
        y0.set(r - e + 1.0),
        u.set(shl(isub(0x3FF, kk), 52)),
        # the scalar code's returns, last first (each select overrides the ones before)
        res.set((r - (e + u) + 1.0) * twopk),
        res.set(pick((r - e + (1.0 - u)) * twopk, res, ilt(kk, 20))),
        res.set(
            pick(
                pick(y0 * 2.0 * 2.0**1023, y0 * twopk, ieq(kk, 1024)) - 1.0, res, vor(ilt(kk, 0), igt(kk, 56))
            )
        ),
        res.set(pick(pick(-2.0 * (e - (r + 0.5)), 1.0 + 2.0 * (r - e), r < -0.25), res, ieq(kk, 1))),
        res.set(pick(0.5 * (r - e) - 0.5, res, ieq(kk, -1))),
        res.set(pick(r - (r * e0 - hxs), res, ieq(kk, 0))),
    ]
    return stmts, res, ok


def _expm1(f: VFn, x: Var) -> Main:
    ok = f.local("ok")
    stmts, res, main = _expm1_core(f, x, "")
    return [*stmts, ok.set(main)], res, ok


def _tanh(f: VFn, x: Var) -> Main:
    """tanh (fdlibm s_tanh.c): expm1 of 2|x| or -2|x| by |x| >= 1, 1 from |x| >= 22 (and inf)."""
    ax, big, u, z, res, ok = f.vars("ax big u z res ok")
    inner, t, em_ok = _expm1_core(f, u, "e_")
    stmts = [
        ax.set(vabs(x)),
        big.set(ax >= 1.0),
        u.set(pick(2.0 * ax, -2.0 * ax, big)),
        *inner,
        z.set(pick(2.0, -t, big) / (t + 2.0)),  # 2/(t+2) or -t/(t+2): one division
        z.set(pick(1.0 - z, z, big)),
        z.set(pick(1.0, z, ax >= 22.0)),
        res.set(vcopysign(z, x)),
        ok.set(vand(ax >= from_words(0x3C800000), vor(em_ok, ax >= 22.0))),
    ]
    return stmts, res, ok


def _sinh(f: VFn, x: Var) -> Main:
    """sinh for 2^-28 <= |x| < 22 (fdlibm e_sinh.c): h*(2t - t*t/(t+1)) or h*(t + t/(t+1))."""
    h, ax, res, ok = f.vars("h ax res ok")
    inner, t, em_ok = _expm1_core(f, ax, "e_")
    stmts = [
        h.set(vcopysign(0.5, x)),
        ax.set(vabs(x)),
        *inner,
        res.set(pick(h * (2.0 * t - t * t / (t + 1.0)), h * (t + t / (t + 1.0)), ax < 1.0)),
        ok.set(vand(vand(ax >= from_words(0x3E300000), ax < 22.0), em_ok)),
    ]
    return stmts, res, ok


def _cosh(f: VFn, x: Var) -> Main:
    """cosh for 2^-54 <= |x| < 22 (fdlibm e_cosh.c): from exp, or below ln2/2 from expm1 (its
    main path there, computed only when a lane needs it)."""
    ax, w, small, res, ok = f.vars("ax w small res ok")
    inner, t, _ = _expm1_core(f, ax, "e_")
    exp_stmts, et, _ = _exp(_Prefixed(f, "x_"), ax)
    stmts = [
        ax.set(vabs(x)),
        ok.set(vand(ax >= from_words(0x3C900000), ax < 22.0)),
        *exp_stmts,
        res.set(0.5 * et + 0.5 / et),
        small.set(ax < from_words(0x3FD62E43)),
        if_(Expr(k.Prim(k.T.BOOL, Op.V128_ANY_TRUE, [small.node])), [
            *inner,
            w.set(1.0 + t),
            res.set(pick(1.0 + (t * t) / (w + w), res, small)),
        ]),
    ]  # fmt: skip
    return stmts, res, ok


def _pow(f: VFn, x: Var, y: Var) -> Main:
    """pow / ``**`` (fdlibm e_pow.c's core) for positive normal x != 1 and finite y with
    0 < |y| <= 2^31, y not 1, -1, 2 or 1/2 (the scalar code's shortcuts), and a result that
    neither overflows nor leaves the normal range (-1024 < y*log2(x) < 1024, no subnormal). The
    final scaling's integer n = [z + 1/2] uses per-lane shifts in the scalar code: here it is
    the same value from f64x2 arithmetic (exact: trunc(clear_lo(z) +- 1/2))."""
    ix, jj, ii, kk, n, ax, bp, dph, dpl, u, v, ss, s_h, t_h, t_l, s_l = f.vars(
        "ix jj ii kk n ax bp dph dpl u v ss s_h t_h t_l s_l"
    )
    s2, r, p_h, p_l, z_h, z_l, t, t1, t2, y1, z, big, nh, tt, w, zb, ok, res = f.vars(
        "s2 r p_h p_l z_h z_l t t1 t2 y1 z big nh tt w zb ok res"
    )
    ay = vabs(y)
    y_ok = vand(
        vand(ay > 0.0, ay < from_words(0x41E00001)),
        vnot(vor(vor(ay.eq(1.0), y.eq(2.0)), y.eq(0.5))),
    )
    stmts = [
        ok.set(vand(vand(_normal_positive(x), vnot(x.eq(1.0))), y_ok)),
        ix.set(shr_u(x, 32)),
        n.set(isub(shr_u(ix, 20), 0x3FF)),
        jj.set(vand(ix, 0x000FFFFF)),
        ix.set(vor(jj, isplat(0x3FF00000))),
        ii.set(shr_u(ige(jj, 0xBB67A), 63)),  # x/2: above sqrt(3)
        kk.set(vand(shr_u(igt(jj, 0x3988E), 63), _prim(Op.V128_XOR, ii, isplat(1)))),  # 1.5 or 1
        n.set(iadd(n, ii)),
        ix.set(isub(ix, shl(ii, 20))),
        ax.set(vor(vand(x, 0xFFFFFFFF), shl(ix, 32))),
        bp.set(pick(1.5, 1.0, isub(0, kk))),
        dph.set(pick(P.dp_h1, 0.0, isub(0, kk))),
        dpl.set(pick(P.dp_l1, 0.0, isub(0, kk))),
        u.set(ax - bp),
        v.set(1.0 / (ax + bp)),
        ss.set(u * v),
        s_h.set(clear_lo(ss)),
        t_h.set(shl(iadd(iadd(vor(shr_u(ix, 1), isplat(0x20000000)), 0x00080000), shl(kk, 18)), 32)),
        t_l.set(ax - (t_h - bp)),
        s_l.set(v * ((u - s_h * t_h) - s_h * t_l)),
        s2.set(ss * ss),
        r.set(s2 * s2 * horner(s2, P.L)),
        r.set(r + s_l * (s_h + ss)),
        s2.set(s_h * s_h),
        t_h.set(clear_lo(3.0 + s2 + r)),
        t_l.set(r - ((t_h - 3.0) - s2)),
        u.set(s_h * t_h),
        v.set(s_l * t_h + t_l * ss),
        p_h.set(clear_lo(u + v)),
        p_l.set(v - (p_h - u)),
        z_h.set(P.cp_h * p_h),
        z_l.set(P.cp_l * p_h + p_l * P.cp + dpl),
        t.set(int_f64(n)),
        t1.set(clear_lo(((z_h + z_l) + dph) + t)),
        t2.set(z_l - (((t1 - t) - dph) - z_h)),
        y1.set(clear_lo(y)),
        p_l.set((y - y1) * t1 + y * t2),
        p_h.set(y1 * t1),
        z.set(p_l + p_h),
        ok.set(vand(ok, vabs(z) < 1024.0)),
        # |z| > 0.5: n = [z + 1/2], p_h -= n
        big.set(igt(shr_u(vabs(z), 32), 0x3FE00000)),
        nh.set(_prim(Op.F64X2_TRUNC, clear_lo(z) + vcopysign(0.5, z))),
        n.set(vand(lane_int(nh), big)),
        p_h.set(pick(p_h - nh, p_h, big)),
        tt.set(clear_lo(p_l + p_h)),
        u.set(tt * P.lg2_h),
        v.set((p_l - (tt - p_h)) * P.lg2 + tt * P.lg2_l),
        z.set(u + v),
        w.set(v - (z - u)),
        tt.set(z * z),
        t1.set(z - tt * horner(tt, exp_log.EXP_P)),
        r.set((z * t1) / (t1 - 2.0) - (w + z * w)),
        z.set(1.0 - (r - z)),
        zb.set(iadd(z, shl(n, 52))),  # with_hi(z, hi32(z) + (n << 20))
        ok.set(vand(vand(ok, igt(shr_s(zb, 52), 0)), ilt(shr_s(zb, 52), 0x7FF))),  # normal results only
        res.set(1.0 * zb),  # s * ..., s = 1 for x > 0
    ]
    return stmts, res, ok


def _atan(f: VFn, x: Var) -> Main:
    """atan (fdlibm s_atan.c) for |x| >= 2^-27, inf included: the small-argument polynomial, the
    four reduced regions and the huge constant all computed, the scalar code's choice selected."""
    H, Lo, A = trig.ATANHI, trig.ATANLO, trig.AT
    ax, t, hi, lo, small, res, ok = f.vars("ax t hi lo small res ok")

    def poly(u: Expr, p: str) -> tuple[list[Stmt], Var]:  # sp = (atan(u) - u)/(-u)
        z, w, sp = f.vars(f"{p}z {p}w {p}sp")
        return [z.set(u * u), w.set(z * z), sp.set(z * horner(w, A[0::2]) + w * horner(w, A[1::2]))], sp

    small_poly, sp_x = poly(x, "s")
    big_poly, sp_t = poly(t, "b")
    low, mid, high = ax < from_words(0x3FE60000), ax < from_words(0x3FF30000), ax < from_words(0x40038000)

    def by_region(r0: Expr | float, r1: Expr | float, r2: Expr | float, r3: Expr | float) -> Expr:
        return pick(pick(r0, r1, low), pick(r2, r3, high), mid)

    stmts = [
        ax.set(vabs(x)),
        ok.set(ax >= from_words(0x3E400000)),
        *small_poly,
        small.set(x - x * sp_x),
        # each region's quotient with one division: the lane's own numerator and denominator
        t.set(
            by_region(2.0 * ax - 1.0, ax - 1.0, ax - 1.5, -1.0)
            / by_region(2.0 + ax, ax + 1.0, 1.0 + 1.5 * ax, ax)
        ),
        hi.set(by_region(H[0], H[1], H[2], H[3])),
        lo.set(by_region(Lo[0], Lo[1], Lo[2], Lo[3])),
        *big_poly,
        res.set(vcopysign(hi - ((t * sp_t - lo) - t), x)),
        res.set(pick(small, res, ax < from_words(0x3FDC0000))),
        res.set(pick(vcopysign(_v(H[3]) + Lo[3], x), res, ax >= from_words(0x44100000))),
    ]
    return stmts, res, ok


class _Prefixed(VFn):
    """A view of ``f`` whose locals carry a prefix: another builder's main path inlined into
    ``f`` (cosh's exp) without clashing with ``f``'s own locals of the same names."""

    def __init__(self, f: VFn, prefix: str) -> None:  # noqa: D107 - shares f's locals
        self.__dict__.update(f.__dict__)
        self._f, self._prefix = f, prefix

    def local(self, name: str, ty: k.T = F64) -> Var:
        return self._f.local(self._prefix + name, ty)


# --------------------------------------------------------------------------- the two forms
_EXTRACT = (Op.F64X2_EXTRACT_LANE0, Op.F64X2_EXTRACT_LANE1)
_REPLACE = (Op.F64X2_REPLACE_LANE0, Op.F64X2_REPLACE_LANE1)


def _scalar_lane(scalar: str, args: list[Var], res: Var, m: Var, i: int) -> Stmt:
    """Lane ``i`` off the main path (bit ``i`` of ``m`` clear): the scalar function's result."""
    value = call(scalar, *(_prim(_EXTRACT[i], a) for a in args))
    return if_(eqz(m & (1 << i)), [res.set(_prim(_REPLACE[i], res, value))])


def _define(name: str, build: Callable[..., Main], params: tuple[str, ...] = ("x",)) -> None:
    scalar = FUNCTIONS[name].wasm_name
    for main in (True, False):
        suffix = "_main" if main else ""
        f = VFn(f"m_{name}_f64x2{suffix}", [(p, V128) for p in params], (V128, I32) if main else V128)
        args = [f.param(p) for p in params]
        stmts, res, ok = build(f, *args)
        mask = _prim(Op.I64X2_BITMASK, ok)
        if main:
            body = [*stmts, ret_many(res, mask)]
        else:
            m = f.local("vm", I32)
            lanes = [_scalar_lane(scalar, args, res, m, i) for i in (0, 1)]
            body = [*stmts, m.set(mask), if_(m.ne(3), lanes), ret(res, V128)]
        register_vector(name, f, body, main=main)


def define_vector() -> None:
    _define("sin", _sincos("sin"))
    _define("cos", _sincos("cos"))
    _define("tan", _tan)
    _define("exp", _exp)
    _define("exp2", _exp2)
    _define("expm1", _expm1)
    _define("log", _log)
    _define("log2", _log2)
    _define("log10", _log10)
    _define("tanh", _tanh)
    _define("sinh", _sinh)
    _define("cosh", _cosh)
    _define("atan", _atan)
    _define("pow", _pow, ("x", "y"))
    _define("pypow", _pow, ("x", "y"))  # float ** float: the same on the main path
