"""A small typed DSL that builds kernel IR for the math library.

The fdlibm/glibc ports in this package read like the C they come from: ``Expr`` overloads the
arithmetic operators, Python numbers become constants of the other operand's type, and statements
(``if_``, ``while_``, ``ret``, ``trap``, ``Var.set``) are kernel IR statements. ``Fn.build`` gives a
:class:`~oscen.jit.kernel.Function` made of primitive nodes only (``Prim`` with an
:class:`~oscen.jit.ops.Op`, ``Const``, ``Local``, ``Choose``, ``CallFn``, ``If``, ``Loop``/``Exit``,
``Invoke``, ``ReturnValues``, ``Trap``), which every backend runs: the WebAssembly printer turns it
into the text the JIT ships, and the reference evaluator can run it in Python.

Each operator maps to exactly one primitive of the expression's own type, so the generated code
does the same arithmetic, in the same order, as the C it ports. Integer ``>>`` is the *logical*
shift (``shr_u``), :meth:`Expr.sar` the arithmetic one; integer ``<``/``<=``/... compare *signed*,
:meth:`Expr.ult` etc. unsigned; ``==``/``!=`` are not overloaded (use :meth:`Expr.eq`/:meth:`Expr.ne`).
Comparisons give ``BOOL`` (an ``i32`` 0/1): ``&``/``|``/``^`` of two ``BOOL``\\ s stay ``BOOL``, with
an ``I32`` they are ``I32`` operations.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import fields, is_dataclass
from typing import Any

from .. import kernel as k
from .. import traps
from ..kernel import NOSITE, T
from ..ops import Op

F64, I32, I64, BOOL, V128 = T.F64, T.I32, T.I64, T.BOOL, T.V128

Body = Sequence[k.Stmt]


def _wrap_int(v: int, ty: T) -> int:
    """``v`` as the signed two's-complement value of ``ty``'s width (how the IR stores ints)."""
    bits = 64 if ty == I64 else 32
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def const(v: float | int, ty: T) -> Expr:
    """A constant of type ``ty`` (integers wrap to the type's width, as WebAssembly's do; a
    number for a ``V128`` is an f64 in both lanes)."""
    if ty == F64:
        return Expr(k.Const(F64, float(v)))
    if ty == V128:
        return Expr(k.v128_f64x2(float(v), float(v)))
    if isinstance(v, float):
        if not v.is_integer():
            raise TypeError(f"non-integral constant {v!r} for {ty.value}")
        v = int(v)
    if ty == BOOL:
        if v not in (0, 1):
            raise TypeError(f"constant {v!r} is not a bool")
        return Expr(k.Const(BOOL, v))
    return Expr(k.Const(ty, _wrap_int(v, ty)))


def lift(v: Expr | int | float, ty: T) -> Expr:
    """Coerce a Python number to a constant of ``ty``; check an Expr's type fits ``ty``."""
    if isinstance(v, Expr):
        if v.ty != ty and not (ty == I32 and v.ty == BOOL):
            raise TypeError(f"type mismatch: expected {ty.value}, got {v.ty.value} in {v.node}")
        return v
    return const(v, ty)


def _prim(op: Op, *args: Expr) -> Expr:
    return Expr(k.Prim(op.result, op, [a.node for a in args]))


def _op_table() -> dict[tuple[str, T], Op]:
    """(operation name, operand type) -> Op, for the ops whose operands all have that type:
    ``("add", F64)`` is ``F64_ADD``, ``("shr_u", I64)`` is ``I64_SHR_U``, ``("and", BOOL)``
    is ``BOOL_AND``."""
    prefixes = {"F64": F64, "I64": I64, "I32": I32, "BOOL": BOOL, "F64X2": V128}
    table: dict[tuple[str, T], Op] = {}
    for op in Op:
        prefix, _, rest = op.name.partition("_")
        ty = prefixes.get(prefix)
        if ty is not None and all(a == ty for a in op.args):
            table.setdefault((rest.lower(), ty), op)
    return table


_OPS = _op_table()


def _op(name: str, ty: T) -> Op:
    return _OPS[(name, ty)]


