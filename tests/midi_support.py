"""Helpers shared by the MIDI tests: event recorders and small voices."""

from __future__ import annotations

from oscen.envelopes import AdsrEnvelope
from oscen.graph import EventInput, Graph, Node, StreamOutput
from oscen.midi import SubGraph

SR = 1000.0  # a low rate keeps frame arithmetic readable and the interpreter fast


class Recorder(Node):
    """Logs every event it gets as (frame, fields). Interpreter-only (it keeps a Python list).

    Event handlers run before ``process`` of their sample, so ``self.t`` -- the number of
    ``process`` calls so far -- is the frame at which the event arrived.
    """

    event = EventInput()
    output = StreamOutput()  # so a graph of recorders has something to play

    def __init__(self) -> None:
        self.t = 0
        self.log: list[tuple[int, tuple[float, ...]]] = []

    def on_event(self, a: float, b: float, c: float, d: float) -> None:
        self.log.append((self.t, (a, b, c, d)))

    def process(self, sample_rate: float) -> None:
        self.t += 1


def record(graph: Graph, source) -> Recorder:
    """Attach a Recorder to an event output; returns the recorder node."""
    rec = Recorder()
    handle = graph.add_node(rec)
    graph.connect(source, handle.event)
    return rec


def envelope_voice(graph: Graph, attack: float = 0.0) -> SubGraph:
    """The smallest voice: its output is an envelope (velocity-high for attack 0) gated by the allocator."""
    env = graph.add_node(AdsrEnvelope(attack=attack, decay=0.0, sustain=1.0, release=0.0))
    return SubGraph(graph, inputs={"gate": env.gate}, outputs={"output": env.output})
