"""GraphIR: what a graph is, for a compiler — topology, connections, order, node state layout.

It holds no sample values (those live in :class:`~oscen.jit.state.GraphState`), so one IR can
be compiled once and run on many states. It prints readably and round-trips through JSON; node
classes are named ``module:qualname`` and looked up again on load.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
import operator
import struct
import threading
import weakref
from dataclasses import dataclass, field
from math import copysign
from typing import Any, Protocol

import numpy as np

from .endpoints import Direction, Endpoint, Kind
from .node import Node, handler_arity
from .topology import Schedule

_PARSE_LOCK = threading.Lock()


def parse_python(text: str) -> ast.Module:
    """``ast.parse(text)``, one thread at a time. CPython 3.11 converts the tree to Python
    objects with a recursion counter shared by all threads; a thread switch in the middle (a
    garbage collection running Python callbacks) lets another parse corrupt it, and the parse
    fails with "SystemError: AST constructor recursion depth mismatch" (it broke concurrent
    compiles in the test suite; tests/test_jit_frontend.py reproduces it). Every parse of node
    source in oscen (here and in the JIT's frontend) goes through this."""
    with _PARSE_LOCK:
        return ast.parse(text)


INTERNAL_ATTRS = frozenset({"_oscen_graph"})


@dataclass(frozen=True)
class EndpointIR:
    name: str
    kind: str  # "stream" | "value" | "event"
    direction: str  # "input" | "output"
    default: float
    arity: int = 0  # event inputs: how many fields the handler takes


@dataclass(frozen=True)
class StateIR:
    """One attribute of a node: a scalar (length None) or a 1-D array of ``length`` elements."""

    name: str
    type: str  # "f64" | "i64" | "bool"
    length: int | None = None
    cols: int | None = None  # a 2-D array: its row length (length = rows * cols, row-major)


@dataclass
class NodeIR:
    id: int
    label: str
    cls: str  # "module:qualname"
    endpoints: list[EndpointIR]
    state: list[StateIR]
    breaks_feedback: bool = False
    unsupported: dict[str, str] = field(default_factory=dict)  # attribute -> why it can't be compiled
    constants: dict[str, float | int | bool] = field(
        default_factory=dict
    )  # attributes node code never assigns
    node_class: type[Node] | None = field(default=None, repr=False, compare=False)

    def endpoint(self, name: str) -> EndpointIR:
        for e in self.endpoints:
            if e.name == name:
                return e
        raise KeyError(f"{self.label} has no endpoint {name!r}")

    def resolve_class(self) -> type[Node]:
        if self.node_class is None:
            self.node_class = resolve_node_class(self.cls)
        return self.node_class


@dataclass(frozen=True)
class ConnectionIR:
    source: int
    source_endpoint: str
    target: int
    target_endpoint: str
    kind: str  # "stream" (stream/value) or "event"
    back_edge: bool = False


_CONNECTION_ROW = operator.attrgetter(
    "source", "source_endpoint", "target", "target_endpoint", "kind", "back_edge"
)
"""A connection's row in :meth:`GraphIR.key` (one C call per connection)."""

Key = tuple[str, tuple[str, ...], tuple[tuple[Any, ...], ...], tuple[tuple[Any, ...], ...]]
"""What :meth:`GraphIR.key` returns: (head, definitions, node rows, connection rows)."""


@dataclass
class GraphIR:
    sample_rate: float
    nodes: list[NodeIR]
    connections: list[ConnectionIR]
    order: list[int]
    outputs: list[tuple[int, str]]
    cycles: list[list[int]] = field(default_factory=list)
    settled: bool = False
    """Whether the attribute types are the compiler's, settled over every assignment its methods
    make (``oscen.jit.frontend.settled``), rather than the types of the current values, which is
    what ``graph.to_ir()`` gives: ``self.phase = 0`` in ``__init__`` is an int until a sample ran."""

    def node(self, node_id: int) -> NodeIR:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(f"no node {node_id} in the IR")

    def inputs_of(self, node_id: int, endpoint: str) -> list[ConnectionIR]:
        return [c for c in self.connections if c.target == node_id and c.target_endpoint == endpoint]

    def key(self) -> Key:
        """A stable identity of everything that shapes the compiled code (for a compile cache and
        to match states with kernels): equal for equal IRs (a JSON round trip keeps it), unequal
        otherwise. Computed once: an IR is not changed after it is built."""
        key = self.__dict__.get("_key")
        if key is None:
            key = self.__dict__["_key"] = self._identity()
        return key

    def _head(self) -> str:
        """The key's first part: the IR's own fields (a repr: floats stay floats)."""
        return repr(
            (
                float(self.sample_rate),
                self.settled,
                [int(i) for i in self.order],
                [(int(n), str(e)) for n, e in self.outputs],
                [[int(i) for i in c] for c in self.cycles],
            )
        )

    def _identity(self) -> Key:
        """What :meth:`key` is: everything ``to_json`` holds, as a tuple of four parts: the head
        (:meth:`_head`), the definitions, one row per node and one per connection. A class's
        endpoints, and the state, unsupported attributes and constants voices share, are printed
        once each (reprs: dicts sorted, numbers normalised, 1, 1.0 and True told apart), in order
        of first use (equal texts once, shared objects or not), and a node's row names them by
        that index; rows hold only ints, strings and bools, so tuple equality is exact for them.

        Why tuples, not one text: printing the rows and connections was most of the key's time
        (0.9 ms for 256 voices, holding the GIL on a live graph's compiler thread); their tuples
        are made by C calls, and equal keys of one IR compare by identity."""
        endpoints: dict[int, int] = {}  # by the list's id: nodes of a class share it (build_ir)
        shared: dict[tuple[int, int, int], int] = {}  # the same, for state and constants
        definitions: dict[str, int] = {}  # each text once: equal lists that are not shared too

        def index(text: str) -> int:
            return definitions.setdefault(text, len(definitions))

        rows = []
        for n in self.nodes:
            ep = endpoints.get(id(n.endpoints))
            if ep is None:
                ep = endpoints[id(n.endpoints)] = index(
                    repr([(e.name, e.kind, e.direction, float(e.default), int(e.arity)) for e in n.endpoints])
                )
            ids = (id(n.state), id(n.unsupported), id(n.constants))
            body = shared.get(ids)
            if body is None:
                body = shared[ids] = index(
                    repr(
                        (
                            [(st.name, st.type, st.length, st.cols) for st in n.state],
                            sorted(n.unsupported.items()),
                            sorted((name, _plain(v)) for name, v in n.constants.items()),
                        )
                    )
                )
            rows.append((int(n.id), str(n.label), str(n.cls), bool(n.breaks_feedback), ep, body))
        # (a connection's fields compare by value: a numpy int equals the int, a numpy bool
        # the bool, and each field has one meaning, so no normalising is needed)
        connections = tuple(map(_CONNECTION_ROW, self.connections))
        return (self._head(), tuple(definitions), tuple(rows), connections)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        # Plain dicts rather than dataclasses.asdict (which deep-copies): this runs on the
        # compiler thread of a live graph, holding the GIL the audio thread needs.
        data = {
            "sample_rate": self.sample_rate,
            "nodes": [
                {
                    "id": n.id,
                    "label": n.label,
                    "cls": n.cls,
                    "endpoints": [vars(e) for e in n.endpoints],
                    "state": [vars(st) for st in n.state],
                    "breaks_feedback": n.breaks_feedback,
                    "unsupported": n.unsupported,
                    "constants": n.constants,
                }
                for n in self.nodes
            ],
            "connections": [vars(c) for c in self.connections],
            "order": self.order,
            "outputs": [list(o) for o in self.outputs],
            "cycles": self.cycles,
            "settled": self.settled,
        }
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GraphIR:
        d = json.loads(text)
        nodes = [
            NodeIR(
                id=n["id"],
                label=n["label"],
                cls=n["cls"],
                endpoints=[EndpointIR(**e) for e in n["endpoints"]],
                state=[StateIR(**s) for s in n["state"]],
                breaks_feedback=n["breaks_feedback"],
                unsupported=n["unsupported"],
                constants=n.get("constants", {}),
            )
            for n in d["nodes"]
        ]
        return cls(
            sample_rate=d["sample_rate"],
            nodes=nodes,
            connections=[ConnectionIR(**c) for c in d["connections"]],
            order=d["order"],
            outputs=[(o[0], o[1]) for o in d["outputs"]],
            cycles=d["cycles"],
            settled=d.get("settled", False),
        )

    # ------------------------------------------------------------------ printing
    def __str__(self) -> str:
        lines = [
            f"GraphIR @ {self.sample_rate:g} Hz, {len(self.nodes)} nodes, {len(self.connections)} connections"
        ]
        by_id = {n.id: n for n in self.nodes}
        lines.append("order: " + " -> ".join(by_id[i].label for i in self.order))
        for i in self.order:
            n = by_id[i]
            ins = [e.name for e in n.endpoints if e.direction == "input"]
            outs = [e.name for e in n.endpoints if e.direction == "output"]
            state = ", ".join(
                f"{s.name}: {s.type}" + (f"[{s.length}]" if s.length is not None else "") for s in n.state
            )
            lines.append(
                f"  {n.label} ({n.cls}) in[{', '.join(ins)}] out[{', '.join(outs)}] state{{{state}}}"
            )
        for c in self.connections:
            arrow = "~>" if c.back_edge else "->"
            lines.append(
                f"  {by_id[c.source].label}.{c.source_endpoint} {arrow} {by_id[c.target].label}.{c.target_endpoint}"
            )
        lines.append("outputs: " + ", ".join(f"{by_id[n].label}.{e}" for n, e in self.outputs))
        return "\n".join(lines)


# Node classes by "module:qualname", filled as classes are defined: generated classes (made with
# exec) cannot be imported again, but are found here.
def resolve_node_class(path: str) -> type[Node]:
    from .node import NODE_CLASSES

    if path in NODE_CLASSES:
        return NODE_CLASSES[path]
    module, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


_SCALAR_STATES: dict[tuple[str, str], StateIR] = {}
"""Scalar StateIRs by (name, type), shared (they are frozen): 64 voices of one class have one
``phase: f64`` between them, not 64 objects for the collector to scan (to_ir runs on the compiler
thread of a live graph)."""


def _scalar_state(name: str, type_: str) -> StateIR:
    got = _SCALAR_STATES.get((name, type_))
    if got is None:
        if len(_SCALAR_STATES) > 4096:  # bounded: attribute names come from user classes
            _SCALAR_STATES.clear()
        got = _SCALAR_STATES[(name, type_)] = StateIR(name, type_)
    return got


_DESCRIBED: dict[tuple, tuple[list[StateIR], dict[str, str], tuple[int, ...]]] = {}
"""describe_state's answers for nodes whose attributes are all floats, bools and ints, by
(class, attribute names, their types): voices of one class answer alike, so a 256-voice graph
walks two attribute lists, not 512 (the ints' range is checked per node). Its StateIRs are
shared, as build_ir shares them between equal nodes anyway; bounded like ``_SCALAR_STATES``."""
_PLAIN_TYPES = frozenset({float, bool, int})
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def describe_state(node: Node) -> tuple[list[StateIR], dict[str, str]]:
    """The compilable attributes of a node instance, and why the others are not."""
    d = node.__dict__
    values = list(d.values())
    key = (type(node), tuple(d), tuple(map(type, values)))
    got = _DESCRIBED.get(key)
    if got is not None:
        state, unsupported, ints = got
        for i in ints:
            if not _I64_MIN <= values[i] <= _I64_MAX:
                return _describe_state(node)
        return state, unsupported
    state, unsupported = _describe_state(node)
    endpoints = type(node)._endpoints
    plain = [
        (i, t)
        for i, (name, t) in enumerate(zip(key[1], key[2], strict=True))
        if name not in endpoints and name not in INTERNAL_ATTRS
    ]
    if not unsupported and all(t in _PLAIN_TYPES for _, t in plain):  # (an int too wide is unsupported)
        if len(_DESCRIBED) > 4096:
            _DESCRIBED.clear()
        _DESCRIBED[key] = (state, unsupported, tuple(i for i, t in plain if t is int))
    return state, unsupported


def _describe_state(node: Node) -> tuple[list[StateIR], dict[str, str]]:
    endpoints = type(node)._endpoints
    state: list[StateIR] = []
    unsupported: dict[str, str] = {}
    for name, value in node.__dict__.items():
        if name in endpoints or name in INTERNAL_ATTRS:
            continue
        kind = type(value)
        if kind is float:  # the usual cases first, by exact type (subclasses take the long way)
            state.append(_SCALAR_STATES.get((name, "f64")) or _scalar_state(name, "f64"))
        elif kind is bool:
            state.append(_scalar_state(name, "bool"))
        elif kind is int and -(2**63) <= value < 2**63:
            state.append(_scalar_state(name, "i64"))
        elif isinstance(value, (bool, np.bool_)):
            state.append(_scalar_state(name, "bool"))
        elif isinstance(value, (int, np.integer)):
            if -(2**63) <= int(value) < 2**63:
                state.append(_scalar_state(name, "i64"))
            else:
                unsupported[name] = f"an int ({value}) that does not fit 64 bits"
        elif isinstance(value, (float, np.floating)):
            state.append(_scalar_state(name, "f64"))
        elif isinstance(value, np.ndarray):
            cols = int(value.shape[1]) if value.ndim == 2 else None
            if value.ndim not in (1, 2) or value.size == 0:
                unsupported[name] = (
                    f"a {value.ndim}-D numpy array of {value.size} elements "
                    "(compiled code indexes non-empty 1-D and 2-D arrays)"
                )
            elif value.dtype == np.float64:
                state.append(StateIR(name, "f64", int(value.size), cols))
            elif value.dtype == np.int64:
                state.append(StateIR(name, "i64", int(value.size), cols))
            else:
                unsupported[name] = (
                    f"a numpy array of dtype {value.dtype} (compiled code takes float64 or int64)"
                )
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
            unsupported[name] = (
                f"a {type(value).__name__} of numbers (compiled code takes numbers, bools and numpy "
                f"arrays: use a numpy array, self.{name} = np.array([...]))"
            )
        else:
            unsupported[name] = (
                f"a {type(value).__name__} (compiled code takes numbers, bools and numpy arrays)"
            )
    return state, unsupported


_CLASS_ENDPOINTS: weakref.WeakKeyDictionary[type, tuple[tuple[Any, ...], list[EndpointIR]]] = (
    weakref.WeakKeyDictionary()
)
"""Per node class, weakly: its event handlers when cached and its endpoints' IR, shared by its
nodes (an IR is not changed after it is built). Made again when a handler of the class was
replaced since (its arity is in the IR), and per node when a node has a handler of its own."""


def _endpoints_ir(node: Node) -> list[EndpointIR]:
    cls = type(node)
    own = node.__dict__
    cached = _CLASS_ENDPOINTS.get(cls)
    if cached is not None:
        handlers, endpoints = cached
        if all(name not in own and getattr(cls, name, None) is h for name, h in handlers):
            return endpoints
    endpoints = []
    handlers = []
    for name, spec in cls._endpoints.items():
        arity = 0
        if spec.kind is Kind.EVENT and spec.direction is Direction.INPUT:
            arity = handler_arity(getattr(node, f"on_{name}"))
            handlers.append((f"on_{name}", getattr(cls, f"on_{name}", None)))
        endpoints.append(EndpointIR(name, spec.kind.value, spec.direction.value, spec.default, arity))
    if not any(name in own for name, _ in handlers):
        _CLASS_ENDPOINTS[cls] = (tuple(handlers), endpoints)
    return endpoints


def _same(a: dict[str, float | int | bool], b: dict[str, float | int | bool]) -> bool:
    """Equal constants, told apart as variant keys tell them (1 from 1.0 and True, -0.0 from
    0.0, NaNs by their bits), in the same order (the IR keeps the attributes' order)."""
    if list(a) != list(b):
        return False
    va, vb = list(a.values()), list(b.values())
    # the usual case at once: equal values of equal types, none a zero (whose sign counts);
    # a NaN is unequal here and takes the long way
    if va == vb and list(map(type, va)) == list(map(type, vb)) and 0 not in va:
        return True
    for name, x in a.items():
        y = b[name]
        if type(x) is not type(y):
            return False
        if x != y or (type(x) is float and math.copysign(1.0, x) != math.copysign(1.0, y)):
            if not (type(x) is float and x != x and struct.pack("<d", x) == struct.pack("<d", y)):
                return False
    return True


def _values_getter(names: tuple[str, ...]) -> Any:
    """A function of a node's ``__dict__`` giving the tuple of its values of ``names`` (one C call
    for several: operator.itemgetter)."""
    if not names:
        return lambda d: ()
    if len(names) == 1:
        name = names[0]
        return lambda d: (d[name],)
    return operator.itemgetter(*names)


def _plain(value: Any) -> float | int | bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)


