"""The voices' mix added up by the voice bodies themselves (oscen.jit.passes.mix, ``fuse_mix``).

A voice group whose outputs all feed one input has each voice add its output into one buffer
(started at -0.0) instead of storing a buffer of its own: each sample must still be the
interpreter's left-to-right sum in voice order, bit for bit (the same graph compiled node by node
adds the sources in one expression), whatever the lanes, the voice count (a voice left over by the
lanes runs through the one-voice body), the block lengths, and which voices feed the mix.
"""

from __future__ import annotations

import numpy as np
import pytest
from jit_support import assert_engines_match, run_engines, set_value
from random_graphs import SR
from test_voice_groups import Divider, midi, polysynth

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.jit import CraneliftJit, GraphState, NodeFault, kernel
from oscen.jit.passes.mix import accumulate
from oscen.jit.skeleton import SkeletonBuilder
from oscen.oscillators import Oscillator


def spread_voices(n: int, amplitudes: list[float] | None = None, sample_rate: float = SR) -> Graph:
    """``n`` sine -> lowpass voices into one Gain, their amplitudes many orders of magnitude
    apart (so that adding them in any other order rounds differently)."""
    rng = np.random.default_rng(n)
    if amplitudes is None:
        amplitudes = [float(rng.choice([-1, 1]) * 10.0 ** rng.uniform(-6, 6)) for _ in range(n)]
    graph = Graph(sample_rate)
    mix = graph.add_node(Gain(1.0), "mix")
    for k in range(n):
        osc = graph.add_node(Oscillator.sine(97.0 + 31.0 * k, amplitudes[k]), f"osc{k}")
        lp = graph.add_node(IirLowpass(400.0 + 150.0 * k, 0.8), f"lp{k}")
        graph.connect(osc.output, lp.input)
        graph.connect(lp.output, mix.input)
    graph.set_output(mix.output)
    return graph


def functions(graph: Graph, jit: CraneliftJit) -> list[str]:
    return [f.name for f in jit.program(graph.to_ir()).module.functions]


def same_as_node_by_node(build, n: int, actions=(), blocks=256, jit: CraneliftJit | None = None) -> None:
    jit = jit or CraneliftJit()
    grouped = run_engines(build, n, actions, engines=("interpreted", "state"), blocks=blocks, jit=jit)
    single = run_engines(
        build, n, actions, engines=("state",), blocks=blocks, jit=CraneliftJit(voice_groups=False)
    )
    assert_engines_match(grouped["interpreted"], grouped["state"], what="fused mix vs interpreted")
    assert_engines_match(single["state"], grouped["state"], exact=True, what="fused mix vs node by node")


@pytest.mark.parametrize(("voices", "lanes"), [(8, 2), (7, 2), (6, 4), (5, 1), (2, 2)])
def test_the_fused_mix_adds_the_voices_in_their_order_to_the_bit(voices: int, lanes: int) -> None:
    jit = CraneliftJit(lanes=lanes)
    names = functions(spread_voices(voices), jit)
    assert "mix_start" in names and "add_buffers" not in names
    actions = [set_value(300, "osc1.amplitude", -2.5e5, 0.004), set_value(700, "lp0.cutoff", 2500.0)]
    same_as_node_by_node(lambda: spread_voices(voices), 1400, actions, blocks=[1, 37, 256, 99], jit=jit)


def bare_sines(amplitudes: list[float]) -> Graph:
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0), "mix")
    for k, amplitude in enumerate(amplitudes):
        osc = graph.add_node(Oscillator.sine(50.0 + 7.0 * k, amplitude), f"osc{k}")
        graph.connect(osc.output, mix.input)
    graph.set_output(mix.output)
    return graph


def test_voices_that_all_give_zeros_mix_to_the_interpreter_s_signed_zero() -> None:
    """-0.0 + x is x for both zeros: a buffer started at +0.0 would turn a sum of -0.0s (sines of
    amplitude -0.0 over their first half period) into +0.0."""
    for amplitudes in ([-0.0] * 6, [-0.0, 0.0, -0.0, -0.0, 0.0]):
        assert "mix_start" in functions(bare_sines(amplitudes), CraneliftJit())
        graph = bare_sines(amplitudes)
        ir = graph.to_ir()
        state = GraphState.from_graph(graph, max_block=256, ir=ir)
        out = np.empty((1, 512))
        CraneliftJit(max_block=256).compile(ir).process_into(state, out)
        interp = bare_sines(amplitudes)
        expected = np.concatenate([interp.process_block(256) for _ in range(2)], axis=-1).reshape(1, -1)
        if amplitudes.count(0.0) == 0:
            assert np.signbit(expected[0, :100]).all(), "no -0.0 sums: the test would prove little"
        assert_engines_match(expected, out, exact=True, what="zeros mixed")


