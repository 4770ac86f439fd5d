"""Gain, Add, Multiply, Constant and the generated Mixer classes."""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from node_harness import assert_compilable, assert_jit_matches, run, run1

from oscen.gain import Add, Constant, Gain, Mixer, Multiply, mixer_class
from oscen.graph.endpoints import Kind

RNG = np.random.default_rng(0)
X = RNG.normal(size=64)
Y = RNG.normal(size=64)


def test_gain() -> None:
    np.testing.assert_allclose(run1(Gain(0.5), 64, input=X), 0.5 * X)
    np.testing.assert_allclose(run1(Gain(), 64, input=X), X)
    assert Gain.from_db(-6.0).gain == pytest.approx(0.501187, rel=1e-5)
    ramp = np.linspace(0.0, 1.0, 64)
    np.testing.assert_allclose(run1(Gain(), 64, input=X, gain=ramp), ramp * X)


def test_add_and_multiply_take_a_stream_and_a_value() -> None:
    assert Add._endpoints["a"].kind is Kind.STREAM and Add._endpoints["b"].kind is Kind.VALUE
    assert Multiply._endpoints["a"].kind is Kind.STREAM and Multiply._endpoints["b"].kind is Kind.VALUE
    np.testing.assert_allclose(run1(Add(), 64, a=X), X)  # b defaults to 0
    np.testing.assert_allclose(run1(Add(0.25), 64, a=X), X + 0.25)
    np.testing.assert_allclose(run1(Add(), 64, a=X, b=Y), X + Y)
    np.testing.assert_allclose(run1(Multiply(), 64, a=X), X)  # b defaults to 1
    np.testing.assert_allclose(run1(Multiply(-2.0), 64, a=X), -2.0 * X)
    np.testing.assert_allclose(run1(Multiply(), 64, a=X, b=Y), X * Y)


def test_constant() -> None:
    np.testing.assert_array_equal(run1(Constant(0.75), 8), np.full(8, 0.75))
    np.testing.assert_array_equal(run1(Constant(), 8, value=np.arange(8.0)), np.arange(8.0))


def test_mixer_sums_inputs_through_levels() -> None:
    levels = [0.5, -1.0, 2.0]
    mixer = Mixer(3, levels)
    assert isinstance(mixer, Mixer)
    assert type(mixer).__name__ == "Mixer3"
    inputs = {"input0": X, "input1": Y, "input2": X * Y}
    out = run(mixer, 64, inputs=inputs)["output"]
    np.testing.assert_allclose(out, 0.5 * X - Y + 2.0 * X * Y)
    # levels are value inputs with default 1
    np.testing.assert_allclose(run(Mixer(2), 64, inputs={"input0": X, "input1": Y})["output"], X + Y)


def test_mixer_endpoints_and_class_cache() -> None:
    cls = mixer_class(4)
    assert cls is mixer_class(4) is type(Mixer(4))
    names = list(cls.endpoints())
    assert names == ["output"] + [f"{kind}{i}" for i in range(4) for kind in ("input", "level")]
    assert cls._endpoints["input3"].kind is Kind.STREAM
    assert cls._endpoints["level3"].kind is Kind.VALUE
    assert Mixer(1, [0.3]).level0 == 0.3


def test_mixer_process_source_is_readable_by_inspect() -> None:
    # The JIT compiles methods from their source: the generated one must be reachable like any other.
    process = mixer_class(5).process
    source = textwrap.dedent(inspect.getsource(process))
    tree = ast.parse(source)
    assert isinstance(tree.body[0], ast.FunctionDef) and tree.body[0].name == "process"
    assert "self.input4 * self.level4" in source
    linecache.checkcache()  # must not drop the pseudo-file
    assert inspect.getsource(process) == inspect.getsource(mixer_class(5).process)


def test_mixer_classes_resolve_by_name_for_pickle() -> None:
    import oscen.gain

    assert oscen.gain.Mixer11 is mixer_class(11)
    with pytest.raises(AttributeError):
        _ = oscen.gain.Mixer0
    blob = pickle.dumps(Mixer(6, [0.5] * 6))
    # a fresh interpreter has no Mixer6 yet: unpickling generates it
    code = "import pickle, sys; m = pickle.loads(sys.stdin.buffer.read()); print(type(m).__name__, m.level5)"
    root = str(Path(oscen.gain.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, check=True, env=env)
    assert out.stdout.split() == [b"Mixer6", b"0.5"]


def test_mixer_argument_checks() -> None:
    with pytest.raises(ValueError):
        Mixer(0)
    with pytest.raises(ValueError):
        Mixer(2, [1.0])
    with pytest.raises(ValueError):
        mixer_class(3)(4)
    with pytest.raises(TypeError):
        Mixer()


@pytest.mark.parametrize("make", [Gain, Add, Multiply, Constant, lambda: Mixer(3, [0.1, 0.2, 0.3])])
def test_compilable_subset(make) -> None:
    assert_compilable(make(), 20)


@pytest.mark.parametrize(
    ("make", "inputs"),
    [
        (lambda: Gain(0.3), ("input",)),
        (lambda: Add(0.25), ("a",)),
        (lambda: Multiply(-2.0), ("a", "b")),
        (lambda: Constant(0.5), ()),
        (lambda: Mixer(3, [0.5, -1.0, 2.0]), ("input0", "input2", "level1")),
    ],
)
def test_jit_matches_interpreter(make, inputs) -> None:
    assert_jit_matches(make, 500, noise_into=inputs)
