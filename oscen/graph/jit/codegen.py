"""The WebAssembly renderer: a whole graph, node code inlined, as one WAT module.

Nodes are grouped into *segments* in processing order. A segment is one function with one loop over
the block's samples; inside it, every node's ``process`` (and event handlers, and helper methods) is
inlined, its scalar state lives in locals (loaded before the loop, stored after), values passed
between nodes of the segment stay in locals, and values leaving the segment go through per-output
buffers. Cycles through feedback breakers are kept inside one segment, sample by sample. Segments
are small and independent, which keeps Cranelift's compile time linear in the graph size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import kernel as k
from . import wasm_math
from .inline import Inliner, WatFunction, parse, parse_function, render
from .frontend import ArrayAttr, AttrInfo, EndpointAttr, JitError, NodeLowering, ScalarAttr
from .ir import GraphIR, NodeIR
from .kernel import T
from .layout import EVENT_BYTES, FRAME, INTERRUPT, SEGMENT, TRAP_CODE, TRAP_SITE, Layout, QueueSlots

WT = {T.F64: "f64", T.I64: "i64", T.BOOL: "i32"}
IR_TYPES = {"f64": T.F64, "i64": T.I64, "bool": T.BOOL}

# Trap codes (what went wrong); the site table says where.
OVERFLOW, INT_ZERO_DIV, FLOAT_ZERO_DIV, NAN_TO_INT, INF_TO_INT, FLOAT_TOO_BIG = 1, 2, 3, 4, 5, 6
INDEX, NEG_SHIFT, RANGE_STEP, QUEUE_FULL, ASSERTION, MATH, TIMEOUT, FLOAT_NOT_FINITE = 7, 8, 9, 10, 11, 12, 13, 14
TRAP_MESSAGES: dict[int, tuple[type[Exception], str]] = {
    OVERFLOW: (OverflowError, "integer overflow: compiled ints are 64-bit"),
    INT_ZERO_DIV: (ZeroDivisionError, "integer division or modulo by zero"),
    FLOAT_ZERO_DIV: (ZeroDivisionError, "float division by zero"),
    NAN_TO_INT: (ValueError, "cannot convert float NaN to integer"),
    INF_TO_INT: (OverflowError, "cannot convert float infinity to integer"),
    FLOAT_TOO_BIG: (OverflowError, "float too large for a 64-bit int in compiled code"),
    INDEX: (IndexError, "index out of range"),
    NEG_SHIFT: (ValueError, "negative shift count"),
    RANGE_STEP: (ValueError, "range() arg 3 must not be zero"),
    QUEUE_FULL: (RuntimeError, "event queue overflow: too many events in one block"),
    TIMEOUT: (TimeoutError, "ran too long (an endless loop?)"),
    ASSERTION: (AssertionError, ""),
}

FUSE_NODES = 4
"""Nodes per segment loop: fusing neighbours keeps values in registers and interleaves independent
recurrences (two voices' filters), but too many live values at once spill."""


@dataclass(frozen=True)
class TrapSite:
    node: str
    site: k.Site | None
    detail: str = ""


@dataclass
class Program:
    wat: str
    layout: Layout
    sites: list[TrapSite]
    segments: list[list[int]]  # node ids per segment
    node_labels: dict[int, str]


def _small_power_of_two(v: float) -> bool:
    import math

    if not (v > 0 and math.isfinite(v)):
        return False
    mantissa, exponent = math.frexp(v)
    return mantissa == 0.5 and -60 < exponent < 60


def _f64(v: float) -> str:
    return f"(f64.const {float(v).hex()})"


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


@dataclass
class _Frame:
    """Rendering context of one inlined function body."""

    prefix: str
    ret_label: str | None = None
    ret_local: str | None = None
    loops: list[tuple[str, str]] = field(default_factory=list)  # (break label, continue label)


class _NodeContext:
    """What the renderer needs to know about the node whose code it is emitting."""

    def __init__(self, gen: SegmentRenderer, node: NodeIR, lowering: NodeLowering) -> None:
        self.gen = gen
        self.node = node
        self.lowering = lowering
        self.p = f"n{node.id}"
        self.used_scalars: set[str] = set()
        self.used_arrays: set[str] = set()


class SegmentRenderer:
    """Renders one segment function."""

    def __init__(self, program: ProgramBuilder, seg_index: int, node_ids: list[int]) -> None:
        self.pb = program
        self.ir = program.ir
        self.layout = program.layout
        self.index = seg_index
        self.node_ids = node_ids
        self.members = set(node_ids)
        self.locals: dict[str, str] = {"$i": "i32", "$i8": "i32"}
        self.uid = 0
        self.ctx: _NodeContext | None = None

    # ------------------------------------------------------------------ utilities
    def fresh(self, base: str) -> str:
        self.uid += 1
        return f"{base}_{self.uid}"

    def local(self, name: str, t: str) -> str:
        self.locals[name] = t
        return name

    def site(self, site: k.Site | None, detail: str = "") -> int:
        assert self.ctx is not None
        return self.pb.add_site(TrapSite(self.ctx.node.label, site, detail))

    def trap(self, site: int, code: int) -> str:
        return f"(block (i32.store {_i32(TRAP_SITE)} {_i32(site)}) (i32.store {_i32(TRAP_CODE)} {_i32(code)}) unreachable)"

    def call(self, name: str, *args: str) -> str:
        """A call of a runtime or math function, expanded in place (see inline.py for why)."""
        return self.pb.inliner.inline(name, list(args))

    # ------------------------------------------------------------------ the segment
    def render(self) -> str:
        body: list[str] = []
        prologue: list[str] = []
        epilogue: list[str] = []
        contexts = [_NodeContext(self, self.ir.node(nid), self.pb.lowering(self.ir.node(nid))) for nid in self.node_ids]
        self.contexts = {ctx.node.id: ctx for ctx in contexts}
        for ctx in contexts:
            self.ctx = ctx
            body.extend(self.node_step(ctx))
        for ctx in contexts:
            self.ctx = ctx
            nl = self.layout.nodes[ctx.node.id]
            for name in sorted(ctx.used_scalars):
                addr, ty = nl.scalars[name]
                loc = f"${ctx.p}_{name}"
                wt = WT[IR_TYPES[ty]]
                prologue.append(f"(local.set {loc} ({wt}.load {_i32(addr)}))")
                epilogue.append(f"({wt}.store {_i32(addr)} (local.get {loc}))")
            for name, slots in nl.params.items():
                if self.input_sources(ctx.node.id, name):
                    continue
                v, tg, st, rem = (f"${ctx.p}_{name}", f"${ctx.p}_{name}_tgt", f"${ctx.p}_{name}_step", f"${ctx.p}_{name}_rem")
                for loc, addr, wt in ((v, slots.value, "f64"), (tg, slots.target, "f64"), (st, slots.step, "f64"), (rem, slots.remaining, "i64")):
                    self.local(loc, wt)
                    prologue.append(f"(local.set {loc} ({wt}.load {_i32(addr)}))")
                epilogue.append(f"(f64.store {_i32(slots.value)} (local.get {v}))")
                epilogue.append(f"(i64.store {_i32(slots.remaining)} (local.get {rem}))")
        self.locals.update(self.pb.inliner.locals)
        self.pb.inliner.locals = {}
        out = [f"(func $seg{self.index} (param $n i32)"]
        decls = "".join(f" (local {name} {t})" for name, t in self.locals.items())
        out.append(decls)
        out.append(f"(i32.store {_i32(SEGMENT)} {_i32(self.index)})")
        out.extend(prologue)
        out.append("(local.set $i (i32.const 0))")
        out.append("(block $exit (loop $sample")
        out.append("(br_if $exit (i32.ge_u (local.get $i) (local.get $n)))")
        out.append("(local.set $i8 (i32.shl (local.get $i) (i32.const 3)))")
        out.extend(body)
        out.append("(local.set $i (i32.add (local.get $i) (i32.const 1)))")
        out.append("(br $sample)))")
        out.extend(epilogue)
        out.append(")")
        return "\n".join(out)

    def input_sources(self, nid: int, name: str) -> list[tuple[int, str]]:
        return [(c.source, c.source_endpoint) for c in self.ir.inputs_of(nid, name)]

    def node_step(self, ctx: _NodeContext) -> list[str]:
        node = ctx.node
        nl = self.layout.nodes[node.id]
        lines: list[str] = []
        # 1. ramps of parameters set from outside
        for name in nl.params:
            if self.input_sources(node.id, name):
                continue
            v, tg, st, rem = f"${ctx.p}_{name}", f"${ctx.p}_{name}_tgt", f"${ctx.p}_{name}_step", f"${ctx.p}_{name}_rem"
            lines.append(
                f"(if (i64.gt_s (local.get {rem}) (i64.const 0)) (then"
                f" (local.set {rem} (i64.sub (local.get {rem}) (i64.const 1)))"
                f" (if (i64.eqz (local.get {rem})) (then (local.set {v} (local.get {tg})))"
                f" (else (local.set {v} (f64.add (local.get {v}) (local.get {st})))))))"
            )
        # 2. connected inputs, summed left to right
        for e in node.endpoints:
            if e.direction != "input" or e.kind == "event":
                continue
            sources = self.input_sources(node.id, e.name)
            if not sources:
                continue
            terms = [self.source_value(src, out) for src, out in sources]
            expr = terms[0]
            for t in terms[1:]:
                expr = f"(f64.add {expr} {t})"
            loc = self.local(f"${ctx.p}_in_{e.name}", "f64")
            lines.append(f"(local.set {loc} {expr})")
        # 3. events due at this sample: external first, then each event connection in order
        for e in node.endpoints:
            if e.direction != "input" or e.kind != "event":
                continue
            handler = ctx.lowering.handler(e.name, e.arity)
            queues = [nl.external_queues[e.name]]
            for ci, c in enumerate(self.ir.connections):
                if c.target == node.id and c.target_endpoint == e.name:
                    queues.append(self.layout.connection_queues[ci])
            for q in queues:
                lines.append(self.dispatch(ctx, q, handler, e.arity))
        # 4. process
        lines.extend(self.inline_statement(ctx, ctx.lowering.process(), []))
        # 5. outputs that leave the segment
        for e in node.endpoints:
            if e.direction == "output" and e.kind != "event" and (node.id, e.name) in self.pb.buffered:
                ctx.used_scalars.add(e.name)
                self.local(f"${ctx.p}_{e.name}", "f64")
                lines.append(f"(f64.store offset={nl.buffers[e.name]} (local.get $i8) (local.get ${ctx.p}_{e.name}))")
        return lines

    def source_value(self, src: int, out: str) -> str:
        if src in self.members:
            # Same loop: the source's output local (this sample's value, or the previous sample's
            # over a back edge into a feedback breaker, since the source runs later).
            self.contexts[src].used_scalars.add(out)
            self.local(f"$n{src}_{out}", "f64")
            return f"(local.get $n{src}_{out})"
        assert (src, out) in self.pb.buffered
        return f"(f64.load offset={self.layout.nodes[src].buffers[out]} (local.get $i8))"

    def frame_expr(self) -> str:
        return f"(i64.add (i64.load {_i32(FRAME)}) (i64.extend_i32_u (local.get $i)))"

    def dispatch(self, ctx: _NodeContext, q: QueueSlots, handler: k.KFunction, arity: int) -> str:
        done, nxt = self.fresh("$ev_done"), self.fresh("$ev_next")
        head = self.local(self.fresh("$ev_head"), "i32")
        entry = self.local(self.fresh("$ev_at"), "i32")
        args = [f"(f64.load offset={8 + 8 * j} (local.get {entry}))" for j in range(arity)]
        call = "\n".join(self.inline_statement(ctx, handler, args))
        return (
            f"(block {done} (loop {nxt}"
            f" (local.set {head} (i32.load {_i32(q.base + 4)}))"
            f" (br_if {done} (i32.ge_u (local.get {head}) (i32.load {_i32(q.base)})))"
            f" (local.set {entry} (i32.add {_i32(q.entries)} (i32.mul (local.get {head}) {_i32(EVENT_BYTES)})))"
            f" (br_if {done} (i64.gt_s (i64.load (local.get {entry})) {self.frame_expr()}))"
            f" (i32.store {_i32(q.base + 4)} (i32.add (local.get {head}) (i32.const 1)))\n"
            f"{call}\n"
            f" (br {nxt})))"
        )

    # ------------------------------------------------------------------ inlining
    def bind_call(self, ctx: _NodeContext, fn: k.KFunction, args: list[str]) -> tuple[_Frame, list[str]]:
        frame = _Frame(prefix=self.fresh(f"${ctx.p}_{fn.name}"))
        lines = []
        for (pname, ptype), arg in zip(fn.params, args, strict=True):
            loc = self.local(f"{frame.prefix}_{pname}", WT[ptype])
            lines.append(f"(local.set {loc} {arg})")
        for lname, ltype in fn.locals.items():
            self.local(f"{frame.prefix}_{lname}", WT[ltype])
        frame.ret_label = self.fresh("$ret")
        return frame, lines

    def inline_statement(self, ctx: _NodeContext, fn: k.KFunction, args: list[str]) -> list[str]:
        """A call whose value is not used (process, a handler, a helper called as a statement)."""
        frame, lines = self.bind_call(ctx, fn, args)
        if fn.returns is not None:
            frame.ret_local = self.local(f"{frame.prefix}__ret", WT[fn.returns])
        body = self.stmts(ctx, frame, fn.body)
        return [*lines, f"(block {frame.ret_label}", *body, ")"]

    def inline_value(self, ctx: _NodeContext, fn: k.KFunction, args: list[str]) -> str:
        assert fn.returns is not None
        frame, lines = self.bind_call(ctx, fn, args)
        wt = WT[fn.returns]
        frame.ret_local = self.local(f"{frame.prefix}__ret", wt)
        body = self.stmts(ctx, frame, fn.body)
        # Falling off the end returns None in Python; a value-returning helper must return.
        inner = "\n".join([*lines, f"(local.set {frame.ret_local} {_const(fn.returns, 0)})", f"(block {frame.ret_label}", *body, ")"])
        return f"(block (result {wt})\n{inner}\n(local.get {frame.ret_local}))"

    # ------------------------------------------------------------------ statements
    def stmts(self, ctx: _NodeContext, fr: _Frame, body: list[k.Stmt]) -> list[str]:
        out: list[str] = []
        for s in body:
            out.extend(self.stmt(ctx, fr, s))
        return out

    def stmt(self, ctx: _NodeContext, fr: _Frame, s: k.Stmt) -> list[str]:
        if isinstance(s, k.Assign):
            return [f"(local.set {self.target_local(ctx, fr, s.target)} {self.expr(ctx, fr, s.value)})"]
        if isinstance(s, k.ArrayStore):
            addr, ty, _ = self.layout.nodes[ctx.node.id].arrays[s.array]
            ctx.used_arrays.add(s.array)
            wt = WT[IR_TYPES[ty]]
            return [f"({wt}.store offset={addr} {self.array_offset(ctx, fr, s.array, s.index, s.site)} {self.expr(ctx, fr, s.value)})"]
        if isinstance(s, k.If):
            then = "\n".join(self.stmts(ctx, fr, s.body))
            other = "\n".join(self.stmts(ctx, fr, s.orelse))
            text = f"(if {self.expr(ctx, fr, s.cond)} (then\n{then})"
            if other:
                text += f" (else\n{other})"
            return [text + ")"]
        if isinstance(s, k.While):
            brk, cont = self.fresh("$brk"), self.fresh("$cont")
            fr.loops.append((brk, cont))
            body = "\n".join(self.stmts(ctx, fr, s.body))
            fr.loops.pop()
            check = self.interrupt_check(s.site)
            return [f"(block {brk} (loop {cont} (br_if {brk} (i32.eqz {self.expr(ctx, fr, s.cond)})) {check}\n{body}\n(br {cont})))"]
        if isinstance(s, k.ForRange):
            return self.for_range(ctx, fr, s)
        if isinstance(s, k.Break):
            return [f"(br {fr.loops[-1][0]})"]
        if isinstance(s, k.Continue):
            return [f"(br {fr.loops[-1][1]})"]
        if isinstance(s, k.Return):
            if s.value is not None and fr.ret_local is not None:
                return [f"(local.set {fr.ret_local} {self.expr(ctx, fr, s.value)})", f"(br {fr.ret_label})"]
            if s.value is not None:
                return [f"(drop {self.expr(ctx, fr, s.value)})", f"(br {fr.ret_label})"]
            return [f"(br {fr.ret_label})"]
        if isinstance(s, k.ExprStmt):
            if isinstance(s.value, k.Call):
                args = [self.expr(ctx, fr, a) for a in s.value.args]
                return self.inline_statement(ctx, s.value.func, args)
            return [f"(drop {self.expr(ctx, fr, s.value)})"]
        if isinstance(s, k.Emit):
            return self.emit(ctx, fr, s)
        if isinstance(s, k.Raise):
            return [self.trap(self.site(s.site, s.message), ASSERTION)]
        raise JitError(f"internal: no rendering for {type(s).__name__}", s.site)

    def for_range(self, ctx: _NodeContext, fr: _Frame, s: k.ForRange) -> list[str]:
        cnt = self.local(f"{fr.prefix}_{s.counter}", "i64")
        lim = self.local(f"{fr.prefix}_{s.limit}", "i64")
        stp = self.local(f"{fr.prefix}_{s.stride}", "i64")
        var = self.local(f"{fr.prefix}_{s.var.name}", "i64")
        lines = [
            f"(local.set {cnt} {self.expr(ctx, fr, s.start)})",
            f"(local.set {lim} {self.expr(ctx, fr, s.stop)})",
            f"(local.set {stp} {self.expr(ctx, fr, s.step)})",
        ]
        if isinstance(s.step, k.Const):
            cond = f"(i64.lt_s (local.get {cnt}) (local.get {lim}))" if s.step.value > 0 else f"(i64.gt_s (local.get {cnt}) (local.get {lim}))"
        else:
            lines.append(f"(if (i64.eqz (local.get {stp})) (then {self.trap(self.site(s.site), RANGE_STEP)}))")
            cond = (
                f"(if (result i32) (i64.gt_s (local.get {stp}) (i64.const 0))"
                f" (then (i64.lt_s (local.get {cnt}) (local.get {lim}))) (else (i64.gt_s (local.get {cnt}) (local.get {lim}))))"
            )
        brk, top, cont = self.fresh("$brk"), self.fresh("$top"), self.fresh("$cont")
        fr.loops.append((brk, cont))
        body = "\n".join(self.stmts(ctx, fr, s.body))
        fr.loops.pop()
        lines.append(
            f"(block {brk} (loop {top} (br_if {brk} (i32.eqz {cond})) {self.interrupt_check(s.site)}"
            f" (local.set {var} (local.get {cnt}))"
            f" (block {cont}\n{body})"
            f" (local.set {cnt} (i64.add (local.get {cnt}) (local.get {stp})))"
            f" (br {top})))"
        )
        return lines

    def interrupt_check(self, site: k.Site) -> str:
        """Loops in node code poll the watchdog's flag (the sample loop itself is bounded)."""
        return f"(if (i32.load {_i32(INTERRUPT)}) (then {self.trap(self.site(site, 'a loop'), TIMEOUT)}))"

    def emit(self, ctx: _NodeContext, fr: _Frame, s: k.Emit) -> list[str]:
        queues = [
            self.layout.connection_queues[ci]
            for ci, c in enumerate(self.ir.connections)
            if c.source == ctx.node.id and c.source_endpoint == s.port
        ]
        temps = []
        lines = []
        for a in s.args:
            t = self.local(self.fresh("$emit"), "f64")
            lines.append(f"(local.set {t} {self.expr(ctx, fr, a)})")
            temps.append(t)
        if not queues:
            return lines
        frame = self.local(self.fresh("$emit_frame"), "i64")
        lines.append(f"(local.set {frame} {self.frame_expr()})")
        site = self.site(s.site, f"self.{s.port}.emit")
        cnt = self.local(self.fresh("$emit_n"), "i32")
        at = self.local(self.fresh("$emit_at"), "i32")
        for q in queues:
            lines.append(f"(local.set {cnt} (i32.load {_i32(q.base)}))")
            lines.append(f"(if (i32.ge_u (local.get {cnt}) {_i32(q.capacity)}) (then {self.trap(site, QUEUE_FULL)}))")
            lines.append(f"(local.set {at} (i32.add {_i32(q.entries)} (i32.mul (local.get {cnt}) {_i32(EVENT_BYTES)})))")
            lines.append(f"(i64.store (local.get {at}) (local.get {frame}))")
            for j in range(4):
                value = f"(local.get {temps[j]})" if j < len(temps) else _f64(0.0)
                lines.append(f"(f64.store offset={8 + 8 * j} (local.get {at}) {value})")
            lines.append(f"(i32.store {_i32(q.base)} (i32.add (local.get {cnt}) (i32.const 1)))")
        return lines

    def target_local(self, ctx: _NodeContext, fr: _Frame, target: k.Local | k.Attr) -> str:
        if isinstance(target, k.Local):
            return self.local(f"{fr.prefix}_{target.name}", WT[target.type])
        return self.attr_local(ctx, target.name, target.type)

    def attr_local(self, ctx: _NodeContext, name: str, t: T) -> str:
        ctx.used_scalars.add(name)
        return self.local(f"${ctx.p}_{name}", WT[t])

    # ------------------------------------------------------------------ expressions
    def array_offset(self, ctx: _NodeContext, fr: _Frame, array: str, index: k.Expr, site: k.Site) -> str:
        """Byte offset of ``array[index]`` with Python's negative indices and a bounds check."""
        length = self.layout.nodes[ctx.node.id].arrays[array][2]
        sid = self.site(site, f"self.{array}[...] (length {length})")
        if isinstance(index, k.Const):
            i = int(index.value)
            if i < 0:
                i += length
            if not 0 <= i < length:
                return f"(block (result i32) {self.trap(sid, INDEX)} (i32.const 0))"
            return _i32(8 * i)
        ix = self.local(self.fresh("$ix"), "i64")
        return (
            f"(block (result i32) (local.set {ix} {self.expr(ctx, fr, index)})"
            f" (if (i64.lt_s (local.get {ix}) (i64.const 0)) (then (local.set {ix} (i64.add (local.get {ix}) {_i64(length)}))))"
            f" (if (i64.ge_u (local.get {ix}) {_i64(length)}) (then {self.trap(sid, INDEX)}))"
            f" (i32.wrap_i64 (i64.shl (local.get {ix}) (i64.const 3))))"
        )

    def expr(self, ctx: _NodeContext, fr: _Frame, e: k.Expr) -> str:
        if isinstance(e, k.Const):
            return _const(e.type, e.value)
        if isinstance(e, k.Local):
            return f"(local.get {self.local(f'{fr.prefix}_{e.name}', WT[e.type])})"
        if isinstance(e, k.Attr):
            return f"(local.get {self.attr_local(ctx, e.name, e.type)})"
        if isinstance(e, k.Input):
            return self.input(ctx, e.name)
        if isinstance(e, k.ArrayLoad):
            addr, ty, _ = self.layout.nodes[ctx.node.id].arrays[e.array]
            ctx.used_arrays.add(e.array)
            return f"({WT[IR_TYPES[ty]]}.load offset={addr} {self.array_offset(ctx, fr, e.array, e.index, e.site)})"
        if isinstance(e, k.ArrayLen):
            return _i64(self.layout.nodes[ctx.node.id].arrays[e.array][2])
        if isinstance(e, k.Unary):
            return self.unary(ctx, fr, e)
        if isinstance(e, k.Binary):
            return self.binary(ctx, fr, e)
        if isinstance(e, k.Compare):
            return self.compare(ctx, fr, e)
        if isinstance(e, k.Logical):
            a, b = self.expr(ctx, fr, e.left), self.expr(ctx, fr, e.right)
            if e.op == "and":
                return f"(if (result i32) {a} (then {b}) (else (i32.const 0)))"
            return f"(if (result i32) {a} (then (i32.const 1)) (else {b}))"
        if isinstance(e, k.Select):
            return (
                f"(if (result {WT[e.type]}) {self.expr(ctx, fr, e.cond)}"
                f" (then {self.expr(ctx, fr, e.then)}) (else {self.expr(ctx, fr, e.orelse)}))"
            )
        if isinstance(e, k.Convert):
            return self.convert(ctx, fr, e)
        if isinstance(e, k.MathCall):
            return self.math(ctx, fr, e)
        if isinstance(e, k.Call):
            return self.inline_value(ctx, e.func, [self.expr(ctx, fr, a) for a in e.args])
        if isinstance(e, k.Let):
            loc = self.local(f"{fr.prefix}_{e.name}", WT[e.value.type])
            return f"(block (result {WT[e.type]}) (local.set {loc} {self.expr(ctx, fr, e.value)}) {self.expr(ctx, fr, e.body)})"
        raise JitError(f"internal: no rendering for {type(e).__name__}")

    def input(self, ctx: _NodeContext, name: str) -> str:
        node = ctx.node
        ep = node.endpoint(name)
        if self.input_sources(node.id, name):
            return f"(local.get ${ctx.p}_in_{name})"
        if ep.kind == "value":
            return f"(local.get ${ctx.p}_{name})"
        return _f64(ep.default)

    def unary(self, ctx: _NodeContext, fr: _Frame, e: k.Unary) -> str:
        v = self.expr(ctx, fr, e.operand)
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

    def binary(self, ctx: _NodeContext, fr: _Frame, e: k.Binary) -> str:
        a, b = self.expr(ctx, fr, e.left), self.expr(ctx, fr, e.right)
        op = e.op
        if e.type == T.F64:
            simple = {"+": "add", "-": "sub", "*": "mul"}
            if op in simple:
                return f"(f64.{simple[op]} {a} {b})"
            if op == "/":
                if isinstance(e.right, k.Const) and float(e.right.value) != 0.0:
                    return f"(f64.div {a} {b})"
                return self.call("f_div", a, b, _i32(self.site(e.site)))
            if op == "%" and isinstance(e.right, k.Const) and _small_power_of_two(float(e.right.value)):
                # x % 2**k: x - b*trunc(x/b) is exact (scaling by a power of two and taking the
                # integer part are), which is C's fmod; Python then adds b to a negative result.
                m = self.local(self.fresh("$mod"), "f64")
                inv = _f64(1.0 / float(e.right.value))
                return (
                    f"(block (result f64) (local.set {m} {a})"
                    f" (local.set {m} (f64.sub (local.get {m}) (f64.mul {b} (f64.trunc (f64.mul (local.get {m}) {inv})))))"
                    f" (if (result f64) (f64.lt (local.get {m}) (f64.const 0)) (then (f64.add (local.get {m}) {b})) (else (local.get {m}))))"
                )
            if op in ("%", "//"):
                return self.math_text(ctx, "pymod" if op == "%" else "pyfloordiv", [a, b], e.site)
        if e.type == T.BOOL:
            return f"(i32.{ {'&': 'and', '|': 'or', '^': 'xor'}[op]} {a} {b})"
        checked = {"+": "i_add", "-": "i_sub", "*": "i_mul", "//": "i_floordiv", "%": "i_mod", "**": "i_pow", "<<": "i_shl", ">>": "i_shr"}
        if op in checked:
            return self.call(checked[op], a, b, _i32(self.site(e.site)))
        plain = {"&": "and", "|": "or", "^": "xor"}
        return f"(i64.{plain[op]} {a} {b})"

    def compare(self, ctx: _NodeContext, fr: _Frame, e: k.Compare) -> str:
        a, b = self.expr(ctx, fr, e.left), self.expr(ctx, fr, e.right)
        t = e.left.type
        if t == T.F64:
            name = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}[e.op]
            return f"(f64.{name} {a} {b})"
        name = {"<": "lt_s", "<=": "le_s", ">": "gt_s", ">=": "ge_s", "==": "eq", "!=": "ne"}[e.op]
        return f"({'i64' if t == T.I64 else 'i32'}.{name} {a} {b})"

    def convert(self, ctx: _NodeContext, fr: _Frame, e: k.Convert) -> str:
        src, dst = e.operand.type, e.type
        fused = dst == T.F64 and isinstance(e.operand, k.Convert) and e.operand.operand.type == T.F64
        v = "" if fused else self.expr(ctx, fr, e.operand)
        if dst == T.F64:
            inner = e.operand
            if isinstance(inner, k.Convert) and inner.operand.type == T.F64 and inner.mode in ("floor", "ceil", "trunc", "round"):
                # float(math.floor(x)) and friends: the rounded float itself, exact for any size
                # (Python's int is unbounded); only NaN and infinities raise, as in Python.
                op = {"floor": "f64.floor", "ceil": "f64.ceil", "trunc": "f64.trunc", "round": "f64.nearest"}[inner.mode]
                x = self.local(self.fresh("$rnd"), "f64")
                sid = self.site(inner.site)
                return (
                    f"(block (result f64) (local.set {x} ({op} {self.expr(ctx, fr, inner.operand)}))"
                    f" (if (f64.ne (f64.sub (local.get {x}) (local.get {x})) (f64.const 0))"
                    f" (then {self.call('trap_not_finite', f'(local.get {x})', _i32(sid))})) (local.get {x}))"
                )
            return f"(f64.convert_i64_s {v})" if src == T.I64 else f"(f64.convert_i32_u {v})"
        if dst == T.I64 and src == T.BOOL:
            return f"(i64.extend_i32_u {v})"
        if dst == T.I64 and src == T.F64:
            rounding = {"trunc": "", "plain": "", "floor": "f64.floor", "ceil": "f64.ceil", "round": "f64.nearest"}[e.mode]
            if rounding:
                v = f"({rounding} {v})"
            return self.call("f_to_int", v, _i32(self.site(e.site)))
        raise JitError(f"internal: conversion {src} -> {dst}", e.site)

    def math(self, ctx: _NodeContext, fr: _Frame, e: k.MathCall) -> str:
        args = [self.expr(ctx, fr, a) for a in e.args]
        if e.func == "fabs":
            return f"(f64.abs {args[0]})"
        if e.func == "copysign":
            return f"(f64.copysign {args[0]} {args[1]})"
        return self.math_text(ctx, e.func, args, e.site)

    def math_text(self, ctx: _NodeContext, name: str, args: list[str], site: k.Site) -> str:
        fn = wasm_math.FUNCTIONS[name]
        if not fn.can_trap:
            return self.pb.inliner.inline(fn.wasm_name, args)
        # Note the site after the arguments are evaluated: an argument's own trap keeps its site.
        sid = self.site(site, f"math.{name}")
        note = f"(i32.store {_i32(TRAP_SITE)} {_i32(sid)}) (i32.store {_i32(TRAP_CODE)} {_i32(MATH)})"
        return self.pb.inliner.inline(fn.wasm_name, args, prologue=note)


