"""The interpreted graph's rules: routing, summing, outputs, cycles, errors, events, ramps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oscen import (
    CycleError,
    EventInput,
    EventOutput,
    Graph,
    GraphError,
    Node,
    StreamInput,
    StreamOutput,
    ValueInput,
)
from oscen.delay import Delay
from oscen.gain import Add, Constant, Gain
from oscen.oscillators import Oscillator


class Doubler(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = self.input * 2.0


class Counter(Node):
    """Outputs 1, 2, 3, ... (one per sample)."""

    output = StreamOutput()

    def __init__(self) -> None:
        self.n = 0.0

    def process(self, sample_rate: float) -> None:
        self.n = self.n + 1.0
        self.output = self.n


class Split(Node):
    """Two outputs from one input: both must reach their targets."""

    input = StreamInput()
    low = StreamOutput()
    high = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.low = self.input * 0.5
        self.high = self.input * 3.0


class Recorder(Node):
    """Outputs the last event's first field and counts events; emits each one onwards."""

    trigger = EventInput()
    forward = EventOutput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.last = 0.0
        self.count = 0

    def on_trigger(self, value: float) -> None:
        self.last = value
        self.count += 1
        self.forward.emit(value * 10.0)

    def process(self, sample_rate: float) -> None:
        self.output = self.last


class Param(Node):
    level = ValueInput(0.0)
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = self.level


def test_the_doubler_doubles() -> None:
    g = Graph(44100.0)
    c = g.add_node(Counter())
    d = g.add_node(Doubler())
    g.connect(c.output, d.input)
    assert g.process_block(4).tolist() == [2.0, 4.0, 6.0, 8.0]
    assert g.process() == 10.0


def test_several_sources_into_one_input_are_summed() -> None:
    g = Graph()
    a = g.add_node(Constant(1.5))
    b = g.add_node(Constant(0.25))
    c = g.add_node(Counter())
    gain = g.add_node(Gain(1.0))
    for src in (a, b, c):
        g.connect(src.output, gain.input)
    assert g.process_block(3).tolist() == [2.75, 3.75, 4.75]


def test_every_output_reaches_its_targets() -> None:
    g = Graph()
    c = g.add_node(Counter())
    s = g.add_node(Split())
    lo = g.add_node(Gain(1.0))
    hi = g.add_node(Gain(1.0))
    g.connect(c.output, s.input)
    g.connect(s.low, lo.input)
    g.connect(s.high, hi.input)
    g.set_output(lo.output, hi.output)
    out = g.process_block(2)
    assert out.shape == (2, 2)
    assert out.tolist() == [[0.5, 1.0], [3.0, 6.0]]


def test_default_output_is_the_last_node_and_stereo_has_two_rows() -> None:
    g = Graph()
    c = g.add_node(Counter())
    d = g.add_node(Doubler())
    g.connect(c.output, d.input)
    assert g.process_block(1).shape == (1,)
    g.set_output(c.output, d.output)
    assert g.process_block(5).shape == (2, 5)


def test_a_cycle_without_breaker_names_its_nodes_and_changes_nothing() -> None:
    g = Graph()
    a = g.add_node(Gain(0.5), label="first")
    b = g.add_node(Gain(0.5), label="second")
    g.connect(a.output, b.input)
    before = (g.version, g.connections)
    with pytest.raises(CycleError, match="first -> second -> first|second -> first -> second"):
        g.connect(b.output, a.input)
    assert (g.version, g.connections) == before
    g.process_block(4)  # still runs


def test_a_cycle_through_a_delay_is_allowed_and_reads_the_previous_sample() -> None:
    g = Graph()
    src = g.add_node(Constant(1.0))
    mix = g.add_node(Gain(1.0))
    delay = g.add_node(Delay(1.0 / 44100.0, feedback=0.0))
    g.connect(src.output, mix.input)
    g.connect(mix.output, delay.input)
    g.connect(delay.output, mix.input)
    g.set_output(mix.output)
    out = g.process_block(6)
    # the delay's input over the back edge is mix's previous sample, then one sample of delay line
    assert out[0] == 1.0
    assert np.all(np.diff(out) >= 0)  # accumulates: 1 + delayed copies of itself
    assert out[-1] > out[0]


