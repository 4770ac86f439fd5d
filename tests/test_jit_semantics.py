"""Compiled code keeps Python's meaning where it used to drift (issue 9, items 3, 15, 22 and 23).

* 22: signed zeros of float(round(x)) and friends, correctly rounded int / int folding, NaN signs
  of folded constants, and valid literals that were refused (-2**63 written out, 3 ** 2 ** 2, an
  int constant beyond 2**53 compared with a float).
* 23: what compiles does not depend on how many samples ran: an attribute set to 0 in __init__
  and incremented by a float in process is a float attribute from the start.
* 15: no stale compiled code: a reloaded patch whose only change is a global compiles anew; trap
  sites belong to each program (concurrent compiles attribute faults correctly); caches keyed by
  id() cannot hand a reused id a stale entry.
* 3: deep but valid code compiles (a chain of 200 helpers, a 1000-term expression); deeper code
  is refused with a JitError naming the file and line, never a RecursionError.

Node classes are written to temporary files and imported, because the JIT reads their source.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import os
import sys
import threading
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from jit_support import (
    assert_engines_match,
    compile_graph,
    perturbed_reference,
    run_both,
    same_float,
    set_value,
)

from oscen.graph import Graph, Node, StreamOutput
from oscen.jit import CraneliftJit, GraphState, JitError, JitGraph, NodeFault
from oscen.jit import kernel as k
from oscen.jit.frontend import settled
from oscen.jit.ops import Op
from oscen.jit.passes.inline import _measure, outlined
from oscen.patch import load_patch

SR = 1000.0
_COUNTER = itertools.count()

HEADER = """
import math
from oscen.graph import Node, StreamInput, StreamOutput, ValueInput
"""


@pytest.fixture(scope="module", autouse=True)
def _release_modules():
    """Drop the generated modules (and the kernels compiled from them) when this file is done, so
    their garbage is not collected in the middle of a later real-time test."""
    yield
    import gc

    for name in [n for n in sys.modules if n.startswith("oscen_semantics_case_")]:
        del sys.modules[name]
    gc.collect()  # their lowered code lives in the compilers' sessions, gone with the compilers


def load_module(tmp_path: Path, source: str) -> ModuleType:
    """Import ``source`` (after HEADER) from a file of its own, so that the JIT can read it."""
    name = f"oscen_semantics_case_{next(_COUNTER)}"
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def one_value(cls: type, inputs: dict[str, float], attr: str = "r") -> tuple[object, object]:
    """(Python's value of ``attr`` after one process() call, the compiled value)."""
    node = cls()
    for name, v in inputs.items():
        setattr(node, name, v)
    node.process(SR)
    graph = Graph(SR)
    handle = graph.add_node(cls(), "case")
    compiled, state = compile_graph(graph)
    params = state.layout.nodes[handle.id].params
    for name, v in inputs.items():
        # straight into the parameter slot: set_value refuses NaN and infinities, which these probes
        # feed on purpose (node code can still meet them, computed)
        state.bytes[params[name].value : params[name].value + 8].view(np.float64)[0] = v
    compiled.process_block(state, 1)
    got = state.scalar(handle.id, attr)[0]
    return getattr(node, attr), got


# ---------------------------------------------------------------------------------------- 22
ROUNDING = """
class Rounding(Node):
    a = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self):
        self.r = 0.0

    def process(self, sample_rate):
        self.r = float({expr})
        self.output = 0.0
"""


@pytest.mark.parametrize("expr", ["round(self.a)", "int(self.a)", "math.ceil(self.a)", "math.trunc(self.a)",
                                  "math.floor(self.a)"])  # fmt: skip
@pytest.mark.parametrize("a", [-0.3, -0.0, 0.0, -0.5, 0.49, -1.5, 2.5, -7.9])
def test_float_of_rounded_value_has_no_negative_zero(tmp_path: Path, expr: str, a: float) -> None:
    mod = load_module(tmp_path, ROUNDING.format(expr=expr))
    want, got = one_value(mod.Rounding, {"a": a})
    assert same_float(want, float(got)), f"float({expr}) with a={a!r}: Python {want!r}, compiled {got!r}"


CONSTANTS = """
BIG = 2**55 + 5
NEG_NAN = -math.nan
LIMIT = 36028797018963973  # 2**55 + 5: no float equals it


class Constants(Node):
    a = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self):
        self.r = 0.0

    def process(self, sample_rate):
        self.r = {expr}
        self.output = 0.0
"""


@pytest.mark.parametrize(
    "expr",
    [
        "BIG / 3",  # int / int: the exact quotient rounded once (double rounding gave ...326e16)
        "(BIG + 2) / 7",
        "-BIG / 3",
        "math.copysign(1.0, NEG_NAN)",  # a folded constant keeps its NaN's sign
        "math.copysign(1.0, NEG_NAN * 2.0)",
        "float(-9223372036854775808)",  # the literal -2**63 is valid
        "float(-9223372036854775808 + int(self.a == 0.0))",
        "float(3 ** 2 ** 2)",  # 3 ** (2 ** 2): a constant exponent, folded
        "float(2 ** 62 - 1 + 2 ** 62)",
        "float(LIMIT < self.a)",  # an int beyond 2**53 compared with a float: exactly, as Python
        "float(LIMIT <= self.a)",
        "float(LIMIT > self.a)",
        "float(LIMIT >= self.a)",
        "float(LIMIT == self.a)",
        "float(LIMIT != self.a)",
        "float(self.a < LIMIT)",
        "float(self.a >= -LIMIT)",
        "float(self.a == 2**60)",  # 2**60 is exactly a float: a plain comparison
    ],
)
@pytest.mark.parametrize("a", [0.0, 36028797018963968.0, 36028797018963976.0, 2.0**60, math.nan, -math.inf])
def test_constants_fold_as_python_computes_them(tmp_path: Path, expr: str, a: float) -> None:
    mod = load_module(tmp_path, CONSTANTS.format(expr=expr))
    want, got = one_value(mod.Constants, {"a": a})
    assert same_float(want, float(got)), f"{expr} with a={a!r}: Python {want!r}, compiled {got!r}"


# ---------------------------------------------------------------------------------------- 23
PHASOR = """
class Phasor(Node):
    output = StreamOutput()

    def __init__(self):
        self.phase = 0
        self.flag = False
        self.count = 0

    def process(self, sample_rate):
        self.phase += 440.0 / sample_rate
        if self.phase >= 1.0:
            self.phase -= 1.0
            self.flag = 1
        self.count += 1
        self.output = self.phase + self.flag
"""


@pytest.mark.parametrize("warm", [0, 1, 3])
def test_attribute_types_do_not_depend_on_samples_run(tmp_path: Path, warm: int) -> None:
    mod = load_module(tmp_path, PHASOR)

    def build() -> Graph:
        graph = Graph(SR)
        graph.add_node(mod.Phasor(), "phasor")
        if warm:
            graph.process_block(warm)
        return graph

    # the JIT settles the types (graph.to_ir() gives those of the current values)
    types = {s.name: s.type for s in settled(build().to_ir()).nodes[0].state}
    assert types == {"phase": "f64", "flag": "i64", "count": "i64"}
    expected, got = run_both(build, 200)  # also compares the final state
    assert_engines_match(expected, got, exact=True)
    assert np.any(expected > 0.5)
    # through JitGraph too (freeze_gc=False: a frozen collector would keep every kernel this
    # file compiles alive, and the JIT's watchdog walks all of them at each tick)
    live = JitGraph(build(), background=False, freeze_gc=False)
    assert live.wait_compiled(timeout=60.0), live.last_error
    assert_engines_match(expected, live.process_block(200), exact=True)
    assert live.mode == "compiled"
    live.close()


def test_fresh_and_warmed_graphs_compile_to_the_same_ir(tmp_path: Path) -> None:
    mod = load_module(tmp_path, PHASOR)
    fresh, warmed = Graph(SR), Graph(SR)
    fresh.add_node(mod.Phasor(), "phasor")
    warmed.add_node(mod.Phasor(), "phasor")
    warmed.process_block(1)
    a, b = settled(fresh.to_ir()), settled(warmed.to_ir())
    assert [s.type for s in a.nodes[0].state] == [s.type for s in b.nodes[0].state]
    CraneliftJit().compile(a)
    CraneliftJit().compile(b)


# ---------------------------------------------------------------------------------------- 15
PATCH = """
from oscen.graph import Graph, Node, StreamOutput

GAIN = {gain}


class Level(Node):
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = GAIN


def patch(sample_rate):
    graph = Graph(sample_rate)
    graph.add_node(Level(), "level")
    return graph
"""


def test_reloaded_patch_with_an_edited_global_compiles_anew(tmp_path: Path) -> None:
    path = tmp_path / "gain_patch.py"
    for i, gain in enumerate(["0.5", "0.8", "0.25"]):
        path.write_text(PATCH.format(gain=gain))
        os.utime(path, (1_700_000_000 + 10 * i, 1_700_000_000 + 10 * i))  # a distinct mtime: no stale .pyc
        graph = load_patch(path, SR)
        compiled, state = compile_graph(graph)
        got = compiled.process_block(state, 4)
        interpreted = load_patch(path, SR).process_block(4)
        assert list(interpreted) == [float(gain)] * 4
        assert list(got) == [float(gain)] * 4, f"GAIN = {gain}: compiled plays {got[0]}"


MUTABLE_GLOBAL = """
LEVEL = 0.5


class Level(Node):
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = LEVEL * 2.0
"""


def test_a_changed_global_is_not_served_from_the_compile_caches(tmp_path: Path) -> None:
    mod = load_module(tmp_path, MUTABLE_GLOBAL)
    for level in (0.5, 0.75, -0.0):
        mod.LEVEL = level
        graph = Graph(SR)
        graph.add_node(mod.Level(), "level")
        compiled, state = compile_graph(graph)
        assert same_float(float(compiled.process_block(state, 1)[0]), level * 2.0)


FAULTY = """
class Faulty{i}(Node):
    divisor = ValueInput(1.0)
    output = StreamOutput()

    def process(self, sample_rate):
        x = 1.0
{pad}        self.output = x / self.divisor
"""


def test_concurrent_compiles_attribute_traps_to_their_own_lines(tmp_path: Path) -> None:
    """Eight threads compile graphs whose faulting division sits on a different line in each;
    every fault names its own line (a process-wide table with a racy counter mixed them up)."""
    n = 8
    source = "".join(FAULTY.format(i=i, pad="        pass\n" * i) for i in range(n))
    mod = load_module(tmp_path, source)
    results: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                graph = Graph(SR)
                handle = graph.add_node(getattr(mod, f"Faulty{i}")(), f"faulty{i}")
                ir = graph.to_ir()
                compiled = CraneliftJit().compile(ir)
                state = GraphState.from_graph(graph, ir=ir)
                state.set_value(handle.divisor, 0.0)
                try:
                    compiled.process_block(state, 1)
                except NodeFault as fault:
                    results[i] = (fault.node, fault.location, compiled)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    lines = mod.__file__ and Path(mod.__file__).read_text().splitlines()
    for i in range(n):
        node, location, compiled = results[i]
        assert node == f"faulty{i}"
        file, _, line = location.rpartition(":")
        assert file == mod.__file__
        text = lines[int(line) - 1]
        assert "x / self.divisor" in text, f"faulty{i}: {location} is {text!r}"
        # the program's table holds this graph's sites only
        assert set(compiled.program.sites) == {0}
        assert all(s.site is None or s.site.file == mod.__file__ for s in compiled.program.sites[0])


def test_size_cache_survives_id_reuse() -> None:
    site = k.Site("f.py", 1)

    def body(n: int) -> list[k.Stmt]:
        return [k.Assign(site, k.Local(k.T.F64, "x"), k.Const(k.T.F64, 1.0)) for _ in range(n)]

    for _ in range(20):
        small = k.KFunction("h", "C.h", [], {}, body(1), None, site)
        assert _measure(small)[0] == 3
        big_body, params, local_types = body(100), [], {}
        del small  # its id is free again: the next object of that size usually takes it
        big = k.KFunction("h", "C.h", params, local_types, big_body, None, site)
        assert _measure(big)[0] == 300


def test_outlining_cache_survives_id_reuse() -> None:
    x = k.Local(k.T.F64, "x")

    def function(adds: int) -> k.Function:
        value: k.Expr = x
        for _ in range(adds):
            value = k.Prim(k.T.F64, Op.F64_ADD, [value, k.Const(k.T.F64, 1.0)])
        return k.Function("f", [("x", k.T.F64)], (k.T.F64,), {}, [k.ReturnValues(values=[value])])

    for _ in range(20):
        table = {"f": function(0)}
        assert outlined(table) == set()
        other = {"f": function(200)}
        del table
        assert outlined(other) == {"f"}, "a stale entry of another function table"
        del other


# ---------------------------------------------------------------------------------------- 3
def helper_chain(n: int) -> str:
    lines = [
        "class Chain(Node):",
        "    input = StreamInput()",
        "    output = StreamOutput()",
        "",
        "    def process(self, sample_rate):",
        "        self.output = self.h0(self.input)",
    ]
    for i in range(n):
        nxt = f"self.h{i + 1}(x * 0.999 + {i % 7}.0 * 0.001)" if i + 1 < n else "x"
        lines += ["", f"    def h{i}(self, x):", f"        return {nxt}"]
    return "\n".join(lines) + "\n"


def long_sum(n: int) -> str:
    terms = " + ".join(f"self.input * {1.0 + i / n!r}" for i in range(n))
    return f"""
class LongSum(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = {terms}
"""


def _source_graph(cls: type) -> Graph:
    from oscen.oscillators import Oscillator

    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(3.0), "osc")
    node = graph.add_node(cls(), "deep")
    graph.connect(osc.output, node.input)
    return graph


