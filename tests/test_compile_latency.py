"""What keeps compiles cheap and background compiles out of the audio thread's way: hot-swap copy
plans made ahead, the thread switch interval while compiling, the compile caches (never stale)."""

from __future__ import annotations

import sys
import threading

import numpy as np

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import EventInput, Graph, Node, StreamOutput
from oscen.graph.ir import GraphIR
from oscen.jit import CraneliftJit, JitGraph
from oscen.jit import jitgraph as jitgraph_module
from oscen.jit.frontend.typing import settled
from oscen.jit.layout import Layout
from oscen.jit.session import variant_key
from oscen.jit.state import GraphState
from oscen.oscillators import Oscillator

BLOCK = 64


def _played_state(graph: Graph, jit: CraneliftJit, blocks: int = 3) -> GraphState:
    ir = settled(graph.to_ir())
    state = GraphState.from_graph(graph, BLOCK, ir)
    compiled = jit.compile(ir)
    for _ in range(blocks):
        compiled.process_block(state, BLOCK)
    return state


def _graph() -> tuple[Graph, object]:
    graph = Graph(44100.0)
    osc = graph.add_node(Oscillator.sine(330.0, 0.5))
    filt = graph.add_node(IirLowpass(900.0, 0.9))
    graph.connect(osc.output, filt.input)
    graph.set_output(filt.output)
    return graph, filt


def test_copy_plan_copies_what_the_field_by_field_copy_did() -> None:
    jit = CraneliftJit(max_block=BLOCK)
    graph, filt = _graph()
    old = _played_state(graph, jit)
    tail = graph.add_node(Gain(0.5))
    graph.connect(filt.output, tail.input)
    graph.set_output(tail.output)
    ir = settled(graph.to_ir())
    planned = GraphState.from_graph(graph, BLOCK, ir)
    plan = planned.copy_plan(old)
    assert plan.fits(old) and plan.fresh == {tail.id}
    planned.copy_nodes_from(old, plan)
    unplanned = GraphState.from_graph(graph, BLOCK, ir)
    unplanned.copy_nodes_from(old)
    assert np.array_equal(planned.bytes, unplanned.bytes)
    # the oscillator's phase and the filter's memory came over, not the values at construction
    osc_id = next(n.id for n in ir.nodes if n.cls.endswith("Oscillator"))
    assert planned.value_of(osc_id, "phase") == old.value_of(osc_id, "phase") != 0.0


def test_a_plan_made_for_another_state_is_not_used() -> None:
    """JitGraph makes the plan for the state playing when the compile ends; if another state plays
    at the swap (another swap came first), the plan does not fit and the swap works it out."""
    jit = CraneliftJit(max_block=BLOCK)
    graph, filt = _graph()
    first = _played_state(graph, jit, blocks=2)
    extra = graph.add_node(Gain(1.0))
    graph.connect(filt.output, extra.input)
    graph.set_output(extra.output)
    second = _played_state(graph, jit, blocks=5)
    stale = GraphState.from_graph(graph, BLOCK).copy_plan(first)
    assert not stale.fits(second)
    target = GraphState.from_graph(graph, BLOCK)
    target.copy_nodes_from(second, stale)
    fresh = GraphState.from_graph(graph, BLOCK)
    fresh.copy_nodes_from(second)
    assert np.array_equal(target.bytes, fresh.bytes)
    assert target.frame == second.frame == 5 * BLOCK


def test_swaps_with_plans_keep_every_nodes_state() -> None:
    """A JitGraph re-patched while it plays sounds as the interpreter does (state carried over)."""
    graph, filt = _graph()
    reference, rfilt = _graph()
    live = JitGraph(graph, background=False, freeze_gc=False)
    try:
        out, ref = [], []
        tail, rtail = filt, rfilt
        for k in range(4):
            out.append(live.process_block(BLOCK))
            ref.append(reference.process_block(BLOCK))
            new, rnew = live.add_node(Gain(0.9 - 0.1 * k)), reference.add_node(Gain(0.9 - 0.1 * k))
            live.connect(tail.output, new.input)
            reference.connect(rtail.output, rnew.input)
            live.set_output(new.output)
            reference.set_output(rnew.output)
            tail, rtail = new, rnew
        out.append(live.process_block(BLOCK))
        ref.append(reference.process_block(BLOCK))
        assert live.mode == "compiled" and live.swap_count >= 4
        assert np.allclose(np.concatenate(out), np.concatenate(ref), rtol=1e-9, atol=1e-12)
    finally:
        live.close()


