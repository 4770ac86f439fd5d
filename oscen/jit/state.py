"""GraphState: every node's state, the parameters and the event queues, in a compiled graph's memory.

The memory is a wasmtime linear memory owned by this object; Python sees it through numpy views
(no copies). ``set_value`` and ``queue_event`` write straight into it, so they take effect at the next
sample without recompiling.

Parameters and events follow the memory protocol (:mod:`.protocol`): a state bound to a kernel calls
the kernel's own ``set_param`` and ``queue_event`` exports (the browser worklet calls the same ones);
an unbound state does the same in Python, to the same bytes.

Event queues: each event input's queue in the kernel's memory holds EXTERNAL_QUEUE_CAPACITY events.
More may be queued: the earliest wait in the kernel's queue, the later ones in a host-side overflow
list, and before each call into the kernel the queue is topped up from the overflow; a call that
would reach an event still in the overflow is split at that event's frame. So there is no limit on
queued events but the one every engine shares, MAX_EVENTS_PER_SAMPLE for one input at one sample.
"""

from __future__ import annotations

import bisect
import ctypes
import itertools
import operator
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import wasmtime

from ..graph import validation as check
from ..graph.endpoints import Endpoint
from ..graph.graph import GraphError, Ramp
from ..graph.ir import GraphIR
from .engine import engine
from .frontend.typing import settled
from .layout import EVENT_BYTES, EVENT_FIELDS, FRAME, MAX_BLOCK, Layout, ParamSlots, QueueSlots

if TYPE_CHECKING:
    from ..graph.graph import Graph

_EVENT_DTYPE = np.dtype([("frame", "<i8"), ("fields", "<f8", (EVENT_FIELDS,))])
_NP = {"f64": np.float64, "i64": np.int64, "bool": np.int32}
_PY = {"f64": float, "i64": int, "bool": bool}


_memory_view = ctypes.pythonapi.PyMemoryView_FromMemory
_memory_view.restype = ctypes.py_object
_memory_view.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
_PYBUF_WRITE = 0x200


def _linear_memory(memory: wasmtime.Memory, store: wasmtime.Store) -> np.ndarray:
    """A numpy view of a wasm instance's linear memory (the store keeps the memory alive).

    Through a plain memoryview: ``np.ctypeslib.as_array`` on the pointer made a ctypes array type
    per memory size and objects that only the cyclic collector frees, and a JitGraph freezes the
    collector after each compile, so every replaced state left some behind (bench_soak: about
    200 bytes per edit)."""
    address = ctypes.addressof(memory.data_ptr(store).contents)
    return np.frombuffer(_memory_view(address, memory.data_len(store), _PYBUF_WRITE), dtype=np.uint8)


