"""Property tests: random graphs, random edits and random block sizes; and the arithmetic semantics.

1. Random graphs of library nodes (random DAGs with summing and fan-out, plus a feedback loop through
   a Delay), random parameters, random parameter changes (immediate and ramped) and gate events at
   random block boundaries, random block sizes from 1 to 2000 (beyond ``max_block``): the compiled
   graph (compiled once per example) equals the interpreter within 1e-9.

   To keep "equal within 1e-9" meaningful the graphs stay bounded and non-chaotic: parameters (value
   inputs) are driven only by sources (oscillators, noise, envelopes, constants), so every feedback
   loop is linear, and every processor has a gain of at most about one (no resonant peaks, cuts but no
   boosts, |gain| <= 1), with the feedback path scaled down.

2. Arithmetic: small generated nodes compute one operation (``a // b``, ``a % b``, ``a ** b``, bit
   operations...) on values fed through value inputs; the compiled result must be the Python result,
   or the same exception (for ints beyond 64 bits: OverflowError, the documented refusal; for a float
   power whose Python result is complex: ValueError).

Hypothesis runs derandomized (the same examples every run) without an example database, so the suite
is reproducible; explicit ``@example`` cases pin the known bugs.
"""

from __future__ import annotations

import linecache
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, find, given, settings
from hypothesis import strategies as st
from jit_support import assert_engines_match, event, perturbed_reference, run_both, set_value
from random_graphs import PARAMS, SR, GraphSpec, graph_specs

from oscen.graph import Graph, Node, StreamOutput, ValueInput
from oscen.jit import CraneliftJit, GraphState, NodeFault

GRAPH_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
OP_SETTINGS = settings(max_examples=500, deadline=None, derandomize=True, database=None)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[GraphSpec, list[int], list[Any], int, int]:
    spec = draw(graph_specs())
    blocks = draw(st.lists(st.integers(1, 2000), min_size=1, max_size=4))
    n = draw(st.integers(500, 4000))
    connected = {(t, inp) for _, _, t, inp in spec.links}
    settable = [
        (i, name) for i, k in enumerate(spec.kinds) for name in PARAMS[k] if (i, name) not in connected
    ]
    actions = []
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, n - 1))
        i, name = draw(st.sampled_from(settable))
        value = draw(PARAMS[spec.kinds[i]][name])
        ramp = draw(st.sampled_from([0.0, 0.0, 0.001, 0.01, 0.05]))
        actions.append(set_value(at, f"n{i}.{name}", value, ramp))
    adsrs = [i for i, k in enumerate(spec.kinds) if k == "adsr"]
    for i in adsrs:
        for _ in range(draw(st.integers(0, 5))):
            at = draw(st.integers(0, n - 1))
            actions.append(
                event(
                    at, f"n{i}.gate", draw(st.sampled_from([0.0, 0.3, 1.0, 1.5])), draw(st.integers(0, 300))
                )
            )
    max_block = draw(st.sampled_from([1024, 1024, 128]))
    return spec, blocks, sorted(actions, key=lambda a: a.at), n, max_block


@GRAPH_SETTINGS
@given(scenarios())
def test_random_graphs_compiled_equal_interpreted(scenario) -> None:
    spec, blocks, actions, n, max_block = scenario
    engine = "jitgraph" if len(spec.kinds) % 3 == 0 else "state"
    expected, got = run_both(
        spec.build, n, actions, engine=engine, blocks=blocks, jit=CraneliftJit(max_block=max_block)
    )
    assert np.all(np.isfinite(expected)), "the graph blew up: the generator should keep graphs bounded"
    what = f"{engine} vs interpreted for {spec!r}"
    try:  # the tolerance policy of docs/jit.md: the plain bound, or the graph's own spread
        assert_engines_match(expected, got, what=what)
    except AssertionError:
        perturbed = perturbed_reference(spec.build, n, actions, blocks=blocks)
        assert_engines_match(expected, got, perturbed=perturbed, what=what)


def _has_cycle(spec: GraphSpec) -> bool:
    return any(c.back_edge for c in spec.build().to_ir().connections)