@pytest.mark.parametrize("make, cls_name", [(lambda: helper_chain(200), "Chain"), (lambda: long_sum(1000), "LongSum")],
                         ids=["200-helpers", "1000-terms"])  # fmt: skip
def test_deep_valid_code_compiles_and_equals_the_interpreter(tmp_path: Path, make, cls_name: str) -> None:
    mod = load_module(tmp_path, make())
    cls = getattr(mod, cls_name)
    limit = sys.getrecursionlimit()
    expected, got = run_both(lambda: _source_graph(cls), 64)
    assert_engines_match(expected, got)
    assert np.any(np.abs(expected) > 0.1)
    assert sys.getrecursionlimit() == limit, "the compile must put the recursion limit back"


def test_deep_valid_code_compiles_on_a_thread(tmp_path: Path) -> None:
    """JitGraph compiles on a background thread, whose stack is the thread default."""
    mod = load_module(tmp_path, helper_chain(300))
    outcome: list[object] = []

    def work() -> None:
        try:
            compiled, state = compile_graph(_source_graph(mod.Chain))
            outcome.append(compiled.process_block(state, 8))
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=120)
    assert outcome and isinstance(outcome[0], np.ndarray), outcome


def test_code_too_deep_for_the_compiler_is_a_jit_error_with_file_and_line(tmp_path: Path) -> None:
    mod = load_module(tmp_path, helper_chain(3000))
    graph = _source_graph(mod.Chain)
    with pytest.raises(JitError, match="nested too deeply") as info:
        CraneliftJit().compile(graph.to_ir())
    err = info.value
    assert err.site is not None and err.site.file == mod.__file__ and err.site.line > 0
    assert err.node == "deep"
    assert str(err).startswith(f"{mod.__file__}:{err.site.line}: deep: ")


