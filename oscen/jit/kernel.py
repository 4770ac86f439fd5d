r"""The kernel IR: the one typed language between the frontend and every backend.

It has two levels in one set of nodes:

* **High level**, what the frontend lowers node methods to: Python operators (``Binary``,
  ``Unary``, ``Compare`` with a :class:`~.ops.PyOp`), ``Convert`` with Python's checks,
  ``MathCall`` (a ``math`` function), calls of the node's own methods (``Call``), and references
  to the node (``Attr``, ``Input``, ``ArrayLoad``, ``Emit``) that stay symbolic so one lowered
  method serves every placement of the node.
* **Primitive level**, what backends implement: ``Prim`` (a :class:`~.ops.Op` with the exact
  meaning of the WebAssembly instruction), ``Load``/``Store`` on linear memory, locals, structured
  control (``If``, ``While``, ``Block`` with ``Exit``/``Next``), calls of module functions
  (``CallFn``, ``Invoke``) and ``Trap(code, site)``. A :class:`Module` of :class:`Function`\ s holds
  a whole program: the graph's skeleton, node code, the math library, the memory protocol.

The passes (:mod:`.passes`) take a kernel from the first level to the second;
:mod:`.validate` checks either level; :mod:`.backends` run only the second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class T(str, Enum):
    """Value types of the kernel language (``I32``: primitive level only, for addresses, counters
    and the math library's word operations; ``V128``: primitive level only, WebAssembly's 128-bit
    SIMD vector, read as two f64 lanes, two i64 lanes or four i32 lanes by the op that uses it)."""

    F64 = "f64"
    I64 = "i64"
    BOOL = "bool"
    I32 = "i32"
    V128 = "v128"

    @property
    def is_int(self) -> bool:
        return self in (T.I64, T.BOOL, T.I32)

    @property
    def is_vector(self) -> bool:
        return self is T.V128


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
    """A constant. A ``V128`` constant's ``value`` is its 16 bytes as they lie in memory
    (little-endian: lane 0 first); build one with :func:`v128_f64x2` or :func:`v128_i64x2`."""

    value: float | int | bool | bytes


def v128_f64x2(lane0: float, lane1: float) -> Const:
    """A V128 constant of two f64 lanes (bit for bit: NaN payloads and -0.0 kept)."""
    return Const(T.V128, struct.pack("<dd", lane0, lane1))


def v128_i64x2(lane0: int, lane1: int) -> Const:
    """A V128 constant of two i64 lanes (each taken modulo 2**64)."""
    m = (1 << 64) - 1
    return Const(T.V128, ((lane0 & m) | (lane1 & m) << 64).to_bytes(16, "little"))


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


# =========================================================================== primitive level
NOSITE = Site("<oscen>", 0)
"""The site of code oscen generates itself (the program skeleton, the math library)."""


@dataclass(frozen=True, eq=False)
class TrapSite:
    """Where a trap can happen in node code: the source location and what (a detail such as
    ``self.buf[...] (length 64)``). Compared by identity: each check is its own site, and a
    backend numbers the sites of a program as it meets them."""

    site: Site | None
    detail: str = ""


@dataclass
class Prim(Expr):
    """A primitive operation (see :class:`~.ops.Op`); ``type`` is the op's result type, except
    for ``SELECT`` ... (use :class:`Choose` for an eager select)."""

    op: Any  # ops.Op (kept untyped here: ops imports this module)
    args: list[Expr]


@dataclass
class Choose(Expr):
    """``a if cond else b`` with both sides evaluated (WebAssembly's ``select``): cheap for small
    operands, and branch-free (``Select`` evaluates only the chosen side)."""

    cond: Expr
    a: Expr
    b: Expr


@dataclass
class Load(Expr):
    """A value of ``type`` from linear memory at ``addr + offset`` (``addr`` an ``I32``). F64 and
    I64 take 8 bytes, I32 and BOOL 4, V128 16 (little-endian, as WebAssembly; no alignment
    needed, as for every WebAssembly access)."""

    addr: Expr
    offset: int = 0


@dataclass
class Seq(Expr):
    """Run ``body`` then yield ``value`` (an inlined call's statements, then its result)."""

    body: list[Stmt]
    value: Expr


@dataclass
class CallFn(Expr):
    """Call module function ``func`` (by name) for its one result."""

    func: str
    args: list[Expr]


@dataclass
class GetGlobal(Expr):
    name: str


@dataclass
class Store(Stmt):
    """Write ``value`` (of ``type``) to linear memory at ``addr + offset``."""

    site: Site = field(default=NOSITE, kw_only=True)
    type: T
    addr: Expr
    offset: int
    value: Expr


@dataclass
class SetLocal(Stmt):
    """``name = value`` (a primitive-level assignment: the local must be declared)."""

    site: Site = field(default=NOSITE, kw_only=True)
    name: str
    value: Expr


@dataclass
class SetGlobal(Stmt):
    site: Site = field(default=NOSITE, kw_only=True)
    name: str
    value: Expr


@dataclass
class Block(Stmt):
    """A labelled block: ``Exit(label)`` inside jumps past its end (an inlined ``return``)."""

    site: Site = field(default=NOSITE, kw_only=True)
    label: str
    body: list[Stmt]


@dataclass
class Loop(Stmt):
    """``while cond: body`` with a label: ``Exit(label)`` leaves it, ``Next(label)`` starts the
    next iteration (re-testing ``cond``). ``cond=None`` loops until an ``Exit``."""

    site: Site = field(default=NOSITE, kw_only=True)
    label: str
    cond: Expr | None
    body: list[Stmt]


@dataclass
class Exit(Stmt):
    """Leave the enclosing ``Block`` or ``Loop`` named ``label``; with ``cond``, only if it holds."""

    site: Site = field(default=NOSITE, kw_only=True)
    label: str
    cond: Expr | None = None


@dataclass
class Next(Stmt):
    """Start the next iteration of the enclosing ``Loop`` named ``label``."""

    site: Site = field(default=NOSITE, kw_only=True)
    label: str


@dataclass
class Invoke(Stmt):
    """Call module function ``func``; its results go into locals ``targets`` (none: dropped)."""

    site: Site = field(default=NOSITE, kw_only=True)
    func: str
    args: list[Expr]
    targets: list[str] = field(default_factory=list)
    results: tuple[T, ...] = ()  # the callee's result types (those not in targets are dropped)


@dataclass
class ReturnValues(Stmt):
    """Return from the module function (its results, in order)."""

    site: Site = field(default=NOSITE, kw_only=True)
    values: list[Expr]


@dataclass
class Trap(Stmt):
    """Stop the kernel: ``code`` says what went wrong (a Python exception, see :mod:`.traps`),
    ``where`` where in the node's source. ``math_error`` is the math library's own code (the
    library has no trap-site table: its caller noted the site before calling it). ``node``, in
    node code its base ``nb``, goes into the header's NODE slot with the site and the code (a
    math call's note stores it before the call): a fault names its node, and nothing per sample
    is needed for that."""

    site: Site = field(default=NOSITE, kw_only=True)
    code: int
    where: TrapSite | None = None
    math_error: int = 0
    via: str = ""  # print as a call of this module function (site index, code, node): smaller code
    node: Expr | None = None  # I32: the node's base, stored in NODE (None: NODE is left as it is)


@dataclass
class Unreachable(Stmt):
    """Stop the kernel with what the header already says (a shared trap function's last step,
    after it stored the site and code it was given)."""

    site: Site = field(default=NOSITE, kw_only=True)


@dataclass
class MemCopy(Stmt):
    """Copy ``nbytes`` bytes of linear memory from ``src`` to ``dst`` (I32 addresses; the
    regions may overlap, as WebAssembly's ``memory.copy``)."""

    site: Site = field(default=NOSITE, kw_only=True)
    dst: Expr
    src: Expr
    nbytes: Expr


@dataclass
class Code:
    """A node variant's code at the primitive level, shared by every node of the variant: its
    statements, the locals they use (beyond the skeleton's), and the marks where the locals
    holding node state go back to memory around out-of-line helper calls. Backends may cache
    whatever they derive from it by identity (the WebAssembly printer keeps its text)."""

    body: list[Stmt]
    locals: dict[str, T]
    # The variant's trap sites (one list shared by its Codes and outlined Functions): a trap's
    # number is its position plus one, 0 meaning unknown.
    sites: list[TrapSite] = field(default_factory=list)
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # backend caches


@dataclass
class SyncState(Stmt):
    """In a :class:`Code` body: write the node-state locals back to memory (``"flush"``) or read
    them again (``"reload"``); an :class:`Instance` says which locals and addresses."""

    site: Site = field(default=NOSITE, kw_only=True)
    direction: str  # "flush" | "reload"


@dataclass
class Instance(Stmt):
    """One node's copy of a variant's :class:`Code`: local names renamed (``renames``: the
    variant's name -> this node's), ``SyncState`` marks replaced by ``flush`` / ``reload``."""

    site: Site = field(default=NOSITE, kw_only=True)
    code: Code
    renames: dict[str, str] = field(default_factory=dict)
    flush: list[Stmt] = field(default_factory=list)
    reload: list[Stmt] = field(default_factory=list)


@dataclass
class Function:
    """A module function. ``export``: the name hosts call it by (``None``: internal)."""

    name: str
    params: list[tuple[str, T]]
    results: tuple[T, ...]
    locals: dict[str, T]
    body: list[Stmt]
    export: str | None = None


@dataclass(frozen=True)
class Import:
    """A function the module takes from outside (the shared math library module)."""

    module: str
    name: str
    params: tuple[T, ...]
    results: tuple[T, ...]


@dataclass
class Global:
    name: str
    type: T
    init: int | float = 0
    mutable: bool = True
    export: str | None = None


@dataclass
class Module:
    """A whole program: functions, the functions it imports, globals, and its linear memory
    (``memory_pages`` of 64 KiB, exported as ``memory``; 0: no memory)."""

    functions: list[Function]
    imports: list[Import] = field(default_factory=list)
    globals: list[Global] = field(default_factory=list)
    memory_pages: int = 0

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)