def _has_sum(spec: GraphSpec) -> bool:
    targets = [(t, inp) for _, _, t, inp in spec.links]
    return len(targets) != len(set(targets))


def _has_fan_out(spec: GraphSpec) -> bool:
    sources = [(s, out) for s, out, _, _ in spec.links]
    return len(sources) != len(set(sources))


def _has_driven_parameter(spec: GraphSpec) -> bool:
    return any(inp in PARAMS[spec.kinds[t]] for _, _, t, inp in spec.links)


@pytest.mark.parametrize(
    "feature", [_has_cycle, _has_sum, _has_fan_out, _has_driven_parameter], ids=lambda f: f.__name__[1:]
)
def test_random_graph_generator_makes(feature) -> None:
    """The strategy does produce cycles, sums, fan-out and parameters driven by streams."""
    found = find(
        graph_specs(), feature, settings=settings(max_examples=1000, database=None, derandomize=True)
    )
    assert feature(found)


# ---------------------------------------------------------------------------------------- arithmetic
TINY = 2.0**-55
SPLIT = 4294967296  # 2**32: 64-bit ints travel as two exact floats (high and low halves)
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

OP_TEMPLATE = """
class {name}(Node):
    a = ValueInput(0.0)
    b = ValueInput(0.0)
    a_hi = ValueInput(0.0)
    a_lo = ValueInput(0.0)
    b_hi = ValueInput(0.0)
    b_lo = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self):
        self.r = {zero}

    def process(self, sample_rate):
        {load_a}
        {load_b}
        self.r = {expr}
        self.output = 0.0
"""


@dataclass
class Op:
    """One generated node computing ``expr`` from ``a`` and ``b`` (floats, or 64-bit ints), compiled once."""

    name: str
    expr: str
    a_int: bool
    b_int: bool
    result: str  # "float", "int" or "bool"
    cls: type[Node] = None  # type: ignore[assignment]
    compiled: Any = None
    state: GraphState = None  # type: ignore[assignment]
    handle: Any = None

    def __post_init__(self) -> None:
        load = {True: "{v} = int(self.{v}_hi) * SPLIT + int(self.{v}_lo)", False: "{v} = self.{v}"}
        source = OP_TEMPLATE.format(
            name=self.name,
            zero={"float": "0.0", "int": "0", "bool": "False"}[self.result],
            load_a=load[self.a_int].format(v="a"),
            load_b=load[self.b_int].format(v="b"),
            expr=self.expr,
        )
        filename = f"<oscen jit property {self.name}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        namespace = {"__name__": __name__, "Node": Node, "ValueInput": ValueInput, "StreamOutput": StreamOutput,
                     "math": math, "SPLIT": SPLIT, "TINY": TINY}  # fmt: skip
        exec(compile(source, filename, "exec"), namespace)
        self.cls = namespace[self.name]

    def _inputs(self, a: Any, b: Any) -> dict[str, float]:
        values = {}
        for v, x, is_int in (("a", a, self.a_int), ("b", b, self.b_int)):
            if is_int:
                values[f"{v}_hi"] = float(x >> 32)
                values[f"{v}_lo"] = float(x & (SPLIT - 1))
            else:
                values[v] = float(x)
        return values

    def python(self, a: Any, b: Any) -> Any:
        """The interpreter's answer: the result, or the exception raised."""
        node = self.cls()
        for k, v in self._inputs(a, b).items():
            setattr(node, k, v)
        try:
            node.process(SR)
        except Exception as exc:  # noqa: BLE001 - the exception is the answer
            return exc
        return node.r

    def jit(self, a: Any, b: Any) -> Any:
        if self.compiled is None:
            graph = Graph(SR)
            self.handle = graph.add_node(self.cls(), self.name)
            ir = graph.to_ir()
            self.compiled = CraneliftJit().compile(ir)
            self.state = GraphState.from_graph(graph, ir=ir)
        params = self.state.layout.nodes[self.handle.id].params
        for k, v in self._inputs(a, b).items():
            # written straight into the parameter slot: set_value refuses NaN and infinities, which
            # these probes feed on purpose
            self.state.bytes[params[k].value : params[k].value + 8].view(np.float64)[0] = v
        try:
            self.compiled.process_block(self.state, 1)
        except NodeFault as exc:
            return exc
        r = self.state.scalar(self.handle.id, "r")[0]
        return {"float": float, "int": int, "bool": bool}[self.result](r)

    def check(self, a: Any, b: Any, ulps: int = 0) -> None:
        want = self.python(a, b)
        got = self.jit(a, b)
        where = f"{self.expr} with a={a!r}, b={b!r}"
        if isinstance(want, complex) or (isinstance(want, OverflowError) and "complex" in str(want)):
            # Python's float ** of a negative number goes complex: compiled code refuses with ValueError
            want = ValueError("complex result")
        if isinstance(want, int) and not isinstance(want, bool) and not I64_MIN <= want <= I64_MAX:
            want = OverflowError("beyond 64 bits")  # the documented refusal
        if isinstance(want, Exception):
            assert isinstance(got, NodeFault), f"{where}: Python raises {want!r}, compiled gives {got!r}"
            assert isinstance(got, type(want)), (
                f"{where}: Python raises {type(want).__name__}, compiled {got!r}"
            )
            return
        assert not isinstance(got, Exception), f"{where}: Python gives {want!r}, compiled raises {got!r}"
        if self.result == "float":
            if ulps and math.isfinite(want) and math.isfinite(got) and want != 0.0:
                assert abs(want - got) <= ulps * math.ulp(want), f"{where}: Python {want!r}, compiled {got!r}"
            else:
                assert _same(want, got), f"{where}: Python {want!r}, compiled {got!r}"
        else:
            assert want == got and type(want) is type(got), f"{where}: Python {want!r}, compiled {got!r}"


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


