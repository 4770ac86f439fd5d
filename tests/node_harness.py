"""Helpers for node unit tests.

* ``run``/``run1``: run a single node outside any graph, the way the interpreted graph does. Per
  sample: deliver the events due at this sample (``node.on_<name>(*fields)``), set the inputs, call
  ``node.process(sample_rate)``, collect the outputs.
* ``assert_compilable``: a static check that the methods the JIT compiles stay in the compilable
  subset (a conservative reading of it: no augmented assignment, no chained comparisons, no
  docstrings in compiled methods), and that running the node changes no attribute's type.
* ``assert_jit_matches``: the node compiled by the JIT, in a graph, against the interpreted graph.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from oscen.graph.endpoints import Direction, Kind
from oscen.graph.node import Node

SR = 44100.0

Signal = float | Sequence[float] | np.ndarray


def run(
    node: Node,
    n: int,
    sample_rate: float = SR,
    inputs: Mapping[str, Signal] | None = None,
    outputs: Sequence[str] = ("output",),
    events: Iterable[tuple[int, str, tuple[float, ...]]] = (),
) -> dict[str, np.ndarray]:
    """Run ``node`` for ``n`` samples; returns ``{output name: array of n floats}``.

    inputs: endpoint name -> array (one value per sample, at least n long) or a constant.
    events: (sample index, event input name, fields) triples, delivered before that sample's process.
    """
    inputs = dict(inputs or {})
    arrays: dict[str, np.ndarray] = {}
    for name, signal in inputs.items():
        if np.ndim(signal) == 0:
            setattr(node, name, float(signal))  # constant: set once
        else:
            a = np.asarray(signal, dtype=np.float64)
            if len(a) < n:
                raise ValueError(f"input {name!r} has {len(a)} samples, need {n}")
            arrays[name] = a
    due: dict[int, list[tuple[str, tuple[float, ...]]]] = {}
    for index, name, fields in events:
        due.setdefault(index, []).append((name, tuple(float(f) for f in fields)))
    streams = [(name, a.tolist()) for name, a in arrays.items()]  # python floats, like the graph
    result = {name: np.empty(n) for name in outputs}
    collected = [(name, result[name]) for name in outputs]
    for i in range(n):
        for name, fields in due.get(i, ()):
            getattr(node, f"on_{name}")(*fields)
        for name, values in streams:
            setattr(node, name, values[i])
        node.process(sample_rate)
        for name, out in collected:
            out[i] = getattr(node, name)
    return result


def run1(node: Node, n: int, sample_rate: float = SR, **inputs: Signal) -> np.ndarray:
    """Run ``node`` for ``n`` samples and return its ``output``; keyword arguments are inputs."""
    return run(node, n, sample_rate, inputs)["output"]


def impulse(n: int, amplitude: float = 1.0) -> np.ndarray:
    x = np.zeros(n)
    x[0] = amplitude
    return x


def magnitude_db(h: np.ndarray) -> np.ndarray:
    return 20.0 * np.log10(np.maximum(np.abs(h), 1e-300))


# ---------------------------------------------------------------------------------------------
# The compilable subset: a static check of the methods the JIT compiles, and of the state they use.

_ALLOWED_BUILTINS = {"min", "max", "abs", "int", "float", "round", "len", "range", "bool"}
_ALLOWED_NODES = (
    ast.FunctionDef, ast.arguments, ast.arg, ast.Return, ast.Assign, ast.If, ast.While, ast.For,
    ast.Break, ast.Continue, ast.Pass, ast.Expr, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare,
    ast.IfExp, ast.Call, ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.Load, ast.Store,
    ast.operator, ast.boolop, ast.unaryop, ast.cmpop,
)  # fmt: skip
_STATE_TYPES = (float, int, bool)


def compiled_methods(cls: type) -> dict[str, Any]:
    """The methods the JIT compiles for a node class: process, the on_<event> handlers, and every
    method they reach through ``self.<name>(...)`` calls (resolved through the class hierarchy)."""
    roots = ["process"] + [f"on_{name}" for name, spec in cls._endpoints.items() if spec.kind is Kind.EVENT
                           and spec.direction is Direction.INPUT]  # fmt: skip
    found: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        func = getattr(cls, name)
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        found[name] = (func, tree.body[0])
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "self"
            ):
                todo.append(node.func.attr)
    return found


def subset_violations(node_obj: Node) -> list[str]:
    """Everything in a node's compiled methods and state outside the compilable subset (empty: fine)."""
    cls = type(node_obj)
    problems: list[str] = []
    for name, (func, fdef) in compiled_methods(cls).items():
        where = f"{cls.__name__}.{name}"
        if fdef.decorator_list:
            problems.append(f"{where}: decorated")
        if fdef.args.vararg or fdef.args.kwarg or fdef.args.kwonlyargs or fdef.args.defaults:
            problems.append(f"{where}: only plain positional parameters")
        body_nodes = [n for stmt in fdef.body for n in ast.walk(stmt)]
        # a helper's tuple (docs/jit.md, Helpers): `return a, b` and `a, b = self.helper(...)`
        tuples = {
            id(n.value) for n in body_nodes if isinstance(n, ast.Return) and isinstance(n.value, ast.Tuple)
        }
        tuples |= {
            id(n.targets[0])
            for n in body_nodes
            if isinstance(n, ast.Assign)
            and len(n.targets) == 1
            and isinstance(n.targets[0], ast.Tuple)
            and all(isinstance(t, ast.Name) for t in n.targets[0].elts)
            and isinstance(n.value, ast.Call)
            and isinstance(n.value.func, ast.Attribute)
            and isinstance(n.value.func.value, ast.Name)
            and n.value.func.value.id == "self"
        }
        for n in body_nodes:
            if isinstance(n, ast.Tuple) and id(n) in tuples:
                continue
            if not isinstance(n, _ALLOWED_NODES):
                problems.append(f"{where}: {type(n).__name__} at line {getattr(n, 'lineno', '?')}")
            elif isinstance(n, ast.Constant) and not (n.value is None or type(n.value) in _STATE_TYPES):
                problems.append(f"{where}: constant {n.value!r}")
            elif isinstance(n, ast.Compare) and len(n.ops) != 1:
                problems.append(f"{where}: chained comparison at line {n.lineno}")
            elif isinstance(n, ast.Assign) and (
                len(n.targets) != 1
                or not (
                    isinstance(n.targets[0], (ast.Name, ast.Attribute, ast.Subscript))
                    or id(n.targets[0]) in tuples
                )
            ):
                problems.append(f"{where}: assignment to several or unpacked targets at line {n.lineno}")
            elif isinstance(n, ast.Call):
                if n.keywords:
                    problems.append(f"{where}: keyword arguments at line {n.lineno}")
                f = n.func
                ok = (
                    (isinstance(f, ast.Name) and f.id in _ALLOWED_BUILTINS)
                    or (
                        isinstance(f, ast.Attribute)
                        and isinstance(f.value, ast.Name)
                        and f.value.id in ("math", "self")
                    )
                    or (isinstance(f, ast.Attribute) and f.attr == "emit")
                )
                if not ok:
                    problems.append(f"{where}: call of {ast.unparse(f)} at line {n.lineno}")
            elif isinstance(n, ast.Name) and n.id not in ("self",) and isinstance(n.ctx, ast.Load):
                local = any(
                    isinstance(m, (ast.Assign, ast.For)) and n.id in {t.id for t in ast.walk(m.targets[0] if isinstance(m, ast.Assign) else m.target) if isinstance(t, ast.Name)}
                    for m in body_nodes
                ) or n.id in {a.arg for a in fdef.args.args}  # fmt: skip
                if local or n.id in _ALLOWED_BUILTINS or n.id == "math":
                    continue
                value = func.__globals__.get(n.id, None)
                if type(value) not in (int, float):
                    problems.append(f"{where}: global {n.id} is not a numeric constant")
            elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self":
                if callable(getattr(cls, n.attr, None)):
                    continue  # a method (checked on its own)
                if n.attr not in node_obj.__dict__:
                    problems.append(f"{where}: self.{n.attr} is not set in __init__")
                    continue
                value = node_obj.__dict__[n.attr]
                if isinstance(value, np.ndarray):
                    if value.ndim != 1 or value.dtype not in (np.float64, np.int64):
                        problems.append(
                            f"{where}: self.{n.attr} is a {value.dtype} array of {value.ndim} dims"
                        )
                elif type(value) not in _STATE_TYPES and type(value).__name__ != "Emitter":
                    problems.append(f"{where}: self.{n.attr} is a {type(value).__name__}")
        if ast.get_docstring(fdef) is not None:
            problems.append(f"{where}: docstring (a string constant in compiled code)")
    return problems


