"""What JitGraph's compiler thread does in the playing process, kept small for the audio thread.

- A hot swap's new state: the compiler thread no longer loads every node's values into it (that
  ran under the edit lock, holding the GIL, while the audio thread waited); the swap copies them
  from the state that plays, and only what the copy leaves out comes from the node objects. A node
  whose array changed length since the playing code was made plays its new array, and a fresh node
  plays from its own values.
- ``_Beat``: the compiler thread starts its GIL-holding steps just after a live block ends, never
  waits when nothing plays live, and never waits for long (checked with bounded joins, no timings).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from oscen.gain import Gain
from oscen.graph import Graph, Node, StreamOutput
from oscen.jit import JitGraph, jitgraph

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


def waiter(beat: jitgraph._Beat) -> tuple[threading.Thread, threading.Event]:
    done = threading.Event()

    def run() -> None:
        beat.after_block()
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def test_beat_does_not_wait_when_nothing_plays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jitgraph._Beat, "LIMIT", 60.0)
    thread, done = waiter(jitgraph._Beat())  # no live block ever
    thread.join(timeout=TIMEOUT)
    assert done.is_set()


def test_beat_waits_for_the_next_block_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jitgraph._Beat, "LIMIT", 60.0)
    beat = jitgraph._Beat()
    beat.tick()  # playing live
    thread, done = waiter(beat)
    thread.join(timeout=0.05)
    assert not done.is_set(), "it did not wait for a block to end"
    beat.tick()
    thread.join(timeout=TIMEOUT)
    assert done.is_set()


def test_beat_gives_up_after_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jitgraph._Beat, "LIMIT", 0.05)
    beat = jitgraph._Beat()
    beat.tick()  # then the player stops without another block
    thread, done = waiter(beat)
    thread.join(timeout=TIMEOUT)
    assert done.is_set()


def test_live_blocks_tick_and_offline_blocks_do_not() -> None:
    graph = Graph(44100.0)
    node = graph.add_node(Table(np.full(4, 0.5)))
    graph.set_output(node.output)
    with JitGraph(graph) as jit:
        jit.process_block(16)
        assert jit._beat.last == 0.0
        jit.process_into(np.empty((1, 16)))
        assert jit._beat.last > 0.0
