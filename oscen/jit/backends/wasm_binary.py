"""The WebAssembly backend's second printer: primitive kernel IR straight to the binary format.

The text printer (:mod:`.wasm`) stays the definition of what each construct is: this one writes
the same instructions, in the same order, as ``wasmtime.wat2wasm`` makes of that text, so the
module is the same (tests/test_wasm_binary.py compares the two section by section on the test
suite's graphs). What it saves is the text's parse: 2.5-3 ms of wat2wasm for the 64-voice
module (76 KiB of text, 14 KiB of binary), on the way to a playable graph.

Names become indices: functions (imports first) and globals by their order in the module, locals
by the function's params then its declared locals, labels by their depth (a stack of the
enclosing blocks, ``if``s and loops, as the text's folded forms open them). An
:class:`~oscen.jit.kernel.Instance` is its Code's statements with its renames applied (innermost
first, as the text printer renames the pasted text), its ``SyncState`` marks its ``flush`` and
``reload`` statements. Each :class:`~oscen.jit.ops.Op`'s encoding is taken from wat2wasm itself
(one module holding every op, assembled once per process), not from a table typed here.

The module carries a ``name`` section with the functions' names (what a trap's backtrace shows);
the text's local names are not written.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable

from .. import kernel as k
from ..kernel import T
from ..layout import NODE, TRAP_CODE, TRAP_SITE
from ..ops import Op
from . import wasm as wasm_text
from .wasm import (
    ABS_COMPARE_OPS,
    MATH_ERROR_GLOBAL,
    WT,
    PrintError,
    SiteIndex,
    _no_sites,
    abs_compare,
    code_sites,
    int_const,
)

VALTYPE = {T.F64: 0x7C, T.I64: 0x7E, T.BOOL: 0x7F, T.I32: 0x7F, T.V128: 0x7B}
_WT_CODE = {"i32": 0x7F, "i64": 0x7E, "f64": 0x7C, "v128": 0x7B}
# loads and stores: (opcode bytes, log2 of the natural alignment), by the memory type's name
_LOAD = {"i32": (b"\x28", 2), "i64": (b"\x29", 3), "f64": (b"\x2b", 3), "v128": (b"\xfd\x00", 4)}
_STORE = {"i32": (b"\x36", 2), "i64": (b"\x37", 3), "f64": (b"\x39", 3), "v128": (b"\xfd\x0b", 4)}
_END, _ELSE, _BLOCK, _LOOP, _IF, _BR, _BR_IF = 0x0B, 0x05, 0x02, 0x03, 0x04, 0x0C, 0x0D
_VOID = 0x40


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


_ULEB = [uleb(i) for i in range(1024)]


def _u(n: int) -> bytes:
    return _ULEB[n] if 0 <= n < 1024 else uleb(n)


def _name(text: str) -> bytes:
    raw = text.encode()
    return _u(len(raw)) + raw


def _vec(items: list[bytes]) -> bytes:
    return _u(len(items)) + b"".join(items)


def _section(sid: int, payload: bytes) -> bytes:
    return bytes([sid]) + _u(len(payload)) + payload


_OPCODES: dict[Op, bytes] = {}
_OPCODES_LOCK = threading.Lock()


def opcodes() -> dict[Op, bytes]:
    """Each op's instruction bytes (lane immediates included), read off wat2wasm's assembly of
    one module with a function per op (``local.get`` of each argument, then the op)."""
    if _OPCODES:
        return _OPCODES
    import wasmtime

    with _OPCODES_LOCK:
        if _OPCODES:
            return _OPCODES
        ops = list(Op)
        funcs = []
        for op in ops:
            params = "".join(f" (param {WT[t]})" for t in op.args)
            gets = " ".join(f"local.get {i}" for i in range(len(op.args)))
            funcs.append(f"(func{params} (result {WT[op.result]}) {gets} {op.wasm})")
        binary = bytes(wasmtime.wat2wasm("(module " + "\n".join(funcs) + ")"))
        bodies = _code_bodies(binary)
        found = {}
        for op, body in zip(ops, bodies, strict=True):
            prefix = 1 + 2 * len(op.args)  # no locals, then local.get i (i < 128: two bytes each)
            if body[0] != 0 or body[-1] != _END:
                raise PrintError(f"unexpected encoding of {op.wasm}: {body.hex()}")
            found[op] = bytes(body[prefix:-1])
        _OPCODES.update(found)
        return _OPCODES


def _read_uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def sections(binary: bytes) -> list[tuple[int, bytes]]:
    """A module's sections as (id, payload), in order (custom sections included, id 0)."""
    if binary[:8] != b"\0asm\1\0\0\0":
        raise ValueError("not a WebAssembly module")
    out, pos = [], 8
    while pos < len(binary):
        sid = binary[pos]
        size, pos = _read_uleb(binary, pos + 1)
        out.append((sid, bytes(binary[pos : pos + size])))
        pos += size
    return out


