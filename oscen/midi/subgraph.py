"""Sub-graphs: a group of nodes built into a parent graph and used like one node.

A voice is written once, as a function (or a SubGraph subclass) that adds its nodes to the parent
:class:`~oscen.graph.Graph` and returns a :class:`SubGraph` naming its inputs and outputs::

    def voice(graph):
        osc = graph.add_node(Oscillator.saw())
        env = graph.add_node(AdsrEnvelope())
        amp = graph.add_node(Multiply())
        graph.connect(osc.output, amp.a)
        graph.connect(env.output, amp.b)
        return SubGraph(graph, inputs={"pitch": osc.frequency, "gate": env.gate},
                        outputs={"output": amp.output})

There is no nested graph at run time: the nodes live in the parent graph, so the interpreter and
the JIT see one flat graph and nothing costs extra per sample. The SubGraph is only a naming layer.

An exposed input may *fan out* to several inner inputs (``"pitch": [osc1.frequency,
osc2.frequency]``). ``Graph.connect`` takes a single endpoint, so there are two ways to feed one:

- ``sub.connect_input("pitch", source)`` (or :func:`connect`) connects the source to every inner
  target directly: no extra node. The helpers here (:func:`poly_voices`) use this.
- ``sub.pitch`` returns an ordinary :class:`~oscen.graph.Endpoint` for ``graph.connect``. For a
  single target it is that target; for a fan-out, a relay node (input copied to output, or event
  forwarded, at the same sample) is added on first access and connected to all the targets. It is
  semantically transparent but costs one node per sample in the interpreter.

An exposed output is exactly one inner output endpoint.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from oscen.graph import (
    Endpoint,
    EventInput,
    EventOutput,
    Graph,
    GraphError,
    Node,
    NodeHandle,
    StreamInput,
    StreamOutput,
    ValueInput,
    ValueOutput,
)
from oscen.graph.endpoints import Direction, Kind

from .parser import MidiParser
from .voices import VoiceAllocator


class SubGraphError(GraphError):
    """A sub-graph declared or used inconsistently (unknown name, wrong direction, mixed kinds)."""


class EventRelay(Node):
    """Forwards every event unchanged at the same sample: the fan-out point of an exposed event input."""

    input = EventInput()
    output = EventOutput()

    def on_input(self, a: float, b: float, c: float, d: float) -> None:
        self.output.emit(a, b, c, d)

    def process(self, sample_rate: float) -> None:
        pass


class ValueRelay(Node):
    """Copies its input to its output each sample: the fan-out point of an exposed value input."""

    input = ValueInput(0.0)
    output = ValueOutput()

    def __init__(self, default: float = 0.0) -> None:
        self.input = float(default)
        self.output = float(default)

    def process(self, sample_rate: float) -> None:
        self.output = self.input


class StreamRelay(Node):
    """Copies its input to its output each sample: the fan-out point of an exposed stream input."""

    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = self.input


class SubGraph:
    """Named inputs and outputs over nodes that live in a parent graph; usable like a node handle.

    ``inputs`` maps a name to one inner input endpoint or a sequence of them (a fan-out: a source
    connected to the name reaches all of them). ``outputs`` maps a name to one inner output.
    ``nodes`` are the node handles the sub-graph owns (filled in by :func:`instantiate` when left
    out), which :meth:`remove` deletes.
    """

    def __init__(
        self,
        graph: Graph,
        inputs: Mapping[str, Endpoint | Sequence[Endpoint]] | None = None,
        outputs: Mapping[str, Endpoint] | None = None,
        nodes: Sequence[NodeHandle] | None = None,
        name: str = "",
    ) -> None:
        self._graph = graph
        self.name = name
        self.nodes: list[NodeHandle] = list(nodes or [])
        self._inputs: dict[str, tuple[Endpoint, ...]] = {}
        self._outputs: dict[str, Endpoint] = {}
        self._relays: dict[str, NodeHandle] = {}
        for key, targets in (inputs or {}).items():
            self._check_name(key)
            self._inputs[key] = self._check_input(key, targets)
        for key, ep in (outputs or {}).items():
            self._check_name(key)
            if key in self._inputs:
                raise SubGraphError(f"sub-graph {self._label()}: {key!r} is both an input and an output")
            if not isinstance(ep, Endpoint) or ep.direction is not Direction.OUTPUT:
                raise SubGraphError(
                    f"sub-graph {self._label()}: output {key!r} must be one output endpoint of an inner node, got {ep!r}"
                )
            self._check_graph(key, ep)
            self._outputs[key] = ep

    # ---------------------------------------------------------------- naming
    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)

    def input_targets(self, name: str) -> tuple[Endpoint, ...]:
        """The inner input endpoints an exposed input feeds."""
        try:
            return self._inputs[name]
        except KeyError:
            raise SubGraphError(
                f"sub-graph {self._label()} has no input {name!r} (inputs: {', '.join(self._inputs) or 'none'})"
            ) from None

    def output_endpoint(self, name: str) -> Endpoint:
        """The inner output endpoint behind an exposed output (same as ``getattr(sub, name)``)."""
        try:
            return self._outputs[name]
        except KeyError:
            raise SubGraphError(
                f"sub-graph {self._label()} has no output {name!r} (outputs: {', '.join(self._outputs) or 'none'})"
            ) from None

    def __getattr__(self, name: str) -> Endpoint:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._outputs:
            return self._outputs[name]
        if name in self._inputs:
            return self._input_endpoint(name)
        names = ", ".join([*self._inputs, *self._outputs]) or "none"
        raise AttributeError(f"sub-graph {self._label()} has no input or output {name!r} (it has: {names})")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._inputs, *self._outputs})

    def __repr__(self) -> str:
        return f"<sub-graph {self._label()} inputs={list(self._inputs)} outputs={list(self._outputs)}>"

    # ---------------------------------------------------------------- wiring
    def connect_input(self, name: str, source: Endpoint) -> None:
        """Connect ``source`` to every inner target of input ``name`` (no relay node).

        All-or-nothing: if one connection fails, the ones made are undone.
        """
        targets = self.input_targets(name)
        if name in self._relays:
            targets = (self._relays[name].input,)
        made: list[Endpoint] = []
        try:
            for target in targets:
                self._graph.connect(source, target)
                made.append(target)
        except GraphError:
            for target in made:
                self._graph.disconnect(source, target)
            raise

    def remove(self) -> None:
        """Remove the sub-graph's nodes (and relays) from the graph, with their connections."""
        for handle in [*self.nodes, *self._relays.values()]:
            if handle.id in {h.id for h in self._graph.nodes}:
                self._graph.remove_node(handle)
        self.nodes = []
        self._relays = {}

    # ---------------------------------------------------------------- internals
    def _label(self) -> str:
        return repr(self.name) if self.name else type(self).__name__

    def _check_name(self, key: str) -> None:
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            raise SubGraphError(
                f"sub-graph {self._label()}: {key!r} is not a usable endpoint name (an identifier)"
            )
        if key in _RESERVED:
            raise SubGraphError(
                f"sub-graph {self._label()}: {key!r} is a SubGraph attribute; name the endpoint differently"
            )

    def _check_graph(self, key: str, ep: Endpoint) -> None:
        if ep.graph is not self._graph:
            raise SubGraphError(
                f"sub-graph {self._label()}: {key!r} endpoint {ep!r} belongs to another graph"
            )

    def _check_input(self, key: str, targets: Endpoint | Sequence[Endpoint]) -> tuple[Endpoint, ...]:
        found = (targets,) if isinstance(targets, Endpoint) else tuple(targets)
        if not found:
            raise SubGraphError(f"sub-graph {self._label()}: input {key!r} has no inner targets")
        for ep in found:
            if not isinstance(ep, Endpoint) or ep.direction is not Direction.INPUT:
                raise SubGraphError(
                    f"sub-graph {self._label()}: input {key!r} must name inner input endpoints, got {ep!r}"
                )
            self._check_graph(key, ep)
        events = {ep.kind is Kind.EVENT for ep in found}
        if len(events) > 1:
            raise SubGraphError(
                f"sub-graph {self._label()}: input {key!r} mixes event and stream/value targets {found!r}; "
                "one source cannot feed both"
            )
        return found

    def _input_endpoint(self, name: str) -> Endpoint:
        targets = self._inputs[name]
        if len(targets) == 1:
            return targets[0]
        relay = self._relays.get(name)
        if relay is None:
            kinds = {ep.kind for ep in targets}
            if Kind.EVENT in kinds:
                node: Node = EventRelay()
            elif kinds == {Kind.STREAM}:
                node = StreamRelay()
            else:
                node = ValueRelay()
            relay = self._graph.add_node(node, f"{self.name or 'subgraph'}.{name}")
            for target in targets:
                self._graph.connect(relay.output, target)
            self._relays[name] = relay
        return relay.input