@pytest.mark.parametrize(
    "make_bad",
    [
        lambda g, r, c, other: g.connect(c.output, r.trigger),  # stream into event
        lambda g, r, c, other: g.connect(r.forward, c.output),  # into an output
        lambda g, r, c, other: g.connect(c.output, other.input),  # node of another graph
        lambda g, r, c, other: g.connect("osc.output", r.trigger),  # not an endpoint
        lambda g, r, c, other: g.set_value(c.output, 1.0),  # not a value input
        lambda g, r, c, other: g.queue_event(c.output, 0, 1.0),  # not an event input
        lambda g, r, c, other: g.queue_event(r.trigger, -1, 1.0),  # negative offset
        lambda g, r, c, other: g.queue_event(r.trigger, 0, (1, 2, 3, 4, 5)),  # too many fields
        lambda g, r, c, other: g.set_value(other.gain, math.nan),  # node not in graph and NaN
    ],
)
def test_bad_calls_raise_clear_errors_and_change_nothing(make_bad) -> None:
    g = Graph()
    r = g.add_node(Recorder())
    c = g.add_node(Counter())
    other = Graph().add_node(Gain(1.0))
    before = (g.version, g.connections, list(g.pending_events()))
    with pytest.raises(GraphError) as info:
        make_bad(g, r, c, other)
    assert str(info.value)  # says what and where
    assert (g.version, g.connections, list(g.pending_events())) == before


def test_adding_a_node_twice_or_connecting_twice_is_refused() -> None:
    g = Graph()
    node = Gain(1.0)
    h = g.add_node(node)
    with pytest.raises(GraphError, match="already in this graph"):
        g.add_node(node)
    with pytest.raises(GraphError, match="already in another graph"):
        Graph().add_node(node)
    c = g.add_node(Counter())
    g.connect(c.output, h.input)
    with pytest.raises(GraphError, match="already connected"):
        g.connect(c.output, h.input)


def test_an_event_at_frame_100_acts_at_sample_100() -> None:
    g = Graph()
    r = g.add_node(Recorder())
    g.process_block(7)  # offsets count from the next sample to process
    g.queue_event(r.trigger, 100, 0.75)
    out = g.process_block(200)
    assert out[99] == 0.0 and out[100] == 0.75
    assert r.node.count == 1


def test_emitted_events_reach_targets_at_the_same_sample_in_order() -> None:
    g = Graph()
    first = g.add_node(Recorder())
    second = g.add_node(Recorder())
    g.connect(first.forward, second.trigger)
    g.set_output(second.output)
    g.queue_event(first.trigger, 10, 0.5)
    g.queue_event(first.trigger, 10, 0.25)  # same sample: both handled, in queue order
    out = g.process_block(20)
    assert out[9] == 0.0 and out[10] == 2.5
    assert second.node.count == 2


def test_ramps_are_linear_and_land_exactly() -> None:
    g = Graph(1000.0)
    p = g.add_node(Param())
    g.set_value(p.level, 1.0, ramp=0.004)  # four samples
    out = g.process_block(6)
    assert out.tolist() == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert g.get_value(p.level) == 1.0
    g.set_value(p.level, -2.0)
    assert g.process() == -2.0


def test_remove_node_and_disconnect() -> None:
    g = Graph()
    c = g.add_node(Counter())
    gain = g.add_node(Gain(1.0))
    g.connect(c.output, gain.input)
    g.disconnect(c.output, gain.input)
    with pytest.raises(GraphError, match="not connected"):
        g.disconnect(c.output, gain.input)
    assert g.process_block(2).tolist() == [0.0, 0.0]
    g.connect(c.output, gain.input)
    g.remove_node(c)
    assert g.connections == []
    with pytest.raises(GraphError, match="not in this graph"):
        g.connect(c.output, gain.input)


