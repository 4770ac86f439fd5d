"""The operations of the kernel IR, as enums: what each computes, on which types.

Two levels share one IR (:mod:`.kernel`):

* :class:`PyOp`: the *Python* operators the frontend produces (``Binary``, ``Unary``, ``Compare``
  nodes). They mean what CPython means: ``//`` floors, ``%`` takes the divisor's sign, ints are
  exact (here: 64-bit, overflow traps), ``1 / 0`` raises. The Python-semantics pass
  (:mod:`.passes.pysemantics`) rewrites them into primitive operations and explicit ``Trap``\\ s.
* :class:`Op`: *primitive* operations, each with one fixed signature and the exact meaning of the
  WebAssembly instruction of the same name (IEEE 754 binary64 arithmetic, two's-complement
  wrapping integers, shifts modulo the width). Backends implement only these: the WebAssembly
  printer maps each to its instruction (the ``wasm`` attribute), the reference evaluator to a Python
  function. ``I64_DIV_S`` and friends and ``I64_TRUNC_F64_S`` trap in WebAssembly on a zero divisor
  or an out-of-range value; the passes guard every use, so reaching such a trap is a bug of ours.
"""

from __future__ import annotations

from enum import Enum

from .kernel import T


class PyOp(str, Enum):
    """Python operators (high level: lowered by the Python-semantics pass)."""

    ADD = "+"
    SUB = "-"
    MUL = "*"
    TRUEDIV = "/"
    FLOORDIV = "//"
    MOD = "%"
    POW = "**"
    SQUARE = "sq"  # x ** 2 on floats: x * x, with pow's overflow error
    LSHIFT = "<<"
    RSHIFT = ">>"
    BITAND = "&"
    BITOR = "|"
    BITXOR = "^"
    # unary
    NEG = "neg"
    NOT = "not"
    INVERT = "invert"
    ABS = "abs"
    POS = "pos"
    # comparisons
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="


BINARY_PYOPS = frozenset(
    {
        PyOp.ADD,
        PyOp.SUB,
        PyOp.MUL,
        PyOp.TRUEDIV,
        PyOp.FLOORDIV,
        PyOp.MOD,
        PyOp.POW,
        PyOp.SQUARE,
        PyOp.LSHIFT,
        PyOp.RSHIFT,
        PyOp.BITAND,
        PyOp.BITOR,
        PyOp.BITXOR,
    }
)
UNARY_PYOPS = frozenset({PyOp.NEG, PyOp.NOT, PyOp.INVERT, PyOp.ABS, PyOp.POS})
COMPARE_PYOPS = frozenset({PyOp.LT, PyOp.LE, PyOp.GT, PyOp.GE, PyOp.EQ, PyOp.NE})

F, L, W, B, V = T.F64, T.I64, T.I32, T.BOOL, T.V128


