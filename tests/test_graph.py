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
from oscen.gain import Constant, Gain


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
