"""The program skeleton as kernel IR: a whole graph as one :class:`~.kernel.Module`.

Nodes are grouped into *segments* in processing order. A segment is one function with one loop over
the block's samples; inside it, each node's step comes in order: its parameter ramps, its connected
inputs summed into locals ``in_<name>``, its due events dispatched to its handlers, its
``process``, and its outputs copied to buffers for nodes in later segments. Node code enters as a
:class:`~.kernel.Instance` of its variant's :class:`~.kernel.Code` (one Code serves every node of
the variant; with state in locals, the instance renames the variant's ``S_<name>`` locals to the
node's and fills in the state write-back around out-of-line helpers). Cycles through feedback
breakers stay inside one segment, sample by sample. Node state lives in memory, or in locals within
one segment function, so Cranelift's work per node is bounded and compile time grows linearly.

Around the segments: ``block`` (reset the outboxes, run the segments, compact the external queues,
advance the frame), the ``process`` and ``render`` exports, and the memory protocol
(:mod:`.protocol`). The WebAssembly backend prints the module (:mod:`.backends.wasm`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..graph.ir import GraphIR, NodeIR
from . import kernel as k
from . import wasm_math
from .backends import wasm, wasm_binary
from .frontend import deep_recursion, too_deep
from .groups import VoiceGroup, find_groups, unit_order
from .kernel import T, TrapSite
from .layout import EVENT_BYTES, FRAME, LANE, SEGMENT, Layout
from .ops import Op
from .passes import VariantCode as PassesCode
from .passes.fastpath import fast_sample_loop
from .passes.interleave import interleave, loop_size
from .passes.invariants import invariants_in_globals
from .passes.lanes import NotLaneable, lane_name
from .passes.lanes import lanes as lane_body
from .passes.liveness import drop_dead_stores
from .passes.mix import accumulate
from .passes.runtime import trap_function
from .passes.scalarloop import scalar_fast_loop
from .passes.voiceinner import VoiceInner, voice_inner
from .protocol import (
    add_buffers_function,
    copy_words_function,
    i32,
    i64,
    if_,
    invoke,
    load,
    local,
    mix_start_function,
    node_ramps_function,
    prim,
    protocol_functions,
    ramp_function,
    set_local,
    store,
)
from .session import CompileSession

I32, I64, F64, BOOL = T.I32, T.I64, T.F64, T.BOOL
_RUNTIME_NAMES = frozenset({"trap"})
"""Functions node code calls that the module defines (the others are the math library's)."""
SCALAR_TYPES = {"f64": F64, "i64": I64, "bool": BOOL}
"""Kernel type of each layout scalar type."""
WAT_TYPES = {"f64": F64, "i64": I64, "i32": I32}
SUM_CHUNK = 64
"""Terms of an input's sum in one expression (more are added on in the input's local)."""


@dataclass
class Program:
    text: str | None
    """The module's WebAssembly text; None: printed from ``module`` when :attr:`wat` is first
    read (a compile needs only :attr:`binary`)."""
    layout: Layout
    sites: dict[int, list[TrapSite]]  # node id -> its variant's trap sites (ids are per variant)
    segments: list[list[int]]  # node ids per segment
    node_labels: dict[int, str]
    math_imports: list[str]  # math library functions imported, in import order
    module: k.Module | None = field(default=None, repr=False)
    """The program as kernel IR (``wat`` is its printing; None for a program loaded from a
    serialised kernel, see oscen.batch)."""
    voices: dict[int, list[int]] = field(default_factory=dict)
    """Voice groups compiled as one body: a template node (voice 0's) -> that member's node in
    each voice. A trap in such code names the node of the voice in the LANE slot."""
    binary: bytes | None = field(default=None, repr=False)
    """The module in WebAssembly's binary format, printed from ``module`` (what Cranelift is
    given: no text to parse); None where only the text is known."""
    _fault_nodes: dict[int, tuple[int, list[int] | None]] | None = field(
        default=None, repr=False, compare=False
    )
    text_source: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    """Where :attr:`wat` comes from for a program with neither text nor ``module`` (one the
    compile worker made: it sends the binary, and the text is printed here if it is asked for)."""

    @property
    def wat(self) -> str:
        """The module's WebAssembly text (for debugging, error messages, the web export)."""
        if self.text is None:
            if self.module is None and self.text_source is not None:
                self.text, self.text_source = self.text_source(), None
            else:
                with deep_recursion():
                    self.text = wasm.module_text(self.module)  # type: ignore[arg-type]
        return self.text

    def fault_node(self, base: int, lane: int) -> int | None:
        """The node a trap names: the one whose base its trap path stored in the NODE slot (no
        two nodes share a base, see :meth:`.Layout.of`) or, for a voice group's member, that
        member's node in the voice in the LANE slot (the lanes pass stores LANE before anything
        that may trap; a packed math call's note may leave another lane's base). None for a
        NODE slot that names no node (a trap with no site: a bug of ours)."""
        if self._fault_nodes is None:
            members = {m: ms for ms in self.voices.values() for m in ms}
            self._fault_nodes = {nl.base: (nid, members.get(nid)) for nid, nl in self.layout.nodes.items()}
        got = self._fault_nodes.get(base)
        if got is None:
            return None
        node, voices = got
        if voices is not None and 0 <= lane < len(voices):
            node = voices[lane]
        return node

    def trap_site(self, node_id: int, site_id: int) -> TrapSite | None:
        """Where trap ``site_id`` of the node whose code ran (the NODE slot) is in the source.

        Site ids belong to the program (to the node's rendered variant), not to the process: a
        compile running concurrently cannot hand out the same id, and nothing grows forever."""
        sites = self.sites.get(node_id, ())
        return sites[site_id] if 0 < site_id < len(sites) else None


# --------------------------------------------------------------------------- node code (transitional)
INLINE_MATH_NODES = 300
"""Graphs up to this many nodes get math functions expanded in their per-sample code (~5% faster
per node); larger ones call them, keeping compile time within ~0.25 ms per node."""

LANES = 2
"""Voices of a group its lane function runs at once, by default (a pair: one f64x2)."""

WIDE_LOOP_NODES = 320
"""A pair body's fast sample loop of at most this many IR nodes runs two pairs per loop. Measured:
the 64-voice body (199 nodes) 78x -> 85-92x real time; a polysynth voice (568) gains nothing
(its values no longer fit in registers), nor did `lanes=4` before the rare ifs left the loop."""

FUSE_NODES = 4
"""Nodes per segment loop: neighbours in one loop hand values over without a buffer and let the CPU
overlap independent recurrences (two voices' filters)."""


@dataclass
class VariantCode:
    """A node variant's code as the skeleton uses it: ``process`` and one handler per event input
    (handlers read their event's fields at local ``ev_at``), the variant's outlined helpers, the
    locals its code uses, the state scalars it keeps in locals ``S_<name>`` (state in locals), the
    library functions it calls, and its trap sites."""

    process: k.Code
    handlers: dict[str, k.Code]
    functions: list[k.Function]
    state_used: tuple[str, ...]
    called: frozenset[str]
    sites: list[Any]
    params_used: frozenset[str] = frozenset()  # value inputs its code reads as locals ``P_<name>``
    ramps: dict[tuple[frozenset[str], bool], k.Code] = field(
        default_factory=dict
    )  # (held params, one call) -> ramps' step
    syncs: dict[tuple, tuple[k.Code, k.Code]] = field(default_factory=dict)  # state -> flush, reload


def _syncs(code: k.Code) -> bool:
    """Whether ``code`` writes its state locals back to memory anywhere (SyncState marks, which
    may sit deep inside expressions: an outlined helper's value used in an expression). Read off
    the Code's printed text, which the module's printing needs anyway (printed once, cached)."""
    got = code.derived.get("skeleton.syncs")
    if got is None:
        got = code.derived["skeleton.syncs"] = wasm.FLUSH_MARK in wasm.code_text(code)
    return got


def _with_sites(fn: k.Function, sites: list[k.TrapSite]) -> k.Function:
    """An outlined helper of a variant, its body numbering its trap sites in the variant's table
    (a Code carries the table; the module's printing has none of its own)."""
    body = [k.Instance(code=k.Code(fn.body, {}, sites))]
    return k.Function(fn.name, fn.params, fn.results, fn.locals, body, fn.export)


def _skeleton_variant(vc: PassesCode) -> VariantCode:
    """The skeleton's view of a variant's code from the passes, made once and kept on it (the
    session caches the passes' code; this rides along)."""
    got = vc.__dict__.get("_skeleton_variant")
    if got is None:
        got = VariantCode(
            process=vc.process,
            handlers=dict(vc.handlers),
            functions=[_with_sites(f, vc.process.sites) for f in vc.functions],
            state_used=tuple(vc.state_used),
            called=frozenset(vc.math_called | vc.runtime_called),
            sites=vc.sites,
            params_used=vc.params_used,
        )
        vc.__dict__["_skeleton_variant"] = got
    return got


# --------------------------------------------------------------------------- the skeleton
def _entry(base: k.Expr, off: int, head: k.Expr) -> k.Expr:
    """The address of a queue's entry number ``head`` (the queue at ``base + off``)."""
    if isinstance(base, k.Const):
        start: k.Expr = i32(base.value + off + 8)
    else:
        start = prim(Op.I32_ADD, base, i32(off + 8))
    return prim(Op.I32_ADD, start, prim(Op.I32_MUL, head, i32(EVENT_BYTES)))


def _frame_now() -> k.Expr:
    """The absolute frame of the sample being processed."""
    return prim(Op.I64_ADD, load(I64, i32(FRAME)), prim(Op.I64_EXTEND_I32_U, local(I32, "i")))


def render_global(j: int) -> str:
    """The global holding graph output ``j``'s render offset (:meth:`SkeletonBuilder.find_direct`)."""
    return f"render_out{j}"


SEG_COUNTER = "_seg_k"
"""The local a group's segment counts its calls in, where it loops over them (:func:`for_each`)."""


@dataclass
class CallRows:
    """The args of a run of calls, one row of int constants per call, and the step of each arg
    from one row to the next when every arg steps evenly over more than two rows (else None):
    worked out once, however many loops over the calls a segment makes of them."""

    rows: list[list[int]]
    steps: list[int] | None

    @classmethod
    def of(cls, rows: list[list[int]]) -> CallRows:
        steps = None
        if len(rows) > 2:
            starts = rows[0]
            d = [b - a for a, b in zip(starts, rows[1], strict=True)]
            if all(
                a == s + p * dd for p, row in enumerate(rows) for a, s, dd in zip(row, starts, d, strict=True)
            ):
                steps = d
        return cls(rows, steps)


def for_each(rows: CallRows, make: Any) -> list[k.Stmt]:
    """``make(args, p)`` for each row of call args (``p``: the row's index, an expression): one
    WASM loop over ``p`` (in :data:`SEG_COUNTER`) where every arg is a constant ``start + p * step``
    and there are more than two rows, so the segment's code does not grow with the voices; the
    calls one by one otherwise."""
    if rows.steps is not None:
        p = local(I32, SEG_COUNTER)
        args = [
            i32(s) if d == 0 else prim(Op.I32_ADD, i32(s), prim(Op.I32_MUL, p, i32(d)))
            for s, d in zip(rows.rows[0], rows.steps, strict=True)
        ]
        body = [*make(args, p), set_local(SEG_COUNTER, prim(Op.I32_ADD, p, i32(1)))]
        body.append(k.Exit(label="_seg_calls", cond=prim(Op.I32_GE_U, p, i32(len(rows.rows)))))
        return [set_local(SEG_COUNTER, i32(0)), k.Loop(label="_seg_calls", cond=None, body=body)]
    return [s for p, row in enumerate(rows.rows) for s in make([i32(a) for a in row], i32(p))]


class SkeletonBuilder:
    """Builds a GraphIR's module: segments, ``block``, the ``process``/``render`` exports, the
    memory protocol, and the library functions node code calls."""

    fast_loops = True
    """A lanes body's sample loop runs straight while none of its rare ifs (a ramp, a
    resynchronisation, a coefficient update) fires, and leaves for the full body at the first
    that does (:mod:`.passes.fastpath`); False: the ifs stay in the loop."""

    unswitch = False
    """With ``fast_loops``, the exits the fast loop never needs to test inside (conditions the
    loop cannot change, countdowns) are tested once before each run of it instead
    (:mod:`.passes.unswitch`). Off: on the 64-voice body it takes every exit out of the fast
    loop and 17 % of the instructions, yet Cranelift then keeps more of the loop's values on
    the stack and the body ran 5-7 % slower (process time, alternated A/B, Dec 2026)."""

    scalar_fast_loops = True
    """The same for a scalar segment's sample loop (with ``fast_loops``): its nodes' steps are
    opened so that their rare ifs are statements of the loop (:mod:`.passes.scalarloop`)."""

    outline_fast_loops = True
    """A scalar segment's fast loop is a module function of its own, called with the loop's
    locals (:mod:`.passes.scalarloop`): its values stay in registers."""

    reload_invariants = True
    """An outlined scalar fast loop reads the f64 locals it never sets (coefficients, parameters)
    from module globals the segment sets before the call, each just before its first use in
    every sample, instead of holding them in registers across the loop
    (:func:`.passes.scalarloop._reload`): the carried state keeps the registers."""

    interleave = True
    """Where a group's pair body has a small sample loop (at most :data:`WIDE_LOOP_NODES` IR
    nodes), its voices run four per call, two pairs per loop (:mod:`.passes.interleave`); only
    with ``lanes=2``, the default."""

    voice_inner = True
    """With ``fast_loops`` and two lanes, a group of at least two pairs runs its voices as the
    inner loop (:mod:`.passes.voiceinner`: per sample, a loop over the pairs, state in memory)
    for the parts of a block its pairs' unswitched tests allow, and per pair otherwise."""

    invariant_globals = True
    """With ``fast_loops``, a lanes body's fast loop that only reads more vector and f64 locals
    than twice the registers keeps those in module globals (:mod:`.passes.invariants`), so that
    the state it carries is not spilled for them."""

    fuse_mix = True
    """A voice group's mix (see :meth:`find_reductions`) is added up by the voice bodies
    themselves, into one buffer (:mod:`.passes.mix`); False: each voice stores its buffer and
    the segment adds the buffers afterwards (``add_buffers``). Both give the same bits."""

    direct_render = True
    """``render`` has the graph outputs written straight into the render area where it can
    (:meth:`find_direct`): the node's buffer stores, and its readers' loads, go through the
    output's offset global (0 in ``process``), so no ``memory.copy`` of each block is needed
    (~3 % of the seed's render). False: every output is stored in its buffer and copied."""

    def __init__(
        self,
        ir: GraphIR,
        layout: Layout,
        fuse: int = FUSE_NODES,
        state_in_locals: bool = False,
        session: CompileSession | None = None,
        groups: list[VoiceGroup] | None = None,
        inline_math: bool | None = None,
        lanes: int = LANES,
    ) -> None:
        self.ir = ir
        self.session = session if session is not None else CompileSession()
        self.layout = layout
        self.fuse = fuse
        self.state_in_locals = state_in_locals
        self.seg_state: dict[int, dict[str, T]] = {}  # node -> scalars held in locals this segment
        self.buffered: set[tuple[int, str]] = set(ir.outputs)
        self.called: set[str] = set()
        self.functions: dict[str, k.Function] = {}  # the variants' outlined helpers, by name
        self.sites: dict[int, list[Any]] = {}
        self.inline_math = len(ir.nodes) <= INLINE_MATH_NODES if inline_math is None else inline_math
        self.uses_ramp = False
        self.uses_add_buffers = False
        # nodes of the sample loop being built that have ramps: (node, its ramps' step)
        self.ramp_steps: list[tuple[int, k.Instance]] = []
        self.seg_params: dict[int, set[str]] = {}  # node -> value inputs held in locals ``p<id>_<name>``
        # inputs that sum one output of every voice of a group, in voice order: (node, input) ->
        # voice 0's buffer, which the group's segment makes the sum of all (see reductions)
        self.reduced: dict[tuple[int, str], int] = {}
        self.reductions: dict[int, list[tuple[int, list[int]]]] = {}  # group segment -> (dst, srcs)
        # the same mixes as the voices add them into the buffer themselves (``fuse_mix``, see
        # :mod:`.passes.mix`): group segment -> (template node, output) -> the mix's buffer
        self.mixes: dict[int, dict[tuple[int, str], int]] = {}
        self.uses_mix_start = False
        self.fast_globals: list[k.Global] = []  # what outlined scalar fast loops read invariants from
        # graph outputs ``render`` has written straight into its render area (see find_direct):
        # (node, output) -> its index in ir.outputs; and those the segment being built addresses
        self.direct: dict[tuple[int, str], int] = {}
        self.seg_direct: set[int] = set()
        # bytes past the layout (from records_base) the voice-inner runs keep their pairs'
        # records in: the largest group's
        self.vi_scratch = 0
        # while a group's body is built: (template node, output) -> the param naming its mix
        self.mix_params: dict[tuple[int, str], str] = {}
        self.nodes = {n.id: n for n in ir.nodes}
        self._inputs: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for c in ir.connections:
            self._inputs.setdefault((c.target, c.target_endpoint), []).append((c.source, c.source_endpoint))
        self.groups = find_groups(ir) if groups is None else groups
        self.lanes = lanes  # voices per lane function (1: one by one)
        # While a voice group's body is built: template node -> its member index (addressed from
        # param ``b<j>``), and the outside input terms that differ per voice -> param ``x<k>``.
        self.voice_member: dict[int, int] = {}
        self.lane_inputs: dict[tuple[int, str, int], str] = {}
        # While a voice group's body is built: the queues its ``due`` gate covers, in order:
        # ("external", (member, input)), ("lane", lane input param) or ("outbox", address).
        self.due_queues: list[tuple[str, Any]] = []

    def place(self, nid: int, addr: int) -> tuple[k.Expr, int]:
        """Address ``addr`` of node ``nid`` as (base expression, offset): absolute, or relative to
        the voice's member base when ``nid`` is the template node of the group being built."""
        j = self.voice_member.get(nid)
        if j is None:
            return i32(addr), 0
        return local(I32, f"b{j}"), addr - self.layout.nodes[nid].base

    def sources(self, nid: int, name: str) -> list[tuple[int, str]]:
        return self._inputs.get((nid, name), [])

    def variant(self, node: NodeIR) -> VariantCode:
        connected = frozenset(
            e.name
            for e in node.endpoints
            if e.direction == "input" and e.kind != "event" and self.sources(node.id, e.name)
        )
        code = self.session.variant(
            node,
            self.layout.nodes[node.id],
            connected,
            self.inline_math,
            self.state_in_locals,
            self.ir.sample_rate,
            self.layout.max_block,
        )
        return _skeleton_variant(code)

    def segments(self) -> list[list[int] | VoiceGroup]:
        """Node ids per segment in processing order; a voice group is a segment of its own."""
        units = unit_order(self.ir, self.groups) if self.groups else None
        if units is None:
            units = list(self.ir.order)
            self.groups = []
        pos = {u: i for i, u in enumerate(units) if isinstance(u, int)}
        # A cycle's nodes, and everything between them in the order, run in one loop.
        must_join = [False] * len(units)
        for cyc in self.ir.cycles:
            lo, hi = min(pos[n] for n in cyc), max(pos[n] for n in cyc)
            for i in range(lo + 1, hi + 1):
                must_join[i] = True
        segs: list[list[int] | VoiceGroup] = []
        for i, u in enumerate(units):
            if isinstance(u, VoiceGroup):
                segs.append(u)
            elif segs and isinstance(segs[-1], list) and (must_join[i] or len(segs[-1]) < self.fuse):
                segs[-1].append(u)
            else:
                segs.append([u])
        return segs

    # ------------------------------------------------------------------ one node's step
    def node_step(
        self,
        node: NodeIR,
        members: set[int],
        locals_: dict[str, T],
        heads: list[str],
        instances: list[tuple[int, k.Instance, VariantCode]],
    ) -> list[k.Stmt]:
        nl = self.layout.nodes[node.id]
        code = self.variant(node)
        locals_.update(code.process.locals)
        self.called |= code.called
        self.sites[node.id] = code.sites
        for fn in code.functions:
            self.functions.setdefault(fn.name, fn)
        nb = local(I32, "nb")
        # nb: the node's base, what its code addresses everything from and what its traps store
        # in the NODE slot (so that a fault names the node: nothing per sample for it)
        out: list[k.Stmt] = [set_local("nb", self.place(node.id, nl.base)[0])]
        renames: dict[str, str] = {}
        held: set[str] = set()  # value inputs held in locals: read by its code or summed here
        if self.state_in_locals:
            held = {n for n in nl.params if n in code.params_used or self.sources(node.id, n)}
            self.seg_params[node.id] = held
            for name in held:
                renames[f"P_{name}"] = f"p{node.id}_{name}"
            state = self.seg_state.setdefault(node.id, {})
            for name in code.state_used:
                state[name] = SCALAR_TYPES[nl.scalars[name][1]]
                renames[f"S_{name}"] = f"n{node.id}_{name}"

        def instance(c: k.Code) -> k.Instance:
            inst = k.Instance(code=c, renames=renames)
            if renames and _syncs(c):  # its state goes back to memory around outlined helpers
                instances.append((node.id, inst, code))
            return inst

        # 1. ramps of parameters set from outside (of a connected one, its base): stepped at the
        # top of the sample (see sample_loop: nothing else reads a node's parameter slots), each
        # held parameter's local loaded again after its step. Addressed from nb, the same for
        # every node of the variant: one Code, printed once.
        if nl.params:
            self.uses_ramp = True
            # a quick-tier voice body: one call steps the node's ramps (see node_ramps_function);
            # the optimized tier keeps an if per parameter, which its fast loop moves out
            one_call = bool(self.voice_member) and not self.fast_loops
            if one_call:
                values = tuple(nl.rel(slots.value) for slots in nl.params.values())
                fname = "ramps_at_" + "_".join(map(str, values))
                self.functions.setdefault(fname, node_ramps_function(fname, values))
            ramps = code.ramps.get((frozenset(held), one_call))
            if ramps is None:
                steps: list[k.Stmt] = []
                if one_call:
                    steps.append(invoke(fname, nb))
                for name, slots in nl.params.items():
                    reload = set_local(f"P_{name}", load(F64, nb, nl.rel(slots.value)))
                    if one_call:
                        if name in held:  # its value slot is the parameter's value, ramp or not
                            steps.append(reload)
                        continue
                    step: list[k.Stmt] = [invoke("ramp", nb, i32(nl.rel(slots.value)))]
                    if name in held:
                        step.append(reload)
                    steps.append(if_(prim(Op.I64_NE, load(I64, nb, nl.rel(slots.remaining)), i64(0)), step))
                ramps = code.ramps[(frozenset(held), one_call)] = k.Code(steps, {})
            self.ramp_steps.append((node.id, k.Instance(code=ramps, renames=renames)))
        # 2. connected inputs, summed left to right; a value input starts from its base (what
        # set_value set), as the interpreter does
        for e in node.endpoints:
            if e.direction != "input" or e.kind == "event":
                continue
            srcs = self.sources(node.id, e.name)
            if not srcs:
                continue
            if (node.id, e.name) in self.reduced:  # the voices' sum, added up block-wise
                terms = [load(F64, local(I32, "i8"), self.reduced[(node.id, e.name)])]
            else:
                terms = [
                    self.source_value(s, port, members, self.lane_inputs.get((node.id, e.name, t)))
                    for t, (s, port) in enumerate(srcs)
                ]
            if e.kind == "value":  # its base: what set_value set (a local while it is held)
                if e.name in held:
                    terms.insert(0, local(F64, f"p{node.id}_{e.name}"))
                else:
                    terms.insert(0, load(F64, nb, nl.rel(nl.params[e.name].value)))
            locals_[f"in_{e.name}"] = F64
            out.extend(self.sum_into(f"in_{e.name}", terms))
        # 3. events due at this sample: external ones first, then each source's in connection order.
        # In a voice group's body, the queues filled before the group runs (external ones, and
        # the outboxes of sources outside the voice) are read only from the first sample one of
        # them is due at (the param ``due``, see group_segment): one test per sample for all.
        gated: list[k.Stmt] = []

        def dispatch(d: k.Stmt, early: tuple[str, Any] | None) -> None:
            if early is not None and self.voice_member:
                self.due_queues.append(early)
                gated.append(d)
                return
            if gated:
                out.append(self.due_gate(gated[:]))
                gated.clear()
            out.append(d)

        for e in node.endpoints:
            if e.direction != "input" or e.kind != "event":
                continue
            handler = code.handlers[e.name]
            q = nl.external_queues[e.name]
            dispatch(
                self.dispatch_external(self.place(node.id, q.base), instance(handler)),
                ("external", (self.voice_member.get(node.id), e.name)),
            )
            for t, (src, port) in enumerate(self.sources(node.id, e.name)):
                outbox = self.layout.nodes[src].outboxes[port]
                lane_input = self.lane_inputs.get((node.id, e.name, t))
                at = (local(I32, lane_input), 0) if lane_input else self.place(src, outbox.base)
                head = f"head{len(heads)}"
                heads.append(head)
                early = None
                if src not in members:  # filled by an earlier segment, complete for the block
                    early = ("lane", lane_input) if lane_input else ("outbox", outbox.base)
                dispatch(self.dispatch_outbox(at, head, instance(handler)), early)
        if gated:
            out.append(self.due_gate(gated))
        # 4. process
        out.append(instance(code.process))
        # 5. outputs that leave the segment
        for e in node.endpoints:
            if e.direction == "output" and e.kind != "event" and (node.id, e.name) in self.buffered:
                mix = self.mix_params.get((node.id, e.name))
                if mix is not None:  # the voices' mix: made an addition (passes.mix)
                    at = prim(Op.I32_ADD, local(I32, "i8"), local(I32, mix))
                    out.append(store(F64, at, self.scalar(node.id, e.name)))
                    continue
                base, rel = self.place(node.id, nl.buffers[e.name])
                at = local(I32, "i8")
                if node.id not in self.voice_member:
                    rel = nl.buffers[e.name]
                    at = self.sample_at((node.id, e.name))
                else:
                    at = prim(Op.I32_ADD, at, base)
                out.append(store(F64, at, self.scalar(node.id, e.name), rel))
        return out

    def ramps_running(self, remaining: list[tuple[k.Expr, int]]) -> k.Expr:
        """Whether any of these ramps runs (their ``remaining`` slots as (base, offset)): tested
        once per block, as ramps start only between blocks (from the host's set_value)."""
        running: k.Expr | None = None
        for at, off in remaining:
            slot = load(I64, at, off)
            running = slot if running is None else prim(Op.I64_OR, running, slot)
        assert running is not None
        return prim(Op.I64_NE, running, i64(0))

    @staticmethod
    def sum_into(name: str, terms: list[k.Expr]) -> list[k.Stmt]:
        """``name = t0 + t1 + ...``, left to right (the interpreter's order): one expression for a
        few terms, then added on in the local in chunks, so that a mix of hundreds of sources is
        no expression hundreds deep (the printer recurses on expressions)."""
        out: list[k.Stmt] = []
        total = terms[0]
        for j, t in enumerate(terms[1:], 1):
            if j % SUM_CHUNK == 0:
                out.append(set_local(name, total))
                total = local(F64, name)
            total = prim(Op.F64_ADD, total, t)
        out.append(set_local(name, total))
        return out

    def scalar(self, nid: int, name: str) -> k.Expr:
        """A node's scalar attribute or output: its local when state is kept in locals, else memory."""
        addr, ty = self.layout.nodes[nid].scalars[name]
        t = SCALAR_TYPES[ty]
        if self.state_in_locals:
            self.seg_state.setdefault(nid, {})[name] = t
            return local(t, f"n{nid}_{name}")
        return load(t, *self.place(nid, addr))

    def source_value(self, src: int, port: str, members: set[int], lane_input: str | None = None) -> k.Expr:
        if src in members:
            # Same loop: the source's output holds this sample's value, or the previous
            # sample's over a back edge into a feedback breaker (the source runs later).
            return self.scalar(src, port)
        if lane_input is not None:  # a voice's own source outside the group: its buffer's address
            return load(F64, prim(Op.I32_ADD, local(I32, "i8"), local(I32, lane_input)))
        return load(F64, self.sample_at((src, port)), self.layout.nodes[src].buffers[port])

    def sample_at(self, port: tuple[int, str]) -> k.Expr:
        """What a scalar segment adds the buffer address of ``port`` to for this sample's word:
        ``i8``, or for an output ``render`` writes straight into its area (:meth:`find_direct`)
        ``i8 + r<j>``, the local the segment loads output ``j``'s offset global into."""
        i8 = local(I32, "i8")
        j = self.direct.get(port)
        if j is None:
            return i8
        assert not self.voice_member, "find_direct leaves out the ports voice groups read or write"
        self.seg_direct.add(j)
        return prim(Op.I32_ADD, i8, local(I32, f"r{j}"))

    def sync(self, nid: int, inst: k.Instance, variant: VariantCode) -> None:
        """A node's state write-back around its outlined helpers: its locals in this segment
        (known once the whole segment is built: neighbours read its outputs too). Written with the
        variant's names (``S_<name>``, which the instance renames), so nodes of one variant with
        the same locals share one Code for each direction, printed once."""
        state = tuple(self.seg_state.get(nid, {}).items())
        codes = variant.syncs.get(state)
        if codes is None:
            nl = self.layout.nodes[nid]
            nb = local(I32, "nb")
            flush: list[k.Stmt] = []
            reload: list[k.Stmt] = []
            for name, t in state:
                rel = nl.rel(nl.scalars[name][0])
                flush.append(store(t, nb, local(t, f"S_{name}"), rel))
                reload.append(set_local(f"S_{name}", load(t, nb, rel)))
            codes = variant.syncs[state] = (k.Code(flush, {}), k.Code(reload, {}))
        for name, _ in state:
            inst.renames[f"S_{name}"] = f"n{nid}_{name}"
        inst.flush.append(k.Instance(code=codes[0]))
        inst.reload.append(k.Instance(code=codes[1]))

    @staticmethod
    def dispatch_external(q: tuple[k.Expr, int], handler: k.Stmt) -> k.Stmt:
        """Handle the externally queued events due now (the queue is sorted by frame). ``q``: the
        queue's address as (base expression, offset), see :meth:`place`."""
        base, off = q
        head = local(I32, "ev_head")
        at = local(I32, "ev_at")
        return k.Loop(
            label="ev",
            cond=None,
            body=[
                set_local("ev_head", load(I32, base, off + 4)),
                k.Exit(label="ev", cond=prim(Op.I32_GE_U, head, load(I32, base, off))),
                set_local("ev_at", _entry(base, off, head)),
                k.Exit(label="ev", cond=prim(Op.I64_GT_S, load(I64, at), _frame_now())),
                store(I32, base, prim(Op.I32_ADD, head, i32(1)), off + 4),
                handler,
            ],
        )

    @staticmethod
    def due_gate(dispatches: list[k.Stmt]) -> k.Stmt:
        """``dispatches`` (of queues complete when a voice group runs) from the first sample one of
        them is due: before it none of them holds an event due (the caller's ``due``)."""
        return if_(prim(Op.I32_GE_U, local(I32, "i"), local(I32, "due")), dispatches)

    def due_function(self, name: str, kinds: list[str]) -> k.Function:
        """``name(d, q...)``: the first sample of the block at which one of the queues ``q``
        (addresses; ``kinds``: "external" for an external queue, read from its head, else an
        outbox, read from its first entry) holds a due event, if before ``d``; else ``d`` (the
        block's length ``n``, or the bound of the voices before)."""
        d, r, h = local(I32, "d"), local(I64, "r"), local(I32, "h")
        body: list[k.Stmt] = []

        def earliest(entry: k.Expr) -> list[k.Stmt]:
            # the entry's frame relative to the block's first; a late one is due at sample 0
            at = k.Choose(I32, prim(Op.I64_LT_S, r, i64(0)), i32(0), prim(Op.I32_WRAP_I64, r))
            return [
                set_local("r", prim(Op.I64_SUB, load(I64, entry), load(I64, i32(FRAME)))),
                if_(prim(Op.I64_LT_S, r, prim(Op.I64_EXTEND_I32_U, d)), [set_local("d", at)]),
            ]

        for j, kind in enumerate(kinds):
            q = local(I32, f"q{j}")
            if kind == "external":
                body.append(set_local("h", load(I32, q, 4)))
                body.append(if_(prim(Op.I32_LT_U, h, load(I32, q)), earliest(_entry(q, 0, h))))
            else:  # an outbox: each reader starts from its first entry
                body.append(if_(prim(Op.I32_NE, load(I32, q), i32(0)), earliest(_entry(q, 0, i32(0)))))
        body.append(k.ReturnValues(values=[d]))
        params = [("d", I32), *((f"q{j}", I32) for j in range(len(kinds)))]
        return k.Function(name, params, (I32,), {"r": I64, "h": I32}, body)

    @staticmethod
    def dispatch_outbox(q: tuple[k.Expr, int], head_name: str, handler: k.Stmt) -> k.Stmt:
        """Handle the events a source node emitted up to now in this block, with this input's own
        read position (a local: outboxes are filled and read within one block)."""
        base, off = q
        head = local(I32, head_name)
        at = local(I32, "ev_at")
        return k.Loop(
            label="ev",
            cond=None,
            body=[
                k.Exit(label="ev", cond=prim(Op.I32_GE_U, head, load(I32, base, off))),
                set_local("ev_at", _entry(base, off, head)),
                k.Exit(label="ev", cond=prim(Op.I64_GT_S, load(I64, at), _frame_now())),
                set_local(head_name, prim(Op.I32_ADD, head, i32(1))),
                handler,
            ],
        )

    def segment(self, index: int, node_ids: list[int]) -> k.Function:
        self.seg_direct = set()
        locals_, body = self.sample_loop(node_ids)
        # the offsets of the outputs render writes straight into its area, read once per block
        # (a local: an outlined fast loop takes it as a parameter, in a register)
        offsets = [set_local(f"r{j}", k.GetGlobal(I32, render_global(j))) for j in sorted(self.seg_direct)]
        locals_.update({f"r{j}": I32 for j in self.seg_direct})
        fn = k.Function(
            f"seg{index}", [("n", I32)], (), locals_, [store(I32, i32(SEGMENT), i32(index)), *offsets, *body]
        )
        if self.fast_loops and self.scalar_fast_loops:  # the nodes' rare ifs out of the loop
            globals_ = self.fast_globals if self.reload_invariants else None
            fn, *fast = scalar_fast_loop(fn, outline=self.outline_fast_loops, globals_out=globals_)
            for f in fast:  # its fast loop as a function of its own
                self.functions[f.name] = f
        return fn

    def group_segment(self, index: int, group: VoiceGroup) -> list[k.Function]:
        """A voice group's segment: one function for a voice (voice 0's nodes, every address of
        the voice relative to its params ``b<j>``, ``x<k>``), called for each voice in turn with
        that voice's addresses."""
        template = group.template
        self.voice_member = {nid: j for j, nid in enumerate(template)}
        lane_params: list[str] = []
        self.lane_inputs = {}
        for ext in group.externals:
            if not ext.shared:
                name = f"x{len(lane_params)}"
                lane_params.append(name)
                self.lane_inputs[(template[ext.member], ext.endpoint, ext.term)] = name
        mixes = self.mixes.get(index, {})
        self.mix_params = {port: f"o{m}" for m, port in enumerate(mixes)}
        mix_params = list(self.mix_params.values())
        self.due_queues = []
        try:
            locals_, body = self.sample_loop(template)
        finally:
            self.voice_member = {}
            self.mix_params = {}
            lane_inputs, self.lane_inputs = self.lane_inputs, {}
            due_queues, self.due_queues = self.due_queues, []
        inputs = ["v", *(f"b{j}" for j in range(len(template))), *lane_params, *mix_params]
        # whether a ramp of the voices called runs: the caller's test, the same for all lanes;
        # the first sample an event is due at in one of their queues read under the gate
        uniform = [("ramps", BOOL)] if self.ramp_steps else []
        if due_queues:
            uniform.append(("due", I32))

        def voice_function() -> k.Function:
            """The one-voice body, for the voices no lanes body runs (made only if there are
            some: its mix pass was ~0.35 ms of a 64-voice compile that then dropped it)."""
            voice = k.Function(
                f"voice{index}",
                [("n", I32), *uniform, *((name, I32) for name in inputs)],
                (),
                locals_,
                [store(I32, i32(LANE), local(I32, "v")), *body],
            )
            mixed = accumulate(voice, set(mix_params))
            assert mixed is not None, "a voice body built here stores its mix only as passes.mix reads it"
            return mixed

        functions: list[k.Function] = []
        # the lanes bodies, widest first: (function, voices per call)
        bodies: list[tuple[k.Function, int]] = []
        width = self.lanes
        inner: VoiceInner | None = None
        if width > 1 and len(group.voices) >= width:
            got = self.lane_function(f"voices{index}", inputs, locals_, body, uniform, mix_params)
            if got is not None:
                pairs, wide, inner = got
                if wide is not None and len(group.voices) >= 2 * width:
                    bodies.append((wide, 2 * width))
                    if len(group.voices) % (2 * width) >= width:  # a pair left over
                        pairs = k.Function(
                            f"{pairs.name}p", pairs.params, pairs.results, pairs.locals, pairs.body
                        )
                        bodies.append((pairs, width))
                else:
                    bodies.append((pairs, width))
        functions.extend(f for f, _ in bodies)

        nodes_layout = self.layout.nodes
        lane_externals = [
            ext for ext in group.externals if (template[ext.member], ext.endpoint, ext.term) in lane_inputs
        ]
        mix_dsts = list(mixes.values())

        def voice_ints(v: int) -> list[int]:
            """Voice ``v``'s call args (all constants) as ints: the segment's calls are made of
            them, mostly as one loop (:func:`for_each`), so no expression is built per voice."""
            args = [v, *(nodes_layout[nid].base for nid in group.voices[v])]
            for ext in lane_externals:
                src, port = ext.sources[v]
                sl = nodes_layout[src]
                args.append(sl.outboxes[port].base if ext.kind == "event" else sl.buffers[port])
            args += mix_dsts  # every voice adds into the one mix
            return args

        def voice_args(v: int) -> list[k.Expr]:
            return [i32(a) for a in voice_ints(v)]

        # ``ramps<index>(b<j>...)``: the remaining steps of one voice's ramps, OR-ed (members
        # with parameters), from its bases: a few bytes per call where the voices run
        ramped = [j for j, nid in enumerate(template) if self.layout.nodes[nid].params]
        if self.ramp_steps:
            running: k.Expr | None = None
            for j in ramped:
                nl = self.layout.nodes[template[j]]
                for slots in nl.params.values():
                    slot = load(I64, local(I32, f"b{j}"), nl.rel(slots.remaining))
                    running = slot if running is None else prim(Op.I64_OR, running, slot)
            assert running is not None
            params = [(f"b{j}", I32) for j in ramped]
            functions.append(
                k.Function(f"ramps{index}", params, (I64,), {}, [k.ReturnValues(values=[running])])
            )

        if due_queues:
            functions.append(self.due_function(f"due{index}", [kind for kind, _ in due_queues]))

        def queue_ints(v: int) -> list[int]:
            """Voice ``v``'s queues under the gate, in the order of ``due_queues``."""
            args = voice_ints(v)
            out: list[int] = []
            for kind, what in due_queues:
                if kind == "external":
                    j, name = what
                    out.append(self.layout.nodes[group.voices[v][j]].external_queues[name].base)
                elif kind == "lane":
                    out.append(args[inputs.index(what)])
                else:
                    out.append(what)
            return out

        def due_chain(queues: list[k.Expr]) -> list[k.Expr]:
            """The due bound of the voices whose queue addresses are ``queues`` (each voice's in
            turn, ``len(due_queues)`` apiece): each voice's call lowers the bound so far."""
            if not due_queues:
                return []
            first: k.Expr = local(I32, "n")
            per = len(due_queues)
            for at in range(0, len(queues), per):
                first = k.CallFn(I32, f"due{index}", [first, *queues[at : at + per]])
            return [first]

        def due(voices: range) -> list[k.Expr]:
            return due_chain([i32(q) for v in voices for q in queue_ints(v)])

        calls: list[k.Stmt] = [store(I32, i32(SEGMENT), i32(index))]
        for dst in mixes.values():
            self.uses_mix_start = True
            calls.append(invoke("mix_start", local(I32, "n"), i32(dst)))

        def lane_ints(v: int, lanes: int) -> list[int]:
            """Voices ``v...`` as a lane function's params: each lane input for every lane in turn."""
            each = [voice_ints(v + lane) for lane in range(lanes)]
            return [a for per_input in zip(*each, strict=True) for a in per_input]

        def ramps_of(args: list[k.Expr], lanes: int) -> list[k.Expr]:
            """Whether a ramp of the voices whose lane args are ``args`` (constants or expressions)
            runs, from ``ramps<index>`` of each voice's ramped members' bases: none without ramps."""
            if not self.ramp_steps:
                return []
            running: k.Expr | None = None
            for lane in range(lanes):
                bases = [args[inputs.index(f"b{j}") * lanes + lane] for j in ramped]
                one = k.CallFn(I64, f"ramps{index}", bases)
                running = one if running is None else prim(Op.I64_OR, running, one)
            assert running is not None
            return [prim(Op.I64_NE, running, i64(0))]

        per_pair: list[k.Stmt] = []
        first = 0
        for fn, lanes in bodies:
            last = first + (len(group.voices) - first) // lanes * lanes
            if due_queues:
                # each call's due bound, chained over its voices' queues: their addresses are
                # more columns of the call's row, so that the calls are one loop where every
                # column steps evenly (voices laid out alike), not one call per pair
                width_args = len(inputs) * lanes
                rows = CallRows.of(
                    [
                        [*lane_ints(v, lanes), *(q for lane in range(lanes) for q in queue_ints(v + lane))]
                        for v in range(first, last, lanes)
                    ]
                )

                def call(
                    a: list[k.Expr], _: k.Expr, f: str = fn.name, w: int = lanes, cut: int = width_args
                ) -> list[k.Stmt]:
                    args, queues = a[:cut], a[cut:]
                    return [invoke(f, local(I32, "n"), *ramps_of(args, w), *due_chain(queues), *args)]

                per_pair += for_each(rows, call)
            else:
                rows = CallRows.of([lane_ints(v, lanes) for v in range(first, last, lanes)])
                per_pair += for_each(
                    rows, lambda a, _, f=fn.name, w=lanes: [invoke(f, local(I32, "n"), *ramps_of(a, w), *a)]
                )
            first = last
        seg_locals: dict[str, T] = {SEG_COUNTER: I32}
        if inner is not None and not due_queues and first // width >= 2:
            # the voices as the inner loop; per pair (the pair function from sample 0) for a
            # block with a ramp running
            for fn, _ in bodies:
                functions.remove(fn)
            functions.extend([inner.gate, inner.pack, inner.unpack, inner.run, inner.step])
            rows = CallRows.of([lane_ints(v, width) for v in range(0, first, width)])
            step = inner.step.name
            per_pair = for_each(
                rows, lambda a, _: [invoke(step, local(I32, "n"), i32(0), *ramps_of(a, width), *a)]
            )
            any_ramp: list[k.Stmt] = []
            if self.ramp_steps:
                r = local(I32, "_vi_r")  # whether a ramp of any pair runs
                any_ramp = [
                    set_local("_vi_r", i32(0)),
                    *for_each(
                        rows, lambda a, _: [set_local("_vi_r", prim(Op.I32_OR, r, ramps_of(a, width)[0]))]
                    ),
                ]
            calls += any_ramp
            calls.extend(
                self.voice_inner_calls(inner, rows, uniform, list(mixes.values()), per_pair, bool(any_ramp))
            )
            seg_locals.update({"_vi_i": I32, "_vi_stop": I32, "_vi_zero": I32, "_vi_r": I32})
        else:
            calls.extend(per_pair)
        if first < len(group.voices):  # voices no lanes body runs: the one-voice body, first
            voice = voice_function()
            functions.insert(0, voice)
            for v in range(first, len(group.voices)):
                a = voice_args(v)
                calls.append(invoke(voice.name, local(I32, "n"), *ramps_of(a, 1), *due(range(v, v + 1)), *a))
        for dst, srcs in self.reductions.get(index, ()):
            self.uses_add_buffers = True
            calls.extend(invoke("add_buffers", local(I32, "n"), i32(dst), i32(src)) for src in srcs)
        for nodes in group.voices:
            for j, nid in enumerate(nodes):
                self.sites[nid] = self.sites[template[j]]
        return [*functions, k.Function(f"seg{index}", [("n", I32)], (), seg_locals, calls)]

    def voice_inner_calls(
        self,
        inner: VoiceInner,
        pairs: CallRows,
        uniform: list[tuple[str, T]],
        mixes: list[int],
        per_pair: list[k.Stmt],
        ramped: bool,
    ) -> list[k.Stmt]:
        """A group's pairs for one block with the voices as the inner loop (:mod:`.passes.voiceinner`):
        runs while every pair's gate allows, the sample a run stops at per pair (``step``), and
        the block per pair as before (``per_pair``) when a ramp runs, or for the rest of the block
        once runs keep stopping at once (a test that stays true: each sample would pay the
        gates, records and steps)."""
        base = self.records_base()
        self.vi_scratch = max(self.vi_scratch, len(pairs.rows) * inner.stride)
        n, i, stop, zero = (local(I32, x) for x in ("n", "_vi_i", "_vi_stop", "_vi_zero"))
        off = [k.Const(t, False if t is BOOL else 0) for _, t in uniform]  # no ramp runs, no event is due

        def rec(p: k.Expr) -> k.Expr:  # pair p's record
            return prim(Op.I32_ADD, i32(base), prim(Op.I32_MUL, p, i32(inner.stride)))

        run_pairs: list[k.Stmt] = for_each(pairs, lambda a, p: [invoke(inner.pack.name, *off, *a, rec(p))])
        run_pairs.append(
            invoke(inner.run.name, i, stop, i32(base), i32(len(pairs.rows)), *(i32(m) for m in mixes))
        )
        run_pairs += for_each(pairs, lambda a, p: [invoke(inner.unpack.name, *off, *a, rec(p))])
        chunk: list[k.Stmt] = [set_local("_vi_stop", n)]
        chunk += for_each(
            pairs, lambda a, _: [set_local("_vi_stop", k.CallFn(I32, inner.gate.name, [i, stop, *off, *a]))]
        )
        chunk.append(
            if_(
                prim(Op.I32_GT_U, stop, i), run_pairs, [set_local("_vi_zero", prim(Op.I32_ADD, zero, i32(1)))]
            )
        )
        chunk.append(k.Exit(label="_vi_block", cond=prim(Op.I32_GE_U, stop, n)))
        rest = for_each(pairs, lambda a, _: [invoke(inner.step.name, n, stop, *off, *a)])
        chunk.append(if_(prim(Op.I32_GT_U, zero, i32(3)), [*rest, k.Exit(label="_vi_block")]))
        one = prim(Op.I32_ADD, stop, i32(1))
        chunk += for_each(pairs, lambda a, _: [invoke(inner.step.name, one, stop, *off, *a)])
        chunk.append(set_local("_vi_i", one))
        chunk.append(k.Exit(label="_vi_block", cond=prim(Op.I32_GE_U, i, n)))
        vi: list[k.Stmt] = [
            set_local("_vi_i", i32(0)),
            set_local("_vi_zero", i32(0)),
            k.Block(label="_vi_block", body=[k.Loop(label="_vi_chunk", cond=None, body=chunk)]),
        ]
        if ramped:
            return [if_(prim(Op.I32_NE, local(I32, "_vi_r"), i32(0)), per_pair, vi)]
        return vi

    def records_base(self) -> int:
        """Where the voice-inner runs' pair records start: past the layout, 16-byte aligned."""
        return (self.layout.size + 15) // 16 * 16

    def find_reductions(self, segs: list[list[int] | VoiceGroup]) -> None:
        """Stream inputs that add exactly one output of every voice of a group, in voice order
        and nothing else (the mix of a polyphonic patch), where those outputs go nowhere else:
        the group's segment adds the voices' buffers into voice 0's, one voice after the other
        (each sample's sum in the interpreter's order: bit for bit), and the input reads that
        one buffer instead of a sum of loads with one long chain of additions per sample."""
        consumers: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for c in self.ir.connections:
            consumers.setdefault((c.source, c.source_endpoint), []).append((c.target, c.target_endpoint))
        outputs = set(self.ir.outputs)
        for si, seg in enumerate(segs):
            if not isinstance(seg, VoiceGroup):
                continue
            for j, nid in enumerate(seg.template):
                for e in self.nodes[nid].endpoints:
                    if e.direction != "output" or e.kind != "stream":
                        continue
                    ports = [(voice[j], e.name) for voice in seg.voices]
                    if any(p in outputs for p in ports):
                        continue
                    targets = {tuple(consumers.get(p, ())) for p in ports}
                    if len(targets) != 1:
                        continue
                    (target,) = targets
                    if len(target) != 1:
                        continue
                    tid, tname = target[0]
                    kind = next(x.kind for x in self.nodes[tid].endpoints if x.name == tname)
                    if kind != "stream" or tid in seg.members or self.sources(tid, tname) != ports:
                        continue
                    dst = self.layout.nodes[ports[0][0]].buffers[ports[0][1]]
                    self.reduced[(tid, tname)] = dst
                    if self.fuse_mix:
                        self.mixes.setdefault(si, {})[(nid, e.name)] = dst
                    else:
                        srcs = [self.layout.nodes[p[0]].buffers[p[1]] for p in ports[1:]]
                        self.reductions.setdefault(si, []).append((dst, srcs))

    def lane_function(
        self,
        name: str,
        inputs: list[str],
        locals_: dict[str, T],
        body: list[k.Stmt],
        uniform: list[tuple[str, T]] | None = None,
        mixes: list[str] | None = None,
    ) -> tuple[k.Function, k.Function | None, VoiceInner | None] | None:
        """The voice body for ``self.lanes`` voices at once (:mod:`.passes.lanes`), or None
        where the body cannot run as lanes (or store the voices' mixes, the params ``mixes``, as
        :mod:`.passes.mix` reads them): then the voices run one by one. ``uniform``: params the
        same for all lanes (after ``n``). With it, the same body for twice the voices where its
        sample loop is small (:mod:`.passes.interleave`, two pairs per loop), else None; and the
        pair's voice-inner form (:mod:`.passes.voiceinner`) where it has one, else None."""
        width = self.lanes
        uniform = uniform or []
        typed = {**locals_, "n": I32, **dict(uniform), **dict.fromkeys(inputs, I32)}
        head = [("n", I32), *uniform]
        text = wasm.function_text(
            k.Function("voice", [*head, *((p, I32) for p in inputs)], (), locals_, body)
        )
        params = [*head, *((lane_name(p, lane), I32) for p in inputs for lane in range(width))]
        taken = {p for p, _ in params}

        def make() -> tuple[list[k.Function], k.Function, k.Function | None, VoiceInner | None]:
            lb = lane_body(body, typed, width, lane_inputs=inputs, index="v")
            fn = k.Function(name, params, (), {n: t for n, t in lb.locals.items() if n not in taken}, lb.body)
            mixed = accumulate(fn, {lane_name(o, lane) for o in mixes or () for lane in range(width)})
            if mixed is None:  # each lane's mix store is not one passes.mix understands
                raise NotLaneable(f"{name}: the voices' mix")
            fn = mixed
            # the pass's blends of arm-local temporaries nothing reads afterwards: each one
            # would be a value carried around the sample loop (passes.liveness)
            fn = drop_dead_stores(fn)

            lane_globals: list[k.Global] = []

            def finish(f: k.Function) -> k.Function:
                if self.fast_loops:  # the rare ifs out of the sample loop (passes.fastpath)
                    f = drop_dead_stores(fast_sample_loop(f, unswitched=self.unswitch))
                    if self.invariant_globals:  # its read-only values out of the registers
                        f, made = invariants_in_globals(f)
                        lane_globals.extend(made)
                return f

            pairs = finish(fn)
            inner = None
            # not for a group with event queues (a ``due`` param): group_segment runs those per
            # pair, so its four-voice copy (below) stays available to them
            if self.fast_loops and self.voice_inner and width == 2 and "due" not in dict(uniform):
                unswitched = drop_dead_stores(fast_sample_loop(fn, unswitched=True))
                inner = voice_inner(pairs, unswitched, uniform, list(mixes or ()), width, lane_name)
            wide = None  # not wanted with the voice-inner form: group_segment uses it then
            if inner is None and self.interleave and width == 2 and loop_size(pairs) <= WIDE_LOOP_NODES:
                merged = interleave(fn, inputs, width, lane_name)
                wide = None if merged is None else finish(merged)
            return [*lb.functions, *lane_globals], pairs, wide, inner

        try:
            key = (
                text, width, name, self.fast_loops, self.unswitch, self.interleave, self.voice_inner,
                self.invariant_globals,
                tuple(mixes or ()),
            )  # fmt: skip
            helpers, fn, wide, inner = self.session.lane_body(key, make)
        except NotLaneable:
            return None
        for helper in helpers:
            if isinstance(helper, k.Global):  # passes.invariants: a pair body's invariant
                if all(g.name != helper.name for g in self.fast_globals):
                    self.fast_globals.append(helper)
            else:
                self.functions.setdefault(helper.name, helper)
        return fn, wide, inner

    def sample_loop(self, node_ids: list[int]) -> tuple[dict[str, T], list[k.Stmt]]:
        """The locals and statements of one loop over the block's samples running ``node_ids``,
        with their state and held value inputs loaded into locals before it (state stored back
        after). Per sample, the ramps of the loop's nodes cost one test of ``ramps``: a local set
        before the loop, or, in a voice group's body, the parameter its caller computes for the
        voices it runs (uniform: one test for all lanes)."""
        members = set(node_ids)
        locals_: dict[str, T] = {"i": I32, "i8": I32, "nb": I32, "ev_at": I32, "ev_head": I32}
        heads: list[str] = []
        instances: list[tuple[int, k.Instance, VariantCode]] = []
        body: list[k.Stmt] = []
        self.ramp_steps = []
        for nid in node_ids:
            body.extend(self.node_step(self.nodes[nid], members, locals_, heads, instances))
        for h in heads:
            locals_[h] = I32
        prologue: list[k.Stmt] = []
        top: list[k.Stmt] = []  # at the top of each sample
        if self.ramp_steps:
            if not self.voice_member:
                locals_["ramps"] = BOOL
                remaining = [
                    self.place(nid, slots.remaining) for nid, _ in self.ramp_steps
                    for slots in self.layout.nodes[nid].params.values()
                ]  # fmt: skip
                prologue.append(set_local("ramps", self.ramps_running(remaining)))
            steps: list[k.Stmt] = []
            for nid, inst in self.ramp_steps:
                steps += [set_local("nb", self.place(nid, self.layout.nodes[nid].base)[0]), inst]
            top.append(if_(local(BOOL, "ramps"), steps))
        epilogue: list[k.Stmt] = []
        if self.state_in_locals:
            for nid, inst, variant in instances:
                self.sync(nid, inst, variant)
            for nid in node_ids:
                nl = self.layout.nodes[nid]
                for name in sorted(self.seg_params.get(nid, ())):
                    locals_[f"p{nid}_{name}"] = F64
                    prologue.append(
                        set_local(f"p{nid}_{name}", load(F64, *self.place(nid, nl.params[name].value)))
                    )
                for name, t in self.seg_state.get(nid, {}).items():
                    addr = nl.scalars[name][0]
                    locals_[f"n{nid}_{name}"] = t
                    at, off = self.place(nid, addr)
                    prologue.append(set_local(f"n{nid}_{name}", load(t, at, off)))
                    epilogue.append(store(t, at, local(t, f"n{nid}_{name}"), off))
        i = local(I32, "i")
        loop = k.Loop(
            label="sample",
            cond=None,
            body=[
                k.Exit(label="sample", cond=prim(Op.I32_GE_U, i, local(I32, "n"))),
                set_local("i8", prim(Op.I32_SHL, i, i32(3))),
                *top,
                *body,
                set_local("i", prim(Op.I32_ADD, i, i32(1))),
            ],
        )
        return locals_, [*prologue, set_local("i", i32(0)), loop, *epilogue]

    # ------------------------------------------------------------------ the module
    def block_function(self, segments: int) -> k.Function:
        """``block(n)``: one block of ``n`` samples (outboxes reset, segments, queues compacted).

        The queues of a voice group's voices are reset and compacted by one loop per template
        member and queue, over the voices' addresses (where they step evenly: voices laid out
        alike), not by a copy of the code per voice: with gates in every voice (SynthMark's two
        envelopes) the block function was the module's largest, and grew with the voices."""
        n, h, c = local(I32, "n"), local(I32, "h"), local(I32, "c")
        body: list[k.Stmt] = []
        compact: list[k.Stmt] = []
        member_of: dict[int, tuple[int, int, int]] | None = None  # made at the first queue
        # per (group, member, queue): each voice's queue base, by voice
        resets: dict[tuple[int, int, str], dict[int, int]] = {}
        compactions: dict[tuple[int, int, str], dict[int, int]] = {}

        def compaction(q: k.Expr) -> list[k.Stmt]:
            """Drop the events read from the queue at ``q`` (a constant, or the loop's address):
            the unread ones moved to the start of its entries (from ``q + 8``)."""

            def at(offset: int) -> tuple[k.Expr, int]:  # (address, offset) of a slot of the queue
                return (i32(q.value + offset), 0) if isinstance(q, k.Const) else (q, offset)

            def put(offset: int, value: k.Expr) -> k.Store:
                addr, off = at(offset)
                return store(I32, addr, value, off)

            entries = i32(q.value + 8) if isinstance(q, k.Const) else prim(Op.I32_ADD, q, i32(8))
            return [
                set_local("h", load(I32, *at(4))),
                if_(
                    prim(Op.I32_NE, h, i32(0)),
                    [
                        set_local("c", prim(Op.I32_SUB, load(I32, *at(0)), h)),
                        invoke(
                            "copy_words",
                            entries,
                            prim(Op.I32_ADD, entries, prim(Op.I32_MUL, h, i32(EVENT_BYTES))),
                            prim(Op.I32_MUL, c, i32(EVENT_BYTES)),
                        ),
                        put(0, c),
                        put(4, i32(0)),
                    ],
                ),
            ]

        for nid, nl in self.layout.nodes.items():
            if not (nl.outboxes or nl.external_queues):
                continue
            if member_of is None:
                member_of = {
                    member: (gi, v, j)
                    for gi, g in enumerate(self.groups)
                    for v, voice in enumerate(g.voices)
                    for j, member in enumerate(voice)
                }
            where = member_of.get(nid)
            for name, q in nl.outboxes.items():
                if where is None:
                    body.append(store(I32, i32(q.base), i32(0)))
                else:
                    resets.setdefault((where[0], where[2], name), {})[where[1]] = q.base
            for name, q in nl.external_queues.items():
                if where is None:
                    compact.extend(compaction(i32(q.base)))
                else:
                    compactions.setdefault((where[0], where[2], name), {})[where[1]] = q.base
        looped = False
        for runs, out, make in (
            (resets, body, lambda a, _: [store(I32, a[0], i32(0))]),
            (compactions, compact, lambda a, _: compaction(a[0])),
        ):
            for per_voice in runs.values():
                rows = CallRows.of([[per_voice[v]] for v in sorted(per_voice)])
                looped = looped or rows.steps is not None
                out.extend(for_each(rows, make))
        body.extend(invoke(f"seg{si}", n) for si in range(segments))
        body.extend(compact)
        body.append(
            store(I64, i32(FRAME), prim(Op.I64_ADD, load(I64, i32(FRAME)), prim(Op.I64_EXTEND_I32_U, n)))
        )
        locals_ = {"h": I32, "c": I32, **({SEG_COUNTER: I32} if looped else {})}
        return k.Function("block", [("n", I32)], (), locals_, body)

    def render_function(self) -> k.Function:
        """``render(blocks, size)``: ``blocks`` blocks of ``size`` samples in one call, each block's
        outputs appended to the render area: the same samples as ``blocks`` calls of ``process``,
        without the trips. An output of :attr:`direct` is written there by its node (its offset
        global set before each block, see :meth:`find_direct`); the others are copied from their
        buffers after the block. The globals stay set after the call (or a trap in it): the
        ``process`` export sets them to 0 before its block (:meth:`process_function`)."""
        b, size, at = local(I32, "b"), local(I32, "size"), local(I32, "at")
        body: list[k.Stmt] = [set_local("at", prim(Op.I32_SHL, prim(Op.I32_MUL, b, size), i32(3)))]
        copies: list[k.Stmt] = []
        for j, (nid, name) in enumerate(self.ir.outputs):
            area = self.layout.render_area + 8 * j * self.layout.render_samples
            buffer = self.layout.nodes[nid].buffers[name]
            if (nid, name) in self.direct:  # its stores land at area + at (see find_direct)
                offset = prim(Op.I32_ADD, i32(area - buffer), at)
                body.append(k.SetGlobal(name=render_global(j), value=offset))
                continue
            # memory.copy, not the copy_words loop: a word-by-word copy of every output sample
            # cost ~9 % of the seed's render (a loop of 6 instructions a sample)
            copies.append(
                k.MemCopy(
                    dst=prim(Op.I32_ADD, i32(area), at),
                    src=i32(buffer),
                    nbytes=prim(Op.I32_SHL, size, i32(3)),
                )
            )
        body += [invoke("block", size), *copies, set_local("b", prim(Op.I32_ADD, b, i32(1)))]
        return k.Function(
            "render",
            [("blocks", I32), ("size", I32)],
            (),
            {"b": I32, "at": I32},
            [k.Loop(label="next", cond=prim(Op.I32_LT_U, b, local(I32, "blocks")), body=body)],
            export="render",
        )

    def process_function(self) -> k.Function:
        """``process(n)``: one block, its outputs in their buffers: the render offsets set to 0
        first (a ``render`` call leaves them at its last block's, a trap in it anywhere)."""
        zero = [k.SetGlobal(name=render_global(j), value=i32(0)) for j in sorted(self.direct.values())]
        body = [*zero, invoke("block", local(I32, "n"))]
        return k.Function("process", [("n", I32)], (), {}, body, export="process")

    def find_direct(self, segs: list[list[int] | VoiceGroup]) -> None:
        """The graph outputs ``render`` has written straight into its area (:attr:`direct`):
        those of a scalar segment's node that are graph outputs once and that only scalar
        segments read (through :meth:`source_value`).

        Why: copying each block's outputs from their buffers into the render area cost ~3 % of
        the seed's render. The node's buffer stores, and the loads of its readers in later
        segments (same block: no buffer is read in another block), address the buffer through
        ``i8 + r<j>``, where ``r<j>`` holds output ``j``'s offset global: 0 in ``process``, and
        in ``render`` the distance from the buffer to block ``b``'s place in the area. So every
        reader sees the same samples as before, wherever they are stored. Left out (copied as
        before): outputs of voice group members and outputs a voice group reads (a lanes body
        addresses them from its parameters, shared by every voice), and a port listed twice
        among the outputs (one store, two places)."""
        self.direct = {}
        if not self.direct_render:
            return
        scalar = {nid for seg in segs if not isinstance(seg, VoiceGroup) for nid in seg}
        counts = Counter(self.ir.outputs)
        readers: dict[tuple[int, str], list[int]] = {}
        for c in self.ir.connections:
            if c.kind != "event":
                readers.setdefault((c.source, c.source_endpoint), []).append(c.target)
        for j, port in enumerate(self.ir.outputs):
            if counts[port] == 1 and port[0] in scalar and all(t in scalar for t in readers.get(port, ())):
                self.direct[port] = j

    def imports(self) -> list[k.Import]:
        """The math functions node code calls out of line, from the shared library (engine.py)."""
        out = []
        for name in sorted(self.called - _RUNTIME_NAMES):
            fn = wasm_math.resolve(name).function
            out.append(k.Import("math", name, tuple(t for _, t in fn.params), fn.results))
        return out

    def module(self) -> tuple[k.Module, list[list[int]]]:
        segs = self.segments()
        seg_nodes = [seg.members if isinstance(seg, VoiceGroup) else seg for seg in segs]
        seg_of = {nid: si for si, seg in enumerate(seg_nodes) for nid in seg}
        for c in self.ir.connections:
            if c.kind != "event" and seg_of[c.source] != seg_of[c.target]:
                self.buffered.add((c.source, c.source_endpoint))
        # one body for every voice: a member's output is buffered if any voice's is (looked up
        # from the buffered outputs, not from every endpoint of every voice)
        template_of = {
            nid: g.template[j] for g in self.groups for nodes in g.voices[1:] for j, nid in enumerate(nodes)
        }
        if template_of:
            for nid, name in list(self.buffered):
                member = template_of.get(nid)
                if member is not None:
                    self.buffered.add((member, name))
        self.find_reductions(segs)
        self.find_direct(segs)
        seg_functions: list[k.Function] = []
        for si, seg in enumerate(segs):
            if isinstance(seg, VoiceGroup):
                seg_functions.extend(self.group_segment(si, seg))
            else:
                seg_functions.append(self.segment(si, seg))
        library_functions: list[k.Function] = []
        if "trap" in self.called:  # what Trap(via="trap") calls
            library_functions.append(trap_function())
        if self.uses_ramp:
            library_functions.append(ramp_function())
        library_functions.append(copy_words_function())
        if self.uses_add_buffers:
            library_functions.append(add_buffers_function())
        if self.uses_mix_start:
            library_functions.append(mix_start_function())
        functions = [
            *library_functions,
            *protocol_functions(),
            *self.functions.values(),
            *seg_functions,
            self.block_function(len(segs)),
            self.process_function(),
            self.render_function(),
        ]
        module = k.Module(
            functions,
            imports=self.imports(),
            globals=[
                k.Global(wasm_math.ERROR_GLOBAL, I32, 0, mutable=True, export="math_error"),
                *self.fast_globals,
                *(k.Global(render_global(j), I32, 0) for j in sorted(self.direct.values())),
            ],
            memory_pages=(self.records_base() + self.vi_scratch + 65535) // 65536,
        )
        return module, seg_nodes

    def build(self) -> Program:
        with deep_recursion():  # deeply nested node code prints through as deep a recursion
            try:
                module, segs = self.module()
                binary = wasm_binary.module_binary(module)
            except RecursionError:
                raise too_deep(None) from None
        return Program(
            None,
            self.layout,
            self.sites,
            segs,
            {n.id: n.label for n in self.ir.nodes},
            [imp.name for imp in module.imports],
            module,
            {nid: [voice[j] for voice in g.voices] for g in self.groups for j, nid in enumerate(g.template)},
            binary,
        )
