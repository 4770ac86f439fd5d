"""sin, cos, tan (fdlibm, with a Payne-Hanek reduction for huge arguments) and the inverse
trigonometric functions (fdlibm e_asin.c, e_acos.c, s_atan.c, e_atan2.c)."""

from __future__ import annotations

from ..kernel import Stmt
from .dsl import (
    F64,
    I32,
    I64,
    INF,
    NAN,
    Expr,
    Fn,
    Var,
    bits,
    call,
    clear_lo,
    clz,
    eqz,
    ext_u,
    fabs,
    fcopysign,
    fnearest,
    from_bits,
    from_words,
    fsqrt,
    hi32,
    horner,
    if_,
    invoke,
    ret,
    ret_many,
    select,
    split,
    trap,
    trunc_i32,
    two_prod_err,
    u64_to_f64,
    wrap,
)
from .registry import (
    ERR_DOMAIN,
    register,
)

_w = from_words

# ---------------------------------------------------------------------------
# Argument reduction mod pi/2
# ---------------------------------------------------------------------------

INVPIO2 = _w(0x3FE45F30, 0x6DC9C883)
PIO2_1 = _w(0x3FF921FB, 0x54400000)  # first 33 bits of pi/2
PIO2_1T = _w(0x3DD0B461, 0x1A626331)  # pi/2 - PIO2_1
PIO2_2 = _w(0x3DD0B461, 0x1A600000)  # second 33 bits
PIO2_2T = _w(0x3BA3198A, 0x2E037073)
PIO2_3 = _w(0x3BA3198A, 0x2E000000)  # third 33 bits
PIO2_3T = _w(0x397B839A, 0x252049C1)
PIO2_HI = _w(0x3FF921FB, 0x54442D18)
PIO2_LO = _w(0x3C91A626, 0x33145C07)
MEDIUM_LIMIT = 0x413921FB  # high word of 2^20 * pi/2: beyond, Payne-Hanek


