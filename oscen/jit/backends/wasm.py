"""The WebAssembly backend: primitive kernel IR printed as WebAssembly text (WAT) for wasmtime.

A printer and nothing more: every :class:`~oscen.jit.ops.Op` is its instruction (the ``wasm``
name in the table), every construct its folded form. No Python semantics live here: the passes
have already turned them into primitive operations and explicit ``Trap``\\ s. High-level nodes
are refused with an error naming them (a bug of ours if it happens).

What the printer decides on its own is only spelling: labels, exact hex floats, NaN payloads,
``offset=`` immediates, and how a ``Trap`` is written (inline stores and ``unreachable``, or a call
of a shared function when the pass asked for it with ``Trap.via``). One choice of instruction is
made here too: ``abs(x) < c`` against a constant becomes an integer test on x's bits
(:func:`abs_compare`, also used by the binary printer). It is not a pass because the lanes pass
must still see the float form (it has f64x2 forms for it, none for the integer one), and the
printers meet every compare anyway: a pass would walk each module once more for it. A :class:`~oscen.jit.kernel.Code`
is printed once and its text kept on the Code (``derived``), so a variant's code costs one
printing however many nodes paste it; an :class:`~oscen.jit.kernel.Instance` then only renames.
"""

from __future__ import annotations

import functools
import math
import re
import struct
import threading
from collections.abc import Callable

from .. import kernel as k
from ..kernel import T
from ..layout import NODE, TRAP_CODE, TRAP_SITE
from ..ops import Op

WT = {T.F64: "f64", T.I64: "i64", T.BOOL: "i32", T.I32: "i32", T.V128: "v128"}
"""WebAssembly value type of each kernel type (BOOL is an i32 holding 0 or 1)."""

MATH_ERROR_GLOBAL = "math_error"

FLUSH_MARK = "__FLUSH__"
RELOAD_MARK = "__RELOAD__"


class PrintError(Exception):
    """The IR handed to the printer is not primitive-level (or not well formed): a bug of oscen."""


def f64_const(v: float) -> str:
    v = float(v)
    if math.isnan(v):  # float.hex() drops a NaN's sign and payload; WAT spells them out
        bits = struct.unpack("<Q", struct.pack("<d", v))[0]
        sign = "-" if bits >> 63 else ""
        return f"(f64.const {sign}nan:0x{bits & ((1 << 52) - 1):x})"
    if math.isinf(v):
        return "(f64.const inf)" if v > 0 else "(f64.const -inf)"
    return f"(f64.const {v.hex()})"


def int_const(v: int, bits: int) -> int:
    """``v`` as the signed ``bits``-wide integer WAT spells (wrapping, as the instruction would)."""
    v = int(v) & ((1 << bits) - 1)
    return v - (1 << bits) if v >> (bits - 1) else v


def v128_const(v: bytes) -> str:
    """A V128 constant from its 16 bytes (lane 0 first), as two i64 lanes: exact bits."""
    if not isinstance(v, (bytes, bytearray)) or len(v) != 16:
        raise PrintError(f"a v128 constant is 16 bytes, got {v!r}")
    lo, hi = struct.unpack("<qq", bytes(v))
    return f"(v128.const i64x2 {lo} {hi})"


def const(t: T, v: float | int | bool | bytes) -> str:
    if t == T.V128:
        return v128_const(v)  # type: ignore[arg-type]
    if t == T.F64:
        return f64_const(v)  # type: ignore[arg-type]
    if t == T.I64:
        return f"(i64.const {int_const(v, 64)})"
    if t == T.BOOL:
        return f"(i32.const {1 if v else 0})"
    return f"(i32.const {int_const(v, 32)})"


def _mem(t: T) -> str:
    return WT[t]


def _offset(n: int) -> str:
    if n < 0:
        raise PrintError(f"negative memory offset {n}")
    return f" offset={n}" if n else ""


# ``abs(x) < c`` (and ``<=``; either side), c a constant >= 0, as an integer test on x's bits
_ABS_BELOW = {Op.F64_LT: Op.I64_LT_U, Op.F64_LE: Op.I64_LE_U}
_ABS_ABOVE = {Op.F64_GT: Op.I64_LT_U, Op.F64_GE: Op.I64_LE_U}  # c > abs(x), c >= abs(x)
ABS_COMPARE_OPS = frozenset(_ABS_BELOW) | frozenset(_ABS_ABOVE)


