"""The frontend's structure: the visitor's error locations, the typing pass, the settled IR.

* Every error raised while lowering names the file:line of the innermost construct being lowered,
  also when it was raised without one (a helper whose source cannot be read), and a bug of the
  compiler (an exception that is no JitError) is reported as an internal JitError with that
  location, chained to the original.
* The typing pass gives attributes and locals the join of every value assigned to them, also when
  the wider assignment comes later (in a helper, in a handler, later in a loop), and the lowering
  uses exactly those types (the kernel IR is checked, and the engines against each other).
* ``graph.to_ir()`` gives the types of the current values; the JIT settles them itself, so a state
  made from a graph fits the kernel compiled from it whether or not the graph has run.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from jit_support import assert_engines_match, run_both

from oscen.graph import Graph
from oscen.jit import CraneliftJit, GraphState, JitError
from oscen.jit import kernel as k
from oscen.jit.frontend import NodeLowering, attribute_infos, semantics, settled

SR = 1000.0
_COUNTER = itertools.count()
HEADER = """
import math
from oscen.graph import EventInput, Node, StreamInput, StreamOutput, ValueInput
"""


@pytest.fixture(autouse=True)
def _release_modules() -> Iterator[None]:
    yield
    for name in [n for n in sys.modules if n.startswith("oscen_frontend_case_")]:
        del sys.modules[name]


def load_module(tmp_path: Path, source: str) -> ModuleType:
    """Import ``source`` (after HEADER) from a file of its own, so that the JIT can read it."""
    name = f"oscen_frontend_case_{next(_COUNTER)}"
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def line_of(module: ModuleType, text: str) -> int:
    """The line of ``module``'s file that holds ``text`` (exactly one)."""
    lines = [i for i, line in enumerate(Path(module.__file__).read_text().splitlines(), 1) if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


def one_node_graph(cls: type, label: str = "n") -> Graph:
    graph = Graph(SR)
    graph.add_node(cls(), label)
    return graph


# ---------------------------------------------------------------------------------------- locations
SOURCELESS = """
class Caller(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = self.shape(self.input)

    def shape(self, x):
        y = x * 0.5
        return 1.0 + (y
                      - helper(y))  # the call
"""


def test_an_error_raised_without_a_site_gets_the_innermost_construct_s(tmp_path: Path) -> None:
    """``helper`` comes from exec'd code, whose source cannot be read: that error is raised with no
    site; the visitor gives it the line of the call (the innermost node being lowered), which is
    neither the line of the statement nor that of the method."""
    mod = load_module(tmp_path, SOURCELESS)
    namespace: dict[str, object] = {}
    exec("def helper(v):\n    return v * v\n", namespace)  # noqa: S102 - no file: no source
    mod.helper = namespace["helper"]
    with pytest.raises(JitError, match="cannot read the source of helper") as info:
        CraneliftJit().compile(one_node_graph(mod.Caller).to_ir())
    err = info.value
    line = line_of(mod, "# the call")
    assert err.site is not None and (err.site.file, err.site.line) == (mod.__file__, line)
    assert str(err).startswith(f"{mod.__file__}:{line}: n: cannot read the source of helper")


NESTED = """
class Nested(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = self.shape(self.input)

    def shape(self, x):
        return abs(x + min(x,
                           x @ x))  # the construct
"""


def test_an_unsupported_construct_deep_in_a_helper_names_its_own_line(tmp_path: Path) -> None:
    mod = load_module(tmp_path, NESTED)
    with pytest.raises(JitError, match=r"@ \(matrix multiplication\) is not supported") as info:
        CraneliftJit().compile(one_node_graph(mod.Nested).to_ir())
    line = line_of(mod, "# the construct")
    assert info.value.site is not None and info.value.site.line == line
    assert str(info.value).startswith(f"{mod.__file__}:{line}: n: the operator @")


FOLDED = """
class Folded(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = (self.input
                       + 2 * 3)  # folded
"""


def test_an_internal_exception_becomes_a_located_jit_error(tmp_path: Path, monkeypatch) -> None:
    """A bug of the compiler (here: folding raises) is an internal JitError at the innermost
    construct (``2 * 3``, on its own line, not the statement's), chained to the exception."""
    mod = load_module(tmp_path, FOLDED)

    def broken(op: str, a: int, b: int) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(semantics, "fold_int", broken)
    with pytest.raises(JitError, match="internal error of the compiler") as info:
        CraneliftJit().compile(one_node_graph(mod.Folded).to_ir())
    err = info.value
    line = line_of(mod, "# folded")
    assert err.site is not None and (err.site.file, err.site.line) == (mod.__file__, line)
    assert "`2 * 3` (BinOp)" in str(err) and "ZeroDivisionError: a bug" in str(err)
    assert isinstance(err.__cause__, ZeroDivisionError)


# ---------------------------------------------------------------------------------------- typing
WIDENED = """
class Widened(Node):
    gate = EventInput()
    output = StreamOutput()

    def __init__(self):
        self.level = 0          # an int until step() assigns it a float
        self.count = False      # a bool until the handler assigns it an int
        self.steps = 0

    def process(self, sample_rate):
        n = self.step()
        self.output = self.level + self.count + n

    def step(self):
        acc = 0                  # an int until later in the loop
        for i in range(3):
            if i > 0:
                acc = acc * 0.5  # ...here: acc is a float throughout
            acc += i
        self.steps += 1
        if self.steps > 2:
            self.level = self.level * 0.5 + acc
        return self.steps

    def on_gate(self, value):
        self.count = self.count + 2
"""


def _assignments(stmts: list[k.Stmt]) -> Iterator[k.Assign]:
    for s in stmts:
        if isinstance(s, k.Assign):
            yield s
        for child in ("body", "orelse"):
            yield from _assignments(getattr(s, child, []))


def test_the_typing_pass_widens_by_later_assignments_in_helpers_and_handlers(tmp_path: Path) -> None:
    mod = load_module(tmp_path, WIDENED)

    def build() -> Graph:
        graph = Graph(SR)
        node = graph.add_node(mod.Widened(), "w")
        graph.queue_event(node.gate, 5)
        return graph

    fresh = build().to_ir()
    assert {s.name: s.type for s in fresh.nodes[0].state} == {"level": "i64", "count": "bool", "steps": "i64"}
    ir = settled(fresh)
    assert {s.name: s.type for s in ir.nodes[0].state} == {"level": "f64", "count": "i64", "steps": "i64"}

    # the lowering uses those types: attribute stores and the local widened later in its loop
    node = ir.nodes[0]
    attrs = attribute_infos(
        [(s.name, s.type, s.length, s.cols) for s in node.state],
        [(e.name, e.kind, e.direction) for e in node.endpoints],
    )
    low = NodeLowering(mod.Widened, attrs, SR, "w", node.unsupported, node.constants)
    process = low.process()
    (step,) = process.calls
    assert step.locals["acc"] == k.T.F64 and step.locals["i"] == k.T.I64 and step.returns == k.T.I64
    stored = {a.target.name: a.target.type for a in _assignments(step.body) if isinstance(a.target, k.Attr)}
    assert stored == {"steps": k.T.I64, "level": k.T.F64}
    acc_stores = [
        a for a in _assignments(step.body) if isinstance(a.target, k.Local) and a.target.name == "acc"
    ]
    assert acc_stores and all(a.target.type == k.T.F64 for a in acc_stores)
    handler = low.handler("gate", 1)
    assert [a.target for a in _assignments(handler.body)] == [k.Attr(k.T.I64, "count")]

    expected, got = run_both(build, 64)  # also compares the final state
    assert_engines_match(expected, got, exact=True)
    assert expected[-1] != expected[0]


def test_a_typing_disagreement_is_an_internal_error_not_wrong_code(tmp_path: Path, monkeypatch) -> None:
    """The lowering checks what it assigns against the typing pass: a typing pass that got a local
    wrong (here: made to forget the later, wider assignment) is refused, never compiled."""
    from oscen.jit.frontend import typing as typing_pass

    mod = load_module(tmp_path, WIDENED)
    real = typing_pass.FunctionTyping.run

    def forgetful(self):  # type: ignore[no-untyped-def]
        got = real(self)
        if "acc" in got.locals:
            return typing_pass.FunctionTypes({**got.locals, "acc": k.T.I64}, got.returns, got.tuple_returns)
        return got

    monkeypatch.setattr(typing_pass.FunctionTyping, "run", forgetful)
    with pytest.raises(
        JitError, match=r"typing pass and the lowering of step\(\) disagree on the types of acc"
    ):
        CraneliftJit().compile(one_node_graph(mod.Widened, "w").to_ir())


# ---------------------------------------------------------------------------------------- settled IR
PHASOR = """
class Phasor(Node):
    output = StreamOutput()

    def __init__(self):
        self.phase = 0

    def process(self, sample_rate):
        self.phase += 0.25
        self.output = self.phase
"""


@pytest.mark.parametrize("warm", [0, 2])
def test_a_state_from_a_graph_fits_the_kernel_compiled_from_it(tmp_path: Path, warm: int) -> None:
    mod = load_module(tmp_path, PHASOR)
    graph = one_node_graph(mod.Phasor, "p")
    graph.process_block(warm)
    raw = graph.to_ir()
    assert not raw.settled and raw.nodes[0].state[0].type == ("i64" if warm == 0 else "f64")
    compiled = CraneliftJit().compile(raw)
    state = GraphState.from_graph(graph)
    assert compiled.ir.settled and compiled.ir.nodes[0].state[0].type == "f64"
    assert state.key == compiled.key == settled(raw).key()
    assert settled(compiled.ir) is compiled.ir and settled(raw) is settled(raw)
    out = compiled.process_block(state, 4)
    assert np.array_equal(np.ravel(out), 0.25 * np.arange(warm + 1, warm + 5))


def test_the_graph_layer_does_not_import_the_jit() -> None:
    """``graph.to_ir()`` gives the raw IR: nothing in oscen/graph imports oscen.jit (no import
    upwards), not even inside a function."""
    root = Path(__file__).resolve().parents[1] / "oscen" / "graph"
    offenders = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.name}:{node.lineno}" for n in names if n.startswith(("..jit", "oscen.jit"))]
    assert not offenders, offenders


