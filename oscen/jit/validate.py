"""The kernel IR validator: what every pass may assume and every backend relies on.

``validate(x, level=...)`` checks a :class:`~.kernel.Module`, a :class:`~.kernel.Function`, a
:class:`~.kernel.Code` or a frontend :class:`~.kernel.KFunction`:

* **types**: each ``Prim``'s arguments against its op's signature (:func:`.ops.accepts`: a BOOL
  may stand for an I32) and its ``type`` equal to the op's result; the values of ``SetLocal``,
  ``Store``, ``Assign``; ``If``/``Loop``/``Exit`` conditions BOOL; both sides of ``Choose`` and
  ``Select`` of the node's type; calls against the callee's parameters and results;
* **names**: locals and parameters declared once with one type, every ``Local`` read declared with
  that type, and never read when nothing ever assigns it (WebAssembly would give 0: in our code
  that is a pass that forgot an assignment);
* **labels**: ``Exit`` inside its ``Block`` or ``Loop``, ``Next`` inside its ``Loop``, ``break``
  and ``continue`` inside a loop;
* **traps**: every ``Trap`` of node code (a ``Code``, a ``KFunction``) has a ``TrapSite`` with a
  source site, listed in its ``Code.sites``; codes known to :mod:`.traps`;
* **level**: ``level="primitive"`` refuses the high-level nodes (``Binary``, ``Attr``, ``Input``,
  ``MathCall``, ``Call``...) that only the passes may see.

Errors raise :class:`KernelIRError` naming the function, the path to the node and its site.

Tests validate every kernel they build: with ``OSCEN_VALIDATE_IR=1`` (tests/conftest.py sets it)
:data:`ENABLED` is true and the compiler calls :func:`check_program` (the frontend's functions, the module);
off, the check is one boolean test per compile.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from . import kernel as k
from . import traps
from .kernel import T
from .ops import Op, accepts

ENV = "OSCEN_VALIDATE_IR"
ENABLED = os.environ.get(ENV, "") not in ("", "0")
"""Whether compiles validate the IR they make (read once, at import: set the variable before)."""

HIGH_EXPRS: tuple[type, ...] = (
    k.Attr,
    k.Input,
    k.ArrayLoad,
    k.ConstTable,
    k.Unary,
    k.Binary,
    k.Compare,
    k.Convert,
    k.MathCall,
    k.Call,
)
HIGH_STMTS: tuple[type, ...] = (
    k.Assign,
    k.ArrayStore,
    k.While,
    k.ForRange,
    k.Break,
    k.Continue,
    k.Return,
    k.ReturnTuple,
    k.UnpackCall,
    k.Emit,
    k.Raise,
)
LEVELS = ("high", "primitive")
_INT_RANGE = {T.I64: (-(2**63), 2**63 - 1), T.I32: (-(2**31), 2**32 - 1), T.BOOL: (0, 1)}
_MEMORY_TYPES = (T.F64, T.I64, T.I32, T.BOOL, T.V128)


class KernelIRError(Exception):
    """Kernel IR that breaks the contract: a bug in the pass or builder that made it.

    ``problems`` lists every one found, each ``(function, path, site, message)``; the message shows
    the first few."""

    def __init__(self, problems: list[tuple[str, str, str, str]]) -> None:
        self.problems = problems
        shown = [f"{fn}: {path}: {msg} (at {site})" for fn, path, site, msg in problems[:8]]
        more = f"\n  ... and {len(problems) - 8} more" if len(problems) > 8 else ""
        super().__init__("invalid kernel IR:\n  " + "\n  ".join(shown) + more)

    @property
    def function(self) -> str:
        return self.problems[0][0]

    @property
    def path(self) -> str:
        return self.problems[0][1]

    @property
    def site(self) -> str:
        return self.problems[0][2]


def _known_math_errors() -> set[int]:
    from . import wasm_math

    return set(wasm_math.ERROR_MESSAGES)


@dataclass
class _Callee:
    params: tuple[T, ...]
    results: tuple[T, ...]


@dataclass
class _Scope:
    """What one function body may name: its locals and parameters (with ``renames`` applied
    while inside an :class:`~.kernel.Instance`), the function's results, the labels around."""

    name: str
    locals: dict[str, T]
    params: set[str]
    results: tuple[T, ...] | None
    node_code: bool
    renames: list[dict[str, str]] = field(default_factory=list)  # innermost Instance's first
    labels: list[tuple[str, str]] = field(default_factory=list)  # (label, "block" | "loop")
    loops: int = 0  # high-level While/ForRange nesting (break/continue)
    assigned: set[str] = field(default_factory=set)
    reads: dict[str, tuple[str, str]] = field(default_factory=dict)  # first read: path, site
    code: k.Code | None = None
    instance: k.Instance | None = None
    kreturns: T | None = None
    ktuple: tuple[T, ...] | None = None