def abs_compare(e: k.Prim) -> k.Prim | None:
    """``abs(x) < c`` with a constant ``c >= 0`` as ``(bits(x) << 1) <u (bits(c) << 1)``, else None.

    Why: every filter's denormal flush (``if abs(y) < DENORMAL``) is this test, once per state
    per sample; Cranelift prints the float form as a mask load, an ``andpd`` and a ``ucomisd`` with
    its parity check for NaN, the integer form as a move, a shift and one compare (the seed's loop:
    54 -> 51 instructions per sample). Shifting out the sign is ``abs``; for non-negative doubles
    the bit patterns order as the values do; a NaN's shifted bits exceed every non-NaN's, so it
    compares false, as ``NaN < c`` does. Exact for every x: the backends agree with the reference
    evaluator, which keeps the float form. Only ``<``/``<=`` (``>=`` would be true for NaN)."""
    op = e.op
    if op in _ABS_BELOW:
        a, c, iop = e.args[0], e.args[1], _ABS_BELOW[op]
    elif op in _ABS_ABOVE:
        c, a, iop = e.args[0], e.args[1], _ABS_ABOVE[op]
    else:
        return None
    if not (type(a) is k.Prim and a.op is Op.F64_ABS and type(c) is k.Const):
        return None
    value = float(c.value)  # type: ignore[arg-type]
    if not value >= 0.0:  # a negative or NaN bound: keep the float test
        return None
    bits = struct.unpack("<Q", struct.pack("<d", value))[0] << 1
    shifted = k.Prim(
        T.I64, Op.I64_SHL, [k.Prim(T.I64, Op.I64_REINTERPRET_F64, [a.args[0]]), k.Const(T.I64, 1)]
    )
    return k.Prim(T.BOOL, iop, [shifted, k.Const(T.I64, int_const(bits, 64))])


SiteIndex = Callable[[k.TrapSite | None], int]


def _no_sites(where: k.TrapSite | None) -> int:
    return 0


