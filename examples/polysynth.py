"""A 16-voice polyphonic analog-style synth, played by MIDI.

Each voice: two band-limited saws, one detuned a few cents sharp (the classic chorused "supersaw
lite"), into a resonant TPT lowpass whose cutoff opens with a filter envelope (deeper for harder
hits, since the envelope peaks at the note's velocity) and follows the keyboard, then an amplitude
envelope. The 16 voices are mixed into a stereo reverb.

Play a MIDI file through it::

    oscen render examples/polysynth.py --midi examples/song.mid

The MIDI input is the ``midi`` input of the graph's first MidiParser node (found with
``oscen.midi.find_midi_input``); queue ``(status, data1, data2)`` events there to play it from
Python. The pitch wheel bends +-2 semitones; the sustain pedal (CC 64) works.
"""

from __future__ import annotations

from oscen.envelopes import AdsrEnvelope
from oscen.filters import TptFilter
from oscen.gain import Multiply
from oscen.graph import Graph
from oscen.midi import SubGraph, poly_voices
from oscen.oscillators import Oscillator
from oscen.reverb import Reverb

VOICES = 16
DETUNE_CENTS = 7.0
CUTOFF_HZ = 250.0  # the filter's floor
FILTER_ENV_HZ = 3500.0  # how far the filter envelope opens it at full velocity
KEY_TRACK = 1.5  # cutoff added per Hz of note pitch (1.5: the filter follows the keyboard)
RESONANCE = 2.2
VOICE_LEVEL = 0.24  # per voice; a few notes with reverb peak around -3 dBFS


def voice(graph: Graph) -> SubGraph:
    """One voice: pitch (Hz, value) and gate (velocity event) in, audio out."""
    saw1 = graph.add_node(Oscillator.saw(440.0, 0.5, band_limited=True))
    detune = graph.add_node(Multiply(2.0 ** (DETUNE_CENTS / 1200.0)))
    saw2 = graph.add_node(Oscillator.saw(440.0, 0.5, band_limited=True, phase=0.37))
    graph.connect(detune.output, saw2.frequency)

    filter_env = graph.add_node(AdsrEnvelope(attack=0.005, decay=0.45, sustain=0.25, release=0.5))
    env_amount = graph.add_node(Multiply(FILTER_ENV_HZ))
    key_track = graph.add_node(Multiply(KEY_TRACK))
    lowpass = graph.add_node(TptFilter(CUTOFF_HZ, RESONANCE))
    graph.connect(saw1.output, lowpass.input)  # stream inputs sum their sources: the two saws mix here
    graph.connect(saw2.output, lowpass.input)
    graph.connect(filter_env.output, env_amount.a)
    graph.connect(env_amount.output, lowpass.cutoff_mod)
    graph.connect(key_track.output, lowpass.cutoff_mod)

    amp_env = graph.add_node(AdsrEnvelope(attack=0.008, decay=0.3, sustain=0.7, release=0.6))
    vca = graph.add_node(Multiply(0.0))
    graph.connect(lowpass.lowpass, vca.a)
    graph.connect(amp_env.output, vca.b)

    return SubGraph(
        graph,
        inputs={
            "pitch": [saw1.frequency, detune.a, key_track.a],
            "gate": [filter_env.gate, amp_env.gate],
        },
        outputs={"output": vca.output},
    )


def patch(sample_rate: float, voices: int = VOICES) -> Graph:
    graph = Graph(sample_rate)
    synth = poly_voices(graph, voice, voices, bend_range=2.0, gain=VOICE_LEVEL)
    reverb = graph.add_node(Reverb(room_size=0.78, damping=0.45, wet=0.22, dry=0.85, width=1.0), "reverb")
    graph.connect(synth.output, reverb.input)
    graph.set_output(reverb.left, reverb.right)
    return graph