def _code_bodies(binary: bytes) -> list[bytes]:
    payload = next(p for sid, p in sections(binary) if sid == 10)
    count, pos = _read_uleb(payload, 0)
    bodies = []
    for _ in range(count):
        size, pos = _read_uleb(payload, pos)
        bodies.append(payload[pos : pos + size])
        pos += size
    return bodies


_TEXTS: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
_TEXTS_LOCK = threading.Lock()


def _text_instructions(text: str, local_types: tuple[tuple[str, str], ...]) -> bytes:
    """The instructions of a statement list given as WebAssembly text, in a function with these
    locals (name, type), in index order: wat2wasm assembles it, once per process. Only locals
    and memory may be named in it (the text of :func:`.passes.runtime.trap_function`)."""
    key = (text, local_types)
    got = _TEXTS.get(key)
    if got is None:
        import wasmtime

        decls = "".join(f" (local ${name} {t})" for name, t in local_types)
        try:
            binary = bytes(wasmtime.wat2wasm(f"(module (memory 1) (func{decls}\n{text}))"))
        except wasmtime.WasmtimeError as exc:
            raise PrintError(f"a Code given as text that names more than locals: {exc}") from exc
        body = _code_bodies(binary)[0]
        count, pos = _read_uleb(body, 0)
        for _ in range(count):
            _, pos = _read_uleb(body, pos)
            pos += 1
        got = bytes(body[pos:-1])
        with _TEXTS_LOCK:
            if len(_TEXTS) > 64:
                _TEXTS.clear()
            _TEXTS[key] = got
    return got