def state_types(node_obj: Node) -> dict[str, type]:
    """The exact types of a node's attributes: compared before and after running, they must not change
    (a float attribute that became a numpy float64, say, would be a different type to the JIT)."""
    return {k: type(v) for k, v in node_obj.__dict__.items()}


def assert_compilable(
    node_obj: Node,
    n: int = 300,
    inputs: Mapping[str, Signal] | None = None,
    events: Iterable[tuple[int, str, tuple[float, ...]]] = (),
) -> None:
    """The node's compiled methods stay in the subset, and running it changes no attribute's type."""
    problems = subset_violations(node_obj)
    assert not problems, "\n".join(problems)
    before = state_types(node_obj)
    run(node_obj, n, inputs=inputs, outputs=(), events=events)
    after = state_types(node_obj)
    changed = {k: (before[k].__name__, after[k].__name__) for k in before if before[k] is not after[k]}
    assert not changed, f"attribute types changed while running: {changed}"
    assert set(after) == set(before), f"attributes created while running: {set(after) - set(before)}"


def assert_jit_matches(
    make: Callable[[], Node],
    n: int = 4000,
    noise_into: Sequence[str] = ("input",),
    outputs: Sequence[str] = ("output",),
    events: Iterable[tuple[int, str, float]] = (),
    sample_rate: float = SR,
    atol: float = 1e-9,
    exact: bool = False,
) -> None:
    """Compile a graph holding the node (fed white noise on ``noise_into``) and check the machine
    code's output against the interpreted graph's, sample by sample: within ``atol``, or with
    ``exact`` bit for bit (the policy of docs/jit.md for float code without math-library calls)."""
    jit = pytest.importorskip("oscen.jit")
    from oscen.graph.graph import Graph
    from oscen.noise import Noise

    def build() -> Graph:
        graph = Graph(sample_rate)
        handle = graph.add_node(make())
        source = graph.add_node(Noise.white(0.5, seed=11))
        for name in noise_into:
            graph.connect(source.output, getattr(handle, name))
        for frame, name, payload in events:
            graph.queue_event(getattr(handle, name), frame, payload)
        graph.set_output(*[getattr(handle, name) for name in outputs])
        return graph

    interpreted = build().process_block(n)
    graph = build()
    compiled = jit.CraneliftJit().compile(graph.to_ir())
    machine = compiled.process_block(jit.GraphState.from_graph(graph), n)
    from jit_support import assert_engines_match, reference_engine_on, reference_samples

    if exact:
        assert_engines_match(interpreted, machine, exact=True)
    else:
        np.testing.assert_allclose(machine, interpreted, rtol=0, atol=atol)
    assert np.any(interpreted != 0.0)

    if reference_engine_on():  # the same program run by the reference backend: bit for bit
        m = reference_samples(n)
        graph = build()
        reference = jit.compile(graph.to_ir(), backend="reference")
        got = reference.process_block(jit.GraphState.from_graph(graph), m)
        assert_engines_match(machine[..., :m], got, exact=True, what="reference vs wasm")
