"""A wavetable pad: three voices of a sine -> triangle -> saw -> square table set, each scanned by
its own slow LFO, so the timbre keeps moving; a tempo-synced LFO adds a gentle tremolo.

The tables are band-limited per octave when the node is built (numpy FFT), so even the square at
the top of the chord has no partial above Nyquist.

    oscen render examples/wavetable_patch.py --seconds 8
"""

from __future__ import annotations

from oscen.gain import Gain, Multiply
from oscen.graph import Graph
from oscen.modulation import Lfo
from oscen.stereo import Panner
from oscen.wavetable import Wavetable

CHORD_HZ = (110.0, 164.81, 261.63)  # A2, E3, C4
TEMPO_BPM = 96.0


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    tremolo = graph.add_node(Lfo(bpm=TEMPO_BPM, division=1 / 8, shape="triangle", depth=0.15, offset=0.85))
    mix_left = graph.add_node(Gain(1.0))  # stream inputs sum their sources: these are the stereo bus
    mix_right = graph.add_node(Gain(1.0))
    for k, hz in enumerate(CHORD_HZ):
        osc = graph.add_node(Wavetable.basic(hz, amplitude=0.22))
        # position = 0.5 + 0.5 sin(...): scans all four tables, each voice at its own rate
        scan = graph.add_node(Lfo(0.07 + 0.05 * k, "sine", depth=0.5, offset=0.5, phase=0.3 * k))
        graph.connect(scan.output, osc.position)
        vca = graph.add_node(Multiply())
        graph.connect(osc.output, vca.a)
        graph.connect(tremolo.output, vca.b)
        pan = graph.add_node(Panner(-0.6 + 0.6 * k))
        graph.connect(vca.output, pan.input)
        graph.connect(pan.left, mix_left.input)
        graph.connect(pan.right, mix_right.input)
    graph.set_output(mix_left.output, mix_right.output)
    return graph
