"""The typing pass: the types of every local, return value and attribute, found before lowering.

Compiled code is monomorphic: a local holds one type, the join (bool < int < float) of every
value assigned to it, and so does a scalar attribute (``self.phase = 0`` in ``__init__`` and
``self.phase += 0.01`` in ``process`` is a float). The pass walks a method's syntax tree over
abstract values (a type, and for constants their value: a branch on a constant is dead, so what
it assigns does not count) until the locals' types stop changing, then the lowering runs once
with them. Helpers are typed by their argument types, through the same cache the lowering uses.

At the graph level, :func:`settled` gives a GraphIR whose attribute types are settled the same
way over ``process`` and the event handlers, so the state layout and the compiled code agree on
them whether or not the graph has run (``graph.to_ir()`` gives the types of the current values).
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import inspect
import math
import threading
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import kernel as k
from ..kernel import T
from .attributes import ArrayAttr, AttrInfo, EndpointAttr, ScalarAttr, attribute_infos
from .builtins import MATH_CONSTANTS, lower_builtin, lower_math, math_name
from .errors import JitError, deep_recursion, too_deep
from .semantics import (
    BINOPS,
    CMPOPS,
    COMPARISON_WORDS,
    OPERATOR_WORDS,
    binary_type,
    convert_const,
    decides,
    exact_in_float,
    fold_binary,
    fold_compare,
    literal,
    logical,
    numeric_constant,
    short,
    tname,
)
from .sources import fingerprint, source_of
from .visitor import FunctionVisitor

if TYPE_CHECKING:
    from ...graph.ir import GraphIR, StateIR

MAX_ROUNDS = 8
"""Rounds of the local-type fixed point (each round widens some local one step: a few suffice)."""


@dataclass(frozen=True)
class FunctionTypes:
    """What the typing pass found for one function at given argument types.

    ``locals`` (parameters included), ``returns`` (None: no value returned) and ``tuple_returns``
    are the types at the start of the last round it ran: the settled ones, or, when typing
    failed (``error``), those of the round that failed, from which the lowering (which then
    reports the error in its own words) starts."""

    locals: dict[str, T]
    returns: T | None
    tuple_returns: tuple[T, ...] | None
    error: BaseException | None = None


@dataclass(frozen=True)
class Callee:
    """A function compiled code calls: its cache identity, the function, its kernel name."""

    identity: Any
    func: Callable[..., Any]
    name: str
    has_self: bool


@dataclass(eq=False)
class Returned(k.Expr):
    """The typing pass's value of a helper call (it may return a tuple, to be unpacked)."""

    tuple_returns: tuple[T, ...] | None = None


