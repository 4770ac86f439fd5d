"""A multi-sampled instrument: two synthesized samples, key zones, loops, played polyphonically.

Real instruments are sampled every few notes (each sample sounds natural only near its own pitch);
``Sampler.zones`` maps key ranges to samples. The two "recordings" here are made with numpy at
load time (a bright low tone and a softer high one, each decaying partials), so the patch needs no
audio file: pass a path instead of an array to use your own (``Zone("piano_C3.wav", root=48)``).
Each zone loops a whole number of periods of its steady tail, so held notes sustain without clicks.

    oscen render examples/sampler_patch.py --seconds 4
    oscen render examples/sampler_patch.py --midi examples/song.mid
"""

from __future__ import annotations

import numpy as np

from oscen.graph import Graph
from oscen.midi import SubGraph, note_off, note_on, poly_voices
from oscen.sampler import Sampler, Zone
from oscen.stereo import Panner

SAMPLE_RATE = 44100.0
VOICES = 8
PERIODS = 40  # cycles in each loop


def tone(root: int, seconds: float, brightness: float) -> tuple[np.ndarray, int, int]:
    """A harmonic tone at MIDI note ``root`` that decays onto a steady sustain, and a loop over it.

    A loop is seamless when its two ends join up: here the loop spans exactly ``PERIODS`` cycles
    in a whole number of samples (the tone is tuned by a fraction of a cent to make that exact),
    and the tone's level is constant by then. With a recording, put the loop points at matching
    zero crossings of a steady part instead.
    """
    loop_length = round(PERIODS * SAMPLE_RATE / (440.0 * 2 ** ((root - 69) / 12)))
    f0 = PERIODS * SAMPLE_RATE / loop_length
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    settle = 0.8 * seconds  # the decays are over (constant level) from here on
    out = np.zeros(n)
    for k in range(1, 12):
        decay = 0.7 * np.exp(-np.minimum(t, settle) * (2.0 + 0.8 * k)) + 0.3
        out += brightness**k / k * np.sin(2 * np.pi * k * f0 * t) * decay
    out *= np.minimum(t / 0.003, 1.0)  # a 3 ms attack: no click at the start
    out *= 0.5 / np.max(np.abs(out))
    loop_end = n
    return out, loop_end - loop_length, loop_end


def instrument() -> Sampler:
    low, low_start, low_end = tone(48, 1.5, 0.8)
    high, high_start, high_end = tone(72, 1.2, 0.55)
    return Sampler.zones(
        [Zone(low, root=48, high=59, loop_start=low_start, loop_end=low_end, sample_rate=SAMPLE_RATE),
         Zone(high, root=72, low=60, loop_start=high_start, loop_end=high_end, sample_rate=SAMPLE_RATE)],
        mode="loop", release=0.3, velocity_sensitivity=0.7,
    )  # fmt: skip


def voice(graph: Graph) -> SubGraph:
    sampler = graph.add_node(instrument())
    return SubGraph(graph, inputs={"pitch": sampler.frequency, "gate": sampler.gate},
                    outputs={"output": sampler.output})  # fmt: skip


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    synth = poly_voices(graph, voice, VOICES, gain=0.5)
    pan = graph.add_node(Panner(-0.2))
    graph.connect(synth.output, pan.input)
    graph.set_output(pan.left, pan.right)
    # a phrase, so that `oscen render` without --midi has something to play
    beat = int(0.3 * sample_rate)
    for k, note in enumerate((48, 55, 60, 64, 67, 72)):
        graph.queue_event(synth.midi, k * beat, note_on(note, 90))
        graph.queue_event(synth.midi, k * beat + 5 * beat, note_off(note))
    return graph