# ---------------------------------------------------------------------------------------- 21: policy
class _LibmSine(Node):
    """A sine through ``math.sin``: compiled, the JIT's fdlibm port, which differs from CPython's
    libm by an ulp in about 2% of samples (``Oscillator`` no longer calls ``math.sin``: its
    polynomial sine is bit-exact in both engines, so it seeds no difference)."""

    output = StreamOutput()

    def __init__(self, frequency: float, amplitude: float) -> None:
        self.frequency = float(frequency)
        self.amplitude = float(amplitude)
        self._phase = 0.0

    def process(self, sample_rate):
        self.output = self.amplitude * math.sin(2.0 * math.pi * self._phase)
        phase = self._phase + self.frequency / sample_rate
        if phase >= 1.0:
            phase = phase - 1.0
        self._phase = phase


def _self_timed_delay() -> Graph:
    """A delay whose time is its own output (scaled, offset): chaotic, so a one-ulp difference
    anywhere (here: the libm sine of the source) grows to the size of the signal."""
    from oscen.delay import Delay
    from oscen.gain import Add, Gain

    graph = Graph(8000.0)
    src = graph.add_node(_LibmSine(220.0, 0.5), "src")
    delay = graph.add_node(Delay(0.01, 0.5, max_delay=0.05), "delay")
    scale = graph.add_node(Gain(0.02), "scale")
    offset = graph.add_node(Add(0.025), "offset")
    graph.connect(src.output, delay.input)
    graph.connect(delay.output, scale.input)
    graph.connect(scale.output, offset.a)
    graph.connect(offset.output, delay.delay_time)
    graph.set_output(delay.output)
    return graph


