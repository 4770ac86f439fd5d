"""Endpoint declarations (class level) and endpoint handles (graph level).

A node class declares its endpoints as class attributes::

    class Doubler(Node):
        input = StreamInput()
        output = StreamOutput()

Inside ``process`` the node reads and writes them as plain attributes (``self.input`` is a float), so
the interpreter can run the method as written and the JIT can compile the same source. The graph
refers to them through :class:`Endpoint` handles, returned by ``graph.add_node(...)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

MAX_EVENT_FIELDS = 4
"""An event carries up to this many numbers (a gate's velocity, a MIDI note's pitch and velocity...)."""


class Kind(str, Enum):
    """What flows through an endpoint."""

    STREAM = "stream"  # one float per sample
    VALUE = "value"  # a parameter: one float per sample, set from outside or driven by a stream
    EVENT = "event"  # timestamped messages of up to MAX_EVENT_FIELDS numbers


class Direction(str, Enum):
    INPUT = "input"
    OUTPUT = "output"


class EndpointSpec:
    """Declares one endpoint of a node class; a descriptor that yields the declared default.

    It is a *non-data* descriptor: once the node has a value in its ``__dict__`` (set when the node
    is created), attribute access is a plain dict lookup, as fast as any attribute.
    """

    kind: Kind
    direction: Direction

    def __init__(self, default: float = 0.0) -> None:
        self.default = float(default)
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return self.initial_value()

    def initial_value(self) -> Any:
        return self.default

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.default!r})"


class StreamInput(EndpointSpec):
    """Per-sample audio input. Several sources connected to it are summed; unconnected it holds its default."""

    kind = Kind.STREAM
    direction = Direction.INPUT


class StreamOutput(EndpointSpec):
    """Per-sample audio output: the node assigns it in ``process``."""

    kind = Kind.STREAM
    direction = Direction.OUTPUT


class ValueInput(EndpointSpec):
    """A parameter with a default, set with ``graph.set_value`` (optionally ramped).

    Connected to stream or value outputs, the value set is a base that its sources add to.
    ``range=(low, high)`` says which values make sense, for user interfaces (the web export's
    sliders, logarithmic when ``high / low >= 100``); it does not clamp what ``set_value`` takes.
    """

    kind = Kind.VALUE
    direction = Direction.INPUT

    def __init__(self, default: float = 0.0, *, range: tuple[float, float] | None = None) -> None:
        super().__init__(default)
        if range is not None:
            low, high = (float(v) for v in range)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"ValueInput: range must be two finite numbers, low < high; got {range!r}")
            range = (low, high)
        self.range = range


class ValueOutput(EndpointSpec):
    """A control output (one value per sample), connectable to value and stream inputs."""

    kind = Kind.VALUE
    direction = Direction.OUTPUT


class EventInput(EndpointSpec):
    """Timestamped messages in. The node handles each in a method ``on_<name>(self, *fields)``,
    called at the exact sample of the event, before ``process`` for that sample."""

    kind = Kind.EVENT
    direction = Direction.INPUT

    def __init__(self) -> None:
        super().__init__(0.0)

    def initial_value(self) -> Any:
        return None


class EventOutput(EndpointSpec):
    """Timestamped messages out: the node calls ``self.<name>.emit(*fields)`` in ``process`` or in
    an event handler; the event reaches every connected event input at the same sample."""

    kind = Kind.EVENT
    direction = Direction.OUTPUT

    def __init__(self) -> None:
        super().__init__(0.0)

    def initial_value(self) -> Any:
        return Emitter()


class Emitter:
    """What ``self.<event output>`` is inside a node. Detached (outside a graph) it drops events."""

    __slots__ = ("_deliver",)

    def __init__(self) -> None:
        self._deliver: Any = None

    def emit(self, *fields: float) -> None:
        if len(fields) > MAX_EVENT_FIELDS:
            raise ValueError(f"an event carries at most {MAX_EVENT_FIELDS} fields, got {len(fields)}")
        if self._deliver is not None:
            self._deliver(fields)


@dataclass(frozen=True)
class Endpoint:
    """A handle on one endpoint of one node in a graph: what ``connect``, ``set_value`` take."""

    node_id: int
    name: str
    kind: Kind
    direction: Direction
    node_label: str = ""
    graph: Any = field(default=None, compare=False, hash=False, repr=False)

    def __repr__(self) -> str:
        return f"<{self.direction.value} {self.kind.value} {self.node_label or self.node_id}.{self.name}>"

    # Arithmetic between outputs reads naturally in patches: `osc_a.output + osc_b.output * 0.5`
    # adds the arithmetic nodes (oscen.graph.arith.Add / Multiply) to the graph and yields their output.
    def __add__(self, other: Endpoint | float) -> Endpoint:
        return self._arith("add", other)

    __radd__ = __add__

    def __mul__(self, other: Endpoint | float) -> Endpoint:
        return self._arith("mul", other)

    __rmul__ = __mul__

    def __sub__(self, other: Endpoint | float) -> Endpoint:
        return self._arith(
            "add", other * -1.0 if not isinstance(other, Endpoint) else other._arith("mul", -1.0)
        )

    def __rsub__(self, other: float) -> Endpoint:
        return self._arith("mul", -1.0)._arith("add", other)

    def __neg__(self) -> Endpoint:
        return self._arith("mul", -1.0)

    def _arith(self, op: str, other: Endpoint | float) -> Endpoint:
        if self.graph is None or self.direction is not Direction.OUTPUT or self.kind is Kind.EVENT:
            raise TypeError(f"arithmetic needs stream or value outputs of a graph's nodes, not {self!r}")
        return self.graph._arith(op, self, other)
