"""The interpreted graph: the reference semantics every compiled form is checked against.

Per sample, in processing order, each node: reads its inputs (a connected stream input holds the
sum of its sources; a connected value input holds its *base* plus that sum, see below), handles the
events due at this sample (external ones first, then those of its event connections in connection
order), and runs ``process``. Ramped parameters advance once per sample before any node runs.

Modulation: every value input has a base, what ``set_value`` sets (and ramps). Unconnected, the
input is its base. Connected, it is base + the sum of its sources, as a knob plus control voltages
on a modular synthesiser; connecting the first source starts the base at 0 (so a connected input
follows its sources until a base is set), and when the last source goes the input stays at its
base. ``get_value`` of a value input returns its base.

A block is atomic: if node code raises during ``process_block`` (or ``process``), the graph is put
back as it was before the call (node attributes, numpy arrays by value, ramps, bases, pending
events, the frame) and the exception propagates. Other mutable attributes (lists, dicts) are
restored by reference only, so a node that mutates them in place keeps those changes. The snapshot
costs a copy of the nodes' arrays per call (measured in benchmarks/bench_interpreter.py --block);
``graph.atomic = False`` skips it, and a fault then leaves the graph part-way through the sample.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from . import validation as check
from .arith import Add, Multiply
from .endpoints import Direction, Endpoint, Kind
from .node import Node, handler_arity
from .topology import Schedule
from .topology import schedule as order_nodes
from .validation import GraphError

if TYPE_CHECKING:
    from .ir import GraphIR


__all__ = ["Connection", "Graph", "GraphError", "NodeHandle", "Plan", "Ramp", "Snapshot", "normalize_payload"]

EventPayload = tuple[float, ...]


class NodeHandle:
    """What ``add_node`` returns: the node's endpoints as attributes (``osc.output``)."""

    __slots__ = ("_graph", "id", "node", "label")

    def __init__(self, graph: Graph, node_id: int, node: Node, label: str) -> None:
        self._graph = graph
        self.id = node_id
        self.node = node
        self.label = label

    def __getattr__(self, name: str) -> Endpoint:
        if name.startswith("__") or name in NodeHandle.__slots__:
            # not an endpoint: a slot not set yet (copy, pickle) or a special method lookup
            raise AttributeError(name)
        spec = type(self.node)._endpoints.get(name)
        if spec is None:
            names = ", ".join(type(self.node)._endpoints) or "none"
            raise AttributeError(f"{self.label} has no endpoint {name!r} (endpoints: {names})")
        return Endpoint(self.id, name, spec.kind, spec.direction, self.label, self._graph)

    def endpoints(self) -> list[Endpoint]:
        return [getattr(self, name) for name in type(self.node)._endpoints]

    def __repr__(self) -> str:
        return f"<node {self.label}>"


@dataclass
class Ramp:
    """A linear parameter ramp: ``remaining`` samples to go, each adds ``step``; the last lands on ``target``."""

    target: float
    step: float
    remaining: int


@dataclass
class Snapshot:
    """The running state of a graph besides its node objects (``Graph.snapshot()``): what compiled
    code takes over from the interpreter and hands back to it (``Graph.restore``). Keys are
    (node id, input name); events are (absolute frame, fields) in delivery order."""

    graph_uid: int
    frame: int
    ramps: dict[tuple[int, str], Ramp]
    bases: dict[tuple[int, str], float]
    """The base of each connected value input (an unconnected input's value is its node attribute)."""
    events: dict[tuple[int, str], list[tuple[int, EventPayload]]]
    """The external events waiting for each event input."""


@dataclass(frozen=True)
class Connection:
    source: Endpoint
    target: Endpoint

    def __repr__(self) -> str:
        return f"{self.source!r} -> {self.target!r}"


@dataclass
class _Step:
    """One node's work per sample, prepared once per topology."""

    node: Node
    process: Callable[[float], None]
    state: dict[str, Any]
    # input name, its sources (state dict, output name), and for a value input the cell of its base
    gathers: list[tuple[str, list[tuple[dict[str, Any], str]], list[float] | None]]
    events: list[tuple[Callable[..., None], int, list[deque[tuple[int, EventPayload]]]]]


