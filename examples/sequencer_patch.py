"""The sequencing family: a Clock drives a step Sequencer playing an acid-style bass line.

``Clock`` ticks sixteenth notes at 126 bpm; the ``Sequencer`` plays a 16-step pattern (rests as
``None``, accents as higher velocities), its ``frequency`` output drives a band-limited saw and its
``gate`` events an ADSR envelope that opens both a ladder filter and the amplifier. A dotted-eighth
echo follows::

    oscen render examples/sequencer_patch.py --seconds 8
"""

from oscen.delay import Delay
from oscen.envelopes import AdsrEnvelope
from oscen.filters import LadderFilter
from oscen.gain import Multiply
from oscen.graph import Graph
from oscen.oscillators import Oscillator
from oscen.sequencing import Clock, Sequencer

BPM = 126.0
PATTERN = [36, 36, 48, None, 36, 39, None, 43, 36, None, 46, 48, 36, 41, 43, None]
ACCENTS = [1.0, 0.5, 0.8, 0.5, 1.0, 0.5, 0.5, 0.9, 1.0, 0.5, 0.6, 0.9, 1.0, 0.5, 0.8, 0.5]


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    clock = graph.add_node(Clock(BPM, division=4), "clock")
    seq = graph.add_node(Sequencer(PATTERN, ACCENTS, gate_time=0.09), "seq")
    saw = graph.add_node(Oscillator.saw(band_limited=True), "saw")
    env = graph.add_node(AdsrEnvelope(attack=0.003, decay=0.18, sustain=0.2, release=0.05), "env")
    ladder = graph.add_node(LadderFilter(180.0, resonance=0.8, drive=2.0), "ladder")
    vca = graph.add_node(Multiply(), "vca")
    echo = graph.add_node(Delay(0.75 * 60.0 / BPM, feedback=0.35), "echo")
    graph.connect(clock.tick, seq.clock)
    graph.connect(seq.frequency, saw.frequency)
    graph.connect(seq.gate, env.gate)
    graph.connect(saw.output, ladder.input)
    sweep = graph.add_node(Multiply(), "sweep")  # envelope * 2200 Hz onto the cutoff
    graph.connect(env.output, sweep.a)
    graph.set_value(sweep.b, 2200.0)
    graph.connect(sweep.output, ladder.cutoff_mod)
    graph.connect(ladder.output, vca.a)
    graph.connect(env.output, vca.b)
    graph.connect(vca.output, echo.input)
    graph.set_output(vca.output * 0.8 + echo.output * 0.3)
    return graph
