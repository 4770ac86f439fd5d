"""Bad input is refused the same way by every engine (issue 9, item 18).

One table of bad calls, run against the interpreter (``Graph``), compiled state (``GraphState`` with
``CompiledGraph``) and ``JitGraph``: each must raise a ``GraphError`` saying what was wrong and in
which call, and leave the graph exactly as it was (frame, parameters, pending events, nodes,
connections, and the next samples it plays).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from jit_support import make_engine

from oscen.envelopes import AdsrEnvelope
from oscen.gain import Multiply
from oscen.graph import CycleError, Graph, GraphError
from oscen.jit import CraneliftJit, GraphState, JitGraph
from oscen.oscillators import Oscillator

ENGINES = ("interpreted", "state", "jitgraph")


def build() -> Graph:
    """A sine through a VCA driven by an envelope (value params, an event input, a connected value)."""
    g = Graph(44100.0)
    osc = g.add_node(Oscillator.sine(220.0, 0.5), "osc")
    env = g.add_node(AdsrEnvelope(0.001, 0.01, 0.5, 0.01), "env")
    vca = g.add_node(Multiply(), "vca")
    g.connect(osc.output, vca.a)
    g.connect(env.output, vca.b)
    g.set_output(vca.output)
    return g


class Setup:
    """One engine on a fresh ``build()``, already 64 samples in, with a note waiting."""

    def __init__(self, engine_name: str) -> None:
        self.engine = make_engine(engine_name, build(), CraneliftJit())
        self.name = engine_name
        self.g = self.engine.graph
        self.t = self.engine.target()
        self.osc, self.env, self.vca = (self.g.handle(i) for i in range(3))
        self.t.queue_event(self.env.gate, 10, 1.0)
        self.engine.block(64)
        self.t.queue_event(self.env.gate, 100, 0.0)

    def block(self, n: Any) -> np.ndarray:
        return self.engine.block(n)

    def fingerprint(self) -> tuple[Any, ...]:
        """What a refused call must not change (read without changing anything)."""
        if self.name == "state":
            pending = tuple(self.t.pending_events(self.env.id, "gate"))
        elif self.name == "jitgraph":
            pending = tuple(self.t._commands)
        else:
            pending = tuple((f, p) for _, f, p in self.g.pending_events())
        return (
            self.t.frame,
            self.t.get_value(self.osc.frequency),
            self.t.get_value(self.vca.b),
            pending,
            [h.id for h in self.g.nodes],
            self.g.connections,
            self.g.outputs,
        )


def _other_graph_endpoint(s: Setup) -> Any:
    """An endpoint of another graph whose node has the same id as this graph's oscillator."""
    other = Graph(44100.0)
    return other.add_node(Oscillator.sine(1000.0), "impostor").frequency


def _other_graph_event(s: Setup) -> Any:
    other = Graph(44100.0)
    other.add_node(Oscillator.sine(1000.0))
    return other.add_node(AdsrEnvelope()).gate


