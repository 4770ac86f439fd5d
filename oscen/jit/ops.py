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

F, L, W, B = T.F64, T.I64, T.I32, T.BOOL


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