FLOAT_OPS = {
    "floordiv": "a // b",
    "mod": "a % b",
    "div": "a / b",
    "pow": "a ** b",
    "fmod": "math.fmod(a, b)",
    "mod_pow2": "a % 2.0",
    "mod_neg_pow2": "a % -0.5",
    "floordiv_pow2": "a // 4.0",
    "min": "min(a, b)",
    "max": "max(a, b)",
    "abs": "abs(a) + b * 0.0",
    "add_mul": "a * b + a - b",
}
INT_RESULTS_OF_FLOATS = {
    "round": "round(a) + (b > 0.0)",
    "int": "int(a)",
    "floor": "math.floor(a)",
    "ceil": "math.ceil(b)",
}
INT_OPS = {
    "ifloordiv": "a // b",
    "imod": "a % b",
    "imul": "a * b",
    "iadd": "a + b",
    "isub": "a - b",
    "ineg": "-a + b * 0",
    "iabs": "abs(a) + b * 0",
    "iand_or_xor": "(a & b) ^ (a | 12345)",
    "iinvert": "~a + ~b",
    "ipow3": "a ** 3",
    "ishift": "(a << (b % 70)) + (a >> (b % 70))",
}

_OPS: dict[str, Op] = {}


def op(name: str, expr: str, a_int: bool = False, b_int: bool = False, result: str = "float") -> Op:
    if name not in _OPS:
        _OPS[name] = Op(f"Op_{name}", expr, a_int, b_int, result)
    return _OPS[name]


SPECIAL_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 3.0, -3.0, 1e-300, -1e-300, 5e-324, 1e300, -1e300,
                  2.0**53, 2.0**63, -(2.0**63), math.inf, -math.inf, math.nan, 0.1, 7.5, -7.5]  # fmt: skip
floats = st.one_of(
    st.sampled_from(SPECIAL_FLOATS),
    st.floats(-1e6, 1e6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-20, 20).map(lambda i: i * 0.5),
)
ints = st.one_of(
    st.integers(-50, 50),
    st.integers(I64_MIN, I64_MAX),
    st.sampled_from(
        [
            I64_MIN,
            I64_MAX,
            I64_MIN + 1,
            -1,
            0,
            1,
            2**32,
            -(2**32),
            2**62,
            -(2**62),
            3037000499,
            3037000500,
            2097151,
            2097152,
        ]
    ),
)


