"""A driven bass: a band-limited saw through a 4x-oversampled tanh waveshaper whose drive is swept
by an LFO, then a lowpass. Oversampling keeps the harmonics the shaper creates from folding back
below Nyquist as inharmonic aliases (see Waveshaper's docstring for the measured figures).

    oscen render examples/distortion_patch.py --seconds 6
"""

from __future__ import annotations

from oscen.distortion import Waveshaper
from oscen.filters import IirLowpass
from oscen.gain import Constant
from oscen.graph import Graph
from oscen.modulation import Lfo
from oscen.oscillators import Oscillator


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    bass = graph.add_node(Oscillator.saw(55.0, 0.8, band_limited=True))
    shaper = graph.add_node(Waveshaper(drive=3.0, shape="tanh", oversample=4, level=0.5))
    # drive = 4 + 3 sin(2 pi 0.2 t): a connected value input follows the sum of its sources
    centre = graph.add_node(Constant(4.0))
    sweep = graph.add_node(Lfo(0.2, "sine", depth=3.0))
    graph.connect(centre.output, shaper.drive)
    graph.connect(sweep.output, shaper.drive)
    graph.connect(bass.output, shaper.input)
    tone = graph.add_node(IirLowpass(3000.0, 0.8))
    graph.connect(shaper.output, tone.input)
    graph.set_output(tone.output)
    return graph