def test_policy_accepts_a_chaotic_graph_within_its_own_spread() -> None:
    n = 8000
    expected, got = run_both(_self_timed_delay, n, check_state=False)
    with pytest.raises(AssertionError, match="differ by more than"):
        assert_engines_match(expected, got)  # the plain bound cannot hold here...
    perturbed = perturbed_reference(_self_timed_delay, n)
    assert np.max(np.abs(expected - perturbed)) > 0.1  # ...because the graph itself amplifies an ulp
    assert_engines_match(expected, got, perturbed=perturbed)


def test_policy_still_catches_an_early_error_in_a_chaotic_graph() -> None:
    n = 8000
    expected, got = run_both(_self_timed_delay, n, check_state=False)
    perturbed = perturbed_reference(_self_timed_delay, n)
    wrong = got.copy()
    wrong[40] += 1e-6  # what a compiler bug looks like: a difference before the graph amplifies any
    with pytest.raises(AssertionError, match="sample 40"):
        assert_engines_match(expected, wrong, perturbed=perturbed)


def test_policy_exact_mode_tells_signed_zeros_and_ulps_apart() -> None:
    assert_engines_match(np.array([0.0, math.nan, 1.0]), np.array([0.0, math.nan, 1.0]), exact=True)
    with pytest.raises(AssertionError, match="bit for bit"):
        assert_engines_match(np.array([0.0]), np.array([-0.0]), exact=True)
    with pytest.raises(AssertionError, match="bit for bit"):
        assert_engines_match(np.array([1.0]), np.array([math.nextafter(1.0, 2.0)]), exact=True)
    assert_engines_match(np.array([1e6]), np.array([1e6 + 1e-4]))  # 1e-9 relative
    with pytest.raises(AssertionError):
        assert_engines_match(np.array([1.0]), np.array([1.0 + 1e-8]))


