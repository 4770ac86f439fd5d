"""The body renderer: one node variant's methods, from kernel IR to WebAssembly text.

Everything a node's code touches is addressed relative to ``$nb``, the base of the node's region in
memory (``offset=`` on each load and store), its connected inputs come in locals ``$in_<name>``,
and errors name their node through the NODE slot. So the text is the same for every node of one
*variant* (class, attribute types and constants, connected inputs): it is rendered once and pasted
for each node, which keeps code generation for a thousand voices fast.
"""

from __future__ import annotations

import itertools
import math
import struct
from dataclasses import dataclass, field

from ..graph.ir import NodeIR
from . import kernel as k
from . import wasm_math
from .frontend import JitError, NodeLowering, deep_recursion, too_deep
from .inline import Inliner, WatFunction, parse, parse_function, render
from .kernel import T
from .layout import EVENT_BYTES, FRAME, INTERRUPT, TRAP_CODE, TRAP_SITE, NodeLayout
from .traps import (  # noqa: F401  (re-exported: the codes' old home)
    ASSERTION,
    FLOAT_TOO_BIG,
    FLOAT_ZERO_DIV,
    INDEX,
    INEXACT_INT,
    INF_TO_INT,
    INT_ZERO_DIV,
    MATH,
    NAN_TO_INT,
    NEG_SHIFT,
    OVERFLOW,
    POW_OVERFLOW,
    QUEUE_FULL,
    RANGE_STEP,
    TIMEOUT,
    TRAP_MESSAGES,
)

WT = {T.F64: "f64", T.I64: "i64", T.BOOL: "i32"}
IR_TYPES = {"f64": T.F64, "i64": T.I64, "bool": T.BOOL}


@dataclass(frozen=True)
class TrapSite:
    """Where a trap can happen in node code: source location and what (the node comes from memory)."""

    site: k.Site | None
    detail: str = ""


def _small_power_of_two(v: float) -> bool:
    if not (v > 0 and math.isfinite(v)):
        return False
    mantissa, exponent = math.frexp(v)
    # b >= 1 only: x * (1 / b) then never overflows
    return mantissa == 0.5 and 1 <= exponent < 60


def _f64(v: float) -> str:
    v = float(v)
    if math.isnan(v):  # float.hex() drops a NaN's sign and payload; WAT spells them out
        bits = struct.unpack("<Q", struct.pack("<d", v))[0]
        sign = "-" if bits >> 63 else ""
        return f"(f64.const {sign}nan:0x{bits & ((1 << 52) - 1):x})"
    return f"(f64.const {v.hex()})"


def _i64(v: int) -> str:
    return f"(i64.const {int(v)})"


def _i32(v: int) -> str:
    return f"(i32.const {int(v)})"


def _const(t: T, v: float | int | bool) -> str:
    if t == T.F64:
        return _f64(float(v))
    if t == T.I64:
        return _i64(int(v))
    return _i32(1 if v else 0)


