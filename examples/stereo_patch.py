"""Stereo placement: two tones auto-panned by LFOs in opposite directions, then widened.

``Panner`` uses the equal-power law, so each tone keeps its loudness as it moves; ``StereoWidth``
scales the side (L - R) signal of the mix: width 1.6 here spreads it past the speakers' span,
while the mono sum (the mid) stays exactly the same.

    oscen render examples/stereo_patch.py --seconds 6
"""

from __future__ import annotations

from oscen.graph import Graph
from oscen.modulation import Lfo
from oscen.oscillators import Oscillator
from oscen.stereo import Panner, StereoWidth


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    width = graph.add_node(StereoWidth(1.6))
    for k, (hz, rate) in enumerate(((220.0, 0.25), (277.18, 0.4))):
        tone = graph.add_node(Oscillator.triangle(hz, 0.3, band_limited=True))
        pan = graph.add_node(Panner())
        motion = graph.add_node(Lfo(rate, "sine", depth=0.9, phase=0.5 * k))  # opposite directions
        graph.connect(tone.output, pan.input)
        graph.connect(motion.output, pan.pan)
        graph.connect(pan.left, width.input)  # stream inputs sum their sources
        graph.connect(pan.right, width.input_right)
    graph.set_output(width.left, width.right)
    return graph