class BinaryPrinter:
    """One function body at a time, into ``out``. ``funcs``/``globals_``: the module's indices."""

    def __init__(self, funcs: dict[str, int], globals_: dict[str, int], site_index: SiteIndex) -> None:
        self.funcs = funcs
        self.globals = globals_
        self.ops = opcodes()
        self.out = bytearray()
        self.locals: dict[str, int] = {}
        self.labels: list[str | None] = []
        self.renames: list[dict[str, str]] = []
        self.sites: list[SiteIndex] = [site_index]
        self.instances: list[k.Instance] = []
        self.parts: list[bytes | tuple[str, str]] = []
        self.local_types: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ names
    def name(self, name: str) -> str:
        for renames in reversed(self.renames):  # innermost Instance first, as the text is renamed
            name = renames.get(name, name)
        return name

    def local_index(self, name: str) -> bytes:
        if self.renames:
            name = self.name(name)
        index = self.locals.get(name)
        if index is None:
            raise PrintError(f"local ${name} is not declared in the function")
        return _u(index)

    def depth(self, label: str) -> bytes:
        return self.depth_of(self.name(label) if self.renames else label, "block")

    # ------------------------------------------------------------------ expressions
    def expr(self, e: k.Expr) -> None:
        cls = type(e)
        if cls is k.Local:
            self.out += b"\x20" + self.local_index(e.name)  # type: ignore[attr-defined]
            return
        method = _EXPR.get(cls)
        if method is None:
            raise PrintError(f"not a primitive-level expression: {type(e).__name__} ({e!r:.200})")
        method(self, e)

    def _const(self, e: k.Const) -> None:
        self.const(e.type, e.value)

    def const(self, t: T, v: float | int | bool | bytes) -> None:
        out = self.out
        if t is T.F64:
            out += b"\x44" + struct.pack("<d", float(v))  # the bits: NaN payloads and -0.0 kept
        elif t is T.I32:
            out += b"\x41" + sleb(int_const(v, 32))  # type: ignore[arg-type]
        elif t is T.BOOL:
            out += b"\x41\x01" if v else b"\x41\x00"
        elif t is T.I64:
            out += b"\x42" + sleb(int_const(v, 64))  # type: ignore[arg-type]
        elif t is T.V128:
            if not isinstance(v, (bytes, bytearray)) or len(v) != 16:
                raise PrintError(f"a v128 constant is 16 bytes, got {v!r}")
            out += b"\xfd\x0c" + bytes(v)
        else:
            raise PrintError(f"no constant of type {t}")

    def _prim(self, e: k.Prim) -> None:
        if len(e.args) != e.op.arity:
            raise PrintError(f"{e.op.name} takes {e.op.arity} operands, got {len(e.args)}")
        if e.op in ABS_COMPARE_OPS:
            e = abs_compare(e) or e
        expr = self.expr
        for a in e.args:
            expr(a)
        self.out += self.ops[e.op]

    def _choose(self, e: k.Choose) -> None:
        self.expr(e.a)
        self.expr(e.b)
        self.expr(e.cond)
        self.out.append(0x1B)

    def _load(self, e: k.Load) -> None:
        self.expr(e.addr)
        code, align = _LOAD[WT[e.type]]
        self.out += code + _u(align) + _u(self.offset(e.offset))

    @staticmethod
    def offset(n: int) -> int:
        if n < 0:
            raise PrintError(f"negative memory offset {n}")
        return n

    def _open(self, opcode: int, blocktype: int, label: str | None) -> None:
        self.out.append(opcode)
        self.out.append(blocktype)
        self.labels.append(label)

    def _close(self) -> None:
        self.out.append(_END)
        self.labels.pop()

    def _select(self, e: k.Select) -> None:
        self.expr(e.cond)
        self._open(_IF, VALTYPE[e.type], None)
        self.expr(e.then)
        self.out.append(_ELSE)
        self.expr(e.orelse)
        self._close()

    def _logical(self, e: k.Logical) -> None:
        if e.op not in ("and", "or"):
            raise PrintError(f"unknown logical operator {e.op!r}")
        self.expr(e.left)
        self._open(_IF, 0x7F, None)
        if e.op == "and":
            self.expr(e.right)
            self.out += b"\x05\x41\x00"
        else:
            self.out += b"\x41\x01\x05"
            self.expr(e.right)
        self._close()

    def _let(self, e: k.Let) -> None:
        self._open(_BLOCK, VALTYPE[e.type], None)
        self.expr(e.value)
        self.out += b"\x21" + self.local_index(e.name)
        self.expr(e.body)
        self._close()

    def _seq(self, e: k.Seq) -> None:
        self._open(_BLOCK, VALTYPE[e.type], None)
        self.stmts(e.body)
        self.expr(e.value)
        self._close()

    def _call(self, e: k.CallFn) -> None:
        for a in e.args:
            self.expr(a)
        self.out.append(0x10)
        self.ref("func", e.func)

    def ref(self, kind: str, name: str) -> None:
        """A function's or global's index, written when the module's are known: a function's
        bytes are kept for the next module (see :func:`function_body`), where they may differ."""
        if name not in (self.funcs if kind == "func" else self.globals):
            what = "call of" if kind == "func" else "global"
            raise PrintError(f"{what} ${name}, which the module does not have")
        self.parts.append(bytes(self.out))
        del self.out[:]  # in place: callers hold ``out``
        self.parts.append((kind, name))

    def _global(self, e: k.GetGlobal) -> None:
        self.out.append(0x23)
        self.ref("global", e.name)

    # ------------------------------------------------------------------ statements
    def stmts(self, body: list[k.Stmt]) -> None:
        table = _STMT
        for s in body:
            method = table.get(type(s))
            if method is None:
                raise PrintError(f"not a primitive-level statement: {type(s).__name__} ({s!r:.200})")
            method(self, s)

    def _set_local(self, s: k.SetLocal) -> None:
        self.expr(s.value)
        self.out += b"\x21" + self.local_index(s.name)

    def _assign(self, s: k.Assign) -> None:
        if not isinstance(s.target, k.Local):
            raise PrintError(f"assignment to {type(s.target).__name__} is not primitive-level")
        self.expr(s.value)
        self.out += b"\x21" + self.local_index(s.target.name)

    def _store(self, s: k.Store) -> None:
        self.expr(s.addr)
        self.expr(s.value)
        code, align = _STORE[WT[s.type]]
        self.out += code + _u(align) + _u(self.offset(s.offset))

    def _set_global(self, s: k.SetGlobal) -> None:
        self.expr(s.value)
        self.out.append(0x24)
        self.ref("global", s.name)

    def _if(self, s: k.If) -> None:
        self.expr(s.cond)
        self._open(_IF, _VOID, None)
        self.stmts(s.body)
        if s.orelse:
            self.out.append(_ELSE)
            self.stmts(s.orelse)
        self._close()

    def _block(self, s: k.Block) -> None:
        self._open(_BLOCK, _VOID, self.name(s.label) if self.renames else s.label)
        self.stmts(s.body)
        self._close()

    def _loop(self, s: k.Loop) -> None:
        label = self.name(s.label) if self.renames else s.label
        self._open(_BLOCK, _VOID, label)
        self._open(_LOOP, _VOID, label + "__next")
        if s.cond is not None:
            self.expr(s.cond)
            self.out += b"\x45\x0d\x01"  # i32.eqz, br_if to the block (one out)
        self.stmts(s.body)
        self.out += b"\x0c\x00"  # br to the loop
        self._close()
        self._close()

    def _exit(self, s: k.Exit) -> None:
        if s.cond is None:
            self.out.append(_BR)
        else:
            self.expr(s.cond)
            self.out.append(_BR_IF)
        self.out += self.depth(s.label)

    def _next(self, s: k.Next) -> None:
        label = self.name(s.label) if self.renames else s.label
        self.out.append(_BR)
        self.out += self.depth_of(label + "__next")

    def depth_of(self, label: str, what: str = "loop") -> bytes:
        """The branch depth of an enclosing label already renamed (innermost first)."""
        labels = self.labels
        for i in range(len(labels) - 1, -1, -1):
            if labels[i] == label:
                return _u(len(labels) - 1 - i)
        raise PrintError(f"branch to ${label}, which no enclosing {what} has")

    def _invoke(self, s: k.Invoke) -> None:
        if s.targets and len(s.targets) != len(s.results):
            raise PrintError(f"call of {s.func}: {len(s.targets)} targets for {len(s.results)} results")
        for a in s.args:
            self.expr(a)
        out = self.out
        out.append(0x10)
        self.ref("func", s.func)
        if s.targets:  # results come off the stack last first
            for t in reversed(s.targets):
                out += b"\x21" + self.local_index(t)
        else:
            out += b"\x1a" * len(s.results)

    def _return(self, s: k.ReturnValues) -> None:
        for v in s.values:
            self.expr(v)
        self.out.append(0x0F)

    def _expr_stmt(self, s: k.ExprStmt) -> None:
        self.expr(s.value)
        self.out.append(0x1A)

    def _trap(self, s: k.Trap) -> None:
        out = self.out
        if s.math_error:
            self.const(T.I32, s.math_error)
            out.append(0x24)
            self.ref("global", MATH_ERROR_GLOBAL)
            out.append(0x00)
            return
        site = self.sites[-1](s.where)
        if s.via:
            self.const(T.I32, site)
            self.const(T.I32, s.code)
            if s.node is None:
                out += b"\x41\x00"
            else:
                self.expr(s.node)
            out.append(0x10)
            self.ref("func", s.via)
            return
        if s.node is not None:
            self.const(T.I32, NODE)
            self.expr(s.node)
            out += b"\x36\x02\x00"
        self.const(T.I32, TRAP_SITE)
        self.const(T.I32, site)
        out += b"\x36\x02\x00"
        self.const(T.I32, TRAP_CODE)
        self.const(T.I32, s.code)
        out += b"\x36\x02\x00\x00"  # the store, then unreachable

    def _unreachable(self, s: k.Unreachable) -> None:
        self.out.append(0x00)

    def _memcopy(self, s: k.MemCopy) -> None:
        self.expr(s.dst)
        self.expr(s.src)
        self.expr(s.nbytes)
        self.out += b"\xfc\x0a\x00\x00"

    def _sync(self, s: k.SyncState) -> None:
        """The enclosing instance's flush or reload statements, as the text printer pastes them:
        with the trap sites in effect around that instance, renamed by it (and those around it)."""
        if s.direction not in ("flush", "reload"):
            raise PrintError(f"SyncState direction {s.direction!r}")
        if not self.instances:
            raise PrintError("a SyncState mark outside an Instance")
        inst = self.instances.pop()
        sites = self.sites.pop()
        try:
            self.stmts(inst.flush if s.direction == "flush" else inst.reload)
        finally:
            self.sites.append(sites)
            self.instances.append(inst)

    def _instance(self, s: k.Instance) -> None:
        code = s.code
        if not code.body and code.derived.get("wat"):  # a Code given as text (passes.runtime's trap)
            text = code.derived["wat"]
            for renames in (s.renames, *reversed(self.renames)):
                text = wasm_text.rename(text, renames)
            self.out += _text_instructions(text, tuple(self.local_types))
            return
        sites = code.derived.get("wasm_binary.sites")
        if sites is None:
            sites = code.derived["wasm_binary.sites"] = code_sites(code)
        self.renames.append(s.renames)
        self.sites.append(sites)
        self.instances.append(s)
        try:
            self.stmts(code.body)
        finally:
            self.instances.pop()
            self.sites.pop()
            self.renames.pop()