class NodeTyping:
    """The methods of one node class, given the types of the instance's attributes: resolves and
    types them (cached by function and argument types), and notes what they fold in."""

    def __init__(
        self,
        cls: type,
        attrs: dict[str, AttrInfo],
        sample_rate: float,
        label: str = "",
        unsupported: dict[str, str] | None = None,
        constants: dict[str, float | int | bool] | None = None,
        settling: bool = False,
    ) -> None:
        self.cls = cls
        self.attrs = attrs
        self.sample_rate = sample_rate
        self.name = label or cls.__qualname__
        self.unsupported = unsupported or {}
        self.constants = constants or {}
        self.settling = settling
        """Settling attribute types: a wider value assigned to an attribute widens it (noted in
        ``widened``) instead of being refused."""
        self.widened: dict[str, T] = {}
        self._types: dict[tuple[Any, tuple[T, ...]], FunctionTypes] = {}
        self._typing: set[Any] = set()
        self._function_names: dict[Any, str] = {}  # plain functions -> a name unique in this node
        # Shared by every compile of the variant (codegen caches lowerings): two threads compiling
        # at once must not interleave one pass's in-progress sets and caches.
        self._lock = threading.RLock()
        # What the code folded in from outside the instance: (namespace, name) -> (the value, kept
        # alive so that an identity stays unique, and its fingerprint).
        self.dependencies: dict[tuple[int, str], tuple[Callable[[], Any], Any, Any]] = {}
        self.last_site: k.Site | None = None  # the statement being walked, for too_deep()

    def depend(self, key: tuple[int, str], getter: Callable[[], Any], value: Any) -> Any:
        """Note that the compiled code relies on ``getter()`` being ``value``; returns value."""
        if key not in self.dependencies:
            self.dependencies[key] = (getter, value, fingerprint(value))
        return value

    def still_valid(self) -> bool:
        """Whether every global, module attribute and class constant the lowered code folded in
        still has the value it had (a cache of lowered code must not outlive an edited global)."""
        for getter, _, expected in list(self.dependencies.values()):
            try:
                current = getter()
            except Exception:  # noqa: BLE001 - gone or broken: the code is stale
                return False
            if fingerprint(current) != expected:
                return False
        return True

    # ------------------------------------------------------------------ callees
    def callee_method(self, name: str, site: k.Site | None = None) -> Callee:
        """The node's method ``name`` (a static method is a plain function)."""
        func = getattr(self.cls, name, None)
        if func is None or not callable(func):
            raise JitError(f"{self.name} has no method {name}()", site, node=self.name)
        static = inspect.getattr_static(self.cls, name)
        if isinstance(static, classmethod):
            raise JitError(
                f"{name}() is a class method; compiled code calls instance and static methods only",
                site,
                node=self.name,
            )
        if isinstance(static, staticmethod):
            return self.callee_function(static.__func__, site)
        return Callee(name, func, name, True)

    def callee_function(self, func: Any, site: k.Site | None = None) -> Callee:
        """A plain function (module-level, or a static method) called from node code."""
        if not isinstance(func, types.FunctionType):
            raise JitError(f"{func!r} is not a Python function", site, node=self.name)
        name = self._function_names.get(func)
        if name is None:
            name = self._function_names[func] = f"{func.__name__}_f{len(self._function_names)}"
        return Callee(func, func, name, False)

    # ------------------------------------------------------------------ typing
    def types_of(
        self,
        callee: Callee,
        arg_types: tuple[T, ...],
        first_param_value: float | None = None,
        site: k.Site | None = None,
    ) -> FunctionTypes:
        """The types of ``callee`` called with ``arg_types`` (cached; failures too)."""
        with self._lock:
            key = (callee.identity, arg_types)
            got = self._types.get(key)
            if got is not None:
                return got
            if callee.identity in self._typing:
                shown = getattr(callee.func, "__name__", callee.name)
                raise JitError(
                    f"recursive call of {shown}() is not supported in compiled code", site, node=self.name
                )
            outermost = not self._typing
            self._typing.add(callee.identity)
            try:
                if outermost:
                    with deep_recursion():
                        try:
                            got = self._type(callee, arg_types, first_param_value)
                        except RecursionError:
                            raise too_deep(self.last_site, self.name) from None
                else:
                    got = self._type(callee, arg_types, first_param_value)
            finally:
                self._typing.discard(callee.identity)
            self._types[key] = got
            return got

    def _type(self, callee: Callee, arg_types: tuple[T, ...], first: float | None) -> FunctionTypes:
        src = source_of(callee.func, self.name)
        first = first if callee.has_self else None  # a static method is called as a function
        return FunctionTyping(self, src, callee.name, arg_types, first, callee.has_self).run()

    def method_types(self, name: str, arg_types: tuple[T, ...], site: k.Site | None = None) -> FunctionTypes:
        return self.types_of(self.callee_method(name, site), arg_types, site=site)

    def settle(self, handlers: list[tuple[str, int]]) -> bool:
        """Type ``process`` and the handlers of ``handlers`` (port, arity), noting the attributes
        they widen; False if some method could not be typed (the compile reports why)."""
        try:
            runs = [("process", (), self.sample_rate)]
            for port, arity in handlers:
                if callable(getattr(self.cls, f"on_{port}", None)):
                    runs.append((f"on_{port}", (T.F64,) * arity, None))
            for name, arg_types, first in runs:
                if self.types_of(self.callee_method(name), arg_types, first).error is not None:
                    return False
        except (JitError, RecursionError):
            return False
        return True

    def observe(self, attr: str, t: T) -> None:
        """Settling: ``self.attr`` is assigned a value of type ``t`` (wider than it holds now)."""
        old = self.widened.get(attr)
        self.widened[attr] = t if old is None else k.join(old, t)


