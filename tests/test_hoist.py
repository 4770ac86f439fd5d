"""The skeleton's per-sample work kept off the hot path (issue 11, "hoist"), and what must not
change with it:

* a fault names its node although nothing stores the node per sample any more: the trap path
  stores the node's base (``nb``) in NODE, a math call's note does before the call, and
  ``Program.fault_node`` maps it back (with LANE for a voice group's member): in scalar segments
  of several nodes of one class, in voice bodies run as lanes and one by one, inside an outlined
  helper, for a math-domain error (math inlined and called), for a node with no bytes of its own;
* value inputs held in locals (loaded before the sample loop, again after a ramp step) give the
  interpreter's samples exactly when ramps start, end and are cut short mid-stream, for inputs
  read by node code and for connected ones (whose base is the held local);
* one test per sample stands for all the ramps of a loop;
* node code cannot write its own value input (refused at compile time): the held local never
  needs writing back.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from jit_support import assert_jit_same, set_value

import oscen.jit.compiler as compiler
from oscen.gain import Gain
from oscen.graph import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.jit import CraneliftJit, GraphState, JitError, NodeFault, kernel
from oscen.jit.groups import find_groups
from oscen.jit.layout import NODE, Layout
from oscen.jit.passes.walk import walk
from oscen.oscillators import Oscillator

SR = 44100.0


class Recip(Node):
    """``output = input * scale``, ``scale`` recomputed by a helper large enough to be outlined
    whenever ``k`` changes: 1 / (k*k - 1) raises ZeroDivisionError at k = 1 (inside the helper)."""

    k = ValueInput(2.0)
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, k: float = 2.0) -> None:
        self.k = float(k)
        self.last_k = -1.0
        self.scale = 0.0
        self.spare = 0.0

    def recompute(self) -> None:
        a = self.k * self.k
        b = a * 0.5 + self.k * 0.25 - 0.125
        c = b * b * 0.5 + a * 0.25 + self.k * 0.125
        d = c * 0.5 + b * 0.25 + a * 0.125 + self.k * 0.0625
        e = d * d * 0.5 + c * 0.25 + b * 0.125 + a * 0.0625
        f = e * 0.5 + d * 0.25 + c * 0.125 + b * 0.0625 + a * 0.03125
        self.spare = (f + e + d + c + b + a) * 0.0  # keeps the helper big, changes nothing
        self.scale = 1.0 / (a - 1.0) + self.spare  # recip-divide

    def process(self, sample_rate: float) -> None:
        if self.k != self.last_k:
            self.last_k = self.k
            self.recompute()
        self.output = self.input * self.scale


class Logarithm(Node):
    """``output = log(bias + input)``: a math-domain error when ``bias + input <= 0``."""

    bias = ValueInput(2.0)
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, bias: float = 2.0) -> None:
        self.bias = float(bias)

    def process(self, sample_rate: float) -> None:
        self.output = math.log(self.bias + self.input)  # log-call


class Checker(Node):
    """A sink with no bytes of its own (no state, no outputs, no value inputs): its base would be
    its neighbour's without the layout's padding."""

    input = StreamInput()

    def process(self, sample_rate: float) -> None:
        assert self.input < 0.4, "too loud"  # checker-assert


class SelfWriter(Node):
    level = ValueInput(1.0)
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.level = 0.5
        self.output = self.level


def line_of(marker: str) -> int:
    with open(__file__, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if marker in text and "line_of" not in text:
                return number
    raise LookupError(marker)


def voices(cls: type[Node], n: int, make_args: dict | None = None) -> Graph:
    """``n`` voices of sine -> ``cls`` summed by a Gain: one voice group."""
    g = Graph(SR)
    mix = g.add_node(Gain(0.5), "mix")
    for v in range(n):
        osc = g.add_node(Oscillator.sine(100.0 + 10 * v, 0.5), f"osc{v}")
        node = g.add_node(cls(**(make_args or {})), f"{cls.__name__.lower()}{v}")
        g.connect(osc.output, node.input)
        g.connect(node.output, mix.input)
    g.set_output(mix.output)
    return g


def chain(cls: type[Node], n: int) -> Graph:
    """A sine into ``n`` nodes of ``cls`` one after the other (one class, one shared Code)."""
    g = Graph(SR)
    prev = g.add_node(Oscillator.sine(220.0, 0.5), "osc").output
    for j in range(n):
        node = g.add_node(cls(), f"{cls.__name__.lower()}{j}")
        g.connect(prev, node.input)
        prev = node.output
    g.set_output(prev)
    return g


def fault(graph: Graph, jit: CraneliftJit, label: str, endpoint: str, value: float) -> NodeFault:
    """The fault of the block after ``label.endpoint`` is set to ``value`` (one clean block first)."""
    ir = graph.to_ir()
    compiled = jit.compile(ir)
    state = GraphState.from_graph(graph, max_block=jit.max_block, ir=ir)
    compiled.process_block(state, 64)
    (handle,) = [h for h in graph.nodes if h.label == label]
    state.set_value(getattr(handle, endpoint), value)
    with pytest.raises(NodeFault) as info:
        compiled.process_block(state, 64)
    return info.value


JITS = {
    "lanes": lambda: CraneliftJit(max_block=256),
    "one-by-one": lambda: CraneliftJit(max_block=256, lanes=1),
    "lanes-state-in-memory": lambda: CraneliftJit(max_block=256, state_in_locals=False),
}


# --------------------------------------------------------------------------------------- faults
@pytest.mark.parametrize("jit", JITS.values(), ids=JITS.keys())
@pytest.mark.parametrize("voice", [0, 3, 4])
def test_a_fault_inside_an_outlined_helper_of_a_voice_names_that_voice(jit, voice: int) -> None:
    graph = voices(Recip, 5)
    assert len(find_groups(graph.to_ir())) == 1
    err = fault(graph, jit(), f"recip{voice}", "k", 1.0)
    assert isinstance(err, ZeroDivisionError)
    assert err.node == f"recip{voice}", str(err)
    assert err.location.endswith(f":{line_of('recip-divide')}")


@pytest.mark.parametrize("jit", JITS.values(), ids=JITS.keys())
@pytest.mark.parametrize("voice", [1, 2])
def test_a_math_domain_error_in_a_voice_names_that_voice(jit, voice: int) -> None:
    err = fault(voices(Logarithm, 4), jit(), f"logarithm{voice}", "bias", -1.0)
    assert isinstance(err, ValueError) and "math domain error" in str(err)
    assert err.node == f"logarithm{voice}", str(err)
    assert err.location.endswith(f":{line_of('log-call')}")


@pytest.mark.parametrize("voice", [0, 3])
def test_a_math_domain_error_of_called_math_in_lanes_names_that_voice(monkeypatch, voice: int) -> None:
    """Math called out of line (large graphs), packed: a lane off the f64x2 main path calls the
    scalar function, whose trap the note before the packed call attributes (with LANE)."""
    monkeypatch.setattr(compiler, "INLINE_MATH_NODES", 0)
    jit = CraneliftJit(max_block=256, state_in_locals=True)
    graph = voices(Logarithm, 4)
    assert "(call $m_log_f64x2_main" in jit.compile(graph.to_ir()).wat  # packed, the scalar m_log off it
    err = fault(graph, jit, f"logarithm{voice}", "bias", -1.0)
    assert isinstance(err, ValueError) and err.node == f"logarithm{voice}", str(err)


@pytest.mark.parametrize("state_in_locals", [True, False])
@pytest.mark.parametrize("which", [0, 2, 3])
def test_a_fault_in_a_fused_segment_names_its_node(state_in_locals: bool, which: int) -> None:
    """Four nodes of one class in one loop (one Code for all): the fault is the one that faulted,
    inside the outlined helper and in the process code."""
    jit = CraneliftJit(max_block=256, fuse=8, voice_groups=False, state_in_locals=state_in_locals)
    err = fault(chain(Recip, 4), jit, f"recip{which}", "k", 1.0)
    assert isinstance(err, ZeroDivisionError) and err.node == f"recip{which}", str(err)
    err = fault(chain(Logarithm, 4), jit, f"logarithm{which}", "bias", -5.0)
    assert isinstance(err, ValueError) and err.node == f"logarithm{which}", str(err)


def test_a_node_with_no_bytes_of_its_own_has_a_base_of_its_own_and_its_fault_names_it() -> None:
    g = Graph(SR)
    osc = g.add_node(Oscillator.sine(220.0, 0.5), "osc")
    check = g.add_node(Checker(), "checker")
    after = g.add_node(Gain(1.0), "after")
    g.connect(osc.output, check.input)
    g.connect(osc.output, after.input)
    g.set_output(after.output)
    ir = g.to_ir()
    layout = Layout.of(ir)
    bases = [nl.base for nl in layout.nodes.values()]
    assert len(set(bases)) == len(bases)
    compiled = CraneliftJit(fuse=8).compile(ir)
    state = GraphState.from_graph(g, ir=ir)
    with pytest.raises(AssertionError, match="too loud") as info:
        compiled.process_block(state, 512)
    assert isinstance(info.value, NodeFault) and info.value.node == "checker"
    assert info.value.location.endswith(f":{line_of('checker-assert')}")


def test_no_node_store_per_sample() -> None:
    """NODE is written on trap paths only: no store to it directly in any sample loop."""
    for jit in (CraneliftJit(), CraneliftJit(voice_groups=False), CraneliftJit(state_in_locals=False)):
        module = jit.program(voices(Recip, 4).to_ir()).module
        for fn in module.functions:
            for x in walk(fn.body):
                if isinstance(x, kernel.Loop) and x.label == "sample":
                    direct = [s for s in x.body if isinstance(s, kernel.Store)]
                    assert not any(isinstance(s.addr, kernel.Const) and s.addr.value == NODE for s in direct)


# ------------------------------------------------------------------------------ held value inputs
def ramped_voices(n: int) -> Graph:
    """``n`` voices of sine -> Gain, each gain's ``gain`` driven by the voice's LFO too (a
    connected value input: its base is the held local), summed: one voice group."""
    g = Graph(SR)
    mix = g.add_node(Gain(0.5), "mix")
    for v in range(n):
        osc = g.add_node(Oscillator.sine(200.0 + 30 * v, 0.5), f"osc{v}")
        lfo = g.add_node(Oscillator.sine(3.0 + v, 0.25), f"lfo{v}")
        amp = g.add_node(Gain(0.4 + 0.1 * v), f"amp{v}")
        g.connect(osc.output, amp.input)
        g.connect(lfo.output, amp.gain)
        g.connect(amp.output, mix.input)
    g.set_output(mix.output)
    return g


RAMPS = [
    set_value(100, "osc1.frequency", 330.0, ramp=0.003),  # ends mid-block (132 samples)
    set_value(164, "amp2.gain", 0.9, ramp=0.01),  # a connected value input's base
    set_value(201, "osc1.frequency", 500.0),  # cuts the running ramp short
    set_value(201, "osc3.amplitude", 0.1, ramp=0.002),
    set_value(301, "mix.gain", 0.25, ramp=0.004),  # outside the group
    set_value(500, "osc0.frequency", 120.0, ramp=0.0005),
]


@pytest.mark.parametrize(
    "jit",
    [
        CraneliftJit(max_block=256),
        CraneliftJit(max_block=256, lanes=1),
        CraneliftJit(max_block=256, voice_groups=False),
        CraneliftJit(max_block=256, state_in_locals=False),
    ],
    ids=["lanes", "one-by-one", "scalar", "state-in-memory"],
)
def test_ramps_started_mid_stream_give_the_interpreter_s_samples_exactly(jit, monkeypatch) -> None:
    if not jit.state_in_locals and jit.state_in_locals is not None:  # its shared trap function is
        monkeypatch.setenv("OSCEN_REFERENCE_ENGINE", "0")  # WAT text: not for the reference backend
    assert find_groups(ramped_voices(4).to_ir())  # (split in groups of oscillators and of gains)
    assert_jit_same(
        lambda: ramped_voices(4),
        900,
        RAMPS,
        engines=("state",),
        blocks=[64, 100, 37, 200, 99],
        jit=jit,
        exact=True,
    )


def test_value_inputs_are_locals_loaded_before_the_loop() -> None:
    """With state in locals, the sample loop reads no value-input slot of its nodes (the held
    locals), and its ramps sit behind one test of ``ramps``."""
    ir = ramped_voices(4).to_ir()
    program = CraneliftJit(max_block=256).program(ir)
    layout = program.layout
    slots = {nl.rel(s.value) for nl in layout.nodes.values() for s in nl.params.values()}
    for fn in program.module.functions:
        for loop in (x for x in walk(fn.body) if isinstance(x, kernel.Loop) and x.label == "sample"):
            ifs = [s for s in loop.body if isinstance(s, kernel.If)]
            ramp_tests = [
                s for s in ifs if isinstance(s.cond, kernel.Local) and s.cond.name.startswith("ramp")
            ]
            assert len(ramp_tests) == 1, fn.name
            rest = [s for s in loop.body if s is not ramp_tests[0]]
            reads = [
                x
                for s in rest
                for x in walk(s)
                if isinstance(x, kernel.Load)
                and isinstance(x.addr, kernel.Local)
                and x.addr.name.startswith("nb")
            ]
            assert not [x for x in reads if x.offset in slots and x.type == kernel.T.F64], fn.name


def test_node_code_cannot_write_its_own_value_input() -> None:
    g = Graph(SR)
    g.set_output(g.add_node(SelfWriter(), "writer").output)
    with pytest.raises(JitError, match="assigning to the input endpoint self.level"):
        CraneliftJit().compile(g.to_ir())


def test_get_and_set_value_see_the_ramped_slot_between_blocks() -> None:
    """The host's view of a value input is its memory slot: after a block with a ramp, what the
    held local ended at (the ramp writes the slot, the local is its copy)."""
    graph = ramped_voices(2)
    ir = graph.to_ir()
    compiled = CraneliftJit(max_block=256).compile(ir)
    state = GraphState.from_graph(graph, max_block=256, ir=ir)
    (osc1,) = [h for h in graph.nodes if h.label == "osc1"]
    state.set_value(osc1.frequency, 400.0, ramp=100 / SR)
    compiled.process_block(state, 50)
    mid = state.get_value(osc1.frequency)
    assert 230.0 < mid < 400.0
    compiled.process_block(state, 100)
    assert state.get_value(osc1.frequency) == 400.0
    out = compiled.process_block(state, 64)
    assert np.all(np.isfinite(out))