class Expr:
    """A typed kernel IR expression (``node``, of type ``ty``) with operator overloading.

    A ``V128`` expression's operators are the f64x2 ones (``+ - * /``, unary ``-``, comparisons
    giving lane masks), so code written for f64 builds its two-lane form unchanged; integer lane
    operations on a V128 are the functions of :mod:`.vector`."""

    __slots__ = ("node",)

    def __init__(self, node: k.Expr) -> None:
        self.node = node

    @property
    def ty(self) -> T:
        return self.node.type

    def __repr__(self) -> str:
        return f"Expr({self.node!r})"

    def _operand_type(self, other: Expr | float, logic: bool) -> T:
        """The type an operation of ``self`` and ``other`` runs in: BOOL only for logic on two
        BOOLs, I32 when a BOOL meets an I32 (or a Python int), else ``self``'s type."""
        if self.ty != BOOL:
            return self.ty
        if logic and isinstance(other, Expr) and other.ty == BOOL:
            return BOOL
        return I32

    def _bin(self, name: str, other: Expr | float, swap: bool = False, logic: bool = False) -> Expr:
        ty = self._operand_type(other, logic)
        o = lift(other, ty)  # an I32 operation accepts a BOOL operand
        a, b = (o, self) if swap else (self, o)
        return _prim(_op(name, ty), a, b)

    def _int_only(self, what: str) -> None:
        if self.ty in (F64, V128):
            raise TypeError(f"{what} is not defined for {self.ty.value}")

    def __add__(self, o: Expr | float) -> Expr:
        return self._bin("add", o)

    def __radd__(self, o: Expr | float) -> Expr:
        return self._bin("add", o, True)

    def __sub__(self, o: Expr | float) -> Expr:
        return self._bin("sub", o)

    def __rsub__(self, o: Expr | float) -> Expr:
        return self._bin("sub", o, True)

    def __mul__(self, o: Expr | float) -> Expr:
        return self._bin("mul", o)

    def __rmul__(self, o: Expr | float) -> Expr:
        return self._bin("mul", o, True)

    def __truediv__(self, o: Expr | float) -> Expr:
        if self.ty not in (F64, V128):
            raise TypeError("use div_u/div_s for integers")
        return self._bin("div", o)

    def __rtruediv__(self, o: Expr | float) -> Expr:
        if self.ty not in (F64, V128):
            raise TypeError("use div_u/div_s for integers")
        return self._bin("div", o, True)

    def __neg__(self) -> Expr:
        if self.ty == F64:
            return _prim(Op.F64_NEG, self)
        if self.ty == V128:
            return _prim(Op.F64X2_NEG, self)
        return const(0, self._operand_type(0, False)) - self

    def __and__(self, o: Expr | int) -> Expr:
        self._int_only("&")
        return self._bin("and", o, logic=True)

    def __rand__(self, o: Expr | int) -> Expr:
        self._int_only("&")
        return self._bin("and", o, True, logic=True)

    def __or__(self, o: Expr | int) -> Expr:
        self._int_only("|")
        return self._bin("or", o, logic=True)

    def __ror__(self, o: Expr | int) -> Expr:
        self._int_only("|")
        return self._bin("or", o, True, logic=True)

    def __xor__(self, o: Expr | int) -> Expr:
        self._int_only("^")
        return self._bin("xor", o, logic=True)

    def __invert__(self) -> Expr:
        self._int_only("~")
        return self._bin("xor", -1)

    def __lshift__(self, o: Expr | int) -> Expr:
        self._int_only("<<")
        return self._bin("shl", o)

    def __rlshift__(self, o: Expr | int) -> Expr:
        self._int_only("<<")
        return self._bin("shl", o, True)

    def __rshift__(self, o: Expr | int) -> Expr:
        self._int_only(">>")
        return self._bin("shr_u", o)

    def __rrshift__(self, o: Expr | int) -> Expr:
        self._int_only(">>")
        return self._bin("shr_u", o, True)

    def sar(self, o: Expr | int) -> Expr:
        """Arithmetic (sign-propagating) right shift."""
        self._int_only("sar")
        return self._bin("shr_s", o)

    def div_u(self, o: Expr | int) -> Expr:
        self._int_only("div_u")
        return self._bin("div_u", o)

    def rem_u(self, o: Expr | int) -> Expr:
        self._int_only("rem_u")
        return self._bin("rem_u", o)

    def div_s(self, o: Expr | int) -> Expr:
        """Signed division, truncating toward zero (C's ``/``)."""
        self._int_only("div_s")
        return self._bin("div_s", o)

    def rem_s(self, o: Expr | int) -> Expr:
        """Signed remainder with the dividend's sign (C's ``%``)."""
        self._int_only("rem_s")
        return self._bin("rem_s", o)

    def _cmp(self, fop: str, iop: str, o: Expr | float) -> Expr:
        ty = self._operand_type(o, False)
        return _prim(_op(fop if ty in (F64, V128) else iop, ty), self, lift(o, ty))

    def __lt__(self, o: Expr | float) -> Expr:  # type: ignore[override]
        return self._cmp("lt", "lt_s", o)

    def __le__(self, o: Expr | float) -> Expr:  # type: ignore[override]
        return self._cmp("le", "le_s", o)

    def __gt__(self, o: Expr | float) -> Expr:  # type: ignore[override]
        return self._cmp("gt", "gt_s", o)

    def __ge__(self, o: Expr | float) -> Expr:  # type: ignore[override]
        return self._cmp("ge", "ge_s", o)

    def eq(self, o: Expr | float) -> Expr:
        return self._cmp("eq", "eq", o)

    def ne(self, o: Expr | float) -> Expr:
        return self._cmp("ne", "ne", o)

    def ult(self, o: Expr | int) -> Expr:
        self._int_only("ult")
        return self._cmp("", "lt_u", o)

    def ule(self, o: Expr | int) -> Expr:
        self._int_only("ule")
        return self._cmp("", "le_u", o)

    def ugt(self, o: Expr | int) -> Expr:
        self._int_only("ugt")
        return self._cmp("", "gt_u", o)

    def uge(self, o: Expr | int) -> Expr:
        self._int_only("uge")
        return self._cmp("", "ge_u", o)