class GraphState:
    """The run-time data of a compiled graph: one per playing graph, reusable across kernels of the
    same IR. Build it with :meth:`from_graph`."""

    def __init__(self, ir: GraphIR, layout: Layout) -> None:
        ir = settled(ir)  # the attribute types kernels are compiled with
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
        self.graph_uid: int | None = None
        """The uid of the graph this state was made from (``from_graph``): only its endpoints are
        accepted. None for a state made from an IR alone (then any endpoint whose node is here)."""
        self._connected = {(c.target, c.target_endpoint) for c in ir.connections if c.kind != "event"}
        self._queues = {q.base: q for nl in layout.nodes.values() for q in nl.external_queues.values()}
        self._overflow: dict[int, list[tuple[int, int, tuple[float, ...]]]] = {}  # queue base -> later events
        self._overflow_count = 0
        self._seq = itertools.count()
        self._views: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._binding: Any = None
        """The binding (kernel instance) the state's memory belongs to now."""
        self._bindings: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        """Every kernel's instance in this store, by kernel: switching back reuses it."""
        self._processing = threading.Lock()
        """Held while a kernel runs on this state: a second thread is refused (wasmtime aborts the
        process when one store is entered from two threads)."""
        self._mathlib: Any = None  # the math library's instance in this store (see engine.py)
        self._load_plan: LoadPlan | None = None
        self.key = ir.key()
        """The IR's identity: a kernel runs only on states of its own IR."""

    def _move_to(self, memory: wasmtime.Memory) -> None:
        """Continue in a kernel instance's memory (copying what the state holds so far)."""
        self._move_to_bytes(_linear_memory(memory, self.store))

    def _move_to_bytes(self, new: np.ndarray) -> None:
        """Continue in another (already instantiated) kernel's memory of the same layout."""
        if new is not self.bytes:
            # ctypes.memmove lets go of the GIL (a numpy copy does not): the first touch of a new
            # instance's memory faults its pages in, ~1 ms for 64 voices, which a compiler thread
            # binding in the background must not spend holding up the audio thread.
            size = min(len(new), len(self.bytes))
            if new.flags.c_contiguous and self.bytes.flags.c_contiguous:
                ctypes.memmove(new.ctypes.data, self.bytes.ctypes.data, size)
            else:
                new[:size] = self.bytes[:size]
            self.bytes = new
            self._views.clear()  # views of the old memory would read and write the wrong place

    @classmethod
    def from_graph(cls, graph: Graph, max_block: int = MAX_BLOCK, ir: GraphIR | None = None) -> GraphState:
        """A state holding the graph's current node state, parameters, ramps and pending events."""
        ir = settled(ir or graph.to_ir())
        state = cls(ir, Layout.of(ir, max_block))
        state.graph_uid = graph.uid
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
    def _check(self, endpoint: Any, call: str) -> None:
        check.endpoint(endpoint, call, "endpoint")
        uid = getattr(endpoint.graph, "uid", None)
        if (self.graph_uid is not None and uid != self.graph_uid) or endpoint.node_id not in self._nodes:
            raise GraphError(
                f"{call}: endpoint {endpoint!r} belongs to a node that is not in this state's graph"
            )

    def set_value(self, endpoint: Endpoint, value: float, ramp: float = 0.0) -> None:
        """Set a value input now, or ramp to it linearly over ``ramp`` seconds (as Graph.set_value;
        for a connected input, its base)."""
        self._check(endpoint, "set_value")
        check.value_input(endpoint, "set_value")
        slots = self.layout.nodes[endpoint.node_id].params.get(endpoint.name)
        if slots is None:
            raise GraphError(f"set_value: {endpoint!r} is not a value input")
        value = check.finite(value, "set_value", "value")
        steps = check.ramp_steps(ramp, self.sample_rate, "set_value")
        binding = self._binding
        if binding is not None and self._processing.acquire(blocking=False):
            try:  # the kernel's own set_param (the same float operations as below)
                binding.set_param(slots.value, value, float(ramp), self.sample_rate)
            finally:
                self._processing.release()
            return
        # Unbound (or a kernel runs on another thread: writing its memory directly is what it
        # sees at its next block either way): protocol.set_param_function() done here, in Python.
        # (The reference evaluator can run that function on self.bytes instead: any object with
        # the binding's set_param/queue_event methods plugs in where `binding` is chosen above.)
        current = self._f64(slots.value)
        if steps <= 0:
            current[0] = value
            self._i64(slots.remaining)[0] = 0
        else:  # from the base (a connected input's sources add to it, in both engines)
            self._f64(slots.target)[0] = value
            self._f64(slots.step)[0] = (value - float(current[0])) / steps
            self._i64(slots.remaining)[0] = steps

    def get_value(self, endpoint: Endpoint) -> float:
        """As Graph.get_value: a value input's base, an output's last sample, a scalar attribute."""
        self._check(endpoint, "get_value")
        check.has_value(endpoint, "get_value")
        value = self.value_of(endpoint.node_id, endpoint.name)
        if value is None:
            raise GraphError(f"get_value: {endpoint!r} has no value in compiled state")
        return value

    def value_of(self, node_id: int, name: str) -> float | None:
        """get_value by node id and name, unchecked (for tests comparing states of two builds)."""
        nl = self.layout.nodes[node_id]
        if name in nl.params:
            return float(self._f64(nl.params[name].value)[0])
        if name in nl.scalars:
            return float(self.scalar(node_id, name)[0])
        return None

    def queue_event(self, endpoint: Endpoint, frame_offset: int, payload: Any = 1.0) -> None:
        """Deliver an event ``frame_offset`` samples after the next sample to process."""
        self._check(endpoint, "queue_event")
        check.event_input(endpoint, "queue_event")
        q = self.layout.nodes[endpoint.node_id].external_queues.get(endpoint.name)
        if q is None:
            raise GraphError(f"queue_event: {endpoint!r} is not an event input")
        at = check.event_frame(frame_offset, self.frame, "queue_event")
        fields = check.payload(payload, "queue_event")
        self._insert_event(q, at, fields, endpoint, limit=True)

    def events_waiting(self, node_id: int, name: str, frame: int) -> int:
        """How many queued events wait for an event input at one absolute frame."""
        return self._waiting(self.layout.nodes[node_id].external_queues[name], frame)[0]

    def _waiting(self, q: QueueSlots, frame: int) -> tuple[int, int]:
        """(events waiting at ``frame``, where in the kernel's queue one more would go)."""
        header, frames, _, _ = self._queue_views(q)
        count, head = int(header[0]), int(header[1])
        live = frames[head:count]
        right = int(live.searchsorted(frame, "right"))
        waiting = right - int(live.searchsorted(frame, "left"))
        over = self._overflow.get(q.base)
        if over:
            waiting += bisect.bisect_left(over, (frame + 1,)) - bisect.bisect_left(over, (frame,))
        return waiting, head + right

    def _queue_views(self, q: QueueSlots) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(header, frames, fields, entries) of a queue, as numpy views kept until the memory moves."""
        views = self._views.get(q.base)
        if views is None:
            header, entries = self._queue_entries(q)
            views = self._views[q.base] = (header, entries["frame"], entries["fields"], entries)
        return views

    def _queue_entries(self, q: QueueSlots) -> tuple[np.ndarray, np.ndarray]:
        header = self.bytes[q.base : q.base + 8].view(np.int32)
        entries = self.bytes[q.entries : q.entries + q.capacity * EVENT_BYTES].view(_EVENT_DTYPE)
        return header, entries

    def _insert_event(
        self, q: QueueSlots, frame: int, fields: tuple[float, ...], where: Any, limit: bool = False
    ) -> None:
        """Insert in frame order, after the events of the same frame. The kernel's queue keeps the
        earliest events; when it is full, later ones wait in the overflow (every event there is
        due no earlier than every event in the kernel's queue). With ``limit``, refuse an event
        beyond MAX_EVENTS_PER_SAMPLE at its frame first."""
        self._refill(q)
        if limit:
            check.events_at_frame(self._waiting(q, frame)[0], where, frame, "queue_event")
        header, frames, values, _ = self._queue_views(q)
        count = int(header[0])
        over = self._overflow.get(q.base)
        if count >= q.capacity:
            last = int(frames[count - 1])
            if frame >= last or (over and frame >= over[0][0]):
                over = self._overflow.setdefault(q.base, [])
                over.insert(bisect.bisect_left(over, (frame + 1,)), (frame, next(self._seq), fields))
                self._overflow_count += 1
                return
            # The new event is due before the kernel queue's last: that one moves to the overflow.
            evicted = (last, -1, tuple(float(f) for f in values[count - 1]))
            self._overflow.setdefault(q.base, []).insert(0, evicted)
            self._overflow_count += 1
            header[0] = count - 1
        binding = self._binding
        if binding is not None and self._processing.acquire(blocking=False):
            try:  # the kernel's own queue_event (it has room: the overflow is host-side)
                inserted = binding.queue_event(q.base, q.capacity, frame, fields)
            finally:
                self._processing.release()
            if not inserted:
                raise RuntimeError("internal error: the kernel refused an event its queue has room for")
            return
        self._put_event(q, frame, fields)

    def _put_event(self, q: QueueSlots, frame: int, fields: tuple[float, ...]) -> None:
        """protocol.queue_event_function() done here, in Python (unbound, or a kernel runs on
        another thread): insert in a queue that has room, after the events of the same frame."""
        _, pos = self._waiting(q, frame)
        header, frames, values, entries = self._queue_views(q)
        count = int(header[0])
        if pos < count:
            entries[pos + 1 : count + 1] = entries[pos:count].copy()
        frames[pos] = frame
        values[pos] = fields
        header[0] = count + 1

    def _refill(self, q: QueueSlots) -> None:
        """Move events from the overflow into the kernel's queue while it has room (host side,
        between calls into the kernel)."""
        over = self._overflow.get(q.base)
        if not over:
            return
        header, frames, values, entries = self._queue_views(q)
        count, head = int(header[0]), int(header[1])
        if head:  # a block abandoned by a fault left its handled events in front: drop them
            entries[: count - head] = entries[head:count].copy()
            count -= head
            header[1] = 0
        take = min(q.capacity - count, len(over))
        for j in range(take):
            frame, _, fields = over[j]
            frames[count + j] = frame
            values[count + j] = fields
        del over[:take]
        header[0] = count + take
        self._overflow_count -= take

    def run_overflowing(self, binding: Any, out: np.ndarray) -> None:
        """Process ``out.shape[-1]`` samples while events wait in the overflow: calls into the
        kernel of at most max_block samples, each ending before the first event still in the
        overflow, which the next call then finds in the kernel's queue."""
        n = out.shape[-1]
        pos = 0
        while pos < n:
            for base in [b for b, over in self._overflow.items() if over]:
                self._refill(self._queues[base])
            m = min(n - pos, self.layout.max_block)
            if self._overflow_count:
                first = min(over[0][0] for over in self._overflow.values() if over)
                # >= 1: a full kernel queue holds at most MAX_EVENTS_PER_SAMPLE events of one frame
                m = max(1, min(m, first - self.frame))
            binding.call(m)
            for k, buf in enumerate(binding.buffers):
                out[k, pos : pos + m] = buf[:m]
            pos += m

    def pending_events(self, node_id: int, name: str) -> list[tuple[int, tuple[float, ...]]]:
        q = self.layout.nodes[node_id].external_queues[name]
        header, entries = self._queue_entries(q)
        waiting = [
            (int(e["frame"]), tuple(float(f) for f in e["fields"]))
            for e in entries[int(header[1]) : int(header[0])]
        ]
        return waiting + [(frame, fields) for frame, _, fields in self._overflow.get(q.base, ())]

    def _clear_queue(self, q: QueueSlots) -> None:
        self.bytes[q.base : q.base + 8] = 0
        self._overflow_count -= len(self._overflow.pop(q.base, ()))

    # ------------------------------------------------------------------ to and from the interpreter
    def load_from_graph(self, graph: Graph, node_ids: set[int] | None = None) -> None:
        """Copy node attributes, parameters, ramps and pending events in from the graph's node
        objects: of every node (and the frame), or only of ``node_ids``.

        Every node's values go by one :class:`LoadPlan` (one gather per node, one assignment per
        type): the swap from the interpreter to the first compiled code does this on the audio
        thread. Make the plan beforehand with :meth:`plan_load` (``from_graph`` and JitGraph's
        compiler thread do); a subset of nodes, or a graph that lost a node, goes node by node."""
        if node_ids is None:
            self.frame = graph.frame
        snap = graph.snapshot()
        if node_ids is None and all(graph.has_node(node[0]) for node in self.plan_load().nodes):
            self._load_planned(graph, snap)
        else:
            self._load_nodes(graph, snap, node_ids)
        for (nid, name), waiting in snap.events.items():
            if (node_ids is not None and nid not in node_ids) or nid not in self.layout.nodes:
                continue
            q = self.layout.nodes[nid].external_queues[name]
            for frame, fields in waiting:
                self._insert_event(q, frame, fields, (nid, name))

    def plan_load(self) -> LoadPlan:
        """This state's :class:`LoadPlan` (made on first use: a few hundred microseconds for 64
        voices, for a thread other than the one that swaps)."""
        plan = self._load_plan
        if plan is None:
            plan = self._load_plan = LoadPlan.of(self)
        return plan

    def _load_planned(self, graph: Graph, snap: Any) -> None:
        plan = self._load_plan
        assert plan is not None
        f64: list[Any] = []
        i64: list[Any] = []
        i32: list[Any] = []
        params: list[float] = []
        bases, ramps = snap.bases, snap.ramps
        for nid, node_f64, node_i64, node_bool, node_params in plan.nodes:
            values = graph.handle(nid).node.__dict__
            if node_f64 is not None:
                f64 += node_f64(values)
            if node_i64 is not None:
                i64 += node_i64(values)
            if node_bool is not None:
                i32 += node_bool(values)
            for name, connected in node_params:
                base = bases.get((nid, name)) if connected else None
                params.append(float(values[name]) if base is None else base)
        words = self.bytes.view(np.float64)
        ints = self.bytes.view(np.int64)
        words[plan.f64] = f64
        ints[plan.i64] = i64
        self.bytes.view(np.int32)[plan.bools] = i32
        words[plan.param_values] = params
        ints[plan.param_remaining] = 0
        for (nid, name), ramp in ramps.items():  # (ramps running: rare at a swap)
            slots = self.layout.nodes[nid].params.get(name) if nid in self.layout.nodes else None
            if slots is not None:
                self._i64(slots.remaining)[0] = ramp.remaining
                self._f64(slots.target)[0] = ramp.target
                self._f64(slots.step)[0] = ramp.step
        for nid, name in plan.arrays:
            self.array(nid, name)[:] = graph.handle(nid).node.__dict__[name]
        ints[plan.queues] = 0
        if self._overflow:
            for base in self._queues:
                self._overflow_count -= len(self._overflow.pop(base, ()))

    def _load_nodes(self, graph: Graph, snap: Any, node_ids: set[int] | None) -> None:
        ramps = snap.ramps
        for n in self.ir.nodes:
            if (node_ids is not None and n.id not in node_ids) or not graph.has_node(n.id):
                continue
            values = graph.handle(n.id).node.__dict__
            nl = self.layout.nodes[n.id]
            for name in nl.scalars:
                self.scalar(n.id, name)[0] = values[name]
            for name in nl.arrays:
                self.array(n.id, name)[:] = values[name]
            for name, slots in nl.params.items():
                # a value input connected here: the slot holds its base (the sources are added)
                base = snap.bases.get((n.id, name)) if (n.id, name) in self._connected else None
                self._f64(slots.value)[0] = float(values[name]) if base is None else base
                ramp = ramps.get((n.id, name))
                self._i64(slots.remaining)[0] = ramp.remaining if ramp else 0
                if ramp:
                    self._f64(slots.target)[0] = ramp.target
                    self._f64(slots.step)[0] = ramp.step
            for q in nl.external_queues.values():
                self._clear_queue(q)

    def save_to_graph(self, graph: Graph) -> None:
        """Copy the compiled state back into the graph's node objects (to continue interpreted).
        Nodes removed from the graph since are skipped."""
        snap = graph.snapshot()
        snap.frame = self.frame
        for n in self.ir.nodes:
            if not graph.has_node(n.id):
                continue
            node = graph.handle(n.id).node
            nl = self.layout.nodes[n.id]
            values = node.__dict__
            for name, (_, ty) in nl.scalars.items():
                values[name] = _PY[ty](self.scalar(n.id, name)[0])
            for name in nl.arrays:
                values[name][:] = self.array(n.id, name)
            for name, slots in nl.params.items():
                key = (n.id, name)
                snap.ramps.pop(key, None)
                if key not in snap.bases:
                    values[name] = float(self._f64(slots.value)[0])
                elif key in self._connected:
                    snap.bases[key] = float(self._f64(slots.value)[0])
                else:
                    continue  # connected in the graph since: connecting started its base at 0
                remaining = int(self._i64(slots.remaining)[0])
                if remaining > 0:
                    snap.ramps[key] = Ramp(
                        float(self._f64(slots.target)[0]), float(self._f64(slots.step)[0]), remaining
                    )
            for name in nl.external_queues:
                snap.events[(n.id, name)] = self.pending_events(n.id, name)
        graph.restore(snap)

    def copy_plan(self, other: GraphState) -> CopyPlan:
        """What :meth:`copy_nodes_from` copies from a state like ``other`` (one of its layout and
        connections), worked out ahead: a hot swap does it on the audio thread, where one Python
        loop over every field of every node cost ~2 ms for 64 voices; the plan is a few byte runs.
        JitGraph's compiler thread makes it for the state playing while it compiles."""
        runs: list[tuple[int, int, int]] = []  # (dst, src, bytes), merged at the end (_merged)
        run = runs.append

        zero: list[ParamSlots] = []
        queues: list[tuple[QueueSlots, QueueSlots]] = []
        fresh: list[int] = []
        partial: list[int] = []
        # Nodes laid out from a template (layout._Shifted) copy their scalars and arrays by the
        # runs between their two templates, worked out once per pair of templates (PairPlan,
        # kept on the template) and placed at the bases: a voice's fields are not each looked at
        # (nor made) for every voice, nor for every plan between the same two layouts.
        connected, other_connected = self._connected, other._connected
        for nid, nl in self.layout.nodes.items():
            src = other.layout.nodes.get(nid)
            if src is None:
                fresh.append(nid)
                continue
            t, st = nl.__dict__.get("_template"), src.__dict__.get("_template")
            if t is None or st is None:  # laid out on its own: its fields are absolute
                t, st, base, src_base = nl, src, 0, 0
                pair = _pair_plan(nl, src)
            else:
                base, src_base = nl.base, src.base
                pair = pair_plan(t, st)
            if pair.partial:
                partial.append(nid)
            for d, s, size in pair.runs:
                run((base + d, src_base + s, size))
            for name, p in t.params.items():
                if (nid, name) in connected and (nid, name) not in other_connected:
                    zero.append(nl.params[name])  # connected since: its base restarted at 0
                elif name in st.params:  # value, target, step, remaining
                    run((base + p.value, src_base + st.params[name].value, 32))
            if t.external_queues:
                for name, q in nl.external_queues.items():
                    if name in src.external_queues:
                        queues.append((q, src.external_queues[name]))
        merged = _merged(runs)
        return CopyPlan(
            other.layout,
            other._connected,
            merged,
            tuple(zero),
            tuple(queues),
            frozenset(fresh),
            frozenset(partial),
            _word_indices(merged),
        )

    def copy_nodes_from(self, other: GraphState, plan: CopyPlan | None = None) -> None:
        """Carry state over from a state of another topology: every node present in both keeps its
        attributes, outputs, parameters and pending events (what a hot swap needs). ``plan``: one
        :meth:`copy_plan` made earlier, used if it was made for a state like ``other``."""
        if plan is None or not plan.fits(other):
            plan = self.copy_plan(other)
        dst, src = self.bytes, other.bytes
        if plan.words is not None and not (len(dst) % 8 or len(src) % 8):
            to, of = plan.words
            # (one 8-byte word per index, ~22 KB for 64 voices, through numpy's small-block
            # allocator: np.take into a buffer of the plan's own measured slower, 18-20 us vs 12)
            dst.view(np.uint64)[to] = src.view(np.uint64)[of]
        else:
            for d, s, size in plan.runs:
                dst[d : d + size] = src[s : s + size]
        for slots in plan.zero:
            self._f64(slots.value)[0] = 0.0
            self._i64(slots.remaining)[0] = 0
        for q, sq in plan.queues:
            # the header and the waiting entries only (a swap happens on the audio thread)
            count = int(src[sq.base : sq.base + 4].view(np.int32)[0])
            size = 8 + min(count, q.capacity) * EVENT_BYTES
            dst[q.base : q.base + size] = src[sq.base : sq.base + size]
            self._overflow_count -= len(self._overflow.pop(q.base, ()))
            later = other._overflow.get(sq.base)
            if later:
                self._overflow[q.base] = list(later)
                self._overflow_count += len(later)
        self.frame = other.frame


