"""``render`` writes the graph outputs straight into its render area (skeleton.find_direct).

The outputs of scalar segments' nodes are stored at ``i8 + r<j>`` (their buffer address as the
offset): the offset global is 0 in ``process`` and, in ``render``, block ``b``'s place in the
area less the buffer. Readers of such an output in later segments go through the same offset;
outputs of voice group members, outputs a voice group reads and a port listed twice are copied
after each block as before. Whatever the path, ``process_into`` over many blocks must give the
samples of one ``process_into`` per block bit for bit (both tiers), leave the state as they do,
stay within the interpreter's tolerance, and keep the completed blocks of a render that faults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from jit_support import assert_engines_match, run_engines
from test_scalar_fastloop import seed  # the seed patch: sine -> lowpass -> gain

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.jit import CraneliftJit, GraphState, NodeFault, kernel
from oscen.jit.skeleton import SkeletonBuilder, render_global
from oscen.oscillators import Oscillator
from oscen.stereo import Panner

SR = 44100.0
MAX_BLOCK = 64
N = 46 * MAX_BLOCK + 23  # many blocks, and a tail block of its own
TIERS = ("quick", "optimized")


def stereo() -> Graph:
    """Two channels of one node (a panner) and a third output of another chain."""
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(330.0, 0.5), "osc")
    pan = graph.add_node(Panner(0.3), "pan")
    other = graph.add_node(Oscillator.sine(550.0, 0.25), "other")
    lowpass = graph.add_node(IirLowpass(800.0, 0.9), "lowpass")
    graph.connect(osc.output, pan.input)
    graph.connect(other.output, lowpass.input)
    graph.set_output(pan.left, pan.right, lowpass.output)
    return graph


def read_output() -> Graph:
    """The lowpass is an output and the gain's input: compiled with ``fuse=1`` every node is a
    segment of its own, so the gain reads the lowpass's buffer in the same block."""
    graph = seed()
    lowpass = next(h for h in graph.nodes if h.label == "lowpass")
    gain = next(h for h in graph.nodes if h.label == "gain")
    graph.set_output(lowpass.output, gain.output)
    return graph


def voices(mix_only: bool = False) -> Graph:
    """16 voices (sine -> lowpass) summed by one gain; two voices' lowpasses are outputs too."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0), "mix")
    lows = []
    for v in range(16):
        osc = graph.add_node(Oscillator.sine(110.0 * 2.0 ** (v / 12.0), 1.0 / 16), f"osc{v}")
        lowpass = graph.add_node(IirLowpass(900.0 + 50.0 * v, 0.707), f"lowpass{v}")
        graph.connect(osc.output, lowpass.input)
        graph.connect(lowpass.output, mix.input)
        lows.append(lowpass)
    if mix_only:
        graph.set_output(mix.output)
    else:
        graph.set_output(lows[3].output, mix.output, lows[10].output)
    return graph


def voices_read_output() -> Graph:
    """A scalar node (a vibrato LFO) whose output is a graph output and every voice's input."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0), "mix")
    lfo = graph.add_node(Oscillator.sine(5.0, 3.0), "lfo")
    for v in range(16):
        osc = graph.add_node(Oscillator.sine(110.0 * 2.0 ** (v / 12.0), 1.0 / 16), f"osc{v}")
        lowpass = graph.add_node(IirLowpass(900.0 + 50.0 * v, 0.707), f"lowpass{v}")
        graph.connect(lfo.output, osc.frequency)
        graph.connect(osc.output, lowpass.input)
        graph.connect(lowpass.output, mix.input)
    graph.set_output(mix.output, lfo.output)
    return graph


class Faulty(Node):
    """A gain that divides by zero from the sample its count reaches ``limit``."""

    input = StreamInput()
    limit = ValueInput(1e12)
    output = StreamOutput()

    def __init__(self) -> None:
        self.count = 0.0

    def process(self, sample_rate: float) -> None:
        self.count = self.count + 1.0
        d = 1.0 if self.count < self.limit else 0.0
        self.output = self.input / d


def faulty() -> Graph:
    graph = seed()
    gain = next(h for h in graph.nodes if h.label == "gain")
    bad = graph.add_node(Faulty(), "faulty")
    graph.connect(gain.output, bad.input)
    graph.set_output(bad.output, gain.output)
    return graph


