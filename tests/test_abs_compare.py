"""``abs(x) < c`` printed as an integer test on x's bits (backends/wasm.py ``abs_compare``).

Every filter's denormal flush is this test, once per state per sample; the integer form is
cheaper in Cranelift's code (no mask load, no NaN parity check). It must give Python's answer
for every double: zeros of both signs, subnormals, the bound itself and its neighbours,
infinities and NaNs; and only the forms that are exact (``<``/``<=`` against a constant >= 0,
either side) may be rewritten."""

from __future__ import annotations

import math

import pytest
from jit_support import assert_jit_same

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph, Node, StreamOutput
from oscen.jit import CraneliftJit
from oscen.jit import kernel as k
from oscen.jit.backends.wasm import abs_compare
from oscen.jit.kernel import T
from oscen.jit.ops import Op
from oscen.oscillators import Oscillator

BOUND = 1e-15
INF = math.inf
NAN = math.nan
VALUES = (
    0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310, 1e-300, BOUND, -BOUND,
    math.nextafter(BOUND, 0.0), -math.nextafter(BOUND, 0.0), math.nextafter(BOUND, 1.0),
    -math.nextafter(BOUND, 1.0), 1.0, -1.0, 1e300, -1e300, INF, -INF, NAN, -NAN,
    math.nextafter(INF, 0.0), -math.nextafter(INF, 0.0),
)  # fmt: skip


class AbsTests(Node):
    """Each bit of the output is one comparison of ``abs(x)`` with a constant, x from VALUES."""

    output = StreamOutput()

    def __init__(self) -> None:
        self.i = 0

    def process(self, sample_rate):
        x = VALUES[self.i % 23]
        self.i = self.i + 1
        n = 0.0
        if abs(x) < BOUND:
            n = n + 1.0
        if abs(x) <= BOUND:
            n = n + 2.0
        if BOUND > abs(x):
            n = n + 4.0
        if BOUND >= abs(x):
            n = n + 8.0
        if abs(x) >= BOUND:  # true for NaN in the integer form: must stay a float test
            n = n + 16.0
        if abs(x) < 0.0:
            n = n + 32.0
        if abs(x) < INF:
            n = n + 64.0
        if abs(x) <= INF:
            n = n + 128.0
        if abs(x) < -1.0:  # a negative bound: the integer form would be wrong
            n = n + 256.0
        if abs(x) <= -0.0:
            n = n + 512.0
        self.output = n


def _expected(x: float) -> float:
    tests = [
        abs(x) < BOUND, abs(x) <= BOUND, BOUND > abs(x), BOUND >= abs(x), abs(x) >= BOUND,
        abs(x) < 0.0, abs(x) < INF, abs(x) <= INF, abs(x) < -1.0, abs(x) <= -0.0,
    ]  # fmt: skip
    return float(sum(1 << i for i, t in enumerate(tests) if t))


def _build() -> Graph:
    graph = Graph(48000.0)
    node = graph.add_node(AbsTests())
    graph.set_output(node.output)
    return graph


@pytest.mark.parametrize("blocks", [64, [7, 64, 1]])
def test_abs_compares_give_python_s_answers_for_every_kind_of_double(blocks) -> None:
    assert len(VALUES) == 23
    assert_jit_same(_build, 3 * len(VALUES), blocks=blocks, exact=True)
    got = _build().process_block(len(VALUES)).ravel()  # the interpreter: Python's answers
    assert list(got) == [_expected(x) for x in VALUES]


def test_the_compiled_node_really_uses_the_integer_form() -> None:
    wat = CraneliftJit(max_block=64).compile(_build().to_ir()).wat
    assert wat.count("i64.reinterpret_f64") >= 6  # <, <=, >, >= with BOUND; 0.0; inf twice; -0.0
    assert "f64.ge" in wat and "f64.lt" in wat  # abs(x) >= BOUND and abs(x) < -1.0 stay floats


def test_the_seed_s_denormal_flushes_are_integer_tests() -> None:
    graph = Graph(44100.0)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5))
    lowpass = graph.add_node(IirLowpass(1000.0, 0.707))
    gain = graph.add_node(Gain(0.8))
    graph.connect(osc.output, lowpass.input)
    graph.connect(lowpass.output, gain.input)
    graph.set_output(gain.output)
    wat = CraneliftJit(max_block=256).compile(graph.to_ir()).wat
    assert "i64.reinterpret_f64" in wat
    assert "(f64.lt (f64.abs" not in wat


def _abs_lt(op: Op, bound: float, swap: bool = False) -> k.Prim:
    x = k.Local(T.F64, "x")
    a, c = k.Prim(T.F64, Op.F64_ABS, [x]), k.Const(T.F64, bound)
    return k.Prim(T.BOOL, op, [c, a] if swap else [a, c])


def test_only_exact_forms_are_rewritten() -> None:
    assert abs_compare(_abs_lt(Op.F64_LT, 1e-15)).op is Op.I64_LT_U  # type: ignore[union-attr]
    assert abs_compare(_abs_lt(Op.F64_LE, 1e-15)).op is Op.I64_LE_U  # type: ignore[union-attr]
    assert abs_compare(_abs_lt(Op.F64_GT, 1e-15, swap=True)).op is Op.I64_LT_U  # type: ignore[union-attr]
    assert abs_compare(_abs_lt(Op.F64_GE, 1e-15, swap=True)).op is Op.I64_LE_U  # type: ignore[union-attr]
    assert abs_compare(_abs_lt(Op.F64_GE, 1e-15)) is None  # abs(x) >= c: NaN would be true
    assert abs_compare(_abs_lt(Op.F64_GT, 1e-15)) is None
    assert abs_compare(_abs_lt(Op.F64_LT, -1.0)) is None
    assert abs_compare(_abs_lt(Op.F64_LT, NAN)) is None
    x = k.Local(T.F64, "x")
    assert abs_compare(k.Prim(T.BOOL, Op.F64_LT, [x, k.Const(T.F64, 1.0)])) is None