@dataclass
class Plan:
    """The interpreter's per-sample work for one topology (``Graph.plan()``), prepared once per edit.

    Opaque outside this module. It exists publicly so that a caller can keep playing one plan while
    another thread edits the graph (JitGraph), through ``Graph.run_plan``."""

    graph_uid: int
    schedule: Schedule
    steps: list[_Step]
    outputs: list[tuple[dict[str, Any], str]]
    conn_queues: dict[Connection, deque[tuple[int, EventPayload]]] = field(default_factory=dict)
    # per step: (name, buffer) for each numpy array attribute, the snapshot's copies; made by the
    # first snapshot (a graph only ever run compiled does not hold a second copy of its arrays)
    arrays: list[list[tuple[str, np.ndarray]]] | None = None


class Graph:
    """An audio graph run by the Python interpreter, sample by sample."""

    atomic: bool = True
    """Whether a fault in node code puts the graph back as it was before the call (see the module
    docstring); switch off to save the per-call copy of big arrays (delay lines) at small blocks."""

    def __init__(self, sample_rate: float = 44100.0) -> None:
        self.sample_rate = check.sample_rate(sample_rate, "Graph")
        self.uid = next(_graph_ids)
        """This graph's identity: compiled state made from it accepts only its endpoints."""
        self._handles: dict[int, NodeHandle] = {}
        self._ids = itertools.count()
        self._connections: list[Connection] = []
        self._connection_set: set[Connection] = set()
        self._successors: dict[int, Counter[int]] = {}  # node -> nodes it feeds (with multiplicity)
        self._outputs: tuple[Endpoint, ...] | None = None
        self._ramps: dict[tuple[int, str], Ramp] = {}
        self._bases: dict[tuple[int, str], list[float]] = {}  # connected value inputs -> [base]
        self._external: dict[tuple[int, str], list[tuple[int, int, EventPayload]]] = {}
        self._event_seq = itertools.count()
        self._plan: Plan | None = None
        self.frame = 0
        """Samples processed so far: event frame offsets count from here."""
        self.version = 0
        """Bumped on every topology change (nodes, connections, outputs): what a recompile follows."""

    # ------------------------------------------------------------------ building
    def add_node(self, node: Node, label: str | None = None) -> NodeHandle:
        """Add a node instance; returns a handle whose attributes are the node's endpoints."""
        if not isinstance(node, Node):
            raise GraphError(f"add_node takes a Node instance, got {type(node).__name__}")
        owner = node.__dict__.get("_oscen_graph")
        if owner is not None:
            where = "this graph" if owner is self else "another graph"
            raise GraphError(f"{type(node).__qualname__} instance is already in {where}; create a new node")
        nid = next(self._ids)
        handle = NodeHandle(self, nid, node, label or f"{type(node).__qualname__}#{nid}")
        node.__dict__["_oscen_graph"] = self
        self._handles[nid] = handle
        for name, spec in type(node)._endpoints.items():
            if spec.kind is Kind.EVENT and spec.direction is Direction.INPUT:
                self._external[(nid, name)] = []
        self._changed()
        return handle

    def remove_node(self, node: NodeHandle) -> None:
        """Remove a node with its connections, ramps and pending events."""
        handle = self._handle_of(node, "remove_node")
        if self._outputs is not None:
            listened = [e for e in self._outputs if e.node_id == handle.id]
            if listened:
                raise GraphError(
                    f"remove_node: {handle.label} feeds the graph's output ({listened[0]!r} in set_output); "
                    "call set_output without it first (removing it would change the channel count)"
                )
        kept = []
        cut = []
        for c in self._connections:
            if handle.id in (c.source.node_id, c.target.node_id):
                self._forget(c)
                cut.append(c.target)
            else:
                kept.append(c)
        self._connections = kept
        for target in cut:
            self._release_base(target)
        self._successors.pop(handle.id, None)
        # tuple() copies the keys in one C call: the playing thread may finish (pop) ramps meanwhile.
        for key in [k for k in tuple(self._ramps) if k[0] == handle.id]:
            self._ramps.pop(key, None)
        for key in [k for k in tuple(self._external) if k[0] == handle.id]:
            self._external.pop(key, None)
        del self._handles[handle.id]
        handle.node.__dict__.pop("_oscen_graph", None)
        self._changed()

    def connect(self, source: Endpoint, target: Endpoint) -> Connection:
        """Connect an output to an input. Several sources into one input are summed."""
        src = self.check_endpoint(source, "connect", "source")
        dst = self.check_endpoint(target, "connect", "target")
        if src.direction is not Direction.OUTPUT:
            raise GraphError(f"connect: source {src!r} is an input; connect from an output")
        if dst.direction is not Direction.INPUT:
            raise GraphError(f"connect: target {dst!r} is an output; connect into an input")
        if (src.kind is Kind.EVENT) != (dst.kind is Kind.EVENT):
            raise GraphError(
                f"connect: {src.kind.value} output {src!r} cannot feed {dst.kind.value} input {dst!r}; "
                "events connect only to events, streams and values only to streams and values"
            )
        conn = Connection(src, dst)
        if conn in self._connection_set:
            raise GraphError(f"connect: {src!r} is already connected to {dst!r}")
        self._connections.append(conn)
        try:
            # Only an edge that closes a cycle needs the whole schedule (is a breaker on it?);
            # the others are checked with one search, so building big graphs stays fast.
            if self._reaches(dst.node_id, src.node_id):
                sched = self.schedule()
                if src.kind is Kind.EVENT and (src.node_id, dst.node_id) in sched.back_edges:
                    raise GraphError(
                        f"connect: event connection {src!r} -> {dst!r} would close a feedback loop; "
                        "events cannot travel back in time"
                    )
        except Exception:
            self._connections.pop()
            raise
        self._connection_set.add(conn)
        self._successors.setdefault(src.node_id, Counter())[dst.node_id] += 1
        key = (dst.node_id, dst.name)
        if dst.kind is Kind.VALUE and key not in self._bases:
            # The first source: the base starts at 0 (the input follows its sources) and a ramp
            # of the unconnected value ends here.
            self._bases[key] = [0.0]
            self._ramps.pop(key, None)
        self._changed()
        return conn

    def _reaches(self, start: int, goal: int) -> bool:
        """Whether connections lead from node ``start`` to node ``goal`` (or it is the same node)."""
        if start == goal:
            return True
        seen = {start}
        stack = [start]
        while stack:
            for nxt in self._successors.get(stack.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    def _forget(self, conn: Connection) -> None:
        self._connection_set.discard(conn)
        succ = self._successors.get(conn.source.node_id)
        if succ is not None:
            succ[conn.target.node_id] -= 1
            if succ[conn.target.node_id] <= 0:
                del succ[conn.target.node_id]

    def disconnect(self, source: Endpoint, target: Endpoint) -> None:
        conn = Connection(
            self.check_endpoint(source, "disconnect", "source"),
            self.check_endpoint(target, "disconnect", "target"),
        )
        if conn not in self._connection_set:
            raise GraphError(f"disconnect: {source!r} is not connected to {target!r}")
        self._connections.remove(conn)
        self._forget(conn)
        self._release_base(conn.target)
        self._changed()

    def _release_base(self, target: Endpoint) -> None:
        """After a connection into ``target`` went: a value input left without sources is its base."""
        key = (target.node_id, target.name)
        cell = self._bases.get(key)
        if cell is None or any(c.target == target for c in self._connections):
            return
        del self._bases[key]
        handle = self._handles.get(target.node_id)
        if handle is not None:
            handle.node.__dict__[target.name] = cell[0]

    def set_output(self, *endpoints: Endpoint) -> None:
        """Choose what the graph outputs: one endpoint gives mono blocks, several give shape (k, n)."""
        if not endpoints:
            raise GraphError("set_output needs at least one output endpoint")
        checked = []
        for e in endpoints:
            ep = self.check_endpoint(e, "set_output", "endpoint")
            if ep.direction is not Direction.OUTPUT or ep.kind is Kind.EVENT:
                raise GraphError(f"set_output: {ep!r} is not a stream or value output")
            checked.append(ep)
        self._outputs = tuple(checked)
        self._changed()

    # ------------------------------------------------------------------ parameters and events
    def set_value(self, endpoint: Endpoint, value: float, ramp: float = 0.0) -> None:
        """Set a value input, at once or as a linear ramp over ``ramp`` seconds (no zipper noise)."""
        ep = self.check_endpoint(endpoint, "set_value", "endpoint")
        check.value_input(ep, "set_value")
        value = check.finite(value, "set_value", "value")
        steps = check.ramp_steps(ramp, self.sample_rate, "set_value")
        key = (ep.node_id, ep.name)
        cell = self._bases.get(key)
        if steps <= 0:
            self._ramps.pop(key, None)
            if cell is not None:
                cell[0] = value
            else:
                self._handles[ep.node_id].node.__dict__[ep.name] = value
        else:
            current = cell[0] if cell is not None else float(self._handles[ep.node_id].node.__dict__[ep.name])
            self._ramps[key] = Ramp(value, (value - current) / steps, steps)

    def get_value(self, endpoint: Endpoint) -> float:
        """The current value of an endpoint (a parameter's value, an output's last sample)."""
        ep = self.check_endpoint(endpoint, "get_value", "endpoint")
        check.has_value(ep, "get_value")
        cell = self._bases.get((ep.node_id, ep.name))
        if cell is not None:
            return float(cell[0])
        return float(self._handles[ep.node_id].node.__dict__[ep.name])

    def base(self, endpoint: Endpoint) -> float | None:
        """The base of a connected value input (what set_value set), or None if it is unconnected."""
        cell = self._bases.get((endpoint.node_id, endpoint.name))
        return None if cell is None else cell[0]

    def queue_event(
        self, endpoint: Endpoint, frame_offset: int, payload: float | tuple[float, ...] = 1.0
    ) -> None:
        """Deliver an event to an event input ``frame_offset`` samples after the next sample to process."""
        ep = self.check_endpoint(endpoint, "queue_event", "endpoint")
        check.event_input(ep, "queue_event")
        at = check.event_frame(frame_offset, self.frame, "queue_event")
        fields = check.payload(payload, "queue_event")
        queue = self._external[(ep.node_id, ep.name)]
        check.events_at_frame(self.events_waiting(ep, at), ep, at, "queue_event")
        bisect.insort(queue, (at, next(self._event_seq), fields))

    def events_waiting(self, endpoint: Endpoint, frame: int) -> int:
        """How many queued events wait for an event input at one absolute frame."""
        queue = self._external.get((endpoint.node_id, endpoint.name), [])
        return bisect.bisect_left(queue, (frame + 1,)) - bisect.bisect_left(queue, (frame,))

    # ------------------------------------------------------------------ running
    def process(self) -> float | tuple[float, ...]:
        """Process one sample; returns the output (a float, or a tuple for several outputs)."""
        out = self._run(self.plan(), 1)
        values = tuple(float(v) for v in out.reshape(-1))
        return values[0] if len(values) == 1 else values

    def process_block(self, n: int) -> np.ndarray:
        """Process ``n`` samples (at most MAX_BLOCK_SAMPLES); returns shape (n,) for one output,
        (k, n) for k outputs. If node code raises, the graph is as it was before the call."""
        return self._run(self.plan(), check.block_size(n, "process_block"))

    def _run(self, plan: Plan, n: int) -> np.ndarray:
        """``n`` samples with a given plan (JitGraph keeps its own while another thread edits);
        atomic: a fault puts the graph back as it was before the call."""
        out = np.zeros((len(plan.outputs), n))
        outputs = plan.outputs
        if n and self.atomic:
            saved = self._checkpoint(plan)
            try:
                for i in range(n):
                    self._tick(plan)
                    for k, (d, name) in enumerate(outputs):
                        out[k, i] = d[name]
            except BaseException:
                self._rollback(plan, saved)
                raise
        else:
            for i in range(n):
                self._tick(plan)
                for k, (d, name) in enumerate(outputs):
                    out[k, i] = d[name]
        return out[0] if len(outputs) == 1 else out

    def _checkpoint(self, plan: Plan) -> tuple[Any, ...]:
        """What a block may change, cheaply: a shallow copy of each node's attributes, its numpy
        arrays copied into buffers kept with the plan, ramps, bases, non-empty event queues."""
        if plan.arrays is None:
            # tuple(...): a node removed meanwhile (another thread) loses its _oscen_graph entry
            plan.arrays = [
                [(name, v.copy()) for name, v in tuple(step.state.items()) if isinstance(v, np.ndarray)]
                for step in plan.steps
            ]
        dicts = []
        for step, arrays in zip(plan.steps, plan.arrays, strict=True):
            state = step.state
            dicts.append(state.copy())
            for i, (name, buf) in enumerate(arrays):
                value = state.get(name)
                if isinstance(value, np.ndarray):
                    if value.shape != buf.shape or value.dtype != buf.dtype:
                        arrays[i] = (name, value.copy())  # the node replaced the array
                    else:
                        np.copyto(buf, value)
        # tuple(...) copies in one step: JitGraph lets another thread edit while this one plays
        ramps = [(k, r.target, r.step, r.remaining) for k, r in tuple(self._ramps.items())]
        bases = [(cell, cell[0]) for cell in tuple(self._bases.values())]
        external = [(q, q[:]) for q in tuple(self._external.values()) if q]
        conns = [(q, list(q)) for q in plan.conn_queues.values() if q]
        return self.frame, dicts, ramps, bases, external, conns

    def _rollback(self, plan: Plan, saved: tuple[Any, ...]) -> None:
        frame, dicts, ramps, bases, external, conns = saved
        for step, arrays, copy in zip(plan.steps, plan.arrays or (), dicts, strict=True):
            state = step.state
            if state.get("_oscen_graph") is not self:
                continue  # removed by another thread meanwhile (JitGraph): not ours to restore
            state.clear()
            state.update(copy)
            for name, buf in arrays:
                value = state.get(name)
                if isinstance(value, np.ndarray) and value.shape == buf.shape:
                    np.copyto(value, buf)
        self._ramps = {k: Ramp(t, s, r) for k, t, s, r in ramps if k[0] in self._handles}
        for cell, value in bases:
            cell[0] = value
        for q, items in external:  # a block only takes events from queues (queue_event adds)
            q[:] = items
        for q in plan.conn_queues.values():
            q.clear()
        for q, items in conns:
            q.extend(items)
        self.frame = frame

    def _tick(self, plan: Plan) -> None:
        frame = self.frame
        if self._ramps:
            self._advance_ramps()
        sr = self.sample_rate
        for step in plan.steps:
            state = step.state
            for name, sources, base in step.gathers:
                if base is not None:  # a value input: its base plus its sources, left to right
                    total = base[0]
                    for d, out in sources:
                        total += d[out]
                    state[name] = total
                elif len(sources) == 1:
                    d, out = sources[0]
                    state[name] = d[out]
                else:  # summed left to right, as the compiled code does
                    d, out = sources[0]
                    total = d[out]
                    for d, out in sources[1:]:
                        total += d[out]
                    state[name] = total
            for handler, arity, queues in step.events:
                for q in queues:
                    while q and q[0][0] <= frame:
                        handler(*q.popleft()[1][:arity])
            step.process(sr)
        self.frame = frame + 1

    def _advance_ramps(self) -> None:
        # A copy of the items: JitGraph lets another thread remove nodes (and their ramps) while
        # this one plays.
        for key, ramp in list(self._ramps.items()):
            handle = self._handles.get(key[0])
            if handle is None:
                continue
            cell = self._bases.get(key)
            if cell is None:  # an unconnected input: the node's attribute is its base
                cell = handle.node.__dict__
                slot: Any = key[1]
            else:
                slot = 0
            ramp.remaining -= 1
            if ramp.remaining <= 0:
                cell[slot] = ramp.target
                self._ramps.pop(key, None)
            else:
                cell[slot] = cell[slot] + ramp.step

    # ------------------------------------------------------------------ inspection
    @property
    def nodes(self) -> list[NodeHandle]:
        return list(self._handles.values())

    @property
    def connections(self) -> list[Connection]:
        return list(self._connections)

    @property
    def outputs(self) -> tuple[Endpoint, ...]:
        """The endpoints the graph outputs (explicit, or the default: the last node's stream output)."""
        return self.output_endpoints(self.plan().schedule)

    def processing_order(self) -> list[NodeHandle]:
        return [self._handles[i] for i in self.plan().schedule.order]

    def handle(self, node_id: int) -> NodeHandle:
        return self._handles[node_id]

    def ramps(self) -> dict[tuple[int, str], Ramp]:
        return dict(self._ramps)

    def pending_events(self) -> Iterator[tuple[Endpoint, int, EventPayload]]:
        """External events not yet delivered: (endpoint, absolute frame, fields)."""
        for (nid, name), queue in self._external.items():
            ep = getattr(self._handles[nid], name)
            for frame, _, fields in queue:
                yield ep, frame, fields

    def to_ir(self) -> GraphIR:
        """The graph's topology, connections, order and node code as a compiler input.

        Attribute types are those of the current values (``self.phase = 0`` is an int until a
        sample ran); the JIT settles them over every assignment its methods make
        (``oscen.jit.frontend.settled``)."""
        from .ir import build_ir

        return build_ir(self)

    def _repr_svg_(self) -> str:
        """Notebooks draw a graph as a diagram of its nodes and connections (``oscen.graph.diagram``)."""
        from .diagram import diagram_svg

        return diagram_svg(self)

    # ------------------------------------------------------------------ for engines built on the graph
    # What the JIT (oscen.jit) and other layers above need of the graph: public, so that nothing
    # outside oscen.graph reads or writes the graph's private attributes (tests/test_layers.py).

    def check_endpoint(self, ep: Any, call: str, role: str = "endpoint") -> Endpoint:
        """``ep`` if it is an endpoint of a node in this graph, else a GraphError naming ``call``
        and the ``role`` of the argument: the check (and message) of every call taking an endpoint,
        for engines that take the graph's endpoints on its behalf (JitGraph's set_value...)."""
        ep = check.endpoint(ep, call, role)
        if ep.graph is not self or ep.node_id not in self._handles:
            raise GraphError(f"{call}: {role} {ep!r} belongs to a node that is not in this graph")
        return ep

    def has_node(self, node_id: int) -> bool:
        """Whether a node of this id is in the graph (compiled state outlives removed nodes: the JIT
        asks before carrying state back)."""
        return node_id in self._handles

    def schedule(self) -> Schedule:
        """The processing order of the current topology, with its back edges and feedback loops:
        what the interpreter plays by and the compiler lays kernels out by. Computed afresh (the
        interpreter's plan is not built, so this is safe while another thread plays a plan)."""
        return order_nodes(
            list(self._handles),
            [(c.source.node_id, c.target.node_id) for c in self._connections],
            lambda i: type(self._handles[i].node).breaks_feedback,
            lambda i: self._handles[i].label,
        )

    def output_endpoints(self, sched: Schedule | None = None) -> tuple[Endpoint, ...]:
        """What the graph outputs: the endpoints given to set_output, or by default the first stream
        or value output of the last node in ``sched`` (the current schedule if None). Unlike the
        ``outputs`` property, it does not build the interpreter's plan (the compiler calls it)."""
        if self._outputs is not None:
            return self._outputs
        for nid in reversed((sched or self.schedule()).order):
            handle = self._handles[nid]
            for ep in handle.endpoints():
                if ep.direction is Direction.OUTPUT and ep.kind is not Kind.EVENT:
                    return (ep,)
        raise GraphError("the graph has no stream or value output to play; add a node or call set_output")

    def plan(self) -> Plan:
        """The interpreter's plan of the current topology (built on first use after an edit). A caller
        that plays on while another thread edits (JitGraph) keeps one and runs it with run_plan."""
        if self._plan is None:
            self._plan = self._build_plan()
        return self._plan

    def run_plan(self, plan: Plan, n: int) -> np.ndarray:
        """As ``process_block(n)``, but playing ``plan`` (from ``plan()``, maybe of an older topology:
        nodes removed since still run in it), so the caller never waits for an edit in progress."""
        check.owned(plan, Plan, self.uid, "run_plan", "plan")
        return self._run(plan, check.block_size(n, "run_plan"))

    def snapshot(self) -> Snapshot:
        """The graph's running state besides its node objects: the frame, the ramps, the bases of
        connected value inputs and the pending external events, as copies. The JIT reads the state
        to compile from it and writes its own back with ``restore`` (to continue interpreted)."""
        # tuple(...) copies in one step: JitGraph lets another thread edit while this one plays
        return Snapshot(
            self.uid,
            self.frame,
            {k: Ramp(r.target, r.step, r.remaining) for k, r in tuple(self._ramps.items())},
            {k: cell[0] for k, cell in tuple(self._bases.items())},
            {k: [(f, fields) for f, _, fields in q] for k, q in tuple(self._external.items())},
        )

    def restore(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` (of this graph, maybe edited since) the running state: the frame, all
        ramps and all pending events become the snapshot's, and each base it holds is set. Entries
        of nodes removed since, and bases of inputs no longer connected, are skipped. Everything is
        checked first: a bad snapshot raises GraphError and leaves the graph as it was."""
        check.owned(snapshot, Snapshot, self.uid, "restore", "snapshot")
        frame = check.frame(snapshot.frame, "restore", "snapshot.frame")
        ramps: dict[tuple[int, str], Ramp] = {}
        for key, ramp in dict(snapshot.ramps).items():
            if self._state_key(key, Kind.VALUE, "ramps"):
                ramps[key] = Ramp(*check.ramp_state(ramp, "restore", key))
        bases: list[tuple[list[float], float]] = []
        for key, value in dict(snapshot.bases).items():
            if self._state_key(key, Kind.VALUE, "bases") and key in self._bases:
                bases.append((self._bases[key], check.finite(value, "restore", f"the base of {key}")))
        events: dict[tuple[int, str], list[tuple[int, int, EventPayload]]] = {}
        for key, queue in dict(snapshot.events).items():
            if self._state_key(key, Kind.EVENT, "events"):
                items = [check.pending_event(e, "restore", key) for e in queue]
                items.sort(key=lambda e: e[0])  # stable: events of one frame keep their order
                counts = Counter(f for f, _ in items)
                for f, count in counts.items():
                    check.events_at_frame(count - 1, key, f, "restore")
                events[key] = [(f, next(self._event_seq), fields) for f, fields in items]
        self.frame = frame
        self._ramps.clear()
        self._ramps.update(ramps)
        for cell, value in bases:
            cell[0] = value
        for key, queue in tuple(self._external.items()):  # one step: another thread may add nodes
            queue[:] = events.get(key, ())

    def _state_key(self, key: Any, kind: Kind, field: str) -> bool:
        """For restore: whether ``key`` (node id, input name) is an input of ``kind`` of a node in the
        graph; False for a node removed since the snapshot; GraphError for anything else."""
        node_id, name = check.state_key(key, "restore", field)
        handle = self._handles.get(node_id)
        if handle is None:
            return False
        spec = type(handle.node)._endpoints.get(name)
        if spec is None or spec.kind is not kind or spec.direction is not Direction.INPUT:
            raise GraphError(
                f"restore: snapshot.{field} names {handle.label}.{name}, which is not "
                f"{'an' if kind is Kind.EVENT else 'a'} {kind.value} input"
            )
        return True

    # ------------------------------------------------------------------ internals
    def _changed(self) -> None:
        self._plan = None
        self.version += 1

    def _handle_of(self, node: NodeHandle | Node, call: str) -> NodeHandle:
        if isinstance(node, NodeHandle) and node._graph is self and node.id in self._handles:
            return node
        if isinstance(node, Node):
            for h in self._handles.values():
                if h.node is node:
                    return h
        raise GraphError(f"{call}: {node!r} is not a node of this graph")

    def _build_plan(self) -> Plan:
        sched = self.schedule()
        inputs: dict[tuple[int, str], list[Connection]] = {}
        for c in self._connections:
            inputs.setdefault((c.target.node_id, c.target.name), []).append(c)
        # Event connections keep one queue each so that simultaneous events arrive in a fixed order.
        old = self._plan.conn_queues if self._plan else {}
        conn_queues = {c: old.get(c, deque()) for c in self._connections if c.source.kind is Kind.EVENT}
        for c in self._connections:
            if c.source.kind is Kind.EVENT:
                self._attach_emitter(c.source, conn_queues)
        for handle in self._handles.values():
            for name, spec in type(handle.node)._endpoints.items():
                if spec.kind is Kind.EVENT and spec.direction is Direction.OUTPUT:
                    if not any(c.source.node_id == handle.id and c.source.name == name for c in conn_queues):
                        handle.node.__dict__[name]._deliver = None
        steps = []
        for nid in sched.order:
            handle = self._handles[nid]
            node = handle.node
            state = node.__dict__
            gathers = []
            events = []
            for name, spec in type(node)._endpoints.items():
                if spec.direction is not Direction.INPUT:
                    continue
                conns = inputs.get((nid, name), [])
                if spec.kind is Kind.EVENT:
                    handler = getattr(node, f"on_{name}")
                    queues = [_ExternalQueue(self._external[(nid, name)])] + [conn_queues[c] for c in conns]
                    events.append((handler, handler_arity(handler), queues))
                elif conns:
                    gathers.append(
                        (
                            name,
                            [(self._handles[c.source.node_id].node.__dict__, c.source.name) for c in conns],
                            self._bases[(nid, name)] if spec.kind is Kind.VALUE else None,
                        )
                    )
                elif spec.kind is Kind.STREAM:
                    state[name] = spec.default
            steps.append(_Step(node, node.process, state, gathers, events))
        outputs = [(self._handles[e.node_id].node.__dict__, e.name) for e in self.output_endpoints(sched)]
        return Plan(self.uid, sched, steps, outputs, conn_queues)

    def _attach_emitter(
        self, source: Endpoint, conn_queues: dict[Connection, deque[tuple[int, EventPayload]]]
    ) -> None:
        """Route an event output to the queues of its connections in the plan being built (the
        closure holds them, so a plan keeps working while an edit prepares the next one)."""
        queues = [q for c, q in conn_queues.items() if c.source == source]
        emitter = self._handles[source.node_id].node.__dict__[source.name]

        def deliver(fields: tuple[float, ...]) -> None:
            payload = check.payload(fields, "emit", require_finite=False)
            for q in queues:
                q.append((self.frame, payload))

        emitter._deliver = deliver

    def _arith(self, op: str, a: Endpoint, b: Endpoint | float) -> Endpoint:
        """Back the endpoint arithmetic ``a + b``, ``a * 0.5``: adds an Add or Multiply node."""
        symbol = "+" if op == "add" else "*"
        if isinstance(b, Endpoint):
            other = self.check_endpoint(b, f"{a!r} {symbol} {b!r}", "right operand")
            if other.direction is not Direction.OUTPUT or other.kind is Kind.EVENT:
                raise GraphError(
                    f"{a!r} {symbol} {b!r}: the right operand must be a stream or value output, not {other!r}"
                )
        else:
            constant = check.finite(b, f"{a!r} {symbol} {b!r}", "the right operand")
        # Checked first: the node is added only when both connections can be made.
        node = self.add_node(Add() if op == "add" else Multiply())
        try:
            self.connect(a, node.a)
            if isinstance(b, Endpoint):
                self.connect(b, node.b)
            else:
                self.set_value(node.b, constant)
        except BaseException:
            self.remove_node(node)
            raise
        return node.output


class _ExternalQueue:
    """Adapts the sorted list of externally queued events to the deque interface the tick uses."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[int, int, EventPayload]]) -> None:
        self._items = items

    def __bool__(self) -> bool:
        return bool(self._items)

    def __getitem__(self, i: int) -> tuple[int, EventPayload]:
        frame, _, fields = self._items[i]
        return frame, fields

    def popleft(self) -> tuple[int, EventPayload]:
        frame, _, fields = self._items.pop(0)
        return frame, fields


def normalize_payload(payload: Any, call: str) -> EventPayload:
    """A queued event's payload as a tuple of MAX_EVENT_FIELDS finite floats (missing fields are 0.0)."""
    return check.payload(payload, call)


_finite = check.finite  # the old name, for callers outside this module
_graph_ids = itertools.count(1)