class Validator:
    """Walks IR, noting every problem (``problems``); :func:`validate` raises them."""

    def __init__(self, level: str = "high", module: k.Module | None = None) -> None:
        if level not in LEVELS:
            raise ValueError(f"validate: level must be one of {LEVELS}, got {level!r}")
        self.level = level
        self.primitive = level == "primitive"
        self.problems: list[tuple[str, str, str, str]] = []
        self.callees: dict[str, _Callee] = {}
        self.globals: dict[str, k.Global] = {}
        self.path: list[str] = []
        self.site: k.Site | None = None
        self.scope: _Scope | None = None
        self._codes_seen: set[int] = set()
        self._kfunctions_seen: set[int] = set()
        self.math_errors = _known_math_errors()
        if module is not None:
            self.use_module(module)

    # ------------------------------------------------------------------ reporting
    def problem(self, message: str) -> None:
        fn = self.scope.name if self.scope else "<module>"
        where = str(self.site) if self.site is not None else "?"
        self.problems.append((fn, ".".join(self.path) or "<top>", where, message))

    @contextmanager
    def at(self, step: str, site: k.Site | None = None) -> Iterator[None]:
        self.path.append(step)
        outer = self.site
        if site is not None:
            self.site = site
        try:
            yield
        finally:
            self.path.pop()
            self.site = outer

    # ------------------------------------------------------------------ containers
    def use_module(self, module: k.Module) -> None:
        names: set[str] = set()
        for imp in module.imports:
            if imp.name in names:
                self.problem(f"function {imp.name!r} defined twice (import)")
            names.add(imp.name)
            self.callees[imp.name] = _Callee(tuple(imp.params), tuple(imp.results))
        for f in module.functions:
            if f.name in names:
                self.problem(f"function {f.name!r} defined twice")
            names.add(f.name)
            self.callees[f.name] = _Callee(tuple(t for _, t in f.params), tuple(f.results))
        for g in module.globals:
            if g.name in self.globals:
                self.problem(f"global {g.name!r} defined twice")
            self.globals[g.name] = g
            if g.type == T.V128 and (g.export or not g.mutable):  # JS cannot read one; init is 0
                self.problem(f"global {g.name!r}: a v128 global is a mutable one the module keeps")
            if g.type == T.V128 and not isinstance(g.init, (bytes, bytearray)):
                self.problem(f"global {g.name!r}: a v128 global starts from 16 bytes")
                continue
            self.const_value(g.type, g.init, f"global {g.name!r}")
        exports = [f.export for f in module.functions if f.export] + [
            g.export for g in module.globals if g.export
        ]
        for e in {e for e in exports if exports.count(e) > 1}:
            self.problem(f"export {e!r} named twice")

    def module(self, module: k.Module) -> None:
        self.use_module(module)
        for f in module.functions:
            self.function(f)

    def function(self, f: k.Function) -> None:
        declared = self.declarations(f.name, f.params, f.locals)
        scope = _Scope(f.name, declared, {n for n, _ in f.params}, tuple(f.results), node_code=False)
        self.run_body(scope, f.body, f"{f.name}.body")

    def code(self, code: k.Code, extra_locals: dict[str, T] | None = None) -> None:
        """A node variant's Code on its own: its locals, plus the skeleton's (``extra_locals``:
        ``nb`` and whatever else the skeleton declares for node code)."""
        declared = dict(extra_locals or {})
        declared.update(code.locals)
        scope = _Scope("<code>", declared, set(declared) - set(code.locals), None, node_code=True, code=code)
        self.run_body(scope, code.body, "code.body")

    def kfunction(self, fn: k.KFunction) -> None:
        """A frontend function (high level) and the helpers it calls."""
        if id(fn) in self._kfunctions_seen:
            return
        self._kfunctions_seen.add(id(fn))
        declared = self.declarations(fn.qualname, fn.params, fn.locals)
        scope = _Scope(
            fn.qualname,
            declared,
            {n for n, _ in fn.params},
            None,
            node_code=True,
            kreturns=fn.returns,
            ktuple=fn.tuple_returns,
        )
        self.site = fn.site
        self.run_body(scope, fn.body, f"{fn.name}.body")
        for callee in fn.calls:
            self.kfunction(callee)

    def declarations(self, name: str, params: Iterable[tuple[str, T]], local: dict[str, T]) -> dict[str, T]:
        declared: dict[str, T] = {}
        outer = self.scope
        self.scope = _Scope(name, {}, set(), None, node_code=False)
        try:
            for pname, ptype in params:
                if pname in declared:
                    self.problem(f"parameter {pname!r} declared twice")
                if not isinstance(ptype, T):
                    self.problem(f"parameter {pname!r} has no kernel type ({ptype!r})")
                declared[pname] = ptype
            for lname, ltype in local.items():
                if lname in declared and declared[lname] != ltype:
                    self.problem(
                        f"local {lname!r} declared {ltype.value} but it is a parameter of type "
                        f"{declared[lname].value}"
                    )
                if not isinstance(ltype, T):
                    self.problem(f"local {lname!r} has no kernel type ({ltype!r})")
                declared.setdefault(lname, ltype)
        finally:
            self.scope = outer
        return declared

    def run_body(self, scope: _Scope, body: list[k.Stmt], where: str) -> None:
        outer, self.scope = self.scope, scope
        try:
            with self.at(where):
                self.stmts(body)
            for name, (path, site) in scope.reads.items():
                if name not in scope.assigned and name not in scope.params:
                    self.problems.append(
                        (scope.name, path, site, f"local {name!r} is read but never assigned")
                    )
        finally:
            self.scope = outer

    # ------------------------------------------------------------------ names
    def local_type(self, name: str, write: bool) -> T | None:
        scope = self.scope
        assert scope is not None
        real = name
        for renames in scope.renames:
            real = renames.get(real, real)
        t = scope.locals.get(real)
        if t is None:
            shown = real if real == name else f"{name} (renamed {real})"
            self.problem(f"local {shown!r} is not declared")
            return None
        if write:
            scope.assigned.add(real)
        elif real not in scope.reads:
            scope.reads[real] = (".".join(self.path), str(self.site) if self.site else "?")
        return t

    def const_value(self, t: T, value: Any, what: str = "constant") -> None:
        if t == T.V128:
            if not isinstance(value, bytes) or len(value) != 16:
                self.problem(f"{what} of type v128 holds {value!r:.80}, expected 16 bytes")
            return
        if t == T.F64:
            if not isinstance(value, (int, float)):
                self.problem(f"{what} of type f64 holds {value!r}")
            return
        if t not in _INT_RANGE:
            self.problem(f"{what} has no kernel type ({t!r})")
            return
        if isinstance(value, float) or not isinstance(value, int):
            self.problem(f"{what} of type {t.value} holds {value!r}")
            return
        lo, hi = _INT_RANGE[t]
        if not lo <= value <= hi:
            self.problem(f"{what} {value} is out of range for {t.value}")

    def expect(self, want: T, got: T | None, what: str) -> None:
        if got is not None and not accepts(want, got):
            self.problem(f"{what} is {got.value}, expected {want.value}")

    def expect_bool(self, e: k.Expr | None, what: str) -> None:
        if e is not None:
            t = self.expr(e, what)
            if t is not None and t != T.BOOL:
                self.problem(f"{what} is {t.value}, expected bool")

    # ------------------------------------------------------------------ statements
    def stmts(self, body: list[k.Stmt]) -> None:
        if not isinstance(body, list):
            self.problem(f"a statement list is a {type(body).__name__}")
            return
        for i, s in enumerate(body):
            with self.at(f"[{i}]{type(s).__name__}", getattr(s, "site", None)):
                self.stmt(s)

    def stmt(self, s: k.Stmt) -> None:  # noqa: C901 - one dispatch over the statement kinds
        scope = self.scope
        assert scope is not None
        primitive_assign = isinstance(s, k.Assign) and isinstance(s.target, k.Local)  # the printer's
        if self.primitive and isinstance(s, HIGH_STMTS) and not primitive_assign:
            self.problem(f"high-level statement {type(s).__name__} in primitive-level IR")
        if isinstance(s, k.SetLocal):
            t = self.local_type(s.name, write=True)
            got = self.expr(s.value, "value")
            if t is not None:
                self.expect(t, got, f"value assigned to {s.name!r}")
        elif isinstance(s, k.Store):
            if s.type not in _MEMORY_TYPES:
                self.problem(f"store of type {s.type!r}")
            self.address(s.addr, s.offset)
            self.expect(s.type, self.expr(s.value, "value"), "stored value")
        elif isinstance(s, k.SetGlobal):
            g = self.globals.get(s.name)
            got = self.expr(s.value, "value")
            if g is None:
                self.problem(f"global {s.name!r} is not defined")
            else:
                if not g.mutable:
                    self.problem(f"global {s.name!r} is immutable")
                self.expect(g.type, got, f"value assigned to global {s.name!r}")
        elif isinstance(s, k.If):
            self.expect_bool(s.cond, "cond")
            with self.at("body"):
                self.stmts(s.body)
            with self.at("orelse"):
                self.stmts(s.orelse)
        elif isinstance(s, k.Loop):
            self.expect_bool(s.cond, "cond")
            scope.labels.append((s.label, "loop"))
            with self.at("body"):
                self.stmts(s.body)
            scope.labels.pop()
        elif isinstance(s, k.Block):
            scope.labels.append((s.label, "block"))
            with self.at("body"):
                self.stmts(s.body)
            scope.labels.pop()
        elif isinstance(s, k.Exit):
            if not any(label == s.label for label, _ in scope.labels):
                self.problem(f"Exit({s.label!r}) is not inside a Block or Loop of that label")
            self.expect_bool(s.cond, "cond")
        elif isinstance(s, k.Next):
            if not any(label == s.label and kind == "loop" for label, kind in scope.labels):
                self.problem(f"Next({s.label!r}) is not inside a Loop of that label")
        elif isinstance(s, k.Invoke):
            callee = self.call(s.func, s.args)
            if callee is not None and tuple(s.results) != callee.results:
                shown = tuple(t.value for t in s.results)
                self.problem(
                    f"Invoke of {s.func} says it returns {shown}, it returns {_types(callee.results)}"
                )
            if callee is not None and s.targets:
                if len(s.targets) != len(callee.results):
                    self.problem(
                        f"{s.func} returns {len(callee.results)} values into {len(s.targets)} targets"
                    )
                for name, rt in zip(s.targets, callee.results, strict=False):
                    t = self.local_type(name, write=True)
                    if t is not None:
                        self.expect(t, rt, f"result of {s.func} stored in {name!r}")
        elif isinstance(s, k.ReturnValues):
            values = [self.expr(v, f"values[{i}]") for i, v in enumerate(s.values)]
            if scope.results is None:
                self.problem("ReturnValues outside a module function")
            elif len(values) != len(scope.results):
                self.problem(f"returns {len(values)} values, the function has {len(scope.results)} results")
            else:
                for i, (want, got) in enumerate(zip(scope.results, values, strict=True)):
                    self.expect(want, got, f"result {i}")
        elif isinstance(s, k.Trap):
            self.trap(s)
        elif isinstance(s, k.ExprStmt):
            self.expr(s.value, "value")
        elif isinstance(s, k.SyncState):
            if s.direction not in ("flush", "reload"):
                self.problem(f"SyncState direction {s.direction!r}")
            if scope.code is None:
                self.problem("SyncState outside a Code")
        elif isinstance(s, k.Instance):
            self.instance(s)
        elif isinstance(s, k.Unreachable):
            pass
        elif isinstance(s, k.MemCopy):
            for part in ("dst", "src", "nbytes"):
                self.expect(T.I32, self.expr(getattr(s, part), part), f"memory.copy's {part}")
        # ---- high level
        elif isinstance(s, k.Assign):
            got = self.expr(s.value, "value")
            if isinstance(s.target, k.Local):
                t = self.local_type(s.target.name, write=True)
                if t is not None and s.target.type != t:
                    self.problem(f"target {s.target.name!r} typed {s.target.type.value}, declared {t.value}")
            elif isinstance(s.target, k.Attr):
                t = s.target.type
            else:
                self.problem(f"assignment to a {type(s.target).__name__}")
                return
            if t is not None:
                self.expect(t, got, f"value assigned to {getattr(s.target, 'name', '?')!r}")
        elif isinstance(s, k.ArrayStore):
            self.expect(T.I64, self.expr(s.index, "index"), "array index")
            self.expr(s.value, "value")
        elif isinstance(s, k.While):
            self.expect_bool(s.cond, "cond")
            scope.loops += 1
            with self.at("body"):
                self.stmts(s.body)
            scope.loops -= 1
        elif isinstance(s, k.ForRange):
            for part in ("start", "stop", "step"):
                self.expect(T.I64, self.expr(getattr(s, part), part), f"range {part}")
            if s.var.type != T.I64:
                self.problem(f"loop variable {s.var.name!r} is {s.var.type.value}")
            self.local_type(s.var.name, write=True)
            scope.loops += 1
            with self.at("body"):
                self.stmts(s.body)
            scope.loops -= 1
        elif isinstance(s, (k.Break, k.Continue)):
            if scope.loops == 0:
                self.problem(f"{type(s).__name__.lower()} outside a loop")
        elif isinstance(s, k.Return):
            got = self.expr(s.value, "value") if s.value is not None else None
            if scope.kreturns is None and s.value is not None and scope.ktuple is None:
                self.problem("returns a value from a function that returns None")
            elif scope.kreturns is not None and got is not None:
                self.expect(scope.kreturns, got, "returned value")
        elif isinstance(s, k.ReturnTuple):
            got_types = [self.expr(v, f"values[{i}]") for i, v in enumerate(s.values)]
            if scope.ktuple is None or len(scope.ktuple) != len(got_types):
                self.problem(f"returns {len(got_types)} values, the function's tuple is {scope.ktuple}")
            else:
                for i, (want, got) in enumerate(zip(scope.ktuple, got_types, strict=True)):
                    self.expect(want, got, f"value {i}")
        elif isinstance(s, k.UnpackCall):
            with self.at("call"):
                self.expr(s.call, "call")
            returned = s.call.func.tuple_returns
            if returned is None or len(returned) != len(s.targets):
                self.problem(f"unpacks {len(s.targets)} values from a call returning {returned}")
            for tgt in s.targets:
                self.local_type(tgt.name, write=True)
        elif isinstance(s, k.Emit):
            for i, a in enumerate(s.args):
                self.expect(T.F64, self.expr(a, f"args[{i}]"), "event field")
        elif isinstance(s, k.Raise):
            pass
        else:
            self.problem(f"unknown statement {type(s).__name__}")

    def instance(self, s: k.Instance) -> None:
        scope = self.scope
        assert scope is not None
        code = s.code
        if id(code) not in self._codes_seen:  # the code's own trap-site list, once per Code
            self._codes_seen.add(id(code))
            listed = {id(ts) for ts in code.sites}
            for trap in _traps(code.body):
                if trap.where is not None and id(trap.where) not in listed:
                    self.problem(f"a Trap's site ({trap.where.site}) is missing from its Code's sites")
        chain = [s.renames, *scope.renames]  # the printer renames pasted text again, outwards
        for name, t in code.locals.items():
            real = name
            for renames in chain:
                real = renames.get(real, real)
            have = scope.locals.get(real)
            if have is None:
                self.problem(f"the instance's local {real!r} (code's {name!r}) is not declared")
            elif have != t:
                self.problem(f"the instance's local {real!r} is {have.value}, the code's {name!r} {t.value}")
        inner = _Scope(
            scope.name,
            scope.locals,
            scope.params,
            scope.results,
            node_code=True,
            renames=chain,
            labels=[],  # node code cannot leave the skeleton's blocks
            assigned=scope.assigned,
            reads=scope.reads,
            code=code,
            instance=s,
        )
        outer, self.scope = self.scope, inner
        try:
            with self.at("code"):
                self.stmts(code.body)
            with self.at("flush"):  # pasted into the code's text: renamed with it
                self.stmts(s.flush)
            with self.at("reload"):
                self.stmts(s.reload)
        finally:
            self.scope = outer

    def trap(self, s: k.Trap) -> None:
        scope = self.scope
        assert scope is not None
        if s.code != traps.MATH and s.code not in traps.TRAP_MESSAGES:
            self.problem(f"trap code {s.code} is not one of traps.py's")
        if s.math_error and s.math_error not in self.math_errors:
            self.problem(f"math error code {s.math_error} is unknown")
        if scope.node_code and not s.math_error:  # inlined math traps: the caller noted the site
            if s.where is None:
                self.problem("a Trap in node code without a TrapSite")
            elif s.where.site is None:
                self.problem("a Trap in node code whose TrapSite has no source site")
            if s.node is None:
                self.problem("a Trap in node code that does not name its node (node: the base nb)")
        if s.node is not None:
            self.expect(T.I32, self.expr(s.node, "node"), "a Trap's node")
        if s.via:
            callee = self.callees.get(s.via)
            if callee is None:
                self.problem(f"Trap via {s.via!r}, which is not a function of the module")
            elif callee.params != (T.I32, T.I32, T.I32) or callee.results:
                self.problem(f"Trap via {s.via}, which does not take (site, code, node: i32) -> ()")
        if s.where is not None and not isinstance(s.where, k.TrapSite):
            self.problem(f"Trap.where is a {type(s.where).__name__}, not a TrapSite")

    def address(self, addr: k.Expr, offset: int) -> None:
        self.expect(T.I32, self.expr(addr, "addr"), "address")
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 2**32:
            self.problem(f"memory offset {offset!r} is not an unsigned 32-bit int")

    def call(self, func: str, args: list[k.Expr]) -> _Callee | None:
        got = [self.expr(a, f"args[{i}]") for i, a in enumerate(args)]
        callee = self.callees.get(func)
        if callee is None:
            self.problem(f"call of {func!r}, which is neither a function nor an import of the module")
            return None
        if len(got) != len(callee.params):
            self.problem(f"{func} takes {len(callee.params)} arguments, called with {len(got)}")
            return callee
        for i, (want, have) in enumerate(zip(callee.params, got, strict=True)):
            self.expect(want, have, f"argument {i} of {func}")
        return callee

    # ------------------------------------------------------------------ expressions
    def expr(self, e: k.Expr, step: str) -> T | None:
        """Check ``e``; returns its type (None when it is too broken to have one). The hot path:
        the path and site are kept by hand rather than by :meth:`at`."""
        path = self.path
        path.append(step)
        outer = self.site
        site = getattr(e, "site", None)
        if site is not None and isinstance(site, k.Site):
            self.site = site
        try:
            if not isinstance(e, k.Expr):
                self.problem(f"expected an expression, got {type(e).__name__}")
                return None
            if not isinstance(e.type, T):
                self.problem(f"{type(e).__name__} has no kernel type ({e.type!r})")
                return None
            if self.primitive and isinstance(e, HIGH_EXPRS):
                self.problem(f"high-level expression {type(e).__name__} in primitive-level IR")
            self.expr_inner(e)
            return e.type
        finally:
            path.pop()
            self.site = outer

    def expr_inner(self, e: k.Expr) -> None:  # noqa: C901 - one dispatch over the expression kinds
        if isinstance(e, k.Const):
            self.const_value(e.type, e.value)
        elif isinstance(e, k.Local):
            t = self.local_type(e.name, write=False)
            if t is not None and t != e.type:
                self.problem(f"local {e.name!r} read as {e.type.value}, declared {t.value}")
        elif isinstance(e, k.Prim):
            op = e.op
            if not isinstance(op, Op):
                self.problem(f"Prim op {op!r} is not an ops.Op")
                return
            self.path[-1] += f"<{op.name}>"
            if len(e.args) != op.arity:
                self.problem(f"{op.name} takes {op.arity} arguments, has {len(e.args)}")
            for i, (want, a) in enumerate(zip(op.args, e.args, strict=False)):
                self.expect(want, self.expr(a, f"args[{i}]"), f"argument {i} of {op.name}")
            if e.type != op.result:
                self.problem(f"{op.name} gives {op.result.value}, the node says {e.type.value}")
        elif isinstance(e, k.Choose):
            self.expect_bool(e.cond, "cond")
            self.expect(e.type, self.expr(e.a, "a"), "Choose's a")
            self.expect(e.type, self.expr(e.b, "b"), "Choose's b")
        elif isinstance(e, k.Select):
            self.expect_bool(e.cond, "cond")
            self.expect(e.type, self.expr(e.then, "then"), "Select's then")
            self.expect(e.type, self.expr(e.orelse, "orelse"), "Select's orelse")
        elif isinstance(e, k.Logical):
            if e.op not in ("and", "or"):
                self.problem(f"Logical op {e.op!r}")
            if e.type != T.BOOL:
                self.problem(f"Logical is {e.type.value}, expected bool")
            self.expect_bool(e.left, "left")
            self.expect_bool(e.right, "right")
        elif isinstance(e, k.Load):
            if e.type not in _MEMORY_TYPES:
                self.problem(f"load of type {e.type!r}")
            self.address(e.addr, e.offset)
        elif isinstance(e, k.Let):
            got = self.expr(e.value, "value")
            t = self.local_type(e.name, write=True)
            if t is not None:
                self.expect(t, got, f"value bound to {e.name!r}")
            self.expect(e.type, self.expr(e.body, "body"), "Let's body")
        elif isinstance(e, k.Seq):
            with self.at("body"):
                self.stmts(e.body)
            self.expect(e.type, self.expr(e.value, "value"), "Seq's value")
        elif isinstance(e, k.CallFn):
            callee = self.call(e.func, e.args)
            if callee is not None:
                if len(callee.results) != 1:
                    self.problem(f"CallFn of {e.func}, which has {len(callee.results)} results (use Invoke)")
                else:
                    self.expect(e.type, callee.results[0], f"result of {e.func}")
        elif isinstance(e, k.GetGlobal):
            g = self.globals.get(e.name)
            if g is None:
                self.problem(f"global {e.name!r} is not defined")
            elif g.type != e.type:
                self.problem(f"global {e.name!r} read as {e.type.value}, it is {g.type.value}")
        # ---- high level
        elif isinstance(e, (k.Attr, k.Input)):
            pass
        elif isinstance(e, k.ArrayLoad):
            self.expect(T.I64, self.expr(e.index, "index"), "array index")
        elif isinstance(e, k.ConstTable):
            self.expect(T.I64, self.expr(e.index, "index"), "table index")
        elif isinstance(e, k.Unary):
            self.expr(e.operand, "operand")
        elif isinstance(e, k.Binary):
            self.expr(e.left, "left")
            self.expr(e.right, "right")
        elif isinstance(e, k.Compare):
            if e.type != T.BOOL:
                self.problem(f"comparison is {e.type.value}, expected bool")
            self.expr(e.left, "left")
            self.expr(e.right, "right")
        elif isinstance(e, k.Convert):
            self.expr(e.operand, "operand")
        elif isinstance(e, k.MathCall):
            for i, a in enumerate(e.args):
                self.expr(a, f"args[{i}]")
        elif isinstance(e, k.Call):
            fn = e.func
            got = [self.expr(a, f"args[{i}]") for i, a in enumerate(e.args)]
            if len(got) != len(fn.params):
                self.problem(f"{fn.qualname} takes {len(fn.params)} arguments, called with {len(got)}")
            else:
                for (pname, want), have in zip(fn.params, got, strict=True):
                    self.expect(want, have, f"argument {pname!r} of {fn.qualname}")
            if fn.returns is not None and e.type != fn.returns:
                self.problem(f"call of {fn.qualname} typed {e.type.value}, it returns {fn.returns.value}")
        else:
            self.problem(f"unknown expression {type(e).__name__}")


