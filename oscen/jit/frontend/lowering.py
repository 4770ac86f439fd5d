"""The lowering: node methods, with the types the typing pass found, to the typed kernel IR.

:class:`NodeLowering` holds one node class's lowered methods (cached by function and argument
types); :class:`FunctionLowering` is the visitor that lowers one method, once: the types of its
locals and of what it returns are known before it starts (:mod:`.typing`), so it never goes round
again. It checks that what it assigns agrees with them; a disagreement is a bug of the typing
pass, reported as an internal error rather than compiled.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
from collections.abc import Callable
from typing import Any

from .. import kernel as k
from ..kernel import T
from .attributes import ArrayAttr, AttrInfo, EndpointAttr, ScalarAttr
from .builtins import MATH_CONSTANTS, lower_builtin, lower_math, math_name
from .errors import JitError, deep_recursion, too_deep
from .semantics import (
    BINOPS,
    CALLABLE_HINT,
    CMPOPS,
    COMPARISON_WORDS,
    FLIPPED,
    OPERATOR_WORDS,
    binary_type,
    exact_in_float,
    fold_binary,
    fold_compare,
    inexact_bounds,
    literal,
    logical,
    numeric_constant,
    short,
    tname,
)
from .sources import source_of
from .typing import Callee, FunctionTypes, NodeTyping
from .visitor import FunctionVisitor


class NodeLowering(NodeTyping):
    """Lowers the methods of one node class, given the types of the instance's attributes."""

    def __init__(
        self,
        cls: type,
        attrs: dict[str, AttrInfo],
        sample_rate: float,
        label: str = "",
        unsupported: dict[str, str] | None = None,
        constants: dict[str, float | int | bool] | None = None,
    ) -> None:
        super().__init__(cls, attrs, sample_rate, label, unsupported, constants)
        self._cache: dict[tuple[Any, tuple[T, ...]], k.KFunction] = {}
        self._in_progress: set[Any] = set()

    def process(self) -> k.KFunction:
        return self.method("process", (), first_param_value=self.sample_rate)

    def handler(self, port: str, arity: int) -> k.KFunction:
        return self.method(f"on_{port}", (T.F64,) * arity)

    def method(
        self,
        name: str,
        arg_types: tuple[T, ...],
        first_param_value: float | None = None,
        site: k.Site | None = None,
    ) -> k.KFunction:
        callee = self.callee_method(name, site)
        return self.lowered(callee, arg_types, first_param_value if callee.has_self else None, site)

    def function(self, func: Any, arg_types: tuple[T, ...], site: k.Site | None = None) -> k.KFunction:
        """A plain function (module-level, or a static method) called from node code."""
        return self.lowered(self.callee_function(func, site), arg_types, None, site)

    def lowered(
        self, callee: Callee, arg_types: tuple[T, ...], first_param_value: float | None, site: k.Site | None
    ) -> k.KFunction:
        with self._lock:
            key = (callee.identity, arg_types)
            if key in self._cache:
                return self._cache[key]
            if callee.identity in self._in_progress:
                shown = getattr(callee.func, "__name__", callee.name)
                raise JitError(
                    f"recursive call of {shown}() is not supported in compiled code", site, node=self.name
                )
            outermost = not self._in_progress
            self._in_progress.add(callee.identity)
            args = (callee.func, callee.name, arg_types, first_param_value, callee.has_self)
            try:
                if outermost:
                    with deep_recursion():
                        try:
                            fn = self._lower(*args)
                        except RecursionError:
                            raise too_deep(self.last_site, self.name) from None
                else:
                    fn = self._lower(*args)
            finally:
                self._in_progress.discard(callee.identity)
            self._cache[key] = fn
            return fn

    def _lower(
        self,
        func: Callable[..., Any],
        name: str,
        arg_types: tuple[T, ...],
        first: float | None,
        has_self: bool,
    ) -> k.KFunction:
        identity = name if has_self else func
        types = self.types_of(Callee(identity, func, name, has_self), arg_types, first)
        src = source_of(func, self.name)
        return FunctionLowering(self, src, name, arg_types, first, has_self, types).lower()


