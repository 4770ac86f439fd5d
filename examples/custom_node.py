"""A user-written node: a wavefolder, played by a slow sine sweep of its drive.

A wavefolder reflects the signal back whenever it crosses +-threshold instead of clipping it, so a
sine driven harder grows new harmonics without getting louder: the classic west-coast timbre.

Node code stays in the subset the JIT compiles: attributes, float arithmetic, ``math``, ``if`` and
``while``. The same ``process`` runs in the interpreter and, compiled, in machine code::

    oscen render examples/custom_node.py --seconds 4
"""

from oscen import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.gain import Constant
from oscen.oscillators import Oscillator

MAX_FOLDS = 32
"""Bounds the fold loop, so that an absurd drive (or an inf) cannot hang the audio thread."""


class Wavefolder(Node):
    """``output`` is ``input * drive`` folded back into [-threshold, threshold], scaled to [-1, 1]."""

    input = StreamInput()
    drive = ValueInput(1.0)
    threshold = ValueInput(0.5)
    output = StreamOutput()

    def __init__(self, drive: float = 1.0, threshold: float = 0.5) -> None:
        self.drive = drive
        self.threshold = threshold

    def process(self, sample_rate: float) -> None:
        limit = max(self.threshold, 1e-6)
        x = self.input * self.drive
        folds = 0
        while (x > limit or x < -limit) and folds < MAX_FOLDS:
            if x > limit:
                x = 2.0 * limit - x  # reflect off the ceiling
            else:
                x = -2.0 * limit - x  # reflect off the floor
            folds += 1
        self.output = x / limit


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    tone = graph.add_node(Oscillator.sine(110.0, 0.5))
    folder = graph.add_node(Wavefolder(threshold=0.5))
    # drive = 3 + 2.5 sin(2 pi 0.25 t): a value input driven by streams follows the sum of its sources.
    centre = graph.add_node(Constant(3.0))
    sweep = graph.add_node(Oscillator.sine(0.25, 2.5))
    graph.connect(tone.output, folder.input)
    graph.connect(centre.output, folder.drive)
    graph.connect(sweep.output, folder.drive)
    graph.set_output(folder.output * 0.4)  # endpoint arithmetic adds a Multiply node
    return graph