_EXPR: dict[type, Callable[[BinaryPrinter, k.Expr], None]] = {
    k.Const: BinaryPrinter._const,
    k.Prim: BinaryPrinter._prim,
    k.Choose: BinaryPrinter._choose,
    k.Load: BinaryPrinter._load,
    k.Select: BinaryPrinter._select,
    k.Logical: BinaryPrinter._logical,
    k.Let: BinaryPrinter._let,
    k.Seq: BinaryPrinter._seq,
    k.CallFn: BinaryPrinter._call,
    k.GetGlobal: BinaryPrinter._global,
}
_STMT: dict[type, Callable[[BinaryPrinter, k.Stmt], None]] = {
    k.SetLocal: BinaryPrinter._set_local,
    k.Assign: BinaryPrinter._assign,
    k.Store: BinaryPrinter._store,
    k.SetGlobal: BinaryPrinter._set_global,
    k.If: BinaryPrinter._if,
    k.Block: BinaryPrinter._block,
    k.Loop: BinaryPrinter._loop,
    k.Exit: BinaryPrinter._exit,
    k.Next: BinaryPrinter._next,
    k.Invoke: BinaryPrinter._invoke,
    k.ReturnValues: BinaryPrinter._return,
    k.ExprStmt: BinaryPrinter._expr_stmt,
    k.Trap: BinaryPrinter._trap,
    k.SyncState: BinaryPrinter._sync,
    k.Unreachable: BinaryPrinter._unreachable,
    k.MemCopy: BinaryPrinter._memcopy,
    k.Instance: BinaryPrinter._instance,
}