def test_switch_interval_is_lowered_while_compiling_and_put_back() -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        seen: list[float] = []
        with jitgraph_module._FastSwitching():
            seen.append(sys.getswitchinterval())
            with jitgraph_module._FastSwitching():  # two compiler threads at once
                seen.append(sys.getswitchinterval())
            seen.append(sys.getswitchinterval())
        assert all(s <= jitgraph_module.COMPILE_SWITCH_INTERVAL * 1.01 for s in seen)
        assert sys.getswitchinterval() == 0.005
        # someone else's setting made meanwhile stays
        with jitgraph_module._FastSwitching():
            sys.setswitchinterval(0.002)
        assert sys.getswitchinterval() == 0.002
        # an interval shorter already is left alone
        sys.setswitchinterval(jitgraph_module.COMPILE_SWITCH_INTERVAL / 2)
        short = sys.getswitchinterval()  # microseconds inside: reads back a hair off
        with jitgraph_module._FastSwitching():
            assert sys.getswitchinterval() == short
        assert sys.getswitchinterval() == short
    finally:
        sys.setswitchinterval(before)


def test_background_compile_puts_the_switch_interval_back() -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        graph, _ = _graph()
        with JitGraph(graph, freeze_gc=False) as live:
            assert live.wait_compiled(30.0), live.last_error
            live.add_node(Gain(0.5))
            assert live.wait_compiled(30.0), live.last_error
        deadline = threading.Event()
        for _ in range(200):  # the thread leaves _FastSwitching just after the code is ready
            if sys.getswitchinterval() == 0.005:
                break
            deadline.wait(0.01)
        assert sys.getswitchinterval() == 0.005
    finally:
        sys.setswitchinterval(before)


# ------------------------------------------------------------------ caches are never stale
class _Pulse(Node):
    """A node with an event input: its handler's arity is in the IR."""

    gate = EventInput()
    output = StreamOutput()

    def __init__(self, level: float = 1.0) -> None:
        self.level = level
        self.value = 0.0

    def on_gate(self, x: float) -> None:
        self.value = x * self.level

    def process(self) -> None:
        self.output = self.value


def _ir_of(node: Node):
    graph = Graph(44100.0)
    h = graph.add_node(node)
    graph.set_output(h.output)
    return graph.to_ir()


def test_endpoint_ir_follows_a_replaced_handler() -> None:
    """The endpoints' IR is shared per class, but a handler replaced on the class (or set on one
    node) changes the arity the IR gives."""
    assert _ir_of(_Pulse()).nodes[0].endpoint("gate").arity == 1

    def two(self: _Pulse, x: float, y: float) -> None:
        self.value = x * y

    original = _Pulse.on_gate
    try:
        _Pulse.on_gate = two  # type: ignore[method-assign]
        assert _ir_of(_Pulse()).nodes[0].endpoint("gate").arity == 2
    finally:
        _Pulse.on_gate = original  # type: ignore[method-assign]
    assert _ir_of(_Pulse()).nodes[0].endpoint("gate").arity == 1
    own = _Pulse()
    own.on_gate = lambda a, b, c: None  # type: ignore[method-assign]
    assert _ir_of(own).nodes[0].endpoint("gate").arity == 3
    assert _ir_of(_Pulse()).nodes[0].endpoint("gate").arity == 1


def test_variant_key_and_ir_key_change_with_the_node() -> None:
    """Kept per NodeIR, but every to_ir() makes new NodeIRs: a changed constant, attribute type
    or sample rate gives another variant key and another IR key."""
    base = _ir_of(_Pulse(1.0))
    other_constant = _ir_of(_Pulse(2.0))  # level is never assigned by compiled code: a constant
    assert base.nodes[0].constants == {"level": 1.0}
    assert variant_key(base.nodes[0], 44100.0) != variant_key(other_constant.nodes[0], 44100.0)
    assert base.key() != other_constant.key()
    int_level = _ir_of(_Pulse(1))  # type: ignore[arg-type]
    assert variant_key(int_level.nodes[0], 44100.0) != variant_key(base.nodes[0], 44100.0)
    assert int_level.key() != base.key()
    node = base.nodes[0]
    assert variant_key(node, 44100.0) == variant_key(node, 44100.0)
    assert variant_key(node, 48000.0)[-1] == 48000.0  # asked for another rate: made again
    assert variant_key(_ir_of(_Pulse(1.0)).nodes[0], 44100.0) == variant_key(node, 44100.0)
    assert _ir_of(_Pulse(1.0)).key() == base.key()
    assert GraphIR.from_json(base.to_json()).key() == base.key()