class FunctionTyping(FunctionVisitor):
    """The typing pass over one function: statements give no kernel IR, expressions give abstract
    values (``k.Const`` for constants, ``k.Local`` / ``k.Attr`` / ``k.Input`` for reads, otherwise
    a bare ``k.Expr`` of the type), with the constness the lowering will find."""

    owner: NodeTyping

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.returns: T | None = None
        self.has_value_return = False
        self.tuple_returns: list[T] | None = None

    def run(self) -> FunctionTypes:
        try:
            typed_params = self.parameters()
        except JitError as exc:
            return FunctionTypes({}, None, None, exc)
        returns_hint: T | None = None
        tuple_hint: tuple[T, ...] | None = None
        for _ in range(MAX_ROUNDS):
            before = dict(self.local_types)
            self.local_types.update(typed_params)
            self.returns = None
            self.has_value_return = False
            self.tuple_returns = None
            self.const_locals = {}
            try:
                self.block(self.src.tree.body)
            except JitError as exc:
                return FunctionTypes(before, returns_hint, tuple_hint, exc)
            tuple_returns = tuple(self.tuple_returns) if self.tuple_returns is not None else None
            if self.local_types == before and self.returns == returns_hint and tuple_returns == tuple_hint:
                return FunctionTypes(before, returns_hint, tuple_hint)
            returns_hint, tuple_hint = self.returns, tuple_returns
        error = self.error(self.src.tree, "local variable types that do not settle")
        return FunctionTypes(dict(self.local_types), returns_hint, tuple_hint, error)

    # ------------------------------------------------------------------ abstract values
    def coerce(self, e: k.Expr, t: T, node: ast.AST) -> k.Expr:
        if e.type == t:
            return e
        if t == T.F64 or (t == T.I64 and e.type == T.BOOL):
            return convert_const(e, t) if isinstance(e, k.Const) else k.Expr(t)
        if t == T.BOOL:
            return self.truth(e, node)
        raise JitError(
            f"a {tname(e.type)} value where {tname(t)} is needed (types never change in compiled code)",
            self.site(node),
        )

    def truth(self, e: k.Expr, node: ast.AST) -> k.Expr:
        if e.type == T.BOOL:
            return e
        if isinstance(e, k.Const):
            return k.Const(T.BOOL, bool(e.value))
        return k.Expr(T.BOOL)

    def temp(self, t: T) -> str:
        return "_"  # the lowering names its temporaries; they are typed where they are made

    def block(self, stmts: list[ast.stmt]) -> None:
        for s in stmts:
            self.owner.last_site = self.site(s)
            self.visit(s)

    # ------------------------------------------------------------------ statements

    def visit_Assign(self, s: ast.Assign) -> None:
        if len(s.targets) == 1:
            self.assign(s.targets[0], s.value, s)
            return
        value = self.expr(s.value)
        for target in s.targets:
            self.assign_value(target, k.Local(value.type, "_"), s)

    def visit_AnnAssign(self, s: ast.AnnAssign) -> None:
        if s.value is not None:
            self.assign(s.target, s.value, s)

    def visit_AugAssign(self, s: ast.AugAssign) -> None:
        op = BINOPS.get(type(s.op))
        if op is None:
            raise self.error(s, f"the operator {OPERATOR_WORDS.get(type(s.op), 'used here')}")
        target = s.target
        if isinstance(target, ast.Subscript):
            array = self.array_index(target)
            info = self.owner.attrs[array]
            assert isinstance(info, ArrayAttr)
            value = self.binary(op, k.Expr(info.type), self.expr(s.value), s)
            if info.type != T.F64 and value.type == T.F64:
                raise JitError(f"storing a float into the int array self.{array}", self.site(s))
            return
        current = self.expr(target)
        self.assign_value(target, self.binary(op, current, self.expr(s.value), s), s)

    def visit_If(self, s: ast.If) -> None:
        cond = self.truth(self.expr(s.test), s.test)
        if isinstance(cond, k.Const):  # only the branch taken is compiled
            self.block(s.body if cond.value else s.orelse)
            return
        self.block(s.body)
        self.block(s.orelse)

    def visit_While(self, s: ast.While) -> None:
        if s.orelse:
            raise self.error(s, "while ... else")
        self.truth(self.expr(s.test), s.test)
        self.block(s.body)

    def visit_For(self, s: ast.For) -> None:
        if s.orelse:
            raise self.error(s, "for ... else")
        it = s.iter
        table = self.constant_sequence(it)
        if table is not None:
            self.for_table(s, table)
            return
        if not (
            isinstance(it, ast.Call)
            and isinstance(it.func, ast.Name)
            and it.func.id == "range"
            and self.is_builtin("range")
        ):
            raise self.error(
                s,
                "a for loop over anything but range(...)",
                "iterate over indices: for i in range(len(self.buf))",
            )
        if it.keywords or not 1 <= len(it.args) <= 3:
            raise self.error(s, "range() with keywords or more than 3 arguments")
        if not isinstance(s.target, ast.Name):
            raise self.error(s, "a for target that is not a plain name")
        bounds = [self.expr(a) for a in it.args]
        for b, node in zip(bounds, it.args, strict=True):
            if b.type == T.F64:
                raise JitError("range() takes ints, got a float", self.site(node))
        if len(bounds) == 3 and isinstance(bounds[2], k.Const) and bounds[2].value == 0:
            raise JitError("range() step must not be zero", self.site(s))
        name = s.target.id
        t = self.local_types.get(name)
        t = T.I64 if t is None else k.join(t, T.I64)
        self.local_types[name] = t
        if t != T.I64:
            raise JitError(f"loop variable {name!r} is also assigned floats; use another name", self.site(s))
        self.block(s.body)

    def for_table(self, s: ast.For, table: tuple[k.Const, ...]) -> None:
        if not isinstance(s.target, ast.Name):
            raise self.error(s, "a for target that is not a plain name")
        t = table[0].type
        for c in table[1:]:
            t = k.join(t, c.type)
        name = s.target.id
        var_t = self.local_types.get(name)
        self.local_types[name] = t if var_t is None else k.join(var_t, t)
        self.block(s.body)

    def visit_Break(self, s: ast.Break) -> None:
        pass  # outside a loop: the lowering refuses it

    visit_Continue = visit_Break  # type: ignore[assignment]

    def visit_Pass(self, s: ast.Pass) -> None:
        pass

    def visit_Return(self, s: ast.Return) -> None:
        if s.value is None or (isinstance(s.value, ast.Constant) and s.value.value is None):
            return
        if isinstance(s.value, ast.Tuple):
            self.return_tuple(s, s.value)
            return
        if self.tuple_returns is not None:
            raise self.error(s, "returning a tuple on some paths and a single value on others")
        value = self.expr(s.value)
        self.has_value_return = True
        self.returns = value.type if self.returns is None else k.join(self.returns, value.type)

    def return_tuple(self, s: ast.Return, value: ast.Tuple) -> None:
        if self.has_value_return:
            raise self.error(s, "returning a tuple on some paths and a single value on others")
        if any(isinstance(x, ast.Starred) for x in value.elts) or not value.elts:
            raise self.error(s, "returning an empty or starred tuple")
        values = [self.expr(x) for x in value.elts]
        if self.tuple_returns is not None and len(self.tuple_returns) != len(values):
            raise JitError(f"{self.name}() returns tuples of different lengths", self.site(s))
        if self.tuple_returns is None:
            self.tuple_returns = [v.type for v in values]
        else:
            self.tuple_returns = [k.join(a, v.type) for a, v in zip(self.tuple_returns, values, strict=True)]

    def visit_Expr(self, s: ast.Expr) -> None:
        if isinstance(s.value, ast.Constant):  # docstring or bare literal
            return
        if self.emit(s.value):
            return
        self.expr(s.value, allow_void=isinstance(s.value, ast.Call))

    def visit_Assert(self, s: ast.Assert) -> None:
        self.truth(self.expr(s.test), s.test)

    def emit(self, call: ast.expr) -> bool:
        """``self.port.emit(...)``: its arguments typed; False if ``call`` is no emit."""
        if not (
            isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "emit"
        ):
            return False
        port = call.func.value
        if not (isinstance(port, ast.Attribute) and self.is_self(port.value)):
            return False
        info = self.owner.attrs.get(port.attr)
        if not (isinstance(info, EndpointAttr) and info.kind == "event_out"):
            raise JitError(
                f"self.{port.attr} is not an event output; only event outputs have emit()", self.site(call)
            )
        if call.keywords:
            raise self.error(call, "keyword arguments to emit()")
        for a in call.args:
            self.expr(a)
        return True

    # ------------------------------------------------------------------ assignments
    def assign(self, target: ast.expr, value_node: ast.expr, s: ast.stmt) -> None:
        if isinstance(target, ast.Tuple) and isinstance(value_node, ast.Call):
            if self.unpack_call(target, value_node, s):
                return
        if isinstance(target, ast.Tuple):
            if not isinstance(value_node, ast.Tuple) or len(value_node.elts) != len(target.elts):
                raise self.error(
                    s, "unpacking anything but a tuple of the same length", "write one assignment per value"
                )
            values = [self.expr(v) for v in value_node.elts]
            for t_node, v in zip(target.elts, values, strict=True):
                self.assign_value(t_node, k.Local(v.type, "_"), s)
            return
        self.assign_value(target, self.expr(value_node), s)

    def unpack_call(self, target: ast.Tuple, value_node: ast.Call, s: ast.stmt) -> bool:
        result = self.call(value_node, allow_void=True, allow_tuple=True)
        if not (isinstance(result, Returned) and result.tuple_returns is not None):
            return False
        types_ = result.tuple_returns
        if len(types_) != len(target.elts):
            raise JitError(
                f"unpacking {len(types_)} values returned by {short(value_node.func)}() into {len(target.elts)} names",
                self.site(s),
            )
        for t_node, t in zip(target.elts, types_, strict=True):
            self.assign_value(t_node, k.Local(t, "_"), s)
        return True

    def assign_value(self, target: ast.expr, value: k.Expr, s: ast.stmt) -> None:
        if isinstance(target, ast.Name):
            name = target.id
            if name in self.const_params:
                raise self.error(s, f"assigning to the parameter {name!r}")
            t = self.local_types.get(name)
            t = value.type if t is None else k.join(t, value.type)
            self.local_types[name] = t
            if isinstance(value, k.Const) and self.store_counts.get(name) == 1:
                self.const_locals[name] = k.Const(t, value.value)
            return
        if isinstance(target, ast.Attribute) and self.is_self(target.value):
            info = self.owner.attrs.get(target.attr)
            if isinstance(info, ScalarAttr):
                wider = k.join(info.type, value.type)
                if info.type == T.F64 or wider == info.type:
                    return
                if self.owner.settling:
                    self.owner.observe(target.attr, wider)
                    return
                raise JitError(
                    f"attribute self.{target.attr} is {tname(info.type)} but is assigned a {tname(value.type)}; "
                    "an attribute keeps the type it had in __init__",
                    self.site(s),
                )
            if isinstance(info, EndpointAttr) and info.kind == "out":
                return
            raise JitError(
                f"self.{target.attr} cannot be assigned here", self.site(s)
            )  # the lowering says why
        if isinstance(target, ast.Subscript):
            array = self.array_index(target)
            info = self.owner.attrs[array]
            assert isinstance(info, ArrayAttr)
            if info.type != T.F64 and value.type == T.F64:
                raise JitError(f"storing a float into the int array self.{array}", self.site(s))
            return
        raise self.error(s, f"assigning to {ast.unparse(target)}")

    # ------------------------------------------------------------------ expressions
    def visit_Constant(self, e: ast.Constant) -> k.Expr:
        const = literal(e.value, self.site(e))
        if const is None:
            raise self.error(e, f"the constant {e.value!r}", "only numbers and booleans")
        return const

    def visit_Name(self, e: ast.Name) -> k.Expr:
        n = e.id
        if n in self.const_params:
            return k.Const(T.F64, self.const_params[n])
        if n in self.const_locals:
            return self.const_locals[n]
        if n in self.local_types:
            return k.Local(self.local_types[n], n)
        if n in self.src.globals or hasattr(builtins, n):
            const = numeric_constant(self.global_value(n))
            if const is not None:
                return const
            raise self.error(e, f"the global {n!r} as a value")
        if n in self.store_counts:  # read before its first assignment (in a loop): typed by the fixed point
            self.local_types.setdefault(n, T.BOOL)
            return k.Local(self.local_types[n], n)
        raise JitError(f"name {n!r} is not defined", self.site(e))

    def visit_Attribute(self, e: ast.Attribute) -> k.Expr:
        if self.is_self(e.value):
            info = self.owner.attrs.get(e.attr)
            if isinstance(info, ScalarAttr):
                if e.attr in self.owner.constants:
                    return k.Const(info.type, self.owner.constants[e.attr])
                return k.Attr(info.type, e.attr)
            if isinstance(info, EndpointAttr):
                if info.kind in ("stream_in", "value_in"):
                    return k.Input(T.F64, e.attr)
                if info.kind == "out":
                    return k.Attr(T.F64, e.attr)
                raise self.error(e, f"reading the event endpoint self.{e.attr}")
            if isinstance(info, ArrayAttr):
                raise self.error(e, f"the array self.{e.attr} as a value")
            const = numeric_constant(self.class_attribute(e.attr))
            if const is not None:
                return const
            raise JitError(f"self.{e.attr} is not a number, bool or array attribute", self.site(e))
        base = self.module_of(e.value)
        if base is not None:
            if base is math and e.attr in MATH_CONSTANTS:
                return k.Const(T.F64, MATH_CONSTANTS[e.attr])
            const = numeric_constant(self.module_attribute(base, e.attr))
            if const is not None:
                return const
        raise self.error(e, f"the attribute access {ast.unparse(e)}")

    def visit_BinOp(self, e: ast.BinOp) -> k.Expr:
        op = BINOPS.get(type(e.op))
        if op is None:
            raise self.error(e, f"the operator {OPERATOR_WORDS.get(type(e.op), 'used here')}")
        return self.binary(op, self.expr(e.left), self.expr(e.right), e)

    def binary(self, op: str, a: k.Expr, b: k.Expr, node: ast.AST) -> k.Expr:
        t = binary_type(op, a, b, self.site(node))
        folded = fold_binary(op, a, b)
        if folded is not None:
            return folded
        if op == "/" and a.type.is_int and b.type.is_int:
            for v in (a, b):  # the lowering converts these exactly
                if isinstance(v, k.Const) and not exact_in_float(v):
                    raise JitError(
                        "an int constant beyond 2**53 compared with or divided as a float", self.site(node)
                    )
        return k.Expr(t)

    def visit_UnaryOp(self, e: ast.UnaryOp) -> k.Expr:
        operand = e.operand
        if isinstance(e.op, ast.USub) and isinstance(operand, ast.Constant) and type(operand.value) is int:
            const = literal(-operand.value, self.site(e))
            assert const is not None
            return const
        v = self.expr(operand)
        if isinstance(e.op, ast.Not):
            cond = self.truth(v, e)
            return k.Const(T.BOOL, not cond.value) if isinstance(cond, k.Const) else k.Expr(T.BOOL)
        if isinstance(e.op, ast.USub):
            if isinstance(v, k.Const):
                if v.type == T.F64:
                    return k.Const(T.F64, -float(v.value))
                const = literal(-int(v.value), self.site(e))
                assert const is not None
                return const
            return k.Expr(T.F64 if v.type == T.F64 else T.I64)
        if isinstance(e.op, ast.UAdd):
            return v if v.type != T.BOOL else self.coerce(v, T.I64, e)
        if isinstance(e.op, ast.Invert):
            if v.type == T.F64:
                raise JitError("~ on a float (Python raises TypeError)", self.site(e))
            return k.Expr(T.I64)
        raise self.error(e, f"the unary operator in `{short(e)}`")

    def visit_Compare(self, e: ast.Compare) -> k.Expr:
        if len(e.ops) == 1 and isinstance(e.ops[0], (ast.Is, ast.IsNot)):
            return self.compare_none(e)
        ops = []
        for op in e.ops:
            sym = CMPOPS.get(type(op))
            if sym is None:
                raise self.error(e, f"the comparison `{COMPARISON_WORDS.get(type(op), short(e))}`")
            ops.append(sym)
        left = self.expr(e.left)
        operands = [self.expr(c) for c in e.comparators]
        return self.chain(left, list(zip(ops, operands, strict=True)))

    def chain(self, left: k.Expr, rest: list[tuple[str, k.Expr]]) -> k.Expr:
        """As the lowering's chain: an operand evaluated into a temporary makes the result a
        ``Let`` (never a constant), whatever the comparison inside it folds to."""
        sym, right = rest[0]
        simple = (k.Const, k.Local)
        if len(rest) > 1 and not isinstance(left, simple) and not isinstance(right, simple):
            self.chain(k.Local(left.type, "_"), rest)
            return k.Expr(T.BOOL)
        if len(rest) > 1 and not isinstance(right, simple):
            self.chain(left, [(sym, k.Local(right.type, "_")), *rest[1:]])
            return k.Expr(T.BOOL)
        first = fold_compare(sym, left, right) or k.Expr(T.BOOL)
        if len(rest) == 1:
            return first
        return logical("and", first, self.chain(right, rest[1:]))

    def visit_BoolOp(self, e: ast.BoolOp) -> k.Expr:
        op = "and" if isinstance(e.op, ast.And) else "or"
        values: list[k.Expr] = []
        for v_node in e.values:
            v = self.expr(v_node)
            values.append(v)
            if decides(v, op):  # the rest is never evaluated, so not compiled
                break
        if len(values) == 1:
            return values[0]
        if all(v.type == T.BOOL for v in values):
            result = values[0]
            for v in values[1:]:
                result = logical(op, result, v)
            return result
        t = values[0].type
        for v in values[1:]:
            t = k.join(t, v.type)
        return k.Expr(t)

    def visit_IfExp(self, e: ast.IfExp) -> k.Expr:
        cond = self.truth(self.expr(e.test), e.test)
        if isinstance(cond, k.Const):
            return self.expr(e.body if cond.value else e.orelse)
        a, b = self.expr(e.body), self.expr(e.orelse)
        return k.Expr(k.join(a.type, b.type))

    def visit_Subscript(self, e: ast.Subscript) -> k.Expr:
        table = self.constant_sequence(e.value)
        if table is not None:
            return self.table_element(table, e)
        info = self.owner.attrs[self.array_index(e)]
        return k.Expr(info.type)

    def table_element(self, table: tuple[k.Const, ...], e: ast.Subscript) -> k.Expr:
        if isinstance(e.slice, (ast.Slice, ast.Tuple)):
            raise self.error(e, "slices of a constant sequence", "index one element at a time")
        index = self.expr(e.slice)
        if index.type == T.F64:
            raise JitError("a constant sequence indexed by a float; use int(...)", self.site(e))
        t = table[0].type
        for c in table[1:]:
            t = k.join(t, c.type)
        index = self.coerce(index, T.I64, e)
        if isinstance(index, k.Const) and -len(table) <= int(index.value) < len(table):
            return convert_const(table[int(index.value)], t)
        return k.Expr(t)

    def array_index(self, e: ast.Subscript) -> str:
        """The array ``e`` indexes (its indices typed), with the lowering's refusals."""
        if isinstance(e.value, ast.Subscript) and not isinstance(e.slice, (ast.Slice, ast.Tuple)):
            inner = e.value  # self.grid[i][j]
            if isinstance(inner.value, ast.Attribute) and self.is_self(inner.value.value):
                info = self.owner.attrs.get(inner.value.attr)
                if isinstance(info, ArrayAttr) and info.cols:
                    self.indices(inner.value.attr, [inner.slice, e.slice])
                    return inner.value.attr
        if not (isinstance(e.value, ast.Attribute) and self.is_self(e.value.value)):
            raise self.error(e, f"indexing {ast.unparse(e.value)}")
        name = e.value.attr
        info = self.owner.attrs.get(name)
        if not isinstance(info, ArrayAttr):
            raise JitError(f"self.{name} cannot be indexed", self.site(e))  # the lowering says why
        if info.cols:
            if isinstance(e.slice, ast.Tuple) and len(e.slice.elts) == 2:
                row, col = e.slice.elts
                if not any(isinstance(x, (ast.Slice, ast.Starred)) for x in (row, col)):
                    self.indices(name, [row, col])
                    return name
            raise self.error(e, f"indexing the 2-D array self.{name} by anything but two ints")
        if isinstance(e.slice, (ast.Slice, ast.Tuple)):
            raise self.error(e, "slices and multi-dimensional indexing")
        self.indices(name, [e.slice])
        return name

    def indices(self, name: str, nodes: list[ast.expr]) -> None:
        for node in nodes:
            if self.expr(node).type == T.F64:
                raise JitError(f"array index into self.{name} is a float; use int(...)", self.site(node))

    def visit_Call(self, e: ast.Call, allow_void: bool = False) -> k.Expr:
        return self.call(e, allow_void)

    def call(self, e: ast.Call, allow_void: bool, allow_tuple: bool = False) -> k.Expr:
        site = self.site(e)
        if any(isinstance(a, ast.Starred) for a in e.args):
            raise self.error(e, "starred arguments")
        f = e.func
        if isinstance(f, ast.Attribute) and self.is_self(f.value):
            if isinstance(self.owner.attrs.get(f.attr), EndpointAttr):
                raise self.error(e, f"calling the endpoint self.{f.attr}")
            target = getattr(self.owner.cls, f.attr, None)
            if target is None or not callable(target):
                raise JitError(f"{self.owner.name} has no method {f.attr}()", site)
            static = isinstance(inspect.getattr_static(self.owner.cls, f.attr, None), staticmethod)
            args = self.bind_arguments(target, not static, e, f"self.{f.attr}")
            callee = self.owner.callee_method(f.attr, site)
            return self.call_of(callee, args, e, allow_void, f"self.{f.attr}", allow_tuple)
        func = self.plain_function(f)
        if func is not None:
            shown = ast.unparse(f)
            args = self.bind_arguments(func, False, e, shown)
            return self.call_of(
                self.owner.callee_function(func, site), args, e, allow_void, shown, allow_tuple
            )
        if e.keywords:
            raise self.error(e, "keyword arguments to a builtin or math function")
        if isinstance(f, ast.Attribute) and f.attr == "emit":
            raise self.error(e, "emit() inside an expression")
        mod = self.module_of(f.value) if isinstance(f, ast.Attribute) else None
        if mod is math and isinstance(f, ast.Attribute):
            return lower_math(self, f.attr, e)
        if isinstance(f, ast.Name):
            value = None
            if f.id not in self.local_types and f.id in self.src.globals:
                value = self.global_value(f.id)
            name = math_name(value)
            if name is not None:
                return lower_math(self, name, e)
            if self.is_builtin(f.id):
                return lower_builtin(self, f.id, e)
        raise self.error(e, f"calling {ast.unparse(f)}")

    def call_of(
        self,
        callee: Callee,
        args: list[k.Expr],
        e: ast.Call,
        allow_void: bool,
        shown: str,
        allow_tuple: bool,
    ) -> k.Expr:
        site = self.site(e)
        got = self.owner.types_of(callee, tuple(a.type for a in args), site=site)
        if got.error is not None:
            raise JitError(f"{shown}() could not be typed", site) from got.error
        if got.tuple_returns is not None and not (allow_tuple or allow_void):
            raise JitError(f"{shown}() returns a tuple, which compiled code can only unpack", site)
        if got.returns is None and not allow_void:
            raise JitError(f"{shown}() returns nothing but its value is used", site)
        return Returned(got.returns or T.F64, got.tuple_returns)