class Var(Expr):
    """A local (or parameter): reads as a ``Local``; :meth:`set` assigns."""

    __slots__ = ("name",)

    def __init__(self, name: str, ty: T) -> None:
        super().__init__(k.Local(ty, name))
        self.name = name

    def set(self, value: Expr | float) -> k.Stmt:
        return k.SetLocal(name=self.name, value=lift(value, self.ty).node)


# --------------------------------------------------------------------------- primitives
def fabs(e: Expr) -> Expr:
    return _prim(Op.F64_ABS, e)


def fsqrt(e: Expr) -> Expr:
    return _prim(Op.F64_SQRT, e)


def fnearest(e: Expr) -> Expr:
    """Round half to even (SSE4.1 ``roundsd``; no toint trick needed)."""
    return _prim(Op.F64_NEAREST, e)


def ffloor(e: Expr) -> Expr:
    return _prim(Op.F64_FLOOR, e)


def ftrunc(e: Expr) -> Expr:
    return _prim(Op.F64_TRUNC, e)


def fcopysign(a: Expr | float, b: Expr) -> Expr:
    return _prim(Op.F64_COPYSIGN, lift(a, F64), b)


def fmax(a: Expr, b: Expr) -> Expr:
    return _prim(Op.F64_MAX, a, b)


def to_f64(e: Expr) -> Expr:
    """Signed integer -> f64."""
    return _prim(Op.F64_CONVERT_I64_S if e.ty == I64 else Op.F64_CONVERT_I32_S, e)


def u64_to_f64(e: Expr) -> Expr:
    return _prim(Op.F64_CONVERT_I64_U, e)


def trunc_i32(e: Expr) -> Expr:
    """f64 -> i32 toward zero, saturating (never traps)."""
    return _prim(Op.I32_TRUNC_SAT_F64_S, e)


def trunc_i64(e: Expr) -> Expr:
    return _prim(Op.I64_TRUNC_SAT_F64_S, e)


def ext_u(e: Expr) -> Expr:
    return _prim(Op.I64_EXTEND_I32_U, e)


def wrap(e: Expr) -> Expr:
    return _prim(Op.I32_WRAP_I64, e)


def clz(e: Expr) -> Expr:
    return _prim(Op.I64_CLZ if e.ty == I64 else Op.I32_CLZ, e)


def eqz(e: Expr) -> Expr:
    return _prim(Op.I64_EQZ if e.ty == I64 else Op.I32_EQZ, e)


def bits(e: Expr) -> Expr:
    return _prim(Op.I64_REINTERPRET_F64, e)