def test_endpoint_arithmetic_adds_nodes() -> None:
    g = Graph()
    c = g.add_node(Counter())
    g.set_output(c.output * 0.5 + 0.25)
    assert g.process_block(3).tolist() == [0.75, 1.25, 1.75]


def test_event_input_needs_a_handler() -> None:
    from oscen.graph import NodeDefinitionError

    with pytest.raises(NodeDefinitionError, match="on_gate"):

        class NoHandler(Node):
            gate = EventInput()


# ------------------------------------------------------------------ a fault is atomic (issue 9, item 14)
class Bomb(Node):
    """Passes its input through; raises on its ``at``-th sample."""

    input = StreamInput()
    output = StreamOutput()
    gate = EventInput()

    def __init__(self, at: int) -> None:
        self.at = at
        self.n = 0
        self.gates = 0.0

    def on_gate(self, velocity: float) -> None:
        self.gates = self.gates + velocity

    def process(self, sample_rate: float) -> None:
        self.n += 1
        if self.n == self.at:
            raise ZeroDivisionError("boom")
        self.output = self.input + self.gates


def _faulty_graph(at: int) -> tuple[Graph, dict[str, object]]:
    g = Graph(1000.0)
    count = g.add_node(Counter(), "count")
    delay = g.add_node(Delay(0.01, 0.5, max_delay=0.05), "delay")
    mix = g.add_node(Gain(0.5), "mix")
    bomb = g.add_node(Bomb(at), "bomb")
    g.connect(count.output, delay.input)
    g.connect(delay.output, mix.input)
    g.connect(count.output, mix.gain)
    g.connect(mix.output, bomb.input)
    g.set_value(mix.gain, 0.25)  # a base for the connected gain...
    g.set_value(mix.gain, 0.75, ramp=0.08)  # ...ramping over the block
    g.set_value(delay.feedback, 0.1, ramp=0.2)
    g.queue_event(bomb.gate, 5, 1.0)
    g.queue_event(bomb.gate, 80, 2.0)
    g.process_block(20)
    return g, {"count": count, "delay": delay, "mix": mix, "bomb": bomb}


def _everything(g: Graph) -> list[object]:
    state = []
    for h in g.nodes:
        for k, v in sorted(h.node.__dict__.items()):
            if k == "_oscen_graph":
                continue
            state.append((h.label, k, v.copy() if isinstance(v, np.ndarray) else v))
    ramps = sorted((k, r.target, r.step, r.remaining) for k, r in g.ramps().items())
    bases = sorted((k, c[0]) for k, c in getattr(g, "_bases", {}).items())
    return [g.frame, state, ramps, bases, list(g.pending_events())]


def _same(a: list[object], b: list[object]) -> bool:
    def eq(x: object, y: object) -> bool:
        if isinstance(x, np.ndarray):
            return isinstance(y, np.ndarray) and np.array_equal(x, y)
        if isinstance(x, (list, tuple)):
            return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(eq, x, y))
        return x == y

    return eq(a, b)


@pytest.mark.parametrize("call", ["process_block", "process"])
def test_a_fault_leaves_the_graph_as_it_was_before_the_call(call: str) -> None:
    g, n = _faulty_graph(at=20 + 50 if call == "process_block" else 21)
    before = _everything(g)
    with pytest.raises(ZeroDivisionError, match="boom"):
        g.process_block(100) if call == "process_block" else g.process()
    assert _same(_everything(g), before), "the graph moved although the call raised"
    # defused, it plays on exactly as a graph that never faulted
    n["bomb"].node.at = -1
    clean, m = _faulty_graph(at=-1)
    np.testing.assert_array_equal(g.process_block(100), clean.process_block(100))
    assert _same(_everything(g), _everything(clean))


# ------------------------------------------------------------------ modulation: set_value on a connected input
def _offset_graph() -> Graph:
    g = Graph(1000.0)
    src = g.add_node(Constant(0.25), "src")
    zero = g.add_node(Constant(0.0), "zero")
    add = g.add_node(Add(5.0), "add")  # b = 5 until connected: connecting starts its base at 0
    g.connect(zero.output, add.a)
    g.connect(src.output, add.b)
    g.set_output(add.output)
    return g


