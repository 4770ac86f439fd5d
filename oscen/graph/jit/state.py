"""GraphState: every node's state, the parameters and the event queues, in a compiled graph's memory.

The memory is a wasmtime linear memory owned by this object; Python sees it through numpy views
(no copies). ``set_value`` and ``queue_event`` write straight into it, so they take effect at the next
sample without recompiling.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

import numpy as np
import wasmtime

from ..endpoints import Endpoint
from ..graph import GraphError, Ramp, normalize_payload
from .engine import engine
from .ir import GraphIR
from .layout import EVENT_BYTES, EVENT_FIELDS, FRAME, MAX_BLOCK, Layout, QueueSlots

if TYPE_CHECKING:
    from ..graph import Graph

_EVENT_DTYPE = np.dtype([("frame", "<i8"), ("fields", "<f8", (EVENT_FIELDS,))])
_NP = {"f64": np.float64, "i64": np.int64, "bool": np.int32}
_PY = {"f64": float, "i64": int, "bool": bool}


class GraphState:
    """The run-time data of a compiled graph: one per playing graph, reusable across kernels of the
    same IR. Build it with :meth:`from_graph`."""

    def __init__(self, ir: GraphIR, layout: Layout) -> None:
        self.ir = ir
        self.layout = layout
        self.sample_rate = ir.sample_rate
        self.store = wasmtime.Store(engine())
        pages = (layout.size + 65535) // 65536
        self.bytes = np.zeros(pages * 65536, dtype=np.uint8)
        """The state's memory. Until a kernel runs on it, plain numpy memory; then the kernel's own
        linear memory (a module-defined memory is ~2x faster to access than an imported one:
        Cranelift keeps its base in a register), which this attribute is switched to."""
        self._nodes = {n.id: n for n in ir.nodes}
        self._binding: Any = None
        self._mathlib: Any = None  # the math library's instance in this store (see engine.py)
        self.key = ir.key()
        """The IR's identity: a kernel runs only on states of its own IR."""

    def _move_to(self, memory: wasmtime.Memory) -> None:
        """Continue in a kernel instance's memory (copying what the state holds so far)."""
        ptr = memory.data_ptr(self.store)
        new = np.ctypeslib.as_array(ptr, shape=(memory.data_len(self.store),))
        new[: len(self.bytes)] = self.bytes[: len(new)]
        self.bytes = new

    @classmethod
    def from_graph(cls, graph: Graph, max_block: int = MAX_BLOCK, ir: GraphIR | None = None) -> GraphState:
        """A state holding the graph's current node state, parameters, ramps and pending events."""
        ir = ir or graph.to_ir()
        state = cls(ir, Layout.of(ir, max_block))
        state.load_from_graph(graph)
        return state

    # ------------------------------------------------------------------ raw views
    def scalar(self, node_id: int, name: str) -> np.ndarray:
        """A one-element numpy view of a scalar attribute or output of a node."""
        addr, ty = self.layout.nodes[node_id].scalars[name]
        return self.bytes[addr : addr + (4 if ty == "bool" else 8)].view(_NP[ty])

    def array(self, node_id: int, name: str) -> np.ndarray:
        """A numpy view of an array attribute (writes go straight to the compiled code's memory)."""
        nl = self.layout.nodes[node_id]
        addr, ty, length = nl.arrays[name]
        flat = self.bytes[addr : addr + 8 * length].view(_NP[ty])
        return flat.reshape(nl.shapes[name]) if name in nl.shapes else flat

    def buffer(self, node_id: int, name: str) -> np.ndarray:
        addr = self.layout.nodes[node_id].buffers[name]
        return self.bytes[addr : addr + 8 * self.layout.max_block].view(np.float64)

    def _f64(self, addr: int) -> np.ndarray:
        return self.bytes[addr : addr + 8].view(np.float64)

    def _i64(self, addr: int) -> np.ndarray:
        return self.bytes[addr : addr + 8].view(np.int64)

    @property
    def frame(self) -> int:
        """Samples processed so far (event frame offsets count from here)."""
        return int(self._i64(FRAME)[0])

    @frame.setter
    def frame(self, value: int) -> None:
        self._i64(FRAME)[0] = value

    # ------------------------------------------------------------------ parameters and events
    def _check(self, endpoint: Endpoint, call: str) -> None:
        if not isinstance(endpoint, Endpoint):
            raise GraphError(f"{call}: expected an endpoint (like osc.output), got {type(endpoint).__name__}")
        if endpoint.node_id not in self._nodes:
            raise GraphError(f"{call}: {endpoint!r} is not a node of this state's graph")

    def set_value(self, endpoint: Endpoint, value: float, ramp: float = 0.0) -> None:
        """Set a value input now, or ramp to it linearly over ``ramp`` seconds (as Graph.set_value)."""
        self._check(endpoint, "set_value")
        slots = self.layout.nodes[endpoint.node_id].params.get(endpoint.name)
        if slots is None:
            raise GraphError(f"set_value: {endpoint!r} is not a value input")
        value = float(value)
        steps = round(float(ramp) * self.sample_rate)
        current = self._f64(slots.value)
        if steps <= 0:
            current[0] = value
            self._i64(slots.remaining)[0] = 0
        else:
            self._f64(slots.target)[0] = value
            self._f64(slots.step)[0] = (value - float(current[0])) / steps
            self._i64(slots.remaining)[0] = steps

    def get_value(self, endpoint: Endpoint) -> float:
        self._check(endpoint, "get_value")
        nl = self.layout.nodes[endpoint.node_id]
        if endpoint.name in nl.params:
            return float(self._f64(nl.params[endpoint.name].value)[0])
        if endpoint.name in nl.scalars:
            return float(self.scalar(endpoint.node_id, endpoint.name)[0])
        raise GraphError(f"get_value: {endpoint!r} has no value in compiled state")

    def queue_event(self, endpoint: Endpoint, frame_offset: int, payload: Any = 1.0) -> None:
        """Deliver an event ``frame_offset`` samples after the next sample to process."""
        self._check(endpoint, "queue_event")
        q = self.layout.nodes[endpoint.node_id].external_queues.get(endpoint.name)
        if q is None:
            raise GraphError(f"queue_event: {endpoint!r} is not an event input")
        if (
            not isinstance(frame_offset, (int, np.integer))
            or isinstance(frame_offset, bool)
            or frame_offset < 0
        ):
            raise GraphError(f"queue_event: frame_offset must be an int >= 0, got {frame_offset!r}")
        self._insert_event(
            q, self.frame + int(frame_offset), normalize_payload(payload, "queue_event"), endpoint
        )

    def _queue_entries(self, q: QueueSlots) -> tuple[np.ndarray, np.ndarray]:
        header = self.bytes[q.base : q.base + 8].view(np.int32)
        entries = self.bytes[q.entries : q.entries + q.capacity * EVENT_BYTES].view(_EVENT_DTYPE)
        return header, entries

    def _insert_event(self, q: QueueSlots, frame: int, fields: tuple[float, ...], where: Any) -> None:
        header, entries = self._queue_entries(q)
        count, head = int(header[0]), int(header[1])
        if count >= q.capacity:
            raise GraphError(f"queue_event: {where!r} already has {q.capacity} events waiting")
        frames = entries["frame"][head:count]
        pos = head + bisect.bisect_right(frames.tolist(), frame)
        entries[pos + 1 : count + 1] = entries[pos:count].copy()
        entries[pos]["frame"] = frame
        entries[pos]["fields"] = fields
        header[0] = count + 1

    def pending_events(self, node_id: int, name: str) -> list[tuple[int, tuple[float, ...]]]:
        q = self.layout.nodes[node_id].external_queues[name]
        header, entries = self._queue_entries(q)
        return [
            (int(e["frame"]), tuple(float(f) for f in e["fields"]))
            for e in entries[int(header[1]) : int(header[0])]
        ]

    # ------------------------------------------------------------------ to and from the interpreter
    def load_from_graph(self, graph: Graph, node_ids: set[int] | None = None) -> None:
        """Copy node attributes, parameters, ramps and pending events in from the graph's node
        objects: of every node (and the frame), or only of ``node_ids``."""
        if node_ids is None:
            self.frame = graph.frame
        ramps = graph.ramps()
        for n in self.ir.nodes:
            if (node_ids is not None and n.id not in node_ids) or n.id not in graph._handles:
                continue
            values = graph.handle(n.id).node.__dict__
            nl = self.layout.nodes[n.id]
            for name in nl.scalars:
                self.scalar(n.id, name)[0] = values[name]
            for name in nl.arrays:
                self.array(n.id, name)[:] = values[name]
            for name, slots in nl.params.items():
                self._f64(slots.value)[0] = float(values[name])
                ramp = ramps.get((n.id, name))
                self._i64(slots.remaining)[0] = ramp.remaining if ramp else 0
                if ramp:
                    self._f64(slots.target)[0] = ramp.target
                    self._f64(slots.step)[0] = ramp.step
            for q in nl.external_queues.values():
                self.bytes[q.base : q.base + 8] = 0
        for ep, frame, fields in graph.pending_events():
            if (node_ids is not None and ep.node_id not in node_ids) or ep.node_id not in self.layout.nodes:
                continue
            q = self.layout.nodes[ep.node_id].external_queues[ep.name]
            self._insert_event(q, frame, fields, ep)

    def save_to_graph(self, graph: Graph) -> None:
        """Copy the compiled state back into the graph's node objects (to continue interpreted).
        Nodes removed from the graph since are skipped."""
        graph.frame = self.frame
        graph._ramps.clear()
        for n in self.ir.nodes:
            if n.id not in graph._handles:
                continue
            node = graph.handle(n.id).node
            nl = self.layout.nodes[n.id]
            values = node.__dict__
            for name, (_, ty) in nl.scalars.items():
                values[name] = _PY[ty](self.scalar(n.id, name)[0])
            for name in nl.arrays:
                values[name][:] = self.array(n.id, name)
            for name, slots in nl.params.items():
                values[name] = float(self._f64(slots.value)[0])
                remaining = int(self._i64(slots.remaining)[0])
                if remaining > 0:
                    graph._ramps[(n.id, name)] = Ramp(
                        float(self._f64(slots.target)[0]), float(self._f64(slots.step)[0]), remaining
                    )
            for name in nl.external_queues:
                queue = graph._external[(n.id, name)]
                queue.clear()
                for frame, fields in self.pending_events(n.id, name):
                    queue.append((frame, next(graph._event_seq), fields))

    def copy_nodes_from(self, other: GraphState, node_ids: list[int] | None = None) -> None:
        """Carry state over from a state of another topology: every node present in both keeps its
        attributes, outputs, parameters and pending events (what a hot swap needs)."""
        for nid, nl in self.layout.nodes.items():
            if node_ids is not None and nid not in node_ids:
                continue
            src = other.layout.nodes.get(nid)
            if src is None:
                continue
            for name, (addr, _) in nl.scalars.items():
                if name in src.scalars:
                    a = src.scalars[name][0]
                    self.bytes[addr : addr + 8] = other.bytes[a : a + 8]
            for name, (addr, _, length) in nl.arrays.items():
                if name in src.arrays and src.arrays[name][2] == length:
                    a = src.arrays[name][0]
                    self.bytes[addr : addr + 8 * length] = other.bytes[a : a + 8 * length]
            for name, slots in nl.params.items():
                if name in src.params:
                    self.bytes[slots.value : slots.value + 32] = other.bytes[
                        src.params[name].value : src.params[name].value + 32
                    ]
            for name, q in nl.external_queues.items():
                if name in src.external_queues:
                    # the header and the waiting entries only (a swap happens on the audio thread)
                    sq = src.external_queues[name]
                    count = int(other.bytes[sq.base : sq.base + 4].view(np.int32)[0])
                    size = 8 + min(count, q.capacity) * EVENT_BYTES
                    self.bytes[q.base : q.base + size] = other.bytes[sq.base : sq.base + size]
        self.frame = other.frame
