"""Cheaper index and overflow checks, the same answers (inline, bind, runtime).

* A helper's parameter that its body never assigns, passed a constant (the reverb's
  ``self._comb(3, x, ...)``), is that constant in the inlined body: ``self._store[c]`` is an
  element at a fixed address with no index check (Cranelift folds no compare of constants held in
  locals, so each such access cost two compares and two branches per sample).
* A computed index costs one unsigned compare on its usual path (in ``[0, length)``); a negative
  one is wrapped, and checked again, under it: Python's meaning, with IndexError out of range.
* ``i + 1``, ``i - 1`` (a constant step) check for int64 overflow with one compare of ``i``.

Each result is checked against the interpreter, and each fault against Python's exception."""

from __future__ import annotations

import re

import numpy as np
import pytest
from jit_support import assert_jit_same, compile_graph

from oscen.graph import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.jit import CraneliftJit
from oscen.oscillators import Oscillator

LENGTH = 7


class Lines(Node):
    """Helpers indexing arrays with constant arguments, one of them reassigning its parameter."""

    x = StreamInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self._store = np.zeros(LENGTH)
        self._pos = np.zeros(LENGTH, dtype=np.int64)

    def process(self, sample_rate):
        a = self._line(0, self.x)
        b = self._line(3, a * 0.5)
        c = self._line(-1, b + 0.25)  # Python's negative index: element 6
        d = self._shifted(1, c)  # reassigns its parameter: element 2
        self.output = a + b + c + d

    def _line(self, k: int, x: float) -> float:
        old = float(self._store[k])
        self._store[k] = old * 0.75 + x
        self._pos[k] = self._pos[k] + 1
        return old

    def _shifted(self, k: int, x: float) -> float:
        k = k + 1
        old = float(self._store[k])
        self._store[k] = old * 0.5 - x
        return old


def _lines_graph() -> Graph:
    graph = Graph(48000.0)
    saw = graph.add_node(Oscillator.saw(220.0, 0.5))
    node = graph.add_node(Lines())
    graph.connect(saw.output, node.x)
    graph.set_output(node.output)
    return graph


@pytest.mark.parametrize("blocks", [64, [5, 64, 1]])
def test_helpers_with_constant_arguments_equal_the_interpreter(blocks) -> None:
    assert_jit_same(_lines_graph, 300, blocks=blocks, exact=True)


def _checked_indices(wat: str) -> set[str]:
    """The locals whose value is checked against LENGTH (one per array access with an index check)."""
    return set(re.findall(rf"\(i64\.ge_u \(local\.get \$(\w+)\) \(i64\.const {LENGTH}\)\)", wat))


def test_a_constant_argument_indexes_at_a_fixed_address() -> None:
    """Of the node's nine array accesses, only ``_shifted``'s two (its parameter is reassigned, so
    it stays a local) have an index check: the seven made with a constant argument have none."""
    wat = CraneliftJit(max_block=64).compile(_lines_graph().to_ir()).wat
    assert len(_checked_indices(wat)) == 2


class Picker(Node):
    """``self._table[i]`` for a computed ``i`` (a value input): in range, negative, or outside."""

    pick = ValueInput(0.0)
    x = StreamInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self._table = np.arange(LENGTH, dtype=np.float64) * 0.125

    def process(self, sample_rate):
        i = int(self.pick)
        self._table[i] = self._table[i] + self.x * 0.001
        self.output = self._table[i] + self.x


def _picker_graph() -> Graph:
    graph = Graph(48000.0)
    saw = graph.add_node(Oscillator.saw(110.0, 0.5))
    node = graph.add_node(Picker(), "picker")
    graph.connect(saw.output, node.x)
    graph.set_output(node.output)
    return graph


@pytest.mark.parametrize("pick", [0, 3, LENGTH - 1, -1, -LENGTH])
def test_a_computed_index_in_range_or_negative_equals_the_interpreter(pick) -> None:
    def build() -> Graph:
        graph = _picker_graph()
        graph.set_value(graph.nodes[1].pick, float(pick))
        return graph

    assert_jit_same(build, 200, blocks=[64, 3, 133], exact=True)


@pytest.mark.parametrize("pick", [LENGTH, LENGTH + 5, -LENGTH - 1, -(1 << 40)])
def test_a_computed_index_out_of_range_raises_index_error_as_python_does(pick) -> None:
    graph = _picker_graph()
    graph.set_value(graph.nodes[1].pick, float(pick))
    with pytest.raises(IndexError):
        graph.process_block(1)
    graph = _picker_graph()
    compiled, state = compile_graph(graph)
    compiled.process_block(state, 10)
    state.set_value(graph.nodes[1].pick, float(pick))
    with pytest.raises(IndexError, match="_table"):
        compiled.process_block(state, 4)
    assert state.frame == 10


def test_the_usual_index_path_is_one_unsigned_compare() -> None:
    """The negative index's wrap (and the second check) sits under the unsigned test: each
    checked index's first appearance after it is set is that test."""
    wat = CraneliftJit(max_block=64).compile(_picker_graph().to_ir()).wat
    names = _checked_indices(wat)
    assert len(names) == 3  # the load, the store and the load again
    for name in names:
        lines = [ln.strip() for ln in wat.splitlines() if f"${name}" in ln and "(func " not in ln]
        assert lines[0].startswith(f"(local.set ${name} "), lines
        assert lines[1].startswith(f"(if (i64.ge_u (local.get ${name}) (i64.const {LENGTH}))"), lines
        assert lines[2].startswith(f"(if (i64.lt_s (local.get ${name}) (i64.const 0))"), lines


class Up(Node):
    """An int counter stepped by a constant each sample, from ``start``: int64 overflow is a fault
    of compiled code (Python's ints grow), exactly when the counter passes the int64 range."""

    x = StreamInput()
    output = StreamOutput()

    def __init__(self, start: int) -> None:
        self._n = start

    def process(self, sample_rate):
        self._n = self._n + 5
        self.output = float(self._n % 1000) + self.x


class Down(Up):
    def process(self, sample_rate):
        self._n = self._n - 5
        self.output = float(self._n % 1000) + self.x


@pytest.mark.parametrize(
    ("cls", "start", "safe"),
    [
        (Up, (1 << 63) - 1 - 5 * 9, 9),
        (Up, (1 << 63) - 1 - 5 * 9 - 4, 9),
        (Down, -(1 << 63) + 5 * 9, 9),
        (Down, -(1 << 63) + 5 * 9 + 4, 9),
    ],
)
def test_a_constant_step_overflows_exactly_where_int64_ends(cls, start, safe) -> None:
    graph = Graph(1000.0)
    graph.add_node(cls(start), "counter")
    compiled, state = compile_graph(graph)
    ref = Graph(1000.0)
    ref.add_node(cls(start), "counter")
    np.testing.assert_array_equal(compiled.process_block(state, safe), ref.process_block(safe))
    with pytest.raises(OverflowError):
        compiled.process_block(state, 1)


def test_a_constant_step_checks_one_compare() -> None:
    graph = Graph(1000.0)
    graph.add_node(Up(0), "up")
    graph.add_node(Down(0), "down")
    wat = CraneliftJit(max_block=64).compile(graph.to_ir()).wat
    assert f"(i64.gt_s (local.get $n0__n) (i64.const {(1 << 63) - 1 - 5}))" in wat  # n > MAX - 5
    assert f"(i64.lt_s (local.get $n1__n) (i64.const {-(1 << 63) + 5}))" in wat  # n < MIN + 5