# name -> (build, compiler options, which outputs render writes straight into its area)
CASES: dict[str, tuple[Callable[[], Graph], dict[str, Any], list[bool]]] = {
    "seed": (seed, {}, [True]),
    "seed_state_in_memory": (seed, {"state_in_locals": False, "fuse": 2}, [True]),
    "stereo": (stereo, {}, [True, True, True]),
    "read_output": (read_output, {"fuse": 1}, [True, True]),
    "voices": (voices, {}, [False, True, False]),
    "voices_mix": (lambda: voices(mix_only=True), {}, [True]),
    "voices_read_output": (voices_read_output, {}, [True, False]),
}


def jit_for(options: dict[str, Any], tier: str) -> CraneliftJit:
    return CraneliftJit(max_block=MAX_BLOCK, tier=tier, **options)


def render_function(compiled: Any) -> kernel.Function:
    return compiled.program.module.function("render")


def block_by_block(compiled: Any, state: GraphState, n: int) -> np.ndarray:
    """``n`` samples through ``process_into`` one block (at most max_block) at a time."""
    out = np.empty((len(compiled.ir.outputs), n))
    for pos in range(0, n, MAX_BLOCK):
        compiled.process_into(state, out[:, pos : pos + MAX_BLOCK])
    return out


def outside_outputs(compiled: Any, state: GraphState) -> np.ndarray:
    """The state's bytes but the render area and the output buffers (which render may leave
    as the last ``process`` left them)."""
    layout = compiled.layout
    keep = np.ones(layout.render_area, dtype=bool)
    for addr in compiled._outputs:
        keep[addr : addr + 8 * layout.max_block] = False
    return state.bytes[: layout.render_area][keep]


@pytest.mark.parametrize("name", sorted(CASES))
def test_which_outputs_are_written_directly(name: str) -> None:
    build, options, direct = CASES[name]
    compiled = jit_for(options, "optimized").compile(build().to_ir())
    fn = render_function(compiled)
    body = fn.body[0].body  # the loop over the blocks
    copies = [s for s in body if isinstance(s, kernel.MemCopy)]
    sets = {s.name for s in body if isinstance(s, kernel.SetGlobal)}
    assert len(copies) == direct.count(False)
    assert sets == {render_global(j) for j, d in enumerate(direct) if d}
    process = compiled.program.module.function("process")
    assert {s.name for s in process.body if isinstance(s, kernel.SetGlobal)} == sets
    if name.startswith("voices"):
        assert compiled.program.voices, "the voices should make a voice group"


def test_seed_render_has_no_copy() -> None:
    compiled = jit_for({}, "optimized").compile(seed().to_ir())
    wat = compiled.program.wat
    render = wat[wat.index("(func $render") :]
    render = render[: render.index("(func ", 1)] if "(func " in render[1:] else render
    assert "memory.copy" not in render
    assert f"global.set ${render_global(0)}" in render


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_render_is_block_by_block_bit_for_bit(name: str, tier: str) -> None:
    build, options, _ = CASES[name]
    graph = build()
    ir = graph.to_ir()
    compiled = jit_for(options, tier).compile(ir)
    rendered = GraphState.from_graph(graph, ir=ir, max_block=MAX_BLOCK)
    out = np.empty((len(ir.outputs), N))
    compiled.process_into(rendered, out)
    stepped = GraphState.from_graph(build(), ir=ir, max_block=MAX_BLOCK)
    expected = block_by_block(compiled, stepped, N)
    assert_engines_match(expected, out, exact=True, what=f"{name}: render vs block by block")
    assert rendered.frame == stepped.frame == N
    assert np.array_equal(outside_outputs(compiled, rendered), outside_outputs(compiled, stepped))
    # then one short block and another render: the offsets are back to 0 in process
    tails = [np.empty((len(ir.outputs), 17)) for _ in range(2)]
    for state, tail in zip((rendered, stepped), tails, strict=True):
        compiled.process_into(state, tail)
    assert_engines_match(tails[1], tails[0], exact=True, what=f"{name}: a block after")
    more = np.empty((len(ir.outputs), 3 * MAX_BLOCK + 5))
    compiled.process_into(rendered, more)
    assert_engines_match(block_by_block(compiled, stepped, more.shape[1]), more, exact=True, what=name)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_the_interpreter(name: str, tier: str) -> None:
    build, options, _ = CASES[name]
    # blocks=N: one process_block of N samples, the render path (the reference backend, run on
    # the first samples beside the wasm kernel, renders them too and must match it bit for bit)
    outs = run_engines(build, N, engines=("interpreted", "state"), blocks=N, jit=jit_for(options, tier))
    assert_engines_match(outs["interpreted"], outs["state"], what=f"{name} ({tier})")


