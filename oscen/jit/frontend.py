"""The frontend: node methods, read from their source, lowered to the typed kernel IR.

Modelled on Triton's code generator: an AST walk that resolves only allowed globals (numeric
constants, ``math``, a few builtins), types every expression, and reports each unsupported construct
with its file and line. Nothing outside the subset is guessed at: it raises :class:`JitError`.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import struct
import sys
import textwrap
import threading
import types
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import kernel as k
from .kernel import T

MATH_F64 = {
    "sin", "cos", "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh", "acosh",
    "atanh", "exp", "exp2", "expm1", "log2", "log10", "log1p", "pow", "sqrt", "cbrt", "fmod",
    "hypot", "degrees", "radians", "copysign", "fabs",
}  # fmt: skip
MATH_PREDICATES = {"isnan", "isinf", "isfinite"}
MATH_TO_INT = {"floor", "ceil", "trunc"}
MATH_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf, "nan": math.nan}
_MATH_BY_ID = {id(getattr(math, n)): n for n in MATH_F64 | MATH_PREDICATES | MATH_TO_INT | {"log"}}
_BUILTINS = {"min", "max", "abs", "int", "float", "round", "len", "bool", "range"}


class JitError(Exception):
    """Node code the JIT cannot compile. Names the node, the file:line and the construct."""

    def __init__(self, message: str, site: k.Site | None = None, node: str = "") -> None:
        self.site = site
        self.node = node or (site.node if site else "")
        self.reason = message
        where = f"{site.file}:{site.line}: " if site else ""
        who = f"{self.node}: " if self.node else ""
        super().__init__(f"{where}{who}{message}")


@dataclass(frozen=True)
class ScalarAttr:
    type: T


@dataclass(frozen=True)
class ArrayAttr:
    type: T
    length: int
    cols: int | None = None  # 2-D: the row length (row-major, length = rows * cols)


@dataclass(frozen=True)
class EndpointAttr:
    kind: str  # "stream_in", "value_in", "out", "event_in", "event_out"


AttrInfo = ScalarAttr | ArrayAttr | EndpointAttr


@dataclass
class _Source:
    tree: ast.FunctionDef
    file: str
    line_offset: int
    globals: dict[str, Any]


_SOURCE_CACHE: weakref.WeakKeyDictionary[Callable[..., Any], _Source] = weakref.WeakKeyDictionary()
"""Parsed methods by function object. Not by code object: code objects compare equal across a
reload of a module in which only a global changed, and the cached entry would carry the old
module's globals (interpreted ``GAIN = 0.8``, compiled the stale 0.5)."""

COMPILE_RECURSION_LIMIT = 20000
"""Python frames the frontend and the renderer may use while they lower one graph. Lowering is a
recursive walk (a 1000-term sum nests 1000 deep, a chain of 200 helpers some 3000 frames); beyond
this, the compiler refuses with a JitError naming the line instead of a RecursionError."""

_DEPTH_LOCK = threading.Lock()
_DEPTH_USERS = 0
_DEPTH_SAVED = 0


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Raise the interpreter's recursion limit to COMPILE_RECURSION_LIMIT while compiling.

    The limit is process-wide, so nested and concurrent compiles are counted: the first raises
    it, the last puts the previous value back (never lowering a limit someone else raised)."""
    global _DEPTH_USERS, _DEPTH_SAVED
    with _DEPTH_LOCK:
        if _DEPTH_USERS == 0:
            _DEPTH_SAVED = sys.getrecursionlimit()
            if _DEPTH_SAVED < COMPILE_RECURSION_LIMIT:
                sys.setrecursionlimit(COMPILE_RECURSION_LIMIT)
        _DEPTH_USERS += 1
    try:
        yield
    finally:
        with _DEPTH_LOCK:
            _DEPTH_USERS -= 1
            if _DEPTH_USERS == 0 and sys.getrecursionlimit() == max(_DEPTH_SAVED, COMPILE_RECURSION_LIMIT):
                sys.setrecursionlimit(_DEPTH_SAVED)


def too_deep(site: k.Site | None, node: str = "") -> JitError:
    """The refusal for code whose nesting exceeds what the compiler's recursive walk can take."""
    return JitError(
        "code nested too deeply for the compiler (more than about "
        f"{COMPILE_RECURSION_LIMIT // 10} levels of expressions or helper calls); split the "
        "expression or the helper chain",
        site,
        node=node,
    )