_ASSIGNED: weakref.WeakKeyDictionary[type, frozenset[str]] = weakref.WeakKeyDictionary()
"""Per class, weakly: the classes of reloaded patches must not be kept alive (or their ids reused)."""


def assigned_attributes(cls: type) -> frozenset[str]:
    """Attributes that some method the JIT may compile assigns (``self.x = ...``, ``self.x += ...``).

    The others are constants of the compiled code: their values go into the IR and are folded in,
    so a node's mode switches (an oscillator's waveform) cost nothing per sample. ``__init__``,
    other dunders, class and static methods are never compiled and don't count.
    """
    cached = _ASSIGNED.get(cls)
    if cached is not None:
        return cached
    import inspect
    import textwrap

    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "oscen.graph.node":
            continue
        for attr, value in vars(klass).items():
            if attr.startswith("__") or not inspect.isfunction(value):
                continue
            try:
                tree = parse_python(textwrap.dedent(inspect.getsource(value)))
            except (OSError, TypeError, SyntaxError):
                continue
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "self"
                ):
                    names.add(node.attr)
    result = frozenset(names)
    _ASSIGNED[cls] = result
    return result


class IRSource(Protocol):
    """What :func:`build_ir` reads of a graph (:class:`~oscen.graph.Graph` is one): a protocol, so
    that this module needs nothing of graph.py, which imports it for ``Graph.to_ir()``."""

    sample_rate: float

    @property
    def nodes(self) -> list[Any]: ...

    @property
    def connections(self) -> list[Any]: ...

    def schedule(self) -> Schedule: ...

    def output_endpoints(self, sched: Schedule | None = None) -> tuple[Endpoint, ...]: ...