RUNTIME = f"""
  (func $trap (param $site i32) (param $code i32)
    (i32.store (i32.const {TRAP_SITE}) (local.get $site))
    (i32.store (i32.const {TRAP_CODE}) (local.get $code))
    unreachable)
  (func $i_add (param $a i64) (param $b i64) (param $s i32) (result i64) (local $r i64)
    (local.set $r (i64.add (local.get $a) (local.get $b)))
    (if (i64.lt_s (i64.and (i64.xor (local.get $a) (local.get $r)) (i64.xor (local.get $b) (local.get $r))) (i64.const 0))
      (then (call $trap (local.get $s) (i32.const {OVERFLOW}))))
    (local.get $r))
  (func $i_sub (param $a i64) (param $b i64) (param $s i32) (result i64) (local $r i64)
    (local.set $r (i64.sub (local.get $a) (local.get $b)))
    (if (i64.lt_s (i64.and (i64.xor (local.get $a) (local.get $b)) (i64.xor (local.get $a) (local.get $r))) (i64.const 0))
      (then (call $trap (local.get $s) (i32.const {OVERFLOW}))))
    (local.get $r))
  (func $i_mul (param $a i64) (param $b i64) (param $s i32) (result i64) (local $r i64)
    (if (i64.eqz (local.get $a)) (then (return (i64.const 0))))
    (if (i64.eq (local.get $a) (i64.const -1)) (then
      (if (i64.eq (local.get $b) (i64.const 0x8000000000000000)) (then (call $trap (local.get $s) (i32.const {OVERFLOW}))))
      (return (i64.sub (i64.const 0) (local.get $b)))))
    (local.set $r (i64.mul (local.get $a) (local.get $b)))
    (if (i64.ne (i64.div_s (local.get $r) (local.get $a)) (local.get $b)) (then (call $trap (local.get $s) (i32.const {OVERFLOW}))))
    (local.get $r))
  (func $i_neg (param $a i64) (param $s i32) (result i64)
    (if (i64.eq (local.get $a) (i64.const 0x8000000000000000)) (then (call $trap (local.get $s) (i32.const {OVERFLOW}))))
    (i64.sub (i64.const 0) (local.get $a)))
  (func $i_abs (param $a i64) (param $s i32) (result i64)
    (if (i64.lt_s (local.get $a) (i64.const 0)) (then (return (call $i_neg (local.get $a) (local.get $s)))))
    (local.get $a))
  (func $i_floordiv (param $a i64) (param $b i64) (param $s i32) (result i64) (local $q i64)
    (if (i64.eqz (local.get $b)) (then (call $trap (local.get $s) (i32.const {INT_ZERO_DIV}))))
    (if (i64.eq (local.get $b) (i64.const -1)) (then (return (call $i_neg (local.get $a) (local.get $s)))))
    (local.set $q (i64.div_s (local.get $a) (local.get $b)))
    (if (i32.and (i64.ne (i64.rem_s (local.get $a) (local.get $b)) (i64.const 0))
                 (i64.lt_s (i64.xor (local.get $a) (local.get $b)) (i64.const 0)))
      (then (local.set $q (i64.sub (local.get $q) (i64.const 1)))))
    (local.get $q))
  (func $i_mod (param $a i64) (param $b i64) (param $s i32) (result i64) (local $r i64)
    (if (i64.eqz (local.get $b)) (then (call $trap (local.get $s) (i32.const {INT_ZERO_DIV}))))
    (if (i64.eq (local.get $b) (i64.const -1)) (then (return (i64.const 0))))
    (local.set $r (i64.rem_s (local.get $a) (local.get $b)))
    (if (i32.and (i64.ne (local.get $r) (i64.const 0)) (i64.lt_s (i64.xor (local.get $r) (local.get $b)) (i64.const 0)))
      (then (local.set $r (i64.add (local.get $r) (local.get $b)))))
    (local.get $r))
  (func $i_pow (param $a i64) (param $e i64) (param $s i32) (result i64) (local $r i64)
    (local.set $r (i64.const 1))
    (block $done (loop $next
      (br_if $done (i64.eqz (local.get $e)))
      (local.set $r (call $i_mul (local.get $r) (local.get $a) (local.get $s)))
      (local.set $e (i64.sub (local.get $e) (i64.const 1)))
      (br $next)))
    (local.get $r))
  (func $i_shl (param $a i64) (param $n i64) (param $s i32) (result i64) (local $r i64)
    (if (i64.lt_s (local.get $n) (i64.const 0)) (then (call $trap (local.get $s) (i32.const {NEG_SHIFT}))))
    (if (i64.eqz (local.get $a)) (then (return (i64.const 0))))
    (if (i64.ge_s (local.get $n) (i64.const 64)) (then (call $trap (local.get $s) (i32.const {OVERFLOW}))))
    (local.set $r (i64.shl (local.get $a) (local.get $n)))
    (if (i64.ne (i64.shr_s (local.get $r) (local.get $n)) (local.get $a)) (then (call $trap (local.get $s) (i32.const {OVERFLOW}))))
    (local.get $r))
  (func $i_shr (param $a i64) (param $n i64) (param $s i32) (result i64)
    (if (i64.lt_s (local.get $n) (i64.const 0)) (then (call $trap (local.get $s) (i32.const {NEG_SHIFT}))))
    (if (i64.ge_s (local.get $n) (i64.const 64)) (then (return (i64.shr_s (local.get $a) (i64.const 63)))))
    (i64.shr_s (local.get $a) (local.get $n)))
  (func $ramp (param $nb i32) (param $value i32)
    ;; one step of a parameter ramp: slots value, target, step, remaining follow each other
    (local $left i64) (local $at i32)
    (local.set $at (i32.add (local.get $nb) (local.get $value)))
    (local.set $left (i64.sub (i64.load offset=24 (local.get $at)) (i64.const 1)))
    (i64.store offset=24 (local.get $at) (local.get $left))
    (if (i64.eqz (local.get $left))
      (then (f64.store (local.get $at) (f64.load offset=8 (local.get $at))))
      (else (f64.store (local.get $at) (f64.add (f64.load (local.get $at)) (f64.load offset=16 (local.get $at)))))))
  (func $cmp_if (param $i i64) (param $f f64) (result i32) (local $fi f64) (local $j i64)
    ;; Python's exact int-vs-float comparison: -1, 0, 1, or 2 when f is NaN
    (if (f64.ne (local.get $f) (local.get $f)) (then (return (i32.const 2))))
    (local.set $fi (f64.convert_i64_s (local.get $i)))
    (if (f64.lt (local.get $fi) (local.get $f)) (then (return (i32.const -1))))
    (if (f64.gt (local.get $fi) (local.get $f)) (then (return (i32.const 1))))
    (if (f64.ge (local.get $f) (f64.const 0x1p63)) (then (return (i32.const -1))))
    (local.set $j (i64.trunc_f64_s (local.get $f)))
    (if (i64.lt_s (local.get $i) (local.get $j)) (then (return (i32.const -1))))
    (if (i64.gt_s (local.get $i) (local.get $j)) (then (return (i32.const 1))))
    (i32.const 0))
  (func $trap_not_finite (param $x f64) (param $s i32)
    (if (f64.ne (local.get $x) (local.get $x)) (then (call $trap (local.get $s) (i32.const {NAN_TO_INT}))))
    (call $trap (local.get $s) (i32.const {INF_TO_INT})))
  (func $f_div (param $a f64) (param $b f64) (param $s i32) (result f64)
    (if (f64.eq (local.get $b) (f64.const 0)) (then (call $trap (local.get $s) (i32.const {FLOAT_ZERO_DIV}))))
    (f64.div (local.get $a) (local.get $b)))
  (func $f_to_int (param $x f64) (param $s i32) (result i64)
    (if (f64.ne (local.get $x) (local.get $x)) (then (call $trap (local.get $s) (i32.const {NAN_TO_INT}))))
    (if (f64.eq (f64.abs (local.get $x)) (f64.const inf)) (then (call $trap (local.get $s) (i32.const {INF_TO_INT}))))
    (if (i32.or (f64.ge (local.get $x) (f64.const 0x1p63)) (f64.lt (local.get $x) (f64.const -0x1p63)))
      (then (call $trap (local.get $s) (i32.const {FLOAT_TOO_BIG}))))
    (i64.trunc_f64_s (local.get $x)))
"""


_LIBRARY: dict[str, WatFunction] | None = None