class Printer:
    """Prints statements and expressions. ``site_index`` numbers trap sites (0: unknown); the
    caller owns the table it numbers into (a node variant's, see :class:`~oscen.jit.kernel.Code`)."""

    def __init__(self, site_index: SiteIndex = _no_sites) -> None:
        self.site_index = site_index

    # ------------------------------------------------------------------ expressions
    def expr(self, e: k.Expr) -> str:
        cls = type(e)
        if cls is k.Local:  # the commonest leaves first, without the table
            return f"(local.get ${e.name})"  # type: ignore[attr-defined]
        if cls is k.Const and e.type is T.I32:  # type: ignore[attr-defined]
            v = e.value  # type: ignore[attr-defined]
            if type(v) is int and 0 <= v < 0x80000000:
                return f"(i32.const {v})"
        method = _EXPR.get(cls)
        if method is None:
            raise PrintError(f"not a primitive-level expression: {type(e).__name__} ({e!r:.200})")
        return method(self, e)

    def _const(self, e: k.Const) -> str:
        return const(e.type, e.value)

    def _local(self, e: k.Local) -> str:
        return f"(local.get ${e.name})"

    def _prim(self, e: k.Prim) -> str:
        if len(e.args) != e.op.arity:
            raise PrintError(f"{e.op.name} takes {e.op.arity} operands, got {len(e.args)}")
        if e.op in ABS_COMPARE_OPS:
            e = abs_compare(e) or e
        return f"({e.op.wasm} {' '.join([self.expr(a) for a in e.args])})"

    def _choose(self, e: k.Choose) -> str:
        return f"(select {self.expr(e.a)} {self.expr(e.b)} {self.expr(e.cond)})"

    def _load(self, e: k.Load) -> str:
        return f"({_mem(e.type)}.load{_offset(e.offset)} {self.expr(e.addr)})"

    def _select(self, e: k.Select) -> str:
        return (
            f"(if (result {WT[e.type]}) {self.expr(e.cond)}"
            f" (then {self.expr(e.then)}) (else {self.expr(e.orelse)}))"
        )

    def _logical(self, e: k.Logical) -> str:
        a, b = self.expr(e.left), self.expr(e.right)
        if e.op == "and":
            return f"(if (result i32) {a} (then {b}) (else (i32.const 0)))"
        if e.op == "or":
            return f"(if (result i32) {a} (then (i32.const 1)) (else {b}))"
        raise PrintError(f"unknown logical operator {e.op!r}")

    def _let(self, e: k.Let) -> str:
        return f"(block (result {WT[e.type]}) (local.set ${e.name} {self.expr(e.value)}) {self.expr(e.body)})"

    def _seq(self, e: k.Seq) -> str:
        body = "\n".join(self.stmts(e.body))
        return f"(block (result {WT[e.type]})\n{body}\n{self.expr(e.value)})"

    def _call(self, e: k.CallFn) -> str:
        args = "".join([" " + self.expr(a) for a in e.args])
        return f"(call ${e.func}{args})"

    def _global(self, e: k.GetGlobal) -> str:
        return f"(global.get ${e.name})"

    # ------------------------------------------------------------------ statements
    def stmts(self, body: list[k.Stmt]) -> list[str]:
        stmt = self.stmt
        return [stmt(s) for s in body]

    def stmt(self, s: k.Stmt) -> str:
        method = _STMT.get(type(s))
        if method is None:
            raise PrintError(f"not a primitive-level statement: {type(s).__name__} ({s!r:.200})")
        return method(self, s)

    def _set_local(self, s: k.SetLocal) -> str:
        return f"(local.set ${s.name} {self.expr(s.value)})"

    def _assign(self, s: k.Assign) -> str:
        if not isinstance(s.target, k.Local):
            raise PrintError(f"assignment to {type(s.target).__name__} is not primitive-level")
        return f"(local.set ${s.target.name} {self.expr(s.value)})"

    def _store(self, s: k.Store) -> str:
        return f"({_mem(s.type)}.store{_offset(s.offset)} {self.expr(s.addr)} {self.expr(s.value)})"

    def _set_global(self, s: k.SetGlobal) -> str:
        return f"(global.set ${s.name} {self.expr(s.value)})"

    def _if(self, s: k.If) -> str:
        then = "\n".join(self.stmts(s.body))
        text = f"(if {self.expr(s.cond)} (then\n{then})"
        if s.orelse:
            text += " (else\n" + "\n".join(self.stmts(s.orelse)) + ")"
        return text + ")"

    def _block(self, s: k.Block) -> str:
        return f"(block ${s.label}\n" + "\n".join(self.stmts(s.body)) + ")"

    def _loop(self, s: k.Loop) -> str:
        head = "" if s.cond is None else f"(br_if ${s.label} (i32.eqz {self.expr(s.cond)}))\n"
        body = "\n".join(self.stmts(s.body))
        return f"(block ${s.label} (loop ${s.label}__next\n{head}{body}\n(br ${s.label}__next)))"

    def _exit(self, s: k.Exit) -> str:
        if s.cond is None:
            return f"(br ${s.label})"
        return f"(br_if ${s.label} {self.expr(s.cond)})"

    def _next(self, s: k.Next) -> str:
        return f"(br ${s.label}__next)"

    def _invoke(self, s: k.Invoke) -> str:
        args = "".join([" " + self.expr(a) for a in s.args])
        text = f"(call ${s.func}{args})"
        if s.targets and len(s.targets) != len(s.results):
            raise PrintError(f"call of {s.func}: {len(s.targets)} targets for {len(s.results)} results")
        if s.targets:  # results come off the stack last first
            return text + "".join(f" (local.set ${t})" for t in reversed(s.targets))
        return text + " drop" * len(s.results)

    def _return(self, s: k.ReturnValues) -> str:
        return "(return" + "".join(" " + self.expr(v) for v in s.values) + ")"

    def _expr_stmt(self, s: k.ExprStmt) -> str:
        return f"(drop {self.expr(s.value)})"

    def _trap(self, s: k.Trap) -> str:
        if s.math_error:
            return f"(global.set ${MATH_ERROR_GLOBAL} (i32.const {s.math_error})) unreachable"
        site = self.site_index(s.where)
        if s.via:
            node = "(i32.const 0)" if s.node is None else self.expr(s.node)
            return f"(call ${s.via} (i32.const {site}) (i32.const {s.code}) {node})"
        return (
            ("" if s.node is None else f"(i32.store (i32.const {NODE}) {self.expr(s.node)}) ")
            + f"(i32.store (i32.const {TRAP_SITE}) (i32.const {site}))"
            f" (i32.store (i32.const {TRAP_CODE}) (i32.const {s.code})) unreachable"
        )

    def _unreachable(self, s: k.Unreachable) -> str:
        return "unreachable"

    def _memcopy(self, s: k.MemCopy) -> str:
        return f"(memory.copy {self.expr(s.dst)} {self.expr(s.src)} {self.expr(s.nbytes)})"

    def _sync(self, s: k.SyncState) -> str:
        if s.direction == "flush":
            return FLUSH_MARK
        if s.direction == "reload":
            return RELOAD_MARK
        raise PrintError(f"SyncState direction {s.direction!r}")

    def _instance(self, s: k.Instance) -> str:
        text = code_text(s.code)
        if FLUSH_MARK in text:
            text = text.replace(FLUSH_MARK, " ".join(self.stmts(s.flush)))
            text = text.replace(RELOAD_MARK, " ".join(self.stmts(s.reload)))
        return rename(text, s.renames)


