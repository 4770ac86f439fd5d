"""GraphIR (printing, JSON), compiling it (deterministic), GraphState (topology check, numpy views,
hand-over to and from the interpreter), the fast call path, and the test helpers themselves."""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
from jit_support import assert_same, block_schedule, compile_graph, event, run_both, set_value

from oscen.delay import Delay
from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass
from oscen.gain import Gain, Mixer, Multiply
from oscen.graph import Graph
from oscen.jit import CraneliftJit, GraphIR, GraphState
from oscen.jit import compiler as compiler_module
from oscen.noise import Noise
from oscen.oscillators import Oscillator

SR = 8000.0
NOISE, ENV, VCA, MIX, LOWPASS, ECHO = range(6)  # node ids of loop_graph()


def seed_graph(sample_rate: float = 44100.0) -> Graph:
    graph = Graph(sample_rate)
    osc = graph.add_node(Oscillator.sine(440.0), "osc")
    filt = graph.add_node(IirLowpass(1000.0, 0.7), "lowpass")
    gain = graph.add_node(Gain(0.8), "gain")
    graph.connect(osc.output, filt.input)
    graph.connect(filt.output, gain.input)
    return graph


def loop_graph() -> Graph:
    """noise burst -> mixer -> lowpass -> delay -> back into the mixer (a cycle), plus an ADSR."""
    graph = Graph(SR)
    noise = graph.add_node(Noise.white(0.5, seed=2), "noise")
    env = graph.add_node(AdsrEnvelope(0.0, 0.01, 0.0, 0.0), "env")
    vca = graph.add_node(Multiply(0.0), "vca")
    graph.connect(noise.output, vca.a)
    graph.connect(env.output, vca.b)
    mix = graph.add_node(Mixer(2, levels=[1.0, 0.6]), "mix")
    filt = graph.add_node(IirLowpass(1500.0, 0.8), "lowpass")
    echo = graph.add_node(Delay(0.01, max_delay=0.1), "echo")
    graph.connect(vca.output, mix.input0)
    graph.connect(mix.output, filt.input)
    graph.connect(filt.output, echo.input)
    graph.connect(echo.output, mix.input1)
    graph.set_output(filt.output, echo.output)
    graph.queue_event(env.gate, 5, 1.0)
    return graph


# ---------------------------------------------------------------------------------------- printing
def test_ir_prints_nodes_order_connections_and_outputs() -> None:
    text = str(seed_graph().to_ir())
    lines = text.splitlines()
    assert lines[0].startswith("GraphIR @ 44100 Hz, 3 nodes, 2 connections")
    assert "order: osc -> lowpass -> gain" in text
    assert any(line.strip().startswith("osc (oscen.oscillators:Oscillator)") for line in lines)
    assert "lowpass (oscen.filters:IirLowpass) in[cutoff, q, input] out[output]" in text
    assert "_s1: f64" in text and "waveform: i64" in text
    assert "osc.output -> lowpass.input" in text and "lowpass.output -> gain.input" in text
    assert lines[-1] == "outputs: gain.output"


def test_ir_marks_back_edges_and_cycles() -> None:
    ir = loop_graph().to_ir()
    text = str(ir)
    back = [c for c in ir.connections if c.back_edge]
    assert len(back) == 1
    by_id = {n.id: n.label for n in ir.nodes}
    # the delay (a feedback breaker) runs first and reads the lowpass's previous sample
    assert (by_id[back[0].source], by_id[back[0].target]) == ("lowpass", "echo")
    assert "lowpass.output ~> echo.input" in text  # back edges print as ~>
    assert "echo.output -> mix.input1" in text and "mix.output -> lowpass.input" in text
    assert [sorted(by_id[i] for i in cyc) for cyc in ir.cycles if len(cyc) > 1] == [
        ["echo", "lowpass", "mix"]
    ]
    order = [by_id[i] for i in ir.order]
    assert order.index("echo") < order.index("mix") < order.index("lowpass")
    assert "outputs: lowpass.output, echo.output" in text