def _two_over_pi_words(n_words: int = 19) -> list[int]:
    """Bits of 2/pi as 64-bit words (b1..b64, b65..b128, ...), exact.

    Computed with Machin's formula in Python integers instead of pasting a
    table: the first word must be 0xA2F9836E4E441529 (checked in tests).
    """
    prec = 64 * n_words + 96  # guard bits

    def atan_inv(n: int) -> int:
        total, term, k, sign = 0, (1 << prec) // n, 1, 1
        while term:
            total += sign * (term // k)
            term //= n * n
            k += 2
            sign = -sign
        return total

    pi = 16 * atan_inv(5) - 4 * atan_inv(239)  # pi * 2^prec
    two_over_pi = (2 << (2 * prec)) // pi  # 2/pi * 2^prec
    mask = (1 << 64) - 1
    return [(two_over_pi >> (prec - 64 * (i + 1))) & mask for i in range(n_words)]


TWO_OVER_PI_WORDS = _two_over_pi_words()


def define_reduction_helpers() -> None:
    # Word i of [0] + bits(2/pi), without linear memory: a binary search over i (unsigned, so
    # anything beyond the table gives 0), each leaf returning its word as a constant.
    words = [0, *TWO_OVER_PI_WORDS]
    f = Fn("m_2opi_word", [("i", I32)], I64)
    i = f.param("i")

    def table(lo: int, hi: int) -> list[Stmt]:  # words[lo:hi], for i in [lo, hi)
        if hi - lo == 1:
            return [ret(words[lo], I64)]
        mid = (lo + hi) // 2
        return [if_(i.ult(mid), table(lo, mid)), *table(mid, hi)]

    body = [if_(i.uge(len(words)), [ret(0, I64)]), *table(0, len(words))]
    register("_2opi_word", f, body, False, helper=True)

    # High 64 bits of an unsigned 64x64 product (WASM has no mulhi).
    f = Fn("m_umulh", [("a", I64), ("b", I64)], I64)
    a, b = f.param("a"), f.param("b")
    a0, a1, b0, b1, p00, p01, p10, p11, mid = f.vars("a0 a1 b0 b1 p00 p01 p10 p11 mid", I64)
    m32 = 0xFFFFFFFF
    body = [
        a0.set(a & m32), a1.set(a >> 32), b0.set(b & m32), b1.set(b >> 32),
        p00.set(a0 * b0), p01.set(a0 * b1), p10.set(a1 * b0), p11.set(a1 * b1),
        mid.set((p00 >> 32) + (p01 & m32) + (p10 & m32)),
        ret(p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32), I64),
    ]  # fmt: skip
    register("_umulh", f, body, False, helper=True)

    # Payne-Hanek for finite |x| >= 2^20*pi/2.  x = M*2^k (M: 53-bit integer);
    # only the bits of 2/pi with weight <= 2 after scaling by 2^k matter mod 4,
    # so a 192-bit window W of 2/pi times M, mod 2^192, is x*2/pi mod 4 as a
    # fixed-point number with 2 integer bits.  Truncating W costs < 2^-137
    # absolute, while a double is never closer than ~2^-62 to a multiple of
    # pi/2, so >= 70 correct bits survive the cancellation.
    f = Fn("m_rem_pio2_large", [("x", F64)], (I32, F64, F64))
    x = f.param("x")
    (bx, m, sh, g0, g1, g2, g3, w0, w1, w2, p0, p1, p2, t, q0, q1, q2, s, hh, ll) = f.vars(
        "bx m sh g0 g1 g2 g3 w0 w1 w2 p0 p1 p2 t q0 q1 q2 s hh ll", I64
    )
    e, q, n, neg, lz, flip = f.vars("e q n neg lz flip", I32)
    fa, fb, fp, tail, ah, al, y0, y1 = f.vars("fa fb fp tail ah al y0 y1", F64)

    def word(i: Expr) -> Expr:
        return call("m_2opi_word", i, ty=I64)

    def umulh(u: Expr, v: Expr) -> Expr:
        return call("m_umulh", u, v, ty=I64)

    def funnel(hi: Expr, lo: Expr) -> Expr:  # (hi:lo << sh) >> 64, sh in [0, 63]
        return (hi << sh) | ((lo >> 1) >> (63 - sh))

    err_stmts, err = two_prod_err(fa, fp, *split(PIO2_HI), ah, al)
    body = [
        bx.set(bits(x) & 0x7FFFFFFFFFFFFFFF),
        e.set(wrap(bx >> 52)),
        m.set((bx & 0xFFFFFFFFFFFFF) | (1 << 52)),
        q.set(e - 1013),  # bit index of 2/pi's 2^1 weight after scaling
        sh.set(ext_u(q & 63)),
        q.set(q >> 6),
        g0.set(word(q)), g1.set(word(q + 1)), g2.set(word(q + 2)), g3.set(word(q + 3)),
        w2.set(funnel(g0, g1)), w1.set(funnel(g1, g2)), w0.set(funnel(g2, g3)),
        # P = M*W mod 2^192
        p0.set(m * w0),
        t.set(umulh(m, w0)),
        p1.set(t + m * w1),
        p2.set(umulh(m, w1) + m * w2 + ext_u(p1.ult(t))),
        n.set(wrap(p2 >> 62)),
        # Q = fractional part (P << 2), a 192-bit fixed-point number in [0, 1)
        q2.set((p2 << 2) | (p1 >> 62)),
        q1.set((p1 << 2) | (p0 >> 62)),
        q0.set(p0 << 2),
        neg.set(wrap(q2 >> 63)),
        if_(neg, [  # fraction >= 1/2: round n up, Q := 2^192 - Q
            n.set(n + 1),
            q0.set(-q0),
            q1.set(~q1 + ext_u(eqz(q0))),
            q2.set(~q2 + ext_u(eqz(q0) & eqz(q1))),
        ]),
        lz.set(0),
        if_(eqz(q2), [q2.set(q1), q1.set(q0), q0.set(0), lz.set(64)]),
        if_(eqz(q2), [q2.set(q1), q1.set(q0), q0.set(0), lz.set(lz + 64)]),
        sh.set(clz(q2)),
        hh.set(funnel(q2, q1)),
        ll.set(funnel(q1, q0)),
        lz.set(lz + wrap(sh)),
        # fraction ~= (hh*2^64 + ll) * 2^-(128+lz), as a double-double fa+fb
        fa.set(u64_to_f64(hh >> 11) * from_bits(ext_u(970 - lz) << 52)),
        fb.set(u64_to_f64(((hh & 0x7FF) << 53) | (ll >> 11)) * from_bits(ext_u(906 - lz) << 52)),
        # times pi/2 in double-double (exact product of the leading terms)
        fp.set(fa * PIO2_HI),
        *err_stmts,
        tail.set(err + (fa * PIO2_LO + fb * PIO2_HI)),
        y0.set(fp + tail),
        y1.set(tail - (y0 - fp)),
        flip.set(neg ^ wrap(bits(x) >> 63)),
        if_(wrap(bits(x) >> 63), [n.set(-n)]),
        ret_many(n, select(-y0, y0, flip), select(-y1, y1, flip)),
    ]  # fmt: skip
    register("_rem_pio2_large", f, body, False, helper=True)


