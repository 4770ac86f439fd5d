"""Sub-graphs: named inputs/outputs over nodes in a parent graph, fan-out, instantiate, poly_voices."""

from __future__ import annotations

import numpy as np
import pytest
from midi_support import SR, envelope_voice

from oscen.envelopes import AdsrEnvelope
from oscen.gain import Gain, Multiply
from oscen.graph import Graph
from oscen.midi import (
    EventRelay,
    MidiParser,
    Polyphony,
    SubGraph,
    SubGraphError,
    ValueRelay,
    VoiceAllocator,
    instantiate,
    note_off,
    note_on,
    poly_voices,
)
from oscen.midi.subgraph import connect
from oscen.oscillators import Oscillator


def tone_voice(graph: Graph) -> SubGraph:
    """Pitch fans out to two oscillators, gate to two envelopes; output is their product sum."""
    osc1 = graph.add_node(Oscillator.sine(440.0, 0.5))
    osc2 = graph.add_node(Oscillator.sine(440.0, 0.25))
    env1 = graph.add_node(AdsrEnvelope(0.002, 0.01, 0.5, 0.005))
    env2 = graph.add_node(AdsrEnvelope(0.0, 0.0, 1.0, 0.0))
    vca1 = graph.add_node(Multiply())
    vca2 = graph.add_node(Multiply())
    graph.connect(osc1.output, vca1.a)
    graph.connect(env1.output, vca1.b)
    graph.connect(osc2.output, vca2.a)
    graph.connect(env2.output, vca2.b)
    mix = graph.add_node(Gain(1.0))
    graph.connect(vca1.output, mix.input)
    graph.connect(vca2.output, mix.input)
    return SubGraph(
        graph,
        inputs={"pitch": [osc1.frequency, osc2.frequency], "gate": [env1.gate, env2.gate]},
        outputs={"output": mix.output},
    )


def _render(use_relays: bool) -> np.ndarray:
    graph = Graph(SR)
    parser = graph.add_node(MidiParser())
    alloc = graph.add_node(VoiceAllocator(1))
    graph.connect(parser.note_on, alloc.note_on)
    graph.connect(parser.note_off, alloc.note_off)
    voice = tone_voice(graph)
    if use_relays:
        graph.connect(alloc.gate0, voice.gate)  # relay nodes, added on first access
        graph.connect(alloc.pitch0, voice.pitch)
    else:
        voice.connect_input("gate", alloc.gate0)
        connect(graph, alloc.pitch0, (voice, "pitch"))
    graph.set_output(voice.output)
    graph.queue_event(parser.midi, 7, note_on(81, 100))
    graph.queue_event(parser.midi, 40, note_off(81))
    graph.queue_event(parser.midi, 60, note_on(57, 127))
    out = graph.process_block(80)
    n_relays = sum(isinstance(h.node, (EventRelay, ValueRelay)) for h in graph.nodes)
    assert n_relays == (2 if use_relays else 0)
    return out


def test_fan_out_inputs_with_and_without_relays_sound_the_same() -> None:
    direct = _render(use_relays=False)
    relayed = _render(use_relays=True)
    assert np.all(direct[:7] == 0.0)
    assert direct[7] != 0.0 or direct[8] != 0.0
    assert np.array_equal(direct, relayed)


def test_single_target_input_is_the_inner_endpoint_and_outputs_pass_through() -> None:
    graph = Graph(SR)
    env = graph.add_node(AdsrEnvelope())
    sub = SubGraph(graph, inputs={"gate": env.gate}, outputs={"out": env.output}, name="env")
    assert sub.gate == env.gate
    assert sub.out == env.output
    assert sub.output_endpoint("out") == env.output
    assert sub.input_targets("gate") == (env.gate,)
    assert sub.input_names == ["gate"] and sub.output_names == ["out"]
    assert "gate" in dir(sub)
    assert "env" in repr(sub)


def test_relay_is_created_once() -> None:
    graph = Graph(SR)
    sub = tone_voice(graph)
    n = len(graph.nodes)
    assert sub.pitch == sub.pitch
    assert len(graph.nodes) == n + 1