def test_an_edge_that_becomes_a_back_edge_after_an_edit_is_marked_so() -> None:
    """A connection keeps its IR for the next to_ir (as a forward edge): an edit that closes a
    loop through it into a feedback breaker must still mark it a back edge, and opening the loop
    again must unmark it."""
    graph = Graph(44100.0)
    src = graph.add_node(Oscillator.sine(110.0), "src")
    gain = graph.add_node(Gain(0.5), "gain")
    echo = graph.add_node(Delay(0.01, 0.0), "echo")
    graph.connect(src.output, gain.input)
    graph.connect(gain.output, echo.input)

    def back_edges() -> set[tuple[str, str]]:
        ir = graph.to_ir()
        label = {n.id: n.label for n in ir.nodes}
        return {(label[c.source], label[c.target]) for c in ir.connections if c.back_edge}

    assert back_edges() == set()
    assert back_edges() == set()  # the kept IR, taken as it is
    graph.connect(echo.output, gain.input)  # gain -> echo now closes a loop into the breaker
    assert back_edges() == {("gain", "echo")}
    graph.disconnect(echo.output, gain.input)
    assert back_edges() == set()


def test_ir_records_constants_and_unsupported_attributes() -> None:
    ir = seed_graph().to_ir()
    osc = ir.node(ir.order[0])
    assert osc.constants["waveform"] == 0 and osc.constants["band_limited"] is False
    assert "_phase" not in osc.constants  # assigned by process: state, not a constant
    assert osc.breaks_feedback is False
    assert loop_graph().to_ir().node(ECHO).breaks_feedback is True


# ---------------------------------------------------------------------------------------- JSON
def test_json_round_trip_compiles_to_the_same_output() -> None:
    graph = loop_graph()
    ir = graph.to_ir()
    text = ir.to_json()
    json.loads(text)  # plain JSON
    back = GraphIR.from_json(text)
    assert back.to_json() == text
    assert str(back) == str(ir)
    assert back.key() == ir.key()
    # generated classes (Mixer2) resolve again by name
    assert back.node(MIX).resolve_class() is type(graph.handle(MIX).node)
    compiled_a = CraneliftJit().compile(ir)
    compiled_b = CraneliftJit().compile(back)
    state_a = GraphState.from_graph(loop_graph(), ir=ir)
    state_b = GraphState.from_graph(loop_graph(), ir=back)
    a = compiled_a.process_block(state_a, 3000)
    b = compiled_b.process_block(state_b, 3000)
    np.testing.assert_array_equal(a, b)
    assert_same(loop_graph().process_block(3000), b)


def test_compiling_the_same_ir_twice_gives_identical_code_and_output() -> None:
    ir = loop_graph().to_ir()
    first = CraneliftJit().compile(ir)
    second = CraneliftJit().compile(ir)
    assert first.wat == second.wat
    outs = []
    for compiled in (first, second):
        state = GraphState.from_graph(loop_graph(), ir=ir)
        outs.append(np.concatenate([compiled.process_block(state, m) for m in (1, 999, 2000, 7)], axis=-1))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_one_kernel_runs_many_states_independently() -> None:
    graph = seed_graph()
    compiled, s1 = compile_graph(graph)
    s2 = GraphState.from_graph(graph)
    a1 = compiled.process_block(s1, 500)
    b1 = compiled.process_block(s2, 200)
    a2 = compiled.process_block(s1, 500)
    b2 = compiled.process_block(s2, 800)
    np.testing.assert_array_equal(np.concatenate([a1, a2]), np.concatenate([b1, b2]))


