"""The names compiled code may call without defining them: ``math``'s functions and constants,
and the builtins ``min max abs int float round len bool range``, with how each one lowers.

Each lowering rule takes the visitor it runs in (the lowering, or the typing pass, whose values
carry only their type and, for constants, their value) and builds the call's kernel expression
from the visitor's ``expr`` / ``coerce`` / ``truth`` / ``temp``. One rule serves both, so the type
and the constness the typing pass finds are the ones the lowering then builds.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any, Protocol

from .. import kernel as k
from ..kernel import T
from .attributes import ArrayAttr
from .errors import JitError
from .semantics import unsupported


class FunctionVisitor(Protocol):
    """What the lowering rules below use of the visitor that calls them (visitor.FunctionVisitor
    is one): a protocol, so this table needs nothing of the visitor, which imports it."""

    owner: Any

    def expr(self, e: ast.expr, allow_void: bool = False) -> k.Expr: ...

    def coerce(self, e: k.Expr, t: T, node: ast.AST) -> k.Expr: ...

    def truth(self, e: k.Expr, node: ast.AST) -> k.Expr: ...

    def temp(self, t: T) -> str: ...

    def site(self, node: ast.AST) -> k.Site: ...

    def is_self(self, e: ast.expr) -> bool: ...

    def constant_sequence(self, e: ast.expr) -> tuple[k.Const, ...] | None: ...


MATH_F64 = {
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh", "acosh",
    "atanh", "exp", "exp2", "expm1", "log2", "log10", "log1p", "pow", "sqrt", "cbrt", "fmod",
    "hypot", "degrees", "radians", "copysign", "fabs",
}  # fmt: skip
"""math functions of floats that give a float (the math library of the backend has each)."""
MATH_PREDICATES = {"isnan", "isinf", "isfinite"}
MATH_TO_INT = {"floor", "ceil", "trunc"}
MATH_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf, "nan": math.nan}
MATH_ARITY = {"atan2": 2, "pow": 2, "fmod": 2, "hypot": 2, "copysign": 2}
"""Arguments of the math functions that do not take one."""
MATH_BY_ID = {id(getattr(math, n)): n for n in MATH_F64 | MATH_PREDICATES | MATH_TO_INT | {"log"}}
"""math's functions by identity: ``from math import sin`` calls the same function."""
BUILTINS = {"min", "max", "abs", "int", "float", "round", "len", "bool", "range"}
"""Builtins compiled code may use (``range`` only as a for loop's iterable)."""


def math_name(value: object) -> str | None:
    """The math function ``value`` is (by identity), or None."""
    name = MATH_BY_ID.get(id(value))
    return name if name is not None and value is getattr(math, name) else None


# ------------------------------------------------------------------------------ math
def lower_math(v: FunctionVisitor, name: str, e: ast.Call) -> k.Expr:
    """``math.name(...)``: a float function of the math library, a predicate, or an int rounding."""
    site = v.site(e)
    args = [v.expr(a) for a in e.args]
    if name == "log" and len(args) in (1, 2):
        fargs = [v.coerce(a, T.F64, e) for a in args]
        value = k.MathCall(T.F64, "log", [fargs[0]], site)
        if len(args) == 2:
            return k.Binary(T.F64, "/", value, k.MathCall(T.F64, "log", [fargs[1]], site), site)
        return value
    if name in MATH_TO_INT:
        if len(args) != 1:
            raise JitError(f"math.{name}() takes 1 argument", site)
        if args[0].type != T.F64:
            return v.coerce(args[0], T.I64, e)
        return k.Convert(T.I64, args[0], site, mode=name)
    if name in MATH_F64 or name in MATH_PREDICATES:
        arity = MATH_ARITY.get(name, 1)
        if len(args) != arity:
            raise JitError(f"math.{name}() takes {arity} argument(s), got {len(args)}", site)
        fargs = [v.coerce(a, T.F64, e) for a in args]
        return k.MathCall(T.BOOL if name in MATH_PREDICATES else T.F64, name, fargs, site)
    raise unsupported(f"math.{name}()", "see docs/jit.md for the supported math functions", site)


# ------------------------------------------------------------------------------ builtins
def _len(v: FunctionVisitor, e: ast.Call) -> k.Expr:
    """``len()`` of an array attribute (its rows, for 2-D) or of a constant sequence: a constant."""
    arg = e.args[0] if len(e.args) == 1 else None
    if isinstance(arg, ast.Attribute) and v.is_self(arg.value):
        info = v.owner.attrs.get(arg.attr)
        if isinstance(info, ArrayAttr):
            return k.Const(T.I64, info.length // info.cols if info.cols else info.length)
    table = v.constant_sequence(arg) if arg is not None else None
    if table is not None:
        return k.Const(T.I64, len(table))
    raise unsupported("len() of anything but an array attribute or a constant tuple", site=v.site(e))


def _min_max(v: FunctionVisitor, name: str, e: ast.Call, args: list[k.Expr]) -> k.Expr:
    if len(args) < 2:
        raise unsupported(f"{name}() of an iterable", f"pass the values: {name}(a, b)", v.site(e))
    t = args[0].type
    for a in args[1:]:
        t = k.join(t, a.type)
    # Python keeps the first of equal values: min(a, b) = b if b < a else a.
    tmp = v.temp(t)
    acc: k.Expr = v.coerce(args[0], t, e)
    for a in args[1:]:
        nxt = v.temp(t)
        cur = k.Local(t, tmp)
        cand = k.Local(t, nxt)
        cmp = k.Compare(T.BOOL, "<" if name == "min" else ">", cand, cur)
        acc = k.Let(t, tmp, acc, k.Let(t, nxt, v.coerce(a, t, e), k.Select(t, cmp, cand, cur)))
        tmp = v.temp(t)
    return acc


def _abs(v: FunctionVisitor, a: k.Expr, e: ast.Call) -> k.Expr:
    if a.type == T.F64:
        return k.MathCall(T.F64, "fabs", [a], v.site(e))
    return k.Unary(T.I64, "abs", v.coerce(a, T.I64, e), v.site(e))


def _int(v: FunctionVisitor, a: k.Expr, e: ast.Call) -> k.Expr:
    if a.type == T.F64:
        return k.Convert(T.I64, a, v.site(e), mode="trunc")
    return v.coerce(a, T.I64, e)


def _round(v: FunctionVisitor, a: k.Expr, e: ast.Call) -> k.Expr:
    if a.type == T.F64:
        return k.Convert(T.I64, a, v.site(e), mode="round")
    return v.coerce(a, T.I64, e)


UNARY_BUILTINS: dict[str, Callable[[FunctionVisitor, k.Expr, ast.Call], k.Expr]] = {
    "abs": _abs,
    "int": _int,
    "float": lambda v, a, e: v.coerce(a, T.F64, e),
    "bool": lambda v, a, e: v.truth(a, e),
    "round": _round,
}
"""The builtins of one argument, by name: how each lowers its (lowered) argument."""


def lower_builtin(v: FunctionVisitor, name: str, e: ast.Call) -> k.Expr:
    """A call of the builtin ``name`` (one of BUILTINS; ``range`` only in a for loop)."""
    if name == "len":
        return _len(v, e)
    args = [v.expr(a) for a in e.args]
    if name in ("min", "max"):
        return _min_max(v, name, e, args)
    if len(args) != 1:
        raise unsupported(f"{name}() with {len(args)} arguments", site=v.site(e))
    rule = UNARY_BUILTINS.get(name)
    if rule is None:
        raise unsupported(f"{name}()", site=v.site(e))
    return rule(v, args[0], e)