_RESERVED = frozenset(name for name in dir(SubGraph) if not name.startswith("_")) | {"nodes", "name"}


def connect(graph: Graph, source: Endpoint | SubGraph, target: Endpoint | tuple[SubGraph, str]) -> None:
    """``graph.connect`` that also accepts a ``(subgraph, input_name)`` target, fanned out without a relay."""
    if isinstance(target, tuple):
        sub, name = target
        if sub.graph is not graph:
            raise SubGraphError(f"connect: sub-graph {sub!r} is not in this graph")
        sub.connect_input(name, source)  # type: ignore[arg-type]
    else:
        graph.connect(source, target)  # type: ignore[arg-type]


VoiceBuilder = Callable[..., SubGraph]
"""``build(graph)`` or ``build(graph, index=i)``: adds one voice's nodes and returns its SubGraph."""


def _takes_index(build: VoiceBuilder) -> bool:
    """Whether the builder has a parameter named ``index`` (passed by keyword).

    By name, not by position: a builder like ``voice(graph, attack=0.01)`` must not get the
    voice number as its attack time.
    """
    try:
        return "index" in inspect.signature(build).parameters
    except (TypeError, ValueError):  # no signature (a builtin): call with the graph only
        return False


def instantiate(graph: Graph, build_voice: VoiceBuilder, n: int) -> list[SubGraph]:
    """Build ``n`` copies of a sub-graph into ``graph``.

    ``build_voice`` is called as ``build_voice(graph, index=i)`` if it has a parameter named
    ``index``, else as ``build_voice(graph)``. Each result must be a SubGraph; when it does not list
    its nodes, they are taken to be the nodes the call added.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise SubGraphError(f"instantiate: n must be an int >= 0, got {n!r}")
    with_index = _takes_index(build_voice)
    subs = []
    for i in range(n):
        before = {h.id for h in graph.nodes}
        sub = build_voice(graph, index=i) if with_index else build_voice(graph)
        if not isinstance(sub, SubGraph):
            raise SubGraphError(
                f"instantiate: {getattr(build_voice, '__name__', build_voice)!r} returned {type(sub).__name__}; "
                "a voice builder must return the SubGraph it built (did you forget `return SubGraph(...)`?)"
            )
        if sub.graph is not graph:
            raise SubGraphError("instantiate: the voice builder returned a sub-graph of another graph")
        if not sub.nodes:
            sub.nodes = [h for h in graph.nodes if h.id not in before]
        if not sub.name:
            sub.name = f"voice{i}"
        subs.append(sub)
    return subs


@dataclass
class Polyphony:
    """What :func:`poly_voices` built. Unpacks as ``midi, output = poly_voices(...)``."""

    midi: Endpoint
    """The MidiParser's ``midi`` event input: queue ``(status, data1, data2)`` events here."""
    output: Endpoint
    """The mixed output of all voices (a stream output)."""
    parser: NodeHandle
    allocator: NodeHandle
    mixer: NodeHandle
    voices: list[SubGraph] = field(default_factory=list)

    @property
    def bend_range(self) -> Endpoint:
        """The allocator's pitch-bend range in semitones (a value input)."""
        return self.allocator.bend_range

    def __iter__(self) -> Iterator[Endpoint]:
        return iter((self.midi, self.output))