# ---------------------------------------------------------------------------------------- states
def test_state_from_another_topology_is_refused() -> None:
    compiled, _ = compile_graph(seed_graph())
    other = Graph(44100.0)
    osc = other.add_node(Oscillator.sine(440.0))
    gain = other.add_node(Gain(0.8))
    other.connect(osc.output, gain.input)
    with pytest.raises(ValueError, match="another graph topology"):
        compiled.process_block(GraphState.from_graph(other), 10)
    rewired = seed_graph()
    rewired.set_output(rewired.nodes[1].output)  # same nodes, other outputs
    with pytest.raises(ValueError, match="GraphState.from_graph"):
        compiled.process_block(GraphState.from_graph(rewired), 10)
    with pytest.raises(ValueError, match="another graph topology"):
        compiled.process_block(GraphState.from_graph(seed_graph(), max_block=64), 10)  # another max_block
    with pytest.raises(ValueError, match="another graph topology"):
        compiled.process_block(GraphState.from_graph(seed_graph(22050.0)), 10)  # another rate


def test_state_views_alias_the_compiled_memory() -> None:
    graph = loop_graph()
    compiled, state = compile_graph(graph)
    compiled.process_block(state, 100)
    line = state.array(ECHO, "_buffer")
    write = state.scalar(ECHO, "_write")
    assert line.dtype == np.float64 and line.shape == (len(graph.handle(ECHO).node._buffer),)
    # writing the delay line through the view is heard at the delay's output
    pos = int(write[0])
    d = 0.01 * SR
    assert d == 80.0  # an integer delay: the interpolator returns the line's sample exactly
    line[(pos + 50 - 80) % len(line)] = 123.0
    out = compiled.process_block(state, 100)
    assert out[1, 50] == 123.0
    # and the compiled code's writes show in the view
    before = line.copy()
    compiled.process_block(state, 10)
    assert not np.array_equal(before, line)
    # scalars too: the noise generator continues from a state written through the view
    rng = state.scalar(NOISE, "_state")
    assert rng.dtype == np.int64
    rng[0] = 12345
    compiled.process_block(state, 20)
    python = Noise.white()
    python._state = 12345
    for _ in range(20):
        python.process(SR)
    assert int(rng[0]) == python._state


def test_state_views_alias_the_kernels_memory_once_bound() -> None:
    """A state moves into the kernel's own memory when a kernel is bound to it (on the first
    block, or by ``compiled.bind(state)``): views taken after that alias what the kernel runs on,
    views taken before do not (documented in docs/jit.md)."""
    graph = seed_graph()
    compiled, state = compile_graph(graph)
    early = state.scalar(0, "_phase")
    compiled.bind(state)
    phase = state.scalar(0, "_phase")
    compiled.process_block(state, 10)
    assert phase[0] == pytest.approx(10 * 440.0 / 44100.0)
    assert early[0] == 0.0  # the copy it was taken from


def test_get_value_and_set_value_on_the_state() -> None:
    graph = seed_graph()
    compiled, state = compile_graph(graph)
    cutoff = graph.nodes[1].cutoff
    assert state.get_value(cutoff) == 1000.0
    state.set_value(cutoff, 2000.0, ramp=100 / 44100.0)
    compiled.process_block(state, 50)
    assert state.get_value(cutoff) == pytest.approx(1500.0)
    compiled.process_block(state, 60)
    assert state.get_value(cutoff) == 2000.0
    last = compiled.process_block(state, 1)[0]
    assert state.get_value(graph.nodes[2].output) == last
    assert state.frame == 111


def test_save_to_graph_then_continue_interpreted() -> None:
    reference = loop_graph().process_block(4000)
    graph = loop_graph()
    compiled, state = compile_graph(graph)
    first = compiled.process_block(state, 1500)
    state.set_value(graph.handle(LOWPASS).cutoff, 1500.0, ramp=0.0)  # no change, but a ramp slot written
    state.save_to_graph(graph)
    assert graph.frame == 1500
    rest = graph.process_block(2500)
    assert_same(reference, np.concatenate([first, rest], axis=-1))


