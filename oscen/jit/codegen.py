"""Program assembly: a whole graph as one WebAssembly module (text), node code inlined.

Nodes are grouped into *segments* in processing order. A segment is one function with one loop over
the block's samples; inside it, each node's step is pasted in order: its parameter ramps, its
connected inputs summed into locals, its due events dispatched to its handlers, its ``process``, and
its outputs copied to buffers for nodes in later segments. Node code itself comes from
:mod:`.render` (rendered once per node variant). Cycles through feedback breakers stay inside one
segment, sample by sample. Node state lives in memory, not in locals carried across the loop, so
Cranelift's work per node is bounded and compile time grows linearly with the graph.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..graph.ir import GraphIR, NodeIR
from . import wasm_math
from .frontend import JitError, NodeLowering, attribute_infos, fingerprint
from .layout import EVENT_BYTES, FRAME, NODE, SEGMENT, Layout, QueueSlots
from .render import BodyRenderer, Template, TrapSite, _i32, math_imports, wat_of_functions

INLINE_MATH_NODES = 300
"""Graphs up to this many nodes get math functions expanded in their per-sample code (~5% faster
per node); larger ones call them, keeping compile time within ~0.25 ms per node."""

FUSE_NODES = 4
"""Nodes per segment loop: neighbours in one loop hand values over without a buffer and let the CPU
overlap independent recurrences (two voices' filters)."""


@dataclass
class Program:
    wat: str
    layout: Layout
    sites: dict[int, list[TrapSite]]  # node id -> its variant's trap sites (ids are per variant)
    segments: list[list[int]]  # node ids per segment
    node_labels: dict[int, str]
    math_imports: list[str]  # math library functions imported, in import order

    def trap_site(self, node_id: int, site_id: int) -> TrapSite | None:
        """Where trap ``site_id`` of the node whose code ran (the NODE slot) is in the source.

        Site ids belong to the program (to the node's rendered variant), not to the process: a
        compile running concurrently cannot hand out the same id, and nothing grows forever."""
        sites = self.sites.get(node_id, ())
        return sites[site_id] if 0 < site_id < len(sites) else None


_LOWERINGS: dict[tuple, NodeLowering] = {}
_TEMPLATES: dict[tuple, Template] = {}
VARIANT_CACHE = 64
"""Node variants whose lowering and rendered template are kept (least recently used go first): a
re-patch recompiles only what changed, and a live session that meets thousands of variants (every
distinct constant is one) keeps its memory flat. A patch has a handful of variants (the 16-voice
polysynth 8, the demo 9); an entry (lowered methods, rendered
text) is tens of KB, and bench_soak's random patches (a new variant nearly every edit) grew 2 KB
per edit with 256 entries, 0.75 KB with 16."""


_CACHE_LOCK = threading.Lock()  # compiles run on several threads (JitGraphs, batch drivers)


def _recall(cache: dict[tuple, Any], key: tuple) -> Any:
    """The cached entry for ``key``, marked as used most recently (dicts keep insertion order)."""
    with _CACHE_LOCK:
        entry = cache.pop(key, None)
        if entry is not None:
            cache[key] = entry
        return entry


def _remember(cache: dict[tuple, Any], key: tuple, entry: Any) -> None:
    with _CACHE_LOCK:
        cache[key] = entry
        while len(cache) > VARIANT_CACHE:
            cache.pop(next(iter(cache)))


def _variant_key(node: NodeIR, sample_rate: float) -> tuple:
    return (
        node.resolve_class(),
        tuple((s.name, s.type, s.length, s.cols) for s in node.state),
        tuple(sorted((name, fingerprint(v)) for name, v in node.constants.items())),  # -0.0, -nan differ
        tuple((e.name, e.kind, e.direction, e.default, e.arity) for e in node.endpoints),
        sample_rate,
    )


def lowering_for(node: NodeIR, sample_rate: float) -> NodeLowering:
    """The frontend for a node; nodes of one variant share the lowered methods."""
    key = _variant_key(node, sample_rate)
    low = _recall(_LOWERINGS, key)
    if low is not None and not low.still_valid():  # a global it folded in has changed
        low = None
    if low is None:
        attrs = attribute_infos(
            ((s.name, s.type, s.length, s.cols) for s in node.state),
            ((e.name, e.kind, e.direction) for e in node.endpoints),
        )
        low = NodeLowering(
            node.resolve_class(), attrs, sample_rate, node.label, node.unsupported, node.constants
        )
        _remember(_LOWERINGS, key, low)
    return low


class ProgramBuilder:
    """Renders a GraphIR into a module: segments, a ``process`` entry point, the library it calls."""

    def __init__(
        self, ir: GraphIR, layout: Layout, fuse: int = FUSE_NODES, state_in_locals: bool = False
    ) -> None:
        self.ir = ir
        self.layout = layout
        self.fuse = fuse
        self.state_in_locals = state_in_locals
        self.seg_state: dict[int, dict[str, str]] = {}  # node -> scalars held in locals this segment
        self.buffered: set[tuple[int, str]] = set(ir.outputs)
        self.called: set[str] = set()
        self.variant_functions: dict[int, list[str]] = {}
        self.node_templates: dict[int, Template] = {}
        self.inline_math = len(ir.nodes) <= INLINE_MATH_NODES
        self._inputs: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for c in ir.connections:
            self._inputs.setdefault((c.target, c.target_endpoint), []).append((c.source, c.source_endpoint))

    def sources(self, nid: int, name: str) -> list[tuple[int, str]]:
        return self._inputs.get((nid, name), [])

    def template(self, node: NodeIR) -> Template:
        connected = frozenset(
            e.name
            for e in node.endpoints
            if e.direction == "input" and e.kind != "event" and self.sources(node.id, e.name)
        )
        # max_block too: outbox capacities and buffer offsets in the node's region depend on it
        key = (
            _variant_key(node, self.ir.sample_rate),
            connected,
            self.inline_math,
            self.layout.max_block,
            self.state_in_locals,
        )
        tpl = _recall(_TEMPLATES, key)
        if tpl is not None and not tpl.still_valid():
            tpl = None
        if tpl is None:
            low = lowering_for(node, self.ir.sample_rate)
            low.name = node.label
            try:
                tpl = BodyRenderer(
                    node, self.layout.nodes[node.id], low, connected, self.inline_math, self.state_in_locals
                ).render()
            except JitError as err:
                if not err.node:
                    err.node = node.label
                raise
            _remember(_TEMPLATES, key, tpl)
        return tpl

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

    # ------------------------------------------------------------------ one node's step
    def node_step(
        self, node: NodeIR, members: set[int], locals_: dict[str, str], heads: list[str]
    ) -> list[str]:
        nl = self.layout.nodes[node.id]
        tpl = self.template(node)
        locals_.update(tpl.locals)
        self.called |= tpl.called
        self.node_templates[node.id] = tpl  # also keeps tpl alive, so id(tpl) stays unique here
        self.variant_functions[id(tpl)] = tpl.functions
        lines = [f"(local.set $nb {_i32(nl.base)})", f"(i32.store {_i32(NODE)} {_i32(node.id)})"]
        self.seg_state.setdefault(node.id, {}).update(tpl.state_used)
        paste = self.paster(node, tpl)
        # 1. ramps of parameters set from outside (of a connected one, its base): a load and a
        # branch while none runs
        for slots in nl.params.values():
            self.called.add("ramp")
            lines.append(
                f"(if (i64.ne (i64.load offset={nl.rel(slots.remaining)} (local.get $nb)) (i64.const 0))"
                f" (then (call $ramp (local.get $nb) {_i32(nl.rel(slots.value))})))"
            )
        # 2. connected inputs, summed left to right; a value input starts from its base (what
        # set_value set), as the interpreter does
        for e in node.endpoints:
            if e.direction != "input" or e.kind == "event":
                continue
            srcs = self.sources(node.id, e.name)
            if not srcs:
                continue
            terms = [self.source_value(s, out, members) for s, out in srcs]
            if e.kind == "value":
                base = f"(f64.load offset={nl.rel(nl.params[e.name].value)} (local.get $nb))"
                terms.insert(0, base)
            expr = terms[0]
            for t in terms[1:]:
                expr = f"(f64.add {expr} {t})"
            locals_[f"$in_{e.name}"] = "f64"
            lines.append(f"(local.set $in_{e.name} {expr})")
        # 3. events due at this sample: external ones first, then each source's in connection order
        for e in node.endpoints:
            if e.direction != "input" or e.kind != "event":
                continue
            handler = paste(tpl.handlers[e.name])
            lines.append(self.dispatch_external(nl.external_queues[e.name], handler))
            for src, port in self.sources(node.id, e.name):
                outbox = self.layout.nodes[src].outboxes[port]
                head = f"$head{len(heads)}"
                heads.append(head)
                lines.append(self.dispatch_outbox(outbox, head, handler))
        # 4. process
        lines.append(paste(tpl.process))
        # 5. outputs that leave the segment
        for e in node.endpoints:
            if e.direction == "output" and e.kind != "event" and (node.id, e.name) in self.buffered:
                lines.append(
                    f"(f64.store offset={nl.buffers[e.name]} (local.get $i8) {self.scalar(node.id, e.name)})"
                )
        return lines

    def scalar(self, nid: int, name: str) -> str:
        """A node's scalar attribute or output: its local when state is kept in locals, else memory."""
        addr, ty = self.layout.nodes[nid].scalars[name]
        wt = {"f64": "f64", "i64": "i64", "bool": "i32"}[ty]
        if self.state_in_locals:
            self.seg_state.setdefault(nid, {})[name] = wt
            return f"(local.get $n{nid}_{name})"
        return f"({wt}.load {_i32(addr)})"

    def paster(self, node: NodeIR, tpl: Template) -> Callable[[str], str]:
        """How the variant's text becomes this node's: its own state locals, and markers where its
        locals are written back to memory around calls of the variant's outlined helpers (which
        work on memory). The markers are filled in by `segment`, once it knows every scalar of the
        node held in a local (outputs read by its neighbours too)."""
        if not self.state_in_locals:
            return lambda text: text
        prefix = f"$n{node.id}_"
        flush, reload = f"__FLUSH_{node.id}__", f"__RELOAD_{node.id}__"
        return lambda text: (
            text.replace("$S_", prefix).replace("__FLUSH__", flush).replace("__RELOAD__", reload)
        )

    def sync(self, nid: int, body: str) -> str:
        """Fill in a node's write-back markers with its locals in this segment."""
        flush_mark, reload_mark = f"__FLUSH_{nid}__", f"__RELOAD_{nid}__"
        if flush_mark not in body:
            return body
        nl = self.layout.nodes[nid]
        state = self.seg_state.get(nid, {})
        flush = " ".join(
            f"({t}.store offset={nl.rel(nl.scalars[name][0])} (local.get $nb) (local.get $n{nid}_{name}))"
            for name, t in state.items()
        )
        reload = " ".join(
            f"(local.set $n{nid}_{name} ({t}.load offset={nl.rel(nl.scalars[name][0])} (local.get $nb)))"
            for name, t in state.items()
        )
        return body.replace(flush_mark, flush).replace(reload_mark, reload)

    def source_value(self, src: int, out: str, members: set[int]) -> str:
        nl = self.layout.nodes[src]
        if src in members:
            # Same loop: the source's output holds this sample's value, or the previous
            # sample's over a back edge into a feedback breaker (the source runs later).
            return self.scalar(src, out)
        return f"(f64.load offset={nl.buffers[out]} (local.get $i8))"

    @staticmethod
    def _frame() -> str:
        return f"(i64.add (i64.load {_i32(FRAME)}) (i64.extend_i32_u (local.get $i)))"

    def dispatch_external(self, q: QueueSlots, handler: str) -> str:
        """Handle the externally queued events due now (the queue is sorted by frame)."""
        return (
            "(block $ev_done (loop $ev_next"
            f" (local.set $ev_head (i32.load {_i32(q.base + 4)}))"
            f" (br_if $ev_done (i32.ge_u (local.get $ev_head) (i32.load {_i32(q.base)})))"
            f" (local.set $ev_at (i32.add {_i32(q.entries)} (i32.mul (local.get $ev_head) {_i32(EVENT_BYTES)})))"
            f" (br_if $ev_done (i64.gt_s (i64.load (local.get $ev_at)) {self._frame()}))"
            f" (i32.store {_i32(q.base + 4)} (i32.add (local.get $ev_head) (i32.const 1)))\n"
            f"{handler}\n"
            " (br $ev_next)))"
        )

    def dispatch_outbox(self, q: QueueSlots, head: str, handler: str) -> str:
        """Handle the events a source node emitted up to now in this block, with this input's own
        read position (a local: outboxes are filled and read within one block)."""
        return (
            "(block $ev_done (loop $ev_next"
            f" (br_if $ev_done (i32.ge_u (local.get {head}) (i32.load {_i32(q.base)})))"
            f" (local.set $ev_at (i32.add {_i32(q.entries)} (i32.mul (local.get {head}) {_i32(EVENT_BYTES)})))"
            f" (br_if $ev_done (i64.gt_s (i64.load (local.get $ev_at)) {self._frame()}))"
            f" (local.set {head} (i32.add (local.get {head}) (i32.const 1)))\n"
            f"{handler}\n"
            " (br $ev_next)))"
        )

    def segment(self, index: int, node_ids: list[int]) -> str:
        members = set(node_ids)
        locals_: dict[str, str] = {
            "$i": "i32",
            "$i8": "i32",
            "$nb": "i32",
            "$ev_at": "i32",
            "$ev_head": "i32",
        }
        heads: list[str] = []
        body: list[str] = []
        for nid in node_ids:
            body.extend(self.node_step(self.ir.node(nid), members, locals_, heads))
        for h in heads:
            locals_[h] = "i32"
        if self.state_in_locals:
            text = "\n".join(body)
            for nid in node_ids:
                text = self.sync(nid, text)
            body = [text]
        prologue, epilogue = [], []
        for nid in node_ids:
            for name, wt in self.seg_state.get(nid, {}).items():
                addr = self.layout.nodes[nid].scalars[name][0]
                locals_[f"$n{nid}_{name}"] = wt
                prologue.append(f"(local.set $n{nid}_{name} ({wt}.load {_i32(addr)}))")
                epilogue.append(f"({wt}.store {_i32(addr)} (local.get $n{nid}_{name}))")
        decls = "".join(f" (local {name} {t})" for name, t in locals_.items())
        return "\n".join(
            [
                f"(func $seg{index} (param $n i32){decls}",
                f"(i32.store {_i32(SEGMENT)} {_i32(index)})",
                *prologue,
                "(local.set $i (i32.const 0))",
                "(block $exit (loop $sample",
                "(br_if $exit (i32.ge_u (local.get $i) (local.get $n)))",
                "(local.set $i8 (i32.shl (local.get $i) (i32.const 3)))",
                *body,
                "(local.set $i (i32.add (local.get $i) (i32.const 1)))",
                "(br $sample)))",
                *epilogue,
                ")",
            ]
        )

    # ------------------------------------------------------------------ the module
    def build(self) -> Program:
        segs = self.segments()
        seg_of = {nid: si for si, seg in enumerate(segs) for nid in seg}
        for c in self.ir.connections:
            if c.kind != "event" and seg_of[c.source] != seg_of[c.target]:
                self.buffered.add((c.source, c.source_endpoint))
        funcs = [self.segment(si, seg) for si, seg in enumerate(segs)]
        reset = []
        compact = []
        for nl in self.layout.nodes.values():
            for q in nl.outboxes.values():
                reset.append(f"(i32.store {_i32(q.base)} (i32.const 0))")
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
        block = "\n".join(
            [
                "(func $block (param $n i32) (local $h i32) (local $c i32)",
                *reset,
                *calls,
                *compact,
                f"(i64.store {_i32(FRAME)} (i64.add (i64.load {_i32(FRAME)}) (i64.extend_i32_u (local.get $n)))))",
            ]
        )
        # `render`: `blocks` blocks of `size` samples in one call, each block's outputs appended
        # to the render area: the same samples as `blocks` calls of `process`, without the trips.
        collect = []
        for k, (nid, name) in enumerate(self.ir.outputs):
            area = self.layout.render_area + 8 * k * self.layout.render_samples
            collect.append(
                f"(memory.copy (i32.add {_i32(area)} (i32.shl (i32.mul (local.get $b) (local.get $size)) (i32.const 3)))"
                f" {_i32(self.layout.nodes[nid].buffers[name])} (i32.shl (local.get $size) (i32.const 3)))"
            )
        main = "\n".join(
            [
                block,
                '(func (export "process") (param $n i32) (call $block (local.get $n)))',
                '(func (export "render") (param $blocks i32) (param $size i32) (local $b i32)',
                "(block $done (loop $next (br_if $done (i32.ge_u (local.get $b) (local.get $blocks)))",
                "(call $block (local.get $size))",
                *collect,
                "(local.set $b (i32.add (local.get $b) (i32.const 1))) (br $next))))",
            ]
        )
        imports = math_imports(self.called)
        wat = "\n".join(
            [
                "(module",
                *imports,
                f'(memory (export "memory") {pages} {pages})',
                f'(global ${wasm_math.ERROR_GLOBAL} (export "math_error") (mut i32) (i32.const 0))',
                wat_of_functions(self.called),
                *(f for fs in self.variant_functions.values() for f in fs),
                *funcs,
                main,
                ")",
            ]
        )
        names = [line.split('"')[3] for line in imports]
        sites = {nid: tpl.sites for nid, tpl in self.node_templates.items()}
        return Program(wat, self.layout, sites, segs, {n.id: n.label for n in self.ir.nodes}, names)