# ---------------------------------------------------------------------------------------- issue 14
HELPERS = """
DRIVE = 3.0


def clamp(x, lo=-1.0, hi=1.0):
    return lo if x < lo else (hi if x > hi else x)


def soft(x, *, drive=DRIVE):
    return math.tanh(x * drive) / math.tanh(drive)


def count_calls(node_counter):
    return node_counter + 1


class Helpers(Node):
    input = StreamInput()
    output = StreamOutput()

    def __init__(self):
        self.calls = 0
        self.trace = 0

    @staticmethod
    def mix(a, b, amount=0.5):
        return a + (b - a) * amount

    def tick(self, code):
        self.trace = self.trace * 10 + code  # records the order the arguments ran in
        return float(code)

    def pair(self, first, second):
        return first * 2.0 + second

    def process(self, sample_rate):
        x = self.input * 1.7
        y = clamp(x) + clamp(x, hi=0.5) + clamp(x, -0.25, 0.25) + clamp(hi=0.75, x=x)
        z = soft(self.input) + soft(self.input, drive=1.5)
        w = self.mix(y, z) + Helpers.mix(y, z, 0.25) + self.mix(b=z, a=y, amount=0.75)
        self.calls = count_calls(self.calls)
        self.trace = 0
        order = self.pair(second=self.tick(1), first=self.tick(2))  # keywords run left to right
        self.output = w + order * 0.001
"""


def _helper_graph(mod: ModuleType) -> Graph:
    from oscen.oscillators import Oscillator

    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(7.0, 1.0), "osc")
    node = graph.add_node(mod.Helpers(), "helpers")
    graph.connect(osc.output, node.input)
    return graph