class FunctionLowering(FunctionVisitor):
    """Lowers one method, once, with the types of its locals given (statements give lists of
    kernel statements, expressions kernel expressions)."""

    owner: NodeLowering

    def __init__(
        self,
        owner: NodeLowering,
        src: Any,
        name: str,
        arg_types: tuple[T, ...],
        first_param_value: float | None,
        has_self: bool,
        types: FunctionTypes,
    ) -> None:
        super().__init__(owner, src, name, arg_types, first_param_value, has_self)
        self.types = types
        self.returns: T | None = None
        self.has_value_return = False
        self.tuple_returns: list[T] | None = None
        self.returns_hint = types.returns
        self.tuple_hint = list(types.tuple_returns) if types.tuple_returns is not None else None
        self.loop_depth = 0
        self.if_depth = 0
        self.temps: set[str] = set()
        self.calls: list[k.KFunction] = []

    # ------------------------------------------------------------------ driver
    def lower(self) -> k.KFunction:
        fdef = self.src.tree
        typed_params = self.parameters()
        self.local_types = dict(self.types.locals)
        self.local_types.update(typed_params)
        body = self.block(fdef.body)
        self.check_types()
        if self.has_value_return and self.returns is None:  # pragma: no cover - set with the flag
            self.returns = T.F64
        params = dict(typed_params)
        locals_ = {n: t for n, t in self.local_types.items() if n not in params}
        return k.KFunction(
            self.name,
            f"{self.owner.name}.{self.name}" if self.has_self else fdef.name,
            typed_params,
            locals_,
            body,
            self.returns if self.has_value_return else None,
            self.site(fdef),
            self.calls,
            tuple_returns=tuple(self.tuple_returns) if self.tuple_returns is not None else None,
        )

    def check_types(self) -> None:
        """The lowering found the types the typing pass gave it (else the code would be typed
        wrong: an internal error, not a compile)."""
        fdef = self.src.tree
        found = {n: t for n, t in self.local_types.items() if n not in self.temps}
        if self.types.error is not None:
            raise JitError(
                f"internal error of the compiler: the typing pass failed on {self.name}() "
                f"({self.types.error}) but the lowering did not",
                self.site(fdef),
            ) from self.types.error
        if (
            found != self.types.locals
            or self.returns != self.returns_hint
            or self.tuple_returns != self.tuple_hint
        ):
            differ = sorted(
                n for n in found.keys() | self.types.locals.keys() if found.get(n) != self.types.locals.get(n)
            )
            raise JitError(
                f"internal error of the compiler: the typing pass and the lowering of {self.name}() "
                f"disagree on the types of {', '.join(differ) or 'its returned values'}",
                self.site(fdef),
            )

    # ------------------------------------------------------------------ values
    def temp(self, t: T) -> str:
        name = f"_t{len(self.temps) + 1}"
        self.temps.add(name)
        self.local_types[name] = t
        return name

    def coerce(self, e: k.Expr, t: T, node: ast.AST) -> k.Expr:
        if e.type == t:
            return e
        if t == T.F64:
            if isinstance(e, k.Const):
                return k.Const(T.F64, float(e.value))
            return k.Convert(T.F64, e, self.site(node))
        if t == T.I64 and e.type == T.BOOL:
            if isinstance(e, k.Const):
                return k.Const(T.I64, int(e.value))
            return k.Convert(T.I64, e, self.site(node))
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
        zero = k.Const(e.type, 0.0 if e.type == T.F64 else 0)
        return k.Compare(T.BOOL, "!=", e, zero)

    # ------------------------------------------------------------------ statements
    def block(self, stmts: list[ast.stmt]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for s in stmts:
            self.owner.last_site = self.site(s)
            out.extend(self.visit(s))
        return out

    def visit_Assign(self, s: ast.Assign) -> list[k.Stmt]:
        if len(s.targets) == 1:
            return self.assign(s.targets[0], s.value, s)
        site = self.site(s)
        tmp_val = self.expr(s.value)
        tmp = self.temp(tmp_val.type)
        out: list[k.Stmt] = [k.Assign(site, k.Local(tmp_val.type, tmp), tmp_val)]
        for target in s.targets:
            out.extend(self.assign_value(target, k.Local(tmp_val.type, tmp), s))
        return out

    def visit_AnnAssign(self, s: ast.AnnAssign) -> list[k.Stmt]:
        if s.value is None:
            return []
        return self.assign(s.target, s.value, s)

    def visit_If(self, s: ast.If) -> list[k.Stmt]:
        cond = self.truth(self.expr(s.test), s.test)
        if isinstance(cond, k.Const):  # a constant condition: only the branch taken is compiled
            return self.block(s.body if cond.value else s.orelse)
        self.if_depth += 1
        body, orelse = self.block(s.body), self.block(s.orelse)
        self.if_depth -= 1
        return [k.If(self.site(s), cond, body, orelse)]

    def visit_While(self, s: ast.While) -> list[k.Stmt]:
        if s.orelse:
            raise self.error(s, "while ... else")
        cond = self.truth(self.expr(s.test), s.test)
        self.loop_depth += 1
        body = self.block(s.body)
        self.loop_depth -= 1
        return [k.While(self.site(s), cond, body)]

    def visit_For(self, s: ast.For) -> list[k.Stmt]:
        return [self.for_range(s)]

    def visit_Break(self, s: ast.Break) -> list[k.Stmt]:
        if not self.loop_depth:
            raise self.error(s, "break outside a loop")
        return [k.Break(self.site(s))]

    def visit_Continue(self, s: ast.Continue) -> list[k.Stmt]:
        if not self.loop_depth:
            raise self.error(s, "continue outside a loop")
        return [k.Continue(self.site(s))]

    def visit_Return(self, s: ast.Return) -> list[k.Stmt]:
        site = self.site(s)
        if s.value is None or (isinstance(s.value, ast.Constant) and s.value.value is None):
            return [k.Return(site, None)]
        if isinstance(s.value, ast.Tuple):
            return [self.return_tuple(s, s.value)]
        if self.tuple_returns is not None:
            raise self.error(s, "returning a tuple on some paths and a single value on others")
        value = self.expr(s.value)
        self.has_value_return = True
        self.returns = value.type if self.returns is None else k.join(self.returns, value.type)
        # Every return gives the function's one type: the join over all returns (typed first).
        target = self.returns if self.returns_hint is None else k.join(self.returns_hint, self.returns)
        return [k.Return(site, self.coerce(value, target, s))]

    def visit_Pass(self, s: ast.Pass) -> list[k.Stmt]:
        return []

    def visit_Expr(self, s: ast.Expr) -> list[k.Stmt]:
        if isinstance(s.value, ast.Constant):  # docstring or bare literal
            return []
        emitted = self.maybe_emit(s.value)
        if emitted is not None:
            return [emitted]
        if isinstance(s.value, ast.Call):
            return [k.ExprStmt(self.site(s), self.expr(s.value, allow_void=True))]
        self.expr(s.value)
        return []

    def visit_Assert(self, s: ast.Assert) -> list[k.Stmt]:
        site = self.site(s)
        cond = self.truth(self.expr(s.test), s.test)
        msg = ast.unparse(s.msg) if s.msg is not None else ast.unparse(s.test)
        return [k.If(site, k.Unary(T.BOOL, "not", cond, site), [k.Raise(site, "AssertionError", msg)], [])]

    def return_tuple(self, s: ast.Return, value: ast.Tuple) -> k.Stmt:
        """``return a, b``: each element typed as the join over every return (typed first)."""
        site = self.site(s)
        if self.has_value_return:
            raise self.error(s, "returning a tuple on some paths and a single value on others")
        if any(isinstance(x, ast.Starred) for x in value.elts) or not value.elts:
            raise self.error(s, "returning an empty or starred tuple")
        values = [self.expr(x) for x in value.elts]
        if self.tuple_returns is not None and len(self.tuple_returns) != len(values):
            raise JitError(f"{self.name}() returns tuples of different lengths", site)
        if self.tuple_returns is None:
            self.tuple_returns = [v.type for v in values]
        else:
            self.tuple_returns = [k.join(a, v.type) for a, v in zip(self.tuple_returns, values, strict=True)]
        hint = self.tuple_hint or self.tuple_returns
        targets = [k.join(a, b) for a, b in zip(self.tuple_returns, hint, strict=True)]
        return k.ReturnTuple(site, [self.coerce(v, t, s) for v, t in zip(values, targets, strict=True)])

    def unpack_call(self, target: ast.Tuple, value_node: ast.Call, s: ast.stmt) -> list[k.Stmt] | None:
        """``a, b = helper(...)`` for a helper that returns a tuple; None if the call is not one."""
        call = self.call(value_node, allow_void=True, allow_tuple=True)
        if not (isinstance(call, k.Call) and call.func.tuple_returns is not None):
            return None
        types_ = call.func.tuple_returns
        if len(types_) != len(target.elts):
            raise JitError(
                f"unpacking {len(types_)} values returned by {short(value_node.func)}() into {len(target.elts)} names",
                self.site(s),
            )
        temps = [k.Local(t, self.temp(t)) for t in types_]
        out: list[k.Stmt] = [k.UnpackCall(self.site(s), call, temps)]
        for t_node, tmp in zip(target.elts, temps, strict=True):
            out.extend(self.assign_value(t_node, tmp, s))
        return out

    def assign(self, target: ast.expr, value_node: ast.expr, s: ast.stmt) -> list[k.Stmt]:
        if isinstance(target, ast.Tuple) and isinstance(value_node, ast.Call):
            unpacked = self.unpack_call(target, value_node, s)
            if unpacked is not None:
                return unpacked
        if isinstance(target, ast.Tuple):
            if not isinstance(value_node, ast.Tuple) or len(value_node.elts) != len(target.elts):
                raise self.error(
                    s, "unpacking anything but a tuple of the same length", "write one assignment per value"
                )
            values = [self.expr(v) for v in value_node.elts]
            out: list[k.Stmt] = []
            temps = []
            for v in values:
                tmp = self.temp(v.type)
                out.append(k.Assign(self.site(s), k.Local(v.type, tmp), v))
                temps.append(k.Local(v.type, tmp))
            for t_node, tmp_local in zip(target.elts, temps, strict=True):
                out.extend(self.assign_value(t_node, tmp_local, s))
            return out
        return self.assign_value(target, self.expr(value_node), s)

    def assign_value(self, target: ast.expr, value: k.Expr, s: ast.stmt) -> list[k.Stmt]:
        site = self.site(s)
        if isinstance(target, ast.Name):
            name = target.id
            if name in self.const_params:
                raise self.error(s, f"assigning to the parameter {name!r}")
            t = self.local_types.get(name)
            t = value.type if t is None else k.join(t, value.type)
            self.local_types[name] = t
            if isinstance(value, k.Const) and self.store_counts.get(name) == 1:
                # Assigned once, from a constant: reads fold (a node's mode switch costs nothing).
                self.const_locals[name] = k.Const(t, value.value)
            return [k.Assign(site, k.Local(t, name), self.coerce(value, t, s))]
        if isinstance(target, ast.Attribute) and self.is_self(target.value):
            info = self.owner.attrs.get(target.attr)
            if isinstance(info, ScalarAttr):
                if info.type == T.F64 and value.type != T.F64:
                    value = self.coerce(value, T.F64, s)
                elif info.type == T.I64 and value.type == T.BOOL:
                    value = self.coerce(value, T.I64, s)
                elif info.type != value.type:
                    raise JitError(
                        f"attribute self.{target.attr} is {tname(info.type)} but is assigned a {tname(value.type)}; "
                        "an attribute keeps the type it had in __init__",
                        site,
                    )
                return [k.Assign(site, k.Attr(info.type, target.attr), value)]
            if isinstance(info, EndpointAttr):
                if info.kind == "out":
                    return [k.Assign(site, k.Attr(T.F64, target.attr), self.coerce(value, T.F64, s))]
                raise self.error(
                    s, f"assigning to the input endpoint self.{target.attr}", "inputs are read-only"
                )
            if isinstance(info, ArrayAttr):
                raise self.error(
                    s, f"replacing the array self.{target.attr}", "write its elements: self.x[i] = ..."
                )
            if target.attr in self.owner.unsupported:
                raise JitError(f"self.{target.attr} is {self.owner.unsupported[target.attr]}", site)
            raise JitError(
                f"self.{target.attr} is not an attribute set in __init__ (new attributes cannot be created in compiled code)",
                site,
            )
        if isinstance(target, ast.Subscript):
            array, index = self.array_index(target)
            info = self.owner.attrs[array]
            assert isinstance(info, ArrayAttr)
            if info.type == T.F64:
                value = self.coerce(value, T.F64, s)
            elif value.type == T.F64:
                raise JitError(f"storing a float into the int array self.{array}", site)
            else:
                value = self.coerce(value, T.I64, s)
            return [k.ArrayStore(site, array, index, value)]
        raise self.error(s, f"assigning to {ast.unparse(target)}")

    def visit_AugAssign(self, s: ast.AugAssign) -> list[k.Stmt]:
        site = self.site(s)
        op = BINOPS.get(type(s.op))
        if op is None:
            raise self.error(s, f"the operator {OPERATOR_WORDS.get(type(s.op), 'used here')}")
        target = s.target
        if isinstance(target, ast.Subscript):
            array, index = self.array_index(target)
            info = self.owner.attrs[array]
            assert isinstance(info, ArrayAttr)
            idx_tmp = self.temp(T.I64)
            load = k.ArrayLoad(info.type, array, k.Local(T.I64, idx_tmp), site)
            value = self.binary(op, load, self.expr(s.value), s)
            out: list[k.Stmt] = [k.Assign(site, k.Local(T.I64, idx_tmp), index)]
            if info.type == T.F64:
                value = self.coerce(value, T.F64, s)
            elif value.type == T.F64:
                raise JitError(f"storing a float into the int array self.{array}", site)
            out.append(k.ArrayStore(site, array, k.Local(T.I64, idx_tmp), value))
            return out
        current = self.expr(target)
        return self.assign_value(target, self.binary(op, current, self.expr(s.value), s), s)

    def for_range(self, s: ast.For) -> k.Stmt:
        site = self.site(s)
        if s.orelse:
            raise self.error(s, "for ... else")
        it = s.iter
        table = self.constant_sequence(it)
        if table is not None:
            return self.for_table(s, table)
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
        bounds = [self.coerce(b, T.I64, s) for b in bounds]
        if len(bounds) == 1:
            start, stop, step = k.Const(T.I64, 0), bounds[0], k.Const(T.I64, 1)
        elif len(bounds) == 2:
            start, stop, step = bounds[0], bounds[1], k.Const(T.I64, 1)
        else:
            start, stop, step = bounds
        if isinstance(step, k.Const) and step.value == 0:
            raise JitError("range() step must not be zero", site)
        name = s.target.id
        t = self.local_types.get(name)
        t = T.I64 if t is None else k.join(t, T.I64)
        self.local_types[name] = t
        if t != T.I64:
            raise JitError(f"loop variable {name!r} is also assigned floats; use another name", site)
        self.loop_depth += 1
        body = self.block(s.body)
        self.loop_depth -= 1
        counter, limit, stride = self.temp(T.I64), self.temp(T.I64), self.temp(T.I64)
        return k.ForRange(site, k.Local(T.I64, name), start, stop, step, body, counter, limit, stride)

    def for_table(self, s: ast.For, table: tuple[k.Const, ...]) -> k.Stmt:
        """``for c in CONSTANTS:``: a loop over hidden indices, ``c`` the element of each."""
        site = self.site(s)
        if not isinstance(s.target, ast.Name):
            raise self.error(s, "a for target that is not a plain name")
        t = table[0].type
        for c in table[1:]:
            t = k.join(t, c.type)
        name = s.target.id
        var_t = self.local_types.get(name)
        var_t = t if var_t is None else k.join(var_t, t)
        self.local_types[name] = var_t
        values = tuple(self.coerce(c, t, s).value for c in table)  # type: ignore[attr-defined]
        index = self.temp(T.I64)
        element = k.ConstTable(t, values, k.Local(T.I64, index), site)
        self.loop_depth += 1
        body = [k.Assign(site, k.Local(var_t, name), self.coerce(element, var_t, s)), *self.block(s.body)]
        self.loop_depth -= 1
        counter, limit, stride = self.temp(T.I64), self.temp(T.I64), self.temp(T.I64)
        one, zero = k.Const(T.I64, 1), k.Const(T.I64, 0)
        return k.ForRange(
            site, k.Local(T.I64, index), zero, k.Const(T.I64, len(values)), one, body, counter, limit, stride
        )

    def maybe_emit(self, call: ast.expr) -> k.Stmt | None:
        if not (
            isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "emit"
        ):
            return None
        port = call.func.value
        if not (isinstance(port, ast.Attribute) and self.is_self(port.value)):
            return None
        info = self.owner.attrs.get(port.attr)
        if not (isinstance(info, EndpointAttr) and info.kind == "event_out"):
            raise JitError(
                f"self.{port.attr} is not an event output; only event outputs have emit()", self.site(call)
            )
        if call.keywords:
            raise self.error(call, "keyword arguments to emit()")
        from ...graph.endpoints import MAX_EVENT_FIELDS

        if len(call.args) > MAX_EVENT_FIELDS:
            raise JitError(f"an event carries at most {MAX_EVENT_FIELDS} fields", self.site(call))
        args = [self.coerce(self.expr(a), T.F64, a) for a in call.args]
        return k.Emit(self.site(call), port.attr, args)

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
            value = self.global_value(n)
            const = numeric_constant(value)
            if const is not None:
                return const
            raise self.error(
                e,
                f"the global {n!r} ({type(value).__name__}) as a value",
                "only numeric constants, math and a few builtins",
            )
        # A local read before any assignment in source order (e.g. assigned later in a loop):
        # the typing pass typed it; without one, it is typed by what it is assigned.
        if n in self.store_counts:
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
                raise self.error(
                    e,
                    f"reading the event endpoint self.{e.attr}",
                    "handle events in on_<name>, emit with .emit()",
                )
            if isinstance(info, ArrayAttr):
                raise self.error(e, f"the array self.{e.attr} as a value", "index it: self.x[i]")
            const = numeric_constant(self.class_attribute(e.attr))
            if const is not None:
                return const
            if e.attr in self.owner.unsupported:
                raise JitError(f"self.{e.attr} is {self.owner.unsupported[e.attr]}", self.site(e))
            raise JitError(
                f"self.{e.attr} is not a number, bool or numpy array attribute set in __init__, "
                "nor a numeric class constant",
                self.site(e),
            )
        base = self.module_of(e.value)
        if base is not None:
            if base is math and e.attr in MATH_CONSTANTS:
                return k.Const(T.F64, MATH_CONSTANTS[e.attr])
            const = numeric_constant(self.module_attribute(base, e.attr))
            if const is not None:
                return const
            raise self.error(e, f"{ast.unparse(e)} as a value")
        raise self.error(e, f"the attribute access {ast.unparse(e)}")

    def visit_BinOp(self, e: ast.BinOp) -> k.Expr:
        op = BINOPS.get(type(e.op))
        if op is None:
            raise self.error(e, f"the operator {OPERATOR_WORDS.get(type(e.op), 'used here')}")
        return self.binary(op, self.expr(e.left), self.expr(e.right), e)

    def visit_UnaryOp(self, e: ast.UnaryOp) -> k.Expr:
        return self.unary(e)

    def visit_Compare(self, e: ast.Compare) -> k.Expr:
        return self.compare(e)

    def visit_BoolOp(self, e: ast.BoolOp) -> k.Expr:
        return self.boolop(e)

    def visit_IfExp(self, e: ast.IfExp) -> k.Expr:
        cond = self.truth(self.expr(e.test), e.test)
        if isinstance(cond, k.Const):
            return self.expr(e.body if cond.value else e.orelse)
        a, b = self.expr(e.body), self.expr(e.orelse)
        t = k.join(a.type, b.type)
        return k.Select(t, cond, self.coerce(a, t, e.body), self.coerce(b, t, e.orelse))

    def visit_Subscript(self, e: ast.Subscript) -> k.Expr:
        table = self.constant_sequence(e.value)
        if table is not None:
            return self.table_element(table, e)
        array, index = self.array_index(e)
        info = self.owner.attrs[array]
        assert isinstance(info, ArrayAttr)
        return k.ArrayLoad(info.type, array, index, self.site(e))

    def visit_Call(self, e: ast.Call, allow_void: bool = False) -> k.Expr:
        return self.call(e, allow_void)

    def table_element(self, table: tuple[k.Const, ...], e: ast.Subscript) -> k.Expr:
        if isinstance(e.slice, (ast.Slice, ast.Tuple)):
            raise self.error(e, "slices of a constant sequence", "index one element at a time")
        index = self.expr(e.slice)
        if index.type == T.F64:
            raise JitError("a constant sequence indexed by a float; use int(...)", self.site(e))
        t = table[0].type
        for c in table[1:]:
            t = k.join(t, c.type)
        values = tuple(self.coerce(c, t, e).value for c in table)  # type: ignore[attr-defined]
        index = self.coerce(index, T.I64, e)
        if isinstance(index, k.Const) and -len(values) <= int(index.value) < len(values):
            return k.Const(t, values[int(index.value)])
        return k.ConstTable(t, values, index, self.site(e))

    def array_index(self, e: ast.Subscript) -> tuple[str, k.Expr]:
        if isinstance(e.value, ast.Subscript) and not isinstance(e.slice, (ast.Slice, ast.Tuple)):
            # self.grid[i][j]: the same element as self.grid[i, j]
            inner = e.value
            if isinstance(inner.value, ast.Attribute) and self.is_self(inner.value.value):
                info = self.owner.attrs.get(inner.value.attr)
                if isinstance(info, ArrayAttr) and info.cols:
                    return self.index_2d(inner.value.attr, info, inner.slice, e.slice, e)
        if not (isinstance(e.value, ast.Attribute) and self.is_self(e.value.value)):
            raise self.error(
                e,
                f"indexing {ast.unparse(e.value)}",
                "only numpy array attributes of the node can be indexed",
            )
        name = e.value.attr
        info = self.owner.attrs.get(name)
        if not isinstance(info, ArrayAttr) and name in self.owner.unsupported:
            raise JitError(f"self.{name} is {self.owner.unsupported[name]}", self.site(e))
        if not isinstance(info, ArrayAttr):
            raise self.error(e, f"indexing self.{name}, which is not a 1-D float64/int64 numpy array")
        if info.cols:
            if isinstance(e.slice, ast.Tuple) and len(e.slice.elts) == 2:
                row, col = e.slice.elts
                if not any(isinstance(x, (ast.Slice, ast.Starred)) for x in (row, col)):
                    return self.index_2d(name, info, row, col, e)
            raise self.error(
                e, f"indexing the 2-D array self.{name} by anything but two ints", "write self.x[i, j]"
            )
        if isinstance(e.slice, (ast.Slice, ast.Tuple)):
            raise self.error(e, "slices and multi-dimensional indexing", "index one element at a time")
        index = self.expr(e.slice)
        if index.type == T.F64:
            raise JitError(f"array index into self.{name} is a float; use int(...)", self.site(e))
        return name, self.coerce(index, T.I64, e)

    def index_2d(
        self, name: str, info: ArrayAttr, row: ast.expr, col: ast.expr, e: ast.Subscript
    ) -> tuple[str, k.Expr]:
        """The flat (row-major) index of ``self.name[row, col]``: each index with Python's
        negative indices and bounds; an index out of its range gives the length, which the
        array access then refuses with IndexError, as numpy would."""
        assert info.cols
        rows, cols = info.length // info.cols, info.cols
        site = self.site(e)
        parts = []
        for node in (row, col):
            v = self.expr(node)
            if v.type == T.F64:
                raise JitError(f"array index into self.{name} is a float; use int(...)", self.site(node))
            parts.append(self.coerce(v, T.I64, e))
        i, j = k.Local(T.I64, self.temp(T.I64)), k.Local(T.I64, self.temp(T.I64))
        zero = k.Const(T.I64, 0)

        def normalized(x: k.Local, n: int) -> k.Expr:
            neg = k.Compare(T.BOOL, "<", x, zero)
            return k.Select(T.I64, neg, k.Binary(T.I64, "+", x, k.Const(T.I64, n), site), x)

        ni, nj = k.Local(T.I64, self.temp(T.I64)), k.Local(T.I64, self.temp(T.I64))

        def within(x: k.Local, n: int) -> k.Expr:
            return k.Logical(
                T.BOOL, "and", k.Compare(T.BOOL, ">=", x, zero), k.Compare(T.BOOL, "<", x, k.Const(T.I64, n))
            )

        flat = k.Binary(T.I64, "+", k.Binary(T.I64, "*", ni, k.Const(T.I64, cols), site), nj, site)
        ok = k.Logical(T.BOOL, "and", within(ni, rows), within(nj, cols))
        index: k.Expr = k.Select(T.I64, ok, flat, k.Const(T.I64, info.length))
        index = k.Let(T.I64, nj.name, normalized(j, cols), index)
        index = k.Let(T.I64, ni.name, normalized(i, rows), index)
        index = k.Let(T.I64, j.name, parts[1], index)
        index = k.Let(T.I64, i.name, parts[0], index)
        return name, index

    def binary(self, op: str, a: k.Expr, b: k.Expr, node: ast.AST) -> k.Expr:
        site = self.site(node)
        t = binary_type(op, a, b, site)  # the refusals first
        folded = fold_binary(op, a, b)
        if folded is not None:
            return folded
        if op in ("<<", ">>", "&", "|", "^"):
            if t == T.BOOL:
                return k.Binary(T.BOOL, op, a, b, site)
            return k.Binary(T.I64, op, self.coerce(a, T.I64, node), self.coerce(b, T.I64, node), site)
        if op == "/":
            if a.type.is_int and b.type.is_int:  # int / int is correctly rounded in Python
                return k.Binary(T.F64, "/", self.exact_float(a, node), self.exact_float(b, node), site)
            return k.Binary(T.F64, "/", self.coerce(a, T.F64, node), self.coerce(b, T.F64, node), site)
        if op == "**":
            if t == T.F64:
                if isinstance(b, k.Const) and float(b.value) == 2.0:
                    # x * x, with pow's OverflowError when a finite x squares to infinity
                    return k.Binary(T.F64, "sq", self.coerce(a, T.F64, node), k.Const(T.F64, 2.0), site)
                return k.MathCall(
                    T.F64, "pypow", [self.coerce(a, T.F64, node), self.coerce(b, T.F64, node)], site
                )
            assert isinstance(b, k.Const)
            return k.Binary(T.I64, "**", self.coerce(a, T.I64, node), k.Const(T.I64, int(b.value)), site)
        return k.Binary(t, op, self.coerce(a, t, node), self.coerce(b, t, node), site)

    def unary(self, e: ast.UnaryOp) -> k.Expr:
        site = self.site(e)
        operand = e.operand
        if isinstance(e.op, ast.USub) and isinstance(operand, ast.Constant) and type(operand.value) is int:
            # -9223372036854775808 is one literal to the reader (and to Python's value range)
            const = literal(-operand.value, site)
            assert const is not None
            return const
        v = self.expr(e.operand)
        if isinstance(e.op, ast.Not):
            cond = self.truth(v, e)
            if isinstance(cond, k.Const):
                return k.Const(T.BOOL, not cond.value)
            return k.Unary(T.BOOL, "not", cond, site)
        if isinstance(e.op, ast.USub):
            if isinstance(v, k.Const):
                if v.type == T.F64:
                    return k.Const(T.F64, -float(v.value))
                const = literal(-int(v.value), site)
                assert const is not None
                return const
            t = T.F64 if v.type == T.F64 else T.I64
            return k.Unary(t, "neg", self.coerce(v, t, e), site)
        if isinstance(e.op, ast.UAdd):
            return v if v.type != T.BOOL else self.coerce(v, T.I64, e)
        if isinstance(e.op, ast.Invert):
            if v.type == T.F64:
                raise JitError("~ on a float (Python raises TypeError)", site)
            return k.Unary(T.I64, "invert", self.coerce(v, T.I64, e), site)
        raise self.error(e, f"the unary operator in `{short(e)}`")

    def compare(self, e: ast.Compare) -> k.Expr:
        if len(e.ops) == 1 and isinstance(e.ops[0], (ast.Is, ast.IsNot)):
            return self.compare_none(e)
        ops = []
        for op in e.ops:
            sym = CMPOPS.get(type(op))
            if sym is None:
                raise self.error(
                    e,
                    f"the comparison `{COMPARISON_WORDS.get(type(op), short(e))}`",
                    "only < <= > >= == != (and `is None` / `is not None`)",
                )
            ops.append(sym)
        left = self.expr(e.left)
        operands = [self.expr(c) for c in e.comparators]
        return self.chain(left, list(zip(ops, operands, strict=True)), e)

    def chain(self, left: k.Expr, rest: list[tuple[str, k.Expr]], e: ast.Compare) -> k.Expr:
        """``left op1 b op2 c ...`` as Python runs it: b once, c only if ``left op1 b`` held."""
        sym, right = rest[0]
        if (
            len(rest) > 1
            and not isinstance(left, (k.Const, k.Local))
            and not isinstance(right, (k.Const, k.Local))
        ):
            tmp = self.temp(left.type)  # the left operand is evaluated first
            return k.Let(T.BOOL, tmp, left, self.chain(k.Local(left.type, tmp), rest, e))
        if len(rest) > 1 and not isinstance(right, (k.Const, k.Local)):
            tmp = self.temp(right.type)
            inner = self.chain(left, [(sym, k.Local(right.type, tmp)), *rest[1:]], e)
            return k.Let(T.BOOL, tmp, right, inner)
        first = self.compare_pair(sym, left, right, e)
        if len(rest) == 1:
            return first
        return logical("and", first, self.chain(right, rest[1:], e))

    def compare_pair(self, sym: str, left: k.Expr, right: k.Expr, e: ast.Compare) -> k.Expr:
        if left.type == T.BOOL and right.type == T.BOOL:
            t = T.BOOL
        elif T.F64 in (left.type, right.type):
            t = T.F64
        else:
            t = T.I64
        folded = fold_compare(sym, left, right)
        if folded is not None:
            return folded
        if t == T.F64 and isinstance(right, k.Const) and right.type == T.I64 and not exact_in_float(right):
            return self.compare_inexact(sym, self.coerce(left, T.F64, e), int(right.value))
        if t == T.F64 and isinstance(left, k.Const) and left.type == T.I64 and not exact_in_float(left):
            return self.compare_inexact(FLIPPED[sym], self.coerce(right, T.F64, e), int(left.value))
        if t == T.F64 and (left.type == T.I64) != (right.type == T.I64):
            # Python compares an int with a float exactly: the codegen does too.
            if left.type == T.I64 and not isinstance(left, k.Const):
                return k.Compare(
                    T.BOOL, sym, k.Convert(T.F64, left, self.site(e), mode="exact"), self.coerce(right, t, e)
                )
            if right.type == T.I64 and not isinstance(right, k.Const):
                return k.Compare(
                    T.BOOL, sym, self.coerce(left, t, e), k.Convert(T.F64, right, self.site(e), mode="exact")
                )
            left, right = self.exact_float(left, e), self.exact_float(right, e)
        return k.Compare(T.BOOL, sym, self.coerce(left, t, e), self.coerce(right, t, e))

    def compare_inexact(self, sym: str, f: k.Expr, c: int) -> k.Expr:
        """``f sym c`` for a float ``f`` and an int constant ``c`` that no float equals, exactly as
        Python compares them: against the two floats around ``c`` (``==``/``!=`` fold earlier)."""
        lo, hi = inexact_bounds(c)
        if sym in ("<", "<="):
            return k.Compare(T.BOOL, "<=", f, k.Const(T.F64, lo))
        return k.Compare(T.BOOL, ">=", f, k.Const(T.F64, hi))

    def exact_float(self, v: k.Expr, node: ast.AST) -> k.Expr:
        """An int as a float where Python would use its exact value: refused beyond 2**53."""
        if v.type == T.F64:
            return v
        if isinstance(v, k.Const):
            if not exact_in_float(v):
                raise JitError(
                    "an int constant beyond 2**53 compared with or divided as a float", self.site(node)
                )
            return k.Const(T.F64, float(v.value))
        if v.type == T.BOOL:
            return self.coerce(v, T.F64, node)
        return k.Convert(T.F64, v, self.site(node), mode="exact")

    def boolop(self, e: ast.BoolOp) -> k.Expr:
        op = "and" if isinstance(e.op, ast.And) else "or"
        values: list[k.Expr] = []
        for v_node in e.values:
            v = self.expr(v_node)
            values.append(v)
            # a constant that decides (`x is not None and ...` with x None): the rest is never
            # evaluated in Python, so it is not compiled (it may not even be compilable)
            if isinstance(v, k.Const) and bool(v.value) == (op == "or"):
                break
        if len(values) == 1:
            return values[0]
        if all(v.type == T.BOOL for v in values):
            result = values[0]
            for v in values[1:]:
                result = logical(op, result, v)
            return result
        # Value form: `a or b` is a if a is truthy else b (Python returns an operand, not a bool).
        t = values[0].type
        for v in values[1:]:
            t = k.join(t, v.type)
        result = self.coerce(values[-1], t, e)
        for v in reversed(values[:-1]):
            tmp = self.temp(t)
            loc = k.Local(t, tmp)
            truthy = self.truth(loc, e)  # converting to the common type keeps truthiness
            sel = k.Select(t, truthy, loc, result) if op == "or" else k.Select(t, truthy, result, loc)
            result = k.Let(t, tmp, self.coerce(v, t, e), sel)
        return result

    def call(self, e: ast.Call, allow_void: bool, allow_tuple: bool = False) -> k.Expr:
        site = self.site(e)
        if any(isinstance(a, ast.Starred) for a in e.args):
            raise self.error(e, "starred arguments")
        f = e.func
        # self.helper(...), a static method through self
        if isinstance(f, ast.Attribute) and self.is_self(f.value):
            if isinstance(self.owner.attrs.get(f.attr), EndpointAttr):
                raise self.error(e, f"calling the endpoint self.{f.attr}")
            target = getattr(self.owner.cls, f.attr, None)
            if target is None or not callable(target):
                raise JitError(f"{self.owner.name} has no method {f.attr}()", site)
            static = isinstance(inspect.getattr_static(self.owner.cls, f.attr, None), staticmethod)
            args = self.bind_arguments(target, not static, e, f"self.{f.attr}")
            callee = self.owner.method(f.attr, tuple(a.type for a in args), site=site)
            return self.call_of(callee, args, e, allow_void, f"self.{f.attr}", allow_tuple)
        # helper(...), module.helper(...): plain Python functions
        func = self.plain_function(f)
        if func is not None:
            shown = ast.unparse(f)
            args = self.bind_arguments(func, False, e, shown)
            callee = self.owner.function(func, tuple(a.type for a in args), site)
            return self.call_of(callee, args, e, allow_void, shown, allow_tuple)
        if e.keywords:
            raise self.error(
                e, "keyword arguments to a builtin or math function", "pass arguments by position"
            )
        if isinstance(f, ast.Attribute) and f.attr == "emit":
            raise self.error(e, "emit() inside an expression", "call it as a statement")
        # math.f(...)
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
        raise self.error(e, f"calling {ast.unparse(f)}", CALLABLE_HINT)

    def call_of(
        self,
        callee: k.KFunction,
        args: list[k.Expr],
        e: ast.Call,
        allow_void: bool,
        shown: str,
        allow_tuple: bool = False,
    ) -> k.Expr:
        site = self.site(e)
        self.calls.append(callee)
        if callee.tuple_returns is not None and not (allow_tuple or allow_void):
            raise JitError(
                f"{shown}() returns a tuple, which compiled code can only unpack: a, b = {shown}(...)", site
            )
        if callee.returns is None and not allow_void:
            raise JitError(f"{shown}() returns nothing but its value is used", site)
        return k.Call(callee.returns or T.F64, callee, args, site, conditional=self.if_depth > 0)
