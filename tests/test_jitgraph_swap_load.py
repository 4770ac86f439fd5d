"""What a hot swap puts in the new code's state that it cannot copy from the old one.

JitGraph's compile thread no longer loads every node's values into a new state (that ran under the
edit lock, holding the GIL, while the audio thread waited): the swap copies them from the state
that plays, and only what the copy leaves out comes from the node objects. These tests pin that
down: a node whose array changed length since the playing code was made plays its new array, and
a fresh node plays from its own values.
"""

from __future__ import annotations

import numpy as np

from oscen.gain import Gain
from oscen.graph import Graph, Node, StreamOutput
from oscen.jit import JitGraph

TIMEOUT = 30.0


class Table(Node):
    """Plays its table's first entry, then the second..., cycling."""

    output = StreamOutput()

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.pos = 0

    def process(self, sample_rate: float) -> None:
        self.output = self.table[self.pos % 4]
        self.pos = self.pos + 1


def swap_in(jit: JitGraph) -> None:
    assert jit.wait_compiled(timeout=TIMEOUT), repr(jit.last_error)
    jit.process_block(0)
    assert jit.mode == "compiled" and jit.compiled_version == jit.graph.version


def test_an_array_of_another_length_comes_from_the_node() -> None:
    graph = Graph(44100.0)
    table = graph.add_node(Table(np.zeros(4)))
    gain = graph.add_node(Gain(1.0))
    graph.connect(table.output, gain.input)
    graph.set_output(gain.output)
    with JitGraph(graph) as jit:
        swap_in(jit)
        assert not jit.process_block(8).any()
        table.node.table = np.arange(8, dtype=float)  # another length: a new layout at the next compile
        new = jit.add_node(Gain(2.0))
        jit.connect(gain.output, new.input)
        jit.set_output(new.output)
        swap_in(jit)
        # pos carried over (8), the new table from the node: entries 0..3 cycling, doubled
        np.testing.assert_array_equal(jit.process_block(8), 2.0 * np.array([0, 1, 2, 3, 0, 1, 2, 3]))


def test_fresh_nodes_start_from_their_own_values() -> None:
    graph = Graph(44100.0)
    first = graph.add_node(Table(np.full(4, 0.5)))
    graph.set_output(first.output)
    with JitGraph(graph) as jit:
        swap_in(jit)
        np.testing.assert_array_equal(jit.process_block(4), np.full(4, 0.5))
        second = Table(np.array([1.0, 2.0, 3.0, 4.0]))
        second.pos = 2
        handle = jit.add_node(second)
        jit.set_output(handle.output)
        swap_in(jit)
        np.testing.assert_array_equal(jit.process_block(4), [3.0, 4.0, 1.0, 2.0])