# ------------------------------------------------------------------------------ attributes
def settle_attribute_types(
    cls: type,
    attrs: dict[str, AttrInfo],
    sample_rate: float,
    handlers: list[tuple[str, int]],
    unsupported: dict[str, str] | None = None,
    constants: dict[str, float | int | bool] | None = None,
) -> dict[str, T]:
    """The scalar attributes whose type must widen because compiled methods assign them a wider
    value (``self.phase = 0`` in ``__init__``, ``self.phase += 0.01`` in ``process``): name ->
    the type, the join over the initial value and every assignment (bool < int < float).

    The interpreter's attribute holds a float after one sample; typing it from its value at
    compile time would make what compiles depend on how many samples ran. Each round types
    ``process`` and the handlers with the attribute types found so far; methods that cannot be
    typed are left for the compile to report: the types found so far are returned.
    """
    attrs = dict(attrs)
    widened: dict[str, T] = {}
    for _ in range(2 * len(attrs) + 1):  # each round widens at least one attribute one step
        typing = NodeTyping(cls, attrs, sample_rate, cls.__qualname__, unsupported, constants, settling=True)
        typing.settle(handlers)
        if not typing.widened:
            break
        for name, t in typing.widened.items():
            info = attrs[name]
            assert isinstance(info, ScalarAttr)
            attrs[name] = ScalarAttr(k.join(info.type, t))
            widened[name] = attrs[name].type  # type: ignore[union-attr]
    return widened