def _parse_in_threads(parse, seconds: float = 1.5) -> list[BaseException]:
    """Four threads parsing while garbage collections run a Python callback (a thread switch in
    the middle of a parse): the errors they met."""
    import gc
    import sys
    import threading
    import time

    text = "\n".join(f"def f{i}(x):\n    return " + "+".join(["(x * 2)"] * 40) for i in range(20))
    stop = threading.Event()
    errors: list[BaseException] = []

    def switch(phase: str, info: dict) -> None:
        time.sleep(0)

    def parser() -> None:
        while not stop.is_set():
            try:
                parse(text)
            except SystemError as exc:
                errors.append(exc)
                stop.set()

    threshold, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.callbacks.append(switch)
    gc.set_threshold(20, 2, 2)
    sys.setswitchinterval(1e-6)
    threads = [threading.Thread(target=parser) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        stop.wait(seconds)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        gc.callbacks.remove(switch)
        gc.set_threshold(*threshold)
        sys.setswitchinterval(interval)
    return errors


def test_node_sources_parse_safely_on_several_threads() -> None:
    """Regression: concurrent compiles failed now and then with "SystemError: AST constructor
    recursion depth mismatch" (CPython 3.11 shares the AST converter's recursion counter between
    threads). The frontend parses one thread at a time."""
    from oscen.graph.ir import parse_python

    assert _parse_in_threads(parse_python) == []