def poly_voices(
    graph: Graph,
    build_voice: VoiceBuilder,
    n_voices: int,
    *,
    bend_range: float = 2.0,
    channel: int = -1,
    gain: float = 1.0,
) -> Polyphony:
    """Add a complete polyphonic instrument: MidiParser -> VoiceAllocator -> n voices -> mixer.

    Each voice must expose a ``gate`` input (event: velocity, 0 = release) and an ``output``
    (stream); a ``pitch`` input (Hz) is connected when the voice has one. The mixer is a Gain node
    whose input sums all voice outputs (``gain`` scales the sum). Returns a :class:`Polyphony`.
    """
    parser = graph.add_node(MidiParser(channel), "midi")
    alloc = graph.add_node(VoiceAllocator(n_voices, bend_range), "voices")
    for name in ("note_on", "note_off", "pitch_bend", "control_change"):
        graph.connect(getattr(parser, name), getattr(alloc, name))
    from oscen.gain import Gain  # the node library; imported late so oscen.midi loads on its own

    mixer = graph.add_node(Gain(gain), "voice mix")
    voices = instantiate(graph, build_voice, n_voices)
    for k, voice in enumerate(voices):
        if "gate" not in voice.input_names or "output" not in voice.output_names:
            raise SubGraphError(
                f"poly_voices: a voice must expose a 'gate' input and an 'output'; {voice!r} does not"
            )
        voice.connect_input("gate", getattr(alloc, f"gate{k}"))
        if "pitch" in voice.input_names:
            voice.connect_input("pitch", getattr(alloc, f"pitch{k}"))
        graph.connect(voice.output_endpoint("output"), mixer.input)
    return Polyphony(parser.midi, mixer.output, parser, alloc, mixer, voices)