_SETTLED: weakref.WeakKeyDictionary[type, dict[tuple, dict[str, str]]] = weakref.WeakKeyDictionary()


def widened_state_types(
    cls: type,
    state: list[tuple[str, str, int | None, int | None]],
    endpoints: list[tuple[str, str, str, int]],
    sample_rate: float,
    constants: dict[str, float | int | bool],
) -> dict[str, str]:
    """The int/bool scalar attributes that compiled methods assign wider values, as IR type names
    ("f64", "i64"). ``state`` is (name, type, length, cols), ``endpoints`` (name, kind, direction,
    arity). Cached per class and signature (typing runs once)."""
    assigned_narrow = [n for n, t, length, _ in state if length is None and t != "f64" and n not in constants]
    if not assigned_narrow:
        return {}
    key = (
        tuple(state),
        tuple(endpoints),
        sample_rate,
        tuple(sorted((n, fingerprint(v)) for n, v in constants.items())),
    )
    per_class = _SETTLED.setdefault(cls, {})
    got = per_class.get(key)
    if got is None:
        attrs = attribute_infos(state, ((n, k_, d) for n, k_, d, _ in endpoints))
        handlers = [(n, arity) for n, k_, d, arity in endpoints if (d, k_) == ("input", "event")]
        widened = settle_attribute_types(cls, attrs, sample_rate, handlers, constants=constants)
        got = {name: t.value if t != T.BOOL else "bool" for name, t in widened.items()}
        per_class[key] = got
        if len(per_class) > 64:
            per_class.pop(next(iter(per_class)))
    return got