def library() -> dict[str, WatFunction]:
    """The runtime helpers and the whole math library, parsed once."""
    global _LIBRARY
    if _LIBRARY is None:
        functions = {}
        for item in parse(RUNTIME + wasm_math.wat_for(sorted(wasm_math.FUNCTIONS))):
            if isinstance(item, list) and item and item[0] == "func":
                fn = parse_function(render(item))
                functions[fn.name] = fn
        _LIBRARY = functions
    return _LIBRARY


RUNTIME_NAMES = frozenset(str(item[1])[1:] for item in parse(RUNTIME) if isinstance(item, list))


def wat_of_functions(names: set[str]) -> str:
    """The runtime helpers, if node code calls any (they touch the kernel's memory, so they live
    in each kernel; math functions are imported from the shared library, see engine.py)."""
    return RUNTIME if names & RUNTIME_NAMES else ""


def math_imports(names: set[str]) -> list[str]:
    """Import declarations for the math functions node code calls (not inlined)."""
    lib = library()
    out = []
    for name in sorted(names - RUNTIME_NAMES):
        fn = lib[name]
        params = " ".join(f"(param {t})" for _, t in fn.params)
        results = f"(result {' '.join(fn.results)})" if fn.results else ""
        out.append(f'(import "math" "{name}" (func ${name} {params} {results}))')
    return out


@dataclass
class _Frame:
    """Rendering context of one inlined function body."""

    prefix: str
    ret_label: str | None = None
    ret_local: str | None = None
    ret_locals: list[str] = field(default_factory=list)  # `return a, b`: one local per element
    loops: list[tuple[str, str]] = field(default_factory=list)  # (break label, continue label)


@dataclass
class Template:
    """The rendered code of one node variant."""

    process: str
    handlers: dict[str, str]  # event input -> handler body, reading its fields at $ev_at
    locals: dict[str, str]
    state_used: dict[str, str]  # with state in locals: the scalars the code uses ($S_<name>)
    called: set[str]  # library functions called out of line
    functions: list[str]  # the variant's outlined helpers (WAT functions)
    sites: list[TrapSite] = field(default_factory=lambda: [TrapSite(None)])  # trap site ids: indices
    lowering: NodeLowering | None = None

    def still_valid(self) -> bool:
        """False once a global the code folded in has changed (the template is then stale)."""
        return self.lowering is None or self.lowering.still_valid()


_IDS = itertools.count()
OUTLINE_SIZE = 60
"""Kernel IR nodes above which a helper method is compiled as a function instead of inlined."""