_new = object.__new__

RECENT = 4
"""Distinct (state, constants) sets per class that build_ir compares a node's with."""


def build_ir(graph: IRSource) -> GraphIR:
    """Extract the IR of a graph (what ``Graph.to_ir()`` returns)."""
    sched = graph.schedule()
    nodes = []
    # Per class, the last RECENT distinct (state, unsupported, constants) of its nodes, newest
    # first: a node with equal ones shares them (voices do), so that what is computed of them
    # per variant (the IR key, variant keys, settled types) is computed once per distinct object.
    # Several, not one: a voice of a sine LFO, a saw and a square has three Oscillators in turn.
    last: dict[type, list[tuple[Any, ...]]] = {}
    # Per class, for this build: its endpoints' IR (for nodes without handlers of their own),
    # its event handlers' names, assigned attributes and path; per (class, state list) the names
    # of its constants. Voices of a class ask these once, not once per node.
    classes: dict[type, list[Any]] = {}
    constant_names: dict[tuple[type, int], tuple[list[StateIR], tuple[str, ...]]] = {}
    for handle in graph.nodes:
        node = handle.node
        cls = type(node)
        values = node.__dict__
        known = classes.get(cls)
        if known is None:
            handlers = tuple(
                f"on_{name}"
                for name, spec in cls._endpoints.items()
                if spec.kind is Kind.EVENT and spec.direction is Direction.INPUT
            )
            known = classes[cls] = [None, handlers, assigned_attributes(cls), class_path(cls)]
        if known[1] and any(h in values for h in known[1]):  # a handler of the node's own
            endpoints = _endpoints_ir(node)
        else:
            endpoints = known[0]
            if endpoints is None:
                endpoints = known[0] = _endpoints_ir(node)
        state, unsupported = describe_state(node)
        names_of = constant_names.get((cls, id(state)))
        if names_of is None or names_of[0] is not state:  # (kept with the list: its id is not reused)
            assigned = known[2]
            names = tuple(s.name for s in state if s.length is None and s.name not in assigned)
            names_of = constant_names[(cls, id(state))] = (state, names, _values_getter(names))
        vals = names_of[2](values)
        recent = last.get(cls)
        if recent is None:
            recent = last[cls] = []
        # The usual case (the next voice of a class) first: the same constants as a recent node
        # of its class, equal values of equal types, no float zero of the other sign (a NaN is
        # unequal here unless it is the same object, then of the same bits).
        for seen in recent:
            if (
                vals == seen[3]
                and seen[0] == state
                and seen[1] == unsupported
                and tuple(map(type, vals)) == seen[4]
                and (
                    not seen[5]
                    or all(vals[i] or copysign(1.0, vals[i]) == copysign(1.0, seen[3][i]) for i in seen[5])
                )
            ):
                state, unsupported, constants = seen[0], seen[1], seen[2]
                break
        else:
            constants = {}
            for name, value in zip(names_of[1], vals, strict=True):
                kind = type(value)
                constants[name] = value if kind is float or kind is int or kind is bool else _plain(value)
            for seen in recent:
                if seen[0] == state and seen[1] == unsupported and _same(seen[2], constants):
                    state, unsupported, constants = seen[0], seen[1], seen[2]
                    break
            else:
                types = tuple(map(type, vals))
                floats = tuple(i for i, t in enumerate(types) if issubclass(t, (float, np.floating)))
                recent.insert(0, (state, unsupported, constants, vals, types, floats))
                del recent[RECENT:]
        nodes.append(
            NodeIR(
                handle.id,
                handle.label,
                known[3],
                endpoints,
                state,
                cls.breaks_feedback,
                unsupported,
                constants,
                cls,
            )
        )
    back_edges = sched.back_edges
    connections = []
    for c in graph.connections:
        # A connection's IR (not a back edge) is kept on the connection, which never changes:
        # a live graph's next to_ir, after an edit elsewhere, takes it as it is.
        kept = c.__dict__.get("_ir")
        if kept is not None and not (back_edges and (kept.source, kept.target) in back_edges):
            connections.append(kept)
            continue
        # built as its __init__ would (a frozen dataclass's sets each field through
        # object.__setattr__: a third of to_ir's own time for 256 voices)
        ci = _new(ConnectionIR)
        source, target = c.source, c.target
        back = (source.node_id, target.node_id) in back_edges
        ci.__dict__.update(
            source=source.node_id,
            source_endpoint=source.name,
            target=target.node_id,
            target_endpoint=target.name,
            kind="event" if source.kind is Kind.EVENT else "stream",
            back_edge=back,
        )
        if not back:
            c.__dict__["_ir"] = ci
        connections.append(ci)
    outputs = [(e.node_id, e.name) for e in graph.output_endpoints(sched)]
    return GraphIR(
        graph.sample_rate,
        nodes,
        connections,
        list(sched.order),
        outputs,
        [list(c) for c in sched.components],
    )