def test_set_value_on_a_connected_value_input_is_a_base_its_sources_add_to() -> None:
    g = _offset_graph()
    add, src = g.handle(2), g.handle(0)
    np.testing.assert_array_equal(g.process_block(4), 0.25)  # base 0: the sources alone
    g.set_value(add.b, 1.0)
    assert g.get_value(add.b) == 1.0  # get_value gives the base
    np.testing.assert_array_equal(g.process_block(4), 1.25)
    g.set_value(add.b, 2.0, ramp=0.004)  # 4 samples
    np.testing.assert_allclose(g.process_block(5), [1.5, 1.75, 2.0, 2.25, 2.25])
    g.set_value(src.value, -1.0)
    np.testing.assert_array_equal(g.process_block(2), 1.0)
    g.disconnect(src.output, add.b)  # the last source gone: the input is its base
    np.testing.assert_array_equal(g.process_block(2), 2.0)
    assert g.get_value(add.b) == 2.0
    g.connect(src.output, add.b)  # connected again: the base starts at 0 again
    np.testing.assert_array_equal(g.process_block(2), -1.0)


def test_modulation_rule_compiled_equals_interpreted() -> None:
    from jit_support import assert_jit_same, set_value

    def build() -> Graph:
        g = Graph(8000.0)
        lfo = g.add_node(Oscillator.sine(3.0, 40.0), "lfo")
        osc = g.add_node(Oscillator.sine(440.0, 0.5), "osc")
        g.connect(lfo.output, osc.frequency)  # base 0: 0 + lfo (a very low tone)...
        g.connect(lfo.output, osc.amplitude)
        return g

    actions = [
        set_value(0, "osc.frequency", 330.0),  # ...then 330 +- 40 Hz vibrato
        set_value(0, "osc.amplitude", 0.1),
        set_value(700, "osc.frequency", 660.0, ramp=0.05),
        set_value(1300, "osc.amplitude", -0.05, ramp=0.01),
    ]
    ref = assert_jit_same(build, 2400, actions, blocks=[100, 300, 512, 1488])
    # independent check: the vibrato centre is the base (zero crossings of 0.5 s at 660 Hz +- 40)
    crossings = np.count_nonzero(np.diff(np.signbit(ref[1400:2400])))
    assert abs(crossings / 2 / (1000 / 8000) - 660.0) < 45.0


def test_jitgraph_connecting_a_value_input_starts_its_base_at_zero() -> None:
    from oscen.jit import JitGraph

    results = []
    for engine in ("interpreted", "jitgraph"):
        g = Graph(1000.0)
        live = JitGraph(g, background=False) if engine == "jitgraph" else g
        src = live.add_node(Constant(0.25), "src")
        gain = live.add_node(Gain(0.8), "gain")
        one = live.add_node(Constant(1.0), "one")
        live.connect(one.output, gain.input)
        live.set_output(gain.output)
        first = live.process_block(3)  # compiled, gain unconnected: 0.8
        live.connect(src.output, gain.gain)  # connected while that code plays
        second = live.process_block(3)
        live.set_value(gain.gain, 0.5)
        third = live.process_block(3)
        if engine == "jitgraph":
            assert live.mode == "compiled" and live.swap_count == 2
        results.append((first, second, third))
    for got in results:
        np.testing.assert_array_equal(got[0], 0.8)
        np.testing.assert_array_equal(got[1], 0.25)
        np.testing.assert_array_equal(got[2], 0.75)


def test_atomic_can_be_switched_off_and_then_the_fault_shows() -> None:
    """``graph.atomic = False`` skips the per-call snapshot: the nodes before the faulting one ran."""
    g, n = _faulty_graph(at=20 + 50)
    g.atomic = False
    with pytest.raises(ZeroDivisionError):
        g.process_block(100)
    assert n["count"].node.n == 70.0 and g.frame == 69  # part-way through sample 69