_LIBRARY: dict[str, WatFunction] | None = None


def _inliner() -> Inliner:
    """An inliner knowing the runtime helpers and the whole math library (parsed once)."""
    global _LIBRARY
    if _LIBRARY is None:
        library = {}
        for item in parse(RUNTIME + wasm_math.wat_for(sorted(wasm_math.FUNCTIONS))):
            if isinstance(item, list) and item and item[0] == "func":
                fn = parse_function(render(item))
                library[fn.name] = fn
        _LIBRARY = library
    return Inliner(_LIBRARY)


class ProgramBuilder:
    """Renders a GraphIR into a module: segments, a `process` entry point, math and runtime."""

    def __init__(self, ir: GraphIR, layout: Layout, fuse: int = FUSE_NODES) -> None:
        self.ir = ir
        self.layout = layout
        self.fuse = fuse
        self.sites: list[TrapSite] = [TrapSite("", None, "")]
        self.buffered: set[tuple[int, str]] = set(ir.outputs)
        self._lowerings: dict[int, NodeLowering] = {}
        self.inliner = _inliner()

    def add_site(self, site: TrapSite) -> int:
        self.sites.append(site)
        return len(self.sites) - 1

    def lowering(self, node: NodeIR) -> NodeLowering:
        low = self._lowerings.get(node.id)
        if low is None:
            attrs: dict[str, AttrInfo] = {}
            for s in node.state:
                t = IR_TYPES[s.type]
                attrs[s.name] = ScalarAttr(t) if s.length is None else ArrayAttr(t, s.length)
            for e in node.endpoints:
                kind = {
                    ("input", "stream"): "stream_in",
                    ("input", "value"): "value_in",
                    ("output", "stream"): "out",
                    ("output", "value"): "out",
                    ("input", "event"): "event_in",
                    ("output", "event"): "event_out",
                }[(e.direction, e.kind)]
                attrs[e.name] = EndpointAttr(kind)
            low = NodeLowering(node.resolve_class(), attrs, self.ir.sample_rate, node.label, node.unsupported, node.constants)
            self._lowerings[node.id] = low
        return low

    def called_functions(self) -> list[str]:
        """Functions left as calls (too large to inline), with everything they call."""
        called = set(self.inliner.called)
        if not called:
            return []
        runtime = {str(item[1])[1:] for item in parse(RUNTIME) if isinstance(item, list)}
        math_names = sorted(n for n in called if n not in runtime)
        return [RUNTIME, wasm_math.wat_for(math_names) if math_names else ""]

    def segments(self) -> list[list[int]]:
        order = self.ir.order
        pos = {nid: i for i, nid in enumerate(order)}
        # A cycle's nodes, and everything between them in the order, run in one loop.
        must_join = [False] * len(order)
        for cyc in self.ir.cycles:
            lo, hi = min(pos[n] for n in cyc), max(pos[n] for n in cyc)
            for i in range(lo + 1, hi + 1):
                must_join[i] = True
        segs: list[list[int]] = []
        for i, nid in enumerate(order):
            if segs and (must_join[i] or len(segs[-1]) < self.fuse):
                segs[-1].append(nid)
            else:
                segs.append([nid])
        return segs

    def build(self) -> Program:
        segs = self.segments()
        # Which outputs leave their segment: rendering segments in order discovers them, but a
        # producer is rendered before its consumers, so find them first.
        seg_of = {nid: si for si, seg in enumerate(segs) for nid in seg}
        for c in self.ir.connections:
            if c.kind != "event" and seg_of[c.source] != seg_of[c.target]:
                self.buffered.add((c.source, c.source_endpoint))
        funcs = []
        for si, seg in enumerate(segs):
            try:
                funcs.append(SegmentRenderer(self, si, seg).render())
            except JitError as err:
                node = self.ir.node(seg[0]) if len(seg) == 1 else None
                if not err.node and node is not None:
                    err.node = node.label
                raise
        reset = []
        for q in self.layout.connection_queues.values():
            reset.append(f"(i64.store {_i32(q.base)} (i64.const 0))")
        compact = []
        for nl in self.layout.nodes.values():
            for q in nl.external_queues.values():
                compact.append(
                    f"(local.set $h (i32.load {_i32(q.base + 4)}))"
                    f" (if (local.get $h) (then"
                    f" (local.set $c (i32.sub (i32.load {_i32(q.base)}) (local.get $h)))"
                    f" (memory.copy {_i32(q.entries)} (i32.add {_i32(q.entries)} (i32.mul (local.get $h) {_i32(EVENT_BYTES)}))"
                    f" (i32.mul (local.get $c) {_i32(EVENT_BYTES)}))"
                    f" (i32.store {_i32(q.base)} (local.get $c)) (i32.store {_i32(q.base + 4)} (i32.const 0))))"
                )
        pages = (self.layout.size + 65535) // 65536
        calls = [f"(call $seg{si} (local.get $n))" for si in range(len(segs))]
        main = "\n".join(
            [
                '(func (export "process") (param $n i32) (local $h i32) (local $c i32)',
                *reset,
                *calls,
                *compact,
                f"(i64.store {_i32(FRAME)} (i64.add (i64.load {_i32(FRAME)}) (i64.extend_i32_u (local.get $n)))))",
            ]
        )
        wat = "\n".join(
            [
                "(module",
                f'(import "env" "memory" (memory {pages}))',
                f'(global ${wasm_math.ERROR_GLOBAL} (export "math_error") (mut i32) (i32.const 0))',
                *self.called_functions(),
                *funcs,
                main,
                ")",
            ]
        )
        return Program(wat, self.layout, self.sites, segs, {n.id: n.label for n in self.ir.nodes})
