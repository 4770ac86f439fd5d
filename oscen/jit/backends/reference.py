"""The reference backend: primitive kernel IR run directly in Python, on the same linear memory.

It is the second implementation that proves the kernel-IR contract (the role of tinygrad's
Python emulator): a :class:`~..kernel.Module` means what this file computes, and the WebAssembly
backend must agree with it bit for bit. Slow (a few µs a primitive), for tests and debugging.

How it runs: each :class:`~..kernel.Function` is translated once into Python source (one
``def`` per function, locals as Python locals, structured control as ``while``/``if``), compiled
once per module, and instantiated per memory by executing the compiled definitions in a fresh
namespace (cheap). Generated source beats a tree of closures here by about 3x on the sample loop
(``benchmarks/bench_reference.py``): CPython runs one code object's bytecode instead of a call per
IR node.

Semantics are WebAssembly's, never Python's: IEEE binary64 without Python's exceptions (``1/0``
is inf), ``f64.min``/``max`` with their NaN and signed-zero rules, ``nearest`` ties to even,
wrapping i32/i64 (held as signed Python ints), shifts modulo the width, ``div_s``/``rem_s`` and
non-saturating ``trunc`` trapping where WebAssembly traps, memory little-endian and bounds-checked.
A ``Trap`` does what the WebAssembly printer prints for it (the site's number and the code into
the memory header, or the math library's code into its error global, then ``unreachable``), so
the host reads the same memory after either backend; every WebAssembly trap (that ``unreachable``,
division by zero, an out-of-bounds access...) raises :class:`WasmTrap` with wasmtime's trap code.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from .. import kernel as k
from ..kernel import T
from ..layout import NODE, TRAP_CODE, TRAP_SITE
from ..ops import Op
from .wasm import MATH_ERROR_GLOBAL, SiteIndex, _no_sites, code_sites

M64 = 0xFFFFFFFFFFFFFFFF
M32 = 0xFFFFFFFF
PAGE = 65536


class WasmTrap(Exception):
    """What WebAssembly itself traps on: ``trap_code`` is the name of wasmtime's ``TrapCode``,
    the message wasmtime's wording."""

    def __init__(self, trap: tuple[str, str]) -> None:
        super().__init__(trap[1])
        self.trap_code = trap[0]


OOB = ("MEMORY_OUT_OF_BOUNDS", "wasm trap: out of bounds memory access")
DIV_ZERO = ("INTEGER_DIVISION_BY_ZERO", "wasm trap: integer divide by zero")
INT_OVERFLOW = ("INTEGER_OVERFLOW", "wasm trap: integer overflow")
BAD_CONVERSION = ("BAD_CONVERSION_TO_INTEGER", "wasm trap: invalid conversion to integer")
STACK = ("STACK_OVERFLOW", "wasm trap: call stack exhausted")
UNREACHABLE = ("UNREACHABLE", "wasm trap: wasm `unreachable` instruction executed")


