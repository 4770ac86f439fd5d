"""The kernel IR: a small typed language the frontend lowers node methods to, and backends render.

Expressions carry their type (``F64``, ``I64`` or ``BOOL``). References to the node (``self.x``)
stay symbolic (``Attr``, ``Input``, ``ArrayRef``) so one lowered method serves every placement of the
node; the codegen binds them to memory slots, locals or buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class T(str, Enum):
    """Value types of the kernel language."""

    F64 = "f64"
    I64 = "i64"
    BOOL = "bool"

    @property
    def is_int(self) -> bool:
        return self in (T.I64, T.BOOL)


def join(a: T, b: T) -> T:
    """The type that holds both (bool < int < float), as a local assigned both would need."""
    order = [T.BOOL, T.I64, T.F64]
    return order[max(order.index(a), order.index(b))]


@dataclass(frozen=True)
class Site:
    """Where a construct came from, for errors: file, line and the node class."""

    file: str
    line: int
    node: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


# --------------------------------------------------------------------------- expressions
@dataclass
class Expr:
    type: T


@dataclass
class Const(Expr):
    value: float | int | bool


@dataclass
class Local(Expr):
    name: str


@dataclass
class Attr(Expr):
    """A scalar attribute of the node (state, a stream/value output, a parameter)."""

    name: str


@dataclass
class Input(Expr):
    """The current value of a stream or value input endpoint."""

    name: str


@dataclass
class ArrayLoad(Expr):
    array: str
    index: Expr
    site: Site


@dataclass
class ConstTable(Expr):
    """Element ``index`` of a constant tuple of numbers (a module or class constant): Python's
    negative indices, IndexError beyond the end."""

    values: tuple[float | int | bool, ...]
    index: Expr
    site: Site


@dataclass
class Unary(Expr):
    op: str  # "neg", "not", "invert", "pos"
    operand: Expr
    site: Site


@dataclass
class Binary(Expr):
    op: str  # + - * / // % ** << >> & | ^  (operands already coerced to the op's type)
    left: Expr
    right: Expr
    site: Site


@dataclass
class Compare(Expr):
    op: str  # < <= > >= == !=
    left: Expr
    right: Expr


@dataclass
class Logical(Expr):
    """Short-circuit ``and``/``or`` on booleans (value forms are lowered to ``Select``)."""

    op: str
    left: Expr
    right: Expr


@dataclass
class Select(Expr):
    """``a if cond else b``; evaluates only the chosen branch."""

    cond: Expr
    then: Expr
    orelse: Expr


@dataclass
class Convert(Expr):
    """Type conversion; ``check`` adds Python's errors (NaN/inf/overflow when going to int)."""

    operand: Expr
    site: Site
    mode: str = (
        "plain"  # "plain", "trunc" (int()), "floor", "ceil", "round", "exact" (int -> float, |i| <= 2**53)
    )


@dataclass
class MathCall(Expr):
    func: str  # a wasm_math function name, or a native op: "sqrt_native", "fabs", "copysign"...
    args: list[Expr]
    site: Site


@dataclass
class Call(Expr):
    """A call of one of the node's own methods; the codegen inlines it, or, when it is large and
    ``conditional`` (inside an ``if``: a coefficient update, say), calls it as a function."""

    func: KFunction
    args: list[Expr]
    site: Site
    conditional: bool = False


@dataclass
class Let(Expr):
    """Evaluate ``value`` into local ``name`` then yield ``body`` (used to evaluate once)."""

    name: str
    value: Expr
    body: Expr


# --------------------------------------------------------------------------- statements
@dataclass
class Stmt:
    site: Site


@dataclass
class Assign(Stmt):
    target: Local | Attr
    value: Expr


@dataclass
class ArrayStore(Stmt):
    array: str
    index: Expr
    value: Expr


@dataclass
class If(Stmt):
    cond: Expr
    body: list[Stmt]
    orelse: list[Stmt]


@dataclass
class While(Stmt):
    cond: Expr
    body: list[Stmt]


@dataclass
class ForRange(Stmt):
    var: Local
    start: Expr
    stop: Expr
    step: Expr
    body: list[Stmt]
    counter: str = ""  # hidden locals the codegen uses
    limit: str = ""
    stride: str = ""


@dataclass
class Break(Stmt):
    pass


@dataclass
class Continue(Stmt):
    pass


@dataclass
class Return(Stmt):
    value: Expr | None


@dataclass
class ReturnTuple(Stmt):
    """``return a, b``: a helper that returns several values (unpacked by its caller)."""

    values: list[Expr]


@dataclass
class UnpackCall(Stmt):
    """``a, b = helper(...)``: the helper's returned values into ``targets`` (locals)."""

    call: Call
    targets: list[Local]


@dataclass
class ExprStmt(Stmt):
    value: Expr


@dataclass
class Emit(Stmt):
    port: str
    args: list[Expr]


@dataclass
class Raise(Stmt):
    """An ``assert`` that failed, or an explicit error path: traps with the site's message."""

    exc: str
    message: str


# --------------------------------------------------------------------------- functions
@dataclass
class KFunction:
    """One lowered method, monomorphic in its parameter types."""

    name: str
    qualname: str
    params: list[tuple[str, T]]
    locals: dict[str, T]
    body: list[Stmt]
    returns: T | None
    site: Site
    calls: list[KFunction] = field(default_factory=list)
    # (size, inputs read, emits): filled in by the renderer the first time it is needed
    measure: tuple[int, frozenset[str], bool] | None = field(default=None, compare=False, repr=False)
    tuple_returns: tuple[T, ...] | None = None  # the types of ``return a, b`` (returns is then None)

    def __repr__(self) -> str:
        return f"KFunction({self.qualname}({', '.join(f'{n}: {t.value}' for n, t in self.params)}))"
