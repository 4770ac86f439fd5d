"""Inlining of WAT functions (the math library, checked integer ops) into node code.

Cranelift does not inline calls, and a call inside the per-sample loop — even on a path never
taken — makes its register allocator spill every float live across the loop (all float registers
are caller-saved). Measured here: a biquad with its coefficient update (sin, cos, a division) behind
an ``if`` ran ~10x slower than the same loop without calls. So every call in node code is expanded
in place: parameters and locals get fresh names, ``return`` becomes a branch out of a block.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

Sexpr = str | list["Sexpr"]


def parse(text: str) -> list[Sexpr]:
    """Parse WAT text into nested lists of atoms (comments dropped)."""
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == ";" and text.startswith(";;", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == "(" and text.startswith("(;", i):
            j = text.find(";)", i)
            i = n if j < 0 else j + 2
        elif c in "()":
            tokens.append(c)
            i += 1
        else:
            j = i
            while j < n and text[j] not in " \t\r\n()":
                j += 1
            tokens.append(text[i:j])
            i = j
    stack: list[list[Sexpr]] = [[]]
    for t in tokens:
        if t == "(":
            stack.append([])
        elif t == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(t)
    return stack[0]


def render(e: Sexpr) -> str:
    """The text of an s-expression (iterative: deeply nested code must not hit the recursion limit)."""
    if isinstance(e, str):
        return e
    parts = ["("]
    stack: list[tuple[list[Sexpr], int]] = [(e, 0)]
    while stack:
        items, i = stack.pop()
        if i == len(items):
            parts.append(")")
            continue
        if i:
            parts.append(" ")
        stack.append((items, i + 1))
        x = items[i]
        if isinstance(x, str):
            parts.append(x)
        else:
            parts.append("(")
            stack.append((x, 0))
    return "".join(parts)


@dataclass
class WatFunction:
    name: str
    params: list[tuple[str, str]]
    results: list[str]
    locals: list[tuple[str, str]]
    body: list[Sexpr]


def parse_function(text: str) -> WatFunction:
    (f,) = parse(text)
    assert isinstance(f, list) and f[0] == "func", text[:80]
    name = f[1]
    assert isinstance(name, str) and name.startswith("$")
    params: list[tuple[str, str]] = []
    results: list[str] = []
    locals_: list[tuple[str, str]] = []
    body: list[Sexpr] = []
    for item in f[2:]:
        if isinstance(item, list) and item and item[0] in ("param", "local", "result") and not body:
            kind = item[0]
            rest = [x for x in item[1:] if isinstance(x, str)]
            if kind == "result":
                results.extend(rest)
            elif rest and rest[0].startswith("$"):
                (params if kind == "param" else locals_).append((rest[0], rest[1]))
            else:
                raise ValueError(f"{name}: unnamed {kind}s are not supported by the inliner")
        else:
            body.append(item)
    return WatFunction(name[1:], params, results, locals_, body)


_NON_LOCAL_AFTER = {"call", "global.get", "global.set", "return_call"}


INLINE_LIMIT = 6000
"""Functions whose expansion is longer (characters of WAT) stay calls: inlining a rarely-run slow
path (sin's reduction of huge arguments) everywhere would multiply code size and compile time."""


class Inliner:
    """Expands calls to known functions in place, recursively, except the large ones."""

    def __init__(self, functions: dict[str, WatFunction]) -> None:
        self.functions = functions
        self._ids = itertools.count()
        self.locals: dict[str, str] = {}  # every local the expansions introduced: name -> type
        self.called: set[str] = set()  # functions left as calls, to emit in the module
        self.outlined: set[str] = _outlined(functions)

    def inline(self, name: str, args: list[str], prologue: str = "") -> str:
        """The text of ``name(args...)``, expanded unless too large; ``prologue`` runs after the
        arguments are evaluated and before the body."""
        if name in self.outlined:
            self.called.add(name)
            call = f"(call ${name})"
            if prologue:
                return f"(block (result {' '.join(self.functions[name].results)}) {' '.join(args)} {prologue} {call})"
            return f"(call ${name} {' '.join(args)})"
        return render(self._expand(name, list(args), prologue))

    def _expand(self, name: str, args: list[Sexpr], prologue: str = "") -> Sexpr:
        fn = self.functions[name]
        prefix = f"$_{name}{next(self._ids)}_"
        rename = {p: prefix + p[1:] for p, _ in fn.params}
        rename.update({loc: prefix + loc[1:] for loc, _ in fn.locals})
        label = prefix + "ret"
        for p, t in fn.params:
            self.locals[rename[p]] = t
        for loc, t in fn.locals:
            self.locals[rename[loc]] = t
        out: list[Sexpr] = ["block", label]
        if fn.results:
            out.append(["result", *fn.results])
        if args:
            if len(args) != len(fn.params):
                raise ValueError(f"${name} takes {len(fn.params)} arguments, got {len(args)}")
            for (p, _), a in zip(fn.params, args, strict=True):
                out.append(["local.set", rename[p], a])
        else:  # arguments already on the stack: pop them last first
            for p, _ in reversed(fn.params):
                out.append(["local.set", rename[p]])
        if prologue:
            out.extend(parse(prologue))
        for loc, t in fn.locals:  # locals start at zero in a function; keep that inside a loop
            out.append(["local.set", rename[loc], [f"{t}.const", "0"]])
        out.extend(self._rewrite(fn.body, rename, prefix, label))
        return out

    def _rewrite(self, items: list[Sexpr], rename: dict[str, str], prefix: str, label: str) -> list[Sexpr]:
        out: list[Sexpr] = []
        i = 0
        while i < len(items):
            item = items[i]
            prev = items[i - 1] if i > 0 else None
            if isinstance(item, str):
                if (
                    item == "call"
                    and i + 1 < len(items)
                    and isinstance(items[i + 1], str)
                    and items[i + 1][1:] in self.outlined
                ):
                    self.called.add(items[i + 1][1:])
                if (
                    item == "call"
                    and i + 1 < len(items)
                    and isinstance(items[i + 1], str)
                    and items[i + 1][1:] in self.functions
                    and items[i + 1][1:] not in self.outlined
                ):
                    out.append(self._expand(items[i + 1][1:], []))  # flat call: args on the stack
                    i += 2
                    continue
                if item == "return":
                    out.extend(["br", label])
                elif item.startswith("$") and prev not in _NON_LOCAL_AFTER:
                    out.append(rename.get(item, prefix + item[1:]))
                else:
                    out.append(item)
                i += 1
                continue
            if item and item[0] == "call" and isinstance(item[1], str) and item[1][1:] in self.outlined:
                self.called.add(item[1][1:])
                out.append(["call", item[1], *self._rewrite(item[2:], rename, prefix, label)])
            elif item and item[0] == "call" and isinstance(item[1], str) and item[1][1:] in self.functions:
                args = self._rewrite(item[2:], rename, prefix, label)
                out.append(self._expand(item[1][1:], args))
            elif item and item[0] == "return":
                out.append(["br", label, *self._rewrite(item[1:], rename, prefix, label)])
            else:
                out.append(self._rewrite(item, rename, prefix, label))
            i += 1
        return out


_OUTLINED: dict[int, tuple[dict[str, WatFunction], set[str]]] = {}
_OUTLINED_LOCK = threading.Lock()
OUTLINED_CACHE = 8
"""Function tables whose outlining decision is remembered (the library's, in practice)."""


def _outlined(functions: dict[str, WatFunction]) -> set[str]:
    """The functions whose full expansion (nested calls expanded too) exceeds INLINE_LIMIT.

    Decided bottom-up: a function is measured with its already-outlined callees left as calls.
    Cached by the table's identity: the entry holds the table, so its id cannot be reused by
    another table while the entry exists, and the cache holds at most OUTLINED_CACHE tables.
    """
    key = id(functions)
    with _OUTLINED_LOCK:
        entry = _OUTLINED.get(key)
    if entry is not None and entry[0] is functions:
        return set(entry[1])
    probe = Inliner.__new__(Inliner)
    probe.functions = functions
    probe._ids = itertools.count()
    probe.locals = {}
    probe.called = set()
    probe.outlined = set()
    sizes: dict[str, int] = {}

    def size(name: str, stack: tuple[str, ...] = ()) -> int:
        if name in sizes:
            return sizes[name]
        fn = functions[name]
        for callee in _callees(fn.body):
            if callee in functions and callee not in stack:
                size(callee, (*stack, name))
        sizes[name] = len(render(probe._expand(name, ["x"] * len(fn.params))))
        if sizes[name] > INLINE_LIMIT:
            probe.outlined.add(name)
        return sizes[name]

    for name in functions:
        size(name)
    with _OUTLINED_LOCK:
        _OUTLINED[key] = (functions, probe.outlined)
        while len(_OUTLINED) > OUTLINED_CACHE:
            _OUTLINED.pop(next(iter(_OUTLINED)))
    return set(probe.outlined)


def _callees(items: list[Sexpr]) -> set[str]:
    found: set[str] = set()
    for i, item in enumerate(items):
        if isinstance(item, list):
            found |= _callees(item)
        elif item == "call" and i + 1 < len(items) and isinstance(items[i + 1], str):
            found.add(str(items[i + 1])[1:])
    return found