# ---------------------------------------------------------------------------------------- f64
def _fdiv(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0.0:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _fmin(a: float, b: float) -> float:
    if a != a or b != b:
        return math.nan
    if a == b:  # -0.0 and 0.0: the negative one
        return a if math.copysign(1.0, a) < 0 else b
    return a if a < b else b


def _fmax(a: float, b: float) -> float:
    if a != a or b != b:
        return math.nan
    if a == b:
        return b if math.copysign(1.0, a) < 0 else a
    return a if a > b else b


def _sqrt(x: float) -> float:
    if x < 0.0:
        return math.nan
    return math.sqrt(x) if x == x else x


def _floor(x: float) -> float:
    if x != x or x in (math.inf, -math.inf):
        return x
    return math.copysign(float(math.floor(x)), x)


def _ceil(x: float) -> float:
    if x != x or x in (math.inf, -math.inf):
        return x
    return math.copysign(float(math.ceil(x)), x)


def _trunc(x: float) -> float:
    if x != x or x in (math.inf, -math.inf):
        return x
    return math.copysign(float(math.trunc(x)), x)


def _nearest(x: float) -> float:
    if x != x or x in (math.inf, -math.inf):
        return x
    return math.copysign(float(round(x)), x)  # round(): ties to even


# ---------------------------------------------------------------------------------------- integers
def _s64(x: int) -> int:
    return ((x + 0x8000000000000000) & M64) - 0x8000000000000000


def _s32(x: int) -> int:
    return ((x + 0x80000000) & M32) - 0x80000000


def _div_s(a: int, b: int, lo: int) -> int:
    if b == 0:
        raise WasmTrap(DIV_ZERO)
    if a == lo and b == -1:
        raise WasmTrap(INT_OVERFLOW)
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _rem_s(a: int, b: int) -> int:
    if b == 0:
        raise WasmTrap(DIV_ZERO)
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _div_s64(a: int, b: int) -> int:
    return _div_s(a, b, -(2**63))


def _div_s32(a: int, b: int) -> int:
    return _div_s(a, b, -(2**31))


def _div_u64(a: int, b: int) -> int:
    if b == 0:
        raise WasmTrap(DIV_ZERO)
    return _s64((a & M64) // (b & M64))


def _rem_u64(a: int, b: int) -> int:
    if b == 0:
        raise WasmTrap(DIV_ZERO)
    return _s64((a & M64) % (b & M64))


def _div_u32(a: int, b: int) -> int:
    if b == 0:
        raise WasmTrap(DIV_ZERO)
    return _s32((a & M32) // (b & M32))


def _rem_u32(a: int, b: int) -> int:
    if b == 0:
        raise WasmTrap(DIV_ZERO)
    return _s32((a & M32) % (b & M32))


def _clz64(a: int) -> int:
    return 64 - (a & M64).bit_length()


def _clz32(a: int) -> int:
    return 32 - (a & M32).bit_length()


def _ctz64(a: int) -> int:
    a &= M64
    return 64 if a == 0 else (a & -a).bit_length() - 1


def _ctz32(a: int) -> int:
    a &= M32
    return 32 if a == 0 else (a & -a).bit_length() - 1


def _popcnt64(a: int) -> int:
    return (a & M64).bit_count()


def _popcnt32(a: int) -> int:
    return (a & M32).bit_count()


def _trunc_s(x: float, lo: int, hi: int) -> int:
    if x != x:
        raise WasmTrap(BAD_CONVERSION)
    if x in (math.inf, -math.inf):
        raise WasmTrap(INT_OVERFLOW)
    i = int(x)  # toward zero
    if not lo <= i <= hi:
        raise WasmTrap(INT_OVERFLOW)
    return i


def _trunc_s64(x: float) -> int:
    return _trunc_s(x, -(2**63), 2**63 - 1)


def _trunc_s32(x: float) -> int:
    return _trunc_s(x, -(2**31), 2**31 - 1)


def _trunc_sat(x: float, lo: int, hi: int) -> int:
    if x != x:
        return 0
    if x >= hi:
        return hi
    if x <= lo:
        return lo
    return int(x)


def _trunc_sat64(x: float) -> int:
    return _trunc_sat(x, -(2**63), 2**63 - 1)


def _trunc_sat32(x: float) -> int:
    return _trunc_sat(x, -(2**31), 2**31 - 1)


def _memcopy(memory: np.ndarray, dst: int, src: int, n: int) -> None:
    """``memory.copy``: overlapping regions allowed; out of bounds (even for 0 bytes past the end)
    traps before anything is copied."""
    dst, src, n = dst & M32, src & M32, n & M32
    if dst + n > len(memory) or src + n > len(memory):
        raise WasmTrap(OOB)
    memory[dst : dst + n] = memory[src : src + n].copy()


_D = struct.Struct("<d")
_Q = struct.Struct("<q")


def _f2i(x: float) -> int:
    return _Q.unpack(_D.pack(x))[0]


def _i2f(a: int) -> float:
    return _D.unpack(_Q.pack(a))[0]


# ---------------------------------------------------------------------------------------- v128
# A V128 is a Python int in [0, 2**128): its 16 bytes little-endian, so lane 0 (of two f64 or
# i64 lanes) is the low 64 bits. Bitwise ops are the int's; lane ops unpack, compute as the
# scalar op does, and pack again.
M128 = (1 << 128) - 1
_SIGNS = (1 << 63) | (1 << 127)
_D2 = struct.Struct("<dd")


def _vf(v: int) -> tuple[float, float]:
    return _D2.unpack(v.to_bytes(16, "little"))


def _fv(a: float, b: float) -> int:
    return int.from_bytes(_D2.pack(a, b), "little")


def _il(v: int) -> tuple[int, int]:
    """The two i64 lanes, signed."""
    return _s64(v & M64), _s64(v >> 64)


def _li(a: int, b: int) -> int:
    return (a & M64) | (b & M64) << 64


def _pick_lanes(a: int, b: int, take_b: tuple[bool, bool]) -> int:
    lo = (b if take_b[0] else a) & M64
    hi = (b if take_b[1] else a) >> 64
    return lo | hi << 64


def _vpmin(a: int, b: int) -> int:  # b < a ? b : a, per lane, the chosen operand's bits
    (a0, a1), (b0, b1) = _vf(a), _vf(b)
    return _pick_lanes(a, b, (b0 < a0, b1 < a1))


def _vpmax(a: int, b: int) -> int:  # a < b ? b : a
    (a0, a1), (b0, b1) = _vf(a), _vf(b)
    return _pick_lanes(a, b, (a0 < b0, a1 < b1))


def _fma(a: float, b: float, c: float) -> float:
    """``a*b + c`` rounded once (IEEE fusedMultiplyAdd), exactly, through rationals."""
    if a != a or b != b or c != c:
        return math.nan
    if math.isinf(a) or math.isinf(b):
        if a == 0.0 or b == 0.0:
            return math.nan  # inf * 0
        p = math.copysign(math.inf, a) * math.copysign(1.0, b)
        if math.isinf(c) and c != p:
            return math.nan  # inf - inf
        return p
    if math.isinf(c):
        return c
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if exact == 0:
        negative_product = (math.copysign(1.0, a) * math.copysign(1.0, b)) < 0
        if (a == 0.0 or b == 0.0) and c == 0.0 and negative_product and math.copysign(1.0, c) < 0:
            return -0.0  # (-0) + (-0)
        return 0.0
    try:
        return exact.numerator / exact.denominator  # int / int: correctly rounded
    except OverflowError:
        return math.inf if exact > 0 else -math.inf


def _vmadd(a: int, b: int, c: int) -> int:
    (a0, a1), (b0, b1), (c0, c1) = _vf(a), _vf(b), _vf(c)
    return _fv(_fma(a0, b0, c0), _fma(a1, b1, c1))


def _vsplat(x: float) -> int:
    return _fv(x, x)


def _vextract(v: int, lane: int) -> float:
    return _vf(v)[lane]


def _vreplace(v: int, lane: int, x: float) -> int:
    bits = _f2i(x) & M64
    return (v & ~M64 & M128) | bits if lane == 0 else (v & M64) | bits << 64


def _vconvert_low(v: int) -> int:
    return _fv(float(_s32(v & M32)), float(_s32((v >> 32) & M32)))


def _vtrunc_sat_zero(v: int) -> int:
    a0, a1 = _vf(v)
    return (_trunc_sat32(a0) & M32) | (_trunc_sat32(a1) & M32) << 32


def _ishl(v: int, n: int) -> int:
    n &= 63
    return ((v & M64) << n & M64) | ((v >> 64) << n & M64) << 64


def _ishr_u(v: int, n: int) -> int:
    n &= 63
    return ((v & M64) >> n) | ((v >> 64) >> n) << 64


def _ishr_s(v: int, n: int) -> int:
    a, b = _il(v)
    n &= 63
    return _li(a >> n, b >> n)


def _isplat(x: int) -> int:
    return _li(x, x)


def _iextract(v: int, lane: int) -> int:
    return _il(v)[lane]


def _ireplace(v: int, lane: int, x: int) -> int:
    return (v & ~M64 & M128) | (x & M64) if lane == 0 else (v & M64) | (x & M64) << 64


def _iall_true(v: int) -> int:
    return int(v & M64 != 0 and v >> 64 != 0)


def _ibitmask(v: int) -> int:
    return (v >> 63 & 1) | (v >> 126 & 2)


def _vbitselect(a: int, b: int, c: int) -> int:
    return (a & c) | (b & (c ^ M128))


def _vload(memory: np.ndarray, at: int) -> int:
    if at + 16 > len(memory):
        raise WasmTrap(OOB)
    return int.from_bytes(memory[at : at + 16].tobytes(), "little")


def _vstore(memory: np.ndarray, at: int, v: int) -> None:
    if at + 16 > len(memory):
        raise WasmTrap(OOB)
    memory[at : at + 16] = np.frombuffer(v.to_bytes(16, "little"), dtype=np.uint8)


def _lane_ops() -> dict[str, Callable[..., int]]:
    """The lane-wise ops as straight-line Python, one function each (generated: a call per
    lane through a lifted lambda made packed code ~2x slower in this backend)."""
    f_bin = {"vadd": "{x} + {y}", "vsub": "{x} - {y}", "vmul": "{x} * {y}", "vdiv": "_fdiv({x}, {y})",
             "vmin": "_fmin({x}, {y})", "vmax": "_fmax({x}, {y})"}  # fmt: skip
    f_un = {
        "vsqrt": "_sqrt",
        "vfloor": "_floor",
        "vceil": "_ceil",
        "vtrunc": "_trunc",
        "vnearest": "_nearest",
    }
    cmp = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
    unpack2 = '    a0, a1 = _U(a.to_bytes(16, "little"))\n    b0, b1 = _U(b.to_bytes(16, "little"))\n'
    src: list[str] = []
    for name, e in f_bin.items():
        lanes = f"{e.format(x='a0', y='b0')}, {e.format(x='a1', y='b1')}"
        src.append(f'def _{name}(a, b):\n{unpack2}    return _FB(_P({lanes}), "little")\n')
    for name, fn in f_un.items():
        src.append(f'def _{name}(a):\n    a0, a1 = _U(a.to_bytes(16, "little"))\n'
                   f'    return _FB(_P({fn}(a0), {fn}(a1)), "little")\n')  # fmt: skip
    for name, op in cmp.items():
        src.append(
            f"def _vf{name}(a, b):\n{unpack2}    return (M64 if a0 {op} b0 else 0) | (HI if a1 {op} b1 else 0)\n"
        )
        signed = (
            ""
            if name in ("eq", "ne")
            else "".join(f"    {v} -= ({v} >> 63) << 64\n" for v in ("a0", "a1", "b0", "b1"))
        )
        src.append(
            f"def _i{name}(a, b):\n    a0, a1, b0, b1 = a & M64, a >> 64, b & M64, b >> 64\n{signed}"
            f"    return (M64 if a0 {op} b0 else 0) | (HI if a1 {op} b1 else 0)\n"
        )
    for name, op in (("iadd", "+"), ("isub", "-"), ("imul", "*")):
        src.append(
            f"def _{name}(a, b):\n    return ((a & M64) {op} (b & M64) & M64) | (((a >> 64) {op} (b >> 64) & M64) << 64)\n"
        )
    ns: dict[str, Any] = {
        "_U": _D2.unpack,
        "_P": _D2.pack,
        "_FB": int.from_bytes,
        "M64": M64,
        "HI": M64 << 64,
    }
    ns.update(
        {
            n: globals()[n]
            for n in ("_fdiv", "_fmin", "_fmax", "_sqrt", "_floor", "_ceil", "_trunc", "_nearest")
        }
    )
    exec(compile("\n".join(src), "<reference lane ops>", "exec"), ns)  # noqa: S102 - our own text
    return {
        name: fn
        for name, fn in ns.items()
        if name.startswith("_") and callable(fn) and name not in ("_U", "_P", "_FB")
    }


globals().update(_lane_ops())


RUNTIME: dict[str, Any] = {
    name: value
    for name, value in dict(globals()).items()
    if name.startswith("_") and callable(value) and not name.startswith("__")
}
RUNTIME.update(
    copysign=math.copysign,
    fabs=math.fabs,
    WasmTrap=WasmTrap,
    UNREACHABLE=UNREACHABLE,
)

W64 = "((({}) + 0x8000000000000000) & 0xFFFFFFFFFFFFFFFF) - 0x8000000000000000"
W32 = "((({}) + 0x80000000) & 0xFFFFFFFF) - 0x80000000"


def _wrapped(width: int, text: str) -> str:
    return "(" + (W64 if width == 64 else W32).format(text) + ")"


def _op_table() -> dict[Op, Callable[[list[str]], str]]:
    """Each op as a function of its arguments' Python expressions (each used exactly once, in
    order: WebAssembly evaluates operands left to right, and so does this)."""
    t: dict[Op, Callable[[list[str]], str]] = {}

    def infix(sym: str) -> Callable[[list[str]], str]:
        return lambda a: f"({a[0]} {sym} {a[1]})"

    def call(fn: str) -> Callable[[list[str]], str]:
        return lambda a: f"{fn}({', '.join(a)})"

    for sym, name in (("+", "ADD"), ("-", "SUB"), ("*", "MUL")):
        t[Op[f"F64_{name}"]] = infix(sym)
        t[Op[f"I64_{name}"]] = lambda a, s=sym: _wrapped(64, f"{a[0]} {s} {a[1]}")
        t[Op[f"I32_{name}"]] = lambda a, s=sym: _wrapped(32, f"{a[0]} {s} {a[1]}")
    t[Op.F64_DIV] = call("_fdiv")
    t[Op.F64_MIN] = call("_fmin")
    t[Op.F64_MAX] = call("_fmax")
    t[Op.F64_COPYSIGN] = call("copysign")
    t[Op.F64_NEG] = lambda a: f"(-{a[0]})"
    t[Op.F64_ABS] = call("fabs")
    t[Op.F64_SQRT] = call("_sqrt")
    t[Op.F64_FLOOR] = call("_floor")
    t[Op.F64_CEIL] = call("_ceil")
    t[Op.F64_TRUNC] = call("_trunc")
    t[Op.F64_NEAREST] = call("_nearest")
    for name, sym in (("EQ", "=="), ("NE", "!="), ("LT", "<"), ("LE", "<="), ("GT", ">"), ("GE", ">=")):
        t[Op[f"F64_{name}"]] = infix(sym)
    for w, mask in ((64, "0xFFFFFFFFFFFFFFFF"), (32, "0xFFFFFFFF")):
        p = f"I{w}_"
        t[Op[p + "DIV_S"]] = call(f"_div_s{w}")
        t[Op[p + "DIV_U"]] = call(f"_div_u{w}")
        t[Op[p + "REM_S"]] = call("_rem_s")
        t[Op[p + "REM_U"]] = call(f"_rem_u{w}")
        t[Op[p + "AND"]] = infix("&")
        t[Op[p + "OR"]] = infix("|")
        t[Op[p + "XOR"]] = infix("^")
        t[Op[p + "SHL"]] = lambda a, w=w: _wrapped(w, f"{a[0]} << ({a[1]} & {w - 1})")
        t[Op[p + "SHR_S"]] = lambda a, w=w: f"({a[0]} >> ({a[1]} & {w - 1}))"
        t[Op[p + "SHR_U"]] = lambda a, w=w, m=mask: _wrapped(w, f"({a[0]} & {m}) >> ({a[1]} & {w - 1})")
        t[Op[p + "CLZ"]] = call(f"_clz{w}")
        t[Op[p + "CTZ"]] = call(f"_ctz{w}")
        t[Op[p + "POPCNT"]] = call(f"_popcnt{w}")
        t[Op[p + "EQZ"]] = lambda a: f"({a[0]} == 0)"
        for name, sym in (("EQ", "=="), ("NE", "!="), ("LT", "<"), ("LE", "<="), ("GT", ">"), ("GE", ">=")):
            if name in ("EQ", "NE"):
                t[Op[p + name]] = infix(sym)
            else:
                t[Op[f"{p}{name}_S"]] = infix(sym)
                t[Op[f"{p}{name}_U"]] = lambda a, s=sym, m=mask: f"(({a[0]} & {m}) {s} ({a[1]} & {m}))"
    t[Op.BOOL_AND] = infix("&")
    t[Op.BOOL_OR] = infix("|")
    t[Op.BOOL_XOR] = infix("^")
    t[Op.BOOL_NOT] = lambda a: f"({a[0]} == 0)"
    t[Op.F64_CONVERT_I64_S] = call("float")
    t[Op.F64_CONVERT_I32_S] = call("float")
    t[Op.F64_CONVERT_I64_U] = lambda a: f"float({a[0]} & 0xFFFFFFFFFFFFFFFF)"
    t[Op.F64_CONVERT_I32_U] = lambda a: f"float({a[0]} & 0xFFFFFFFF)"
    t[Op.I64_TRUNC_F64_S] = call("_trunc_s64")
    t[Op.I32_TRUNC_F64_S] = call("_trunc_s32")
    t[Op.I64_TRUNC_SAT_F64_S] = call("_trunc_sat64")
    t[Op.I32_TRUNC_SAT_F64_S] = call("_trunc_sat32")
    t[Op.I64_EXTEND_I32_S] = call("int")
    t[Op.I64_EXTEND_I32_U] = lambda a: f"({a[0]} & 0xFFFFFFFF)"
    t[Op.I32_WRAP_I64] = lambda a: _wrapped(32, a[0])
    t[Op.I64_REINTERPRET_F64] = call("_f2i")
    t[Op.F64_REINTERPRET_I64] = call("_i2f")
    _simd_ops(t, call)
    missing = set(Op) - set(t)
    assert not missing, f"reference backend: no implementation of {sorted(o.name for o in missing)}"
    return t


def _simd_ops(
    t: dict[Op, Callable[[list[str]], str]], call: Callable[[str], Callable[[list[str]], str]]
) -> None:
    """The v128 ops (see the runtime functions ``_v*``/``_i*`` above)."""
    for name in ("ADD", "SUB", "MUL", "DIV", "MIN", "MAX", "SQRT", "FLOOR", "CEIL", "TRUNC", "NEAREST"):
        t[Op[f"F64X2_{name}"]] = call(f"_v{name.lower()}")
    t[Op.F64X2_PMIN] = call("_vpmin")
    t[Op.F64X2_PMAX] = call("_vpmax")
    t[Op.F64X2_NEG] = lambda a: f"({a[0]} ^ {_SIGNS})"
    t[Op.F64X2_ABS] = lambda a: f"({a[0]} & {M128 ^ _SIGNS})"
    for name in ("EQ", "NE", "LT", "LE", "GT", "GE"):
        t[Op[f"F64X2_{name}"]] = call(f"_vf{name.lower()}")
    for name in ("EQ", "NE", "LT_S", "GT_S", "LE_S", "GE_S"):
        t[Op[f"I64X2_{name}"]] = call(f"_i{name[:2].lower()}")
    t[Op.F64X2_SPLAT] = call("_vsplat")
    t[Op.I64X2_SPLAT] = call("_isplat")
    for lane in (0, 1):
        t[Op[f"F64X2_EXTRACT_LANE{lane}"]] = lambda a, i=lane: f"_vextract({a[0]}, {i})"
        t[Op[f"F64X2_REPLACE_LANE{lane}"]] = lambda a, i=lane: f"_vreplace({a[0]}, {i}, {a[1]})"
        t[Op[f"I64X2_EXTRACT_LANE{lane}"]] = lambda a, i=lane: f"_iextract({a[0]}, {i})"
        t[Op[f"I64X2_REPLACE_LANE{lane}"]] = lambda a, i=lane: f"_ireplace({a[0]}, {i}, {a[1]})"
    t[Op.F64X2_CONVERT_LOW_I32X4_S] = call("_vconvert_low")
    t[Op.I32X4_TRUNC_SAT_F64X2_S_ZERO] = call("_vtrunc_sat_zero")
    t[Op.F64X2_RELAXED_MADD] = call("_vmadd")
    t[Op.I64X2_ADD] = call("_iadd")
    t[Op.I64X2_SUB] = call("_isub")
    t[Op.I64X2_MUL] = call("_imul")
    t[Op.I64X2_NEG] = lambda a: f"_isub(0, {a[0]})"
    t[Op.I64X2_SHL] = call("_ishl")
    t[Op.I64X2_SHR_S] = call("_ishr_s")
    t[Op.I64X2_SHR_U] = call("_ishr_u")
    t[Op.I64X2_ALL_TRUE] = call("_iall_true")
    t[Op.I64X2_BITMASK] = call("_ibitmask")
    t[Op.V128_AND] = lambda a: f"({a[0]} & {a[1]})"
    t[Op.V128_OR] = lambda a: f"({a[0]} | {a[1]})"
    t[Op.V128_XOR] = lambda a: f"({a[0]} ^ {a[1]})"
    t[Op.V128_NOT] = lambda a: f"({a[0]} ^ {M128})"
    t[Op.V128_ANDNOT] = lambda a: f"({a[0]} & ({a[1]} ^ {M128}))"
    t[Op.V128_BITSELECT] = call("_vbitselect")
    t[Op.V128_ANY_TRUE] = lambda a: f"int({a[0]} != 0)"


OPS = _op_table()
_RAW32: dict[Op, Callable[[list[str]], str]] = {
    Op.I32_ADD: lambda a: f"({a[0]} + {a[1]})",
    Op.I32_SUB: lambda a: f"({a[0]} - {a[1]})",
    Op.I32_MUL: lambda a: f"({a[0]} * {a[1]})",
    Op.I32_SHL: lambda a: f"({a[0]} << ({a[1]} & 31))",
}
"""i32 ops whose result is only ever taken modulo 2**32 when it is an address: unwrapped."""
# Ops that cannot trap and have no effect: an expression of them (and locals, constants) may be
# evaluated in any order or not at all.
_TRAPPING = {
    Op.I64_DIV_S, Op.I64_DIV_U, Op.I64_REM_S, Op.I64_REM_U,
    Op.I32_DIV_S, Op.I32_DIV_U, Op.I32_REM_S, Op.I32_REM_U,
    Op.I64_TRUNC_F64_S, Op.I32_TRUNC_F64_S,
}  # fmt: skip
_MEM = {  # type -> (struct format, size)
    T.F64: ("d", 8),
    T.I64: ("q", 8),
    T.I32: ("i", 4),
    T.BOOL: ("i", 4),
}


class ReferenceError_(Exception):
    """IR the reference backend cannot run (high-level nodes, unknown names): a bug upstream."""


class ReferenceNestingError(ReferenceError_):
    """Code nested deeper than CPython's own compiler takes (about 100 indentation levels, 20
    nested loops): the reference backend cannot run it; the wasm backend can."""


# ---------------------------------------------------------------------------------------- codegen
@dataclass
class _Out:
    """An expression's Python text and the statements that must run before it."""

    text: str
    pre: list[str] = field(default_factory=list)
    pure: bool = True  # no effects, no traps: may be reordered or dropped


class _FunctionCompiler:
    """One Function's Python source."""

    def __init__(self, mc: _ModuleCompiler, fn: k.Function) -> None:
        self.mc = mc
        self.fn = fn
        self.site_index = mc.site_index
        self.names: dict[str, str] = {}
        self.types: dict[str, T] = {}
        self.temps = 0
        self.labels: list[tuple[str, str, int]] = []  # (label, "block"|"loop", id) of Python loops
        self.escapes: list[set[int]] = []  # per open Python loop: jump codes that leave through it
        self.jump_codes: dict[tuple[int, str], int] = {}
        self.renames: list[dict[str, str]] = []  # innermost Instance's first (see instance_code)
        self.instance: k.Instance | None = None
        self.uses_jump = False
        self.loop_count = 0
        self.globals_set: set[str] = set()
        for name, t in [*fn.params, *fn.locals.items()]:
            self.declare(name, t)

    def declare(self, name: str, t: T) -> str:
        if name in self.names:
            return self.names[name]
        base = "l_" + re.sub(r"\W", "_", name)
        py = base
        i = 1
        while py in self.names.values():
            i += 1
            py = f"{base}_{i}"
        self.names[name] = py
        self.types[name] = t
        return py

    def local(self, name: str) -> str:
        real = name
        for renames in self.renames:
            real = renames.get(real, real)
        py = self.names.get(real)
        if py is None:
            raise ReferenceError_(f"{self.fn.name}: local {real!r} is not declared")
        return py

    def temp(self) -> str:
        self.temps += 1
        return f"t_{self.temps}"

    # ------------------------------------------------------------------ expressions
    def expr(self, e: k.Expr) -> _Out:
        """``e`` as Python; nested too deep for CPython's parser (200 parentheses), it goes into a
        temporary first (the operands logic keeps the order of evaluation)."""
        out = self._expr(e)
        if len(out.text) > 240 and _paren_depth(out.text) > 90:
            t = self.temp()
            return _Out(t, [*out.pre, f"{t} = {out.text}"], out.pure)
        return out

    def _expr(self, e: k.Expr) -> _Out:  # noqa: C901 - one dispatch over the expression kinds
        if isinstance(e, k.Const):
            return _Out(self.mc.const(e.type, e.value))
        if isinstance(e, k.Local):
            return _Out(self.local(e.name))
        if isinstance(e, k.Prim):
            parts = self.operands(e.args)
            text = OPS[e.op]([p.text for p in parts])
            pure = all(p.pure for p in parts) and e.op not in _TRAPPING
            return _Out(text, [x for p in parts for x in p.pre], pure)
        if isinstance(e, k.Load):
            addr = self.address(e.addr)
            return _Out(self.mc.load(e.type, addr.text, e.offset, e.addr), addr.pre, False)
        if isinstance(e, k.Choose):
            a, b, c = self.operands([e.a, e.b, e.cond])
            pre = a.pre + b.pre + c.pre
            if not (a.pure and b.pure):  # both sides run (and may trap) before the choice
                ta, tb = self.temp(), self.temp()
                pre += [f"{ta} = {a.text}", f"{tb} = {b.text}"]
                if not c.pure:
                    tc = self.temp()
                    pre.append(f"{tc} = {c.text}")
                    c = _Out(tc)
                return _Out(f"({ta} if {c.text} else {tb})", pre, False)
            return _Out(f"({a.text} if {c.text} else {b.text})", pre, c.pure)
        if isinstance(e, k.Select):
            c, a, b = self.expr(e.cond), self.expr(e.then), self.expr(e.orelse)
            if not a.pre and not b.pre:
                return _Out(f"({a.text} if {c.text} else {b.text})", c.pre, c.pure and a.pure and b.pure)
            t = self.temp()
            lines = [f"if {c.text}:", *_indent(a.pre), f"    {t} = {a.text}", "else:", *_indent(b.pre)]
            lines.append(f"    {t} = {b.text}")
            return _Out(t, c.pre + lines, False)
        if isinstance(e, k.Logical):
            a, b = self.expr(e.left), self.expr(e.right)
            word = "and" if e.op == "and" else "or"
            if not b.pre:
                return _Out(f"({a.text} {word} {b.text})", a.pre, a.pure and b.pure)
            t = self.temp()
            test = t if word == "and" else f"not {t}"
            lines = [f"{t} = {a.text}", f"if {test}:", *_indent(b.pre), f"    {t} = {b.text}"]
            return _Out(t, a.pre + lines, False)
        if isinstance(e, k.Let):
            v = self.expr(e.value)
            py = self.local(e.name)
            body = self.expr(e.body)
            return _Out(body.text, [*v.pre, f"{py} = {v.text}", *body.pre], False)
        if isinstance(e, k.Seq):
            lines = self.stmts(e.body)
            v = self.expr(e.value)
            return _Out(v.text, lines + v.pre, False)
        if isinstance(e, k.CallFn):
            parts = self.operands(e.args)
            return _Out(
                f"{self.mc.callee(e.func)}({', '.join(p.text for p in parts)})",
                [x for p in parts for x in p.pre],
                False,
            )
        if isinstance(e, k.GetGlobal):
            return _Out(self.mc.global_name(e.name), [], False)
        raise ReferenceError_(
            f"{self.fn.name}: {type(e).__name__} is not primitive-level IR (run the passes first)"
        )

    def address(self, e: k.Expr) -> _Out:
        """An address, which the load or store takes modulo 2**32 anyway: an i32 add, sub, mul or
        shl at its top need not wrap first (the same residue; one masking less per access)."""
        if isinstance(e, k.Prim) and e.op in _RAW32:
            parts = self.operands(e.args)
            text = _RAW32[e.op]([p.text for p in parts])
            return _Out(text, [x for p in parts for x in p.pre], all(p.pure for p in parts))
        return self.expr(e)

    def operands(self, args: list[k.Expr], first: Callable[[k.Expr], _Out] | None = None) -> list[_Out]:
        """Operands in order: when a later one has statements to run first, the earlier ones are
        evaluated into temporaries before them (WebAssembly's left-to-right order)."""
        outs = [(first or self.expr)(a) if j == 0 else self.expr(a) for j, a in enumerate(args)]
        for i in range(len(outs) - 1, 0, -1):
            if outs[i].pre:
                for j in range(i):
                    o = outs[j]
                    if not _is_atom(o.text):
                        t = self.temp()
                        outs[j] = _Out(t, [*o.pre, f"{t} = {o.text}"], True)
                pre = [x for o in outs[: i + 1] for x in o.pre]
                outs = [_Out(o.text, [], o.pure) for o in outs]
                outs[0].pre = pre
                break
        return outs

    # ------------------------------------------------------------------ statements
    def stmts(self, body: list[k.Stmt]) -> list[str]:
        lines: list[str] = []
        for s in body:
            lines.extend(self.stmt(s))
        return lines

    def stmt(self, s: k.Stmt) -> list[str]:  # noqa: C901 - one dispatch over the statement kinds
        if isinstance(s, k.SetLocal):
            v = self.expr(s.value)
            return [*v.pre, f"{self.local(s.name)} = {v.text}"]
        if isinstance(s, k.Store):
            addr, value = self.operands([s.addr, s.value], first=self.address)
            return [*addr.pre, *value.pre, self.mc.store(s.type, addr.text, s.offset, value.text, s.addr)]
        if isinstance(s, k.SetGlobal):
            v = self.expr(s.value)
            name = self.mc.global_name(s.name)
            self.globals_set.add(name)
            return [*v.pre, f"{name} = {v.text}"]
        if isinstance(s, k.ExprStmt):
            v = self.expr(s.value)
            return [*v.pre, v.text] if not v.pure else v.pre
        if isinstance(s, k.If):
            c = self.expr(s.cond)
            lines = [*c.pre, f"if {c.text}:", *_indent(self.stmts(s.body) or ["pass"])]
            orelse = self.stmts(s.orelse)
            if orelse:
                lines += ["else:", *_indent(orelse)]
            return lines
        if isinstance(s, k.Loop):
            return self.loop(s)
        if isinstance(s, k.Block):
            if not _targets(s.body, s.label):  # nothing leaves it: its body inline
                saved = self.labels
                self.labels = [*saved, (s.label, "inline", -1)]
                try:
                    return self.stmts(s.body)
                finally:
                    self.labels = saved
            return self.python_loop(s.label, "block", "while True:", [], s.body, ["break"])
        if isinstance(s, k.Exit):
            return self.jump(s.label, "exit", s.cond)
        if isinstance(s, k.Next):
            return self.jump(s.label, "next", None)
        if isinstance(s, k.Invoke):
            parts = self.operands(s.args)
            call = f"{self.mc.callee(s.func)}({', '.join(p.text for p in parts)})"
            pre = [x for p in parts for x in p.pre]
            if not s.targets:
                return [*pre, call]
            targets = [self.local(t) for t in s.targets]
            if len(targets) == 1 and len(self.mc.results_of(s.func)) == 1:
                return [*pre, f"{targets[0]} = {call}"]
            return [*pre, f"{', '.join(targets)}, = {call}"]
        if isinstance(s, k.ReturnValues):
            parts = self.operands(s.values)
            pre = [x for p in parts for x in p.pre]
            if not parts:
                return [*pre, "return"]
            if len(parts) == 1:
                return [*pre, f"return {parts[0].text}"]
            return [*pre, f"return ({', '.join(p.text for p in parts)},)"]
        if isinstance(s, k.Trap):
            return self.trap(s)
        if isinstance(s, k.Assign) and isinstance(s.target, k.Local):  # as the printer takes it
            v = self.expr(s.value)
            return [*v.pre, f"{self.local(s.target.name)} = {v.text}"]
        if isinstance(s, k.Instance):
            return self.instance_code(s)
        if isinstance(s, k.Unreachable):
            return ["raise WasmTrap(UNREACHABLE)"]
        if isinstance(s, k.MemCopy):
            parts = self.operands([s.dst, s.src, s.nbytes])
            pre = [x for p in parts for x in p.pre]
            return [*pre, f"_memcopy(M, {', '.join(p.text for p in parts)})"]
        if isinstance(s, k.SyncState):
            inst = self.instance
            if inst is None:
                raise ReferenceError_(f"{self.fn.name}: SyncState outside an Instance")
            # as the printer pastes them: into the code's text, renamed with it
            return self.stmts(inst.flush if s.direction == "flush" else inst.reload)
        raise ReferenceError_(
            f"{self.fn.name}: {type(s).__name__} is not primitive-level IR (run the passes first)"
        )

    def trap(self, s: k.Trap) -> list[str]:
        """What the WebAssembly printer makes of a Trap, to the byte: the math library's error
        code into its global; else the node's base (``node``), the site's number and the code into
        the memory header (directly, or by the shared function ``via``); then ``unreachable``."""
        if s.math_error:
            name = self.mc.global_name(MATH_ERROR_GLOBAL)
            self.globals_set.add(name)
            return [f"{name} = {int(s.math_error)}", "raise WasmTrap(UNREACHABLE)"]
        site = self.site_index(s.where)
        # ``via`` names the module's shared trap function, whose whole contract is these two
        # stores and ``unreachable`` (WAT only: the IR cannot store a site passed in and trap):
        # done here, the same memory and the same trap.
        node: list[str] = []
        if s.node is not None:
            part = self.operands([s.node])[0]
            node = [*part.pre, f"Mi[{NODE // 4}] = {part.text}"]
        return [
            *node,
            f"Mi[{TRAP_SITE // 4}] = {site}",
            f"Mi[{TRAP_CODE // 4}] = {int(s.code)}",
            "raise WasmTrap(UNREACHABLE)",
        ]

    def instance_code(self, s: k.Instance) -> list[str]:
        """An Instance's code with its renames; an Instance inside another's flush or reload (a
        variant's write-back Code) is renamed by its own, then by the enclosing ones, as the
        printer renames the text it pastes in."""
        saved = (self.renames, self.instance, self.labels, self.site_index)
        self.renames, self.instance = [s.renames, *self.renames], s
        self.site_index = code_sites(s.code)
        try:
            return self.stmts(s.code.body)
        finally:
            self.renames, self.instance, self.labels, self.site_index = saved

    def loop(self, s: k.Loop) -> list[str]:
        if s.cond is None:
            return self.python_loop(s.label, "loop", "while True:", [], s.body, [])
        c = self.expr(s.cond)
        if not c.pre:
            return self.python_loop(s.label, "loop", f"while {c.text}:", [], s.body, [])
        return self.python_loop(
            s.label, "loop", "while True:", [*c.pre, f"if not ({c.text}):", "    break"], s.body, []
        )

    def python_loop(
        self, label: str, kind: str, head: str, first: list[str], body: list[k.Stmt], last: list[str]
    ) -> list[str]:
        self.loop_count += 1
        ident = self.loop_count
        self.labels.append((label, kind, ident))
        self.escapes.append(set())
        try:
            inner = [*first, *self.stmts(body), *last]
        finally:
            self.labels.pop()
            escaping = self.escapes.pop()
        lines = [head, *_indent(inner or ["pass"])]
        if escaping:  # a jump to an outer label passed through: go on with it
            lines += self.after_escape(escaping)
        return lines

    def after_escape(self, codes: set[int]) -> list[str]:
        """After a Python loop that a jump to an outer label left: take that jump here, if its
        target is the loop now around us, or leave this one too."""
        lines = ["if _j:"]
        py_loops = [x for x in self.labels if x[1] != "inline"]
        here = py_loops[-1] if py_loops else None
        for (ident, action), code in self.jump_codes.items():
            if code in codes and here is not None and ident == here[2]:
                go = "continue" if action == "next" else "break"
                lines += [f"    if _j == {code}:", "        _j = 0", f"        {go}"]
        passing = {
            c
            for (ident, _), c in self.jump_codes.items()
            if c in codes and (here is None or ident != here[2])
        }
        if passing:
            if here is None:
                raise ReferenceError_(f"{self.fn.name}: a jump leaves the function")
            lines.append("    break")
            self.escapes[-1].update(passing)
        return lines if len(lines) > 1 else []

    def jump(self, label: str, action: str, cond: k.Expr | None) -> list[str]:
        target = None
        for i in range(len(self.labels) - 1, -1, -1):  # Next: the innermost *loop* of that name
            if self.labels[i][0] == label and (action == "exit" or self.labels[i][1] == "loop"):
                target = i
                break
        if target is None:
            raise ReferenceError_(f"{self.fn.name}: {action} to label {label!r}, which is not around it")
        name, kind, ident = self.labels[target]
        pre: list[str] = []
        guard = ""
        if cond is not None:
            c = self.expr(cond)
            pre, guard = c.pre, c.text
        if kind == "inline":
            raise ReferenceError_(f"{self.fn.name}: jump to inline block {label!r}")  # _targets said none
        inner_py = [i for i in range(target + 1, len(self.labels)) if self.labels[i][1] != "inline"]
        if not inner_py:  # the target is the innermost Python loop
            body = ["continue" if action == "next" else "break"]
        else:
            code = self.jump_codes.setdefault((ident, action), len(self.jump_codes) + 1)
            self.uses_jump = True
            self.escapes[-1].add(code)
            body = [f"_j = {code}", "break"]
        if guard:
            return [*pre, f"if {guard}:", *_indent(body)]
        return [*pre, *body]

    # ------------------------------------------------------------------ the function
    def source(self) -> str:
        body = self.stmts(self.fn.body)
        params = [self.names[n] for n, _ in self.fn.params]
        head = [f"def {self.mc.function_name(self.fn.name)}({', '.join(params)}):"]
        decl = []
        if self.globals_set:
            decl.append(f"global {', '.join(sorted(self.globals_set))}")
        pnames = {n for n, _ in self.fn.params}
        for name, py in self.names.items():
            if name not in pnames:
                decl.append(f"{py} = {'0.0' if self.types[name] == T.F64 else '0'}")
        if self.uses_jump:
            decl.append("_j = 0")
        if self.fn.results and not (self.fn.body and isinstance(self.fn.body[-1], (k.ReturnValues, k.Trap))):
            body.append("raise WasmTrap(UNREACHABLE)")  # as the printer's closing `unreachable`
        return "\n".join(head + _indent(decl + (body or ["pass"]))) + "\n"


def _deep() -> Any:
    """The frontend's raised recursion limit, only when needed (changing the process-wide limit
    while another thread builds an AST upsets CPython's parser)."""
    from ..frontend import deep_recursion

    return deep_recursion()


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]":
            depth -= 1
    return deepest


def _indent(lines: list[str]) -> list[str]:
    return ["    " + x for x in lines]


_CONSTANT = re.compile(r"^(\(?-?[0-9][0-9.e+-]*\)?|K\[[0-9]+\])$")


def _is_atom(text: str) -> bool:
    """A constant: the same whenever it is evaluated (a local is not: a later operand's
    statements may assign it)."""
    return bool(_CONSTANT.match(text))


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _targets(body: list[k.Stmt], label: str) -> bool:
    """Whether any Exit/Next in ``body`` (at any depth, including Instances' code) names ``label``."""
    stack: list[Any] = list(body)
    while stack:
        x = stack.pop()
        if isinstance(x, (k.Exit, k.Next)) and x.label == label:
            return True
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, k.Instance):
            stack.extend(x.code.body)
            stack.extend(x.flush)
            stack.extend(x.reload)
        elif isinstance(x, (k.Stmt, k.Expr)):
            for name in x.__dataclass_fields__:
                if name in ("site", "type", "where"):
                    continue
                v = getattr(x, name)
                if isinstance(v, (list, k.Stmt, k.Expr)):
                    stack.append(v)
    return False


def _address(addr: str, offset: int, node: k.Expr) -> str:
    """The byte address an access at ``addr + offset`` reads (``node`` the address expression:
    a constant one is folded), as Python source."""
    if isinstance(node, k.Const):
        return f"{(int(node.value) & M32) + offset}"
    return f"({addr} & 0xFFFFFFFF) + {offset}"


class _ModuleCompiler:
    """A whole Module's Python source, and the constants and sites it refers to."""

    def __init__(self, module: k.Module, site_index: SiteIndex) -> None:
        self.module = module
        self.site_index = site_index
        self.consts: list[Any] = []
        self.functions = {f.name: f for f in module.functions}
        self.imports = {imp.name: imp for imp in module.imports}
        self.global_types = {g.name: g.type for g in module.globals}
        self._py_names: dict[str, str] = {}
        self.memory_bytes = module.memory_pages * PAGE

    def function_name(self, name: str) -> str:
        py = self._py_names.get(name)
        if py is None:
            py = self._py_names[name] = f"F{len(self._py_names)}_{_ident(name)}"
        return py

    def callee(self, name: str) -> str:
        if name in self.functions:
            return self.function_name(name)
        if name in self.imports:
            return f"I_{_ident(name)}"
        raise ReferenceError_(f"call of {name!r}: no such function or import in the module")

    def results_of(self, name: str) -> tuple[T, ...]:
        if name in self.functions:
            return tuple(self.functions[name].results)
        return tuple(self.imports[name].results)

    def global_name(self, name: str) -> str:
        if name not in self.global_types:
            raise ReferenceError_(f"global {name!r} is not defined")
        return f"G_{_ident(name)}"

    def const(self, t: T, value: Any) -> str:
        if t == T.V128:
            return repr(int.from_bytes(bytes(value), "little"))
        if t == T.F64:
            v = float(value)
            if math.isfinite(v):
                return f"({v!r})" if math.copysign(1.0, v) < 0 else repr(v)
            self.consts.append(v)
            return f"K[{len(self.consts) - 1}]"
        v = int(value)
        v = _s64(v) if t == T.I64 else _s32(v) if t == T.I32 else v
        return repr(v) if v >= 0 else f"({v})"

    def load(self, t: T, addr: str, offset: int, node: k.Expr) -> str:
        if t == T.V128:
            return f"_vload(M, {_address(addr, offset, node)})"
        fmt, size = _MEM[t]
        if isinstance(node, k.Const):
            at = (int(node.value) & M32) + offset
            if at % size == 0 and at + size <= self.memory_bytes:
                return f"M{fmt}[{at // size}]"
            return f"U{fmt}(M, {at})[0]"
        return f"U{fmt}(M, ({addr} & 0xFFFFFFFF) + {offset})[0]"

    def store(self, t: T, addr: str, offset: int, value: str, node: k.Expr) -> str:
        if t == T.V128:
            return f"_vstore(M, {_address(addr, offset, node)}, {value})"
        fmt, size = _MEM[t]
        if isinstance(node, k.Const):
            at = (int(node.value) & M32) + offset
            if at % size == 0 and at + size <= self.memory_bytes:
                return f"M{fmt}[{at // size}] = {value}"
            return f"P{fmt}(M, {at}, {value})"
        return f"P{fmt}(M, ({addr} & 0xFFFFFFFF) + {offset}, {value})"

    def source(self) -> str:
        parts = [_FunctionCompiler(self, f).source() for f in self.module.functions]
        return "\n".join(parts)


# ---------------------------------------------------------------------------------------- running
class CompiledModule:
    """A Module translated to Python once; :meth:`instantiate` runs it on a memory."""

    def __init__(self, module: k.Module, site_index: SiteIndex = _no_sites) -> None:
        self.module = module
        mc = _ModuleCompiler(module, site_index)
        try:
            self.source = mc.source()
        except RecursionError:  # IR nested as deep as the code it came from: again, with room
            mc = _ModuleCompiler(module, site_index)
            with _deep():
                self.source = mc.source()
        try:
            self.code = compile(self.source, f"<reference module {id(module):x}>", "exec")
        except (SyntaxError, RecursionError, MemoryError) as exc:  # nesting CPython refuses
            raise ReferenceNestingError(
                f"reference backend: the module's Python does not compile: {exc}"
            ) from exc
        self.consts = mc.consts
        self.names = {f.name: mc.function_name(f.name) for f in module.functions}
        self.import_names = {imp.name: f"I_{_ident(imp.name)}" for imp in module.imports}
        self.memory_bytes = mc.memory_bytes

    def instantiate(
        self, memory: np.ndarray | None = None, imports: Mapping[str, Callable[..., Any]] | None = None
    ) -> Instance:
        return Instance(self, memory, imports or {})


class Instance:
    """A CompiledModule on one memory, with its globals: call functions by name."""

    def __init__(
        self, compiled: CompiledModule, memory: np.ndarray | None, imports: Mapping[str, Callable[..., Any]]
    ) -> None:
        module = compiled.module
        if memory is None:
            memory = np.zeros(compiled.memory_bytes, dtype=np.uint8)
        if memory.dtype != np.uint8 or memory.ndim != 1:
            raise TypeError("reference backend: memory must be a 1-D numpy uint8 array")
        if len(memory) < compiled.memory_bytes or len(memory) % 8:
            raise ValueError(
                f"reference backend: memory of {len(memory)} bytes, the module needs {compiled.memory_bytes}"
            )
        self.compiled = compiled
        self.memory = memory
        ns: dict[str, Any] = dict(RUNTIME)
        ns["M"] = memory
        for fmt in ("d", "q", "i"):
            s = struct.Struct("<" + fmt)
            ns["U" + fmt] = s.unpack_from
            ns["P" + fmt] = s.pack_into
            ns["M" + fmt] = memoryview(memory).cast("B").cast(fmt) if len(memory) else None
        ns["K"] = compiled.consts
        for g in module.globals:
            if g.type == T.V128:  # its 16 bytes, as the backend holds a V128 (an int)
                ns[f"G_{_ident(g.name)}"] = int.from_bytes(bytes(g.init), "little") if g.init else 0  # type: ignore[arg-type]
            else:
                ns[f"G_{_ident(g.name)}"] = float(g.init) if g.type == T.F64 else int(g.init)
        for name, py in compiled.import_names.items():
            if name not in imports:
                raise ReferenceError_(f"reference backend: import {name!r} is not provided")
            ns[py] = imports[name]
        exec(compiled.code, ns)  # noqa: S102 - our own generated definitions
        self.namespace = ns
        self.functions = {name: ns[py] for name, py in compiled.names.items()}
        self.exports = {f.export: self.functions[f.name] for f in module.functions if f.export}

    def call(self, name: str, *args: Any) -> Any:
        """Call function ``name`` (internal or exported) and return its result(s); memory faults
        become :class:`WasmTrap` as in WebAssembly."""
        try:
            return self.functions[name](*args)
        except (struct.error, IndexError) as exc:
            raise WasmTrap(OOB) from exc
        except RecursionError as exc:
            raise WasmTrap(STACK) from exc

    def global_value(self, name: str) -> Any:
        return self.namespace[f"G_{_ident(name)}"]

    def set_global(self, name: str, value: Any) -> None:
        self.namespace[f"G_{_ident(name)}"] = value