def _merged(runs: Sequence[Sequence[int]]) -> tuple[tuple[int, int, int], ...]:
    """The runs in destination order, each merged with the next where both sides continue: made
    node by node (a node's scalars, then its arrays, then its parameters), runs that touch in
    memory are not next to each other in the list (64 voices: 386 runs merged only in list order,
    129 sorted, one per node; their output buffers lie between them). Runs whose destinations
    overlap (none are made so) keep their order, as the copy's result would depend on it."""
    ordered = sorted(runs, key=lambda r: r[0])
    out: list[list[int]] = []
    for d, s, size in ordered:
        if out:
            last = out[-1]
            end = last[0] + last[2]
            if d < end:  # overlapping destinations: the given order decides, keep it
                return tuple((r[0], r[1], r[2]) for r in runs)
            if end == d and last[1] + last[2] == s:
                last[2] += size
                continue
        out.append([d, s, size])
    return tuple((d, s, size) for d, s, size in out)


def _getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]] | None:
    """A node's values of ``names`` from its ``__dict__`` as a tuple, by one C call."""
    if not names:
        return None
    if len(names) == 1:
        name = names[0]
        return lambda values: (values[name],)
    return operator.itemgetter(*names)


@dataclass(frozen=True)
class LoadPlan:
    """Where :meth:`GraphState.load_from_graph` puts every node's values: per node, getters of its
    attributes by slot type and its value inputs; for all nodes, the indices of their slots (of
    8-byte words; of 4-byte words for bools) in the order the getters give the values. One numpy
    view and one assignment per attribute was 2.4 ms of the audio thread for 64 voices (17 ms for
    256) at the swap from the interpreter to the first compiled code."""

    nodes: tuple[tuple[int, Any, Any, Any, tuple[tuple[str, bool], ...]], ...]
    """(node id, f64 getter, i64 getter, bool getter, its value inputs: (name, connected))"""
    f64: np.ndarray
    i64: np.ndarray
    bools: np.ndarray
    param_values: np.ndarray
    param_remaining: np.ndarray
    arrays: tuple[tuple[int, str], ...]
    queues: np.ndarray
    """The first word of every event queue (its head and count: cleared)."""

    @classmethod
    def of(cls, state: GraphState) -> LoadPlan:
        f64: list[int] = []
        i64: list[int] = []
        bools: list[int] = []
        values: list[int] = []
        remaining: list[int] = []
        nodes = []
        arrays = []
        connected = state._connected
        # Nodes laid out from one template (voices: Layout.of) share its names, getters and
        # relative addresses: worked out once per template, not from each node's own fields
        # (which a node's layout would otherwise make on first read, dict by dict).
        per_template: dict[int, _TemplateLoad] = {}
        for n in state.ir.nodes:
            nl = state.layout.nodes[n.id]
            template = nl.__dict__.get("_template")
            if template is None:  # a layout read back from JSON: the node's own fields
                got, base = _TemplateLoad.of(nl), 0
            else:
                got = per_template.get(id(template))
                if got is None:
                    got = per_template[id(template)] = _TemplateLoad.of(template)
                base = nl.base
            for out, rel in ((f64, got.f64), (i64, got.i64), (bools, got.bools)):
                if rel:
                    out += [base + a for a in rel]
            if got.params:
                values += [base + a for a in got.value_slots]
                remaining += [base + a for a in got.remaining_slots]
                params = tuple((name, (n.id, name) in connected) for name in got.params)
            else:
                params = ()
            if got.arrays:
                arrays += [(n.id, name) for name in got.arrays]
            nodes.append((n.id, got.f64_getter, got.i64_getter, got.bool_getter, params))

        def index(addrs: list[int], size: int) -> np.ndarray:
            out = np.array(addrs, dtype=np.intp)
            if (out % size).any():
                raise AssertionError(f"a slot not aligned to {size} bytes in {addrs}")
            return out // size

        return cls(
            tuple(nodes),
            index(f64, 8),
            index(i64, 8),
            index(bools, 4),
            index(values, 8),
            index(remaining, 8),
            tuple(arrays),
            index(list(state._queues), 8),
        )