def _types(ts: tuple[T, ...]) -> tuple[str, ...]:
    return tuple(t.value for t in ts)


def _traps(body: Iterable[Any]) -> Iterator[k.Trap]:
    """Every Trap in a statement list (through nested statements and expressions)."""
    stack = list(body)
    while stack:
        x = stack.pop()
        if isinstance(x, k.Trap):
            yield x
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, (k.Stmt, k.Expr)):
            for name in getattr(x, "__dataclass_fields__", ()):
                if name in ("site", "func", "code", "type"):
                    continue
                v = getattr(x, name)
                if isinstance(v, (list, k.Stmt, k.Expr)):
                    stack.append(v)


# ---------------------------------------------------------------------------------------- entry points
def validate(
    x: Any, level: str = "high", module: k.Module | None = None, *, deep: bool = True, **code_locals: T
) -> bool:
    """Check ``x`` (a Module, Function, Code or KFunction); raise :class:`KernelIRError` listing
    every problem. ``level="primitive"``: high-level nodes are errors too. ``module``: the module
    a lone Function's calls resolve in. ``code_locals``: for a lone Code, the skeleton's locals its
    body uses (``nb=T.I32``).

    IR nested deeper than the interpreter's recursion limit allows is walked again under the
    frontend's raised limit; with ``deep=False`` only if that limit is in force already (raising
    it while another thread builds an AST upsets CPython's parser: the compile-time hooks run
    beside concurrent compiles), else the check is skipped and False returned."""
    v = Validator(level, module if not isinstance(x, k.Module) else None)
    try:
        _validate_into(v, x, code_locals)
    except RecursionError:  # IR nested as deep as the code it came from: again, with room
        if not deep and sys.getrecursionlimit() < _raised_limit():
            return False
        v = Validator(level, module if not isinstance(x, k.Module) else None)
        with _deep():
            _validate_into(v, x, code_locals)
    if v.problems:
        raise KernelIRError(v.problems)
    return True


