"""Interpreter, wasm kernel and reference backend side by side on whole graphs (short renders: the
reference backend evaluates the kernel in Python): the demo, the polysynth, user nodes, random
graphs, and the faults node code raises.

The reference backend's output must be the wasm kernel's bit for bit (the same program, the
same IR, every op with WebAssembly's meaning) and follow the interpreter under the tolerance
policy of docs/jit.md (through ``run_engines``, with the final state checked too).

Until the program skeleton and the passes give the whole program as kernel IR (node code is
WebAssembly text before them), ``compile(backend="reference")`` refuses with a JitError, and
these tests are expected to fail with exactly that; they run as ordinary tests from then on.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from jit_support import assert_engines_match, event, run_engines, set_value
from test_jit_properties import scenarios

import oscen.jit
from oscen.graph import Graph, Node, StreamInput, StreamOutput
from oscen.jit import CraneliftJit, GraphState, JitError, NodeFault, NodeTimeout
from oscen.midi import find_midi_input, note_off, note_on
from oscen.oscillators import Oscillator

SR = 48000.0
ENGINES = ("interpreted", "state", "reference")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _program_is_ir() -> bool:
    g = Graph(SR)
    osc = g.add_node(Oscillator.saw(440.0, 0.5))
    g.set_output(osc.output)
    try:
        oscen.jit.compile(g.to_ir(), backend="reference")
    except JitError:
        return False
    return True


pytestmark = pytest.mark.xfail(
    condition=not _program_is_ir(),
    raises=JitError,
    strict=True,
    reason="the program is not kernel IR yet (skeleton and passes not merged)",
)


def three_engines(build, n: int, actions=(), **kw) -> dict[str, np.ndarray]:
    outs = run_engines(build, n, list(actions), engines=ENGINES, **kw)
    assert_engines_match(outs["state"], outs["reference"], exact=True, what="reference vs wasm")
    assert_engines_match(outs["interpreted"], outs["reference"], what="reference vs interpreted")
    assert np.any(np.abs(outs["interpreted"]) > 1e-9), "silent: the comparison would prove little"
    return outs


def test_demo_patch_short_render() -> None:
    from oscen.demo import demo_patch

    actions = [
        set_value(128, "lfo.frequency", 3.0, ramp=0.002),
        event(256, "amp_env.gate", 1.0, offset=5),
        set_value(384, "echo.feedback", 0.8),
    ]
    three_engines(lambda: demo_patch(SR, events=True), 600, actions, blocks=[128, 64, 200])


def _polysynth():
    name = "oscen_example_polysynth"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / "polysynth.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # the JIT reads node source through the module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_polysynth_two_voices_short_render() -> None:
    polysynth = _polysynth()
    midi = f"{find_midi_input(polysynth.patch(SR, voices=2)).node_label}.midi"
    actions = [
        event(0, midi, note_on(57, 100), offset=10),
        event(0, midi, note_on(64, 90), offset=40),
        event(200, midi, note_on(69, 120), offset=3),  # a third note on two voices: steals
        event(300, midi, note_off(57), offset=1),
    ]
    three_engines(lambda: polysynth.patch(SR, voices=2), 400, actions, blocks=[100, 300])


class Mixed(Node):
    """Loops, helpers with early returns, int and float arithmetic, bits, math calls."""

    input = StreamInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.count = 0
        self.acc = 0.25

    def helper(self, x: float) -> float:
        if x < 0.0:
            return -x * 0.5
        for k in range(3):
            if k == 2:
                break
            x = x * 0.9 + k
        return x

    def process(self, sample_rate: float) -> None:
        self.count = (self.count * 31 + 7) % 1000003
        bits = (self.count << 3) ^ (self.count >> 2) & 0xFF
        self.acc = (self.acc + self.helper(self.input) + bits / 4096.0) % 7.5
        self.output = math.sin(self.acc) + (self.count // 13) % 5 - 2.0


def test_user_node_short_render() -> None:
    from oscen.noise import Noise

    def build() -> Graph:
        g = Graph(SR)
        src = g.add_node(Noise.white(0.8, seed=3))
        node = g.add_node(Mixed(), "mixed")
        g.connect(src.output, node.input)
        g.set_output(node.output)
        return g

    three_engines(build, 700, blocks=[256, 1, 63])


@settings(max_examples=4, deadline=None, derandomize=True, phases=(Phase.explicit, Phase.generate))
@given(scenarios())
def test_random_graphs_short_renders(scenario) -> None:
    """test_jit_properties's random graphs, a few, short (no shrinking: that suite shrinks)."""
    spec, blocks, actions, n, max_block = scenario
    n = min(n, 300)
    actions = [a for a in actions if a.at < n]
    outs = run_engines(
        spec.build, n, actions, engines=ENGINES, blocks=blocks, jit=CraneliftJit(max_block=max_block)
    )
    assert_engines_match(outs["state"], outs["reference"], exact=True, what=f"reference vs wasm for {spec!r}")


class Divides(Node):
    output = StreamOutput()

    def __init__(self) -> None:
        self.n = 5

    def process(self, sample_rate: float) -> None:
        self.n -= 1
        self.output = 10 // self.n


class Spins(Node):
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        x = 0.0
        while x >= 0.0:
            x += 1.0
        self.output = x


def _faults(node: Node, **options) -> list[NodeFault]:
    found = []
    for backend in ("wasm", "reference"):
        g = Graph(SR)
        h = g.add_node(node if backend == "wasm" else type(node)(), "n")
        g.set_output(h.output)
        compiled = oscen.jit.compile(g.to_ir(), backend=backend, **options)
        state = GraphState.from_graph(g)
        with pytest.raises(NodeFault) as info:
            compiled.process_block(state, 64)
        found.append(info.value)
    return found


def test_node_faults_are_the_wasm_kernel_s() -> None:
    w, r = _faults(Divides())
    assert type(w) is type(r) and isinstance(r, ZeroDivisionError)
    assert str(w) == str(r) and (w.node, w.location) == (r.node, r.location)


def test_endless_loop_ends_with_node_timeout() -> None:
    w, r = _faults(Spins(), timeout=0.2)
    assert isinstance(w, NodeTimeout) and isinstance(r, NodeTimeout)
    assert str(w) == str(r)