def test_a_render_over_several_calls() -> None:
    """More samples than one render call holds (the area's RENDER_SAMPLES), and a tail."""
    graph = seed()
    ir = graph.to_ir()
    compiled = jit_for({}, "optimized").compile(ir)
    n = compiled.layout.render_samples * 2 + 5 * MAX_BLOCK + 3
    state = GraphState.from_graph(graph, ir=ir, max_block=MAX_BLOCK)
    out = np.empty((1, n))
    compiled.process_into(state, out)
    expected = block_by_block(compiled, GraphState.from_graph(seed(), ir=ir, max_block=MAX_BLOCK), n)
    assert_engines_match(expected, out, exact=True, what="three render calls")


def test_without_direct_writes_the_samples_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """SkeletonBuilder.direct_render off: every output copied, the same samples."""
    ir = stereo().to_ir()
    direct = jit_for({}, "optimized").compile(ir)
    monkeypatch.setattr(SkeletonBuilder, "direct_render", False)
    copied = jit_for({}, "optimized").compile(ir)
    assert sum(isinstance(s, kernel.MemCopy) for s in render_function(copied).body[0].body) == 3
    outs = []
    for compiled in (direct, copied):
        state = GraphState.from_graph(stereo(), ir=ir, max_block=MAX_BLOCK)
        out = np.empty((3, N))
        compiled.process_into(state, out)
        outs.append(out)
    assert_engines_match(outs[1], outs[0], exact=True, what="direct vs copied")


def test_a_broken_direct_write_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above sees a render whose offsets are not set (the outputs stay in their
    buffers, the area keeps stale samples): what these tests guard against."""
    real = SkeletonBuilder.render_function

    def broken(self: SkeletonBuilder) -> kernel.Function:
        fn = real(self)
        loop = fn.body[0]
        loop.body = [s for s in loop.body if not isinstance(s, kernel.SetGlobal)]
        return fn

    monkeypatch.setattr(SkeletonBuilder, "render_function", broken)
    graph = seed()
    ir = graph.to_ir()
    compiled = jit_for({}, "optimized").compile(ir)
    out = np.empty((1, N))
    compiled.process_into(GraphState.from_graph(graph, ir=ir, max_block=MAX_BLOCK), out)
    expected = block_by_block(compiled, GraphState.from_graph(seed(), ir=ir, max_block=MAX_BLOCK), N)
    assert not np.array_equal(expected, out)


@pytest.mark.parametrize("tier", TIERS)
def test_a_fault_mid_render_keeps_the_completed_blocks(tier: str) -> None:
    at = 7 * MAX_BLOCK + 10  # the fault's sample: in the eighth block
    graph = faulty()
    ir = graph.to_ir()
    compiled = jit_for({}, tier).compile(ir)
    states, limits = [], []
    for g in (graph, faulty()):
        state = GraphState.from_graph(g, ir=ir, max_block=MAX_BLOCK)
        limit = next(h for h in g.nodes if h.label == "faulty").limit
        state.set_value(limit, float(at + 1))
        states.append(state)
        limits.append(limit)
    rendered, stepped = states
    out = np.full((2, N), np.nan)
    with pytest.raises(NodeFault) as info:
        compiled.process_into(rendered, out)
    assert isinstance(info.value, ZeroDivisionError)
    assert info.value.done == 7 * MAX_BLOCK
    assert rendered.frame == 7 * MAX_BLOCK
    expected = np.empty((2, N))
    with pytest.raises(NodeFault) as stepped_info:
        for pos in range(0, N, MAX_BLOCK):
            compiled.process_into(stepped, expected[:, pos : pos + MAX_BLOCK])
    assert stepped_info.value.done == 0 and stepped.frame == 7 * MAX_BLOCK
    done = info.value.done
    assert_engines_match(expected[:, :done], out[:, :done], exact=True, what="before the fault")
    # the fault cleared, both go on from the faulting block's start: a short block (process,
    # the offsets reset after the trap), then a render
    for state, limit in zip(states, limits, strict=True):
        state.set_value(limit, 1e12)
    short = [np.empty((2, 9)) for _ in states]
    for state, got in zip(states, short, strict=True):
        compiled.process_into(state, got)
    assert_engines_match(short[1], short[0], exact=True, what="the block after the fault")
    out = np.empty((2, N))
    compiled.process_into(rendered, out)
    assert_engines_match(block_by_block(compiled, stepped, N), out, exact=True, what="after the fault")
    assert np.array_equal(outside_outputs(compiled, rendered), outside_outputs(compiled, stepped))
