"""JitGraph: a graph you can re-patch while it plays.

Edits change the wrapped :class:`Graph` at once and wake a compiler thread; processing never waits
for it. Until new code is ready the old code keeps running (the interpreter, before the first
compile); the new code takes over at a block boundary with every surviving node's state carried
over. Parameter changes and events go to whatever runs now and never trigger a compile. When node
code cannot be compiled, or compiled code faults, the graph plays on in the interpreter and says
why once.

Threads: any thread may edit, set values and queue events; one thread processes blocks. The
processing thread only ever *tries* the edit lock (an edit holds it for microseconds) and otherwise
keeps the plan it has, so it never waits.
"""

from __future__ import annotations

import gc
import threading
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import validation as check
from ..endpoints import Endpoint
from ..graph import Connection, Graph, GraphError, NodeHandle
from ..node import Node
from .compiler import CompiledGraph, CraneliftJit, NodeFault
from .frontend import JitError
from .ir import GraphIR
from .state import GraphState


class JitFallbackWarning(UserWarning):
    """The graph runs interpreted because its code could not be compiled or faulted."""


@dataclass
class _Ready:
    version: int
    ir: GraphIR
    compiled: CompiledGraph
    state: GraphState
    compile_seconds: float
    requested_at: float


@dataclass
class SwapRecord:
    """One hot swap, for tests and benchmarks: when it was asked for and when it took over."""

    version: int
    requested_at: float
    swapped_at: float
    compile_seconds: float
    cached: bool


