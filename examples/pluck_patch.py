"""The plucked-string family: Karplus-Strong strings strumming a chord progression.

Each chord has its own six ``Pluck`` strings, tuned once (a patch file queues its events before
playing, so strings keep their pitch): a strum is six ``trigger`` events 25 ms apart, low string
first, and every two seconds the next chord is strummed. An allpass pair diffuses the sound a
little (a tiny "body"), a feedforward comb adds a short slap, a DC blocker keeps the bottom clean::

    oscen render examples/pluck_patch.py --seconds 8
"""

from oscen.filters import AllpassFilter, CombFilter, DcBlocker
from oscen.graph import Graph
from oscen.pluck import Pluck
from oscen.sequencing import midi_to_hz

CHORDS = [(40, 47, 52, 55, 59, 64), (45, 52, 57, 60, 64, 69), (43, 50, 55, 59, 62, 67), (38, 45, 50, 57, 62, 66)]
"""E minor, A minor, G major, D major, as MIDI notes, low string first."""
BAR = 2.0  # seconds per chord
STRUM = 0.025  # seconds between strings


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    body = graph.add_node(AllpassFilter(0.0031, 0.5), "body1")
    body2 = graph.add_node(AllpassFilter(0.0047, 0.4), "body2")
    slap = graph.add_node(CombFilter(0.045, 0.3, mode="feedforward"), "slap")
    dc = graph.add_node(DcBlocker(), "dc")
    for c, chord in enumerate(CHORDS):
        for s, note in enumerate(chord):
            string = graph.add_node(Pluck(midi_to_hz(note), decay=2.5, brightness=0.45 + 0.08 * s, seed=6 * c + s),
                                    f"string{c}_{s}")  # fmt: skip
            graph.connect(string.output, body.input)
            for repeat in range(2):  # each chord twice, four chords: 16 s of music
                at = (repeat * len(CHORDS) + c) * BAR + s * STRUM
                graph.queue_event(string.trigger, round(at * sample_rate), 0.5 + 0.05 * s)
    graph.connect(body.output, body2.input)
    graph.connect(body2.output, slap.input)
    graph.connect(slap.output, dc.input)
    graph.set_output(dc.output * 0.35)
    return graph