def test_module_functions_static_methods_defaults_and_keywords_compile(tmp_path: Path) -> None:
    mod = load_module(tmp_path, HELPERS)
    expected, got = run_both(lambda: _helper_graph(mod), 300)  # the final state too (calls, trace)
    assert_engines_match(expected, got)
    graph = _helper_graph(mod)
    graph.process_block(1)
    assert graph.nodes[1].node.trace == 12, "Python ran tick(1) before tick(2)"
    compiled, state = compile_graph(_helper_graph(mod))
    compiled.process_block(state, 1)
    assert int(state.scalar(1, "trace")[0]) == 12
    assert int(state.scalar(1, "calls")[0]) == 1


REFUSED_CALLS = """
def helper(x, y=1.0):
    return x * y


def needs_self(x):
    return self.input * x  # noqa: F821


def text_default(x, label="gain"):
    return x


def variadic(*values):
    return 0.0


class Refused(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = {call}
"""


@pytest.mark.parametrize(
    "call, words",
    [
        ("helper(self.input, z=2.0)", ["helper()", "unexpected keyword argument 'z'"]),
        ("helper()", ["helper()", "missing required argument 'x'"]),
        ("helper(self.input, 1.0, 2.0)", ["takes 2 positional arguments but 3 were given"]),
        ("helper(self.input, x=2.0)", ["multiple values for argument 'x'"]),
        ("needs_self(2.0)", ["needs_self() is not a method", "`self` is not defined"]),
        ("text_default(self.input)", ["default value of 'label'", "str", "numbers"]),
        ("variadic(self.input)", ["variadic()", "*args"]),
    ],
)
def test_refused_calls_say_why(tmp_path: Path, call: str, words: list[str]) -> None:
    mod = load_module(tmp_path, REFUSED_CALLS.format(call=call))
    graph = Graph(SR)
    graph.add_node(mod.Refused(), "refused")
    with pytest.raises(JitError) as info:
        CraneliftJit().compile(graph.to_ir())
    message = str(info.value)
    assert message.startswith(mod.__file__ + ":"), message
    for w in words:
        assert w in message, message


REFUSED_CONSTRUCTS = """
import numpy as np

WEIGHTS = [0.25, 0.5]


class Refused(Node):
    input = StreamInput()
    output = StreamOutput()

    def __init__(self):
        self.table = [0.1, 0.2, 0.3]
        self.m = np.eye(2)

    def process(self, sample_rate):
{body}
"""


@pytest.mark.parametrize(
    "body, words",
    [
        (
            "        values = [1.0, 2.0]\n        self.output = values[0]",
            ["a list of numbers", "use a numpy array"],
        ),
        (
            "        pair = (1.0, 2.0)\n        self.output = pair[0]",
            ["a tuple of numbers", "use a numpy array"],
        ),
        ("        self.output = self.table[0]", ["self.table is a list of numbers", "use a numpy array"]),
        ("        self.output = self.input @ self.input", ["the operator @"]),
        (
            "        self.output = 1.0 if self.input is self.input else 0.0",
            ["`self.input is self.input`", "None only"],
        ),
        ("        self.output = 1.0 if self.input in (1.0, 2.0) else 0.0", ["the comparison `in`"]),
        (
            "        match self.input:\n            case _:\n                self.output = 1.0",
            ["the `match` statement"],
        ),
        ("        self.output = (x := self.input)", ["the walrus operator"]),
    ],
    ids=["list", "tuple", "list-attribute", "matmul", "is", "in", "match", "walrus"],
)
def test_refusals_speak_python_and_say_what_to_use(tmp_path: Path, body: str, words: list[str]) -> None:
    from test_jit_errors import assert_no_syntax_tree_names

    mod = load_module(tmp_path, REFUSED_CONSTRUCTS.format(body=body))
    graph = Graph(SR)
    graph.add_node(mod.Refused(), "refused")
    with pytest.raises(JitError) as info:
        CraneliftJit().compile(graph.to_ir())
    message = str(info.value)
    assert message.startswith(mod.__file__ + ":"), message
    for w in words:
        assert w in message, message
    assert_no_syntax_tree_names(message)


