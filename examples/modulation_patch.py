"""A generative "sample and hold" melody: the classic analog patch.

White noise is sampled on every rising edge of a tempo-synced square LFO (a sixteenth note at
112 bpm); the held random voltage is slewed (portamento) and mapped to an oscillator's pitch
around 330 Hz. A slow sine LFO adds vibrato through the oscillator's FM input, and a second S&H
clocked by the same square picks a random brightness for a filter on each step.

    oscen render examples/modulation_patch.py --seconds 8
"""

from __future__ import annotations

from oscen.filters import TptFilter
from oscen.gain import Add, Multiply
from oscen.graph import Graph
from oscen.modulation import Lfo, SampleAndHold, Slew
from oscen.noise import Noise
from oscen.oscillators import Oscillator

TEMPO_BPM = 112.0
CENTRE_HZ = 330.0
SPREAD_HZ = 180.0  # the random pitch lies in CENTRE_HZ +- SPREAD_HZ


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    clock = graph.add_node(Lfo(bpm=TEMPO_BPM, division=1 / 16, shape="square"), "clock")
    noise = graph.add_node(Noise.white(1.0, seed=12))
    held = graph.add_node(SampleAndHold(), "pitch s&h")
    graph.connect(noise.output, held.input)
    graph.connect(clock.output, held.clock)
    glide = graph.add_node(Slew(rise=0.2, fall=0.2))  # 0.2 s per unit: short glides between steps
    graph.connect(held.output, glide.input)
    spread = graph.add_node(Multiply(SPREAD_HZ))
    pitch = graph.add_node(Add(CENTRE_HZ))
    graph.connect(glide.output, spread.a)
    graph.connect(spread.output, pitch.a)

    osc = graph.add_node(Oscillator.saw(CENTRE_HZ, 0.3, band_limited=True))
    graph.connect(pitch.output, osc.frequency)
    vibrato = graph.add_node(Lfo(5.5, "sine", depth=4.0))  # +-4 Hz
    graph.connect(vibrato.output, osc.fm)

    brightness = graph.add_node(SampleAndHold(), "cutoff s&h")
    graph.connect(noise.output, brightness.input)
    graph.connect(clock.output, brightness.clock)
    cutoff = graph.add_node(Multiply(1200.0))
    graph.connect(brightness.output, cutoff.a)
    lowpass = graph.add_node(TptFilter(1800.0, 2.0))  # cutoff_mod adds -1200..+1200 Hz
    graph.connect(osc.output, lowpass.input)
    graph.connect(cutoff.output, lowpass.cutoff_mod)
    graph.set_output(lowpass.lowpass)
    return graph