class JitGraph:
    """A Graph that runs compiled code whenever it has some, and the interpreter otherwise."""

    def __init__(
        self,
        graph: Graph | None = None,
        *,
        sample_rate: float = 44100.0,
        jit: CraneliftJit | None = None,
        background: bool = True,
        crossfade: float = 0.0,
        cache_size: int = 16,
        freeze_gc: bool = True,
    ) -> None:
        self.graph = graph if graph is not None else Graph(sample_rate)
        self.jit = jit or CraneliftJit()
        self.background = background
        self.crossfade = float(crossfade)
        self.freeze_gc = freeze_gc
        self._edit_lock = threading.Lock()
        self._commands: deque[tuple[str, Any]] = deque()
        self._wake = threading.Condition()
        self._pending: _Ready | None = None
        self._current: _Ready | None = None
        self._fading: tuple[CompiledGraph, GraphState, int, int] | None = None
        self._plan: Any = None
        self._plan_version = -1
        self._failed_version = -1
        self._requested_at = time.perf_counter()
        self._cache: OrderedDict[str, CompiledGraph] = OrderedDict()
        self._cache_size = cache_size
        self._closed = False
        self._thread: threading.Thread | None = None
        self.swaps: list[SwapRecord] = []
        self.last_error: Exception | None = None
        if background:
            self._thread = threading.Thread(target=self._compile_loop, name="oscen-jit", daemon=True)
            self._thread.start()
            self._request()

    # ------------------------------------------------------------------ building (any thread)
    @property
    def sample_rate(self) -> float:
        return self.graph.sample_rate

    @property
    def frame(self) -> int:
        cur = self._current
        return cur.state.frame if cur is not None else self.graph.frame

    def _edit(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._edit_lock:
            result = fn(*args)
        self._request()
        return result

    def add_node(self, node: Node, label: str | None = None) -> NodeHandle:
        handle = self._edit(self.graph.add_node, node, label)
        # Handles must point at this wrapper's graph, which they do: JitGraph edits the same Graph.
        return handle

    def remove_node(self, node: NodeHandle) -> None:
        self._edit(self.graph.remove_node, node)

    def connect(self, source: Endpoint, target: Endpoint) -> Connection:
        return self._edit(self.graph.connect, source, target)

    def disconnect(self, source: Endpoint, target: Endpoint) -> None:
        self._edit(self.graph.disconnect, source, target)

    def set_output(self, *endpoints: Endpoint) -> None:
        self._edit(self.graph.set_output, *endpoints)

    # ------------------------------------------------------------------ parameters and events
    def set_value(self, endpoint: Endpoint, value: float, ramp: float = 0.0) -> None:
        """Set (or ramp) a value input from the next block on; never compiles."""
        ep = self.graph._endpoint(endpoint, "set_value", "endpoint")
        check.value_input(ep, "set_value")
        value = check.finite(value, "set_value", "value")
        check.ramp_steps(ramp, self.sample_rate, "set_value")
        self._commands.append(("set", (ep, value, float(ramp))))

    def get_value(self, endpoint: Endpoint) -> float:
        """As Graph.get_value, from whatever runs now; refuses endpoints of removed nodes."""
        ep = self.graph._endpoint(endpoint, "get_value", "endpoint")
        check.has_value(ep, "get_value")
        cur = self._current
        if cur is not None and endpoint.node_id in cur.state.layout.nodes:
            return cur.state.get_value(endpoint)
        return self.graph.get_value(endpoint)

    def queue_event(self, endpoint: Endpoint, frame_offset: int, payload: Any = 1.0) -> None:
        """An event ``frame_offset`` samples into the next block processed (or later)."""
        ep = self.graph._endpoint(endpoint, "queue_event", "endpoint")
        check.event_input(ep, "queue_event")
        at = check.event_frame(frame_offset, self.frame, "queue_event")
        fields = check.payload(payload, "queue_event")
        offset = int(frame_offset)
        # The per-sample limit, checked here (not on the processing thread): the events already
        # waiting at that frame and those queued since the last block.
        cur = self._current
        if cur is not None and ep.node_id in cur.state.layout.nodes:
            waiting = cur.state.events_waiting(ep.node_id, ep.name, at)
        else:
            waiting = self.graph.events_waiting(ep, at)
        if waiting + len(self._commands) >= check.MAX_EVENTS_PER_SAMPLE:  # else the scan can't matter
            waiting += sum(
                1
                for kind, args in tuple(self._commands)
                if kind == "event" and args[1] == offset and args[0] == ep
            )
            check.events_at_frame(waiting, ep, at, "queue_event")
        self._commands.append(("event", (ep, offset, fields)))

    # ------------------------------------------------------------------ state of the engine
    @property
    def mode(self) -> str:
        """ "compiled" or "interpreted": what ran the last block."""
        return "compiled" if self._current is not None else "interpreted"

    @property
    def compiled_version(self) -> int | None:
        cur = self._current
        return cur.version if cur is not None else None

    def wait_compiled(self, timeout: float = 10.0) -> bool:
        """Block until code for the current topology is ready (or compiling failed); for offline
        rendering and tests. Returns True if compiled code is ready or running."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            version = self.graph.version
            if self._failed_version == version:
                return False
            ready = self._pending or self._current
            if ready is not None and ready.version == version:
                return True
            if not self.background:
                self._compile_version()
                continue
            time.sleep(0.001)
        return False

    def close(self) -> None:
        self._closed = True
        with self._wake:
            self._wake.notify_all()

    def __enter__(self) -> JitGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ processing (one thread)
    def process_block(self, n: int) -> np.ndarray:
        """Process ``n`` samples with compiled code if there is some, else interpreted."""
        n = check.block_size(n, "process_block")
        self._at_block_boundary()
        cur = self._current
        if cur is not None:
            try:
                out = cur.compiled.process_block(cur.state, int(n))
                # The interpreter's clock follows, so events queued for nodes the running code
                # does not have yet are stamped with the right frame.
                self.graph.frame = cur.state.frame
                return self._crossfaded(out, int(n))
            except NodeFault as fault:
                self._fall_back(fault, cur)
        return self._interpret(int(n))

    def process_into(self, out: np.ndarray) -> None:
        """Fill a preallocated (channels, n) array (the real-time callback's path)."""
        block = self.process_block(out.shape[-1])
        out[...] = block

    def _interpret(self, n: int) -> np.ndarray:
        if self._plan is None or self._plan_version != self.graph.version:
            if self._edit_lock.acquire(blocking=False):
                try:
                    self._plan = self.graph._ready()
                    self._plan_version = self.graph.version
                finally:
                    self._edit_lock.release()
            if self._plan is None:  # the very first block, while an edit holds the lock
                with self._edit_lock:
                    self._plan = self.graph._ready()
                    self._plan_version = self.graph.version
        return self.graph._run(self._plan, n)

    def _at_block_boundary(self) -> None:
        if not self.background and self._pending is None and self._current_version() != self.graph.version:
            if self._failed_version != self.graph.version:
                self._compile_version()
        ready = self._pending
        if ready is not None:
            self._pending = None
            self._swap_in(ready)
        cur = self._current
        if cur is not None and self._failed_version == self.graph.version != cur.version:
            # The newest topology cannot be compiled (the compiler thread said why): play it
            # interpreted rather than keep playing the old code, which would ignore the edit.
            self._fall_back(self.last_error, cur, warn=False)
        while self._commands:
            kind, args = self._commands.popleft()
            cur = self._current
            if kind == "set":
                ep, value, ramp = args
                if cur is not None and ep.node_id in cur.state.layout.nodes:
                    cur.state.set_value(ep, value, ramp)
                elif ep.node_id in self.graph._handles:
                    self.graph.set_value(ep, value, ramp)
            else:
                ep, offset, fields = args
                if cur is not None and ep.node_id in cur.state.layout.nodes:
                    cur.state.queue_event(ep, offset, fields)
                elif ep.node_id in self.graph._handles:
                    self.graph.queue_event(ep, offset, fields)

    def _current_version(self) -> int:
        return self._current.version if self._current is not None else -1

    def _swap_in(self, ready: _Ready) -> None:
        old = self._current
        # Nodes removed since the IR was taken can't be run by this code: wait for the next one.
        if any(n.id not in self.graph._handles for n in ready.ir.nodes):
            return
        if old is not None:
            ready.state.copy_nodes_from(old.state)
            # Nodes the old code did not run: take their latest values from the node objects.
            fresh = {n.id for n in ready.ir.nodes} - set(old.state.layout.nodes)
            if fresh:
                ready.state.load_from_graph(self.graph, fresh)
            if self.crossfade > 0:
                fade = max(1, round(self.crossfade * self.sample_rate))
                self._fading = (old.compiled, old.state, fade, fade)
        else:
            ready.state.load_from_graph(self.graph)
        self._current = ready
        self.swaps.append(
            SwapRecord(
                ready.version,
                ready.requested_at,
                time.perf_counter(),
                ready.compile_seconds,
                ready.compile_seconds == 0.0,
            )
        )

    def _crossfaded(self, out: np.ndarray, n: int) -> np.ndarray:
        if self._fading is None:
            return out
        compiled, state, left, total = self._fading
        try:
            old = compiled.process_block(state, n)
        except NodeFault:
            self._fading = None
            return out
        if old.shape != out.shape:
            self._fading = None
            return out
        pos = total - left + np.arange(n)
        w = np.clip((pos + 1) / total, 0.0, 1.0)
        left -= n
        self._fading = None if left <= 0 else (compiled, state, left, total)
        return old * (1.0 - w) + out * w

    def _fall_back(self, error: Exception | None, cur: _Ready | None, warn: bool = True) -> None:
        """Continue in the interpreter with the compiled state carried back into the node objects."""
        self.last_error = error
        if warn:
            self._failed_version = cur.version if cur is not None else self.graph.version
            warnings.warn(f"oscen: playing interpreted: {error}", JitFallbackWarning, stacklevel=3)
        if cur is not None:
            cur.state.save_to_graph(self.graph)
        self._current = None
        self._fading = None

    # ------------------------------------------------------------------ compiling (background)
    def _request(self) -> None:
        self._requested_at = time.perf_counter()
        with self._wake:
            self._wake.notify_all()

    def _compile_loop(self) -> None:
        done_version = -1
        while not self._closed:
            with self._wake:
                while not self._closed and self.graph.version == done_version:
                    self._wake.wait(0.5)
            if self._closed:
                return
            # Coalesce a burst of edits: let it settle for a moment, then compile the newest.
            time.sleep(0.002)
            done_version = self._compile_version()

    def _compile_version(self) -> int:
        requested = self._requested_at
        with self._edit_lock:
            version = self.graph.version
            if not self.graph._handles:
                return version
            try:
                ir = self.graph.to_ir()
                state = GraphState.from_graph(self.graph, self.jit.max_block, ir)
            except GraphError:
                return version
        try:
            t0 = time.perf_counter()
            key = ir.key()
            compiled = self._cache.get(key)
            if compiled is None:
                compiled = self.jit.compile(ir)
                self._cache[key] = compiled
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
                seconds = time.perf_counter() - t0
            else:
                self._cache.move_to_end(key)
                seconds = 0.0
        except JitError as err:
            if self._failed_version != version:
                self.last_error = err
                # warn first: wait_compiled() returns as soon as the version is marked failed
                warnings.warn(
                    f"oscen: playing interpreted, this graph cannot be compiled: {err}",
                    JitFallbackWarning,
                    stacklevel=2,
                )
                self._failed_version = version
            return version
        # Instantiate the kernel on its state here, not on the processing thread at the swap.
        compiled._bind(state)
        if self.freeze_gc:
            # The graph, the IR and the compiled code are long-lived: moving everything alive now
            # out of the collector's reach keeps its full collections, which hold the GIL and so
            # stall the audio thread, short (they scanned tens of thousands of objects).
            gc.freeze()
        self._pending = _Ready(version, ir, compiled, state, seconds, requested)
        return version
