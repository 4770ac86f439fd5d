"""The walk over one method's syntax tree that the typing pass and the lowering share.

As in Triton's ``compiler/code_generator.py``, :meth:`FunctionVisitor.visit` dispatches to
``visit_<Construct>`` and attaches the source location to whatever goes wrong beneath it: a
:class:`JitError` raised without a site gets the innermost node's file:line; any other exception
(a bug of ours) becomes an internal JitError naming the file:line and the construct, chained to
the original. The visitor also resolves names the way both passes must agree on: globals,
modules, constant sequences, builtins, callees.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import math
import types
from collections.abc import Callable
from typing import Any, ClassVar

from .. import kernel as k
from ..kernel import T
from .builtins import BUILTINS
from .errors import JitError
from .semantics import (
    MAX_TABLE,
    is_none,
    is_self,
    numeric_constant,
    refused_expression,
    refused_statement,
    short,
    unsupported,
)
from .sources import MISSING, Source

_PASS_THROUGH = (RecursionError, MemoryError)
"""Exceptions the visitor lets through unchanged: the compile driver reports RecursionError as
code nested too deeply (see errors.too_deep)."""


class FunctionVisitor(ast.NodeVisitor):
    """One method (or plain function) of a node: its parameters, locals and how names resolve."""

    def __init__(
        self,
        owner: Any,  # the typing.NodeTyping (or its NodeLowering) whose method this is: typed loosely, as typing imports this module
        src: Source,
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
        self.const_locals: dict[str, k.Const] = {}
        self._sites: dict[int, k.Site] = {}
        fargs = src.tree.args
        self.store_counts: dict[str, int] = {
            a.arg: 1 for a in [*fargs.args, *fargs.kwonlyargs]
        }  # bound by the call
        for name, count in src.stores.items():
            self.store_counts[name] = self.store_counts.get(name, 0) + count

    # ------------------------------------------------------------------ the walk
    _methods: ClassVar[dict[type, Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._methods = {}  # each pass dispatches to its own visit_ methods

    def visit(self, node: ast.AST, *args: Any) -> Any:
        """``visit_<Construct>(node)``, with the site of ``node`` on any error raised beneath it."""
        kind = node.__class__
        method = self._methods.get(kind)
        if method is None:
            cls = type(self)
            method = self._methods[kind] = getattr(cls, "visit_" + kind.__name__, cls.generic_visit)
        try:
            return method(self, node, *args)
        except JitError as exc:
            if exc.site is None:
                exc.locate(self.site(node))
            raise
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise self.internal_error(node, exc) from exc

    def generic_visit(self, node: ast.AST) -> Any:
        """A construct with no ``visit_`` method: outside the subset."""
        if isinstance(node, ast.stmt):
            raise self.error(node, refused_statement(node))
        if isinstance(node, ast.expr):
            raise self.error(node, *refused_expression(node))
        raise self.error(node, f"`{short(node)}`")

    def internal_error(self, node: ast.AST, exc: Exception) -> JitError:
        return JitError(
            f"internal error of the compiler at `{short(node)}` ({type(node).__name__}): "
            f"{type(exc).__name__}: {exc}",
            self.site(node),
        )

    def expr(self, e: ast.expr, allow_void: bool = False) -> k.Expr:
        if allow_void and isinstance(e, ast.Call):
            return self.visit(e, True)
        return self.visit(e)

    # ------------------------------------------------------------------ to be given by a pass
    def coerce(self, e: k.Expr, t: T, node: ast.AST) -> k.Expr:
        raise NotImplementedError

    def truth(self, e: k.Expr, node: ast.AST) -> k.Expr:
        raise NotImplementedError

    def temp(self, t: T) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ sites and refusals
    def site(self, node: ast.AST) -> k.Site:
        line = getattr(node, "lineno", 1)
        site = self._sites.get(line)
        if site is None:  # one per line (sites are immutable): made once, shared
            site = self._sites[line] = k.Site(self.src.file, self.src.line_offset + line, self.owner.name)
        return site

    def error(self, node: ast.AST, construct: str, hint: str = "") -> JitError:
        return unsupported(construct, hint, self.site(node))

    def is_self(self, e: ast.expr) -> bool:
        """``e`` is the node itself (never inside a plain function, where ``self`` is no name)."""
        return self.has_self and is_self(e)

    def parameters(self) -> list[tuple[str, T]]:
        """The typed parameters (the sample rate of ``process`` is a constant, not one of them);
        refuses signatures compiled code cannot have."""
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
            if "self" not in params and ("self" in self.src.names or "self" in self.src.stores):
                for node in ast.walk(fdef):
                    if isinstance(node, ast.Name) and node.id == "self":
                        raise JitError(
                            f"{fdef.name}() is not a method: `self` is not defined in it", self.site(node)
                        )
        if self.first_param_value is not None:
            if len(params) != 1:
                raise self.error(fdef, f"{self.name}() must take exactly (self, sample_rate)")
            self.const_params[params[0]] = self.first_param_value
            return []
        if len(params) != len(self.arg_types):
            raise JitError(
                f"{self.name}() takes {len(params)} arguments but is called with {len(self.arg_types)}",
                self.site(fdef),
            )
        return list(zip(params, self.arg_types, strict=True))

    # ------------------------------------------------------------------ names
    def global_value(self, n: str) -> Any:
        """The global (or builtin) ``n`` of the method's module, noted as a dependency of the
        lowered code: a cache of this code is dropped when the global changes."""
        g = self.src.globals
        if n in g:
            return self.owner.depend((id(g), n), lambda: g.get(n, MISSING), g[n])
        return self.owner.depend(
            (id(g), n), lambda: g.get(n, getattr(builtins, n, MISSING)), getattr(builtins, n)
        )

    def module_of(self, e: ast.expr) -> types.ModuleType | None:
        if isinstance(e, ast.Name) and e.id not in self.local_types and e.id in self.src.globals:
            value = self.global_value(e.id)
            if isinstance(value, types.ModuleType):
                return value
        return None

    def module_attribute(self, base: types.ModuleType, attr: str) -> Any:
        return self.owner.depend(
            (id(base), attr), lambda: getattr(base, attr, None), getattr(base, attr, None)
        )

    def class_attribute(self, attr: str, default: Any = None) -> Any:
        """The node class's own attribute (a class constant), noted as a dependency."""
        cls = self.owner.cls
        return self.owner.depend(
            (id(cls), attr),
            lambda: inspect.getattr_static(cls, attr, default),
            inspect.getattr_static(cls, attr, default),
        )

    def is_builtin(self, name: str) -> bool:
        if name in self.local_types or name not in BUILTINS:
            return False
        g = self.src.globals
        # a module global of that name would shadow the builtin: note that it does not exist
        return self.owner.depend((id(g), name), lambda: g.get(name, MISSING), g.get(name, MISSING)) is MISSING

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
            value = self.class_attribute(e.attr)
        elif isinstance(e, ast.Attribute):
            base = self.module_of(e.value)
            if base is not None:
                value = self.module_attribute(base, e.attr)
        if not isinstance(value, (tuple, list)) or not value:
            return None
        consts = [numeric_constant(v) for v in value]
        if any(c is None for c in consts):
            return None
        if len(consts) > MAX_TABLE:
            raise JitError(
                f"a constant sequence of {len(consts)} numbers (at most {MAX_TABLE}); use a numpy array attribute",
                self.site(e),
            )
        return tuple(c for c in consts if c is not None)

    def holds_none(self, v: ast.expr) -> bool | None:
        """Whether ``v`` is None in compiled code (None: cannot tell, so refuse)."""
        if is_none(v):
            return True
        if isinstance(v, ast.Attribute) and self.is_self(v.value):
            if v.attr in self.owner.attrs:
                return False
            reason = self.owner.unsupported.get(v.attr, "")
            if reason.startswith("a NoneType"):
                return True
            if reason:
                return False  # some other object: not None
            static = self.class_attribute(v.attr, MISSING)
            return None if static is MISSING else static is None
        if isinstance(v, ast.Name):
            if v.id in self.local_types or v.id in self.const_params or v.id in self.store_counts:
                return False  # a local or parameter: a number
            if v.id in self.src.globals:
                return self.global_value(v.id) is None
        return None

    def compare_none(self, e: ast.Compare) -> k.Expr:
        """``x is None`` / ``x is not None``: known when the graph is compiled. Compiled values
        are numbers, never None; an attribute or global holding None (an optional setting left
        unset) stays None, since compiled code cannot assign it anything else."""
        left, right = e.left, e.comparators[0]
        if is_none(left):
            left, right = right, left
        if not is_none(right):
            raise self.error(e, f"`{short(e)}`", "`is` and `is not` compare with None only")
        none = self.holds_none(left)
        if none is None:
            raise self.error(
                e, f"`{short(e)}`", "`is None` works on attributes, globals, locals and parameters"
            )
        return k.Const(T.BOOL, none == isinstance(e.ops[0], ast.Is))

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
                value = self.module_attribute(base, f.attr)
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
            const = numeric_constant(defaults[p])
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