def _reduce_pio2(f: Fn, x: Var, ix: Var) -> tuple[list[Stmt], Var, Var, Var]:
    """x = n*pi/2 + (y0 + y1), |y0+y1| <= ~pi/4, as fdlibm's __rem_pio2.

    Cody-Waite with pi/2 in three 33-bit pieces: n*PIO2_k is exact for
    |n| < 2^20, and the second/third pieces are only used when cancellation
    ate more than 16/49 bits (x close to a multiple of pi/2), which keeps the
    common path to three multiply-adds.
    """
    n = f.local("n", I32)
    y0, y1, fn, r, w, t = f.vars("y0 y1 fn r w t")
    j = f.local("j", I32)

    def lost() -> Expr:  # exponent bits lost to cancellation so far
        return j - ((hi32(y0) >> 20) & 0x7FF)

    def round_(p: float, pt: float) -> list[Stmt]:
        return [t.set(r), w.set(fn * p), r.set(t - w), w.set(fn * pt - ((t - r) - w)), y0.set(r - w)]

    medium = [
        fn.set(fnearest(x * INVPIO2)),
        n.set(trunc_i32(fn)),
        r.set(x - fn * PIO2_1),
        w.set(fn * PIO2_1T),
        y0.set(r - w),
        j.set(ix >> 20),
        if_(lost() > 16, [*round_(PIO2_2, PIO2_2T), if_(lost() > 49, round_(PIO2_3, PIO2_3T))]),
        y1.set((r - y0) - w),
    ]
    large = [invoke("m_rem_pio2_large", x, into=[n, y0, y1])]
    return [if_(ix < MEDIUM_LIMIT, medium, large)], n, y0, y1


S1, S2, S3, S4, S5, S6 = (
    _w(0xBFC55555, 0x55555549), _w(0x3F811111, 0x1110F8A6), _w(0xBF2A01A0, 0x19C161D5),
    _w(0x3EC71DE3, 0x57B1FE7D), _w(0xBE5AE5E6, 0x8A2B9CEB), _w(0x3DE5D93A, 0x5ACFD57C),
)  # fmt: skip
C1, C2, C3, C4, C5, C6 = (
    _w(0x3FA55555, 0x5555554C), _w(0xBF56C16C, 0x16C15177), _w(0x3EFA01A0, 0x19CB1590),
    _w(0xBE927E4F, 0x809C52AD), _w(0x3E21EE9E, 0xBDB4B1C4), _w(0xBDA8FAE9, 0xBE8838D4),
)  # fmt: skip