def fingerprint(value: Any) -> Any:
    """What a resolved global must still be for compiled code that folded it to stay valid:
    numbers by type and bits (so -0.0, NaN signs and 0 vs 0.0 count), other objects by identity."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, (bool, int)) and type(value) in (bool, int):
        return (type(value).__name__, value)
    return ("object", id(value))


class _Missing:
    pass


_MISSING = _Missing()


def _source_of(func: Callable[..., Any], node_name: str) -> _Source:
    try:
        cached = _SOURCE_CACHE.get(func)
    except TypeError:  # not weak-referenceable: not a plain function
        cached = None
    code_obj = getattr(func, "__code__", None)
    if cached is not None:
        return cached
    if code_obj is None:
        raise JitError(f"{getattr(func, '__qualname__', func)!r} is not a Python function", node=node_name)
    try:
        lines, first = inspect.getsourcelines(func)
    except (OSError, TypeError) as exc:
        raise JitError(
            f"cannot read the source of {func.__qualname__} ({exc}); the JIT compiles node methods "
            "from their source, so define them in a file (or register generated source in linecache)",
            node=node_name,
        ) from None
    tree = ast.parse(textwrap.dedent("".join(lines)))
    fdef = tree.body[0]
    if not isinstance(fdef, ast.FunctionDef):
        raise JitError(f"{func.__qualname__} is not a plain function", node=node_name)
    src = _Source(fdef, code_obj.co_filename, first - 1, func.__globals__)
    _SOURCE_CACHE[func] = src
    return src


class NodeLowering:
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
        self.cls = cls
        self.attrs = attrs
        self.sample_rate = sample_rate
        self.name = label or cls.__qualname__
        self.unsupported = unsupported or {}
        self.constants = constants or {}
        self._cache: dict[tuple[Any, tuple[T, ...]], k.KFunction] = {}
        self._in_progress: set[Any] = set()
        self._function_names: dict[Any, str] = {}  # plain functions -> a name unique in this node
        # Lowerings are shared by every compile of the variant (codegen caches them): two threads
        # compiling at once must not interleave one lowering's in-progress set and caches.
        self._lock = threading.RLock()
        # What the lowered code folded in from outside the instance: (namespace, name) ->
        # (the value, kept alive so that an identity stays unique, and its fingerprint).
        self.dependencies: dict[tuple[int, str], tuple[Callable[[], Any], Any, Any]] = {}
        self.widen = False  # see settle_attribute_types
        self.last_site: k.Site | None = None  # the statement being lowered, for too_deep()

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
            return self.function(static.__func__, arg_types, site)
        return self._lowered(name, func, name, arg_types, first_param_value, True, site)

    def function(self, func: Any, arg_types: tuple[T, ...], site: k.Site | None = None) -> k.KFunction:
        """A plain function (module-level, or a static method) called from node code."""
        if not isinstance(func, types.FunctionType):
            raise JitError(f"{func!r} is not a Python function", site, node=self.name)
        name = self._function_names.get(func)
        if name is None:
            name = self._function_names[func] = f"{func.__name__}_f{len(self._function_names)}"
        return self._lowered(func, func, name, arg_types, None, False, site)

    def _lowered(
        self,
        identity: Any,
        func: Callable[..., Any],
        name: str,
        arg_types: tuple[T, ...],
        first_param_value: float | None,
        has_self: bool,
        site: k.Site | None,
    ) -> k.KFunction:
        with self._lock:
            return self._lowered_locked(identity, func, name, arg_types, first_param_value, has_self, site)

    def _lowered_locked(
        self,
        identity: Any,
        func: Callable[..., Any],
        name: str,
        arg_types: tuple[T, ...],
        first_param_value: float | None,
        has_self: bool,
        site: k.Site | None,
    ) -> k.KFunction:
        key = (identity, arg_types)
        if key in self._cache:
            return self._cache[key]
        if identity in self._in_progress:
            shown = getattr(func, "__name__", name)
            raise JitError(
                f"recursive call of {shown}() is not supported in compiled code", site, node=self.name
            )
        outermost = not self._in_progress
        self._in_progress.add(identity)
        try:
            if outermost:
                with deep_recursion():
                    try:
                        fn = self._lower(func, name, arg_types, first_param_value, has_self)
                    except RecursionError:
                        raise too_deep(self.last_site, self.name) from None
            else:
                fn = self._lower(func, name, arg_types, first_param_value, has_self)
        finally:
            self._in_progress.discard(identity)
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
        src = _source_of(func, self.name)
        return _FunctionLowering(self, src, name, arg_types, first, has_self).lower()


class _Widen(Exception):
    """Raised while settling attribute types: ``attr`` is assigned a wider type than it holds."""

    def __init__(self, attr: str, type_: T) -> None:
        super().__init__(attr)
        self.attr = attr
        self.type = type_


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
    compile time would make what compiles depend on how many samples ran. Lowering errors are
    left for the real compile to report: the types found so far are returned.
    """
    attrs = dict(attrs)
    widened: dict[str, T] = {}
    for _ in range(2 * len(attrs) + 1):  # each round widens one attribute one step
        low = NodeLowering(cls, attrs, sample_rate, cls.__qualname__, unsupported, constants)
        low.widen = True
        try:
            low.process()
            for port, arity in handlers:
                if callable(getattr(cls, f"on_{port}", None)):
                    low.handler(port, arity)
        except _Widen as w:
            attrs[w.attr] = ScalarAttr(w.type)
            widened[w.attr] = w.type
            continue
        except (JitError, RecursionError):
            pass
        break
    return widened


_ENDPOINT_KINDS = {
    ("input", "stream"): "stream_in",
    ("input", "value"): "value_in",
    ("output", "stream"): "out",
    ("output", "value"): "out",
    ("input", "event"): "event_in",
    ("output", "event"): "event_out",
}
_STATE_TYPES = {"f64": T.F64, "i64": T.I64, "bool": T.BOOL}


def attribute_infos(
    state: Iterable[tuple[str, str, int | None, int | None]], endpoints: Iterable[tuple[str, str, str]]
) -> dict[str, AttrInfo]:
    """What node code may find on ``self``: state attributes ``(name, IR type, length, cols)`` (a
    length for arrays) and endpoints ``(name, kind, direction)``, as the frontend types them."""
    attrs: dict[str, AttrInfo] = {}
    for name, t, length, cols in state:
        attrs[name] = (
            ScalarAttr(_STATE_TYPES[t]) if length is None else ArrayAttr(_STATE_TYPES[t], length, cols)
        )
    for name, kind, direction in endpoints:
        attrs[name] = EndpointAttr(_ENDPOINT_KINDS[(direction, kind)])
    return attrs


_SETTLED: weakref.WeakKeyDictionary[type, dict[tuple, dict[str, str]]] = weakref.WeakKeyDictionary()


def widened_state_types(
    cls: type,
    state: list[tuple[str, str, int | None, int | None]],
    endpoints: list[tuple[str, str, str, int]],
    sample_rate: float,
    constants: dict[str, float | int | bool],
) -> dict[str, str]:
    """For ``graph.to_ir()``: the int/bool scalar attributes that compiled methods assign wider
    values, as IR type names ("f64", "i64"). ``state`` is (name, type, length), ``endpoints``
    (name, kind, direction, arity). Cached per class and signature (lowering runs once)."""
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