def test_voices_split_between_two_mixes_keep_their_buffers_and_stay_exact() -> None:
    """Only some voices feed each input: no one input sums them all, so nothing is fused."""

    def build() -> Graph:
        graph = spread_voices(6)
        low = next(h for h in graph.nodes if h.label == "mix")
        high = graph.add_node(Gain(0.5), "high")
        for k in (1, 4):
            lp = next(h for h in graph.nodes if h.label == f"lp{k}")
            graph.disconnect(lp.output, low.input)
            graph.connect(lp.output, high.input)
        graph.set_output(low.output, high.output)
        return graph

    assert "mix_start" not in functions(build(), CraneliftJit())
    same_as_node_by_node(build, 900, blocks=[256, 77])


def test_two_groups_each_fused_into_its_own_mix() -> None:
    def build() -> Graph:
        graph = spread_voices(5)
        other = graph.add_node(Gain(0.25), "saws")
        for k in range(4):
            saw = graph.add_node(Oscillator.saw(200.0 + 13.0 * k, 0.3 * (k + 1)), f"saw{k}")
            lp = graph.add_node(IirLowpass(900.0 + 10.0 * k, 1.1), f"slp{k}")
            graph.connect(saw.output, lp.input)
            graph.connect(lp.output, other.input)
        graph.set_output(next(h for h in graph.nodes if h.label == "mix").output, other.output)
        return graph

    program = CraneliftJit().program(build().to_ir())
    starts = [s for f in program.module.functions if f.name.startswith("seg") for s in f.body
              if isinstance(s, kernel.Invoke) and s.func == "mix_start"]  # fmt: skip
    assert len(starts) == 2
    same_as_node_by_node(build, 900, blocks=[128, 300])


def test_voices_starting_and_stopping_mix_exactly() -> None:
    """A polysynth's voices (allocator gates, ADSRs) into poly_voices' mix: fused, and exact."""
    assert "mix_start" in functions(polysynth(6), CraneliftJit())
    rng = np.random.default_rng(3)
    actions = []
    for at in sorted(rng.integers(0, 3000, 24)):
        note = int(rng.integers(40, 90))
        actions.append(midi(int(at), 0x90 if rng.random() < 0.6 else 0x80, note, int(rng.integers(1, 128))))
    same_as_node_by_node(lambda: polysynth(6), 3500, actions, blocks=[1, 64, 500])


@pytest.mark.parametrize("faulty", [1, 4])
def test_a_fault_in_a_fused_voice_names_that_voice(faulty: int) -> None:
    """Voice 1 runs as lane 1 of the first pair, voice 4 through the one-voice body."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(0.5), "mix")
    dividers = []
    for k in range(5):
        osc = graph.add_node(Oscillator.sine(100.0 + k, 0.5), f"osc{k}")
        div = graph.add_node(Divider(1.0), f"divider{k}")
        graph.connect(osc.output, div.input)
        graph.connect(div.output, mix.input)
        dividers.append(div)
    graph.set_output(mix.output)
    ir = graph.to_ir()
    jit = CraneliftJit()
    assert "mix_start" in [f.name for f in jit.program(ir).module.functions]
    compiled = jit.compile(ir)
    state = GraphState.from_graph(graph, ir=ir)
    compiled.bind(state)
    compiled.process_block(state, 64)
    state.set_value(dividers[faulty].divisor, 0.0)
    with pytest.raises(NodeFault) as info:
        compiled.process_block(state, 64)
    assert info.value.node == f"divider{faulty}"
    state.set_value(dividers[faulty].divisor, 1.0)
    compiled.process_block(state, 64)  # usable again: the next block runs


def test_accumulate_refuses_a_body_that_reads_the_mix_parameter_otherwise() -> None:
    i32, f64 = kernel.T.I32, kernel.T.F64
    at = kernel.Prim(i32, kernel_op("I32_ADD"), [kernel.Local(i32, "i8"), kernel.Local(i32, "o0")])
    stored = kernel.Store(type=f64, addr=at, offset=0, value=kernel.Const(f64, 1.0))
    fn = kernel.Function("f", [("i8", i32), ("o0", i32)], (), {}, [stored])
    done = accumulate(fn, {"o0"})
    assert done is not None and isinstance(done.body[0].value, kernel.Prim)
    assert done.body[0].value.op is kernel_op("F64_ADD")
    other = kernel.SetLocal(name="i8", value=kernel.Local(i32, "o0"))
    assert accumulate(kernel.Function("f", fn.params, (), {}, [stored, other]), {"o0"}) is None
    assert accumulate(kernel.Function("f", fn.params, (), {}, []), {"o0"}) is None  # never stored


def kernel_op(name: str):
    from oscen.jit.ops import Op

    return Op[name]


def test_the_buffers_path_gives_the_same_bits(monkeypatch) -> None:
    fused = run_engines(lambda: spread_voices(7), 800, engines=("state",), blocks=[256, 33])["state"]
    monkeypatch.setattr(SkeletonBuilder, "fuse_mix", False)
    assert "add_buffers" in functions(spread_voices(7), CraneliftJit())
    summed = run_engines(lambda: spread_voices(7), 800, engines=("state",), blocks=[256, 33])["state"]
    assert_engines_match(summed, fused, exact=True, what="fused vs add_buffers")
