"""Node methods' source, parsed once per function object, and what compiled code folded in from it.

The cache is weak (a reloaded patch's functions are dropped with their module) and keyed by the
function object, not its code object: code objects compare equal across a reload of a module in
which only a global changed, and the cached entry would carry the old module's globals
(interpreted ``GAIN = 0.8``, compiled the stale 0.5).
"""

from __future__ import annotations

import ast
import inspect
import struct
import textwrap
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...graph.ir import parse_python
from .errors import JitError


@dataclass
class Source:
    """A parsed method: its ``def``, the file it is in, where it starts and its module's globals."""

    tree: ast.FunctionDef
    file: str
    line_offset: int
    globals: dict[str, Any]
    _names: tuple[dict[str, int], frozenset[str]] | None = field(default=None, repr=False, compare=False)

    def _scan(self) -> tuple[dict[str, int], frozenset[str]]:
        if self._names is None:
            stores: dict[str, int] = {}
            loads: set[str] = set()
            for node in ast.walk(self.tree):
                if isinstance(node, ast.Name):
                    if isinstance(node.ctx, ast.Store):
                        stores[node.id] = stores.get(node.id, 0) + 1
                    else:
                        loads.add(node.id)
            self._names = (stores, frozenset(loads))
        return self._names

    @property
    def stores(self) -> dict[str, int]:
        """How many times each name is assigned in the body (a walk of the tree, done once)."""
        return self._scan()[0]

    @property
    def names(self) -> frozenset[str]:
        """Every name read in the function (``self`` among them, in a method)."""
        return self._scan()[1]


_Source = Source  # the name before the frontend became a package

_SOURCE_CACHE: weakref.WeakKeyDictionary[Callable[..., Any], Source] = weakref.WeakKeyDictionary()
"""Parsed methods by function object (see the module docstring)."""


class _Missing:
    pass


MISSING = _Missing()
"""What a name that is not there resolves to (a value no global can hold)."""


def fingerprint(value: Any) -> Any:
    """What a resolved global must still be for compiled code that folded it to stay valid:
    numbers by type and bits (so -0.0, NaN signs and 0 vs 0.0 count), other objects by identity."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, (bool, int)) and type(value) in (bool, int):
        return (type(value).__name__, value)
    return ("object", id(value))



def source_of(func: Callable[..., Any], node_name: str) -> Source:
    """The parsed source of ``func`` (cached), or a JitError saying why it cannot be read."""
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
    tree = parse_python(textwrap.dedent("".join(lines)))
    fdef = tree.body[0]
    if not isinstance(fdef, ast.FunctionDef):
        raise JitError(f"{func.__qualname__} is not a plain function", node=node_name)
    src = Source(fdef, code_obj.co_filename, first - 1, func.__globals__)
    _SOURCE_CACHE[func] = src
    return src


_source_of = source_of  # the name before the frontend became a package
