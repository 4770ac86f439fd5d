"""Helpers for the node-family tests: run one patch in both engines, then check each output.

``both_engines(build, n, actions)`` runs ``build()`` interpreted and compiled (``CraneliftJit`` on
a ``GraphState``, through ``tests/jit_support.run_engines``), asserts that the two agree sample for
sample (and that the compiled state ends where the interpreter's does), and returns both outputs,
so a test checks its independent reference on *each* engine's output.

``Signal`` is a source node that plays a given array (then zeros), to feed a node under test an
exact test signal (a step, a DC level, a chirp) in either engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from jit_support import Action, assert_same, run_engines

from oscen.graph import Graph, Node, StreamOutput

ENGINES = ("interpreted", "state")


class Signal(Node):
    """Plays ``samples`` from its first sample on, then outputs 0."""

    output = StreamOutput()

    def __init__(self, samples: Sequence[float] | np.ndarray) -> None:
        self._samples = np.array(samples, dtype=np.float64).ravel()
        self._index = 0

    def process(self, sample_rate: float) -> None:
        i = self._index
        if i < len(self._samples):
            self.output = float(self._samples[i])
            self._index = i + 1
        else:
            self.output = 0.0


def both_engines(
    build: Callable[[], Graph],
    n: int,
    actions: Sequence[Action] = (),
    blocks: int | Sequence[int] = 512,
    atol: float = 1e-9,
) -> dict[str, np.ndarray]:
    """{"interpreted": output, "state": compiled output} of ``n`` samples, checked to agree."""
    outs = run_engines(build, n, list(actions), engines=ENGINES, blocks=blocks, atol=atol)
    assert_same(outs["interpreted"], outs["state"], atol=atol, what="compiled vs interpreted")
    assert np.any(np.abs(outs["interpreted"]) > 1e-9), "the output is silent: the test would prove little"
    return outs


def one_node(
    make: Callable[[], Node],
    inputs: dict[str, np.ndarray | float] | None = None,
    outputs: Sequence[str] = ("output",),
    sample_rate: float = 44100.0,
    label: str = "node",
) -> Callable[[], Graph]:
    """A ``build`` function: the node (labelled ``label``) with arrays fed by ``Signal`` sources into
    the named inputs (a float sets a value input instead), outputting ``outputs``."""

    def build() -> Graph:
        graph = Graph(sample_rate)
        handle = graph.add_node(make(), label)
        for name, signal in (inputs or {}).items():
            if np.ndim(signal) == 0:
                graph.set_value(getattr(handle, name), float(signal))
            else:
                source = graph.add_node(Signal(np.asarray(signal, dtype=np.float64)))
                graph.connect(source.output, getattr(handle, name))
        graph.set_output(*[getattr(handle, name) for name in outputs])
        return graph

    return build


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_renders(name: str, seconds: float = 0.2, sample_rate: float = 44100.0) -> np.ndarray:
    """Render ``examples/<name>`` (a patch file, as ``oscen render`` loads it) in both engines;
    they must agree and make sound. Returns the compiled output."""
    from oscen.patch import load_patch

    path = EXAMPLES / name
    # odd block sizes: the patch's queued events and parameter changes must not care
    outs = both_engines(
        lambda: load_patch(path, sample_rate), int(seconds * sample_rate), blocks=(441, 1000, 63)
    )
    out = outs["state"]
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.0
    return out