class _FunctionLowering:
    """Lowers one method. Types of locals are found by iterating to a fixed point."""

    def __init__(
        self,
        owner: NodeLowering,
        src: _Source,
        name: str,
        arg_types: tuple[T, ...],
        first_param_value: float | None,
        has_self: bool = True,
    ) -> None:
        self.owner = owner
        self.src = src
        self.name = name
        self.has_self = has_self
        self.arg_types = arg_types
        self.first_param_value = first_param_value
        self.local_types: dict[str, T] = {}
        self.const_params: dict[str, float] = {}
        self.returns: T | None = None
        self.has_value_return = False
        self.tuple_returns: list[T] | None = None  # `return a, b`: one type per element
        self.loop_depth = 0
        self.if_depth = 0
        self.temp_counter = 0
        self.calls: list[k.KFunction] = []
        fargs = src.tree.args
        self.store_counts: dict[str, int] = {
            a.arg: 1 for a in [*fargs.args, *fargs.kwonlyargs]
        }  # bound by the call
        for node in ast.walk(src.tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.store_counts[node.id] = self.store_counts.get(node.id, 0) + 1
        self.const_locals: dict[str, k.Const] = {}

    # ------------------------------------------------------------------ driver
    def lower(self) -> k.KFunction:
        fdef = self.src.tree
        args = fdef.args
        if args.vararg or args.kwarg or args.posonlyargs:
            raise self.error(fdef, "variadic (*args, **kwargs) or positional-only parameters")
        names = [a.arg for a in [*args.args, *args.kwonlyargs]]
        if self.has_self:
            if not names or names[0] != "self":
                raise self.error(fdef, "a method without `self` as first parameter")
            params = names[1:]
        else:
            params = names
            for node in ast.walk(fdef):
                if isinstance(node, ast.Name) and node.id == "self" and "self" not in params:
                    raise JitError(
                        f"{fdef.name}() is not a method: `self` is not defined in it", self.site(node)
                    )
        if self.first_param_value is not None:
            if len(params) != 1:
                raise self.error(fdef, f"{self.name}() must take exactly (self, sample_rate)")
            self.const_params[params[0]] = self.first_param_value
            typed_params: list[tuple[str, T]] = []
        else:
            if len(params) != len(self.arg_types):
                raise JitError(
                    f"{self.name}() takes {len(params)} arguments but is called with {len(self.arg_types)}",
                    self.site(fdef),
                )
            typed_params = list(zip(params, self.arg_types, strict=True))
        self.returns_hint: T | None = None
        self.tuple_hint: list[T] | None = None
        for _ in range(8):
            before = dict(self.local_types)
            self.local_types.update({n: t for n, t in typed_params})
            self.returns = None
            self.has_value_return = False
            self.tuple_returns = None
            self.temp_counter = 0
            self.calls = []
            self.const_locals = {}
            body = self.block(fdef.body)
            if (
                self.local_types == before
                and self.returns == self.returns_hint
                and self.tuple_returns == self.tuple_hint
            ):
                break
            self.returns_hint = self.returns
            self.tuple_hint = self.tuple_returns
        else:  # pragma: no cover - join is monotone over three types
            raise self.error(fdef, "local variable types that do not settle")
        if self.has_value_return and self.returns is None:
            self.returns = T.F64
        locals_ = {n: t for n, t in self.local_types.items() if n not in dict(typed_params)}
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

    # ------------------------------------------------------------------ helpers
    def is_self(self, e: ast.expr) -> bool:
        """``e`` is the node itself (never inside a plain function, where ``self`` is no name)."""
        return self.has_self and _is_self(e)

    def site(self, node: ast.AST) -> k.Site:
        return k.Site(self.src.file, self.src.line_offset + getattr(node, "lineno", 1), self.owner.name)

    def error(self, node: ast.AST, construct: str, hint: str = "") -> JitError:
        msg = f"{construct} is not supported in compiled node code"
        if hint:
            msg += f" ({hint})"
        return JitError(msg, self.site(node))

    def temp(self, t: T) -> str:
        self.temp_counter += 1
        name = f"_t{self.temp_counter}"
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
            f"a {_tname(e.type)} value where {_tname(t)} is needed (types never change in compiled code)",
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
            out.extend(self.stmt(s))
        return out

    def stmt(self, s: ast.stmt) -> list[k.Stmt]:
        site = self.site(s)
        self.owner.last_site = site
        if isinstance(s, ast.Assign):
            if len(s.targets) == 1:
                return self.assign(s.targets[0], s.value, s)
            tmp_val = self.expr(s.value)
            tmp = self.temp(tmp_val.type)
            out: list[k.Stmt] = [k.Assign(site, k.Local(tmp_val.type, tmp), tmp_val)]
            for target in s.targets:
                out.extend(self.assign_value(target, k.Local(tmp_val.type, tmp), s))
            return out
        if isinstance(s, ast.AnnAssign):
            if s.value is None:
                return []
            return self.assign(s.target, s.value, s)
        if isinstance(s, ast.AugAssign):
            return self.aug_assign(s)
        if isinstance(s, ast.If):
            cond = self.truth(self.expr(s.test), s.test)
            if isinstance(cond, k.Const):  # a constant condition: only the branch taken is compiled
                return self.block(s.body if cond.value else s.orelse)
            self.if_depth += 1
            body, orelse = self.block(s.body), self.block(s.orelse)
            self.if_depth -= 1
            return [k.If(site, cond, body, orelse)]
        if isinstance(s, ast.While):
            if s.orelse:
                raise self.error(s, "while ... else")
            cond = self.truth(self.expr(s.test), s.test)
            self.loop_depth += 1
            body = self.block(s.body)
            self.loop_depth -= 1
            return [k.While(site, cond, body)]
        if isinstance(s, ast.For):
            return [self.for_range(s)]
        if isinstance(s, ast.Break):
            if not self.loop_depth:
                raise self.error(s, "break outside a loop")
            return [k.Break(site)]
        if isinstance(s, ast.Continue):
            if not self.loop_depth:
                raise self.error(s, "continue outside a loop")
            return [k.Continue(site)]
        if isinstance(s, ast.Return):
            if s.value is None or (isinstance(s.value, ast.Constant) and s.value.value is None):
                return [k.Return(site, None)]
            if isinstance(s.value, ast.Tuple):
                return [self.return_tuple(s, s.value)]
            if self.tuple_returns is not None:
                raise self.error(s, "returning a tuple on some paths and a single value on others")
            value = self.expr(s.value)
            self.has_value_return = True
            self.returns = value.type if self.returns is None else k.join(self.returns, value.type)
            # Every return gives the function's one type (the join over all returns, settled by
            # the fixed-point iteration in lower()).
            target = self.returns if self.returns_hint is None else k.join(self.returns_hint, self.returns)
            return [k.Return(site, self.coerce(value, target, s))]
        if isinstance(s, ast.Pass):
            return []
        if isinstance(s, ast.Expr):
            if isinstance(s.value, ast.Constant):  # docstring or bare literal
                return []
            emitted = self.maybe_emit(s.value)
            if emitted is not None:
                return [emitted]
            if isinstance(s.value, ast.Call):
                return [k.ExprStmt(site, self.expr(s.value, allow_void=True))]
            self.expr(s.value)
            return []
        if isinstance(s, ast.Assert):
            cond = self.truth(self.expr(s.test), s.test)
            msg = ast.unparse(s.msg) if s.msg is not None else ast.unparse(s.test)
            return [
                k.If(site, k.Unary(T.BOOL, "not", cond, site), [k.Raise(site, "AssertionError", msg)], [])
            ]
        construct = {
            ast.FunctionDef: "a nested function", ast.ClassDef: "a class definition",
            ast.Try: "try/except", ast.With: "with", ast.Raise: "raise", ast.Global: "global",
            ast.Nonlocal: "nonlocal", ast.Delete: "del", ast.Import: "import", ast.ImportFrom: "import",
            ast.AsyncFunctionDef: "an async function", ast.AsyncFor: "async for", ast.AsyncWith: "async with",
        }.get(type(s)) or _statement_words(s)  # fmt: skip
        raise self.error(s, construct)

    def return_tuple(self, s: ast.Return, value: ast.Tuple) -> k.Stmt:
        """``return a, b``: each element typed as the join over every return (fixed point)."""
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
                f"unpacking {len(types_)} values returned by {_short(value_node.func)}() into {len(target.elts)} names",
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
                elif self.owner.widen and k.join(info.type, value.type) != info.type:
                    raise _Widen(target.attr, k.join(info.type, value.type))
                elif info.type == T.I64 and value.type == T.BOOL:
                    value = self.coerce(value, T.I64, s)
                elif info.type != value.type:
                    raise JitError(
                        f"attribute self.{target.attr} is {_tname(info.type)} but is assigned a {_tname(value.type)}; "
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

    def aug_assign(self, s: ast.AugAssign) -> list[k.Stmt]:
        site = self.site(s)
        op = _BINOPS.get(type(s.op))
        if op is None:
            raise self.error(s, f"the operator {_OPERATOR_WORDS.get(type(s.op), 'used here')}")
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
        values = tuple(self.coerce(c, t, s).value for c in table)
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
        from ..graph.endpoints import MAX_EVENT_FIELDS

        if len(call.args) > MAX_EVENT_FIELDS:
            raise JitError(f"an event carries at most {MAX_EVENT_FIELDS} fields", self.site(call))
        args = [self.coerce(self.expr(a), T.F64, a) for a in call.args]
        return k.Emit(self.site(call), port.attr, args)

    # ------------------------------------------------------------------ expressions
    def expr(self, e: ast.expr, allow_void: bool = False) -> k.Expr:
        if isinstance(e, ast.Constant):
            v = e.value
            if isinstance(v, bool):
                return k.Const(T.BOOL, v)
            if isinstance(v, int):
                _check_int_range(v, self.site(e))
                return k.Const(T.I64, v)
            if isinstance(v, float):
                return k.Const(T.F64, v)
            raise self.error(e, f"the constant {v!r}", "only numbers and booleans")
        if isinstance(e, ast.Name):
            return self.name_ref(e)
        if isinstance(e, ast.Attribute):
            return self.attribute(e)
        if isinstance(e, ast.BinOp):
            op = _BINOPS.get(type(e.op))
            if op is None:
                raise self.error(e, f"the operator {_OPERATOR_WORDS.get(type(e.op), 'used here')}")
            return self.binary(op, self.expr(e.left), self.expr(e.right), e)
        if isinstance(e, ast.UnaryOp):
            return self.unary(e)
        if isinstance(e, ast.Compare):
            return self.compare(e)
        if isinstance(e, ast.BoolOp):
            return self.boolop(e)
        if isinstance(e, ast.IfExp):
            cond = self.truth(self.expr(e.test), e.test)
            if isinstance(cond, k.Const):
                return self.expr(e.body if cond.value else e.orelse)
            a, b = self.expr(e.body), self.expr(e.orelse)
            t = k.join(a.type, b.type)
            return k.Select(t, cond, self.coerce(a, t, e.body), self.coerce(b, t, e.orelse))
        if isinstance(e, ast.Subscript):
            table = self.constant_sequence(e.value)
            if table is not None:
                return self.table_element(table, e)
            array, index = self.array_index(e)
            info = self.owner.attrs[array]
            assert isinstance(info, ArrayAttr)
            return k.ArrayLoad(info.type, array, index, self.site(e))
        if isinstance(e, ast.Call):
            return self.call(e, allow_void)
        if (
            isinstance(e, (ast.List, ast.Tuple))
            and e.elts
            and all(isinstance(x, ast.Constant) and type(x.value) in (int, float) for x in e.elts)
        ):
            kind = "a list" if isinstance(e, ast.List) else "a tuple"
            raise self.error(
                e,
                f"{kind} of numbers as a value",
                "index a constant tuple directly, or use a numpy array: self.values = np.array([...]) "
                "in __init__, then self.values[i]",
            )
        construct = {
            ast.Tuple: "a tuple", ast.List: "a list", ast.Dict: "a dict", ast.Set: "a set",
            ast.ListComp: "a list comprehension", ast.GeneratorExp: "a generator expression",
            ast.DictComp: "a dict comprehension", ast.SetComp: "a set comprehension",
            ast.Lambda: "lambda", ast.JoinedStr: "an f-string", ast.NamedExpr: "the walrus operator",
            ast.Starred: "starred arguments", ast.Await: "await", ast.Yield: "yield",
            ast.YieldFrom: "yield from", ast.Slice: "a slice",
        }.get(type(e)) or f"the expression `{_short(e)}`"  # fmt: skip
        raise self.error(e, construct)

    def name_ref(self, e: ast.Name) -> k.Expr:
        n = e.id
        if n in self.const_params:
            return k.Const(T.F64, self.const_params[n])
        if n in self.const_locals:
            return self.const_locals[n]
        if n in self.local_types:
            return k.Local(self.local_types[n], n)
        if n in self.src.globals or hasattr(builtins, n):
            value = self.global_value(n)
            const = _numeric_constant(value)
            if const is not None:
                return const
            raise self.error(
                e,
                f"the global {n!r} ({type(value).__name__}) as a value",
                "only numeric constants, math and a few builtins",
            )
        # A local read before any assignment in source order (e.g. assigned later in a loop):
        # the fixed-point iteration types it on the next pass.
        if n in self.store_counts:
            self.local_types.setdefault(n, T.BOOL)
            return k.Local(self.local_types[n], n)
        raise JitError(f"name {n!r} is not defined", self.site(e))

    def attribute(self, e: ast.Attribute) -> k.Expr:
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
            cls, attr = self.owner.cls, e.attr
            static = self.owner.depend(
                (id(cls), attr),
                lambda: inspect.getattr_static(cls, attr, None),
                inspect.getattr_static(cls, attr, None),
            )
            const = _numeric_constant(static)
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
            attr = e.attr
            value = self.owner.depend(
                (id(base), attr), lambda: getattr(base, attr, None), getattr(base, attr, None)
            )
            const = _numeric_constant(value)
            if const is not None:
                return const
            raise self.error(e, f"{ast.unparse(e)} as a value")
        raise self.error(e, f"the attribute access {ast.unparse(e)}")

    def global_value(self, n: str) -> Any:
        """The global (or builtin) ``n`` of the method's module, noted as a dependency of the
        lowered code: a cache of this code is dropped when the global changes."""
        g = self.src.globals
        if n in g:
            return self.owner.depend((id(g), n), lambda: g.get(n, _MISSING), g[n])
        return self.owner.depend(
            (id(g), n), lambda: g.get(n, getattr(builtins, n, _MISSING)), getattr(builtins, n)
        )

    def module_of(self, e: ast.expr) -> types.ModuleType | None:
        if isinstance(e, ast.Name) and e.id not in self.local_types and e.id in self.src.globals:
            value = self.global_value(e.id)
            if isinstance(value, types.ModuleType):
                return value
        return None

    def constant_sequence(self, e: ast.expr) -> tuple[k.Const, ...] | None:
        """The numbers of a constant tuple or list ``e`` names: a module global or module
        attribute, a class attribute read through self, or a literal of numbers."""
        value: Any = None
        if isinstance(e, (ast.Tuple, ast.List)) and all(isinstance(x, ast.Constant) for x in e.elts):
            value = [x.value for x in e.elts]
        elif isinstance(e, ast.Name) and e.id not in self.local_types and e.id in self.src.globals:
            value = self.global_value(e.id)
        elif isinstance(e, ast.Attribute) and self.is_self(e.value):
            if e.attr in self.owner.attrs or e.attr in self.owner.unsupported:
                return None  # an instance attribute: not a constant
            cls, attr = self.owner.cls, e.attr
            value = self.owner.depend(
                (id(cls), attr),
                lambda: inspect.getattr_static(cls, attr, None),
                inspect.getattr_static(cls, attr, None),
            )
        elif isinstance(e, ast.Attribute):
            base = self.module_of(e.value)
            if base is not None:
                attr = e.attr
                value = self.owner.depend(
                    (id(base), attr), lambda: getattr(base, attr, None), getattr(base, attr, None)
                )
        if not isinstance(value, (tuple, list)) or not value:
            return None
        consts = [_numeric_constant(v) for v in value]
        if any(c is None for c in consts):
            return None
        if len(consts) > MAX_TABLE:
            raise JitError(
                f"a constant sequence of {len(consts)} numbers (at most {MAX_TABLE}); use a numpy array attribute",
                self.site(e),
            )
        return tuple(c for c in consts if c is not None)

    def table_element(self, table: tuple[k.Const, ...], e: ast.Subscript) -> k.Expr:
        if isinstance(e.slice, (ast.Slice, ast.Tuple)):
            raise self.error(e, "slices of a constant sequence", "index one element at a time")
        index = self.expr(e.slice)
        if index.type == T.F64:
            raise JitError("a constant sequence indexed by a float; use int(...)", self.site(e))
        t = table[0].type
        for c in table[1:]:
            t = k.join(t, c.type)
        values = tuple(self.coerce(c, t, e).value for c in table)
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
        if op in ("<<", ">>", "&", "|", "^"):
            if a.type == T.F64 or b.type == T.F64:
                raise JitError(f"the bit operator {op} on floats (Python raises TypeError)", site)
            if a.type == T.BOOL and b.type == T.BOOL and op in ("&", "|", "^"):
                return k.Binary(T.BOOL, op, a, b, site)
            return k.Binary(T.I64, op, self.coerce(a, T.I64, node), self.coerce(b, T.I64, node), site)
        if (
            isinstance(a, k.Const)
            and isinstance(b, k.Const)
            and a.type.is_int
            and b.type.is_int
            and not (a.type == T.BOOL and b.type == T.BOOL and op in ("&", "|", "^"))
        ):
            folded = _fold_int(op, int(a.value), int(b.value))
            if folded is not None:
                return folded
        if op == "/":
            if isinstance(a, k.Const) and isinstance(b, k.Const) and float(b.value) != 0.0:
                if a.type.is_int and b.type.is_int:  # Python's int / int: the exact quotient, rounded once
                    return k.Const(T.F64, int(a.value) / int(b.value))
                return k.Const(T.F64, float(a.value) / float(b.value))
            if a.type.is_int and b.type.is_int:  # int / int is correctly rounded in Python
                return k.Binary(T.F64, "/", self.exact_float(a, node), self.exact_float(b, node), site)
            return k.Binary(T.F64, "/", self.coerce(a, T.F64, node), self.coerce(b, T.F64, node), site)
        if op == "**":
            if a.type == T.F64 or b.type == T.F64:
                if isinstance(b, k.Const) and float(b.value) == 2.0:
                    # x * x, with pow's OverflowError when a finite x squares to infinity
                    return k.Binary(T.F64, "sq", self.coerce(a, T.F64, node), k.Const(T.F64, 2.0), site)
                return k.MathCall(
                    T.F64, "pypow", [self.coerce(a, T.F64, node), self.coerce(b, T.F64, node)], site
                )
            if not (isinstance(b, k.Const) and int(b.value) >= 0):
                raise JitError(
                    "int ** int with an exponent that is not a non-negative constant (its result type "
                    "depends on the sign); write float(x) ** y",
                    site,
                )
            return k.Binary(T.I64, "**", self.coerce(a, T.I64, node), k.Const(T.I64, int(b.value)), site)
        t = T.F64 if T.F64 in (a.type, b.type) else T.I64
        if t == T.F64 and isinstance(a, k.Const) and isinstance(b, k.Const) and op in ("+", "-", "*"):
            # Folding is exact: Python does the same IEEE operation (e.g. 1.0 / sample_rate below).
            return k.Const(T.F64, _FOLD[op](float(a.value), float(b.value)))
        return k.Binary(t, op, self.coerce(a, t, node), self.coerce(b, t, node), site)

    def unary(self, e: ast.UnaryOp) -> k.Expr:
        site = self.site(e)
        operand = e.operand
        if isinstance(e.op, ast.USub) and isinstance(operand, ast.Constant) and type(operand.value) is int:
            # -9223372036854775808 is one literal to the reader (and to Python's value range)
            value = -operand.value
            _check_int_range(value, site)
            return k.Const(T.I64, value)
        v = self.expr(e.operand)
        if isinstance(e.op, ast.Not):
            cond = self.truth(v, e)
            if isinstance(cond, k.Const):
                return k.Const(T.BOOL, not cond.value)
            return k.Unary(T.BOOL, "not", cond, site)
        if isinstance(e.op, ast.USub):
            if isinstance(v, k.Const) and v.type == T.I64:
                value = -int(v.value)
                _check_int_range(value, site)
                return k.Const(T.I64, value)
            if isinstance(v, k.Const):
                if v.type == T.F64:
                    return k.Const(T.F64, -float(v.value))
                return k.Const(T.I64, -int(v.value))
            t = T.F64 if v.type == T.F64 else T.I64
            return k.Unary(t, "neg", self.coerce(v, t, e), site)
        if isinstance(e.op, ast.UAdd):
            return v if v.type != T.BOOL else self.coerce(v, T.I64, e)
        if isinstance(e.op, ast.Invert):
            if v.type == T.F64:
                raise JitError("~ on a float (Python raises TypeError)", site)
            return k.Unary(T.I64, "invert", self.coerce(v, T.I64, e), site)
        raise self.error(e, f"the unary operator in `{_short(e)}`")

    def compare(self, e: ast.Compare) -> k.Expr:
        if len(e.ops) == 1 and isinstance(e.ops[0], (ast.Is, ast.IsNot)):
            return self.compare_none(e)
        ops = []
        for op in e.ops:
            sym = _CMPOPS.get(type(op))
            if sym is None:
                raise self.error(
                    e,
                    f"the comparison `{_COMPARISON_WORDS.get(type(op), _short(e))}`",
                    "only < <= > >= == != (and `is None` / `is not None`)",
                )
            ops.append(sym)
        left = self.expr(e.left)
        operands = [self.expr(c) for c in e.comparators]
        return self.chain(left, list(zip(ops, operands, strict=True)), e)

    def compare_none(self, e: ast.Compare) -> k.Expr:
        """``x is None`` / ``x is not None``: known when the graph is compiled. Compiled values
        are numbers, never None; an attribute or global holding None (an optional setting left
        unset) stays None, since compiled code cannot assign it anything else."""
        left, right = e.left, e.comparators[0]
        if _is_none(left):
            left, right = right, left
        if not _is_none(right):
            raise self.error(e, f"`{_short(e)}`", "`is` and `is not` compare with None only")
        is_none = self.holds_none(left)
        if is_none is None:
            raise self.error(
                e, f"`{_short(e)}`", "`is None` works on attributes, globals, locals and parameters"
            )
        return k.Const(T.BOOL, is_none == isinstance(e.ops[0], ast.Is))

    def holds_none(self, v: ast.expr) -> bool | None:
        """Whether ``v`` is None in compiled code (None: cannot tell, so refuse)."""
        if _is_none(v):
            return True
        if isinstance(v, ast.Attribute) and self.is_self(v.value):
            if v.attr in self.owner.attrs:
                return False
            reason = self.owner.unsupported.get(v.attr, "")
            if reason.startswith("a NoneType"):
                return True
            if reason:
                return False  # some other object: not None
            cls, attr = self.owner.cls, v.attr
            static = self.owner.depend(
                (id(cls), attr),
                lambda: inspect.getattr_static(cls, attr, _MISSING),
                inspect.getattr_static(cls, attr, _MISSING),
            )
            return None if static is _MISSING else static is None
        if isinstance(v, ast.Name):
            if v.id in self.local_types or v.id in self.const_params or v.id in self.store_counts:
                return False  # a local or parameter: a number
            if v.id in self.src.globals:
                return self.global_value(v.id) is None
        return None

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
        return _logical("and", first, self.chain(right, rest[1:], e))

    def compare_pair(self, sym: str, left: k.Expr, right: k.Expr, e: ast.Compare) -> k.Expr:
        if left.type == T.BOOL and right.type == T.BOOL:
            t = T.BOOL
        elif T.F64 in (left.type, right.type):
            t = T.F64
        else:
            t = T.I64
        if isinstance(left, k.Const) and isinstance(right, k.Const):
            return k.Const(T.BOOL, _COMPARE[sym](left.value, right.value))
        if t == T.F64 and isinstance(right, k.Const) and right.type == T.I64 and not _exact_in_float(right):
            return self.compare_inexact(sym, self.coerce(left, T.F64, e), int(right.value), e)
        if t == T.F64 and isinstance(left, k.Const) and left.type == T.I64 and not _exact_in_float(left):
            flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[sym]
            return self.compare_inexact(flipped, self.coerce(right, T.F64, e), int(left.value), e)
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

    def compare_inexact(self, sym: str, f: k.Expr, c: int, e: ast.AST) -> k.Expr:
        """``f sym c`` for a float ``f`` and an int constant ``c`` that no float equals, exactly as
        Python compares them: against the two floats around ``c`` (no float is equal to c)."""
        lo = float(c)
        if lo > c:
            lo = math.nextafter(lo, -math.inf)
        hi = math.nextafter(lo, math.inf)
        if sym in ("<", "<="):
            return k.Compare(T.BOOL, "<=", f, k.Const(T.F64, lo))
        if sym in (">", ">="):
            return k.Compare(T.BOOL, ">=", f, k.Const(T.F64, hi))
        # == never holds (also for NaN); != always does
        return k.Const(T.BOOL, sym == "!=")

    def exact_float(self, v: k.Expr, node: ast.AST) -> k.Expr:
        """An int as a float where Python would use its exact value: refused beyond 2**53."""
        if v.type == T.F64:
            return v
        if isinstance(v, k.Const):
            if not _exact_in_float(v):
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
                result = _logical(op, result, v)
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

    def is_builtin(self, name: str) -> bool:
        if name in self.local_types or name not in _BUILTINS:
            return False
        g = self.src.globals
        # a module global of that name would shadow the builtin: note that it does not exist
        return (
            self.owner.depend((id(g), name), lambda: g.get(name, _MISSING), g.get(name, _MISSING)) is _MISSING
        )

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
        if mod is math:
            return self.math_call(f.attr, e)
        if isinstance(f, ast.Name):
            value = None
            if f.id not in self.local_types and f.id in self.src.globals:
                value = self.global_value(f.id)
            math_name = _MATH_BY_ID.get(id(value))
            if math_name is not None and value is getattr(math, math_name):
                return self.math_call(math_name, e)
            if self.is_builtin(f.id):
                return self.builtin(f.id, e)
        raise self.error(
            e,
            f"calling {ast.unparse(f)}",
            "compiled code may call math functions, min/max/abs/int/float/round/len/bool, the node's own "
            "methods, static methods and Python functions defined in a module",
        )

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

    def plain_function(self, f: ast.expr) -> types.FunctionType | None:
        """The Python function ``f`` names: a module global, or an attribute of a module."""
        value: Any = None
        if isinstance(f, ast.Name) and f.id not in self.local_types and f.id in self.src.globals:
            value = self.global_value(f.id)
        elif isinstance(f, ast.Attribute):
            if (
                isinstance(f.value, ast.Name)
                and f.value.id not in self.local_types
                and f.value.id in self.src.globals
            ):
                owner = self.global_value(f.value.id)
                if isinstance(owner, type):  # ClassName.static_method(...)
                    static = inspect.getattr_static(owner, f.attr, None)
                    return static.__func__ if isinstance(static, staticmethod) else None
            base = self.module_of(f.value)
            if base is not None and base is not math:
                attr = f.attr
                value = self.owner.depend(
                    (id(base), attr), lambda: getattr(base, attr, None), getattr(base, attr, None)
                )
        return value if isinstance(value, types.FunctionType) else None

    def bind_arguments(self, func: Any, drop_self: bool, e: ast.Call, shown: str) -> list[k.Expr]:
        """The call's arguments in the callee's parameter order: positional, keywords, and the
        defaults (numbers) of the ones not given. Evaluated in source order, as Python does."""
        site = self.site(e)
        code = func.__code__
        if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or code.co_posonlyargcount:
            raise self.error(
                e, f"calling {shown}(), which takes *args, **kwargs or positional-only parameters"
            )
        positional = list(code.co_varnames[: code.co_argcount])
        kwonly = list(code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount])
        defaults: dict[str, Any] = {}
        if func.__defaults__:
            defaults.update(
                zip(positional[len(positional) - len(func.__defaults__) :], func.__defaults__, strict=True)
            )
        defaults.update(func.__kwdefaults__ or {})
        if drop_self:
            positional = positional[1:]
        params = positional + kwonly
        if len(e.args) > len(positional):
            raise JitError(
                f"{shown}() takes {len(positional)} positional arguments but {len(e.args)} were given", site
            )
        given: dict[str, k.Expr] = {}
        evaluated: list[tuple[str, k.Expr]] = []  # source order
        for name, a in zip(positional, e.args, strict=False):
            evaluated.append((name, self.expr(a)))
        for kw in e.keywords:
            if kw.arg is None:
                raise self.error(e, "**kwargs in a call")
            if kw.arg not in params:
                raise JitError(f"{shown}() got an unexpected keyword argument {kw.arg!r}", site)
            if kw.arg in dict(evaluated):
                raise JitError(f"{shown}() got multiple values for argument {kw.arg!r}", site)
            evaluated.append((kw.arg, self.expr(kw.value)))
        in_order = [n for n, _ in evaluated] == [p for p in params if p in dict(evaluated)]
        simple = all(isinstance(v, (k.Const, k.Local, k.Attr, k.Input)) for _, v in evaluated)
        if in_order or simple:
            given = dict(evaluated)
            prologue: list[tuple[str, k.Expr]] = []
        else:  # keywords out of parameter order: evaluate into temporaries first, in source order
            prologue = [(self.temp(v.type), v) for _, v in evaluated]
            given = {n: k.Local(v.type, tmp) for (n, v), (tmp, _) in zip(evaluated, prologue, strict=True)}
        out: list[k.Expr] = []
        for p in params:
            if p in given:
                out.append(given[p])
                continue
            if p not in defaults:
                raise JitError(f"{shown}() missing required argument {p!r}", site)
            const = _numeric_constant(defaults[p])
            if const is None:
                raise JitError(
                    f"the default value of {p!r} in {shown}() is a {type(defaults[p]).__name__}; "
                    "compiled code takes numbers and bools",
                    site,
                )
            out.append(const)
        if prologue:
            first = out[0]
            for tmp, v in reversed(prologue):
                first = k.Let(first.type, tmp, v, first)
            out[0] = first
        return out

    def math_call(self, name: str, e: ast.Call) -> k.Expr:
        site = self.site(e)
        args = [self.expr(a) for a in e.args]
        arity = {"atan2": 2, "pow": 2, "fmod": 2, "hypot": 2, "copysign": 2}.get(name, 1)
        if name == "log" and len(args) in (1, 2):
            fargs = [self.coerce(a, T.F64, e) for a in args]
            value = k.MathCall(T.F64, "log", [fargs[0]], site)
            if len(args) == 2:
                return k.Binary(T.F64, "/", value, k.MathCall(T.F64, "log", [fargs[1]], site), site)
            return value
        if name in MATH_TO_INT:
            if len(args) != 1:
                raise JitError(f"math.{name}() takes 1 argument", site)
            if args[0].type != T.F64:
                return self.coerce(args[0], T.I64, e)
            return k.Convert(T.I64, args[0], site, mode=name)
        if name in MATH_F64 or name in MATH_PREDICATES:
            if len(args) != arity:
                raise JitError(f"math.{name}() takes {arity} argument(s), got {len(args)}", site)
            fargs = [self.coerce(a, T.F64, e) for a in args]
            return k.MathCall(T.BOOL if name in MATH_PREDICATES else T.F64, name, fargs, site)
        raise self.error(e, f"math.{name}()", "see docs/jit.md for the supported math functions")

    def builtin(self, name: str, e: ast.Call) -> k.Expr:
        site = self.site(e)
        if name == "len":
            arg = e.args[0] if len(e.args) == 1 else None
            if (
                isinstance(arg, ast.Attribute)
                and self.is_self(arg.value)
                and isinstance(self.owner.attrs.get(arg.attr), ArrayAttr)
            ):
                info = self.owner.attrs[arg.attr]
                assert isinstance(info, ArrayAttr)
                return k.Const(T.I64, info.length // info.cols if info.cols else info.length)
            table = self.constant_sequence(arg) if arg is not None else None
            if table is not None:
                return k.Const(T.I64, len(table))
            raise self.error(e, "len() of anything but an array attribute or a constant tuple")
        args = [self.expr(a) for a in e.args]
        if name in ("min", "max"):
            if len(args) < 2:
                raise self.error(e, f"{name}() of an iterable", f"pass the values: {name}(a, b)")
            t = args[0].type
            for a in args[1:]:
                t = k.join(t, a.type)
            # Python keeps the first of equal values: min(a, b) = b if b < a else a.
            tmp = self.temp(t)
            acc: k.Expr = self.coerce(args[0], t, e)
            for a in args[1:]:
                nxt = self.temp(t)
                cur = k.Local(t, tmp)
                cand = k.Local(t, nxt)
                cmp = k.Compare(T.BOOL, "<" if name == "min" else ">", cand, cur)
                acc = k.Let(t, tmp, acc, k.Let(t, nxt, self.coerce(a, t, e), k.Select(t, cmp, cand, cur)))
                tmp = self.temp(t)
            return acc
        if len(args) != 1:
            raise self.error(e, f"{name}() with {len(args)} arguments")
        (a,) = args
        if name == "abs":
            if a.type == T.F64:
                return k.MathCall(T.F64, "fabs", [a], site)
            return k.Unary(T.I64, "abs", self.coerce(a, T.I64, e), site)
        if name == "int":
            if a.type == T.F64:
                return k.Convert(T.I64, a, site, mode="trunc")
            return self.coerce(a, T.I64, e)
        if name == "float":
            return self.coerce(a, T.F64, e)
        if name == "bool":
            return self.truth(a, e)
        if name == "round":
            if a.type == T.F64:
                return k.Convert(T.I64, a, site, mode="round")
            return self.coerce(a, T.I64, e)
        raise self.error(e, f"{name}()")


_BINOPS: dict[type, str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
    ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
}  # fmt: skip
_CMPOPS: dict[type, str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}


_FOLD = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
_COMPARE = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}  # fmt: skip


MAX_TABLE = 256
"""Elements of a constant tuple that compiled code indexes (a chain of selects; larger: an array)."""

_OPERATOR_WORDS: dict[type, str] = {ast.MatMult: "@ (matrix multiplication)"}
_COMPARISON_WORDS: dict[type, str] = {ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


def _short(e: ast.AST) -> str:
    """Source text of a construct for a message (never a syntax-tree class name), shortened."""
    try:
        text = ast.unparse(e)
    except Exception:  # noqa: BLE001 - a message must not fail
        return "this construct"
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _statement_words(s: ast.stmt) -> str:
    """A statement the subset lacks, named by its keyword (``match``...) rather than its class."""
    first = _short(s).split(" ", 1)[0].rstrip(":")
    return f"the `{first}` statement" if first.isidentifier() else f"the statement `{_short(s)}`"


def _logical(op: str, a: k.Expr, b: k.Expr) -> k.Expr:
    """``a and b`` / ``a or b`` on booleans, folded when ``a`` is known (b is then the answer or unused)."""
    if isinstance(a, k.Const):
        if op == "and":
            return b if a.value else k.Const(T.BOOL, False)
        return k.Const(T.BOOL, True) if a.value else b
    return k.Logical(T.BOOL, op, a, b)


def _is_none(e: ast.expr) -> bool:
    return isinstance(e, ast.Constant) and e.value is None


def _is_self(e: ast.expr) -> bool:
    return isinstance(e, ast.Name) and e.id == "self"


def _tname(t: T) -> str:
    return {T.F64: "float", T.I64: "int", T.BOOL: "bool"}[t]


def _exact_in_float(c: k.Const) -> bool:
    """Whether an int constant is exactly a float (so converting it loses nothing)."""
    v = int(c.value)
    return abs(v) <= 2**53 or int(float(v)) == v


def _fold_int(op: str, a: int, b: int) -> k.Const | None:
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


def _check_int_range(v: int, site: k.Site) -> None:
    if not -(2**63) <= v < 2**63:
        raise JitError(f"the int constant {v} does not fit 64 bits", site)


def _numeric_constant(value: Any) -> k.Const | None:
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
