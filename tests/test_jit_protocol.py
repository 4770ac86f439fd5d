"""The program skeleton as kernel IR and the memory protocol it exports.

Every kernel exports ``set_param`` and ``queue_event`` (oscen/jit/protocol.py); a GraphState bound to
a kernel calls them, an unbound one does the same in Python. Both must leave the same bytes as the
interpreter's ``Graph.set_value`` and the queue semantics of ``GraphState`` (sorted by frame, after
events of the same frame, host-side overflow past the kernel queue's capacity). The layout is JSON.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jit_support import assert_engines_match

from oscen.demo import demo_patch
from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.jit import CraneliftJit, GraphState
from oscen.jit import compiler as jit_compiler
from oscen.jit.backends import wasm
from oscen.jit.layout import LAYOUT_VERSION, Layout
from oscen.oscillators import Oscillator

SR = 44100.0


def small_graph() -> tuple[Graph, object, object]:
    g = Graph(SR)
    osc = g.add_node(Oscillator.sine(220.0, 0.5))
    lp = g.add_node(IirLowpass(1000.0, 0.7))
    gain = g.add_node(Gain(0.5))
    g.connect(osc.output, lp.input)
    g.connect(lp.output, gain.input)
    g.set_output(gain.output)
    return g, osc, gain


def _bound_and_unbound(graph: Graph, max_block: int = 64) -> tuple[object, GraphState, GraphState]:
    """A kernel, a state bound to it and an unbound state, both made from ``graph`` now."""
    compiled = CraneliftJit(max_block=max_block).compile(graph.to_ir())
    bound = GraphState.from_graph(graph, max_block=max_block)
    compiled.bind(bound)
    unbound = GraphState.from_graph(graph, max_block=max_block)
    return compiled, bound, unbound


def _size(state: GraphState) -> int:
    return state.layout.size


# ------------------------------------------------------------------------------------ the module
@pytest.mark.parametrize("in_locals", [True, False])
def test_program_module_prints_to_the_programs_wat_and_exports_the_protocol(in_locals):
    compiled = CraneliftJit(max_block=128, state_in_locals=in_locals).compile(
        demo_patch(SR, events=True).to_ir()
    )
    program = compiled.program
    assert program.module is not None
    assert wasm.module_text(program.module) == program.wat
    exports = {f.export for f in program.module.functions if f.export}
    assert {"process", "render", "set_param", "queue_event"} <= exports
    assert [imp.name for imp in program.module.imports] == program.math_imports


def _sines_codes(n: int) -> list:
    g = Graph(SR)
    mix = g.add_node(Gain(0.25))
    for k in range(n):
        osc = g.add_node(Oscillator.sine(110.0 * (k + 1), 0.5))
        g.connect(osc.output, mix.input)
    g.set_output(mix.output)
    # node by node (one voice group holds one Instance of each Code: tests/test_voice_groups.py)
    module = CraneliftJit(voice_groups=False).compile(g.to_ir()).program.module
    return [
        s.code
        for fn in module.functions
        if fn.name.startswith("seg")
        for s in _walk(fn.body)
        if type(s).__name__ == "Instance"
    ]


def test_one_code_serves_every_node_of_a_variant(monkeypatch):
    from oscen.jit.skeleton import SkeletonBuilder

    monkeypatch.setattr(SkeletonBuilder, "scalar_fast_loops", False)
    codes = _sines_codes(4)
    assert len(codes) == 10  # per node: its parameter ramps, its process
    assert len({id(c) for c in codes}) == 4  # the same two Codes for the four sines, two for the gain


def test_one_code_serves_every_node_of_a_variant_in_a_fast_loop():
    # the scalar fast loop (passes.scalarloop) pastes each process as pieces, made once per Code:
    # the nodes of a variant share them, so the distinct Codes do not grow with the nodes
    four, eight = _sines_codes(4), _sines_codes(8)
    assert len(eight) > len(four) > 10
    assert len({id(c) for c in four}) == len({id(c) for c in eight})


def _walk(body):
    for s in body:
        yield s
        for name in ("body", "orelse"):
            inner = getattr(s, name, None)
            if isinstance(inner, list):
                yield from _walk(inner)


# ------------------------------------------------------------------------------------ set_param
def test_bound_state_sets_parameters_through_the_kernel(monkeypatch):
    graph, osc, _ = small_graph()
    _compiled, bound, _ = _bound_and_unbound(graph)
    calls = []
    original = jit_compiler._Binding.set_param
    monkeypatch.setattr(
        jit_compiler._Binding, "set_param", lambda self, *a: (calls.append(a), original(self, *a))[1]
    )
    bound.set_value(osc.frequency, 330.0, ramp=0.01)
    assert len(calls) == 1
    assert bound.get_value(osc.frequency) == 220.0  # ramping from here
    bound.set_value(osc.frequency, 440.0)
    assert bound.get_value(osc.frequency) == 440.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.one_of(st.just(0.0), st.floats(0.0, 0.05), st.sampled_from([0.5 / SR, 1.5 / SR, 2.5 / SR])),
            st.integers(0, 40),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_set_param_is_bit_identical_to_the_interpreters_ramps(changes):
    graph, osc, _ = small_graph()
    compiled, bound, unbound = _bound_and_unbound(graph)
    slots = bound.layout.nodes[osc.id].params["frequency"]
    for value, ramp, samples in changes:
        graph.set_value(osc.frequency, value, ramp)
        bound.set_value(osc.frequency, value, ramp)
        unbound.set_value(osc.frequency, value, ramp)
        assert bytes(bound.bytes[slots.value : slots.value + 32]) == bytes(
            unbound.bytes[slots.value : slots.value + 32]
        )
        ramp_now = graph.ramps().get((osc.id, "frequency"))
        if ramp_now is not None:  # the interpreter's ramp, slot for slot
            assert bound._f64(slots.step)[0] == ramp_now.step or (
                np.isnan(ramp_now.step) and np.isnan(bound._f64(slots.step)[0])
            )
            assert int(bound._i64(slots.remaining)[0]) == ramp_now.remaining
        else:
            assert int(bound._i64(slots.remaining)[0]) == 0
        # advance both engines: the value follows the interpreter's bit for bit
        if samples:
            graph.process_block(samples)
            compiled.process_block(bound, samples)
            unbound.bytes[: _size(unbound)] = bound.bytes[: _size(bound)]
            assert bound.get_value(osc.frequency) == graph.get_value(osc.frequency)


# ------------------------------------------------------------------------------------ queue_event
def _gate_graph() -> tuple[Graph, object]:
    """An envelope: its gate is an event input."""
    graph = Graph(SR)
    env = graph.add_node(AdsrEnvelope())
    graph.set_output(env.output)
    return graph, env.gate


def _queue_bytes(state: GraphState, node_id: int, name: str) -> bytes:
    q = state.layout.nodes[node_id].external_queues[name]
    count = int(state.bytes[q.base : q.base + 4].view(np.int32)[0])
    return bytes(state.bytes[q.base : q.entries + count * 40])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 12), st.floats(0, 127, allow_nan=False), st.floats(-1, 1, allow_nan=False)),
        min_size=1,
        max_size=40,
    ),
    st.integers(0, 3),
)
def test_queue_event_through_the_kernel_matches_the_python_protocol(events, blocks):
    graph, gate = _gate_graph()
    compiled, bound, unbound = _bound_and_unbound(graph, max_block=8)
    for frame, a, b in events:
        bound.queue_event(gate, frame, (144.0, a, b))
        unbound.queue_event(gate, frame, (144.0, a, b))
        assert _queue_bytes(bound, gate.node_id, gate.name) == _queue_bytes(unbound, gate.node_id, gate.name)
    for _ in range(blocks):
        compiled.process_block(bound, 4)
    # the kernel dispatched what was due, in order, and left the rest queued as it was
    later = [e for e in unbound.pending_events(gate.node_id, gate.name) if e[0] >= bound.frame]
    assert bound.pending_events(gate.node_id, gate.name) == later


def test_queue_event_past_the_kernels_capacity_overflows_on_the_host_identically():
    graph, gate = _gate_graph()
    compiled, bound, unbound = _bound_and_unbound(graph, max_block=16)
    q = bound.layout.nodes[gate.node_id].external_queues[gate.name]
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 3 * q.capacity, size=q.capacity + 100)
    for j, frame in enumerate(frames):
        for state in (bound, unbound):
            state.queue_event(gate, int(frame), (144.0, float(j % 128), 0.5))
    assert bound._overflow_count == unbound._overflow_count == 100
    assert _queue_bytes(bound, gate.node_id, gate.name) == _queue_bytes(unbound, gate.node_id, gate.name)
    assert bound.pending_events(gate.node_id, gate.name) == unbound.pending_events(gate.node_id, gate.name)
    waiting = bound.pending_events(gate.node_id, gate.name)
    assert [f for f, _ in waiting] == sorted(int(f) for f in frames)  # in frame order, stable


# ------------------------------------------------------------------------------------ layout JSON
@pytest.mark.parametrize("max_block", [64, 1024])
def test_layout_round_trips_through_json(max_block):
    for graph in (demo_patch(SR, events=True), small_graph()[0]):
        layout = Layout.of(graph.to_ir(), max_block)
        text = layout.to_json()
        back = Layout.from_json(text)
        assert back == layout
        assert back.to_json() == text


def test_layout_json_refuses_another_format():
    text = Layout.of(small_graph()[0].to_ir(), 64).to_json()
    with pytest.raises(ValueError, match="version"):
        Layout.from_json(text.replace(f'"version":{LAYOUT_VERSION}', '"version":99'))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(["$S_a", "$S_ab", "$S_a.b", "$S_", "$x", " ", "(", ")", "a", "S_a", "$S_b"]),
        max_size=30,
    ),
    st.dictionaries(
        st.sampled_from(["S_a", "S_ab", "S_", "x", "S_b"]), st.sampled_from(["n1_a", "n2_ab", "q"])
    ),
)
def test_instance_renames_replace_whole_names_only(parts, renames):
    import re

    text = "".join(parts)
    every_name = re.sub(r"\$([A-Za-z0-9_.]+)", lambda m: "$" + renames.get(m.group(1), m.group(1)), text)
    assert wasm.rename(text, renames) == every_name


def test_an_input_mixing_hundreds_of_sources_compiles():
    # regression: the sum was one expression as deep as the sources were many, and printing it
    # recursed past Python's limit (bench_jit's parallel graph of 1001 nodes)
    g = Graph(SR)
    mix = g.add_node(Gain(1.0))
    for k in range(700):
        osc = g.add_node(Oscillator.sine(50.0 + k, 1.0 / (k + 1)))
        g.connect(osc.output, mix.input)
    g.set_output(mix.output)
    compiled = CraneliftJit(max_block=64).compile(g.to_ir())
    state = GraphState.from_graph(g, max_block=64)
    got = compiled.process_block(state, 64)
    want = g.process_block(64)
    assert_engines_match(want, got)  # the sines' library calls differ by ulps at most


def test_queue_views_follow_the_state_back_into_an_earlier_kernels_memory() -> None:
    """A state that moves between two kernels' memories (a JitGraph swapping back and forth)
    must read its queues where it now lives: its cached queue views once kept pointing into the
    memory it had left."""
    graph = Graph(44100)
    env = graph.add_node(AdsrEnvelope())
    graph.set_output(env.output)
    ir = graph.to_ir()
    a, b = CraneliftJit().compile(ir), CraneliftJit().compile(ir)
    state = GraphState.from_graph(graph)
    a.bind(state)
    b.bind(state)
    assert state.events_waiting(env.id, "gate", 0) == 0  # views of b's memory made here
    a.bind(state)  # back into a's memory
    state.queue_event(env.gate, 10, 1.0)
    assert state.events_waiting(env.id, "gate", 10) == 1
    a.process_block(state, 64)
    assert state.events_waiting(env.id, "gate", 10) == 0
