"""Run one node in both engines on given input signals and events; the reference checks then look
at each engine's output.

``run_node(make, n, inputs=..., outputs=..., events=...)`` builds, once per engine, a graph holding
``make()`` fed from :class:`Player` nodes (one per input: a numpy array played sample by sample),
runs it interpreted and compiled (``CraneliftJit`` on a ``GraphState``; optionally ``JitGraph``),
checks that the compiled output and final state equal the interpreter's (1e-9), and returns
``{engine: output}``. A reference test then holds *every* engine's output to the reference.

:class:`EventProbe` turns events into streams (``count`` per sample, the last event's ``first`` and
``second`` fields) so that event outputs can be compared sample by sample too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from jit_support import QueueEvent, SetValue, assert_same, run_engines

from oscen.graph import EventInput, Graph, Node, StreamOutput
from oscen.patch import load_patch

SR = 44100.0
ENGINES = ("interpreted", "state")


class Player(Node):
    """Plays a fixed array, then zeros: an arbitrary test signal that both engines run."""

    output = StreamOutput()

    def __init__(self, samples: np.ndarray) -> None:
        self._samples = np.array(samples, dtype=np.float64)
        self._at = 0

    def process(self, sample_rate: float) -> None:
        i = self._at
        if i < len(self._samples):
            self.output = self._samples[i]
            self._at = i + 1
        else:
            self.output = 0.0


class EventProbe(Node):
    """Streams describing the events received at each sample: how many, and the last one's fields."""

    input = EventInput()
    count = StreamOutput()
    first = StreamOutput()
    second = StreamOutput()

    def __init__(self) -> None:
        self._count = 0
        self._first = 0.0
        self._second = 0.0

    def on_input(self, first: float, second: float) -> None:
        self._count = self._count + 1
        self._first = first
        self._second = second

    def process(self, sample_rate: float) -> None:
        self.count = float(self._count)
        self.first = self._first
        self.second = self._second
        self._count = 0


def run_node(
    make: Callable[[], Node],
    n: int,
    inputs: Mapping[str, np.ndarray] | None = None,
    outputs: Sequence[str] = ("output",),
    events: Iterable[tuple[int, str, float | tuple[float, ...]]] = (),
    values: Iterable[tuple[int, str, float]] = (),
    probes: Sequence[str] = (),
    sample_rate: float = SR,
    engines: Sequence[str] = ENGINES,
    blocks: int | Sequence[int] = (512, 333),
    atol: float = 1e-9,
) -> dict[str, np.ndarray]:
    """{engine: output of ``make()``} over ``n`` samples; the engines are checked equal first.

    inputs: stream/value input name -> array played into it. events: (frame, event input, payload)
    queued before the run. values: (frame, value input, value) set at that frame (a block boundary).
    probes: event outputs, each recorded by an EventProbe whose count, first and second streams
    follow the node's ``outputs`` in the result (rows).
    """
    inputs = dict(inputs or {})
    events = list(events)
    actions = [QueueEvent(0, f"node.{name}", payload, frame) for frame, name, payload in events]
    actions += [SetValue(frame, f"node.{name}", value) for frame, name, value in values]

    def build() -> Graph:
        graph = Graph(sample_rate)
        node = graph.add_node(make(), "node")
        for name, signal in inputs.items():
            player = graph.add_node(Player(signal), f"play_{name}")
            graph.connect(player.output, getattr(node, name))
        outs = [getattr(node, name) for name in outputs]
        for name in probes:
            probe = graph.add_node(EventProbe(), f"probe_{name}")
            graph.connect(getattr(node, name), probe.input)
            outs += [probe.count, probe.first, probe.second]
        graph.set_output(*outs)
        return graph

    results = run_engines(build, n, actions, engines=engines, blocks=blocks, atol=atol)
    reference = results[engines[0]]
    for name in engines[1:]:
        assert_same(reference, results[name], atol=atol, what=f"{name} vs {engines[0]}")
    return results


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def check_example(name: str, seconds: float = 0.3, sample_rate: float = SR) -> np.ndarray:
    """Load ``examples/<name>`` with ``oscen.patch.load_patch`` (as ``oscen render`` does), run it
    interpreted, compiled and through JitGraph, check they agree and that it makes a finite,
    audible sound within [-1, 1]; returns the interpreted output."""
    n = int(seconds * sample_rate)
    outs = run_engines(lambda: load_patch(EXAMPLES / name, sample_rate), n,
                       engines=("interpreted", "state", "jitgraph"))  # fmt: skip
    reference = outs["interpreted"]
    for engine in ("state", "jitgraph"):
        assert_same(reference, outs[engine], what=f"{name}: {engine} vs interpreted")
    assert np.all(np.isfinite(reference))
    assert 0.05 < np.abs(reference).max() <= 1.0, f"{name}: peak {np.abs(reference).max()}"
    return reference