def test_the_examples_in_docs_jit_md_run(tmp_path: Path) -> None:
    """Every ```python block of docs/jit.md, in order, as one module (the JIT reads its source)."""
    import re

    text = (Path(__file__).parent.parent / "docs" / "jit.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    path = tmp_path / "jit_md_examples.py"
    path.write_text("\n\n".join(blocks))
    spec = importlib.util.spec_from_file_location("jit_md_examples", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["jit_md_examples"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop("jit_md_examples", None)


OPTIONAL = """
FALLBACK = None
LIMIT = 0.5


class Optional(Node):
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, limit=None, scale=None):
        self.limit = limit  # None: no limit
        self.scale = scale
        self.clipped = 0

    def process(self, sample_rate):
        x = self.input
        if self.limit is not None and x > self.limit:
            x = self.limit
            self.clipped += 1
        if self.scale is None:
            x = x * 0.5
        if FALLBACK is None and LIMIT is not None:
            x = x + 0.125
        self.output = x
"""


@pytest.mark.parametrize("limit, scale", [(None, None), (0.25, None), (0.25, 2.0), (None, 1.0)])
def test_is_none_on_optional_attributes_and_globals(tmp_path: Path, limit, scale) -> None:
    from oscen.oscillators import Oscillator

    mod = load_module(tmp_path, OPTIONAL)

    def build() -> Graph:
        graph = Graph(SR)
        osc = graph.add_node(Oscillator.sine(5.0, 1.0), "osc")
        node = graph.add_node(mod.Optional(limit, scale), "optional")
        graph.connect(osc.output, node.input)
        return graph

    expected, got = run_both(build, 400)  # compares the final state (clipped) too
    assert_engines_match(expected, got)  # the sine source is within an ulp, not exact


TABLES = """
import numpy as np

STEPS = (0.0, 0.25, -0.5, 1, True)  # mixed numbers: compiled as floats
WEIGHTS = [0.5, 0.25, 0.125]
np_pi = np.pi


class Tables(Node):
    input = StreamInput()
    pick = ValueInput(0.0)
    output = StreamOutput()
    SCALE = (1.0, 2.0, 4.0)

    def __init__(self):
        self.i = 0

    def process(self, sample_rate):
        self.i += 1
        j = self.i % len(STEPS)
        acc = STEPS[j] + STEPS[-1 - j] + self.SCALE[j % 3] + (10, 20, 30)[j % 3] * 0.01
        for w in WEIGHTS:
            if w < 0.2:
                break
            acc += w * self.input
        total = 0
        for s in self.SCALE:
            if s == 2.0:
                continue
            total += int(s)
        self.output = acc + total + STEPS[int(self.pick)]
"""


def test_constant_tuples_and_lists_index_iterate_and_measure(tmp_path: Path) -> None:
    from oscen.oscillators import Oscillator

    mod = load_module(tmp_path, TABLES)

    def build() -> Graph:
        graph = Graph(SR)
        osc = graph.add_node(Oscillator.saw(5.0, 1.0), "osc")
        node = graph.add_node(mod.Tables(), "tables")
        graph.connect(osc.output, node.input)
        return graph

    expected, got = run_both(
        build, 300, [set_value(100, "tables.pick", 4.0), set_value(200, "tables.pick", -5.0)]
    )
    assert_engines_match(expected, got)
    graph = build()
    compiled, state = compile_graph(graph)
    state.set_value(graph.nodes[1].pick, 5.0)  # STEPS[5]: IndexError, as in Python
    with pytest.raises(IndexError, match="constant tuple of 5"):
        compiled.process_block(state, 1)


TUPLES = """
def polar(x, y):
    if x == 0.0 and y == 0.0:
        return 0, 0  # ints on one path, floats on the other: floats, as Python's values compare
    return math.hypot(x, y), math.atan2(y, x)


class Tuples(Node):
    input = StreamInput()
    output = StreamOutput()

    def __init__(self):
        self.n = 0
        self.peak = 0.0

    def step(self, x):
        self.n += 1  # side effects happen once per call
        if x > self.peak:
            self.peak = x
            return self.peak, True
        return x * 0.5, False

    def process(self, sample_rate):
        value, rising = self.step(self.input)
        r, phi = polar(self.input, 0.5)
        self.output, flag = value + r + phi, rising
        if flag:
            self.output += 1.0
"""


def test_helpers_returning_tuples_unpack(tmp_path: Path) -> None:
    from oscen.oscillators import Oscillator

    mod = load_module(tmp_path, TUPLES)

    def build() -> Graph:
        graph = Graph(SR)
        osc = graph.add_node(Oscillator.saw(3.0, 1.0), "osc")
        node = graph.add_node(mod.Tuples(), "tuples")
        graph.connect(osc.output, node.input)
        return graph

    expected, got = run_both(build, 500)  # final state too: n counts each call once
    assert_engines_match(expected, got)
    assert np.any(expected > 1.0)


@pytest.mark.parametrize(
    "body, words",
    [
        ("        self.output = self.pair()", ["self.pair() returns a tuple", "a, b = self.pair(...)"]),
        ("        a, b, c = self.pair()\n        self.output = a", ["unpacking 2 values", "into 3 names"]),
        ("        self.output = self.mixed()", ["a tuple on some paths and a single value on others"]),
    ],
    ids=["as-value", "length", "mixed"],
)
def test_tuple_returns_refused_where_python_would_differ(tmp_path: Path, body: str, words: list[str]) -> None:
    source = f"""
class Refused(Node):
    input = StreamInput()
    output = StreamOutput()

    def pair(self):
        return 1.0, 2.0

    def mixed(self):
        if self.input > 0.0:
            return 1.0
        return 1.0, 2.0

    def process(self, sample_rate):
{body}
"""
    mod = load_module(tmp_path, source)
    graph = Graph(SR)
    graph.add_node(mod.Refused(), "refused")
    with pytest.raises(JitError) as info:
        CraneliftJit().compile(graph.to_ir())
    for w in words:
        assert w in str(info.value), str(info.value)


GRID = """
import numpy as np


class Grid(Node):
    input = StreamInput()
    row = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self):
        self.grid = np.arange(12.0).reshape(3, 4)
        self.hits = np.zeros((2, 3), dtype=np.int64)
        self.n = 0

    def process(self, sample_rate):
        self.n += 1
        r = self.n % len(self.grid)
        c = self.n % 4
        self.grid[r, c] = self.grid[r, c] * 0.5 + self.input
        self.grid[-1][-1] += 0.25
        self.hits[self.n % 2, -(self.n % 3) - 1] += 1
        self.output = self.grid[r][c] + self.grid[int(self.row), -4] + self.hits[1, 2]
"""


def test_fixed_size_2d_arrays(tmp_path: Path) -> None:
    from oscen.oscillators import Oscillator

    mod = load_module(tmp_path, GRID)

    def build() -> Graph:
        graph = Graph(SR)
        osc = graph.add_node(Oscillator.saw(4.0, 1.0), "osc")
        node = graph.add_node(mod.Grid(), "grid")
        graph.connect(osc.output, node.input)
        return graph

    actions = [set_value(50, "grid.row", 2.0), set_value(120, "grid.row", -3.0)]
    expected, got = run_both(build, 300, actions)  # the final 2-D arrays are compared too
    assert_engines_match(expected, got)
    graph = build()
    compiled, state = compile_graph(graph)
    assert state.array(1, "grid").shape == (3, 4)
    state.set_value(graph.nodes[1].row, 3.0)  # row 3 of 3: IndexError, as numpy raises
    with pytest.raises(IndexError):
        compiled.process_block(state, 1)


def test_concurrent_compiles_of_one_variant_share_its_lowering_safely(tmp_path: Path) -> None:
    """Threads compiling graphs of the same class at once (one shared, cached lowering)."""
    mod = load_module(tmp_path, helper_chain(40))
    errors: list[BaseException] = []
    outputs: list[np.ndarray] = []

    def work() -> None:
        try:
            for _ in range(3):
                compiled, state = compile_graph(_source_graph(mod.Chain))
                outputs.append(compiled.process_block(state, 16))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    assert len(outputs) == 18 and all(np.array_equal(o, outputs[0]) for o in outputs)
