"""The graph's public API for the engines built on it (oscen.jit, export, batch): schedule, outputs,
plans, endpoint checks, and the snapshot / restore of the running state, with its validation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from oscen import EventInput, Graph, GraphError, Node, StreamInput, StreamOutput, ValueInput
from oscen.delay import Delay
from oscen.gain import Add, Gain, Multiply
from oscen.graph.graph import Ramp, Snapshot
from oscen.graph.ir import GraphIR, resolve_node_class
from oscen.graph.validation import MAX_EVENTS_PER_SAMPLE
from oscen.jit import GraphState


class Source(Node):
    level = ValueInput(1.0)
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = self.level


class Sink(Node):
    input = StreamInput()
    amount = ValueInput(0.0)
    gate = EventInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.hits = 0.0

    def on_gate(self, value: float) -> None:
        self.hits += value

    def process(self, sample_rate: float) -> None:
        self.output = self.input + self.amount + self.hits


def patch() -> tuple[Graph, object, object]:
    g = Graph(1000.0)
    a, b = g.add_node(Source(), "a"), g.add_node(Sink(), "b")
    g.connect(a.output, b.input)
    g.connect(a.output, b.amount)
    return g, a, b


def running_state(g: Graph) -> tuple:
    snap = g.snapshot()
    return snap.frame, snap.ramps, snap.bases, snap.events


def test_schedule_and_output_endpoints_do_not_build_the_plan() -> None:
    g, a, b = patch()
    sched = g.schedule()
    assert sched.order == (a.id, b.id) and not sched.back_edges
    assert g.output_endpoints() == (b.output,) == g.output_endpoints(sched)
    assert g._plan is None  # what the compiler reads leaves the interpreter's plan alone
    d = g.add_node(Delay())
    g.connect(b.output, d.input)
    g.connect(d.output, b.input)
    assert g.schedule().back_edges == {(b.id, d.id)}  # into the breaker


def test_a_kept_plan_plays_on_after_an_edit_and_another_graph_s_plan_is_refused() -> None:
    g, a, b = patch()
    plan = g.plan()
    g.remove_node(g.add_node(Gain()))  # an edit: the plan in hand is older than the graph
    assert g.plan() is not plan
    out = g.run_plan(plan, 3)
    np.testing.assert_array_equal(out, [2.0, 2.0, 2.0])
    assert g.frame == 3
    other, _, _ = patch()
    with pytest.raises(GraphError, match="run_plan: this plan was made by another graph"):
        g.run_plan(other.plan(), 1)
    with pytest.raises(GraphError, match="run_plan: plan must be a Plan"):
        g.run_plan("plan", 1)  # type: ignore[arg-type]
    with pytest.raises(GraphError, match="run_plan: n must be an int"):
        g.run_plan(plan, -1)
    assert g.frame == 3


def test_check_endpoint_and_has_node() -> None:
    g, a, b = patch()
    assert g.check_endpoint(b.amount, "set_value") == b.amount
    assert g.has_node(a.id) and not g.has_node(99)
    with pytest.raises(GraphError, match="set_value: endpoint must be an endpoint"):
        g.check_endpoint(1.0, "set_value")
    other, c, _ = patch()
    with pytest.raises(GraphError, match="queue_event: target .* not in this graph"):
        g.check_endpoint(c.output, "queue_event", "target")


def test_snapshot_copies_and_restore_puts_back_the_running_state() -> None:
    g, a, b = patch()
    g.set_value(a.level, 3.0, ramp=0.01)  # 10 samples
    g.set_value(b.amount, 0.5)  # connected: its base
    g.queue_event(b.gate, 5, 1.0)
    g.queue_event(b.gate, 2, 2.0)
    g.process_block(1)
    snap = g.snapshot()
    assert snap.frame == 1 and snap.bases == {(b.id, "amount"): 0.5}
    assert snap.events == {(b.id, "gate"): [(2, (2.0, 0.0, 0.0, 0.0)), (5, (1.0, 0.0, 0.0, 0.0))]}
    assert snap.ramps[(a.id, "level")].remaining == 9
    before = running_state(g)
    snap.ramps[(a.id, "level")].remaining = 1  # a copy: the graph's ramp is not touched
    assert running_state(g) == before
    first = g.process_block(12)
    g.restore(snapshot := g.snapshot())
    g.process_block(0)
    assert running_state(g)[0] == 13 and snapshot.frame == 13
    g.restore(Snapshot(g.uid, 1, *before[1:]))
    a.node.level = 1.0 + 0.2  # the node attributes are not part of a snapshot: put them back too
    b.node.hits = 0.0
    np.testing.assert_allclose(g.process_block(12), first)


def test_restore_skips_what_an_edit_removed_and_empties_queues_it_does_not_name() -> None:
    g, a, b = patch()
    c = g.add_node(Sink(), "c")
    g.queue_event(c.gate, 0, 1.0)
    g.set_value(a.level, 2.0, ramp=0.01)
    snap = g.snapshot()
    g.remove_node(c)
    g.disconnect(a.output, b.amount)  # its base goes with the last connection
    snap.events[(b.id, "gate")] = [(4, (1.0,)), (4, (2.0,))]
    g.restore(snap)
    after = g.snapshot()
    assert after.bases == {} and (a.id, "level") in after.ramps
    assert after.events == {(b.id, "gate"): [(4, (1.0, 0.0, 0.0, 0.0)), (4, (2.0, 0.0, 0.0, 0.0))]}
    g.restore(Snapshot(g.uid, 0, {}, {}, {}))
    assert running_state(g) == (0, {}, {}, {(b.id, "gate"): []})


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s, a, b: setattr(s, "graph_uid", -1), "made by another graph"),
        (lambda s, a, b: setattr(s, "frame", -1), "snapshot.frame must be an int"),
        (lambda s, a, b: setattr(s, "frame", 1.5), "snapshot.frame must be an int"),
        (
            lambda s, a, b: s.ramps.update({(a.id, "output"): Ramp(1.0, 0.1, 3)}),
            "a.output, which is not a value",
        ),
        (lambda s, a, b: s.ramps.update({(a.id, "level"): Ramp(1.0, float("nan"), 3)}), "must be finite"),
        (
            lambda s, a, b: s.ramps.update({(a.id, "level"): Ramp(1.0, 0.1, 0)}),
            "1..MAX_FRAME samples remaining",
        ),
        (lambda s, a, b: s.ramps.update({(a.id, "level"): (1.0, 0.1, 3)}), "must be a Ramp"),
        (lambda s, a, b: s.ramps.update({"level": Ramp(1.0, 0.1, 3)}), "must be \\(node id, input name\\)"),
        (lambda s, a, b: s.bases.update({(b.id, "amount"): float("inf")}), "base of .* must be finite"),
        (lambda s, a, b: s.events.update({(b.id, "amount"): []}), "b.amount, which is not an event"),
        (lambda s, a, b: s.events.update({(b.id, "gate"): [(1, ("x",))]}), "event fields must be numbers"),
        (lambda s, a, b: s.events.update({(b.id, "gate"): [(-1, (1.0,))]}), "an event frame of"),
        (lambda s, a, b: s.events.update({(b.id, "gate"): [5]}), "must be \\(frame, fields\\) pairs"),
        (
            lambda s, a, b: s.events.update({(b.id, "gate"): [(7, (1.0,))] * (MAX_EVENTS_PER_SAMPLE + 1)}),
            "events waiting at frame 7",
        ),
    ],
)
def test_a_bad_snapshot_is_refused_and_changes_nothing(change, message) -> None:
    g, a, b = patch()
    g.set_value(a.level, 2.0, ramp=0.01)
    g.queue_event(b.gate, 3, 1.0)
    g.process_block(2)
    snap = g.snapshot()
    change(snap, a, b)
    before = running_state(g)
    with pytest.raises(GraphError, match=f"restore: .*{message}"):
        g.restore(snap)
    assert running_state(g) == before
    with pytest.raises(GraphError, match="restore: snapshot must be a Snapshot"):
        g.restore(before)  # type: ignore[arg-type]


def test_falling_back_keeps_the_ramps_of_nodes_the_compiled_code_does_not_run() -> None:
    """Compiled state hands back only its own nodes' ramps: a node added since the code was
    compiled (a JitGraph playing live before the new code is swapped in) keeps its ramp when the
    compiled code falls back to the interpreter. The hand-back used to clear every ramp."""
    g, a, b = patch()
    state = GraphState.from_graph(g)
    late = g.add_node(Source(), "late")
    g.set_value(late.level, 0.0, ramp=0.01)
    state.save_to_graph(g)
    assert (late.id, "level") in g.ramps()


def test_add_and_multiply_live_in_the_graph_layer_and_keep_their_old_paths() -> None:
    assert Add.__module__ == Multiply.__module__ == "oscen.graph.arith"
    assert resolve_node_class("oscen.gain:Add") is Add  # an IR saved before the move
    assert resolve_node_class("oscen.graph.arith:Multiply") is Multiply
    g = Graph()
    osc = g.add_node(Source())
    g.set_output(osc.output * 0.5 + 1.0)
    ir = g.to_ir()
    assert GraphIR.from_json(ir.to_json()).key() == ir.key()
    copy = pickle.loads(pickle.dumps(g))
    np.testing.assert_array_equal(copy.process_block(4), g.process_block(4))