def _sincos_kernels(f: Fn, y0: Var, y1: Var, out: Var) -> tuple[list[Stmt], list[Stmt]]:
    """fdlibm __kernel_sin(y0, y1, 1) and __kernel_cos(y0, y1) on |y| < pi/4.

    Returns (sin statements, cos statements), each assigning ``out``; both
    expect ``kz = y0^2`` and ``kw = kz^2`` to be set first (see define_trig).
    """
    z, w, r, v, hz, c1 = f.vars("kz kw kr kv khz kc1")
    sin_k = [
        r.set(S2 + z * (S3 + z * S4) + z * w * (S5 + z * S6)),
        v.set(z * y0),
        out.set(y0 - ((z * (0.5 * y1 - v * r) - y1) - v * S1)),
    ]
    cos_k = [
        r.set(z * (C1 + z * (C2 + z * C3)) + w * w * (C4 + z * (C5 + z * C6))),
        hz.set(0.5 * z),
        c1.set(1.0 - hz),
        out.set(c1 + (((1.0 - c1) - hz) + (z * r - y0 * y1))),
    ]
    return sin_k, cos_k


def _trig_entry(f: Fn, x: Var, tiny: int, tiny_ret: Expr | float) -> tuple[list[Stmt], Var]:
    """Shared prologue: nan -> nan, inf -> ValueError, tiny |x| shortcut."""
    ix = f.local("ix", I32)
    return [
        ix.set(hi32(x) & 0x7FFFFFFF),
        if_(ix >= 0x7FF00000, [if_(x.ne(x), [ret(x)]), trap(ERR_DOMAIN)]),
        # tiny: also keeps sin(-0.0) == -0.0, which the kernels would lose
        if_(ix < tiny, [ret(tiny_ret)]),
    ], ix


def define_trig() -> None:
    for name in ("sin", "cos"):
        f = Fn(f"m_{name}", [("x", F64)])
        x = f.param("x")
        entry, ix = _trig_entry(f, x, 0x3E500000, x if name == "sin" else 1.0)
        red, n, y0, y1 = _reduce_pio2(f, x, ix)
        q = f.local("q", I32)
        t = f.local("kt")
        z, w = f.local("kz"), f.local("kw")
        sin_k, cos_k = _sincos_kernels(f, y0, y1, t)
        # One kernel per call, chosen by the quadrant's parity.  This branch is
        # well predicted for audio (a phase sweeps through each quadrant for
        # many samples): 6.9 vs 9.8 ns/call for a 440 Hz sweep compared with
        # evaluating both kernels and selecting, and equal on random inputs.
        # sin: s, c, -s, -c by quadrant; cos: c, -s, -c, s.
        use_cos, neg = (q & 1, q & 2) if name == "sin" else (eqz(q & 1), (q + 1) & 2)
        tail = [
            z.set(y0 * y0),
            w.set(z * z),
            q.set(n & 3),
            if_(use_cos, cos_k, sin_k),
            ret(select(-t, t, neg)),
        ]
        register(name, f, [*entry, *red, *tail], True)

    define_tan()


TAN_T = [
    _w(0x3FD55555, 0x55555563), _w(0x3FC11111, 0x1110FE7A), _w(0x3FABA1BA, 0x1BB341FE),
    _w(0x3F9664F4, 0x8406D637), _w(0x3F8226E3, 0xE96E8493), _w(0x3F6D6D22, 0xC9560328),
    _w(0x3F57DBC8, 0xFEE08315), _w(0x3F4344D8, 0xF2F26501), _w(0x3F3026F7, 0x1A8D1068),
    _w(0x3F147E88, 0xA03792A6), _w(0x3F12B80F, 0x32F0A7E9), _w(0xBEF375CB, 0xDB605373),
    _w(0x3EFB2A70, 0x74BF7AD4),
]  # fmt: skip
PIO4 = _w(0x3FE921FB, 0x54442D18)
PIO4LO = _w(0x3C81A626, 0x33145C07)


