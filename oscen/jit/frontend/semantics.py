"""Python's semantics, as decided while lowering: what folds (exactly), what is refused, and how.

Both the typing pass and the lowering use these rules, so a value is a constant (and a branch is
dead) for one exactly when it is for the other. Folding must give Python's own result: int
arithmetic is folded only where Python's result fits 64 bits and raises nothing; float arithmetic
only where it is one IEEE operation (``1.0 / sample_rate``), as Python computes it.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from .. import kernel as k
from ..kernel import T
from .errors import JitError

BINOPS: dict[type, str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
}  # fmt: skip
BIT_OPS = frozenset({"<<", ">>", "&", "|", "^"})
CMPOPS: dict[type, str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

FOLD = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
COMPARE = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}  # fmt: skip

MAX_TABLE = 256
"""Elements of a constant tuple that compiled code indexes (a chain of selects; larger: an array)."""

# ------------------------------------------------------------------------------ refusals
OPERATOR_WORDS: dict[type, str] = {ast.MatMult: "@ (matrix multiplication)"}
COMPARISON_WORDS: dict[type, str] = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
REFUSED_STATEMENTS: dict[type, str] = {
    ast.FunctionDef: "a nested function", ast.ClassDef: "a class definition",
    ast.Try: "try/except", ast.With: "with", ast.Raise: "raise", ast.Global: "global",
    ast.Nonlocal: "nonlocal", ast.Delete: "del", ast.Import: "import", ast.ImportFrom: "import",
    ast.AsyncFunctionDef: "an async function", ast.AsyncFor: "async for", ast.AsyncWith: "async with",
}  # fmt: skip
REFUSED_EXPRESSIONS: dict[type, str] = {
    ast.Tuple: "a tuple", ast.List: "a list", ast.Dict: "a dict", ast.Set: "a set",
    ast.ListComp: "a list comprehension", ast.GeneratorExp: "a generator expression",
    ast.DictComp: "a dict comprehension", ast.SetComp: "a set comprehension",
    ast.Lambda: "lambda", ast.JoinedStr: "an f-string", ast.NamedExpr: "the walrus operator",
    ast.Starred: "starred arguments", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield from", ast.Slice: "a slice",
}  # fmt: skip
CALLABLE_HINT = (
    "compiled code may call math functions, min/max/abs/int/float/round/len/bool, the node's own "
    "methods, static methods and Python functions defined in a module"
)


def unsupported(construct: str, hint: str = "", site: k.Site | None = None) -> JitError:
    """The refusal of a construct outside the subset (the visitor adds the site if none is given)."""
    msg = f"{construct} is not supported in compiled node code"
    if hint:
        msg += f" ({hint})"
    return JitError(msg, site)


def short(e: ast.AST) -> str:
    """Source text of a construct for a message (never a syntax-tree class name), shortened."""
    try:
        text = ast.unparse(e)
    except Exception:  # noqa: BLE001 - a message must not fail
        return "this construct"
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def statement_words(s: ast.stmt) -> str:
    """A statement the subset lacks, named by its keyword (``match``...) rather than its class."""
    first = short(s).split(" ", 1)[0].rstrip(":")
    return f"the `{first}` statement" if first.isidentifier() else f"the statement `{short(s)}`"


def refused_statement(s: ast.stmt) -> str:
    return REFUSED_STATEMENTS.get(type(s)) or statement_words(s)


def refused_expression(e: ast.expr) -> tuple[str, str]:
    """(construct, hint) for an expression outside the subset."""
    if (
        isinstance(e, (ast.List, ast.Tuple))
        and e.elts
        and all(isinstance(x, ast.Constant) and type(x.value) in (int, float) for x in e.elts)
    ):
        kind = "a list" if isinstance(e, ast.List) else "a tuple"
        return (
            f"{kind} of numbers as a value",
            "index a constant tuple directly, or use a numpy array: self.values = np.array([...]) "
            "in __init__, then self.values[i]",
        )
    return REFUSED_EXPRESSIONS.get(type(e)) or f"the expression `{short(e)}`", ""


# ------------------------------------------------------------------------------ values
def is_none(e: ast.expr) -> bool:
    return isinstance(e, ast.Constant) and e.value is None


def is_self(e: ast.expr) -> bool:
    return isinstance(e, ast.Name) and e.id == "self"


def tname(t: T) -> str:
    return {T.F64: "float", T.I64: "int", T.BOOL: "bool"}[t]


def check_int_range(v: int, site: k.Site | None) -> None:
    if not -(2**63) <= v < 2**63:
        raise JitError(f"the int constant {v} does not fit 64 bits", site)


def literal(v: Any, site: k.Site | None) -> k.Const | None:
    """The constant of a literal number or bool (None: not one)."""
    if isinstance(v, bool):
        return k.Const(T.BOOL, v)
    if isinstance(v, int):
        check_int_range(v, site)
        return k.Const(T.I64, v)
    if isinstance(v, float):
        return k.Const(T.F64, v)
    return None


def numeric_constant(value: Any) -> k.Const | None:
    """A global, class or default value that compiled code folds in: numbers and bools only."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return k.Const(T.BOOL, bool(value))
    if isinstance(value, (int, np.integer)):
        if -(2**63) <= int(value) < 2**63:
            return k.Const(T.I64, int(value))
        return None
    if isinstance(value, (float, np.floating)):
        return k.Const(T.F64, float(value))
    return None


