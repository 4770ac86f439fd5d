"""User nodes written in the compilable subset, compiled and compared with the interpreter.

Each node below exercises one part of the subset (loops, helpers, int and float arithmetic with
Python's signs, bit operations, chained comparisons, ``or``/``and`` values, min/max, round, arrays,
tuples, constants, events...). The graphs feed them from :class:`Table` nodes (a fixed list of
values played in a loop), and the compiled output must equal the interpreter's exactly (1e-12 where
transcendental math functions are involved), as must the final node state.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from jit_support import assert_same, event, run_both, run_engines, same_float, set_value

from oscen.graph import (
    EventInput,
    EventOutput,
    Graph,
    Node,
    StreamInput,
    StreamOutput,
    ValueInput,
    ValueOutput,
)
from oscen.jit import CraneliftJit, GraphState

SR = 1000.0
N = 600

GAIN = 0.5
STEPS = 3
ENABLED = True
BIG_INT = 1 << 40
MODE_LOUD = 2


# ---------------------------------------------------------------------------------------- sources
class Table(Node):
    """Plays ``values`` in a loop, one per sample: the test signal of these tests."""

    output = StreamOutput()

    def __init__(self, values) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        self.i = 0

    def process(self, sample_rate: float) -> None:
        self.output = float(self.values[self.i])  # a Python float: the reference is Python's arithmetic
        self.i += 1
        if self.i == len(self.values):
            self.i = 0


MIXED = [
    -7.0,
    -3.5,
    -2.5,
    -1.0,
    -0.5,
    -0.0,
    0.0,
    0.5,
    1.0,
    1.5,
    2.5,
    3.0,
    7.25,
    100.0,
    -13.0,
    1e-3,
    12345.678,
    2.4999999999,
]
NONZERO = [3.0, -2.0, 0.5, -0.75, 7.0, -1.0, 1.0, 2.0, -5.0, 0.125, 10.0, -3.0, 4.0]
SMALL_INTS = [
    float(v) for v in (-23, -17, -8, -7, -6, -3, -1, 0, 1, 2, 3, 7, 8, 9, 16, 31, 44, -44, 101, -101, 5, -5)
]
DIVISORS = [float(v) for v in (3, -3, 2, -2, 7, -7, 1, -1, 5, -4, 16, -16, 9)]


def graph_with(
    node: Node, inputs: dict[str, list[float]] | None = None, outputs=("output",), label: str = "node"
) -> Graph:
    """A graph holding ``node``, each named input fed by a Table of values, outputs set."""
    graph = Graph(SR)
    handle = graph.add_node(node, label)
    for name, values in (inputs or {}).items():
        src = graph.add_node(Table(values), f"table_{name}")
        graph.connect(src.output, getattr(handle, name))
    graph.set_output(*[getattr(handle, o) for o in outputs])
    return graph


def check(build, n: int = N, actions=(), atol: float = 0.0, **kw) -> np.ndarray:
    """Compiled (GraphState path) equals interpreted, exactly unless ``atol``; returns the output."""
    expected, got = run_both(build, n, actions, atol=atol, **kw)
    assert_same(expected, got, atol=atol)
    return expected


# ---------------------------------------------------------------------------------------- basics
class Doubler(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = self.input * 2


def test_doubler() -> None:
    out = check(lambda: graph_with(Doubler(), {"input": MIXED}))
    np.testing.assert_array_equal(out[: len(MIXED)], np.array(MIXED) * 2)


def test_doubler_in_every_block_size_and_fusion() -> None:
    """Same code whatever the block schedule, the max_block and the segment fusion."""

    def build() -> Graph:
        graph = Graph(SR)
        src = graph.add_node(Table(MIXED), "src")
        prev = src.output
        for k in range(7):  # a chain longer than one fused segment
            d = graph.add_node(Doubler(), f"d{k}")
            graph.connect(prev, d.input)
            prev = d.output
        graph.set_output(prev)
        return graph

    for jit, blocks in [
        (CraneliftJit(), 1),
        (CraneliftJit(max_block=16), (5, 16, 17, 40)),
        (CraneliftJit(fuse=1), 250),
        (CraneliftJit(fuse=2, max_block=7), 64),
    ]:
        check(build, 300, jit=jit, blocks=blocks)


class Loops(Node):
    """while and for-range loops with break and continue, nested."""

    input = StreamInput()
    steps = StreamOutput()
    primes = StreamOutput()
    mixed = StreamOutput()

    def process(self, sample_rate: float) -> None:
        n = int(abs(self.input)) % 50 + 1
        steps = 0
        m = n
        while m != 1:  # Collatz
            if m % 2 == 0:
                m //= 2
            else:
                m = 3 * m + 1
            steps += 1
        self.steps = steps
        total = 0
        for k in range(2, n):  # primes below n
            prime = True
            for d in range(2, k):
                if d * d > k:
                    break
                if k % d == 0:
                    prime = False
                    break
            if not prime:
                continue
            total += k
        self.primes = total
        s = 0
        for i in range(n, -n, -3):  # a descending range
            if i % 2 == 0:
                continue
            s += i
        for _ in range(n, 0):  # empty
            s += 1000
        step = 1 - 2 * (n % 2)  # a step known only at run time
        for i in range(0, 4 * step, step):
            s += i
        j = 0
        while True:
            j += 1
            if j * j >= n:
                break
        k = 0
        while k < 10:
            k += 1
            if k % 3:
                continue
            s -= k
        self.mixed = s * 100 + j


def test_loops_break_continue() -> None:
    check(
        lambda: graph_with(Loops(), {"input": SMALL_INTS + [49.0, 50.0, 97.5]}, ("steps", "primes", "mixed"))
    )


class Helpers(Node):
    """Helpers calling helpers, returning values, returning early (also from inside loops)."""

    input = StreamInput()
    output = StreamOutput()
    aux = StreamOutput()

    def __init__(self) -> None:
        self.last = 0.0

    def _square(self, x: float) -> float:
        return x * x

    def _poly(self, x: float) -> float:
        return self._square(x) + 2.0 * x + 1.0

    def _sign(self, x: float) -> int:
        if x > 0.0:
            return 1
        if x < 0.0:
            return -1
        return 0

    def _first_above(self, limit: float) -> int:
        i = 0
        while i < 100:
            if self._square(float(i)) > limit:
                return i
            i += 1
        return -1

    def _store(self, x: float) -> None:
        self.last = x
        if x > 10.0:
            return
        self.last = -x

    def _half(self, v):
        return v // 2

    def _is_small(self, x: float) -> bool:
        return -1.0 < x < 1.0

    def process(self, sample_rate: float) -> None:
        x = self.input
        self._store(x)
        self.output = self._poly(x) * self._sign(x)
        small = 1.0 if self._is_small(x) else 0.0
        # one helper specialised for an int and for a float argument
        self.aux = float(self._first_above(abs(x) * 10.0)) + self.last + self._half(7) + self._half(x) + small


def test_nested_helpers_and_early_returns() -> None:
    check(lambda: graph_with(Helpers(), {"input": MIXED}, ("output", "aux")))


class EarlyReturn(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = 0.0
        if self.input < 0.0:
            return
        if self.input > 5.0:
            self.output = 5.0
            return
        self.output = self.input


class Branches(Node):
    input = StreamInput()
    output = StreamOutput()
    mode = 1  # a class constant: the branches on it fold

    def process(self, sample_rate: float) -> None:
        x = self.input
        if x < -5.0:
            y = -1
        elif x < 0.0:
            y = 0.5 if x > -1.0 else -0.5
        elif x == 0.0:
            y = 0
        elif x <= 2.5:
            if x == 2.5:
                y = 25
            else:
                y = 2.0 * x
        else:
            y = x - 100.0 if x > 50.0 else (x + 1.0 if x > 5.0 else x)
        if self.mode == 1:
            y = y + 0.25
        else:
            y = y * 1000.0
        if ENABLED and STEPS > 2:
            y = -y
        if not x:
            y += 1000.0
        self.output = y


def test_early_return_and_branches() -> None:
    check(lambda: graph_with(EarlyReturn(), {"input": MIXED}))
    check(lambda: graph_with(Branches(), {"input": MIXED + [-0.9, 60.0, 6.0]}))


# ---------------------------------------------------------------------------------------- arithmetic
class IntArith(Node):
    """int // % with every sign combination, * + - **, abs, negation; bools as ints."""

    a = StreamInput()
    b = StreamInput()
    floordiv = StreamOutput()
    mod = StreamOutput()
    other = StreamOutput()

    def process(self, sample_rate: float) -> None:
        a = int(self.a)
        b = int(self.b)
        self.floordiv = a // b
        self.mod = a % b
        q = -a // 3 + a // -4 + (-a) % 5 + a % -6
        p = a**3 - (-b) ** 2 + b**0 + abs(a) * -b - -a
        t = (a > 0) + (b < 0) * 10 + True
        self.other = q * 1000000 + p * 10 + t + BIG_INT // 1024 % 7