# (case id, call, what the message must say)
CASES: list[tuple[str, Callable[[Setup], Any], str]] = [
    ("set_value nan", lambda s: s.t.set_value(s.osc.frequency, math.nan), "set_value: value must be finite"),
    ("set_value inf", lambda s: s.t.set_value(s.osc.frequency, math.inf), "set_value: value must be finite"),
    ("set_value True", lambda s: s.t.set_value(s.osc.frequency, True), "set_value: value must be a number"),
    ("set_value '5'", lambda s: s.t.set_value(s.osc.frequency, "5"), "set_value: value must be a number"),
    ("set_value ramp nan", lambda s: s.t.set_value(s.osc.frequency, 5.0, math.nan), "ramp must be finite"),
    ("set_value ramp -1", lambda s: s.t.set_value(s.osc.frequency, 5.0, -1), "ramp must be >= 0"),
    ("set_value ramp 1e300", lambda s: s.t.set_value(s.osc.frequency, 5.0, 1e300), "MAX_FRAME"),
    ("set_value on output", lambda s: s.t.set_value(s.osc.output, 1.0), "is not a value input"),
    ("set_value on event input", lambda s: s.t.set_value(s.env.gate, 1.0), "is not a value input"),
    ("set_value not an endpoint", lambda s: s.t.set_value("osc.frequency", 1.0), "must be an endpoint"),
    ("set_value other graph", lambda s: s.t.set_value(_other_graph_endpoint(s), 5.0), "not in this"),
    ("get_value other graph", lambda s: s.t.get_value(_other_graph_endpoint(s)), "not in this"),
    ("get_value event", lambda s: s.t.get_value(s.env.gate), "event endpoint and has no value"),
    ("queue_event other graph", lambda s: s.t.queue_event(_other_graph_event(s), 0, 1.0), "not in this"),
    ("queue_event nan payload", lambda s: s.t.queue_event(s.env.gate, 0, math.nan), "must be finite"),
    ("queue_event inf field", lambda s: s.t.queue_event(s.env.gate, 0, (1.0, math.inf)), "must be finite"),
    ("queue_event str field", lambda s: s.t.queue_event(s.env.gate, 0, "1"), "must be numbers"),
    ("queue_event 5 fields", lambda s: s.t.queue_event(s.env.gate, 0, (1.0,) * 5), "at most 4"),
    ("queue_event offset 1e30", lambda s: s.t.queue_event(s.env.gate, 10**30, 1.0), "MAX_FRAME"),
    ("queue_event offset -1", lambda s: s.t.queue_event(s.env.gate, -1, 1.0), "frame_offset must be an int"),
    (
        "queue_event offset 1.5",
        lambda s: s.t.queue_event(s.env.gate, 1.5, 1.0),
        "frame_offset must be an int",
    ),
    ("queue_event offset True", lambda s: s.t.queue_event(s.env.gate, True), "frame_offset must be an int"),
    ("queue_event on value", lambda s: s.t.queue_event(s.osc.frequency, 0, 1.0), "is not an event input"),
    ("process_block '8'", lambda s: s.block("8"), "process_block: n must be an int"),
    ("process_block 1.5", lambda s: s.block(1.5), "process_block: n must be an int"),
    ("process_block True", lambda s: s.block(True), "process_block: n must be an int"),
    ("process_block -1", lambda s: s.block(-1), "process_block: n must be an int >= 0"),
    ("process_block 1e9", lambda s: s.block(10**9), "MAX_BLOCK_SAMPLES"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("call", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_call_is_refused_and_changes_nothing(
    engine: str, call: Callable[[Setup], Any], message: str
) -> None:
    s = Setup(engine)
    before = s.fingerprint()
    with pytest.raises(GraphError, match=message.replace("(", r"\(").replace("*", r"\*")):
        call(s)
    assert s.fingerprint() == before
    # ...and the next block plays as if the call had not been made
    reference = Setup(engine)
    np.testing.assert_array_equal(s.block(256), reference.block(256))


def test_compiled_process_block_limit_is_refused_before_allocating() -> None:
    from oscen.graph.validation import MAX_BLOCK_SAMPLES

    s = Setup("state")
    with pytest.raises(GraphError, match=f"CompiledGraph.process_block: n = {MAX_BLOCK_SAMPLES + 1} samples"):
        s.engine.compiled.process_block(s.t, MAX_BLOCK_SAMPLES + 1)
    assert s.engine.compiled.process_block(s.t, 0).shape == (0,)


# ------------------------------------------------------------------ graph-level refusals
def test_sample_rate_rules() -> None:
    for bad in (True, False, "44100", math.nan, math.inf, 0, -1.0, None):
        with pytest.raises(GraphError, match="sample_rate must be a positive number"):
            Graph(bad)
    for good in (np.int64(44100), np.float32(48000.0), 22050, 96000.0):
        assert Graph(good).sample_rate == float(good)
    assert JitGraph(sample_rate=np.int64(48000), background=False).sample_rate == 48000.0
    with pytest.raises(GraphError, match="sample_rate"):
        JitGraph(sample_rate=True, background=False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_block": 3.0}, "max_block must be an int in 1..65536, got 3.0"),
        ({"max_block": 0}, "max_block must be an int in 1..65536"),
        ({"max_block": True}, "max_block must be an int"),
        ({"max_block": 65537}, "max_block must be an int in 1..65536"),
        ({"timeout": -1.0}, "timeout must be > 0 seconds"),
        ({"timeout": 0}, "timeout must be > 0 seconds"),
        ({"timeout": math.nan}, "timeout must be finite"),
        ({"timeout": "2"}, "timeout must be a number"),
        ({"fuse": 0}, "fuse must be an int >= 1"),
        ({"state_in_locals": "yes"}, "state_in_locals must be True, False or None"),
    ],
)
def test_compiler_options_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(GraphError, match=f"CraneliftJit: {message}"):
        CraneliftJit(**kwargs)


def test_cycle_error_is_a_graph_error() -> None:
    from oscen.gain import Gain

    g = Graph()
    a, b = g.add_node(Gain()), g.add_node(Gain())
    g.connect(a.output, b.input)
    with pytest.raises(GraphError) as info:
        g.connect(b.output, a.input)
    assert isinstance(info.value, CycleError)
    assert len(g.connections) == 1


@pytest.mark.parametrize("engine", ["interpreted", "jitgraph"])
def test_failed_arithmetic_leaves_no_node(engine: str) -> None:
    g = Graph()
    target: Any = JitGraph(g, background=False) if engine == "jitgraph" else g
    osc = target.add_node(Oscillator.sine(), "osc")
    env = target.add_node(AdsrEnvelope(), "env")
    version = g.version
    for bad in (lambda: osc.output + env.gate, lambda: osc.output * env.gate, lambda: osc.output + "1"):
        with pytest.raises((GraphError, TypeError)):
            bad()
        assert [h.label for h in g.nodes] == ["osc", "env"]
        assert g.connections == []
    with pytest.raises(GraphError, match="must be finite"):
        osc.output * math.nan
    other = Graph().add_node(Oscillator.sine())
    with pytest.raises(GraphError, match="not in this graph"):
        osc.output + other.output
    assert [h.label for h in g.nodes] == ["osc", "env"]
    assert g.version == version


@pytest.mark.parametrize("engine", ["interpreted", "jitgraph"])
def test_removing_a_node_set_output_listens_to_is_refused(engine: str) -> None:
    g = Graph()
    target: Any = JitGraph(g, background=False) if engine == "jitgraph" else g
    left = target.add_node(Oscillator.sine(220.0), "left")
    right = target.add_node(Oscillator.sine(330.0), "right")
    target.set_output(left.output, right.output)
    stereo = target.process_block(32)
    assert stereo.shape == (2, 32)
    with pytest.raises(GraphError, match=r"remove_node: right feeds the graph's output.*set_output"):
        target.remove_node(right)
    assert g.outputs == (left.output, right.output)
    assert target.process_block(32).shape == (2, 32)
    target.set_output(left.output)
    target.remove_node(right)
    assert target.process_block(32).shape == (32,)


@pytest.mark.parametrize("engine", ["interpreted", "jitgraph"])
def test_removed_node_endpoints_are_refused(engine: str) -> None:
    g = build()
    target: Any = g
    if engine == "jitgraph":
        target = JitGraph(g, background=False)
        assert target.wait_compiled(60.0)
    osc = g.handle(0)
    target.set_value(osc.frequency, 600.0)
    target.process_block(64)
    assert target.get_value(osc.frequency) == 600.0
    target.set_output(g.handle(2).output)
    target.remove_node(osc)
    calls = (lambda: target.get_value(osc.frequency), lambda: target.set_value(osc.frequency, 1.0))
    for _ in range(2):  # at once (JitGraph still runs code with the node), and after a block
        for call in calls:
            with pytest.raises(GraphError, match="not in this graph"):
                call()
        target.process_block(64)


def test_state_of_an_ir_alone_still_checks_node_ids() -> None:
    g = build()
    state = GraphState(g.to_ir(), GraphState.from_graph(g).layout)
    assert state.graph_uid is None
    assert state.get_value(g.handle(0).frequency) == 0.0  # never loaded: zeros
    stray = Graph()
    for _ in range(5):
        stray.add_node(Oscillator.sine())
    with pytest.raises(GraphError, match="not in this state's graph"):
        state.get_value(stray.handle(4).frequency)