class _Counter(Node):
    """Its count starts as an int and compiled code assigns it a float: settled widens it."""

    output = StreamOutput()

    def __init__(self) -> None:
        self.count = 0

    def process(self, sample_rate: float) -> None:
        self.count = self.count + 0.5
        self.output = self.count


def test_the_settled_key_taken_from_the_raw_one_is_the_key_made_afresh() -> None:
    """settled() gives an IR whose nodes are the raw IR's when no attribute type widens: its key
    is then the raw key with its own head (settled=True), not made again. It must equal the key
    made from scratch, and differ from the raw key; with a widened node it is made afresh."""
    from benchmarks.oscen_engine import voices_graph

    plain = voices_graph(4)
    widening = Graph(44100.0)
    widening.add_node(_Counter())
    for graph, shares in ((plain, True), (widening, False)):
        raw = graph.to_ir()
        raw_key = raw.key()
        done = settled(raw)
        assert (done.nodes == raw.nodes) is shares
        kept = done.key()
        assert kept != raw_key
        assert (kept[2] is raw_key[2]) is shares  # the rows taken over, not made again
        del done.__dict__["_key"]
        assert done.key() == kept
        assert GraphIR.from_json(done.to_json()).key() == kept


def test_shared_scalar_state_is_not_shared_across_types() -> None:
    a = _ir_of(_Pulse(1.0)).nodes[0]
    b = _ir_of(_Pulse(True)).nodes[0]  # type: ignore[arg-type]
    assert [s.type for s in a.state if s.name == "level"] == ["f64"]
    assert [s.type for s in b.state if s.name == "level"] == ["bool"]


def test_layouts_and_settled_types_of_shared_templates_equal_unshared_ones() -> None:
    """to_ir lets nodes of one template share their state lists (and Layout.of and settled work
    per distinct list): the same IR read back from JSON shares nothing, and must come out alike."""
    from benchmarks.oscen_engine import polysynth_graph, voices_graph

    for graph in (voices_graph(8), polysynth_graph(44100.0, 4)):
        ir = graph.to_ir()
        shared = settled(ir)
        alone = settled(GraphIR.from_json(ir.to_json()))
        assert len({id(n.state) for n in shared.nodes}) < len(shared.nodes)
        assert len({id(n.state) for n in alone.nodes}) == len(alone.nodes)
        assert shared.to_json() == alone.to_json() and shared.key() == alone.key()
        assert Layout.of(shared, BLOCK).as_dict() == Layout.of(alone, BLOCK).as_dict()
        assert Layout.of(shared, BLOCK) is Layout.of(shared, BLOCK)  # made once per IR


def test_a_replaced_state_is_freed_by_the_compiler_thread() -> None:
    """A swap hands the replaced code and state to the compiler thread, which lets go of them (their
    wasmtime store is freed there, not on the audio thread): they do not live on."""
    import gc
    import time
    import weakref

    graph, filt = _graph()
    with JitGraph(graph, freeze_gc=False) as live:
        assert live.wait_compiled(30.0), live.last_error
        live.process_block(BLOCK)
        old = weakref.ref(live._current.state)
        tail = live.add_node(Gain(0.5))
        live.connect(filt.output, tail.input)
        live.set_output(tail.output)
        assert live.wait_compiled(30.0), live.last_error
        live.process_block(BLOCK)
        assert live._current.state is not old()
        deadline = time.perf_counter() + 5.0
        while old() is not None and time.perf_counter() < deadline:
            time.sleep(0.02)
        alive = old() is not None
        gc.collect()
    assert not alive, "the replaced state outlived the compiler thread's next round"