def _walk(obj: object):
    """Every kernel IR node inside ``obj`` (statements, expressions, called functions' bodies)."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, (k.Expr, k.Stmt)):
            yield x
            for f in x.__dataclass_fields__:
                v = getattr(x, f)
                if isinstance(v, (list, k.Expr, k.Stmt)):
                    stack.append(v)
                elif isinstance(v, k.KFunction):
                    stack.append(v.body)


def _measure(fn: k.KFunction) -> tuple[int, frozenset[str], bool]:
    """Size in kernel IR nodes, inputs read, and whether it emits events (kept on the function
    itself: a cache keyed by id() would hand a reused id a stale entry)."""
    got = fn.measure
    if got is None:
        nodes = list(_walk(fn.body))
        inputs = frozenset(x.name for x in nodes if isinstance(x, k.Input))
        got = (len(nodes), inputs, any(isinstance(x, k.Emit) for x in nodes))
        fn.measure = got
    return got


class BodyRenderer:
    """Renders the methods of one node variant (see the module docstring)."""

    def __init__(
        self,
        node: NodeIR,
        layout: NodeLayout,
        lowering: NodeLowering,
        connected: frozenset[str],
        inline_math: bool = True,
        state_in_locals: bool = False,
    ) -> None:
        self.node = node
        self.inline_math = inline_math
        self.state_in_locals = state_in_locals
        self.state_used: dict[str, str] = {}  # scalar attributes kept in locals: name -> wasm type
        self.nl = layout
        self.lowering = lowering
        self.connected = connected
        self.prefix = f"$v{next(_IDS)}"
        self.locals: dict[str, str] = {}
        self.uid = 0
        self.inliner = Inliner(library())
        # Traps are cold and never return: a call keeps every node's code short. With state in
        # locals, though, any call in the loop makes Cranelift spill them: expand traps inline.
        if not state_in_locals:
            self.inliner.outlined |= {"trap", "trap_not_finite"}
        self.functions: list[str] = []
        self.outlined_names: dict[tuple, str] = {}
        self.in_function = False
        # This variant's trap sites: the text carries indices into this list (0: unknown), and
        # the program maps them per node, so the same text serves every program that pastes it.
        self.sites: list[TrapSite] = [TrapSite(None)]
        self.last_site: k.Site | None = None

    def render(self) -> Template:
        process_fn = self.lowering.process()
        with deep_recursion():
            try:
                return self._render(process_fn)
            except RecursionError:
                raise too_deep(self.last_site, self.lowering.name) from None

    def _render(self, process_fn: k.KFunction) -> Template:
        process = "\n".join(self.inline_statement(process_fn, []))
        handlers = {}
        for e in self.node.endpoints:
            if e.direction == "input" and e.kind == "event":
                fn = self.lowering.handler(e.name, e.arity)
                args = [f"(f64.load offset={8 + 8 * j} (local.get $ev_at))" for j in range(e.arity)]
                handlers[e.name] = "\n".join(self.inline_statement(fn, args))
        self.locals.update(self.inliner.locals)
        return Template(
            process,
            handlers,
            self.locals,
            self.state_used,
            set(self.inliner.called),
            self.functions,
            self.sites,
            self.lowering,
        )

    # ------------------------------------------------------------------ utilities
    def fresh(self, base: str) -> str:
        self.uid += 1
        return f"{self.prefix}{base}{self.uid}"

    def local(self, name: str, t: str) -> str:
        self.locals[name] = t
        return name

    def site(self, site: k.Site | None, detail: str = "") -> int:
        self.sites.append(TrapSite(site, detail))
        return len(self.sites) - 1

    def trap(self, site: int, code: int) -> str:
        if self.state_in_locals:
            return f"(block (i32.store {_i32(TRAP_SITE)} {_i32(site)}) (i32.store {_i32(TRAP_CODE)} {_i32(code)}) unreachable)"
        self.inliner.called.add("trap")
        return f"(call $trap {_i32(site)} {_i32(code)})"

    def call(self, name: str, *args: str) -> str:
        """A runtime helper (checked integer ops...), expanded in place: they are small, and a call
        in the sample loop costs more than its body."""
        return self.inliner.inline(name, list(args))

    def math_call(self, name: str, args: list[str], prologue: str = "") -> str:
        """A math library function: expanded in per-sample code when small (sin's fast path: the
        call and its argument shuffling cost as much as the polynomial), called in outlined
        helpers and for the large ones (one copy serves every node)."""
        if self.inline_math and not self.in_function and name not in self.inliner.outlined:
            return self.inliner.inline(name, args, prologue)
        self.inliner.called.add(name)
        result = " ".join(self.inliner.functions[name].results)
        return f"(block (result {result}) {' '.join(args)} {prologue} (call ${name}))"

    def rel(self, addr: int) -> int:
        return self.nl.rel(addr)

    def frame_expr(self) -> str:
        return f"(i64.add (i64.load {_i32(FRAME)}) (i64.extend_i32_u (local.get $i)))"

    # ------------------------------------------------------------------ node state
    def attr_get(self, name: str) -> str:
        addr, ty = self.nl.scalars[name]
        if self.state_in_locals and not self.in_function:
            self.state_used[name] = WT[IR_TYPES[ty]]
            return f"(local.get $S_{name})"
        return f"({WT[IR_TYPES[ty]]}.load offset={self.rel(addr)} (local.get $nb))"

    def attr_set(self, name: str, value: str) -> str:
        addr, ty = self.nl.scalars[name]
        if self.state_in_locals and not self.in_function:
            self.state_used[name] = WT[IR_TYPES[ty]]
            return f"(local.set $S_{name} {value})"
        return f"({WT[IR_TYPES[ty]]}.store offset={self.rel(addr)} (local.get $nb) {value})"

    def input(self, name: str) -> str:
        if name in self.connected:
            return f"(local.get $in_{name})"
        ep = self.node.endpoint(name)
        if ep.kind == "value":
            return f"(f64.load offset={self.rel(self.nl.params[name].value)} (local.get $nb))"
        return _f64(ep.default)

    def bind_call(self, fn: k.KFunction, args: list[str]) -> tuple[_Frame, list[str]]:
        frame = _Frame(prefix=self.fresh(f"_{fn.name}"))
        lines = []
        for (pname, ptype), arg in zip(fn.params, args, strict=True):
            loc = self.local(f"{frame.prefix}_{pname}", WT[ptype])
            lines.append(f"(local.set {loc} {arg})")
        for lname, ltype in fn.locals.items():
            self.local(f"{frame.prefix}_{lname}", WT[ltype])
        frame.ret_label = self.fresh("_ret")
        return frame, lines

    def outline(self, fn: k.KFunction) -> bool:
        """Large helpers called under an ``if`` that don't touch connected inputs or emit become
        functions of the variant, called with the node's base: typically a coefficient update,
        which would bloat every node's loop (and Cranelift's work) for code that rarely runs.
        Helpers called unconditionally run every sample: those are always inlined."""
        if fn.tuple_returns is not None:
            return False  # its values come back through the caller's locals: always inlined
        size, inputs, emits = _measure(fn)
        # Connected inputs live in the caller's locals and emitting needs the sample index.
        return size > OUTLINE_SIZE and not emits and not (inputs & self.connected)

    def call_outlined(self, fn: k.KFunction, args: list[str]) -> str:
        key = (fn.name, tuple(t for _, t in fn.params))
        name = self.outlined_names.get(key)
        if name is None:
            name = self.fresh(f"_fn_{fn.name}")
            self.outlined_names[key] = name
            self.functions.append(self.render_function(name, fn))
        call = f"(call {name} (local.get $nb) {' '.join(args)})"
        if not self.state_in_locals or self.in_function:
            return call
        # The function works on the node's state in memory: write the locals back around it.
        if fn.returns is None:
            return f"(block __FLUSH__ {call} __RELOAD__)"
        tmp = self.local(self.fresh("_outret"), WT[fn.returns])
        return f"(block (result {WT[fn.returns]}) __FLUSH__ (local.set {tmp} {call}) __RELOAD__ (local.get {tmp}))"

    def render_function(self, name: str, fn: k.KFunction) -> str:
        saved_locals, saved_inlined, saved_in_function = self.locals, self.inliner.locals, self.in_function
        self.locals, self.inliner.locals = {}, {}
        self.in_function = True
        try:
            frame = _Frame(prefix="$f")
            params = " ".join(f"(param $f_{p} {WT[t]})" for p, t in fn.params)
            for lname, ltype in fn.locals.items():
                self.local(f"$f_{lname}", WT[ltype])
            frame.ret_label = "$f_ret"
            result = ""
            if fn.returns is not None:
                frame.ret_local = self.local("$f__ret", WT[fn.returns])
                result = f"(result {WT[fn.returns]})"
            body = "\n".join(self.stmts(frame, fn.body))
            self.locals.update(self.inliner.locals)
            for p, _ in fn.params:
                self.locals.pop(f"$f_{p}", None)
            decls = "".join(f" (local {n} {t})" for n, t in self.locals.items())
            tail = f"(local.get {frame.ret_local})" if frame.ret_local else ""
            return f"(func {name} (param $nb i32) {params} {result}{decls}\n(block $f_ret\n{body})\n{tail})"
        finally:
            self.locals, self.inliner.locals = saved_locals, saved_inlined
            self.in_function = saved_in_function

    def inline_statement(self, fn: k.KFunction, args: list[str]) -> list[str]:
        """A call whose value is not used (process, a handler, a helper called as a statement)."""
        frame, lines = self.bind_call(fn, args)
        if fn.returns is not None:
            frame.ret_local = self.local(f"{frame.prefix}__ret", WT[fn.returns])
        body = self.stmts(frame, fn.body)
        return [*lines, f"(block {frame.ret_label}", *body, ")"]

    def inline_value(self, fn: k.KFunction, args: list[str]) -> str:
        assert fn.returns is not None
        frame, lines = self.bind_call(fn, args)
        wt = WT[fn.returns]
        frame.ret_local = self.local(f"{frame.prefix}__ret", wt)
        body = self.stmts(frame, fn.body)
        # Falling off the end returns None in Python; a value-returning helper must return.
        inner = "\n".join(
            [
                *lines,
                f"(local.set {frame.ret_local} {_const(fn.returns, 0)})",
                f"(block {frame.ret_label}",
                *body,
                ")",
            ]
        )
        return f"(block (result {wt})\n{inner}\n(local.get {frame.ret_local}))"

    # ------------------------------------------------------------------ statements
    def stmts(self, fr: _Frame, body: list[k.Stmt]) -> list[str]:
        out: list[str] = []
        for s in body:
            out.extend(self.stmt(fr, s))
        return out

    def stmt(self, fr: _Frame, s: k.Stmt) -> list[str]:
        self.last_site = s.site
        if isinstance(s, k.Assign):
            if isinstance(s.target, k.Attr):
                return [self.attr_set(s.target.name, self.expr(fr, s.value))]
            return [
                f"(local.set {self.local(f'{fr.prefix}_{s.target.name}', WT[s.target.type])} {self.expr(fr, s.value)})"
            ]
        if isinstance(s, k.ArrayStore):
            addr, ty, _ = self.nl.arrays[s.array]
            wt = WT[IR_TYPES[ty]]
            return [
                f"({wt}.store offset={self.rel(addr)} {self.array_address(fr, s.array, s.index, s.site)} {self.expr(fr, s.value)})"
            ]
        if isinstance(s, k.If):
            then = "\n".join(self.stmts(fr, s.body))
            other = "\n".join(self.stmts(fr, s.orelse))
            text = f"(if {self.expr(fr, s.cond)} (then\n{then})"
            if other:
                text += f" (else\n{other})"
            return [text + ")"]
        if isinstance(s, k.While):
            brk, cont = self.fresh("_brk"), self.fresh("_cont")
            fr.loops.append((brk, cont))
            body = "\n".join(self.stmts(fr, s.body))
            fr.loops.pop()
            check = self.interrupt_check(s.site)
            return [
                f"(block {brk} (loop {cont} (br_if {brk} (i32.eqz {self.expr(fr, s.cond)})) {check}\n{body}\n(br {cont})))"
            ]
        if isinstance(s, k.ForRange):
            return self.for_range(fr, s)
        if isinstance(s, k.Break):
            return [f"(br {fr.loops[-1][0]})"]
        if isinstance(s, k.Continue):
            return [f"(br {fr.loops[-1][1]})"]
        if isinstance(s, k.Return):
            if s.value is not None and fr.ret_local is not None:
                return [f"(local.set {fr.ret_local} {self.expr(fr, s.value)})", f"(br {fr.ret_label})"]
            if s.value is not None:
                return [f"(drop {self.expr(fr, s.value)})", f"(br {fr.ret_label})"]
            return [f"(br {fr.ret_label})"]
        if isinstance(s, k.ReturnTuple):
            if fr.ret_locals:
                sets = [
                    f"(local.set {r} {self.expr(fr, v)})"
                    for r, v in zip(fr.ret_locals, s.values, strict=True)
                ]
            else:  # the caller drops the values (a call as a statement)
                sets = [f"(drop {self.expr(fr, v)})" for v in s.values]
            return [*sets, f"(br {fr.ret_label})"]
        if isinstance(s, k.UnpackCall):
            fn = s.call.func
            assert fn.tuple_returns is not None
            args = [self.expr(fr, a) for a in s.call.args]
            frame, lines = self.bind_call(fn, args)
            frame.ret_locals = [
                self.local(f"{frame.prefix}__ret{i}", WT[t]) for i, t in enumerate(fn.tuple_returns)
            ]
            body = self.stmts(frame, fn.body)
            zero = [
                f"(local.set {r} {_const(t, 0)})"
                for r, t in zip(frame.ret_locals, fn.tuple_returns, strict=True)
            ]
            unpack = [
                f"(local.set {self.local(f'{fr.prefix}_{tgt.name}', WT[tgt.type])} (local.get {r}))"
                for tgt, r in zip(s.targets, frame.ret_locals, strict=True)
            ]
            return [*lines, *zero, f"(block {frame.ret_label}", *body, ")", *unpack]
        if isinstance(s, k.ExprStmt):
            if isinstance(s.value, k.Call):
                args = [self.expr(fr, a) for a in s.value.args]
                if s.value.conditional and self.outline(s.value.func):
                    call = self.call_outlined(s.value.func, args)
                    return [f"(drop {call})" if s.value.func.returns is not None else call]
                return self.inline_statement(s.value.func, args)
            return [f"(drop {self.expr(fr, s.value)})"]
        if isinstance(s, k.Emit):
            return self.emit(fr, s)
        if isinstance(s, k.Raise):
            return [self.trap(self.site(s.site, s.message), ASSERTION)]
        raise JitError(f"internal: no rendering for {type(s).__name__}", s.site)

    def for_range(self, fr: _Frame, s: k.ForRange) -> list[str]:
        cnt = self.local(f"{fr.prefix}_{s.counter}", "i64")
        lim = self.local(f"{fr.prefix}_{s.limit}", "i64")
        stp = self.local(f"{fr.prefix}_{s.stride}", "i64")
        var = self.local(f"{fr.prefix}_{s.var.name}", "i64")
        lines = [
            f"(local.set {cnt} {self.expr(fr, s.start)})",
            f"(local.set {lim} {self.expr(fr, s.stop)})",
            f"(local.set {stp} {self.expr(fr, s.step)})",
        ]
        if isinstance(s.step, k.Const):
            cond = (
                f"(i64.lt_s (local.get {cnt}) (local.get {lim}))"
                if s.step.value > 0
                else f"(i64.gt_s (local.get {cnt}) (local.get {lim}))"
            )
        else:
            lines.append(
                f"(if (i64.eqz (local.get {stp})) (then {self.trap(self.site(s.site), RANGE_STEP)}))"
            )
            cond = (
                f"(if (result i32) (i64.gt_s (local.get {stp}) (i64.const 0))"
                f" (then (i64.lt_s (local.get {cnt}) (local.get {lim}))) (else (i64.gt_s (local.get {cnt}) (local.get {lim}))))"
            )
        brk, top, cont = self.fresh("_brk"), self.fresh("_top"), self.fresh("_cont")
        nxt = self.local(self.fresh("_next"), "i64")
        fr.loops.append((brk, cont))
        body = "\n".join(self.stmts(fr, s.body))
        fr.loops.pop()
        lines.append(
            f"(block {brk} (loop {top} (br_if {brk} (i32.eqz {cond})) {self.interrupt_check(s.site)}"
            f" (local.set {var} (local.get {cnt}))"
            f" (block {cont}\n{body})"
            # the next value, unless it would pass the int range (Python's range simply ends)
            f" (local.set {nxt} (i64.add (local.get {cnt}) (local.get {stp})))"
            f" (br_if {brk} (i64.lt_s (i64.and (i64.xor (local.get {cnt}) (local.get {nxt})) (i64.xor (local.get {stp}) (local.get {nxt}))) (i64.const 0)))"
            f" (local.set {cnt} (local.get {nxt}))"
            f" (br {top})))"
        )
        return lines

    def interrupt_check(self, site: k.Site) -> str:
        """Loops in node code count down the iterations they may still run in this call (the sample
        loop itself is bounded). The host sets the count before each call; Python's watchdog sets
        it to 1 when a call overruns its timeout, a browser host simply gives a budget: either way
        the loop traps with TIMEOUT at 0, whichever host runs the kernel."""
        at = _i32(INTERRUPT)
        return (
            f"(i32.store {at} (i32.sub (i32.load {at}) (i32.const 1)))"
            f" (if (i32.le_s (i32.load {at}) (i32.const 0)) (then {self.trap(self.site(site, 'a loop'), TIMEOUT)}))"
        )

    def emit(self, fr: _Frame, s: k.Emit) -> list[str]:
        """Append the event to this output's outbox; connected inputs read it from there."""
        q = self.nl.outboxes[s.port]
        temps = []
        lines = []
        for a in s.args:
            t = self.local(self.fresh("_emit"), "f64")
            lines.append(f"(local.set {t} {self.expr(fr, a)})")
            temps.append(t)
        site = self.site(s.site, f"self.{s.port}.emit")
        cnt = self.local("$emit_n", "i32")
        at = self.local("$emit_at", "i32")
        base = self.rel(q.base)
        lines.append(f"(local.set {cnt} (i32.load offset={base} (local.get $nb)))")
        lines.append(
            f"(if (i32.ge_u (local.get {cnt}) {_i32(q.capacity)}) (then {self.trap(site, QUEUE_FULL)}))"
        )
        lines.append(
            f"(local.set {at} (i32.add (local.get $nb) (i32.mul (local.get {cnt}) {_i32(EVENT_BYTES)})))"
        )
        entry = self.rel(q.entries)
        lines.append(f"(i64.store offset={entry} (local.get {at}) {self.frame_expr()})")
        for j in range(4):
            value = f"(local.get {temps[j]})" if j < len(temps) else _f64(0.0)
            lines.append(f"(f64.store offset={entry + 8 + 8 * j} (local.get {at}) {value})")
        lines.append(f"(i32.store offset={base} (local.get $nb) (i32.add (local.get {cnt}) (i32.const 1)))")
        return lines

    # ------------------------------------------------------------------ expressions
    def array_address(self, fr: _Frame, array: str, index: k.Expr, site: k.Site) -> str:
        """``$nb`` plus the byte offset of ``array[index]``, with Python's negative indices and a
        bounds check (the array's own offset goes in the load's ``offset=``)."""
        length = self.nl.arrays[array][2]
        sid = self.site(site, f"self.{array}[...] (length {length})")
        if isinstance(index, k.Const):
            i = int(index.value)
            if i < 0:
                i += length
            if not 0 <= i < length:
                return f"(block (result i32) {self.trap(sid, INDEX)} (i32.const 0))"
            return f"(i32.add (local.get $nb) {_i32(8 * i)})"
        ix = self.local(self.fresh("_ix"), "i64")
        return (
            f"(block (result i32) (local.set {ix} {self.expr(fr, index)})"
            f" (if (i64.lt_s (local.get {ix}) (i64.const 0)) (then (local.set {ix} (i64.add (local.get {ix}) {_i64(length)}))))"
            f" (if (i64.ge_u (local.get {ix}) {_i64(length)}) (then {self.trap(sid, INDEX)}))"
            f" (i32.add (local.get $nb) (i32.wrap_i64 (i64.shl (local.get {ix}) (i64.const 3)))))"
        )

    def expr(self, fr: _Frame, e: k.Expr) -> str:
        if isinstance(e, k.Const):
            return _const(e.type, e.value)
        if isinstance(e, k.Local):
            return f"(local.get {self.local(f'{fr.prefix}_{e.name}', WT[e.type])})"
        if isinstance(e, k.Attr):
            return self.attr_get(e.name)
        if isinstance(e, k.Input):
            return self.input(e.name)
        if isinstance(e, k.ConstTable):
            return self.const_table(fr, e)
        if isinstance(e, k.ArrayLoad):
            addr, ty, _ = self.nl.arrays[e.array]
            return f"({WT[IR_TYPES[ty]]}.load offset={self.rel(addr)} {self.array_address(fr, e.array, e.index, e.site)})"
        if isinstance(e, k.Unary):
            return self.unary(fr, e)
        if isinstance(e, k.Binary):
            return self.binary(fr, e)
        if isinstance(e, k.Compare):
            return self.compare(fr, e)
        if isinstance(e, k.Logical):
            a, b = self.expr(fr, e.left), self.expr(fr, e.right)
            if e.op == "and":
                return f"(if (result i32) {a} (then {b}) (else (i32.const 0)))"
            return f"(if (result i32) {a} (then (i32.const 1)) (else {b}))"
        if isinstance(e, k.Select):
            return (
                f"(if (result {WT[e.type]}) {self.expr(fr, e.cond)}"
                f" (then {self.expr(fr, e.then)}) (else {self.expr(fr, e.orelse)}))"
            )
        if isinstance(e, k.Convert):
            return self.convert(fr, e)
        if isinstance(e, k.MathCall):
            return self.math(fr, e)
        if isinstance(e, k.Call):
            args = [self.expr(fr, a) for a in e.args]
            if e.conditional and self.outline(e.func):
                return self.call_outlined(e.func, args)
            return self.inline_value(e.func, args)
        if isinstance(e, k.Let):
            loc = self.local(f"{fr.prefix}_{e.name}", WT[e.value.type])
            return f"(block (result {WT[e.type]}) (local.set {loc} {self.expr(fr, e.value)}) {self.expr(fr, e.body)})"
        raise JitError(f"internal: no rendering for {type(e).__name__}")

    def const_table(self, fr: _Frame, e: k.ConstTable) -> str:
        """An element of a constant tuple: Python's negative indices, a bounds check, then a
        chain of selects (the tables are small; the values are immediates, no memory)."""
        n, wt = len(e.values), WT[e.type]
        sid = self.site(e.site, f"a constant tuple of {n} numbers")
        ix = self.local(self.fresh("_tix"), "i64")
        chain = _const(e.type, e.values[n - 1])
        for j in range(n - 2, -1, -1):
            chain = f"(select {_const(e.type, e.values[j])} {chain} (i64.eq (local.get {ix}) {_i64(j)}))"
        return (
            f"(block (result {wt}) (local.set {ix} {self.expr(fr, e.index)})"
            f" (if (i64.lt_s (local.get {ix}) (i64.const 0)) (then (local.set {ix} (i64.add (local.get {ix}) {_i64(n)}))))"
            f" (if (i64.ge_u (local.get {ix}) {_i64(n)}) (then {self.trap(sid, INDEX)}))"
            f" {chain})"
        )

    def unary(self, fr: _Frame, e: k.Unary) -> str:
        v = self.expr(fr, e.operand)
        if e.op == "not":
            return f"(i32.eqz {v})"
        if e.op == "neg":
            if e.type == T.F64:
                return f"(f64.neg {v})"
            return self.call("i_neg", v, _i32(self.site(e.site)))
        if e.op == "abs":
            return self.call("i_abs", v, _i32(self.site(e.site)))
        if e.op == "invert":
            return f"(i64.xor {v} (i64.const -1))"
        raise JitError(f"internal: unary {e.op}", e.site)

    def binary(self, fr: _Frame, e: k.Binary) -> str:
        a, b = self.expr(fr, e.left), self.expr(fr, e.right)
        op = e.op
        if e.type == T.F64:
            simple = {"+": "add", "-": "sub", "*": "mul"}
            if op in simple:
                return f"(f64.{simple[op]} {a} {b})"
            if op == "sq":
                x, r = self.local(self.fresh("_sqx"), "f64"), self.local(self.fresh("_sqr"), "f64")
                sid = self.site(e.site, "x ** 2")
                return (
                    f"(block (result f64) (local.set {x} {a}) (local.set {r} (f64.mul (local.get {x}) (local.get {x})))"
                    f" (if (i32.and (f64.eq (f64.abs (local.get {r})) (f64.const inf)) (f64.ne (f64.abs (local.get {x})) (f64.const inf)))"
                    f" (then {self.trap(sid, POW_OVERFLOW)})) (local.get {r}))"
                )
            if op == "/":
                if isinstance(e.right, k.Const) and float(e.right.value) != 0.0:
                    return f"(f64.div {a} {b})"
                return self.call("f_div", a, b, _i32(self.site(e.site)))
            if op == "%" and isinstance(e.right, k.Const) and _small_power_of_two(float(e.right.value)):
                # x % 2**k: x - b*trunc(x/b) is exact (scaling by a power of two and taking the
                # integer part are), which is C's fmod; Python then adds b to a negative result.
                m = self.local(self.fresh("_mod"), "f64")
                inv = _f64(1.0 / float(e.right.value))
                return (
                    f"(block (result f64) (local.set {m} {a})"
                    f" (local.set {m} (f64.sub (local.get {m}) (f64.mul {b} (f64.trunc (f64.mul (local.get {m}) {inv})))))"
                    f" (if (result f64) (f64.lt (local.get {m}) (f64.const 0)) (then (f64.add (local.get {m}) {b})) (else (local.get {m}))))"
                )
            if op in ("%", "//"):
                return self.math_text("pymod" if op == "%" else "pyfloordiv", [a, b], e.site)
        if e.type == T.BOOL:
            return f"(i32.{ {'&': 'and', '|': 'or', '^': 'xor'}[op] } {a} {b})"
        checked = {
            "+": "i_add",
            "-": "i_sub",
            "*": "i_mul",
            "//": "i_floordiv",
            "%": "i_mod",
            "**": "i_pow",
            "<<": "i_shl",
            ">>": "i_shr",
        }
        if op in checked:
            return self.call(checked[op], a, b, _i32(self.site(e.site)))
        plain = {"&": "and", "|": "or", "^": "xor"}
        return f"(i64.{plain[op]} {a} {b})"

    def compare(self, fr: _Frame, e: k.Compare) -> str:
        left_int = isinstance(e.left, k.Convert) and e.left.mode == "exact"
        right_int = isinstance(e.right, k.Convert) and e.right.mode == "exact"
        if left_int != right_int:
            # int against float: compared exactly, as Python does (not by rounding the int)
            op = e.op
            if left_int:
                i, f = e.left.operand, e.right
            else:
                i, f = e.right.operand, e.left
                op = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}[op]
            r = self.call("cmp_if", self.expr(fr, i), self.expr(fr, f))
            return {
                "<": f"(i32.eq {r} (i32.const -1))",
                "<=": f"(i32.le_s {r} (i32.const 0))",
                ">": f"(i32.eq {r} (i32.const 1))",
                ">=": f"(i32.le_u {r} (i32.const 1))",
                "==": f"(i32.eqz {r})",
                "!=": f"(i32.ne {r} (i32.const 0))",
            }[op]
        a, b = self.expr(fr, e.left), self.expr(fr, e.right)
        t = e.left.type
        if t == T.F64:
            name = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}[e.op]
            return f"(f64.{name} {a} {b})"
        name = {"<": "lt_s", "<=": "le_s", ">": "gt_s", ">=": "ge_s", "==": "eq", "!=": "ne"}[e.op]
        return f"({'i64' if t == T.I64 else 'i32'}.{name} {a} {b})"

    def convert(self, fr: _Frame, e: k.Convert) -> str:
        src, dst = e.operand.type, e.type
        fused = dst == T.F64 and isinstance(e.operand, k.Convert) and e.operand.operand.type == T.F64
        v = "" if fused else self.expr(fr, e.operand)
        if dst == T.F64 and e.mode == "exact":
            x = self.local(self.fresh("_exact"), "i64")
            sid = self.site(e.site)
            return (
                f"(block (result f64) (local.set {x} {v})"
                f" (if (i64.gt_u (i64.add (local.get {x}) (i64.const 9007199254740992)) (i64.const 18014398509481984))"
                f" (then {self.trap(sid, INEXACT_INT)})) (f64.convert_i64_s (local.get {x})))"
            )
        if dst == T.F64:
            inner = e.operand
            if (
                isinstance(inner, k.Convert)
                and inner.operand.type == T.F64
                and inner.mode in ("floor", "ceil", "trunc", "round")
            ):
                # float(math.floor(x)) and friends: the rounded float itself, exact for any size
                # (Python's int is unbounded); only NaN and infinities raise, as in Python.
                op = {"floor": "f64.floor", "ceil": "f64.ceil", "trunc": "f64.trunc", "round": "f64.nearest"}[
                    inner.mode
                ]
                x = self.local(self.fresh("_rnd"), "f64")
                sid = self.site(inner.site)
                # + 0.0: an int has no sign of zero, so float(round(-0.3)) is 0.0, not -0.0
                return (
                    f"(block (result f64) (local.set {x} (f64.add ({op} {self.expr(fr, inner.operand)}) (f64.const 0)))"
                    f" (if (f64.ne (f64.sub (local.get {x}) (local.get {x})) (f64.const 0))"
                    f" (then {self.call('trap_not_finite', f'(local.get {x})', _i32(sid))})) (local.get {x}))"
                )
            return f"(f64.convert_i64_s {v})" if src == T.I64 else f"(f64.convert_i32_u {v})"
        if dst == T.I64 and src == T.BOOL:
            return f"(i64.extend_i32_u {v})"
        if dst == T.I64 and src == T.F64:
            rounding = {
                "trunc": "",
                "plain": "",
                "floor": "f64.floor",
                "ceil": "f64.ceil",
                "round": "f64.nearest",
            }[e.mode]
            if rounding:
                v = f"({rounding} {v})"
            return self.call("f_to_int", v, _i32(self.site(e.site)))
        raise JitError(f"internal: conversion {src} -> {dst}", e.site)

    def math(self, fr: _Frame, e: k.MathCall) -> str:
        args = [self.expr(fr, a) for a in e.args]
        if e.func == "fabs":
            return f"(f64.abs {args[0]})"
        if e.func == "copysign":
            return f"(f64.copysign {args[0]} {args[1]})"
        return self.math_text(e.func, args, e.site)

    def math_text(self, name: str, args: list[str], site: k.Site) -> str:
        fn = wasm_math.FUNCTIONS[name]
        if not fn.can_trap:
            return self.math_call(fn.wasm_name, args)
        # Note the site after the arguments are evaluated: an argument's own trap keeps its site.
        sid = self.site(site, f"math.{name}")
        note = f"(i32.store {_i32(TRAP_SITE)} {_i32(sid)}) (i32.store {_i32(TRAP_CODE)} {_i32(MATH)})"
        return self.math_call(fn.wasm_name, args, prologue=note)