def define_tan() -> None:
    """tan via fdlibm __kernel_tan (< 1 ulp), which also gives -1/tan exactly."""
    f = Fn("m_tan", [("x", F64)])
    x = f.param("x")
    entry, ix = _trig_entry(f, x, 0x3E400000, x)
    red, n, y0, y1 = _reduce_pio2(f, x, ix)
    hx, big, odd = f.vars("hx big odd", I32)
    z, w, r, v, s, a, tt = f.vars("tz tw tr tv ts ta tt")
    T = TAN_T
    kernel = [
        hx.set(hi32(y0)),
        odd.set(n & 1),
        big.set((hx & 0x7FFFFFFF) >= 0x3FE59428),  # |y| >= 0.6744: use pi/4 - y
        if_(big, [
            if_(hx < 0, [y0.set(-y0), y1.set(-y1)]),
            y0.set((PIO4 - y0) + (PIO4LO - y1)),
            y1.set(0.0),
        ]),
        z.set(y0 * y0),
        w.set(z * z),
        r.set(horner(w, [T[1], T[3], T[5], T[7], T[9], T[11]])),
        v.set(z * horner(w, [T[2], T[4], T[6], T[8], T[10], T[12]])),
        s.set(z * y0),
        r.set(y1 + z * (s * (r + v) + y1) + T[0] * s),
        w.set(y0 + r),
        if_(big, [
            v.set(select(-1.0, 1.0, odd)),
            ret(select(-1.0, 1.0, hx < 0) * (v - 2.0 * (y0 - (w * w / (w + v) - r)))),
        ]),
        if_(eqz(odd), [ret(w)]),
        # -1/(y0+r) to < 1 ulp: split w and the quotient in hi/lo halves
        z.set(clear_lo(w)),
        v.set(r - (z - y0)),
        a.set(-1.0 / w),
        tt.set(clear_lo(a)),
        ret(tt + a * ((1.0 + tt * z) + tt * v)),
    ]  # fmt: skip
    register("tan", f, [*entry, *red, *kernel], True)


# ---------------------------------------------------------------------------
# Inverse trigonometric functions (fdlibm e_asin.c, e_acos.c, s_atan.c, e_atan2.c)
# ---------------------------------------------------------------------------

PS = [
    _w(0x3FC55555, 0x55555555), _w(0xBFD4D612, 0x03EB6F7D), _w(0x3FC9C155, 0x0E884455),
    _w(0xBFA48228, 0xB5688F3B), _w(0x3F49EFE0, 0x7501B288), _w(0x3F023DE1, 0x0DFDF709),
]  # fmt: skip
QS = [1.0, _w(0xC0033A27, 0x1C8A2D4B), _w(0x40002AE5, 0x9C598AC8),
      _w(0xBFE6066C, 0x1B8D0159), _w(0x3FB3B8C5, 0xB12E9282)]  # fmt: skip
PIO2_LO_ASIN = _w(0x3C91A626, 0x33145C07)
PI = _w(0x400921FB, 0x54442D18)
PI_LO = _w(0x3CA1A626, 0x33145C07)


def _asin_r(z: Expr) -> Expr:
    """fdlibm's rational R(z) ~ (asin(sqrt z) - sqrt z) / z^1.5."""
    return (z * horner(z, PS)) / horner(z, QS)


# fdlibm s_atan.c's constants (module level: the f64x2 form in vector.py uses them too)
ATANHI = [_w(0x3FDDAC67, 0x0561BB4F), _w(0x3FE921FB, 0x54442D18),
          _w(0x3FEF730B, 0xD281F69B), _w(0x3FF921FB, 0x54442D18)]  # fmt: skip