def from_bits(e: Expr | int) -> Expr:
    return _prim(Op.F64_REINTERPRET_I64, lift(e, I64))


def hi32(e: Expr) -> Expr:
    """fdlibm's GET_HIGH_WORD."""
    return wrap(bits(e) >> 32)


def lo32(e: Expr) -> Expr:
    """fdlibm's GET_LOW_WORD."""
    return wrap(bits(e))


def with_hi(x: Expr, hi: Expr) -> Expr:
    """fdlibm's SET_HIGH_WORD: replace the top 32 bits of ``x``."""
    return from_bits((bits(x) & 0xFFFFFFFF) | (ext_u(hi) << 32))


def from_hi(hi: Expr) -> Expr:
    """INSERT_WORDS(hi, 0)."""
    return from_bits(ext_u(hi) << 32)


def clear_lo(x: Expr) -> Expr:
    """fdlibm's SET_LOW_WORD(x, 0): keep the top 21 mantissa bits."""
    return from_bits(bits(x) & 0xFFFFFFFF00000000)


def pow2(k_: Expr) -> Expr:
    """2**k for an i32 ``k`` in [-1022, 1023] (normal range only)."""
    return from_bits(ext_u(k_ + 1023) << 52)


def truth(cond: Expr) -> k.Expr:
    """A condition as the IR wants it, a BOOL: an integer is tested for non-zero (C's ``if (k)``).
    WebAssembly's ``if`` and ``select`` make the same test implicitly; the explicit ``i32.ne 0``
    measured no slower (benchmarks/bench_wasm_math.py): Cranelift folds it into the branch."""
    if cond.ty == BOOL:
        return cond.node
    if cond.ty == F64:
        raise TypeError(f"an f64 is not a condition: {cond.node}")
    return cond.ne(0).node


def select(a: Expr | float, b: Expr | float, cond: Expr) -> Expr:
    """``a if cond else b`` without a branch (both sides are evaluated: a ``Choose``).

    Two Python ints select an i32, two Python numbers otherwise an f64.
    """
    if isinstance(a, Expr):
        ty = I32 if a.ty == BOOL else a.ty
    elif isinstance(b, Expr):
        ty = I32 if b.ty == BOOL else b.ty
    else:
        ty = I32 if isinstance(a, int) and isinstance(b, int) else F64
    return Expr(k.Choose(ty, truth(cond), lift(a, ty).node, lift(b, ty).node))


def call(fn: str, *args: Expr, ty: T = F64) -> Expr:
    """The one result of module function ``fn`` (its wasm_name)."""
    return Expr(k.CallFn(ty, fn, [a.node for a in args]))


def invoke(fn: str, *args: Expr, into: Sequence[Var]) -> k.Stmt:
    """Call ``fn`` for several results, assigned to ``into`` in order."""
    return k.Invoke(
        func=fn,
        args=[a.node for a in args],
        targets=[v.name for v in into],
        results=tuple(v.ty for v in into),
    )


def horner(x: Expr, coeffs: Sequence[float]) -> Expr:
    """c0 + x*(c1 + x*(c2 + ...)), the fdlibm evaluation order."""
    acc: Expr | float = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = c + x * acc  # type: ignore[operator]
    assert isinstance(acc, Expr)
    return acc


# --------------------------------------------------------------------------- statements
def if_(cond: Expr, then: Body, else_: Body | None = None) -> k.Stmt:
    """A statement-level ``if`` (``cond``: a BOOL, or an integer tested for non-zero)."""
    return k.If(NOSITE, truth(cond), list(then), list(else_ or []))


def ret(e: Expr | float, ty: T = F64) -> k.Stmt:
    return k.ReturnValues(values=[lift(e, ty).node])


def ret_many(*values: Expr) -> k.Stmt:
    """Return several values (a multi-value function's results, in order)."""
    return k.ReturnValues(values=[v.node for v in values])


def trap(code: int) -> k.Stmt:
    """Stop with math error ``code`` (see ``ERROR_MESSAGES``): the host raises its exception."""
    return k.Trap(code=traps.MATH, math_error=code)


def exit_(label: str, cond: Expr | None = None) -> k.Stmt:
    """Leave the loop ``label`` (when ``cond`` holds)."""
    return k.Exit(label=label, cond=None if cond is None else truth(cond))