def exact_in_float(c: k.Const) -> bool:
    """Whether an int constant is exactly a float (so converting it loses nothing)."""
    v = int(c.value)
    return abs(v) <= 2**53 or int(float(v)) == v


def convert_const(c: k.Const, t: T) -> k.Const:
    """A constant converted as ``coerce`` converts it (to float, or a bool to int)."""
    if t == T.F64:
        return k.Const(T.F64, float(c.value))
    if t == T.I64:
        return k.Const(T.I64, int(c.value))
    return k.Const(T.BOOL, bool(c.value))


# ------------------------------------------------------------------------------ operators
def fold_int(op: str, a: int, b: int) -> k.Const | None:
    """An int operation on two constants, folded as Python computes it; None where it would raise
    or leave 64 bits (the compiled operation then raises at run time, as documented)."""
    try:
        if op == "**":
            if b < 0 or (abs(a) > 1 and b > 64):
                return None
            v = a**b
        elif op in ("<<", ">>"):
            if b < 0 or (op == "<<" and b > 64):
                return None
            v = a << b if op == "<<" else a >> b
        elif op in ("+", "-", "*", "//", "%", "&", "|", "^"):
            v = {
                "+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b,
            }.get(op) if op not in ("//", "%") else (a // b if op == "//" else a % b)  # fmt: skip
        else:
            return None
    except ZeroDivisionError:
        return None
    if not -(2**63) <= v < 2**63:
        return None
    return k.Const(T.I64, v)


def binary_type(op: str, a: k.Expr, b: k.Expr, site: k.Site | None) -> T:
    """The type of ``a op b``; raises the refusals (bit operators on floats, ``int ** int`` with
    an exponent whose sign is not known)."""
    if op in BIT_OPS:
        if a.type == T.F64 or b.type == T.F64:
            raise JitError(f"the bit operator {op} on floats (Python raises TypeError)", site)
        return T.BOOL if a.type == T.BOOL and b.type == T.BOOL and op in ("&", "|", "^") else T.I64
    if op == "/":
        return T.F64
    if op == "**":
        if a.type == T.F64 or b.type == T.F64:
            return T.F64
        if not (isinstance(b, k.Const) and int(b.value) >= 0):
            raise JitError(
                "int ** int with an exponent that is not a non-negative constant (its result type "
                "depends on the sign); write float(x) ** y",
                site,
            )
        return T.I64
    return T.F64 if T.F64 in (a.type, b.type) else T.I64


def fold_binary(op: str, a: k.Expr, b: k.Expr) -> k.Const | None:
    """``a op b`` of two constants where Python's result is known exactly (None: not folded).
    Bit operators are never folded."""
    if not (isinstance(a, k.Const) and isinstance(b, k.Const)) or op in BIT_OPS:
        return None
    if a.type.is_int and b.type.is_int:
        folded = fold_int(op, int(a.value), int(b.value))
        if folded is not None:
            return folded
    if op == "/":
        if float(b.value) != 0.0:
            if a.type.is_int and b.type.is_int:  # Python's int / int: the exact quotient, rounded once
                return k.Const(T.F64, int(a.value) / int(b.value))
            return k.Const(T.F64, float(a.value) / float(b.value))
        return None
    if op in FOLD and T.F64 in (a.type, b.type):
        # Folding is exact: Python does the same IEEE operation (e.g. 1.0 / sample_rate below).
        return k.Const(T.F64, FOLD[op](float(a.value), float(b.value)))
    return None


def compare_type(left: k.Expr, right: k.Expr) -> T:
    """The type two operands are compared in."""
    if left.type == T.BOOL and right.type == T.BOOL:
        return T.BOOL
    return T.F64 if T.F64 in (left.type, right.type) else T.I64


def fold_compare(sym: str, left: k.Expr, right: k.Expr) -> k.Const | None:
    """A comparison whose result is known: two constants, or a float ``==``/``!=`` an int constant
    that no float equals (never equal, also for NaN)."""
    if isinstance(left, k.Const) and isinstance(right, k.Const):
        return k.Const(T.BOOL, COMPARE[sym](left.value, right.value))
    if sym in ("==", "!=") and compare_type(left, right) == T.F64:
        for c in (right, left):
            if isinstance(c, k.Const) and c.type == T.I64 and not exact_in_float(c):
                return k.Const(T.BOOL, sym == "!=")
    return None


def inexact_bounds(c: int) -> tuple[float, float]:
    """The two floats around an int that no float equals."""
    lo = float(c)
    if lo > c:
        lo = math.nextafter(lo, -math.inf)
    return lo, math.nextafter(lo, math.inf)


def logical(op: str, a: k.Expr, b: k.Expr) -> k.Expr:
    """``a and b`` / ``a or b`` on booleans, folded when ``a`` is known (b is then the answer or unused)."""
    if isinstance(a, k.Const):
        if op == "and":
            return b if a.value else k.Const(T.BOOL, False)
        return k.Const(T.BOOL, True) if a.value else b
    return k.Logical(T.BOOL, op, a, b)


def decides(v: k.Expr, op: str) -> bool:
    """Whether ``v`` (an operand of ``and``/``or``) decides the result: the rest is never run."""
    return isinstance(v, k.Const) and bool(v.value) == (op == "or")