@dataclass(frozen=True)
class _TemplateLoad:
    """What a :class:`LoadPlan` needs of one node layout (a template's: addresses relative to its
    base 0; or a node's own, absolute): its scalars by slot type (names in layout order, their
    addresses, a getter of their values), its value inputs' value and ramp-count slots, its
    arrays."""

    f64: tuple[int, ...]
    i64: tuple[int, ...]
    bools: tuple[int, ...]
    f64_getter: Any
    i64_getter: Any
    bool_getter: Any
    params: tuple[str, ...]
    value_slots: tuple[int, ...]
    remaining_slots: tuple[int, ...]
    arrays: tuple[str, ...]

    @classmethod
    def of(cls, nl: Any) -> _TemplateLoad:
        names: dict[str, list[str]] = {"f64": [], "i64": [], "bool": []}
        addrs: dict[str, list[int]] = {"f64": [], "i64": [], "bool": []}
        for name, (addr, ty) in nl.scalars.items():
            names[ty].append(name)
            addrs[ty].append(addr)
        params = nl.params
        return cls(
            tuple(addrs["f64"]),
            tuple(addrs["i64"]),
            tuple(addrs["bool"]),
            _getter(names["f64"]),
            _getter(names["i64"]),
            _getter(names["bool"]),
            tuple(params),
            tuple(p.value for p in params.values()),
            tuple(p.remaining for p in params.values()),
            tuple(nl.arrays),
        )