def test_load_from_graph_then_continue_compiled() -> None:
    def build() -> Graph:
        graph = loop_graph()
        graph.queue_event(graph.nodes[1].gate, 2500, 1.0)  # pending across the hand-over
        graph.set_value(graph.handle(LOWPASS).cutoff, 300.0, ramp=0.2)  # a ramp running across it
        return graph

    reference = build().process_block(4000)
    graph = build()
    first = graph.process_block(1000)
    compiled, state = compile_graph(graph)
    rest = compiled.process_block(state, 3000)
    assert_same(reference, np.concatenate([first, rest], axis=-1))
    # load again into a state that already ran: the graph's values win
    graph2 = build()
    compiled2, state2 = compile_graph(graph2)
    compiled2.process_block(state2, 700)
    first2 = graph2.process_block(1000)
    state2.load_from_graph(graph2)
    rest2 = compiled2.process_block(state2, 3000)
    assert_same(reference, np.concatenate([first2, rest2], axis=-1))


def test_queue_event_on_the_state_lands_on_the_frame() -> None:
    graph = Graph(SR)
    env = graph.add_node(AdsrEnvelope(0.0, 0.0, 1.0, 0.0), "env")
    compiled, state = compile_graph(graph)
    compiled.process_block(state, 10)
    state.queue_event(env.gate, 5, 0.75)
    state.queue_event(env.gate, 3, 0.5)
    assert state.pending_events(env.id, "gate") == [(13, (0.5, 0.0, 0.0, 0.0)), (15, (0.75, 0.0, 0.0, 0.0))]
    out = compiled.process_block(state, 10)
    np.testing.assert_array_equal(out, [0, 0, 0, 0.5, 0.5, 0.75, 0.75, 0.75, 0.75, 0.75])
    assert state.pending_events(env.id, "gate") == []


# ---------------------------------------------------------------------------------------- call path
def test_compiled_graph_calls_the_kernel_through_the_unchecked_c_api(monkeypatch) -> None:
    """DEVELOPERS.md: calls go through wasmtime_func_call_unchecked with prepared arguments (~2 µs a
    call instead of ~25 µs through Func.__call__)."""
    ffi = compiler_module.ffi
    real = ffi._wasmtime_func_call_unchecked
    calls = []

    def spy(*args):
        calls.append(len(args))
        return real(*args)

    monkeypatch.setattr(ffi, "_wasmtime_func_call_unchecked", spy)
    import wasmtime

    def forbidden(*args, **kwargs):
        raise AssertionError("the kernel was called through wasmtime.Func.__call__")

    monkeypatch.setattr(wasmtime.Func, "__call__", forbidden)
    compiled, state = compile_graph(seed_graph())
    compiled.process_block(state, 64)
    compiled.process_block(state, 3000)  # 2 whole blocks in one `render` call, then the rest
    assert calls == [5, 5, 5]


def test_a_64_sample_block_is_cheap() -> None:
    """The one timing guard (DEVELOPERS.md asks for it): a 64-sample block of the seed graph costs
    < 20 µs median over 2000 calls (typically a few µs; the bound is generous so it never flakes)."""
    compiled, state = compile_graph(seed_graph())
    out = np.empty((1, 64))
    for _ in range(200):
        compiled.process_into(state, out)
    samples = []
    clock = time.perf_counter
    for _ in range(2000):
        t0 = clock()
        compiled.process_block(state, 64)
        samples.append(clock() - t0)
    median = statistics.median(samples)
    assert median < 20e-6, f"a 64-sample block took {median * 1e6:.1f} µs (median of 2000)"