def test_int_arithmetic_signs() -> None:
    a = SMALL_INTS
    b = (DIVISORS * 3)[: len(a)]
    for x in (-7, 7):  # the classic examples
        for y in (-2, 2):
            assert (x // y, x % y) in {(-4, 1), (3, 1), (-4, -1), (3, -1)}
    check(lambda: graph_with(IntArith(), {"a": a, "b": b}, ("floordiv", "mod", "other")))


class FloatArith(Node):
    """float // % ** with signs, including the fast x % 2**k path and x ** 2."""

    a = StreamInput()
    b = StreamInput()
    floordiv = StreamOutput()
    mod = StreamOutput()
    power = StreamOutput()
    fast = StreamOutput()

    def process(self, sample_rate: float) -> None:
        a = self.a
        b = self.b
        self.floordiv = a // b
        self.mod = a % b
        self.power = (abs(a) + 0.5) ** b + a**3 + a**2 + b**-2.0 + 2.0 ** (a * 0.01) + a**0 + (-2.0) ** 3.0
        self.fast = a % 2.0 + a % 0.5 + a % 4 + a % -2.0 + a // 0.25 + (-a) % 1.0 + a / b


def test_float_floordiv_mod_pow_signs() -> None:
    a = MIXED
    b = (NONZERO * 2)[: len(a)]
    check(lambda: graph_with(FloatArith(), {"a": a, "b": b}, ("floordiv", "mod", "power", "fast")))


class Signs(Node):
    """Signed zeros through % // min max abs round: outputs copysign(1, ...) so -0.0 shows."""

    a = StreamInput()
    out_mod = StreamOutput()
    out_min = StreamOutput()
    out_max = StreamOutput()
    out_abs = StreamOutput()

    def process(self, sample_rate: float) -> None:
        a = self.a
        self.out_mod = (
            math.copysign(1.0, a % 2.0)
            + 2.0 * math.copysign(1.0, a % -2.0)
            + 4.0 * math.copysign(1.0, a // 3.0)
        )
        self.out_min = (
            math.copysign(1.0, min(a, -0.0))
            + 2.0 * math.copysign(1.0, min(0.0, a))
            + 4.0 * math.copysign(1.0, min(-0.0, 0.0))
        )
        self.out_max = (
            math.copysign(1.0, max(a, 0.0))
            + 2.0 * math.copysign(1.0, max(-0.0, a))
            + 4.0 * math.copysign(1.0, max(-0.0, 0.0))
        )
        self.out_abs = (
            math.copysign(1.0, abs(a)) + 2.0 * math.copysign(1.0, -a) + 4.0 * math.copysign(1.0, a * 0.0)
        )


def test_signed_zeros() -> None:
    check(
        lambda: graph_with(
            Signs(),
            {"a": [-0.0, 0.0, -4.0, 4.0, -1e-300, 1e-300]},
            ("out_mod", "out_min", "out_max", "out_abs"),
        )
    )


class Bits(Node):
    a = StreamInput()
    b = StreamInput()
    output = StreamOutput()
    flags = StreamOutput()

    def process(self, sample_rate: float) -> None:
        a = int(self.a)
        b = int(self.b)
        s = abs(b) % 11
        r = (a & b) * 3 + (a | b) * 5 + (a ^ b) * 7 + ~a * 11 + (a << s) + (a >> s) + (-a >> 70) + (0xFF & ~b)
        r ^= 0x55
        r |= 1 << 20
        r &= ~(1 << 3)
        r <<= 1
        r >>= 2
        p = a > 0
        q = b > 0
        both = p & q
        either = p | q
        differ = p ^ q
        self.output = r
        self.flags = both * 1 + either * 2 + differ * 4 + (p ^ True) * 8 + (BIG_INT >> 38)


def test_bit_operations() -> None:
    a = SMALL_INTS
    b = (SMALL_INTS[::-1] * 2)[: len(a)]
    check(lambda: graph_with(Bits(), {"a": a, "b": b}, ("output", "flags")))


class Chains(Node):
    a = StreamInput()
    b = StreamInput()
    output = StreamOutput()

    def _mid(self, x: float) -> float:
        return x * 0.5

    def process(self, sample_rate: float) -> None:
        a = self.a
        b = self.b
        r = 0
        if a < b <= 3.0:
            r += 1
        if a == b == 0.0:
            r += 2
        if a < b > 0.0:
            r += 4
        if -1.0 < self._mid(a) < 1.0 < b:
            r += 8
        if 0 <= int(a) < 5 != int(b):
            r += 16
        if not (a != b != 1.0):
            r += 32
        r += (a <= b) + (a >= b) * 3
        self.output = r


def test_chained_comparisons() -> None:
    a = MIXED
    b = (MIXED[3:] + MIXED[:3])[: len(a)]
    check(lambda: graph_with(Chains(), {"a": a + [0.0, 1.0], "b": b + [0.0, 1.0]}))


class CallOrder(Node):
    """Chained comparisons with helper calls that have side effects: Python evaluates the operands
    left to right, each once, and stops at the first false comparison."""

    a = StreamInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.log = 0

    def _note(self, digit: int, value: float) -> float:
        self.log = (self.log * 10 + digit) % 1000000007
        return value

    def process(self, sample_rate: float) -> None:
        a = self.a
        r = 0
        if self._note(1, a) < self._note(2, 1.0) < self._note(3, 2.0):
            r += 1
        if 0.0 < a < self._note(4, 5.0) < 100.0:
            r += 2
        self.output = r + self.log % 1000


def test_chained_comparison_side_effects_in_python_order() -> None:
    check(lambda: graph_with(CallOrder(), {"a": [-1.0, 0.5, 3.0, 200.0]}), n=8)


class OrAnd(Node):
    """``a or b`` / ``a and b`` return an operand, not a bool."""

    a = StreamInput()
    b = StreamInput()
    output = StreamOutput()
    other = StreamOutput()

    def __init__(self) -> None:
        self.count = 0

    def process(self, sample_rate: float) -> None:
        a = self.a
        b = self.b
        x = a or b
        y = a and b
        z = a or b or 7.5
        n = self.count % 3
        w = n or 2.5  # int or float
        v = (n and a) or -1.0
        flag = (a > 0.0) or (b > 0.0)
        self.count += 1
        self.output = x * 1000.0 + y + z * 0.001
        self.other = w * 10.0 + v + flag


def test_or_and_value_semantics() -> None:
    a = [0.0, -0.0, 1.5, 0.0, -2.0, 3.0, 0.0]
    b = [0.0, 2.0, 0.0, -1.0, 0.0, 4.0, 5.0]
    check(lambda: graph_with(OrAnd(), {"a": a, "b": b}, ("output", "other")), n=40)


class MinMaxRound(Node):
    a = StreamInput()
    b = StreamInput()
    minmax = StreamOutput()
    rounded = StreamOutput()
    ints = StreamOutput()

    def process(self, sample_rate: float) -> None:
        a = self.a
        b = self.b
        i = int(a)
        m1 = min(a, b) + max(a, b) * 10.0
        m2 = min(i, b) + max(1, 1.0) + min(2, 2.0, 1.5) + max(i, 3, -i)  # mixed int/float, ties
        m3 = max(a, b, -a, -b) - min(a, -1.0, b, 0.5)
        self.minmax = m1 * 100.0 + m2 + m3 * 0.01
        self.rounded = round(a) * 1000 + round(b) + round(a * 2.0) * 0.001
        self.ints = (
            int(a) * 10000 + int(-a) * 100 + math.floor(a) + math.ceil(b) * 0.01 + math.trunc(-b) * 0.0001
        )


def test_min_max_round() -> None:
    halves = [-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5, 2.4999999999999996, 2.5000000000000004, -0.0]
    other = [0.5, -2.5, -1.5, 1.5, 0.5, 1.5, 3.0, 3.5, -4.5, 2.5, 2.5, 0.0]
    assert [round(x) for x in halves[:9]] == [-4, -2, -2, 0, 0, 2, 2, 4, 4]  # halves go to even
    check(
        lambda: graph_with(
            MinMaxRound(), {"a": halves + MIXED, "b": other + MIXED[::-1]}, ("minmax", "rounded", "ints")
        )
    )


class MathFunctions(Node):
    a = StreamInput()
    output = StreamOutput()
    other = StreamOutput()

    def process(self, sample_rate: float) -> None:
        x = self.a
        p = abs(x) + 0.5
        s = math.sin(x) + math.cos(x) * 2.0 + math.tan(x * 0.1) + math.atan(x) + math.atan2(x, p)
        s += (
            math.exp(x * 0.01) + math.log(p) + math.log2(p) + math.log10(p) + math.log(p, 3.0) + math.log1p(p)
        )
        s += math.sqrt(p) + math.pow(p, 1.5) + math.hypot(x, 3.0) + math.fmod(x, 1.5) + math.copysign(2.0, x)
        s += math.sinh(x * 0.01) + math.cosh(x * 0.01) + math.tanh(x) + math.expm1(x * 0.001) + math.fabs(x)
        s += (
            math.asin(1.0 / (1.0 + p))
            + math.acos(-1.0 / (1.0 + p))
            + math.asinh(x)
            + math.acosh(1.0 + p)
            + math.atanh(0.4 / p)
        )
        s += math.degrees(x) * 0.001 + math.radians(x)
        self.output = s
        self.other = math.pi * x + math.tau + math.e + np.pi + math.floor(x * 0.3) + math.ceil(-x * 0.3)


class MathPredicates(Node):
    a = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        x = self.a
        self.output = (
            math.isnan(x) + math.isinf(x) * 2 + math.isfinite(x) * 4 + (x != x) * 8 + (x == math.inf) * 16
        )


class NewerMath(Node):
    """math.exp2 and math.cbrt (Python 3.11+)."""

    a = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = math.exp2(self.a * 0.1) + math.cbrt(self.a)


@pytest.mark.skipif(not hasattr(math, "cbrt"), reason="math.cbrt and math.exp2 are new in Python 3.11")
def test_newer_math_functions() -> None:
    check(lambda: graph_with(NewerMath(), {"a": [v for v in MIXED if abs(v) < 1000.0]}), atol=1e-12)


def test_math_functions() -> None:
    values = [v for v in MIXED if abs(v) < 1000.0]
    check(lambda: graph_with(MathFunctions(), {"a": values}, ("output", "other")), atol=1e-12)
    special = MIXED + [math.inf, -math.inf, math.nan, -math.nan]
    check(lambda: graph_with(MathPredicates(), {"a": special}), n=len(special))


# ---------------------------------------------------------------------------------------- state
class Arrays(Node):
    """Array reads and writes, negative indices, int arrays, augmented element updates, len()."""

    input = StreamInput()
    output = StreamOutput()
    counts = StreamOutput()

    def __init__(self) -> None:
        self.buf = np.zeros(8)
        self.hist = np.zeros(5, dtype=np.int64)
        self.pos = 0

    def process(self, sample_rate: float) -> None:
        x = self.input
        for i in range(len(self.buf) - 1):  # shift register
            self.buf[i] = self.buf[i + 1]
        self.buf[-1] = x
        self.buf[-3] += 0.5 * x
        k = int(abs(x)) % len(self.hist)
        self.hist[k] += 1
        self.hist[k - len(self.hist)] *= 1
        self.hist[-1] = self.hist[-1] + (x > 0.0)
        self.pos = (self.pos - 1) % len(self.buf)
        self.output = (
            self.buf[0] + self.buf[-2] * 10.0 + self.buf[self.pos] * 100.0 + self.buf[-len(self.buf)]
        )
        self.counts = self.hist[0] + self.hist[1] * 10 + self.hist[-2] * 100 + self.hist[-1] * 1000


def test_arrays_with_negative_indices() -> None:
    check(lambda: graph_with(Arrays(), {"input": MIXED}, ("output", "counts")))


class Tuples(Node):
    output = StreamOutput()
    b = StreamOutput()

    def __init__(self) -> None:
        self.x = 0.0
        self.y = 1.0
        self.n = 0

    def process(self, sample_rate: float) -> None:
        self.x, self.y = self.y, (self.x + self.y) % 1000.0  # Fibonacci mod 1000
        a, b = self.n, -self.n
        a, b = b, a  # swap
        c = d = a * 2
        c += 1
        self.n += 1
        self.output = self.x
        self.b = a * 1000 + b + c * 0.5 + d * 0.25


def test_tuple_swap_and_multiple_targets() -> None:
    check(lambda: graph_with(Tuples(), outputs=("output", "b")))


class Constants(Node):
    """Module constants, class constants (a subclass overrides one), instance constants (attributes
    never assigned by node code: folded), math and numpy constants."""

    output = StreamOutput()
    FACTOR = 2.5
    SHIFT = 2
    LOUD = True

    def __init__(self, mode: int = 1, scale: float = 1.0) -> None:
        self.mode = mode  # never assigned by node code: a constant of the compiled code
        self.scale = scale
        self.t = 0

    def process(self, sample_rate: float) -> None:
        self.t += 1
        v = self.t * self.FACTOR * GAIN + (self.t << self.SHIFT) + STEPS
        if self.LOUD and self.mode == MODE_LOUD:
            v = v * 10.0
        if self.mode == 0:
            v = -v
        self.output = v * self.scale + math.pi + np.e + BIG_INT


class MoreConstants(Constants):
    FACTOR = -1.0


def test_module_class_and_instance_constants() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        nodes = [
            Constants(1, 0.5),
            Constants(MODE_LOUD, 2.0),
            Constants(1, 0.5),
            MoreConstants(0, 3.0),
            Constants(0, -1.0),
        ]
        handles = [graph.add_node(n, f"c{i}") for i, n in enumerate(nodes)]
        graph.set_output(*[h.output for h in handles])
        return graph

    ir = build().to_ir()
    assert ir.nodes[0].constants == {"mode": 1, "scale": 0.5}
    out = check(build, 50)
    assert len({tuple(row) for row in out}) == 4  # c0 and c2 are the same variant


class Counter(Node):
    """Int and bool attributes updated every sample."""

    output = StreamOutput()

    def __init__(self) -> None:
        self.count = 0
        self.flag = False
        self.total = 0.0

    def process(self, sample_rate: float) -> None:
        self.count += 3
        self.count -= 1
        self.count *= 1
        self.count //= 1
        self.count %= 1000003
        self.flag = not self.flag
        self.total += 0.1
        self.total -= 0.05
        self.total *= 1.0001
        self.total /= 1.00005
        self.output = self.count + self.flag * 0.5 + self.total


def test_int_bool_float_attributes() -> None:
    check(lambda: graph_with(Counter()), n=3000, blocks=(1000, 1, 7, 1999))


class Leaky(Node):
    """Reads its own output (the previous sample's) as state; an event handler reads the current
    input and output; asserts that hold; a helper applied to its own result."""

    input = StreamInput()
    kick = EventInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.kicked = 0.0

    def _square(self, x: float) -> float:
        return x * x

    def on_kick(self, amount: float) -> None:
        self.kicked = self.kicked + amount * self.input + self.output

    def process(self, sample_rate: float) -> None:
        assert sample_rate > 0.0, "a positive rate"
        assert self.output == self.output
        self.output = (
            self.output * 0.5 + self.input + self._square(self._square(self.input * 0.1)) + self.kicked
        )


def test_output_as_state_and_handlers_reading_inputs() -> None:
    actions = [
        event(0, "node.kick", 1.0, offset=7),
        event(50, "node.kick", -2.0, offset=0),
        event(50, "node.kick", 0.5, offset=3),
    ]
    check(lambda: graph_with(Leaky(), {"input": MIXED}), 100, actions, blocks=(50, 10))


# ---------------------------------------------------------------------------------------- events
class Handlers(Node):
    """Event inputs whose handlers take 0 to 4 fields."""

    e0 = EventInput()
    e1 = EventInput()
    e2 = EventInput()
    e3 = EventInput()
    e4 = EventInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.acc = 0.0
        self.seen = 0

    def on_e0(self) -> None:
        self.seen += 1

    def on_e1(self, a: float) -> None:
        self.acc = self.acc * 0.5 + a

    def on_e2(self, a: float, b: float) -> None:
        self.acc = self.acc * 0.5 + a + 2.0 * b

    def on_e3(self, a: float, b: float, c: float) -> None:
        self.acc = self.acc * 0.5 + a + 2.0 * b + 3.0 * c

    def on_e4(self, a: float, b: float, c: float, d: float) -> None:
        self.acc = self.acc * 0.5 + a + 2.0 * b + 3.0 * c + 4.0 * d
        if d < 0.0:
            return
        self.seen += 10

    def process(self, sample_rate: float) -> None:
        self.output = self.acc + self.seen * 1000.0


def test_event_handlers_with_zero_to_four_fields() -> None:
    def build() -> Graph:
        return graph_with(Handlers(), label="h")

    actions = [
        event(0, "h.e0", 1.0, offset=3),
        event(0, "h.e1", 2.0, offset=3),
        event(0, "h.e2", (1.0, 2.0), offset=5),
        event(0, "h.e3", (1.0, 2.0, 3.0), offset=5),
        event(0, "h.e4", (1.0, 2.0, 3.0, 4.0), offset=5),
        event(0, "h.e4", (1.0, 2.0, 3.0, -4.0), offset=5),
        event(0, "h.e4", 9.0, offset=6),  # fewer fields than the handler takes: the rest are 0
        event(0, "h.e2", (1.0, 2.0, 3.0, 4.0), offset=6),  # more: the handler takes the first two
        event(100, "h.e1", 5.0, offset=0),
        event(100, "h.e1", 6.0, offset=0),  # same sample: in queueing order
        event(100, "h.e1", 7.0, offset=99),
        event(250, "h.e0", 0.0, offset=1000),  # beyond the run: still pending at the end
    ]
    check(build, 300, actions, blocks=(64, 100, 1))


class Clock(Node):
    """Emits ``tick`` every ``period`` samples from process (several fields, then none)."""

    period = ValueInput(7.0)
    tick = EventOutput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.period = 7.0
        self.count = 0

    def process(self, sample_rate: float) -> None:
        self.count += 1
        if self.count % int(self.period) == 0:
            self.tick.emit(float(self.count), 0.5, -1.0, 2.0)
            if self.count % 3 == 0:
                self.tick.emit()  # a second event at the same sample, no fields
        self.output = float(self.count)


class Relay(Node):
    """Re-emits each event from its handler, transformed, and counts them."""

    input = EventInput()
    output_events = EventOutput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.n = 0

    def on_input(self, a: float, b: float, c: float, d: float) -> None:
        self.n += 1
        self.output_events.emit(a * 2.0, b + c + d)
        if a > 20.0:
            self.output_events.emit(-a)

    def process(self, sample_rate: float) -> None:
        self.output = float(self.n)


class Sink(Node):
    input = EventInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.sum = 0.0
        self.events = 0

    def on_input(self, a: float, b: float) -> None:
        self.sum = self.sum * 0.9 + a + 10.0 * b
        self.events += 1

    def process(self, sample_rate: float) -> None:
        self.output = self.sum + 1000.0 * self.events


def test_emit_from_process_and_handlers() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        clock = graph.add_node(Clock(), "clock")
        relay = graph.add_node(Relay(), "relay")
        sink = graph.add_node(Sink(), "sink")
        sink2 = graph.add_node(Sink(), "sink2")
        graph.connect(clock.tick, relay.input)
        graph.connect(relay.output_events, sink.input)
        graph.connect(relay.output_events, sink2.input)  # fan-out of events
        graph.connect(clock.tick, sink2.input)  # and two sources merged into one input
        graph.set_output(sink.output, sink2.output, relay.output, clock.output)
        return graph

    actions = [
        set_value(100, "clock.period", 3.0),
        event(150, "sink2.input", (100.0, 1.0), offset=4),  # external events come first
        event(150, "relay.input", (50.0, 1.0, 1.0, 1.0), offset=4),
        set_value(300, "clock.period", 1.0),  # an event every sample
    ]
    out = check(build, 500, actions, blocks=(50, 77, 1, 256))
    assert out[0, -1] > 0


# ---------------------------------------------------------------------------------------- routing
class Split(Node):
    """Several outputs, each going somewhere else."""

    input = StreamInput()
    low = StreamOutput()
    high = StreamOutput()
    level = ValueOutput()

    def process(self, sample_rate: float) -> None:
        x = self.input
        self.low = min(x, 0.0)
        self.high = max(x, 0.0)
        self.level = abs(x)


class Scale(Node):
    input = StreamInput(0.25)  # the default is read when unconnected
    factor = ValueInput(1.0)
    output = StreamOutput()

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def process(self, sample_rate: float) -> None:
        self.output = self.input * self.factor


def test_multiple_outputs_sources_and_value_inputs_from_streams() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        src = graph.add_node(Table(MIXED), "src")
        split = graph.add_node(Split(), "split")
        graph.connect(src.output, split.input)
        lo = graph.add_node(Scale(2.0), "lo")
        hi = graph.add_node(Scale(3.0), "hi")
        graph.connect(split.low, lo.input)
        graph.connect(split.high, hi.input)
        graph.connect(split.level, hi.factor)  # a value input driven by a value output...
        graph.connect(src.output, hi.factor)  # ...plus a stream: their sum
        # three sources summed left to right, where the order shows: (1e16 + 1) - 1e16 = 0
        a = graph.add_node(Table([1e16, 1.0, 3.0]), "a")
        b = graph.add_node(Table([1.0, 1e16, 5.0]), "b")
        c = graph.add_node(Table([-1e16, -1e16, 7.0]), "c")
        total = graph.add_node(Scale(1.0), "total")
        for t in (a, b, c):
            graph.connect(t.output, total.input)
        idle = graph.add_node(Scale(4.0), "idle")  # unconnected: its input's default
        graph.set_output(split.low, split.high, split.level, lo.output, hi.output, total.output, idle.output)
        return graph

    actions = [
        set_value(100, "hi.factor", 100.0),
        set_value(150, "idle.factor", -1.0, ramp=0.1),
        set_value(200, "lo.factor", 0.5, ramp=0.05),
    ]
    out = check(build, 400, actions, blocks=(33, 128))
    assert out[5, 0] == 0.0 and out[5, 1] == 0.0 and out[5, 2] == 15.0


class BigHelper(Node):
    """A helper large enough to be compiled out of line (a coefficient update), reading an
    unconnected value input and writing arrays; and the same class with that input connected."""

    input = StreamInput()
    amount = ValueInput(0.5)
    output = StreamOutput()

    def __init__(self) -> None:
        self.coef = np.zeros(6)
        self.last_amount = math.nan

    def _update(self, sample_rate: float) -> float:
        a = self.amount
        total = 0.0
        for i in range(len(self.coef)):
            c = math.cos(a * (i + 1)) / (1.0 + i * i) + math.sin(a / (i + 1.0)) * 0.25
            if c > 0.5:
                c = 0.5 + (c - 0.5) * 0.1
            elif c < -0.5:
                c = -0.5 + (c + 0.5) * 0.1
            self.coef[i] = c
            total += abs(c) + a * 0.001 + float(i) / sample_rate
        if total > 1.0:
            for i in range(len(self.coef)):
                self.coef[i] = self.coef[i] / total
        return total

    def process(self, sample_rate: float) -> None:
        if self.amount != self.last_amount:
            self.last_amount = self.amount
            self._update(sample_rate)
        x = self.input
        y = 0.0
        for i in range(len(self.coef)):
            y += self.coef[i] * x ** (i % 3)
        self.output = y


def test_outlined_helper_with_and_without_connected_input() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        src = graph.add_node(Table(MIXED), "src")
        free = graph.add_node(BigHelper(), "free")
        driven = graph.add_node(BigHelper(), "driven")
        lfo = graph.add_node(Table([0.1, 0.2, 0.2, 0.3, -0.4]), "lfo")
        for node in (free, driven):
            graph.connect(src.output, node.input)
        graph.connect(lfo.output, driven.amount)
        graph.set_output(free.output, driven.output)
        return graph

    actions = [set_value(100, "free.amount", 2.0), set_value(200, "free.amount", -1.0, ramp=0.05)]
    check(build, 400, actions, atol=1e-12)


# ---------------------------------------------------------------------------------------- JIT bugs
class ClampParam(Node):
    """A helper that clamps its parameter by reassigning it (``if v > 1: v = 1.0``)."""

    x = ValueInput(0.5)
    output = StreamOutput()

    def __init__(self, x: float = 0.5) -> None:
        self.x = x

    def _clamp(self, v: float) -> float:
        if v > 1.0:
            v = 1.0
        return v

    def process(self, sample_rate: float) -> None:
        self.output = self._clamp(self.x)


def test_helper_parameter_reassigned_from_a_constant() -> None:
    def build() -> Graph:
        return graph_with(ClampParam(0.5), label="clamp")

    out = check(build, 20, [set_value(10, "clamp.x", 3.0)], blocks=10)
    assert list(out[:10]) == [0.5] * 10


class MixedReturn(Node):
    """A helper returning an int on one path and a float on another (Python returns either)."""

    input = StreamInput()
    output = StreamOutput()

    def _pick(self, v: float) -> float:
        if v > 0.0:
            return 1
        return 0.5

    def process(self, sample_rate: float) -> None:
        self.output = self._pick(self.input)


def test_helper_returning_int_and_float() -> None:
    check(lambda: graph_with(MixedReturn(), {"input": [1.0, -1.0]}), n=4)


def test_state_engine_and_jitgraph_agree_on_user_nodes() -> None:
    """The JitGraph path runs the same code as the GraphState path."""

    def build() -> Graph:
        graph = Graph(SR)
        src = graph.add_node(Table(MIXED), "src")
        loops = graph.add_node(Loops(), "loops")
        arrays = graph.add_node(Arrays(), "arrays")
        graph.connect(src.output, loops.input)
        graph.connect(src.output, arrays.input)
        graph.set_output(loops.steps, loops.mixed, arrays.output, arrays.counts)
        return graph

    outs = run_engines(build, 500, blocks=(100, 3, 397))
    assert_same(outs["interpreted"], outs["state"], atol=0.0)
    assert_same(outs["interpreted"], outs["jitgraph"], atol=0.0, what="jitgraph vs interpreted")


def test_same_float_helper() -> None:
    assert same_float(math.nan, math.nan) and not same_float(0.0, -0.0) and same_float(1.5, 1.5)


def test_graph_state_reused_across_compiles_of_the_same_ir() -> None:
    graph = graph_with(Loops(), {"input": SMALL_INTS}, ("steps", "primes", "mixed"))
    ir = graph.to_ir()
    state = GraphState.from_graph(graph, ir=ir)
    a = CraneliftJit().compile(ir).process_block(state, 50)
    b = CraneliftJit().compile(ir).process_block(state, 50)  # a second kernel continues the same state
    expected = graph.process_block(100)
    assert_same(expected, np.concatenate([a, b], axis=-1), atol=0.0)


class NearLimit(Node):
    """A range whose next step would pass 2**63 - 1: Python stops after two iterations."""

    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        n = 0
        for _ in range(9223372036854775000, 9223372036854775807, 500):
            n += 1
        self.output = float(n)


def test_range_stepping_past_the_int64_limit_ends() -> None:
    check(lambda: graph_with(NearLimit()), n=1, jit=CraneliftJit(timeout=0.3))


class TwoOutboxes(Node):
    """Two event outputs: the second one's outbox sits after the first's, whose size depends on max_block."""

    first = EventOutput()
    second = EventOutput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.n = 0

    def process(self, sample_rate: float) -> None:
        self.n += 1
        if self.n % 3 == 0:
            self.first.emit(1.0)
            self.second.emit(float(self.n))
        self.output = 0.0


class TwoInputs(Node):
    a = EventInput()
    b = EventInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.total = 0.0

    def on_a(self, v: float) -> None:
        self.total += v

    def on_b(self, v: float) -> None:
        self.total += 1000.0 * v

    def process(self, sample_rate: float) -> None:
        self.output = self.total


def test_same_node_variant_compiled_at_two_max_blocks() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        two = graph.add_node(TwoOutboxes(), "two")
        total = graph.add_node(TwoInputs(), "total")
        graph.connect(two.first, total.a)
        graph.connect(two.second, total.b)
        graph.set_output(total.output)
        return graph

    check(build, 100, blocks=50)  # default max_block (1024)
    check(build, 100, blocks=50, jit=CraneliftJit(max_block=16))  # the variant's cached code again


class SignedZero(Node):
    """An instance constant whose sign matters."""

    output = StreamOutput()

    def __init__(self, zero: float) -> None:
        self.zero = zero  # never assigned by node code: folded into the compiled code

    def process(self, sample_rate: float) -> None:
        self.output = math.copysign(1.0, self.zero)


def test_instance_constants_zero_and_negative_zero() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        plus = graph.add_node(SignedZero(0.0), "plus")
        minus = graph.add_node(SignedZero(-0.0), "minus")
        graph.set_output(plus.output, minus.output)
        return graph

    out = check(build, 2)
    assert list(out[:, 0]) == [1.0, -1.0]
