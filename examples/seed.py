"""The seed patch: a 440 Hz sine through a resonant lowpass and a gain.

Render it with ``oscen render examples/seed.py`` (writes seed.wav here). A patch file defines
``patch(sample_rate) -> Graph``: the caller chooses the rate and gets a fresh graph per call.
"""

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.oscillators import Oscillator


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5))
    filt = graph.add_node(IirLowpass(1000.0, 0.7))
    gain = graph.add_node(Gain(0.8))
    graph.connect(osc.output, filt.input)
    graph.connect(filt.output, gain.input)
    return graph  # with no set_output, the graph plays its last node's output: the gain