def test_subgraph_errors_are_clear() -> None:
    graph = Graph(SR)
    env = graph.add_node(AdsrEnvelope())
    osc = graph.add_node(Oscillator.sine())
    with pytest.raises(SubGraphError, match="inner input endpoints"):
        SubGraph(graph, inputs={"x": env.output})
    with pytest.raises(SubGraphError, match="one output endpoint"):
        SubGraph(graph, outputs={"x": env.gate})
    with pytest.raises(SubGraphError, match="mixes event and stream/value"):
        SubGraph(graph, inputs={"x": [env.gate, osc.frequency]})
    with pytest.raises(SubGraphError, match="no inner targets"):
        SubGraph(graph, inputs={"x": []})
    with pytest.raises(SubGraphError, match="SubGraph attribute"):
        SubGraph(graph, inputs={"remove": env.gate})
    with pytest.raises(SubGraphError, match="both an input and an output"):
        SubGraph(graph, inputs={"x": env.gate}, outputs={"x": env.output})
    other = Graph(SR)
    with pytest.raises(SubGraphError, match="another graph"):
        SubGraph(other, inputs={"gate": env.gate})
    sub = SubGraph(graph, inputs={"gate": env.gate}, outputs={"output": env.output})
    with pytest.raises(AttributeError, match="has no input or output 'pitch'"):
        _ = sub.pitch
    with pytest.raises(SubGraphError, match="no input 'pitch'"):
        sub.connect_input("pitch", osc.output)


def test_connect_input_is_all_or_nothing() -> None:
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine())
    a = graph.add_node(Multiply())
    b = graph.add_node(Multiply())
    sub = SubGraph(graph, inputs={"x": [a.a, b.a]})
    graph.connect(osc.output, b.a)  # the second connection will fail as a duplicate
    with pytest.raises(Exception, match="already connected"):
        sub.connect_input("x", osc.output)
    assert [c.target for c in graph.connections] == [b.a]


def test_instantiate_tracks_nodes_passes_the_index_and_removes() -> None:
    graph = Graph(SR)
    seen = []

    def build(g: Graph, index: int) -> SubGraph:
        seen.append(index)
        return envelope_voice(g)

    subs = instantiate(graph, build, 3)
    assert seen == [0, 1, 2]
    assert [s.name for s in subs] == ["voice0", "voice1", "voice2"]
    assert all(len(s.nodes) == 1 for s in subs)
    assert len({s.nodes[0].id for s in subs}) == 3
    subs[1].remove()
    assert len(graph.nodes) == 2

    class Voice(SubGraph):  # the class form: a SubGraph subclass that builds itself
        def __init__(self, g: Graph) -> None:
            env = g.add_node(AdsrEnvelope())
            super().__init__(g, inputs={"gate": env.gate}, outputs={"output": env.output})

    assert all(isinstance(v, Voice) for v in instantiate(graph, Voice, 2))
    with pytest.raises(SubGraphError, match="must return the SubGraph"):
        instantiate(graph, lambda g: None, 1)


def test_poly_voices_builds_the_chain_and_mixes() -> None:
    graph = Graph(SR)
    synth = poly_voices(graph, envelope_voice, 3)
    assert isinstance(synth, Polyphony)
    midi, output = synth
    assert midi == synth.parser.midi and output == synth.mixer.output
    assert len(synth.voices) == 3
    assert synth.bend_range == synth.allocator.bend_range
    graph.set_output(output)
    graph.queue_event(midi, 2, note_on(60, 127))
    graph.queue_event(midi, 4, note_on(64, 127))
    graph.queue_event(midi, 6, note_off(60))
    out = graph.process_block(8)
    assert list(out) == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0]


def test_poly_voices_rejects_a_voice_without_gate_or_output() -> None:
    graph = Graph(SR)

    def bad(g: Graph) -> SubGraph:
        env = g.add_node(AdsrEnvelope())
        return SubGraph(g, inputs={"trigger": env.gate}, outputs={"output": env.output})

    with pytest.raises(SubGraphError, match="'gate' input and an 'output'"):
        poly_voices(graph, bad, 2)