_EXPR: dict[type, Callable[[Printer, k.Expr], str]] = {
    k.Const: Printer._const,
    k.Local: Printer._local,
    k.Prim: Printer._prim,
    k.Choose: Printer._choose,
    k.Load: Printer._load,
    k.Select: Printer._select,
    k.Logical: Printer._logical,
    k.Let: Printer._let,
    k.Seq: Printer._seq,
    k.CallFn: Printer._call,
    k.GetGlobal: Printer._global,
}
_STMT: dict[type, Callable[[Printer, k.Stmt], str]] = {
    k.SetLocal: Printer._set_local,
    k.Assign: Printer._assign,
    k.Store: Printer._store,
    k.SetGlobal: Printer._set_global,
    k.If: Printer._if,
    k.Block: Printer._block,
    k.Loop: Printer._loop,
    k.Exit: Printer._exit,
    k.Next: Printer._next,
    k.Invoke: Printer._invoke,
    k.ReturnValues: Printer._return,
    k.ExprStmt: Printer._expr_stmt,
    k.Trap: Printer._trap,
    k.SyncState: Printer._sync,
    k.Unreachable: Printer._unreachable,
    k.MemCopy: Printer._memcopy,
    k.Instance: Printer._instance,
}

_NAME = re.compile(r"\$([A-Za-z0-9_.]+)")


@functools.lru_cache(maxsize=256)
def _names_pattern(names: frozenset[str]) -> re.Pattern[str]:
    """A pattern matching exactly ``$name`` for these names (longest first, whole names only)."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(r"\$(" + alternatives + r")(?![A-Za-z0-9_.])")


def rename(text: str, renames: dict[str, str]) -> str:
    """``text`` with the names in ``renames`` (locals, labels: without ``$``) replaced.

    The pattern matches only the names renamed (the nodes of a variant share their keys, so one
    compiled pattern serves them all): a callback per renamed occurrence, not per ``$`` name in the
    text, which made pasting a variant's code for each node of a large graph ~15x slower."""
    if not renames:
        return text
    return _names_pattern(frozenset(renames)).sub(lambda m: "$" + renames[m.group(1)], text)


def code_sites(code: k.Code) -> SiteIndex:
    """Numbering of a Code's trap sites: position in ``code.sites`` plus one (0: unknown)."""
    # Keyed by identity (TrapSites compare by identity), in a dict that lives only as long as
    # this printing: no id() outlives its object.
    index = {id(s): i + 1 for i, s in enumerate(code.sites)}
    return lambda where: 0 if where is None else index.get(id(where), 0)


