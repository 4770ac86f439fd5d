"""Inlining and outlining: the node's helper methods, and small primitive-level functions.

Cranelift does not inline calls, and a call inside the per-sample loop, even on a path never
taken, makes its register allocator spill every float live across the loop (all float registers
are caller-saved): a biquad with its coefficient update (sin, cos, a division) behind an ``if``
ran ~10x slower than the same loop without calls. So:

* a call of one of the node's own methods (``Call``) is expanded in place: its parameters and
  locals get names of their own, ``return`` becomes a local and an ``Exit`` of a ``Block``;
* except a large helper called under an ``if`` (``conditional``) that neither reads a connected
  input nor emits: typically a coefficient update, which would bloat every node's loop (and
  Cranelift's work) for code that rarely runs. It becomes a module :class:`~..kernel.Function` of
  the variant taking the node's base ``nb``; with state in locals, ``SyncState`` marks write the
  locals back around the call (the function works on memory);
* a primitive-level :class:`~..kernel.Function` (a runtime helper, a small math function) called
  with ``CallFn`` is expanded by :func:`expand` the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from .. import kernel as k
from ..kernel import T
from .context import Unit, Variant
from .walk import Rewriter, walk


def seq(body: list[k.Stmt], value: k.Expr) -> k.Seq:
    return k.Seq(value.type, body, value)


OUTLINE_SIZE = 60
"""Kernel IR nodes above which a helper method is compiled as a function instead of inlined."""


def _measure(fn: k.KFunction) -> tuple[int, frozenset[str], bool]:
    """Size in kernel IR nodes, inputs read, and whether it emits events (kept on the function
    itself: a cache keyed by id() would hand a reused id a stale entry)."""
    got = fn.measure
    if got is None:
        nodes = list(walk(fn.body))
        inputs = frozenset(x.name for x in nodes if isinstance(x, k.Input))
        got = (len(nodes), inputs, any(isinstance(x, k.Emit) for x in nodes))
        fn.measure = got
    return got


def zero(t: T) -> k.Const:
    return k.Const(t, 0.0 if t == T.F64 else 0)


class _Frame(Rewriter):
    """One inlined body of a node method: renames its locals, turns its returns into exits."""

    def __init__(
        self,
        variant: Variant,
        unit: Unit,
        prefix: str,
        ret_label: str,
        ret_local: k.Local | None = None,
        ret_locals: list[k.Local] | None = None,
    ) -> None:
        self.v = variant
        self.unit = unit
        self.prefix = prefix
        self.ret_label = ret_label
        self.ret_local = ret_local
        self.ret_locals = ret_locals or []
        self.consts: dict[str, k.Const] = {}  # parameters that stand for their constant argument

    def name(self, n: str) -> str:
        return f"{self.prefix}_{n}"

    # -------------------------------------------------------------- names
    def x_Local(self, e: k.Local) -> k.Expr:
        c = self.consts.get(e.name)
        if c is not None:
            return c
        return self.unit.local(self.name(e.name), e.type)

    def x_Let(self, e: k.Let) -> k.Expr:
        loc = self.unit.local(self.name(e.name), e.value.type)
        return seq([k.SetLocal(name=loc.name, value=self.expr(e.value))], self.expr(e.body))

    def s_ForRange(self, s: k.ForRange) -> list[k.Stmt]:
        new = self.children(s)
        for attr in ("counter", "limit", "stride"):
            setattr(new, attr, self.name(getattr(s, attr)))
            self.unit.locals[getattr(new, attr)] = T.I64
        return [new]

    def stmt(self, s: k.Stmt) -> list[k.Stmt]:
        self.v.last_site = s.site
        return super().stmt(s)

    # -------------------------------------------------------------- returns
    def s_Return(self, s: k.Return) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        if s.value is not None:
            value = self.expr(s.value)
            if self.ret_local is not None:
                out.append(k.SetLocal(name=self.ret_local.name, value=value))
            else:
                out.append(k.ExprStmt(s.site, value))
        out.append(k.Exit(label=self.ret_label))
        return out

    def s_ReturnTuple(self, s: k.ReturnTuple) -> list[k.Stmt]:
        if self.ret_locals:
            out: list[k.Stmt] = [
                k.SetLocal(name=r.name, value=self.expr(v))
                for r, v in zip(self.ret_locals, s.values, strict=True)
            ]
        else:  # the caller drops the values (a call as a statement)
            out = [k.ExprStmt(s.site, self.expr(v)) for v in s.values]
        return [*out, k.Exit(label=self.ret_label)]

    # -------------------------------------------------------------- calls
    def x_Call(self, e: k.Call) -> k.Expr:
        args = [self.expr(a) for a in e.args]
        if e.conditional and outline(self.v, e.func):
            return call_outlined(self.v, self.unit, e.func, args)
        return inline_value(self.v, self.unit, e.func, args)

    def s_ExprStmt(self, s: k.ExprStmt) -> list[k.Stmt]:
        if isinstance(s.value, k.Call):
            call = s.value
            args = [self.expr(a) for a in call.args]
            if call.conditional and outline(self.v, call.func):
                value = call_outlined(self.v, self.unit, call.func, args)
                return [k.ExprStmt(s.site, value)] if call.func.returns is not None else _as_stmts(value)
            return inline_statement(self.v, self.unit, call.func, args)
        return [k.ExprStmt(s.site, self.expr(s.value))]

    def s_UnpackCall(self, s: k.UnpackCall) -> list[k.Stmt]:
        fn = s.call.func
        assert fn.tuple_returns is not None
        args = [self.expr(a) for a in s.call.args]
        prefix = self.v.fresh(f"_{fn.name}")
        rets = [self.unit.local(f"{prefix}__ret{i}", t) for i, t in enumerate(fn.tuple_returns)]
        frame, lines = _bind(self.v, self.unit, fn, args, prefix, ret_locals=rets)
        body = frame.stmts(fn.body)
        zeros = [k.SetLocal(name=r.name, value=zero(r.type)) for r in rets]
        unpack = [
            k.SetLocal(name=self.unit.local(self.name(t.name), t.type).name, value=r)
            for t, r in zip(s.targets, rets, strict=True)
        ]
        return [*lines, *zeros, k.Block(label=frame.ret_label, body=body), *unpack]


def _as_stmts(value: k.Expr | k.Stmt | list[k.Stmt]) -> list[k.Stmt]:
    if isinstance(value, list):
        return value
    if isinstance(value, k.Stmt):
        return [value]
    return [k.ExprStmt(k.NOSITE, value)]


def _bind(
    v: Variant,
    unit: Unit,
    fn: k.KFunction,
    args: list[k.Expr],
    prefix: str,
    ret_local: k.Local | None = None,
    ret_locals: list[k.Local] | None = None,
) -> tuple[_Frame, list[k.Stmt]]:
    """A frame for ``fn``'s body and the statements that pass it ``args``.

    A parameter the body never assigns, passed a constant, is that constant wherever the body
    reads it (``self._comb(3, x)``: ``self._store[c]`` becomes an element at a fixed address,
    with no index check, ``c + 8`` folds): the same values as a local holding it, and Cranelift
    folds neither an integer compare nor an f64 one of constants held in locals."""
    frame = _Frame(v, unit, prefix, v.fresh("_ret"), ret_local, ret_locals)
    lines: list[k.Stmt] = []
    assigned: set[str] | None = None
    for (pname, ptype), arg in zip(fn.params, args, strict=True):
        if type(arg) is k.Const and arg.type == ptype:
            if assigned is None:
                assigned = _assigned(fn.body)
            if pname not in assigned:
                frame.consts[pname] = arg
                continue
        loc = unit.local(frame.name(pname), ptype)
        lines.append(k.SetLocal(name=loc.name, value=arg))
    for lname, ltype in fn.locals.items():
        unit.local(frame.name(lname), ltype)
    return frame, lines


def _assigned(body: list[k.Stmt]) -> set[str]:
    """Names of the locals ``body`` may set (over-approximated: a called helper's count too)."""
    out: set[str] = set()
    for x in walk(body):
        t = type(x)
        if t is k.Assign and type(x.target) is k.Local:  # type: ignore[attr-defined]
            out.add(x.target.name)  # type: ignore[attr-defined]
        elif t is k.ForRange:
            out.add(x.var.name)  # type: ignore[attr-defined]
        elif t is k.UnpackCall:
            out.update(v.name for v in x.targets)  # type: ignore[attr-defined]
        elif t is k.SetLocal or t is k.Let:
            out.add(x.name)  # type: ignore[attr-defined]
    return out


def inline_statement(v: Variant, unit: Unit, fn: k.KFunction, args: list[k.Expr]) -> list[k.Stmt]:
    """A call whose value is not used (process, a handler, a helper called as a statement)."""
    prefix = v.fresh(f"_{fn.name}")
    ret = unit.local(f"{prefix}__ret", fn.returns) if fn.returns is not None else None
    frame, lines = _bind(v, unit, fn, args, prefix, ret_local=ret)
    return [*lines, k.Block(label=frame.ret_label, body=frame.stmts(fn.body))]


def inline_value(v: Variant, unit: Unit, fn: k.KFunction, args: list[k.Expr]) -> k.Expr:
    assert fn.returns is not None
    prefix = v.fresh(f"_{fn.name}")
    ret = unit.local(f"{prefix}__ret", fn.returns)
    frame, lines = _bind(v, unit, fn, args, prefix, ret_local=ret)
    body = frame.stmts(fn.body)
    # Falling off the end returns None in Python; a value-returning helper must return.
    return seq(
        [
            *lines,
            k.SetLocal(name=ret.name, value=zero(fn.returns)),
            k.Block(label=frame.ret_label, body=body),
        ],
        ret,
    )


def outline(v: Variant, fn: k.KFunction) -> bool:
    """Whether a conditional call of ``fn`` becomes a call of a function of the variant (see the
    module docstring). Helpers called unconditionally run every sample: always inlined."""
    if fn.tuple_returns is not None:
        return False  # its values come back through the caller's locals: always inlined
    size, inputs, emits = _measure(fn)
    # Connected inputs live in the caller's locals and emitting needs the sample index.
    return size > OUTLINE_SIZE and not emits and not (inputs & v.connected)


def call_outlined(v: Variant, unit: Unit, fn: k.KFunction, args: list[k.Expr]) -> k.Expr | list[k.Stmt]:
    """The call of ``fn`` as a function of the variant (defined the first time): an expression
    when it returns a value, else statements."""
    key = (fn.name, tuple(t for _, t in fn.params))
    name = v.outlined.get(key)
    if name is None:
        name = v.fresh(f"_fn_{fn.name}")
        v.outlined[key] = name
        v.functions.append(outlined_function(v, name, fn))
    nb = k.Local(T.I32, "nb")
    sync = v.state_in_locals and not unit.in_function
    if fn.returns is None:
        call: list[k.Stmt] = [k.Invoke(func=name, args=[nb, *args])]
        if sync:  # the function works on the node's state in memory
            return [k.SyncState(direction="flush"), *call, k.SyncState(direction="reload")]
        return call
    value = k.CallFn(fn.returns, name, [nb, *args])
    if not sync:
        return value
    tmp = unit.local(v.fresh("_outret"), fn.returns)
    return seq(
        [
            k.SyncState(direction="flush"),
            k.SetLocal(name=tmp.name, value=value),
            k.SyncState(direction="reload"),
        ],
        tmp,
    )


def outlined_function(v: Variant, name: str, fn: k.KFunction) -> k.Function:
    """``fn`` as a module function ``name(nb, params...)``, at the high level still: the driver
    runs the other passes on it (with ``Unit.in_function``: state in memory, math called)."""
    unit = Unit(in_function=True)
    ret = unit.local("f__ret", fn.returns) if fn.returns is not None else None
    frame = _Frame(v, unit, "f", "f_ret", ret_local=ret)
    for lname, ltype in fn.locals.items():
        unit.local(f"f_{lname}", ltype)
    body: list[k.Stmt] = [k.Block(label="f_ret", body=frame.stmts(fn.body))]
    if ret is not None:
        body.append(k.ReturnValues(values=[ret]))
    params = [("nb", T.I32), *((f"f_{p}", t) for p, t in fn.params)]
    for p, _ in params:
        unit.locals.pop(p, None)
    results = (fn.returns,) if fn.returns is not None else ()
    assert v.lower_function is not None
    return v.lower_function(v, unit, k.Function(name, params, results, unit.locals, body))


# ------------------------------------------------------------------ primitive functions
class _Expand(Rewriter):
    """One expansion of a primitive function: fresh names for its locals and labels, its
    ``ReturnValues`` writes of the result locals and an exit; calls of functions in ``fns``
    inside it expanded too."""

    def __init__(
        self,
        fns: Mapping[str, k.Function],
        unit: Unit,
        prefix: str,
        label: str,
        rets: list[str],
        called: set[str] | None,
    ):
        self.fns = fns
        self.called = called
        self.unit = unit
        self.prefix = prefix
        self.label = label
        self.rets = rets
        self.calls = 0

    def n(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def x_Local(self, e: k.Local) -> k.Expr:
        return k.Local(e.type, self.n(e.name))

    def s_SetLocal(self, s: k.SetLocal) -> list[k.Stmt]:
        return [k.SetLocal(name=self.n(s.name), value=self.expr(s.value))]

    def x_Let(self, e: k.Let) -> k.Expr:
        self.unit.locals[self.n(e.name)] = e.value.type
        return k.Let(e.type, self.n(e.name), self.expr(e.value), self.expr(e.body))

    def x_CallFn(self, e: k.CallFn) -> k.Expr:
        args = [self.expr(a) for a in e.args]
        if e.func in self.fns:
            self.calls += 1
            return expand(self.fns, e.func, args, self.unit, f"{self.prefix}c{self.calls}", self.called)
        if self.called is not None:
            self.called.add(e.func)
        return k.CallFn(e.type, e.func, args)

    def s_Invoke(self, s: k.Invoke) -> list[k.Stmt]:
        args = [self.expr(a) for a in s.args]
        targets = [self.n(t) for t in s.targets]
        if s.func in self.fns:
            self.calls += 1
            return expand_invoke(
                self.fns, s.func, args, targets, self.unit, f"{self.prefix}c{self.calls}", self.called
            )
        if self.called is not None:
            self.called.add(s.func)
        return [k.Invoke(site=s.site, func=s.func, args=args, targets=targets, results=s.results)]

    def s_Block(self, s: k.Block) -> list[k.Stmt]:
        return [k.Block(label=self.n(s.label), body=self.stmts(s.body))]

    def s_Loop(self, s: k.Loop) -> list[k.Stmt]:
        cond = self.expr(s.cond) if s.cond is not None else None
        return [k.Loop(label=self.n(s.label), cond=cond, body=self.stmts(s.body))]

    def s_Exit(self, s: k.Exit) -> list[k.Stmt]:
        cond = self.expr(s.cond) if s.cond is not None else None
        return [k.Exit(label=self.n(s.label), cond=cond)]

    def s_Next(self, s: k.Next) -> list[k.Stmt]:
        return [k.Next(label=self.n(s.label))]

    def s_ReturnValues(self, s: k.ReturnValues) -> list[k.Stmt]:
        values = [self.expr(v) for v in s.values]
        if len(values) > 1:  # all evaluated before any is written (a value may read another's local)
            temps = []
            out: list[k.Stmt] = []
            for j, v in enumerate(values):
                t = f"{self.label}_v{j}"
                self.unit.locals[t] = v.type
                out.append(k.SetLocal(name=t, value=v))
                temps.append(k.Local(v.type, t))
            values = temps
        else:
            out = []
        out += [k.SetLocal(name=r, value=v) for r, v in zip(self.rets, values, strict=True)]
        return [*out, k.Exit(label=self.label)]


def _expansion(
    fns: Mapping[str, k.Function],
    name: str,
    args: list[k.Expr],
    rets: list[str],
    unit: Unit,
    prefix: str,
    called: set[str] | None = None,
) -> list[k.Stmt]:
    fn = fns[name]
    pre = f"{prefix}_{name}_"
    lines: list[k.Stmt] = []
    for (p, t), a in zip(fn.params, args, strict=True):
        unit.locals[pre + p] = t
        lines.append(k.SetLocal(name=pre + p, value=a))
    for loc, t in fn.locals.items():  # locals start at zero in a function; keep that inside a loop
        unit.locals[pre + loc] = t
        lines.append(k.SetLocal(name=pre + loc, value=zero(t)))
    # the exit label and the result locals are named outside ``pre``, the callee's namespace
    label = f"{prefix}x_{name}"
    rw = _Expand(fns, unit, pre, label, rets, called)
    return [*lines, k.Block(label=label, body=rw.stmts(fn.body))]


def expand(
    fns: Mapping[str, k.Function],
    name: str,
    args: list[k.Expr],
    unit: Unit,
    prefix: str,
    called: set[str] | None = None,
) -> k.Expr:
    """``name(args...)`` expanded in place (a ``Seq`` yielding its one result); calls inside it of
    functions in ``fns`` are expanded too, the others noted in ``called``. ``prefix``: unique in
    the unit (a fresh name); the callee's locals and labels are renamed ``<prefix>_<name>_...``."""
    (rtype,) = fns[name].results
    ret = unit.local(f"{prefix}r_{name}", rtype)
    return seq(_expansion(fns, name, args, [ret.name], unit, prefix, called), ret)


def expand_invoke(
    fns: Mapping[str, k.Function],
    name: str,
    args: list[k.Expr],
    targets: list[str],
    unit: Unit,
    prefix: str,
    called: set[str] | None = None,
) -> list[k.Stmt]:
    """An ``Invoke`` of ``name`` expanded in place: its results into ``targets`` (none: dropped)."""
    results = fns[name].results
    if not targets:
        targets = [unit.local(f"{prefix}r{j}_{name}", t).name for j, t in enumerate(results)]
    return _expansion(fns, name, args, targets, unit, prefix, called)


INLINE_LIMIT = 310
"""Primitive IR nodes above which a function's expansion (its inlinable callees expanded too)
stays a call: inlining a rarely-run slow path (sin's reduction of huge arguments) everywhere
would multiply code size and compile time. (310 nodes keeps the split of the text-level
inliner's 6000 characters of WAT: sin and cos expanded, tan, log10 and the reductions called.)"""


class Outlining:
    """Which functions of ``table`` stay calls: those whose full expansion exceeds INLINE_LIMIT
    nodes, decided bottom-up (a function is measured with its already-outlined callees left as
    calls) and per function when first asked. A function's answer depends only on its callees',
    so asking for one measures it and what it calls, not the whole table: the math library has
    40 functions, measured all at once 0.1 s in each new process (at its first compile), and a
    patch calls a few of them."""

    def __init__(self, table: dict[str, k.Function]) -> None:
        self.table = table
        self._sizes: dict[str, int] = {}
        self._out: set[str] = set()
        self._lock = threading.Lock()

    def large(self, name: str) -> bool:
        """Whether ``name`` (a function of the table) stays a call."""
        with self._lock:
            self._size(name)
            return name in self._out

    def _size(self, name: str, stack: tuple[str, ...] = ()) -> int:
        got = self._sizes.get(name)
        if got is not None:
            return got
        table = self.table
        fn = table[name]
        for x in walk(fn.body):
            if isinstance(x, (k.CallFn, k.Invoke)) and x.func in table and x.func not in stack:
                self._size(x.func, (*stack, name))
        inlinable = {n: f for n, f in table.items() if n not in self._out and n not in stack}
        args: list[k.Expr] = [k.Local(t, "x") for _, t in fn.params]
        rets = [f"r{j}" for j in range(len(fn.results))]
        size = self._sizes[name] = sum(
            1 for _ in walk(_expansion(inlinable, name, args, rets, Unit(False), "m"))
        )
        if size > INLINE_LIMIT:
            self._out.add(name)
        return size


def outlined(table: dict[str, k.Function]) -> set[str]:
    """The functions of ``table`` whose full expansion exceeds INLINE_LIMIT nodes (see
    :class:`Outlining`), all of them decided."""
    decide = Outlining(table)
    return {name for name in table if decide.large(name)}


class SmallMath(Mapping[str, k.Function]):
    """The math library's functions small enough to expand in per-sample code, as a mapping from
    wasm name to function: each decided when first looked up (:class:`Outlining`)."""

    def __init__(self, table: dict[str, k.Function]) -> None:
        self._table = table
        self._outlining = Outlining(table)

    def __contains__(self, name: object) -> bool:
        return name in self._table and not self._outlining.large(name)  # type: ignore[arg-type]

    def __getitem__(self, name: str) -> k.Function:
        if name not in self:
            raise KeyError(name)
        return self._table[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._table if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def unit_calls_math(v: Variant, unit: Unit) -> bool:
    """Whether math calls in ``unit`` stay calls (outlined helpers, or math not inlined)."""
    return unit.in_function or not v.inline_math


def math_call(v: Variant, unit: Unit, call: k.CallFn) -> k.Expr:
    """A call of the math library as per-sample code has it: expanded in place when the function
    is small (the call and its argument shuffling cost as much as sin's polynomial), else a call
    (noted in ``Variant.math_called``: what the module imports). Outlined helpers, and graphs
    too large to inline math (``Variant.inline_math``), call: one copy serves every node."""
    if not unit_calls_math(v, unit):
        small, _ = small_math()
        if call.func in small:
            return expand(small, call.func, call.args, unit, v.fresh("_m"), v.math_called)
    v.math_called.add(call.func)
    return call


_LIBRARY: tuple[SmallMath, frozenset[str]] | None = None
_LIBRARY_LOCK = threading.Lock()


def small_math() -> tuple[SmallMath, frozenset[str]]:
    """The math library's functions small enough to expand in per-sample code (see
    :data:`INLINE_LIMIT`; each decided once, when first asked: the library is fixed), and the
    names of all of them."""
    global _LIBRARY
    with _LIBRARY_LOCK:
        if _LIBRARY is None:
            from ..mathlib import BY_WASM

            table = {name: mf.function for name, mf in BY_WASM.items()}
            _LIBRARY = (SmallMath(table), frozenset(table))
        return _LIBRARY