def _raised_limit() -> int:
    from .frontend import COMPILE_RECURSION_LIMIT

    return COMPILE_RECURSION_LIMIT


def _deep() -> Any:
    """The frontend's raised recursion limit, only when needed (changing the process-wide limit
    while another thread builds an AST upsets CPython's parser)."""
    try:
        from .frontend import deep_recursion
    except ImportError:  # pragma: no cover - the frontend moved it
        return nullcontext()
    return deep_recursion()


def _validate_into(v: Validator, x: Any, code_locals: dict[str, T]) -> None:
    if isinstance(x, k.Module):
        v.module(x)
    elif isinstance(x, k.Function):
        v.function(x)
    elif isinstance(x, k.Code):
        v.code(x, code_locals)
    elif isinstance(x, k.KFunction):
        v.kfunction(x)
    else:
        raise TypeError(f"validate takes a Module, Function, Code or KFunction, got {type(x).__name__}")


SKIPPED_DEEP: list[str] = []
"""Names of what the compile-time hooks left unchecked for its depth (see :func:`validate`)."""


def check_module(module: k.Module) -> None:
    """What the compiler calls on each module it is about to print or run (when :data:`ENABLED`)."""
    if not validate(module, level="primitive", deep=False):
        _skipped("<module>")


def _skipped(name: str) -> None:
    del SKIPPED_DEEP[:-99]
    SKIPPED_DEEP.append(name)