# ---------------------------------------------------------------------------------------- helpers
def test_run_both_applies_actions_at_block_boundaries() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        graph.add_node(AdsrEnvelope(0.0, 0.0, 1.0, 0.0), "env")
        return graph

    actions = [
        event(10, "env.gate", 0.5, offset=2),
        set_value(12, "env.sustain", 0.5),
        event(20, "env.gate", 0.0),
    ]
    a, b = run_both(build, 30, actions, blocks=7)
    expected = np.zeros(30)
    expected[12:20] = 0.25  # zero attack and decay: at the sustain level (0.5 * 0.5) at once
    assert_same(a, b, atol=0.0)
    assert_same(expected[12:], a[12:], atol=0.0)
    assert np.all(a[:12] == 0.0) and np.all(a[20:] == 0.0)


def test_block_schedule_cuts_at_actions() -> None:
    assert block_schedule(10, 4) == [4, 4, 2]
    assert block_schedule(10, 4, [3, 3, 9, 0, 10]) == [3, 4, 2, 1]
    assert block_schedule(12, (5, 1)) == [5, 1, 5, 1]
    assert sum(block_schedule(44100, (441, 1000, 2500), range(0, 44100, 777))) == 44100


def test_assert_same_reports_where_and_how_much() -> None:
    a = np.zeros((2, 100))
    b = a.copy()
    b[1, 42] = 1e-6
    assert_same(a, b, atol=1e-5)
    with pytest.raises(AssertionError) as info:
        assert_same(a, b, atol=1e-9)
    text = str(info.value)
    assert "1 of 200 samples differ" in text and "channel 1, sample 42" in text and "<" in text
    with pytest.raises(AssertionError, match="shapes differ"):
        assert_same(a, b[0])
    nan = np.array([np.nan, np.inf, -np.inf, 1.0])
    assert_same(nan, nan.copy(), atol=0.0)
    with pytest.raises(AssertionError):
        assert_same(nan, np.array([0.0, np.inf, -np.inf, 1.0]))
    with pytest.raises(AssertionError):
        assert_same(nan, np.array([np.nan, -np.inf, -np.inf, 1.0]))


# ---------------------------------------------------------------------------------------- docs
DOCS = Path(__file__).resolve().parent.parent / "docs" / "jit.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def test_docs_jit_md_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/jit.md's examples run, in order, in one namespace (compiled against the file itself,
    so the JIT reads the node classes' source from docs/jit.md and errors point at its lines)."""
    monkeypatch.chdir(tmp_path)
    text = DOCS.read_text()
    blocks = [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": "jit_docs"}
    for line, code in blocks:
        exec(compile("\n" * (line - 1) + code, str(DOCS), "exec"), namespace)


def test_render_collects_many_blocks_in_one_call_like_separate_blocks() -> None:
    """Offline renders go through the kernel's `render` (whole blocks, several per call): the
    samples are the same as block-by-block processing."""
    one, state_one = compile_graph(seed_graph(), max_block=64)
    many, state_many = compile_graph(seed_graph(), max_block=64)
    whole = many.process_block(state_many, 64 * 300 + 17)
    pieces = np.concatenate([one.process_block(state_one, 64) for _ in range(300)] + [one.process_block(state_one, 17)])
    assert np.array_equal(whole, pieces)
    assert state_one.frame == state_many.frame == 64 * 300 + 17


@pytest.mark.parametrize("state_in_locals", [True, False], ids=["state-in-locals", "state-in-memory"])
def test_both_state_placements_match_the_interpreter(state_in_locals: bool) -> None:
    """Node state kept in locals across the sample loop (the default) or read and written in
    memory every sample: the demo patch, with its events and feedback, is the interpreter's."""
    from oscen.demo import demo_events, demo_patch

    reference = demo_patch(44100.0)
    demo_events(reference, reference)
    expected = reference.process_block(8000)
    graph = demo_patch(44100.0)
    compiled = CraneliftJit(state_in_locals=state_in_locals).compile(graph.to_ir())
    state = GraphState.from_graph(graph)
    demo_events(state, graph)
    got = compiled.process_block(state, 8000)
    assert np.max(np.abs(got - expected)) < 1e-9
