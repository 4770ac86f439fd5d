"""to_ir asks once per class what every node of the class shares (endpoints, assigned attributes,
constants' names): what it gives per node must not change for that (a node's own handler, its own
constant values, numpy scalars, -0.0)."""

from __future__ import annotations

import numpy as np

from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.graph.endpoints import StreamInput, StreamOutput
from oscen.graph.node import Node
from oscen.oscillators import Oscillator


class Scale(Node):
    """``scale`` is a constant (no method assigns it); ``count`` is state."""

    input = StreamInput()
    output = StreamOutput()

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.count = 0

    def process(self) -> None:
        self.count += 1
        self.output = self.input * self.scale


def test_a_nodes_own_handler_gets_its_own_endpoints_and_its_neighbours_keep_the_class_ones() -> None:
    graph = Graph(8000.0)
    envs = [graph.add_node(AdsrEnvelope(0.01, 0.1, 0.5, 0.2), f"env{k}") for k in range(3)]
    own = envs[1].node

    def on_gate(velocity: float, extra: float) -> None:  # two fields: its arity is 2
        own.level = velocity + extra

    own.on_gate = on_gate
    nodes = {n.label: n for n in graph.to_ir().nodes}
    arity = {label: next(e.arity for e in n.endpoints if e.name == "gate") for label, n in nodes.items()}
    assert arity == {"env0": 1, "env1": 2, "env2": 1}
    assert nodes["env0"].endpoints is nodes["env2"].endpoints  # the class's, shared
    assert nodes["env1"].endpoints is not nodes["env0"].endpoints


def test_constants_are_per_node_values_shared_only_when_equal() -> None:
    graph = Graph(8000.0)
    gains = [graph.add_node(Scale(g), f"g{k}") for k, g in enumerate([0.5, 0.5, -0.0, 0.0, 2.0])]
    for a, b in zip(gains, gains[1:], strict=False):
        graph.connect(a.output, b.input)
    nodes = graph.to_ir().nodes
    consts = [n.constants for n in nodes]
    assert consts[0] is consts[1]  # equal: one object (variants are keyed once)
    assert consts[2] is not consts[3]  # -0.0 and 0.0 are two variants
    assert [list(c) for c in consts] == [["scale"]] * 5  # count is assigned: state, no constant
    assert [np.copysign(1.0, c["scale"]) for c in consts] == [1.0, 1.0, -1.0, 1.0, 1.0]
    assert consts[4] == {"scale": 2.0}
    gains[4].node.scale = np.float64(0.5)  # a numpy scalar: a plain float, equal to g0's
    again = graph.to_ir().nodes
    assert type(again[4].constants["scale"]) is float and again[4].constants == consts[0]


def test_numpy_scalar_constants_become_python_numbers() -> None:
    graph = Graph(8000.0)
    a = graph.add_node(IirLowpass(1000.0, 0.7), "a")
    b = graph.add_node(IirLowpass(1000.0, 0.7), "b")
    graph.connect(a.output, b.input)
    b.node.update_every = np.int64(1)
    got = {n.label: n.constants for n in graph.to_ir().nodes}
    assert type(got["b"]["update_every"]) is int
    assert got["b"]["update_every"] == got["a"]["update_every"] == 1


def test_voices_of_one_class_share_class_path_state_and_endpoints() -> None:
    graph = Graph(8000.0)
    mix = graph.add_node(Gain(1.0), "mix")
    for k in range(4):
        osc = graph.add_node(Oscillator.sine(110.0 * (k + 1), 0.25), f"osc{k}")
        graph.connect(osc.output, mix.input)
    oscs = [n for n in graph.to_ir().nodes if n.label.startswith("osc")]
    assert len({id(n.state) for n in oscs}) == 1
    assert len({id(n.endpoints) for n in oscs}) == 1
    assert {n.cls for n in oscs} == {"oscen.oscillators:Oscillator"}


def test_neighbours_share_constants_only_when_of_one_type_and_bits() -> None:
    """build_ir shares a node's constants with the node before it of the class when they are the
    same (ir._same): 1, 1.0 and True are three; 0.0 and -0.0 two; NaNs by their bits."""
    nan = float("nan")
    other_nan = np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), dtype=np.float64)[0].item()
    values = [1, 1.0, True, True, 0.0, -0.0, -0.0, nan, nan, other_nan, 2.5, 2.5]
    graph = Graph(8000.0)
    nodes = [graph.add_node(Scale(v), f"s{k}") for k, v in enumerate(values)]
    for a, b in zip(nodes, nodes[1:], strict=False):
        graph.connect(a.output, b.input)
    consts = [n.constants for n in graph.to_ir().nodes]
    shared = [consts[k] is consts[k - 1] for k in range(1, len(consts))]
    assert shared == [False, False, True, False, False, True, False, True, False, False, True]
    assert [type(c["scale"]) for c in consts[:4]] == [int, float, bool, bool]


def test_voices_of_several_nodes_of_one_class_share_each_ones_constants() -> None:
    """A voice with three Oscillators (sine, saw, square: other constants each) repeated: each
    waveform's constants are one object for every voice, not one per node (build_ir compares a
    node's with the last few distinct sets of its class, not only the last one's)."""
    from oscen.oscillators import Oscillator

    graph = Graph(8000.0)
    for v in range(6):
        for make in (Oscillator.sine, Oscillator.saw, Oscillator.square):
            graph.add_node(make(100.0 + v, 0.5), f"{make.__name__}{v}")
    ir = graph.to_ir()
    by_waveform: dict[int, set[int]] = {}
    for n in ir.nodes:
        by_waveform.setdefault(n.constants["waveform"], set()).add(id(n.constants))
    assert len(by_waveform) == 3 and all(len(ids) == 1 for ids in by_waveform.values())
