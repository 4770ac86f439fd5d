"""The ladder filter family: a detuned saw bass through a resonant Moog-style ladder, swept.

Two band-limited saws an octave and a few cents apart feed a ``LadderFilter`` whose cutoff an LFO
sweeps between about 150 Hz and 2.4 kHz (``cutoff`` plus the LFO on ``cutoff_mod``), at a
resonance just under self-oscillation and a little drive into its tanh. A one-pole highpass and a
DC blocker clean up the bottom, a one-pole lowpass takes the edge off the top::

    oscen render examples/ladder_patch.py --seconds 8
"""

from oscen.filters import DcBlocker, LadderFilter, OnePoleHighpass, OnePoleLowpass
from oscen.graph import Graph
from oscen.oscillators import Oscillator


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    low = graph.add_node(Oscillator.saw(55.0, 0.4, band_limited=True), "saw_low")
    high = graph.add_node(Oscillator.saw(110.4, 0.3, band_limited=True), "saw_high")
    lfo = graph.add_node(Oscillator.sine(0.25, 1100.0, phase=0.75), "lfo")  # starts at its lowest
    ladder = graph.add_node(LadderFilter(1250.0, resonance=0.85, drive=1.5), "ladder")
    highpass = graph.add_node(OnePoleHighpass(30.0), "highpass")
    lowpass = graph.add_node(OnePoleLowpass(6000.0), "lowpass")
    dc = graph.add_node(DcBlocker(10.0), "dc")
    graph.connect(low.output, ladder.input)
    graph.connect(high.output, ladder.input)
    graph.connect(lfo.output, ladder.cutoff_mod)
    graph.connect(ladder.output, highpass.input)
    graph.connect(highpass.output, lowpass.input)
    graph.connect(lowpass.output, dc.input)
    graph.set_output(dc.output * 1.5)
    return graph