def code_text(code: k.Code) -> str:
    """The text of a Code's body, printed once and kept on the Code. Trap sites are numbered in the
    Code's own table (``code.sites``, shared by the Codes and Functions of one node variant), which
    the program maps per node: the same text serves every node of the variant."""
    text = code.derived.get("wat")
    if text is None:
        printer = Printer(code_sites(code))
        text = "\n".join(printer.stmts(code.body))
        code.derived["wat"] = text
    return text


def signature(params: list[tuple[str, T]] | tuple[T, ...], results: tuple[T, ...]) -> str:
    """`` (param $a f64) ... (result ...)`` for named params, `` (param f64) ...`` for bare types."""
    parts = []
    for p in params:
        if isinstance(p, tuple):
            parts.append(f"(param ${p[0]} {WT[p[1]]})")
        else:
            parts.append(f"(param {WT[p]})")
    if results:
        parts.append(f"(result {' '.join(WT[t] for t in results)})")
    return "".join(" " + x for x in parts)


KEPT_TEXTS = 64
"""Statement lists whose printing :func:`function_text` keeps (see :func:`keep_text`)."""
_kept: dict[int, tuple[list[k.Stmt], str | None]] = {}
_kept_lock = threading.Lock()


def keep_text(body: list[k.Stmt]) -> None:
    """Have :func:`function_text` keep the printing of ``body``, a statement list nobody changes
    from now on (a lane body and its outlined arms, which the compile caches hand to every
    compile of a graph with those voices): printed once, not once per compile. Kept only if its
    printing does not depend on the caller's trap-site table (no site numbered by it); the
    newest :data:`KEPT_TEXTS` lists are kept (each alive while it is)."""
    with _kept_lock:
        if id(body) not in _kept:
            _kept[id(body)] = (body, None)
            while len(_kept) > KEPT_TEXTS:
                _kept.pop(next(iter(_kept)))


def _body_text(body: list[k.Stmt], site_index: SiteIndex) -> str:
    kept = _kept.get(id(body))  # one dict read (atomic); writes are locked
    if kept is None or kept[0] is not body:
        return "\n".join(Printer(site_index).stmts(body))
    if kept[1] is not None:
        return kept[1]
    numbered = False

    def sites(where: k.TrapSite | None) -> int:
        nonlocal numbered
        numbered = True
        return site_index(where)

    text = "\n".join(Printer(sites).stmts(body))
    if not numbered:
        with _kept_lock:
            if id(body) in _kept:
                _kept[id(body)] = (body, text)
    return text


def function_text(fn: k.Function, site_index: SiteIndex = _no_sites) -> str:
    """``(func $name (export "...") (param ...) (result ...) (local ...) body)``."""
    head = f"(func ${fn.name}"
    if fn.export:
        head += f' (export "{fn.export}")'
    head += signature(fn.params, fn.results)
    params = {n for n, _ in fn.params}
    decls = "".join(f" (local ${n} {WT[t]})" for n, t in fn.locals.items() if n not in params)
    body = _body_text(fn.body, site_index)
    tail = ""
    if fn.results and not (fn.body and isinstance(fn.body[-1], (k.ReturnValues, k.Trap))):
        tail = "\nunreachable"  # every path returned or trapped above
    return head + decls + "\n" + body + tail + ")"


def module_text(module: k.Module, site_index: SiteIndex = _no_sites) -> str:
    """A whole module: imports first (WebAssembly wants them before definitions), then memory,
    globals and functions."""
    lines = ["(module"]
    for imp in module.imports:
        lines.append(
            f'(import "{imp.module}" "{imp.name}" (func ${imp.name}{signature(imp.params, imp.results)}))'
        )
    if module.memory_pages:
        lines.append(f'(memory (export "memory") {module.memory_pages} {module.memory_pages})')
    for g in module.globals:
        export = f' (export "{g.export}")' if g.export else ""
        ty = f"(mut {WT[g.type]})" if g.mutable else WT[g.type]
        lines.append(f"(global ${g.name}{export} {ty} {const(g.type, g.init)})")
    for fn in module.functions:
        lines.append(function_text(fn, site_index))
    lines.append(")")
    return "\n".join(lines)
