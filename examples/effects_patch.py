"""The modulated-delay family: a chord through a flanger, a phaser and a stereo chorus.

Three band-limited saws (an A minor triad) are softened by a one-pole lowpass, then go through a
``Flanger`` (a slow jet sweep with feedback), a six-stage ``Phaser`` and a ``Chorus`` whose left and
right outputs are the patch's stereo output::

    oscen render examples/effects_patch.py --seconds 10
"""

from oscen.effects import Chorus, Flanger, Phaser
from oscen.filters import OnePoleLowpass
from oscen.graph import Graph
from oscen.oscillators import Oscillator


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    tone = graph.add_node(OnePoleLowpass(2500.0), "tone")
    for i, frequency in enumerate((220.0, 261.63, 329.63)):
        saw = graph.add_node(Oscillator.saw(frequency, 0.2, band_limited=True), f"saw{i}")
        graph.connect(saw.output, tone.input)
    flanger = graph.add_node(Flanger(rate=0.15, depth=0.004, feedback=0.7, mix=0.5), "flanger")
    phaser = graph.add_node(Phaser(6, rate=0.3, min_frequency=250.0, max_frequency=3500.0, feedback=0.4), "phaser")
    chorus = graph.add_node(Chorus(rate=0.7, depth=0.003, mix=0.5), "chorus")
    graph.connect(tone.output, flanger.input)
    graph.connect(flanger.output, phaser.input)
    graph.connect(phaser.output, chorus.input)
    graph.set_output(chorus.left * 3.0, chorus.right * 3.0)
    return graph
