"""The arithmetic nodes behind endpoint arithmetic: ``osc.output * 0.5``, ``a.output + b.output``.

The graph connects the left operand to the stream input ``a`` and either connects the right operand
to the value input ``b`` or sets ``b`` to the constant. They are ordinary nodes (``oscen.gain``
re-exports them with the other gain nodes), defined here so that the graph layer needs nothing
from the node library above it.
"""

from __future__ import annotations

from .endpoints import StreamInput, StreamOutput, ValueInput
from .node import Node

__all__ = ["Add", "Multiply"]


class Add(Node):
    """``output = a + b``: a stream plus a value (a constant offset, or any connected output)."""

    a = StreamInput()
    b = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self, b: float = 0.0) -> None:
        self.b = float(b)

    def __repr__(self) -> str:
        return f"Add({self.b!r})"

    def process(self, sample_rate: float) -> None:
        self.output = self.a + self.b


class Multiply(Node):
    """``output = a * b``: a stream times a value (a constant factor, or any connected output: a VCA)."""

    a = StreamInput()
    b = ValueInput(1.0)
    output = StreamOutput()

    def __init__(self, b: float = 1.0) -> None:
        self.b = float(b)

    def __repr__(self) -> str:
        return f"Multiply({self.b!r})"

    def process(self, sample_rate: float) -> None:
        self.output = self.a * self.b