def test_node_regions_made_lazily_are_placed_and_disjoint() -> None:
    """Layout.of places one template per distinct node shape and makes each node's fields when
    first read (layout._Shifted): every slot read back is the node's own, inside its region, and
    no two slots of any nodes overlap; a node's layout equals the eager one read back from JSON."""
    from benchmarks.oscen_engine import polysynth_graph, voices_graph
    from oscen.jit.layout import EVENT_BYTES, NodeLayout

    for graph in (voices_graph(8), polysynth_graph(44100.0, 4)):
        layout = Layout.of(settled(graph.to_ir()), BLOCK)
        bases = sorted(nl.base for nl in layout.nodes.values())
        ends = dict(zip(bases, [*bases[1:], layout.render_area], strict=True))
        spans = []
        for nid, nl in layout.nodes.items():
            own = [(a, 8) for a, _ in nl.scalars.values()]
            own += [(a, 8 * max(m, 1)) for a, _, m in nl.arrays.values()]
            own += [
                (getattr(p, f), 8)
                for p in nl.params.values()
                for f in ("value", "target", "step", "remaining")
            ]
            own += [
                (q.base, 8 + q.capacity * EVENT_BYTES)
                for q in (*nl.external_queues.values(), *nl.outboxes.values())
            ]
            own += [(a, 8 * BLOCK) for a in nl.buffers.values()]
            for a, size in own:
                assert nl.base <= a and a + size <= ends[nl.base], (nid, a, size)
            spans += own
        spans.sort()
        for (a, size), (b, _) in zip(spans, spans[1:], strict=False):
            assert a + size <= b, (a, size, b)
        back = Layout.from_json(layout.to_json())
        for nid, nl in layout.nodes.items():
            assert type(back.nodes[nid]) is NodeLayout and back.nodes[nid] == nl and nl == back.nodes[nid]


def test_state_described_per_class_and_types_checks_each_node_s_ints() -> None:
    """to_ir describes a node's attributes once per (class, names, types) (ir._DESCRIBED): an
    int too wide for 64 bits is unsupported in its node only, whichever node came first, and
    another type of an attribute gives its own state."""

    def described(*levels: object) -> list[tuple[list[tuple[str, str]], dict[str, str]]]:
        graph = Graph(44100.0)
        for level in levels:
            h = graph.add_node(_Pulse(level))  # type: ignore[arg-type]
            graph.set_output(h.output)
        return [([(s.name, s.type) for s in n.state], dict(n.unsupported)) for n in graph.to_ir().nodes]

    from oscen.graph import ir as ir_module

    wide, ok = 2**70, 5
    for first, second in ((ok, wide), (wide, ok), (ok, ok)):
        ir_module._DESCRIBED.clear()  # whichever node is described first
        for (state, unsupported), level in zip(described(first, second), (first, second), strict=True):
            if level == wide:
                assert "level" in unsupported and ("level", "i64") not in state
            else:
                assert unsupported == {} and ("level", "i64") in state
    (a, _), (b, _), (c, _) = described(1.5, True, 7)
    assert ("level", "f64") in a and ("level", "bool") in b and ("level", "i64") in c


def test_copy_plans_by_template_equal_field_by_field_plans() -> None:
    """copy_plan works out the runs between two nodes laid out from templates once per pair of
    templates (state._template_runs); states whose layouts were read back from JSON (no templates)
    take the field-by-field path: both plans, and what they copy, must be the same, with a fresh
    node, a value input connected since (its base restarts at 0) and event queues."""
    from benchmarks.oscen_engine import polysynth_graph, voices_graph
    from oscen.jit.state import _template_runs  # noqa: F401 - the path under test exists

    jit = CraneliftJit(max_block=BLOCK)
    for graph in (voices_graph(8), polysynth_graph(44100.0, 4)):
        old = _played_state(graph, jit)
        lfo = graph.add_node(Oscillator.sine(3.0, 5.0))
        target = next(
            (h, name)
            for h in graph.nodes
            for name, spec in type(h.node)._endpoints.items()
            if spec.kind.value == "value" and spec.direction.value == "input" and h.id != lfo.id
        )
        graph.connect(lfo.output, getattr(target[0], target[1]))
        graph.nodes[-2].node.extra = 0.25  # a node of another shape now: its fields move
        ir = settled(graph.to_ir())
        lazy = GraphState.from_graph(graph, BLOCK, ir)
        eager = GraphState(ir, Layout.from_json(lazy.layout.to_json()))
        eager.load_from_graph(graph)
        old_eager = GraphState(old.ir, Layout.from_json(old.layout.to_json()))
        old_eager.bytes[:] = old.bytes
        by_template, by_field = lazy.copy_plan(old), eager.copy_plan(old_eager)
        assert by_template.runs == by_field.runs and by_template.fresh == by_field.fresh == {lfo.id}
        assert list(by_template.zero) == list(by_field.zero) and by_field.zero
        assert list(by_template.queues) == list(by_field.queues)
        assert by_field.queues or graph.nodes[1].label.startswith("osc")  # the polysynth has queues
        lazy.copy_nodes_from(old, by_template)
        eager.copy_nodes_from(old_eager, by_field)
        assert np.array_equal(lazy.bytes, eager.bytes)
