"""GraphState.load_from_graph by its LoadPlan (every node at once, the first swap's way) against
the node-by-node load it replaced: the same bytes for every kind of slot, ramps, events, queues
and arrays; the fallbacks for a subset of nodes and for a graph that lost a node; JitGraph making
the plan on its compiler thread, not at the swap."""

from __future__ import annotations

import numpy as np
from jit_support import compile_graph

from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass
from oscen.gain import Gain, Mixer
from oscen.graph import EventInput, Graph, Node, StreamOutput, ValueInput
from oscen.jit import CraneliftJit, GraphState, JitGraph
from oscen.oscillators import Oscillator

SR = 8000.0


class Kinds(Node):
    """A node with a slot of every type: f64, i64, bool, 1-D and 2-D arrays, a value input and an
    event input."""

    output = StreamOutput()
    level = ValueInput(0.5)
    hit = EventInput()

    def __init__(self) -> None:
        self.phase = 0.25
        self.count = 3
        self.on = True
        self.table = np.linspace(0.0, 1.0, 5)
        self.grid = np.arange(6, dtype=np.int64).reshape(2, 3)

    def on_hit(self, value: float) -> None:
        self.on = not self.on
        self.count += 1

    def process(self, sample_rate: float) -> None:
        self.phase += self.level * 0.01
        if self.phase > 1.0:
            self.phase -= 1.0
        self.grid[1, self.count % 3] += 1
        self.table[self.count % 5] = self.phase
        self.output = self.phase * self.table[self.count % 5] if self.on else -self.phase


def kinds_graph() -> Graph:
    graph = Graph(SR)
    lfo = graph.add_node(Oscillator.sine(3.0), "lfo")
    a = graph.add_node(Kinds(), "a")
    b = graph.add_node(Kinds(), "b")
    env = graph.add_node(AdsrEnvelope(0.01, 0.02, 0.5, 0.05), "env")
    filt = graph.add_node(IirLowpass(900.0, 0.7), "lowpass")
    mix = graph.add_node(Mixer(3), "mix")
    graph.connect(lfo.output, a.level)  # connected: its slot holds the base
    graph.connect(a.output, mix.input0)
    graph.connect(b.output, filt.input)
    graph.connect(filt.output, mix.input1)
    graph.connect(env.output, mix.input2)
    return graph


def played(graph: Graph) -> Graph:
    """The graph after some interpreted blocks, with ramps running and events pending."""
    graph.process_block(300)
    graph.set_value(graph.handle(2).level, 0.9, ramp=0.1)  # b's ramp runs across the load
    graph.set_value(graph.handle(4).cutoff, 300.0, ramp=0.2)
    graph.queue_event(graph.handle(3).gate, 40, 1.0)
    graph.queue_event(graph.handle(2).hit, 70, 1.0)
    graph.process_block(17)
    return graph


def node_by_node(state: GraphState, graph: Graph) -> None:
    """The load as it was before the plan (kept as the fallback)."""
    state.frame = graph.frame
    snap = graph.snapshot()
    state._load_nodes(graph, snap, None)
    for (nid, name), waiting in snap.events.items():
        q = state.layout.nodes[nid].external_queues[name]
        for frame, fields in waiting:
            state._insert_event(q, frame, fields, (nid, name))


def test_the_planned_load_writes_the_bytes_the_node_by_node_load_writes() -> None:
    graph = played(kinds_graph())
    compiled, state = compile_graph(graph)
    reference = GraphState(state.ir, state.layout)
    node_by_node(reference, graph)
    np.testing.assert_array_equal(state.bytes[: state.layout.size], reference.bytes[: state.layout.size])
    # into a state that already ran (queues holding events, ramps, other values): the same again
    compiled.process_block(state, 123)
    graph.process_block(50)
    state.queue_event(graph.handle(3).gate, 5000, 0.0)  # waiting in the state: the load clears it
    reference = GraphState(state.ir, state.layout)
    reference.bytes[:] = state.bytes  # what the loads leave alone (buffers, counters) alike
    state.load_from_graph(graph)
    node_by_node(reference, graph)
    np.testing.assert_array_equal(state.bytes[: state.layout.size], reference.bytes[: state.layout.size])


def test_a_layout_read_back_from_json_plans_the_same_load() -> None:
    """The load plan works per template (a node's layout made from one: Layout.of) and from a
    node's own fields for a layout with none (read back from JSON): the same plan, the same bytes."""
    from oscen.jit.layout import Layout
    from oscen.jit.state import LoadPlan

    graph = played(kinds_graph())
    _, state = compile_graph(graph)
    plain = GraphState(state.ir, Layout.from_dict(state.layout.as_dict()))
    assert all("_template" not in nl.__dict__ for nl in plain.layout.nodes.values())
    a, b = LoadPlan.of(state), LoadPlan.of(plain)
    for field in ("f64", "i64", "bools", "param_values", "param_remaining", "queues"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.arrays == b.arrays and [n[0] for n in a.nodes] == [n[0] for n in b.nodes]
    plain.load_from_graph(graph)
    np.testing.assert_array_equal(plain.bytes[: state.layout.size], state.bytes[: state.layout.size])


def test_after_the_planned_load_the_compiled_code_continues_the_interpreter() -> None:
    expected = played(kinds_graph())
    reference = expected.process_block(400)
    graph = played(kinds_graph())
    compiled, state = compile_graph(graph)
    np.testing.assert_allclose(compiled.process_block(state, 400), reference, rtol=1e-12, atol=1e-12)


def test_a_load_of_some_nodes_or_of_a_graph_that_lost_one_goes_node_by_node() -> None:
    graph = played(kinds_graph())
    compiled, state = compile_graph(graph)
    before = state.bytes.copy()
    node = graph.handle(1).node
    node.phase, node.count, node.on = 0.75, 9, False
    state.load_from_graph(graph, {1})
    assert state.scalar(1, "phase")[0] == 0.75 and state.scalar(1, "count")[0] == 9
    assert state.scalar(1, "on")[0] == 0
    untouched = state.layout.nodes[2].scalars["count"][0]
    assert state.bytes[untouched : untouched + 8].tobytes() == before[untouched : untouched + 8].tobytes()
    graph.remove_node(graph.handle(2))  # the state still has node 2: the plan does not fit the graph
    node.phase = 0.125
    state.load_from_graph(graph)
    assert state.scalar(1, "phase")[0] == 0.125


def test_a_graph_of_voices_loads_every_voice() -> None:
    graph = Graph(SR)
    mix = graph.add_node(Gain(0.1), "mix")
    for v in range(8):
        osc = graph.add_node(Oscillator.sine(100.0 + 50 * v), f"osc{v}")
        filt = graph.add_node(IirLowpass(500.0 + 100 * v, 0.7), f"lp{v}")
        graph.connect(osc.output, filt.input)
        graph.connect(filt.output, mix.input)
    graph.process_block(100)
    _, state = compile_graph(graph)
    reference = GraphState(state.ir, state.layout)
    node_by_node(reference, graph)
    np.testing.assert_array_equal(state.bytes[: state.layout.size], reference.bytes[: state.layout.size])


def test_jitgraph_makes_the_load_plan_before_the_swap() -> None:
    graph = kinds_graph()
    jg = JitGraph(graph, background=False, jit=CraneliftJit(max_block=64))
    jg.process_block(64)
    cur = jg._current
    assert cur is not None
    assert cur.state._load_plan is not None