ATANLO = [_w(0x3C7A2B7F, 0x222F65E2), _w(0x3C81A626, 0x33145C07),
          _w(0x3C700788, 0x7AF0CBBD), _w(0x3C91A626, 0x33145C07)]  # fmt: skip
AT = [
    _w(0x3FD55555, 0x5555550D), _w(0xBFC99999, 0x9998EBC4), _w(0x3FC24924, 0x920083FF),
    _w(0xBFBC71C6, 0xFE231671), _w(0x3FB745CD, 0xC54C206E), _w(0xBFB3B0F2, 0xAF749A6D),
    _w(0x3FB10D66, 0xA0D03D51), _w(0xBFADDE2D, 0x52DEFD9A), _w(0x3FA97B4B, 0x24760DEB),
    _w(0xBFA2B444, 0x2C6A6C2F), _w(0x3F90AD3A, 0xE322DA11),
]  # fmt: skip


def define_inverse_trig() -> None:
    # asin
    f = Fn("m_asin", [("x", F64)])
    x = f.param("x")
    ix = f.local("ix", I32)
    t, w, s, c, r, p, q = f.vars("t w s c r p q")
    body = [
        ix.set(hi32(x) & 0x7FFFFFFF),
        if_(ix >= 0x3FF00000, [
            if_(x.ne(x), [ret(x)]),
            if_(fabs(x).eq(1.0), [ret(x * PIO2_HI + x * PIO2_LO_ASIN)]),
            trap(ERR_DOMAIN),
        ]),
        if_(ix < 0x3FE00000, [
            if_(ix < 0x3E500000, [ret(x)]),
            t.set(x * x),
            ret(x + x * _asin_r(t)),
        ]),
        # 0.5 <= |x| < 1: asin(x) = pi/2 - 2*asin(sqrt((1-|x|)/2))
        t.set((1.0 - fabs(x)) * 0.5),
        s.set(fsqrt(t)),
        r.set(_asin_r(t)),
        if_(ix >= 0x3FEF3333, [
            t.set(PIO2_HI - (2.0 * (s + s * r) - PIO2_LO_ASIN)),
        ], [
            w.set(clear_lo(s)),
            c.set((t - w * w) / (s + w)),
            p.set(2.0 * s * r - (PIO2_LO_ASIN - 2.0 * c)),
            q.set(PIO4 - 2.0 * w),
            t.set(PIO4 - (p - q)),
        ]),
        ret(fcopysign(t, x)),
    ]  # fmt: skip
    register("asin", f, body, True)

    # acos
    f = Fn("m_acos", [("x", F64)])
    x = f.param("x")
    ix = f.local("ix", I32)
    z, s, df, c, w = f.vars("z s df c w")
    body = [
        ix.set(hi32(x) & 0x7FFFFFFF),
        if_(ix >= 0x3FF00000, [
            if_(x.ne(x), [ret(x)]),
            if_(x.eq(1.0), [ret(0.0)]),
            if_(x.eq(-1.0), [ret(PI + 2.0 * PIO2_LO_ASIN)]),
            trap(ERR_DOMAIN),
        ]),
        if_(ix < 0x3FE00000, [
            if_(ix <= 0x3C600000, [ret(PIO2_HI + PIO2_LO_ASIN)]),
            z.set(x * x),
            ret(PIO2_HI - (x - (PIO2_LO_ASIN - x * _asin_r(z)))),
        ]),
        if_(x < 0.0, [
            z.set((1.0 + x) * 0.5),
            s.set(fsqrt(z)),
            w.set(_asin_r(z) * s - PIO2_LO_ASIN),
            ret(PI - 2.0 * (s + w)),
        ]),
        z.set((1.0 - x) * 0.5),
        s.set(fsqrt(z)),
        df.set(clear_lo(s)),
        c.set((z - df * df) / (s + df)),
        w.set(_asin_r(z) * s + c),
        ret(2.0 * (df + w)),
    ]  # fmt: skip
    register("acos", f, body, True)

    # atan
    atanhi, atanlo, aT = ATANHI, ATANLO, AT
    f = Fn("m_atan", [("x", F64)])
    x = f.param("x")
    ix = f.local("ix", I32)
    ax, t, z, w, hi, lo, sp = f.vars("ax t z w hi lo sp")

    def poly(u: Var) -> list[Stmt]:  # sp = (atan(u) - u)/(-u), odd/even split
        return [
            z.set(u * u),
            w.set(z * z),
            sp.set(z * horner(w, aT[0::2]) + w * horner(w, aT[1::2])),
        ]

    def region(k: int, expr: Expr) -> list[Stmt]:
        return [t.set(expr), hi.set(atanhi[k]), lo.set(atanlo[k])]

    body = [
        ix.set(hi32(x) & 0x7FFFFFFF),
        if_(ix >= 0x44100000, [  # |x| >= 2^66 or nan
            if_(x.ne(x), [ret(x)]),
            ret(fcopysign(atanhi[3] + atanlo[3], x)),
        ]),
        if_(ix < 0x3FDC0000, [  # |x| < 0.4375
            if_(ix < 0x3E400000, [ret(x)]),
            *poly(x),
            ret(x - x * sp),
        ]),
        ax.set(fabs(x)),
        if_(ix < 0x3FF30000, [
            if_(ix < 0x3FE60000,
                region(0, (2.0 * ax - 1.0) / (2.0 + ax)),
                region(1, (ax - 1.0) / (ax + 1.0))),
        ], [
            if_(ix < 0x40038000,
                region(2, (ax - 1.5) / (1.0 + 1.5 * ax)),
                region(3, -1.0 / ax)),
        ]),
        *poly(t),
        ret(fcopysign(hi - ((t * sp - lo) - t), x)),
    ]  # fmt: skip
    register("atan", f, body, False)

    # atan2, with CPython's m_atan2 special cases in front of fdlibm's
    f = Fn("m_atan2", [("y", F64), ("x", F64)])
    y, x = f.param("y"), f.param("x")
    hx, hy, ix, iy, m, k = f.vars("hx hy ix iy m k", I32)
    z = f.local("z")
    pio2 = PIO2_HI
    body = [
        if_(x.ne(x) | y.ne(y), [ret(NAN)]),
        if_(fabs(y).eq(INF), [
            if_(fabs(x).eq(INF), [
                ret(fcopysign(select(0.25 * PI, 0.75 * PI, bits(x) >= 0), y)),
            ]),
            ret(fcopysign(0.5 * PI, y)),
        ]),
        if_(fabs(x).eq(INF) | y.eq(0.0), [
            ret(fcopysign(select(0.0, PI, bits(x) >= 0), y)),
        ]),
        if_(x.eq(1.0), [ret(call("m_atan", y))]),
        hx.set(hi32(x)), hy.set(hi32(y)),
        ix.set(hx & 0x7FFFFFFF), iy.set(hy & 0x7FFFFFFF),
        m.set((hy >> 31) | ((hx >> 30) & 2)),  # 2*sign(x) + sign(y)
        if_(x.eq(0.0), [ret(fcopysign(pio2, y))]),
        k.set((iy - ix).sar(20)),
        if_(k > 60, [  # |y/x| > 2^60
            z.set(pio2 + 0.5 * PI_LO),
            m.set(m & 1),
        ], [
            if_((hx < 0) & (k < -60), [z.set(0.0)], [z.set(call("m_atan", fabs(y / x)))]),
        ]),
        if_(eqz(m), [ret(z)]),
        if_(m.eq(1), [ret(-z)]),
        if_(m.eq(2), [ret(PI - (z - PI_LO))]),
        ret((z - PI_LO) - PI),
    ]  # fmt: skip
    register("atan2", f, body, False)