_VALIDATED: dict[int, weakref.ref[k.KFunction]] = {}
"""Frontend functions already validated (lowerings are cached across compiles): by id, checked
against a weak reference so that a new object at a reused id is validated again."""
_VALIDATED_LOCK = threading.Lock()


def check_kfunction(fn: k.KFunction) -> None:
    """What the frontend's caller calls on each function it lowered (when :data:`ENABLED`); once
    per function object."""
    with _VALIDATED_LOCK:
        seen = _VALIDATED.get(id(fn))
        if seen is not None and seen() is fn:
            return
    if not validate(fn, level="high", deep=False):
        _skipped(fn.qualname)
        return
    with _VALIDATED_LOCK:
        if len(_VALIDATED) > 100_000:
            for key in [key for key, r in _VALIDATED.items() if r() is None]:
                del _VALIDATED[key]
        _VALIDATED[id(fn)] = weakref.ref(fn)


def check_lowered(ir: Any, session: Any) -> None:
    """Validate every KFunction the frontend lowered for the nodes of ``ir`` (the methods and
    helpers each node variant's lowering holds after a compile, in the compiler's session)."""
    seen: set[int] = set()
    for node in ir.nodes:
        low = session.lowering_for(node, ir.sample_rate)
        if id(low) in seen:
            continue
        seen.add(id(low))
        for fn in list(low._cache.values()):
            check_kfunction(fn)


def check_program(ir: Any, program: Any, session: Any) -> None:
    """What the compiler calls after building a program (when :data:`ENABLED`): the frontend's
    functions for its nodes, and the program's module (primitive level) once it is kernel IR."""
    check_lowered(ir, session)
    module = getattr(program, "module", None)
    if module is not None:
        check_module(module)