WORD_INDEX_RUNS = 8
"""Runs from which a copy plan copies by one gather of 8-byte words rather than run by run: a
voice graph's nodes each leave a run of their own (their output buffers lie between them and are
not copied), 129 for 64 voices; one numpy slice copy each was ~0.85 us, 110-200 us of the audio
thread at a swap, the gather of their 2,821 words ~15 us."""


def _word_indices(runs: tuple[tuple[int, int, int], ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(destination, source) indices of every 8-byte word the runs copy, for runs that are all
    whole, aligned words and many enough (WORD_INDEX_RUNS); else None (copied run by run)."""
    if len(runs) < WORD_INDEX_RUNS or any(d % 8 or s % 8 or size % 8 for d, s, size in runs):
        return None
    counts = np.fromiter((size // 8 for _, _, size in runs), dtype=np.intp, count=len(runs))
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.arange(int(counts.sum()), dtype=np.intp) - starts
    to = np.repeat(np.fromiter((d // 8 for d, _, _ in runs), dtype=np.intp, count=len(runs)), counts) + within
    of = np.repeat(np.fromiter((s // 8 for _, s, _ in runs), dtype=np.intp, count=len(runs)), counts) + within
    return to, of


@dataclass(frozen=True)
class PairPlan:
    """What :meth:`GraphState.copy_plan` copies between two node layouts (two templates, or two
    nodes' own layouts), worked out once per pair."""

    runs: tuple[tuple[int, int, int], ...]
    """(destination, source, bytes) of the scalars and arrays, relative to the bases for two
    templates."""
    partial: bool
    """The destination has a field the copy leaves out (a new attribute, parameter or event
    input, an array of another length): the swap loads that node's values from the node objects
    first (see ``JitGraph._plan_copy``)."""


def pair_plan(t: Any, st: Any) -> PairPlan:
    """The :class:`PairPlan` from template ``st`` to template ``t``, cached on ``t`` (weakly
    keyed by ``st``: a template never keeps the one before it, nor so every layout ever played,
    alive). Every swap between two layouts of one voice graph used to redo this per node (a
    Python loop over each field of each of 129 nodes, each field first made from its template:
    about 4 ms of the compiler thread's GIL for 64 voices); now once per pair of templates."""
    cache = t.__dict__.get("_pairs")
    if cache is None:
        cache = t.__dict__["_pairs"] = {}
    got = cache.get(id(st))
    if got is not None and got[0]() is st:
        return got[1]
    plan = _pair_plan(t, st)
    for key in [k for k, (ref, _) in cache.items() if ref() is None]:
        del cache[key]  # templates of layouts gone since
    cache[id(st)] = (weakref.ref(st), plan)
    return plan


def _pair_plan(t: Any, st: Any) -> PairPlan:
    partial = (
        any(name not in st.scalars for name in t.scalars)
        or any(name not in st.arrays or st.arrays[name][2] != a[2] for name, a in t.arrays.items())
        or any(name not in st.params for name in t.params)
        or any(name not in st.external_queues for name in t.external_queues)
    )
    return PairPlan(_merged(_template_runs(t, st)), partial)  # (its fields' runs merged once per pair)


def _template_runs(t: Any, st: Any) -> list[tuple[int, int, int]]:
    """The scalar and array runs :meth:`GraphState.copy_plan` copies from a node laid out as
    ``st`` into one laid out as ``t``: relative to their bases for two templates, absolute for
    two nodes' own layouts."""
    out = []
    for name, (addr, _) in t.scalars.items():
        if name in st.scalars:
            out.append((addr, st.scalars[name][0], 8))
    for name, (addr, _, length) in t.arrays.items():
        if name in st.arrays and st.arrays[name][2] == length:
            out.append((addr, st.arrays[name][0], 8 * length))
    return out


@dataclass(frozen=True)
class CopyPlan:
    """What a hot swap copies from one state into another (see :meth:`GraphState.copy_plan`). It
    keeps the source's layout and connections (to tell whether it fits a state), never the source
    state itself: each new state holding the one before would keep every state ever played alive."""

    layout: Layout
    connected: set[tuple[int, str]]
    runs: tuple[tuple[int, int, int], ...]  # (destination, source, bytes)
    zero: tuple[ParamSlots, ...]  # value inputs connected since: their base restarts at 0
    queues: tuple[tuple[QueueSlots, QueueSlots], ...]  # (destination, source) event queues
    fresh: frozenset[int]
    """Nodes of the destination the source does not have."""
    partial: frozenset[int] = frozenset()
    """Nodes of both with a field the copy leaves out (see :attr:`PairPlan.partial`): the swap
    takes those nodes' values from the node objects first, then copies the rest over them."""
    words: tuple[np.ndarray, np.ndarray] | None = field(default=None, compare=False, repr=False)
    """The runs as (destination, source) indices of 8-byte words, when there are many
    (:data:`WORD_INDEX_RUNS`): one gather copies them all."""

    def fits(self, other: GraphState) -> bool:
        return other.layout is self.layout and other._connected is self.connected