def _functype(params: list[tuple[str, T]] | tuple[T, ...], results: tuple[T, ...]) -> bytes:
    ps = [VALTYPE[p[1] if isinstance(p, tuple) else p] for p in params]
    return b"\x60" + _u(len(ps)) + bytes(ps) + _u(len(results)) + bytes(VALTYPE[t] for t in results)


KEPT_FUNCTIONS = 64
"""Function bodies whose bytes :func:`function_body` keeps, the newest first out."""
_kept: dict[int, tuple[list[k.Stmt], tuple, list[bytes | tuple[str, str]]]] = {}
_kept_lock = threading.Lock()


def _keeps(fn: k.Function) -> bool:
    """Whether ``fn``'s bytes are worth keeping: its body is one nobody changes and the next
    compile hands over again (a lane body and its outlined arms, see :func:`.wasm.keep_text`; a
    variant's outlined helper, one Instance of a Code kept with the variant)."""
    kept = wasm_text._kept.get(id(fn.body))
    if kept is not None and kept[0] is fn.body:
        return True
    body = fn.body
    return len(body) == 1 and type(body[0]) is k.Instance and not body[0].renames


def function_body(printer: BinaryPrinter, fn: k.Function, keep: bool = True) -> list[bytes | tuple[str, str]]:
    """One function's code entry (local declarations, instructions, end), its function and
    global indices still names. Kept for a body :func:`_keeps` names (``keep``: the module's
    trap sites are unnumbered), by the body's identity and the function's locals."""
    key = (tuple(fn.params), tuple(fn.locals.items()), fn.results)
    keep = keep and _keeps(fn)
    if keep:
        got = _kept.get(id(fn.body))  # one dict read (atomic); writes are locked
        if got is not None and got[0] is fn.body and got[1] == key:
            return got[2]
    index: dict[str, int] = {}
    for name, _ in fn.params:
        index[name] = len(index)
    params = set(index)
    runs: list[list[int]] = []  # consecutive locals of one type: one declaration
    for name, t in fn.locals.items():
        if name in index:
            continue
        index[name] = len(index)
        code = VALTYPE[t]
        if runs and runs[-1][1] == code:
            runs[-1][0] += 1
        else:
            runs.append([1, code])
    printer.out = out = bytearray(_u(len(runs)))
    printer.parts = parts = []
    for count, code in runs:
        out += _u(count)
        out.append(code)
    printer.locals = index
    printer.local_types = [(n, WT[t]) for n, t in fn.params]
    printer.local_types += [(n, WT[t]) for n, t in fn.locals.items() if n not in params]
    printer.labels = []
    printer.stmts(fn.body)
    if fn.results and not (fn.body and isinstance(fn.body[-1], (k.ReturnValues, k.Trap))):
        out.append(0x00)  # every path returned or trapped above
    out.append(_END)
    parts.append(bytes(out))
    if keep:
        with _kept_lock:
            _kept[id(fn.body)] = (fn.body, key, parts)
            while len(_kept) > KEPT_FUNCTIONS:
                _kept.pop(next(iter(_kept)))
    return parts