def settled(ir: GraphIR) -> GraphIR:
    """``ir`` with the attribute types the JIT compiles: every scalar attribute widened to the
    join of the values compiled methods assign it (see :func:`settle_attribute_types`).

    The one place the JIT turns the graph layer's IR (the types of the current values) into the
    one it lays out and compiles: ``Layout.of``, ``GraphState`` and ``CraneliftJit.compile`` all
    take their IR through here, so a state made from a graph fits the kernel compiled from it.
    Idempotent and cached on the IR (an IR is not changed after it is built)."""
    if ir.settled:
        return ir
    got = ir.__dict__.get("_settled")
    if got is not None:
        return got
    nodes = []
    # Nodes of one template share their state, constants and endpoints (build_ir): settle each
    # distinct set once, and let the settled nodes share the widened state list as well.
    done: dict[tuple[int, int, int, int], tuple[dict[str, str], list[StateIR] | None]] = {}
    replaced = False
    for n in ir.nodes:
        cls = n.node_class or n.resolve_class()
        ids = (id(cls), id(n.state), id(n.endpoints), id(n.constants))
        got = done.get(ids)
        if got is None:
            widened = widened_state_types(
                cls,
                [(s.name, s.type, s.length, s.cols) for s in n.state],
                [(e.name, e.kind, e.direction, e.arity) for e in n.endpoints],
                ir.sample_rate,
                n.constants,
            )
            state = (
                [dataclasses.replace(s, type=widened.get(s.name, s.type)) for s in n.state]
                if widened
                else None
            )
            got = done[ids] = (widened, state)
        if got[1] is not None:
            n = dataclasses.replace(n, state=got[1])
            replaced = True
        nodes.append(n)
    got = dataclasses.replace(ir, nodes=nodes, settled=True)
    key = ir.__dict__.get("_key")
    if key is not None and not replaced:  # the same nodes: all of the key but its head is theirs
        got.__dict__["_key"] = (got._head(), *key[1:])
    ir.__dict__["_settled"] = got
    return got