@OP_SETTINGS
@given(st.sampled_from(sorted(FLOAT_OPS)), floats, floats)
@example("pow", -8.0, 1.0 / 3.0)  # complex in Python: ValueError compiled
@example("pow", 0.0, -1.0)
@example("pow", 10.0, 400.0)
@example("mod", 5.0, 0.0)
@example("floordiv", -7.5, 2.0)
@example("mod", -0.0, 3.0)
@example("mod", 7.0, -0.0)
def test_float_arithmetic_like_python(name: str, a: float, b: float) -> None:
    op(name, FLOAT_OPS[name]).check(a, b, ulps=1 if name == "pow" else 0)


@OP_SETTINGS
@given(st.sampled_from(sorted(INT_RESULTS_OF_FLOATS)), floats, floats)
@example("round", 2.5, 0.0)
@example("round", -0.5, 0.0)
@example("int", math.nan, 0.0)
@example("int", math.inf, 0.0)
@example("floor", 1e300, 0.0)
def test_float_to_int_like_python(name: str, a: float, b: float) -> None:
    op(name, INT_RESULTS_OF_FLOATS[name], result="int").check(a, b)


@OP_SETTINGS
@given(st.sampled_from(sorted(INT_OPS)), ints, ints)
@example("ifloordiv", -7, 2)
@example("imod", -7, 2)
@example("imod", 7, -2)
@example("ifloordiv", I64_MIN, -1)  # 2**63: beyond 64 bits
@example("imod", I64_MIN, -1)
@example("ifloordiv", 1, 0)
@example("imul", 3037000500, 3037000500)
@example("ineg", I64_MIN, 0)
@example("iabs", I64_MIN, 0)
@example("ishift", -1, 63)
def test_int_arithmetic_like_python(name: str, a: int, b: int) -> None:
    op(name, INT_OPS[name], a_int=True, b_int=True, result="int").check(a, b)


@OP_SETTINGS
@given(ints, floats)
def test_int_float_mixing_like_python(a: int, b: float) -> None:
    """int + float converts the int to float first, in Python as compiled."""
    op("mix_add", "a + b * 1.0", a_int=True).check(a, b)
    op("mix_mul", "a * b", a_int=True).check(a, b)


# --- the known bugs, pinned by examples (the property tests above do not exercise them) ---------
@OP_SETTINGS
@given(floats)
@example(1e200)
@example(699340.8331211123)
def test_float_square_like_python(a: float) -> None:
    # compiled as a * a (correctly rounded); CPython calls libm pow, which glibc gets 1 ulp off now
    # and then (a = 699340.8331211123): the math-library bound of the tolerance policy
    op("square", "a ** 2 + b * 0.0").check(a, 0.0, ulps=1)


@OP_SETTINGS
@given(floats)
@example(1e308)
@example(1e300)
def test_float_mod_power_of_two_below_one_like_python(a: float) -> None:
    op("mod_half", "a % 0.5 + b * 0.0").check(a, 0.0)
    op("mod_tiny", "a % TINY + b * 0.0").check(a, 0.0)


@OP_SETTINGS
@given(ints, floats)
@example(2**53 + 1, 2.0**53)
def test_int_float_comparison_like_python(a: int, b: float) -> None:
    op("mix_gt", "a > b", a_int=True, result="bool").check(a, b)


@pytest.mark.xfail(
    strict=True,
    reason="known limitation (docs/jit.md): int / int beyond 2**53 raises OverflowError in compiled code; Python rounds the exact quotient",
)
@OP_SETTINGS
@given(ints, ints)
@example(5258986265376043509, 868)  # a / b = 6058739937069175.0, float(a) / float(b) = 6058739937069174.0
def test_int_true_division_like_python(a: int, b: int) -> None:
    op("idiv", "a / b", a_int=True, b_int=True).check(a, b)