def module_binary(module: k.Module, site_index: SiteIndex = _no_sites) -> bytes:
    """The module :func:`.wasm.module_text` prints, as wat2wasm would assemble that text."""
    types: dict[bytes, int] = {}

    def type_index(params: list[tuple[str, T]] | tuple[T, ...], results: tuple[T, ...]) -> int:
        sig = _functype(params, results)
        return types.setdefault(sig, len(types))

    funcs: dict[str, int] = {}
    imports = []
    for imp in module.imports:
        funcs[imp.name] = len(funcs)
        imports.append(
            _name(imp.module) + _name(imp.name) + b"\x00" + _u(type_index(imp.params, imp.results))
        )
    declared = []
    for fn in module.functions:
        if fn.name in funcs:
            raise PrintError(f"two functions named ${fn.name}")
        funcs[fn.name] = len(funcs)
        declared.append(_u(type_index(fn.params, fn.results)))
    globals_ = {g.name: i for i, g in enumerate(module.globals)}
    printer = BinaryPrinter(funcs, globals_, site_index)
    exports = []
    if module.memory_pages:
        exports.append(_name("memory") + b"\x02\x00")
    global_entries = []
    for i, g in enumerate(module.globals):
        printer.out = bytearray()
        printer.const(g.type, g.init)
        global_entries.append(bytes([VALTYPE[g.type], 1 if g.mutable else 0]) + bytes(printer.out) + b"\x0b")
        if g.export:
            exports.append(_name(g.export) + b"\x03" + _u(i))
    bodies = []
    keep = site_index is _no_sites
    indices = {"func": funcs, "global": globals_}
    for fn in module.functions:
        parts = function_body(printer, fn, keep)
        try:
            body = b"".join([p if type(p) is bytes else _u(indices[p[0]][p[1]]) for p in parts])
        except KeyError as exc:  # a kept body calling what this module does not have
            raise PrintError(f"${fn.name} names {exc.args[0]!r}, which the module does not have") from None
        bodies.append(_u(len(body)) + body)
        if fn.export:
            exports.append(_name(fn.export) + b"\x00" + _u(funcs[fn.name]))
    out = bytearray(b"\0asm\1\0\0\0")
    if types:  # (wat2wasm writes no empty section)
        out += _section(1, _vec(list(types)))
    if imports:
        out += _section(2, _vec(imports))
    if declared:
        out += _section(3, _vec(declared))
    if module.memory_pages:
        pages = _u(module.memory_pages)
        out += _section(5, b"\x01\x01" + pages + pages)
    if global_entries:
        out += _section(6, _vec(global_entries))
    if exports:
        out += _section(7, _vec(exports))
    if bodies:
        out += _section(10, _vec(bodies))
    names = _vec([_u(i) + _name(name) for name, i in funcs.items()])
    out += _section(0, _name("name") + b"\x01" + _u(len(names)) + names)
    return bytes(out)