def while_(cond: Expr | int, body: Body, label: str) -> k.Stmt:
    """``while cond: body`` (``cond`` 1: until an :func:`exit_` of ``label`` in the body)."""
    if isinstance(cond, int) and cond != 1:
        raise ValueError("a constant loop condition must be 1 (loop until an exit)")
    test = None if isinstance(cond, int) else truth(cond)
    return k.Loop(label=label, cond=test, body=list(body))


class Fn:
    """Collects the params and locals of one function; :meth:`build` makes the ``Function``."""

    def __init__(
        self,
        wasm_name: str,
        params: Sequence[tuple[str, T]],
        result: T | tuple[T, ...] = F64,
    ) -> None:
        self.wasm_name = wasm_name
        self.params = list(params)
        self.result = result
        self.locals: dict[str, T] = {}

    @property
    def results(self) -> tuple[T, ...]:
        return self.result if isinstance(self.result, tuple) else (self.result,)

    def param(self, name: str) -> Var:
        for n, ty in self.params:
            if n == name:
                return Var(n, ty)
        raise KeyError(name)

    def local(self, name: str, ty: T = F64) -> Var:
        if any(n == name for n, _ in self.params):
            raise ValueError(f"{name} is a parameter")
        if self.locals.setdefault(name, ty) != ty:
            raise ValueError(f"local {name} redeclared with another type")
        return Var(name, ty)

    def vars(self, names: str, ty: T = F64) -> list[Var]:
        return [self.local(n, ty) for n in names.split()]

    def build(self, body: Body) -> k.Function:
        """The function; its body must end in a return or a trap (every path returns)."""
        stmts = list(body)
        if not stmts or not isinstance(stmts[-1], (k.ReturnValues, k.Trap)):
            raise ValueError(f"{self.wasm_name}: the body must end in a return or a trap")
        return k.Function(
            name=self.wasm_name,
            params=list(self.params),
            results=self.results,
            locals=dict(self.locals),
            body=stmts,
        )


# --------------------------------------------------------------------------- IR helpers
def _child_fields(cls: type) -> tuple[str, ...]:
    """The fields of an IR node class that can hold nodes (not its type, site or operation)."""
    return tuple(f.name for f in fields(cls) if f.name not in ("type", "site", "where", "op"))


_CHILDREN: dict[type, tuple[str, ...]] = {
    cls: _child_fields(cls)
    for cls in vars(k).values()
    if isinstance(cls, type) and issubclass(cls, (k.Expr, k.Stmt)) and is_dataclass(cls)
}
"""Per IR node class, the fields :func:`walk` descends into (fixed at import)."""


def walk(node: Any) -> Iterator[k.Expr | k.Stmt]:
    """Every expression and statement under ``node`` (a node or a list of them, itself
    included), depth first, in field order."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(reversed(n))
        elif isinstance(n, (k.Expr, k.Stmt)):
            yield n
            stack.extend(reversed([getattr(n, name) for name in _CHILDREN[type(n)]]))


def callees(fn: k.Function) -> set[str]:
    """The module functions ``fn`` calls."""
    return {n.func for n in walk(fn.body) if isinstance(n, (k.CallFn, k.Invoke))}


def can_trap(fn: k.Function) -> bool:
    """Whether ``fn``'s own body has a trap (callees that can trap are only called inside their
    safe domain, so they do not count)."""
    return any(isinstance(n, k.Trap) for n in walk(fn.body))


# --------------------------------------------------------------------------- constants
def from_words(hi: int, lo: int = 0) -> float:
    """A double from its two 32-bit words, as fdlibm documents constants."""
    return struct.unpack("<d", struct.pack("<Q", (hi << 32) | lo))[0]


def split(v: float) -> tuple[float, float]:
    """Veltkamp split into 26+27-bit halves (for exact Dekker products)."""
    t = v * 134217729.0
    hi = t - (t - v)
    return hi, v - hi


def two_prod_err(a: Expr, p: Expr, bh: float, bl: float, ah: Var, al: Var) -> tuple[list[k.Stmt], Expr]:
    """Exact error of ``p = a*b`` (Dekker, no fma), b pre-split as bh+bl."""
    t = a * 134217729.0
    stmts = [ah.set(t - (t - a)), al.set(a - ah)]
    return stmts, ((ah * bh - p) + ah * bl + al * bh) + al * bl


INF = math.inf
NAN = math.nan
