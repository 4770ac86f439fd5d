"""Where everything lives in a compiled graph's linear memory, derived from the GraphIR alone.

Both the compiled kernel (as constant addresses) and :class:`GraphState` (as numpy views) use this
layout, so a state made from a graph fits any kernel compiled from the same IR.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..graph.ir import GraphIR, NodeIR
from ..graph.validation import MAX_EVENTS_PER_SAMPLE
from .frontend.typing import settled

MAX_BLOCK = 1024
"""Samples per kernel call; longer blocks are processed in chunks of this size."""
RENDER_SAMPLES = 32768
"""Samples of output one `render` call can collect (several blocks in one call into the kernel)."""
EVENT_FIELDS = 4
EVENT_BYTES = 8 + 8 * EVENT_FIELDS  # frame (i64) + fields (f64)
EXTERNAL_QUEUE_CAPACITY = MAX_EVENTS_PER_SAMPLE
"""Events queued from outside that wait in one event input's queue in the kernel's memory (more
wait in GraphState's host-side overflow): at least the events one input may get at one sample."""

# Header slots.
FRAME = 0  # i64: absolute frame of the next sample
TRAP_SITE = 8  # i32: which site trapped
TRAP_CODE = 12  # i32: what went wrong there
SEGMENT = 16  # i32: the segment running (to attribute interrupts)
INTERRUPT = 20  # i32: loop iterations node code may still run in this call (host sets it; watchdog: 1)
LOOP_BUDGET = 2**31 - 1
"""What a Python host gives each call: its watchdog, not the count, ends an endless loop."""
NODE = 24  # i32: the base of the node whose code trapped (its trap path stores it; bases differ)
LANE = 28  # i32: in a voice group's code, the voice whose code runs (NODE holds one voice's node)
HEADER_BYTES = 64
HEADER_SLOTS = {
    "frame": FRAME,
    "trap_site": TRAP_SITE,
    "trap_code": TRAP_CODE,
    "segment": SEGMENT,
    "interrupt": INTERRUPT,
    "node": NODE,
    "lane": LANE,
}
"""The header slots by name (in a layout's JSON: hosts in other languages read them from there)."""
LAYOUT_VERSION = 3


@dataclass(frozen=True)
class ParamSlots:
    value: int
    target: int
    step: int
    remaining: int


@dataclass(frozen=True)
class QueueSlots:
    """An event queue: i32 count at ``base``, i32 head at ``base + 4``, entries from ``base + 8``."""

    base: int
    capacity: int

    @property
    def entries(self) -> int:
        return self.base + 8


@dataclass
class NodeLayout:
    base: int = 0  # first byte of the node's region: node code addresses everything relative to it
    scalars: dict[str, tuple[int, str]] = field(default_factory=dict)  # attr or output -> (address, type)
    arrays: dict[str, tuple[int, str, int]] = field(default_factory=dict)  # name -> (address, type, length)
    params: dict[str, ParamSlots] = field(default_factory=dict)  # value inputs
    external_queues: dict[str, QueueSlots] = field(default_factory=dict)  # event inputs
    outboxes: dict[str, QueueSlots] = field(default_factory=dict)  # event outputs: this block's events
    buffers: dict[str, int] = field(default_factory=dict)  # stream/value outputs -> address
    shapes: dict[str, tuple[int, int]] = field(default_factory=dict)  # 2-D arrays -> (rows, cols)

    def rel(self, addr: int) -> int:
        return addr - self.base

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data (tuples become lists; :meth:`from_dict` turns them back)."""
        return {
            "base": self.base,
            "scalars": {n: list(v) for n, v in self.scalars.items()},
            "arrays": {n: list(v) for n, v in self.arrays.items()},
            "params": {n: asdict(p) for n, p in self.params.items()},
            "external_queues": {n: asdict(q) for n, q in self.external_queues.items()},
            "outboxes": {n: asdict(q) for n, q in self.outboxes.items()},
            "buffers": dict(self.buffers),
            "shapes": {n: list(v) for n, v in self.shapes.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeLayout:
        return cls(
            base=int(d["base"]),
            scalars={n: (int(a), str(t)) for n, (a, t) in d["scalars"].items()},
            arrays={n: (int(a), str(t), int(m)) for n, (a, t, m) in d["arrays"].items()},
            params={n: ParamSlots(**p) for n, p in d["params"].items()},
            external_queues={n: QueueSlots(**q) for n, q in d["external_queues"].items()},
            outboxes={n: QueueSlots(**q) for n, q in d["outboxes"].items()},
            buffers={n: int(a) for n, a in d["buffers"].items()},
            shapes={n: (int(r), int(c)) for n, (r, c) in d["shapes"].items()},
        )


@dataclass
class Layout:
    max_block: int
    nodes: dict[int, NodeLayout]
    size: int
    render_area: int = 0  # RENDER_SAMPLES f64 per graph output: where `render` collects blocks
    render_samples: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The layout as JSON-ready data (node ids become string keys), with the header slots and
        event format it assumes, so that a host in another language (the browser worklet) needs
        nothing else to address a kernel's memory."""
        return {
            "version": LAYOUT_VERSION,
            "header": dict(HEADER_SLOTS),
            "event_bytes": EVENT_BYTES,
            "event_fields": EVENT_FIELDS,
            "max_block": self.max_block,
            "size": self.size,
            "render_area": self.render_area,
            "render_samples": self.render_samples,
            "nodes": {str(nid): nl.as_dict() for nid, nl in self.nodes.items()},
        }

    def to_json(self) -> str:
        """The layout as JSON text (:meth:`from_json` reads it back equal)."""
        return json.dumps(self.as_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Layout:
        if d.get("version") != LAYOUT_VERSION:
            raise ValueError(
                f"a memory layout of version {d.get('version')!r}; this oscen reads {LAYOUT_VERSION}"
            )
        if d.get("header") != HEADER_SLOTS or d.get("event_bytes") != EVENT_BYTES:
            raise ValueError("a memory layout with another header or event format (another oscen version?)")
        return cls(
            int(d["max_block"]),
            {int(nid): NodeLayout.from_dict(nl) for nid, nl in d["nodes"].items()},
            int(d["size"]),
            int(d["render_area"]),
            int(d["render_samples"]),
        )

    @classmethod
    def from_json(cls, text: str) -> Layout:
        """The layout :meth:`to_json` wrote."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def of(cls, ir: GraphIR, max_block: int = MAX_BLOCK) -> Layout:
        """The layout of ``ir`` with the attribute types the JIT compiles (see ``settled``).

        Made once per (settled) IR and block size, then shared: JitGraph lays out the state and
        the compiler the code of one IR (a Layout is not changed after it is made)."""
        ir = settled(ir)
        made = ir.__dict__.setdefault("_layouts", {})
        got = made.get(max_block)
        if got is None:
            got = made[max_block] = cls._of(ir, max_block)
        return got

    @classmethod
    def _of(cls, ir: GraphIR, max_block: int) -> Layout:
        addr = HEADER_BYTES
        nodes: dict[int, NodeLayout] = {}
        # Nodes of one template share their state and endpoint lists (build_ir, settled): their
        # regions are laid out alike, so each distinct pair is laid out once, relative to 0.
        templates: dict[tuple[int, int], tuple[NodeLayout, int]] = {}
        for n in ir.nodes:
            ids = (id(n.state), id(n.endpoints))
            got = templates.get(ids)
            if got is None:
                template, size = _node_template(n, max_block)
                empty = tuple(name for name in _SHIFT if not getattr(template, name))
                got = templates[ids] = (template, size, empty)
            template, size, empty = got
            nodes[n.id] = _shifted(template, addr, empty)
            addr += size
        # Room for many blocks of the graph's outputs, so one call can render them all (offline
        # rendering without a Python round trip per block).
        render_samples = max(max_block, (RENDER_SAMPLES // max_block) * max_block)
        render_area = addr
        addr += 8 * render_samples * max(len(ir.outputs), 1)
        return cls(max_block, nodes, addr, render_area, render_samples)


def _node_template(n: NodeIR, max_block: int) -> tuple[NodeLayout, int]:
    """A node's region laid out from address 0, and its size in bytes (a multiple of 8)."""
    addr = 0

    def take(nbytes: int) -> int:
        nonlocal addr
        at = addr
        addr += (nbytes + 7) // 8 * 8
        return at

    nl = NodeLayout(base=0)
    for s in n.state:
        if s.length is None:
            nl.scalars[s.name] = (take(8), s.type)
    for e in n.endpoints:
        if e.direction == "output" and e.kind != "event":
            nl.scalars[e.name] = (take(8), "f64")
        elif e.direction == "input" and e.kind == "value":
            nl.params[e.name] = ParamSlots(take(8), take(8), take(8), take(8))
    for s in n.state:
        if s.length is not None:
            nl.arrays[s.name] = (take(8 * max(s.length, 1)), s.type, s.length)
            if s.cols:
                nl.shapes[s.name] = (s.length // s.cols, s.cols)
    for e in n.endpoints:
        if e.kind != "event":
            continue
        if e.direction == "input":
            cap = EXTERNAL_QUEUE_CAPACITY
            nl.external_queues[e.name] = QueueSlots(take(8 + cap * EVENT_BYTES), cap)
        else:
            # One event per sample on average: a chord is a burst, but each voice's gate
            # is its own output. Overflow traps with a clear error.
            cap = max_block
            nl.outboxes[e.name] = QueueSlots(take(8 + cap * EVENT_BYTES), cap)
    for e in n.endpoints:
        if e.direction == "output" and e.kind != "event":
            nl.buffers[e.name] = take(8 * max_block)
    # no bytes of its own: one word, so that no two nodes share a base (faults name a node by it)
    return nl, max(addr, 8)


def _shifted(t: NodeLayout, base: int, empty: tuple[str, ...] = ()) -> NodeLayout:
    """The template ``t`` placed at ``base``: a :class:`_Shifted` whose fields are made when
    first read. A compile reads the regions of a voice group's template and only the bases of
    its other voices (one loop calls them all), so laying out 256 voices no longer builds 3,000
    dicts the compile never looks at; a state reads each node's once. ``empty``: the fields
    empty in ``t``, set at once (the block function reads every node's queues)."""
    nl = _new(_Shifted)
    d = nl.__dict__
    d["base"] = base
    d["_template"] = t
    for name in empty:
        d[name] = {}
    return nl


def _shift_params(t: NodeLayout, base: int) -> dict[str, ParamSlots]:
    params = {}
    for name, p in t.params.items():
        slots = params[name] = _new(ParamSlots)  # not through the frozen dataclass's __init__
        pd = p.__dict__
        slots.__dict__.update(
            value=pd["value"] + base,
            target=pd["target"] + base,
            step=pd["step"] + base,
            remaining=pd["remaining"] + base,
        )
    return params


_SHIFT = {
    "scalars": lambda t, base: {name: (a + base, ty) for name, (a, ty) in t.scalars.items()},
    "arrays": lambda t, base: {name: (a + base, ty, m) for name, (a, ty, m) in t.arrays.items()},
    "params": _shift_params,
    "external_queues": lambda t, base: {name: _queue(q, base) for name, q in t.external_queues.items()},
    "outboxes": lambda t, base: {name: _queue(q, base) for name, q in t.outboxes.items()},
    "buffers": lambda t, base: {name: a + base for name, a in t.buffers.items()},
    "shapes": lambda t, base: dict(t.shapes),
}
"""How each field of a node's layout is made from its template's and its base."""


class _Shifted(NodeLayout):
    """A node's layout made from a template (:func:`_shifted`): each field when first read, then
    kept (a layout is not changed after it is made). Equal to the NodeLayout with the same
    fields, as any NodeLayout."""

    def __getattr__(self, name: str) -> Any:  # only for fields not made yet
        make = _SHIFT.get(name)
        d = self.__dict__
        if make is None or "_template" not in d:
            raise AttributeError(name)
        value = d[name] = make(d["_template"], d["base"])
        return value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NodeLayout):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, as NodeLayout


_FIELDS = ("base", *_SHIFT)


_new = object.__new__


def _queue(q: QueueSlots, base: int) -> QueueSlots:
    got = _new(QueueSlots)
    got.__dict__.update(base=q.base + base, capacity=q.capacity)
    return got