class Op(Enum):
    """Primitive operations: ``(wasm instruction, argument types, result type)``.

    ``BOOL`` values are 0 or 1 and are ``i32`` in WebAssembly: an ``I32_*`` operation accepts a
    ``BOOL`` argument (see :func:`accepts`), and comparisons give ``BOOL``.
    """

    # f64 arithmetic
    F64_ADD = ("f64.add", (F, F), F)
    F64_SUB = ("f64.sub", (F, F), F)
    F64_MUL = ("f64.mul", (F, F), F)
    F64_DIV = ("f64.div", (F, F), F)
    F64_MIN = ("f64.min", (F, F), F)
    F64_MAX = ("f64.max", (F, F), F)
    F64_COPYSIGN = ("f64.copysign", (F, F), F)
    F64_NEG = ("f64.neg", (F,), F)
    F64_ABS = ("f64.abs", (F,), F)
    F64_SQRT = ("f64.sqrt", (F,), F)
    F64_FLOOR = ("f64.floor", (F,), F)
    F64_CEIL = ("f64.ceil", (F,), F)
    F64_TRUNC = ("f64.trunc", (F,), F)
    F64_NEAREST = ("f64.nearest", (F,), F)
    # f64 comparisons
    F64_EQ = ("f64.eq", (F, F), B)
    F64_NE = ("f64.ne", (F, F), B)
    F64_LT = ("f64.lt", (F, F), B)
    F64_LE = ("f64.le", (F, F), B)
    F64_GT = ("f64.gt", (F, F), B)
    F64_GE = ("f64.ge", (F, F), B)
    # i64 arithmetic (wrapping)
    I64_ADD = ("i64.add", (L, L), L)
    I64_SUB = ("i64.sub", (L, L), L)
    I64_MUL = ("i64.mul", (L, L), L)
    I64_DIV_S = ("i64.div_s", (L, L), L)
    I64_DIV_U = ("i64.div_u", (L, L), L)
    I64_REM_S = ("i64.rem_s", (L, L), L)
    I64_REM_U = ("i64.rem_u", (L, L), L)
    I64_AND = ("i64.and", (L, L), L)
    I64_OR = ("i64.or", (L, L), L)
    I64_XOR = ("i64.xor", (L, L), L)
    I64_SHL = ("i64.shl", (L, L), L)
    I64_SHR_S = ("i64.shr_s", (L, L), L)
    I64_SHR_U = ("i64.shr_u", (L, L), L)
    I64_CLZ = ("i64.clz", (L,), L)
    I64_CTZ = ("i64.ctz", (L,), L)
    I64_POPCNT = ("i64.popcnt", (L,), L)
    I64_EQZ = ("i64.eqz", (L,), B)
    I64_EQ = ("i64.eq", (L, L), B)
    I64_NE = ("i64.ne", (L, L), B)
    I64_LT_S = ("i64.lt_s", (L, L), B)
    I64_LT_U = ("i64.lt_u", (L, L), B)
    I64_LE_S = ("i64.le_s", (L, L), B)
    I64_LE_U = ("i64.le_u", (L, L), B)
    I64_GT_S = ("i64.gt_s", (L, L), B)
    I64_GT_U = ("i64.gt_u", (L, L), B)
    I64_GE_S = ("i64.ge_s", (L, L), B)
    I64_GE_U = ("i64.ge_u", (L, L), B)
    # i32 arithmetic (wrapping; also on BOOL)
    I32_ADD = ("i32.add", (W, W), W)
    I32_SUB = ("i32.sub", (W, W), W)
    I32_MUL = ("i32.mul", (W, W), W)
    I32_DIV_S = ("i32.div_s", (W, W), W)
    I32_DIV_U = ("i32.div_u", (W, W), W)
    I32_REM_S = ("i32.rem_s", (W, W), W)
    I32_REM_U = ("i32.rem_u", (W, W), W)
    I32_AND = ("i32.and", (W, W), W)
    I32_OR = ("i32.or", (W, W), W)
    I32_XOR = ("i32.xor", (W, W), W)
    I32_SHL = ("i32.shl", (W, W), W)
    I32_SHR_S = ("i32.shr_s", (W, W), W)
    I32_SHR_U = ("i32.shr_u", (W, W), W)
    I32_CLZ = ("i32.clz", (W,), W)
    I32_CTZ = ("i32.ctz", (W,), W)
    I32_POPCNT = ("i32.popcnt", (W,), W)
    I32_EQZ = ("i32.eqz", (W,), B)
    I32_EQ = ("i32.eq", (W, W), B)
    I32_NE = ("i32.ne", (W, W), B)
    I32_LT_S = ("i32.lt_s", (W, W), B)
    I32_LT_U = ("i32.lt_u", (W, W), B)
    I32_LE_S = ("i32.le_s", (W, W), B)
    I32_LE_U = ("i32.le_u", (W, W), B)
    I32_GT_S = ("i32.gt_s", (W, W), B)
    I32_GT_U = ("i32.gt_u", (W, W), B)
    I32_GE_S = ("i32.ge_s", (W, W), B)
    I32_GE_U = ("i32.ge_u", (W, W), B)
    # BOOL logic (both operands evaluated; short-circuit forms are ``Logical``)
    BOOL_AND = ("i32.and", (B, B), B)
    BOOL_OR = ("i32.or", (B, B), B)
    BOOL_XOR = ("i32.xor", (B, B), B)
    BOOL_NOT = ("i32.eqz", (B,), B)
    # conversions
    F64_CONVERT_I64_S = ("f64.convert_i64_s", (L,), F)
    F64_CONVERT_I64_U = ("f64.convert_i64_u", (L,), F)
    F64_CONVERT_I32_S = ("f64.convert_i32_s", (W,), F)
    F64_CONVERT_I32_U = ("f64.convert_i32_u", (W,), F)
    I64_TRUNC_F64_S = ("i64.trunc_f64_s", (F,), L)  # traps on NaN / out of range: guard it
    I32_TRUNC_F64_S = ("i32.trunc_f64_s", (F,), W)  # likewise
    I64_TRUNC_SAT_F64_S = ("i64.trunc_sat_f64_s", (F,), L)
    I32_TRUNC_SAT_F64_S = ("i32.trunc_sat_f64_s", (F,), W)
    I64_EXTEND_I32_S = ("i64.extend_i32_s", (W,), L)
    I64_EXTEND_I32_U = ("i64.extend_i32_u", (W,), L)
    I32_WRAP_I64 = ("i32.wrap_i64", (L,), W)
    I64_REINTERPRET_F64 = ("i64.reinterpret_f64", (F,), L)
    F64_REINTERPRET_I64 = ("f64.reinterpret_i64", (L,), F)
    # ---- SIMD (v128). A V128 is two f64 lanes, two i64 lanes or four i32 lanes, as the op reads
    # it (lane 0 at the lower address). Lane indices are part of the op (its ``wasm`` text ends in
    # the immediate), so a Prim needs none. Comparisons give masks: all ones in a true lane.
    # f64x2 arithmetic is per lane exactly the f64 instruction (the same rounding, the same
    # NaN rules: min/max propagate NaN and order -0.0 below 0.0); pmin/pmax are ``b < a ? b : a``
    # and ``a < b ? b : a`` (one operand's bits, NaN or not: what x86's minpd/maxpd give).
    F64X2_ADD = ("f64x2.add", (V, V), V)
    F64X2_SUB = ("f64x2.sub", (V, V), V)
    F64X2_MUL = ("f64x2.mul", (V, V), V)
    F64X2_DIV = ("f64x2.div", (V, V), V)
    F64X2_MIN = ("f64x2.min", (V, V), V)
    F64X2_MAX = ("f64x2.max", (V, V), V)
    F64X2_PMIN = ("f64x2.pmin", (V, V), V)
    F64X2_PMAX = ("f64x2.pmax", (V, V), V)
    F64X2_NEG = ("f64x2.neg", (V,), V)
    F64X2_ABS = ("f64x2.abs", (V,), V)
    F64X2_SQRT = ("f64x2.sqrt", (V,), V)
    F64X2_FLOOR = ("f64x2.floor", (V,), V)
    F64X2_CEIL = ("f64x2.ceil", (V,), V)
    F64X2_TRUNC = ("f64x2.trunc", (V,), V)
    F64X2_NEAREST = ("f64x2.nearest", (V,), V)
    F64X2_EQ = ("f64x2.eq", (V, V), V)
    F64X2_NE = ("f64x2.ne", (V, V), V)
    F64X2_LT = ("f64x2.lt", (V, V), V)
    F64X2_LE = ("f64x2.le", (V, V), V)
    F64X2_GT = ("f64x2.gt", (V, V), V)
    F64X2_GE = ("f64x2.ge", (V, V), V)
    F64X2_SPLAT = ("f64x2.splat", (F,), V)
    F64X2_EXTRACT_LANE0 = ("f64x2.extract_lane 0", (V,), F)
    F64X2_EXTRACT_LANE1 = ("f64x2.extract_lane 1", (V,), F)
    F64X2_REPLACE_LANE0 = ("f64x2.replace_lane 0", (V, F), V)
    F64X2_REPLACE_LANE1 = ("f64x2.replace_lane 1", (V, F), V)
    F64X2_CONVERT_LOW_I32X4_S = ("f64x2.convert_low_i32x4_s", (V,), V)
    I32X4_TRUNC_SAT_F64X2_S_ZERO = ("i32x4.trunc_sat_f64x2_s_zero", (V,), V)
    # a*b + c per lane, rounded once *or* twice: relaxed SIMD lets the engine choose. oscen's
    # engine asks wasmtime for the deterministic choice (fused, on every host), which the
    # reference backend computes. Never the translation of a scalar ``a*b + c`` (the interpreter
    # rounds twice): only for code whose meaning is "some madd" (new vector-only math).
    F64X2_RELAXED_MADD = ("f64x2.relaxed_madd", (V, V, V), V)
    # i64x2 (wrapping; shift counts are i32, taken modulo 64)
    I64X2_ADD = ("i64x2.add", (V, V), V)
    I64X2_SUB = ("i64x2.sub", (V, V), V)
    I64X2_MUL = ("i64x2.mul", (V, V), V)
    I64X2_NEG = ("i64x2.neg", (V,), V)
    I64X2_SHL = ("i64x2.shl", (V, W), V)
    I64X2_SHR_S = ("i64x2.shr_s", (V, W), V)
    I64X2_SHR_U = ("i64x2.shr_u", (V, W), V)
    I64X2_EQ = ("i64x2.eq", (V, V), V)
    I64X2_NE = ("i64x2.ne", (V, V), V)
    I64X2_LT_S = ("i64x2.lt_s", (V, V), V)
    I64X2_GT_S = ("i64x2.gt_s", (V, V), V)
    I64X2_LE_S = ("i64x2.le_s", (V, V), V)
    I64X2_GE_S = ("i64x2.ge_s", (V, V), V)
    I64X2_SPLAT = ("i64x2.splat", (L,), V)
    I64X2_EXTRACT_LANE0 = ("i64x2.extract_lane 0", (V,), L)
    I64X2_EXTRACT_LANE1 = ("i64x2.extract_lane 1", (V,), L)
    I64X2_REPLACE_LANE0 = ("i64x2.replace_lane 0", (V, L), V)
    I64X2_REPLACE_LANE1 = ("i64x2.replace_lane 1", (V, L), V)
    I64X2_ALL_TRUE = ("i64x2.all_true", (V,), B)  # every lane non-zero
    I64X2_BITMASK = ("i64x2.bitmask", (V,), W)  # bit L: lane L's sign bit
    # v128 bitwise
    V128_AND = ("v128.and", (V, V), V)
    V128_OR = ("v128.or", (V, V), V)
    V128_XOR = ("v128.xor", (V, V), V)
    V128_NOT = ("v128.not", (V,), V)
    V128_ANDNOT = ("v128.andnot", (V, V), V)  # a & ~b
    V128_BITSELECT = ("v128.bitselect", (V, V, V), V)  # (a & c) | (b & ~c)
    V128_ANY_TRUE = ("v128.any_true", (V,), B)  # any bit set

    def __init__(self, wasm: str, args: tuple[T, ...], result: T) -> None:
        self.wasm = wasm
        self.args = args
        self.result = result

    @property
    def arity(self) -> int:
        return len(self.args)


def accepts(expected: T, actual: T) -> bool:
    """Whether a value of type ``actual`` may stand where ``expected`` is required: equal types,
    or a BOOL (0/1 in an i32) where an i32 is expected."""
    return expected == actual or (expected == T.I32 and actual == T.BOOL)
