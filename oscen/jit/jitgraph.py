"""JitGraph: a graph you can re-patch while it plays.

Edits change the wrapped :class:`Graph` at once and wake a compiler thread; processing never waits
for it. Until new code is ready the old code keeps running (the interpreter, before the first
compile); the new code takes over at a block boundary with every surviving node's state carried
over. Parameter changes and events go to whatever runs now and never trigger a compile. When node
code cannot be compiled, or compiled code faults, the graph plays on in the interpreter and says
why once.

Threads: any thread may edit, set values and queue events; one thread processes blocks (a second
one at the same time is refused with a GraphError). The processing thread only ever *tries* the edit
lock (an edit holds it for microseconds) and otherwise keeps the plan it has, so it never waits.

Which code plays after an edit depends on the caller:

* ``process_block`` (offline rendering, tests) plays the topology in force: compiled code made for
  exactly the graph's current version, or the interpreter until that code is ready. Renders are
  deterministic: an edit takes effect at the next block, every time.
* ``process_into`` (the real-time path, what :class:`~oscen.io.realtime.Player` calls) keeps
  playing the newest code it has, even if made for an older topology, and swaps in any finished
  compile newer than what plays, so that a stream of edits still gets fresh code regularly.

Either way code older than what is heard is never swapped in (an edit is never reverted).

Faults: compiled code that faults hands the rest of the block to the interpreter (with the events
due in it), except for a :class:`NodeTimeout`, which is raised: the interpreter has no time limit,
and replaying an endless loop there would hang the caller. Faults raised name the node and line.

Background compiles of built-in nodes run in the process's compile worker (:mod:`.worker`), so
that the frontend and Cranelift hold no GIL here; each step that stays on the compiler thread
(to_ir, the worker's reply load, the new state, the bind, the copy plan) starts just after a live
block ends (:meth:`_Beat.quiet`), and the states swaps replace are freed there too, when it is
idle, one per block end. See docs/jit.md, "What a background compile costs the audio thread".

Lifetime: :meth:`close` (or ``with JitGraph(...)``) stops the compiler thread; edits after it raise.
A JitGraph dropped without closing stops its thread too (the thread holds it only weakly).
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import warnings
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ..graph import validation as check
from ..graph.endpoints import Endpoint
from ..graph.graph import Connection, Graph, GraphError, NodeHandle
from ..graph.ir import GraphIR
from ..graph.node import Node
from .compiler import CompiledGraph, CraneliftJit, NodeFault, NodeTimeout, _fault_type
from .frontend import JitError
from .frontend.typing import settled
from .layout import Layout
from .state import CopyPlan, GraphState
from .worker import WorkerUnavailable
from .worker import enabled as worker_enabled
from .worker import shared as shared_worker

_T = TypeVar("_T")


class JitFallbackWarning(UserWarning):
    """The graph runs interpreted because its code could not be compiled or faulted."""


class JitWorkerWarning(UserWarning):
    """The compile worker failed; compiles run in the playing process instead (still compiled)."""


class JitTierWarning(UserWarning):
    """The optimized tier could not be compiled: the quick tier plays on (still compiled)."""


@dataclass
class _Ready:
    version: int
    ir: GraphIR
    compiled: CompiledGraph
    state: GraphState
    compile_seconds: float
    requested_at: float
    plan: CopyPlan | None = None
    """What the swap copies from the state that played when the compile finished (if it still
    plays at the swap; else the swap works it out)."""
    loaded: bool = False
    """``state`` holds the graph's values of what ``plan`` does not copy (nodes the plan only
    partly covers; fresh nodes are loaded at the swap). Until then it holds zeros: a swap with
    another plan loads every node from the graph first."""


SWAP_HISTORY = 256
"""How many SwapRecords a JitGraph keeps (``swap_count`` counts them all)."""


@dataclass
class SwapRecord:
    """One hot swap, for tests and benchmarks: when it was asked for and when it took over."""

    version: int
    requested_at: float
    swapped_at: float
    compile_seconds: float
    cached: bool
    tier: str = "optimized"
    """The tier of the code swapped in ("quick" first, then "optimized", with tiers)."""


class _Worker:
    """What a JitGraph shares with its compiler thread. It refers to neither, so that the thread
    can hold its JitGraph weakly and a JitGraph dropped without ``close()`` is freed (and its
    finalizer stops the thread)."""

    def __init__(self) -> None:
        self.wake = threading.Condition()
        self.closed = False
        self.froze = False
        """The JitGraph froze the collector's generations (``gc.freeze``)."""
        self.beat = _Beat()
        """The processing thread's live block ends (see :class:`_Beat`)."""
        self.retired: deque[Any] = deque()
        """What a swap replaced (or a newer compile made obsolete), for the compiler thread to let
        go of: freeing a state frees its wasmtime store, instance and memory (about 1 ms for 64
        voices, with the GIL held for much of it), not work for the audio thread nor for a moment
        inside one of its blocks. The compiler thread frees them when it is idle, one per live
        block end (:func:`_free_retired`)."""

    def stop(self) -> None:
        with self.wake:
            self.closed = True
            self.wake.notify_all()
        self.retired.clear()

    def retire(self, obj: Any) -> None:
        """Hand ``obj`` (a replaced :class:`_Ready`, a state) to the compiler thread to free; a
        deque append, safe from the processing thread (it takes no lock)."""
        if not self.closed:
            self.retired.append(obj)

    def freeze(self) -> None:
        """``gc.freeze()``, counting this JitGraph among those that want the collector frozen."""
        global _freezers
        with _freezers_lock:
            if not self.froze:
                self.froze = True
                _freezers += 1
        gc.freeze()

    def release(self) -> None:
        """Stop the thread; the last closed (or dropped) JitGraph that froze the collector lets it
        see the frozen objects again: a dropped graph (its node handles refer back to it, a
        cycle) could never be freed otherwise. Not before, so that closing one JitGraph does not
        bring full collections back to another one playing."""
        global _freezers
        self.stop()
        with _freezers_lock:
            if not self.froze:
                return
            self.froze = False
            _freezers -= 1
            if _freezers == 0:
                gc.unfreeze()


_freezers = 0
"""Live JitGraphs that froze the collector."""
_freezers_lock = threading.RLock()  # reentrant: a finalizer may run while it is held


COMPILE_SWITCH_INTERVAL = 0.00005
"""Seconds of Python's thread switch interval while a compiler thread works (if it is longer).

A compile's Python steps in this process (to_ir, the bind, the copy plan; the whole frontend
when it compiles in-process) hold the GIL for milliseconds; a processing thread that wants it
back (after every call into the kernel and every sleep) waits up to one switch interval each
time, 5 ms by default: two waits per block made gaps of 10 ms and more. While any JitGraph
compiles in the background, the interval is at most this; then it is put back (unless someone
changed it meanwhile). With the compile worker (:mod:`.worker`) those steps are ~6 ms per
compile for 64 voices, so switching this often costs little (0.5 ms before: stalls of 2-4 ms
with a real-time player, 0.2 ms: 1-2 ms in bench_swap). Cranelift runs without the GIL.

50 us rather than 200 us: a real-time player waits on the GIL, not for a CPU, when it stalls
(its thread was seen in a futex wait while the compiler thread held the GIL, runnable but not
running), and how long the holder keeps it once asked is this interval plus however long the OS
leaves it off the CPU. bench_swap, 64 voices, player at SCHED_FIFO, alternated runs: rows with a
stall over 3 ms 1 of 22 at 50 us against 8 of 22 at 200 us; p99 at block 64 0.5-0.6 ms against
0.7-0.9; compile and prepare times the same."""

_switching_lock = threading.Lock()
_switching = 0
"""Compiler threads at work (they share one lowered switch interval)."""
_switch_saved: tuple[float, float] | None = None
"""(the interval before, the one set) while lowered."""


class _FastSwitching:
    """While a background compile runs: a short thread switch interval (COMPILE_SWITCH_INTERVAL)."""

    def __enter__(self) -> None:
        global _switching, _switch_saved
        with _switching_lock:
            _switching += 1
            if _switching == 1:
                before = sys.getswitchinterval()
                if before > COMPILE_SWITCH_INTERVAL:
                    sys.setswitchinterval(COMPILE_SWITCH_INTERVAL)
                    _switch_saved = (before, sys.getswitchinterval())

    def __exit__(self, *exc: object) -> None:
        global _switching, _switch_saved
        with _switching_lock:
            _switching -= 1
            if _switching == 0 and _switch_saved is not None:
                before, lowered = _switch_saved
                _switch_saved = None
                if sys.getswitchinterval() == lowered:  # else someone set their own since: theirs
                    sys.setswitchinterval(before)


class _Beat:
    """When the processing thread last finished a live block (``process_into``), so that the
    compiler thread can run each of its GIL-holding steps (:meth:`quiet`) just after one: the
    processing thread then sleeps until its next block, and the step is usually done before it
    wants the GIL back. (A background thread holding the GIL when the OS preempts it stalls the
    audio thread until it runs again: measured 5-30 ms on a loaded machine; a step that starts
    at an arbitrary moment lands inside a block as often as not.)"""

    IDLE = 0.05
    """Seconds without a live block after which nothing counts as playing (no waiting then)."""
    LIMIT = 0.02
    """Seconds the compiler thread waits for a block end at most (a block of 512 samples is 12 ms)."""
    SHORT = 0.003
    """Block periods (seconds) below which steps run at once: a step of a few milliseconds spans
    the next block anyway, and waiting for a block end only made the compile later (block 64 at
    44.1 kHz, 1.5 ms, was slower with the wait in bench_swap)."""
    WINDOW = 0.25
    """The fraction of a period after a block end in which a step still starts at once (the step
    before it was short): it has most of the sleep before the next block left."""

    def __init__(self) -> None:
        self.last = 0.0
        self.period = 0.0
        """The live blocks' period in seconds (smoothed over block ends; 0 until two were seen)."""
        self._cond = threading.Condition(threading.Lock())

    def tick(self) -> None:
        """A live block ended (the processing thread: never waits for the lock)."""
        now = time.perf_counter()
        interval = now - self.last
        if interval <= self.IDLE:
            # smoothed: a block that ran late and the catch-up block after it average out
            self.period = interval if self.period == 0.0 else self.period + 0.25 * (interval - self.period)
        self.last = now
        if self._cond.acquire(blocking=False):
            try:
                self._cond.notify_all()
            finally:
                self._cond.release()

    def playing(self) -> bool:
        """Live blocks are being processed (one ended less than IDLE seconds ago)."""
        return time.perf_counter() - self.last <= self.IDLE

    def after_block(self, fresh: bool = False) -> None:
        """Wait until a live block has just ended (at most LIMIT); at once when none plays, when
        the blocks are short (SHORT) or, unless ``fresh``, when one ended just now (WINDOW)."""
        start = time.perf_counter()
        since = start - self.last
        if (
            since > self.IDLE
            or 0.0 < self.period < self.SHORT
            or (not fresh and since < self.WINDOW * self.period)
        ):
            return  # (a period not known yet, after a single block, is not short)
        with self._cond:
            self._cond.wait_for(lambda: self.last >= start, timeout=self.LIMIT)

    def quiet(self, step: Callable[[], _T], fresh: bool = False) -> _T:
        """``step()``, started just after a live block ends (see :meth:`after_block`): for the
        compiler thread's steps that hold the GIL for a millisecond or more (to_ir, loading the
        worker's reply, making and binding a state, a collection, the copy plan, freeing a
        replaced state), so that they run while the processing thread sleeps rather than in the
        middle of one of its blocks. ``fresh``: after a block end that comes after this call (one
        step per block end), not the one just before it."""
        self.after_block(fresh)
        return step()


def _tier(obj: Any) -> str:
    """A compiler's or compiled code's tier ("optimized" for those from before tiers)."""
    return getattr(obj, "tier", "optimized")


OPTIMIZE_DELAY = 0.05
"""Seconds the compiler thread waits, once the quick tier of a topology is ready, before it
compiles the optimized tier: an edit meanwhile (live patching comes in bursts) makes a newer
topology, whose quick tier is then compiled first and the optimized one of this never."""

_EXIT = (SystemExit, KeyboardInterrupt)
"""Exceptions the compiler passes on: everything else is reported and the thread carries on."""

_COALESCE = 0.002
"""Seconds the compiler thread lets a burst of edits settle before compiling the newest."""


def _compile_thread(ref: weakref.ref[JitGraph], worker: _Worker) -> None:
    """The compiler thread: compile the newest topology whenever it changes, until closed or the
    JitGraph is gone. Holds the JitGraph only while compiling, and survives its own errors."""
    done = -1
    while True:
        with worker.wake:
            jit = ref()
            if jit is None or worker.closed:
                return
            idle = jit.graph.version == done
            swap_coming = bool(jit._pending)
            jit = None
            if idle and not worker.retired:
                # a compile not swapped in yet will leave a state to free: look again soon
                worker.wake.wait(0.02 if swap_coming else 0.5)
                continue
        if idle:
            _free_retired(worker)
            continue
        while len(worker.retired) > MAX_RETIRED:  # edits with no idle moment between: bounded
            _free_retired(worker)
        time.sleep(_COALESCE)
        jit = ref()
        if jit is None or worker.closed:
            return
        version = jit.graph.version
        try:
            with _FastSwitching():
                done = jit._compile_version()
        except SystemExit:
            return
        except BaseException as exc:  # noqa: BLE001 - report it, and keep compiling later edits
            jit._compile_failed(version, exc)
            done = version
        jit = None


MAX_RETIRED = 4
"""Replaced states and code kept for the compiler thread's idle time at most: beyond it (edits
back to back, the compiler never idle) it frees the oldest before its next compile, still one
per live block end. Each holds a state's memory or a module (~75 KB per edit kept otherwise)."""


def _free_retired(worker: _Worker) -> None:
    """Free one replaced state (the oldest), just after a live block ends and with the short
    switch interval: freeing a 64-voice state's wasmtime store takes about 1 ms, which inside a
    block (or freed on the processing thread itself, at the swap) was one of the long gaps of a
    live edit. One per block end, so that a burst of swaps does not free several in one gap."""

    def drop() -> None:
        try:
            worker.retired.popleft()  # the last reference: freed here, inside the quiet step
        except IndexError:  # stop() cleared it meanwhile
            pass

    with _FastSwitching():
        worker.beat.quiet(drop, fresh=True)


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
        compile_worker: bool | None = None,
        tiered: bool | None = None,
    ) -> None:
        self.graph = graph if graph is not None else Graph(sample_rate)
        self.jit = jit or CraneliftJit()
        self.tiered = (type(self.jit) is CraneliftJit if tiered is None else bool(tiered)) and background
        """A new topology plays the quick tier first (``CraneliftJit.compile_first``), and the
        optimized tier swaps in when the compiler thread has it (docs/jit.md, "Tiers"). None:
        with a plain CraneliftJit (a subclass's ``compile`` is called as it is), in the background."""
        self.tier_error: Exception | None = None
        """Why the newest optimized tier did not compile (the quick tier played on), if it failed."""
        self.background = background
        self.crossfade = float(crossfade)
        self.freeze_gc = freeze_gc
        self.compile_worker = (
            worker_enabled() if compile_worker is None else bool(compile_worker)
        ) and background
        """Background compiles of built-in nodes run in the process's compile worker
        (:mod:`.worker`: no GIL held here while they run); None: unless ``OSCEN_COMPILE_WORKER=0``."""
        self.worker_compiles = 0
        """Compiles the worker did for this JitGraph (the others ran in-process)."""
        self.worker_error: Exception | None = None
        """Why the newest compile meant for the worker ran in-process instead, when something went
        wrong (the worker died, timed out, erred); None when it was only busy or starting."""
        self._edit_lock = threading.Lock()
        self._processing = threading.Lock()
        self._commands: deque[tuple[str, Any]] = deque()
        self._worker = _Worker()
        self._beat = self._worker.beat
        self._wake = self._worker.wake
        self._pending: deque[_Ready] = deque(maxlen=1)
        """The newest finished compile not yet swapped in (a newer one replaces it)."""
        self._current: _Ready | None = None
        self._fading: tuple[CompiledGraph, GraphState, int, int] | None = None
        self._plan: Any = None
        self._plan_version = -1
        self._failed_version = -1
        self._requested_at = time.perf_counter()
        self._cache: OrderedDict[str, CompiledGraph] = OrderedDict()
        self._quick: CompiledGraph | None = None  # the quick tier being optimized (compiler thread)
        self._done_version = -1  # the newest version whose compiles (every tier) are over
        self._cache_size = cache_size
        self._closed = False
        self._thread: threading.Thread | None = None
        self.swaps: deque[SwapRecord] = deque(maxlen=SWAP_HISTORY)
        """The most recent swaps (a live session swaps thousands of times: the history is bounded)."""
        self.swap_count = 0
        """Swaps since this JitGraph was made."""
        self.last_error: Exception | None = None
        weakref.finalize(self, self._worker.release)
        if freeze_gc:
            # The one full collection, here on the thread that makes the graph (before it plays,
            # as a rule), then freeze: the compiler thread's collection after each compile then
            # scans only what is new since (~5,000 objects, 1 ms, for 64 voices) rather than
            # everything (100,000 objects, 30-50 ms in which the audio thread cannot run). Cheap
            # when another JitGraph froze the collector already.
            gc.collect()
            self._worker.freeze()
        if self.compile_worker:
            try:
                shared_worker().start()  # it imports oscen meanwhile; compiles go in-process till then
            except Exception as exc:  # noqa: BLE001 - no worker (no subprocesses here?): compile in-process
                self._worker_failed(exc)
        if background:
            self._thread = threading.Thread(
                target=_compile_thread, args=(weakref.ref(self), self._worker), name="oscen-jit", daemon=True
            )
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

    @property
    def closed(self) -> bool:
        return self._closed

    def _edit(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._edit_lock:
            if self._closed:
                raise GraphError(
                    f"{fn.__name__}: this JitGraph is closed (edit its .graph, or make a new JitGraph)"
                )
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
        ep = self.graph.check_endpoint(endpoint, "set_value")
        check.value_input(ep, "set_value")
        value = check.finite(value, "set_value", "value")
        check.ramp_steps(ramp, self.sample_rate, "set_value")
        self._commands.append(("set", (ep, value, float(ramp))))

    def get_value(self, endpoint: Endpoint) -> float:
        """As Graph.get_value, from whatever runs now; refuses endpoints of removed nodes."""
        ep = self.graph.check_endpoint(endpoint, "get_value")
        check.has_value(ep, "get_value")
        cur = self._current
        if cur is not None and ep.node_id in cur.state.layout.nodes:
            return cur.state.get_value(ep)
        return self.graph.get_value(ep)

    def queue_event(self, endpoint: Endpoint, frame_offset: int, payload: Any = 1.0) -> None:
        """An event ``frame_offset`` samples into the next block processed (or later)."""
        ep = self.graph.check_endpoint(endpoint, "queue_event")
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
                for kind, args in self._commands_snapshot()
                if kind == "event" and args[1] == offset and args[0] == ep
            )
            check.events_at_frame(waiting, ep, at, "queue_event")
        self._commands.append(("event", (ep, offset, fields)))

    def _commands_snapshot(self) -> tuple[tuple[str, Any], ...]:
        """A copy of the waiting commands, taken on an editing thread while the processing thread
        may pop them. Copying a deque is one C loop, but a garbage collection inside it can run
        Python code and let the other thread in ("deque mutated during iteration", seen under a
        stress run): copy again then, rather than make the processing thread take a lock."""
        while True:
            try:
                return tuple(self._commands)
            except RuntimeError:
                continue

    # ------------------------------------------------------------------ state of the engine
    @property
    def mode(self) -> str:
        """ "compiled" or "interpreted": what ran the last block."""
        return "compiled" if self._current is not None else "interpreted"

    @property
    def compiled_version(self) -> int | None:
        cur = self._current
        return cur.version if cur is not None else None

    def _peek_pending(self) -> _Ready | None:
        pending = self._pending
        if not pending:  # the usual case, without the cost of an exception
            return None
        try:
            return pending[0]
        except IndexError:  # taken meanwhile
            return None

    def _take_pending(self) -> _Ready | None:
        pending = self._pending
        if not pending:
            return None
        try:
            return pending.popleft()
        except IndexError:
            return None

    def wait_compiled(self, timeout: float = 10.0, first: bool = False) -> bool:
        """Block until code for the current topology is ready (or compiling failed); for offline
        rendering and tests. Returns True if compiled code is ready or running. With tiers, the
        final code (the optimized tier, or the quick one if that failed); ``first``: whichever
        code comes first (the quick tier)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            version = self.graph.version
            if self._failed_version == version:
                return False
            ready = self._peek_pending() or self._current
            if (
                ready is not None
                and ready.version == version
                and (first or _tier(ready.compiled) == _tier(self.jit) or self._done_version >= version)
            ):
                return True
            if not self.background:
                self._compile_version()
                continue
            if self._closed or self._thread is None or not self._thread.is_alive():
                return False
            time.sleep(0.001)
        return False

    def close(self) -> None:
        """Stop the compiler thread (a compile under way finishes first, in the background). Edits
        raise from now on; processing goes on, interpreted when the graph has changed since the
        newest code. Lets the collector see the objects JitGraph froze (see ``freeze_gc``)."""
        with self._edit_lock:
            self._closed = True
        self._worker.release()

    def __enter__(self) -> JitGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ processing (one thread)
    def process_block(self, n: int) -> np.ndarray:
        """Process ``n`` samples of the topology in force: compiled code made for it if there is
        some, else interpreted (see the module docstring)."""
        return self._process(n, live=False)

    def process_into(self, out: np.ndarray) -> None:
        """Fill a preallocated (channels, n) array: the real-time callback's path, which plays the
        newest compiled code even while a compile for the newest edit is under way."""
        out[...] = self._process(out.shape[-1], live=True)

    def _process(self, n: int, live: bool) -> np.ndarray:
        n = check.block_size(n, "process_block")
        if not self._processing.acquire(blocking=False):
            raise GraphError(
                "process_block called concurrently from two threads on one JitGraph: "
                "process it from one thread only"
            )
        try:
            out = self._process_locked(int(n), live)
        finally:
            self._processing.release()
        if live:
            self._beat.tick()
        return out

    def _process_locked(self, n: int, live: bool) -> np.ndarray:
        self._at_block_boundary(live)
        cur = self._current
        if cur is None:
            return self._interpret(n, live=live)
        out = np.empty((len(cur.compiled.ir.outputs), n))
        try:
            cur.compiled.process_into(cur.state, out)
        except NodeTimeout as fault:
            # No replay: the interpreter has no time limit. The events due in the abandoned block
            # wait again; the compiled code stays (it is protected) for the caller to go on.
            self.last_error = fault
            self.graph.frame = cur.state.frame
            raise
        except NodeFault as fault:
            return self._recover(fault, cur, out)
        # The interpreter's clock follows, so events queued for nodes the running code does not
        # have yet are stamped with the right frame.
        self.graph.frame = cur.state.frame
        return self._crossfaded(out[0] if len(out) == 1 else out, n)

    def _recover(self, fault: NodeFault, cur: _Ready, out: np.ndarray) -> np.ndarray:
        """Compiled code faulted after ``fault.done`` samples: the interpreter plays the rest of
        the block, from the state the code left (the frame at the faulting block's start, its
        events waiting again)."""
        done = fault.done
        self._fall_back(cur, fault)
        try:
            rest = self._interpret(out.shape[-1] - done, named=False)
        except Exception as exc:  # the interpreter fails too: say where, as the compiled code did
            raise fault from exc
        rest = np.atleast_2d(rest)
        if rest.shape[0] != out.shape[0]:  # the code was older than the graph: other outputs now
            out = np.zeros((rest.shape[0], out.shape[1]))
        out[:, done:] = rest
        return out[0] if len(out) == 1 else out

    def _interpret(self, n: int, named: bool = True, live: bool = True) -> np.ndarray:
        if self._plan is None or self._plan_version != self.graph.version:
            # Live, never wait: if an edit (or the compiler taking its snapshot) holds the lock, the
            # block plays the plan it has and the next one picks the edit up. Offline, the block must
            # play the topology in force, so it waits for the lock (a snapshot holds it briefly).
            if self._edit_lock.acquire(blocking=not live):
                try:
                    self._plan = self.graph.plan()
                    self._plan_version = self.graph.version
                finally:
                    self._edit_lock.release()
            if self._plan is None:  # the very first block, while an edit holds the lock
                with self._edit_lock:
                    self._plan = self.graph.plan()
                    self._plan_version = self.graph.version
        if not named:
            return self.graph.run_plan(self._plan, n)
        try:
            return self.graph.run_plan(self._plan, n)
        except Exception as exc:
            fault = self._named(exc)
            if fault is None:
                raise
            self.last_error = fault
            raise fault from exc

    def _named(self, exc: Exception) -> NodeFault | None:
        """The interpreter's exception as a fault naming the node and line it came from (of the
        same type, so ``except ZeroDivisionError`` still catches it), or None if no node raised."""
        nodes = {id(h.node): h.label for h in self.graph.nodes}
        label = where = None
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            owner = frame.f_locals.get("self")
            if owner is not None and id(owner) in nodes:
                label, where = nodes[id(owner)], f"{frame.f_code.co_filename}:{tb.tb_lineno}"
            tb = tb.tb_next
        if label is None:
            return None
        try:
            fault = _fault_type(type(exc))(f"{type(exc).__name__} in {label} at {where}: {exc}")
        except Exception:  # an exception type that cannot be made from a message
            return None
        fault.node, fault.location = label, str(where)
        return fault

    def _heard_version(self) -> int:
        """The topology version that plays: the running code's, or the interpreter's plan's."""
        cur = self._current
        return cur.version if cur is not None else self._plan_version

    def _at_block_boundary(self, live: bool) -> None:
        version = self.graph.version
        if (
            not self.background
            and self._peek_pending() is None
            and self._current_version() != version
            and self._failed_version != version
        ):
            self._compile_version()
        ready = self._take_pending()
        if ready is not None:
            if ready.version >= self._heard_version() and (live or ready.version == version):
                self._swap_in(ready)
            else:
                # Older than what is heard (it would revert edits), or not the topology in force
                # for an offline block: dropped (the compiler thread compiles the newest anyway),
                # and freed there, not here.
                self._retire(ready)
            ready = None
        cur = self._current
        if cur is not None and cur.version != version and (not live or self._closed):
            # Offline, or no compile will come (closed): play the topology in force, interpreted
            # until code made for exactly it is ready.
            self._fall_back(cur)
        cur = self._current
        if cur is not None and self._failed_version == version != cur.version:
            # The newest topology cannot be compiled (the compiler thread said why): play it
            # interpreted rather than keep playing the old code, which would ignore the edit.
            self._fall_back(cur)
        while self._commands:
            kind, args = self._commands.popleft()
            cur = self._current
            try:
                if kind == "set":
                    ep, value, ramp = args
                    if cur is not None and ep.node_id in cur.state.layout.nodes:
                        cur.state.set_value(ep, value, ramp)
                    elif self.graph.has_node(ep.node_id):
                        self.graph.set_value(ep, value, ramp)
                else:
                    ep, offset, fields = args
                    if cur is not None and ep.node_id in cur.state.layout.nodes:
                        cur.state.queue_event(ep, offset, fields)
                    elif self.graph.has_node(ep.node_id):
                        self.graph.queue_event(ep, offset, fields)
            except (GraphError, KeyError):
                # another thread removed the node between the test and the call: the value or
                # event goes with it (as it would had the removal come first)
                if self.graph.has_node(args[0].node_id):
                    raise

    def _current_version(self) -> int:
        return self._current.version if self._current is not None else -1

    def _swap_in(self, ready: _Ready) -> None:
        old = self._current
        # Nodes removed since the IR was taken still run in this code until the next swap, as they
        # do in the code playing now: it is still the newest code there is.
        if old is not None:
            plan = ready.plan
            if plan is None or not plan.fits(old.state) or not ready.loaded:
                # Not the state the compile thread planned for (rare): every node's values from
                # the graph first, then the copy over them (GraphState.from_graph's order).
                ready.state.load_from_graph(self.graph)
                plan = ready.state.copy_plan(old.state)
            ready.state.copy_nodes_from(old.state, plan)
            # Nodes the old code did not run: take their latest values from the node objects.
            fresh = set(plan.fresh)
            if fresh:
                ready.state.load_from_graph(self.graph, fresh)
            if self.crossfade > 0 and old.compiled.key != ready.compiled.key:
                # (not between two tiers of one topology: the same samples, nothing to fade)
                fade = max(1, round(self.crossfade * self.sample_rate))
                self._fading = (old.compiled, old.state, fade, fade)
        else:
            ready.state.load_from_graph(self.graph)
        self._current = ready
        if old is not None:
            self._retire(old)  # freed on the compiler thread, between blocks (see _Worker)
        self.swap_count += 1
        self.swaps.append(
            SwapRecord(
                ready.version,
                ready.requested_at,
                time.perf_counter(),
                ready.compile_seconds,
                ready.compile_seconds == 0.0,
                _tier(ready.compiled),
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
        if left <= 0:
            self._retire(state)  # the faded-out state: freed on the compiler thread
        return old * (1.0 - w) + out * w

    def _fall_back(self, cur: _Ready, error: Exception | None = None) -> None:
        """Continue in the interpreter with the compiled state carried back into the node objects;
        with an ``error`` (a fault), say so once and don't run this version compiled again."""
        if error is not None:
            self.last_error = error
            self._failed_version = cur.version
            warnings.warn(f"oscen: playing interpreted: {error}", JitFallbackWarning, stacklevel=4)
        cur.state.save_to_graph(self.graph)
        self._current = None
        self._fading = None
        self._retire(cur)

    def _retire(self, obj: Any) -> None:
        """Let go of ``obj`` (code or a state that no longer plays): on the compiler thread when
        there is one (see ``_Worker.retired``), else here."""
        if self.background:
            self._worker.retire(obj)

    # ------------------------------------------------------------------ compiling (background)
    def _request(self) -> None:
        self._requested_at = time.perf_counter()
        with self._wake:
            self._wake.notify_all()

    def _compile_failed(self, version: int, exc: BaseException) -> None:
        """Report a compile that failed (once per version): one warning, ``last_error``, and the
        graph plays interpreted until an edit makes a new version to compile."""
        if isinstance(exc, JitError):
            err = exc
        else:  # a bug of ours (or RecursionError, MemoryError...): the graph still plays
            err = JitError(f"the compiler failed on this graph ({type(exc).__name__}: {exc})")
            err.__cause__ = exc
        if self._failed_version != version:
            self.last_error = err
            # warn first: wait_compiled() returns as soon as the version is marked failed
            warnings.warn(
                f"oscen: playing interpreted, this graph cannot be compiled: {err}",
                JitFallbackWarning,
                stacklevel=3,
            )
            self._failed_version = version

    def _compile_ir(self, ir: GraphIR, step: str = "") -> CompiledGraph:
        """``jit.compile(ir)``, or with ``step`` "first" ``jit.compile_first(ir)`` and "optimized"
        the optimized tier of the quick code ``_quick`` holds: in the compile worker for a
        background compile when it can, else here (the worker's failures are reported in
        ``worker_error``, never raised)."""
        if self.compile_worker and threading.current_thread() is self._thread:
            try:
                compiled, _ = shared_worker().compile(ir, self.jit, step or None, quiet=self._beat.quiet)
            except WorkerUnavailable as exc:
                if exc.failed:
                    self._worker_failed(exc)
            except Exception as exc:  # noqa: BLE001 - a bug of ours: compile here, say why
                self._worker_failed(exc)
            else:
                self.worker_compiles += 1
                return compiled
        if step == "first":
            return self.jit.compile_first(ir)
        if step == "optimized" and self._quick is not None and self._quick.key == ir.key():
            return self.jit.optimize(self._quick)
        return self.jit.compile(ir)

    def _worker_failed(self, exc: Exception) -> None:
        """Say once per JitGraph that the worker failed (and keep the newest reason)."""
        first = self.worker_error is None
        # without its traceback: its frames hold this JitGraph, and a cycle through a frozen
        # JitGraph (gc.freeze) would keep it, and its compiler thread, alive for good
        exc.__traceback__ = exc.__context__ = exc.__cause__ = None
        self.worker_error = exc
        if first:
            warnings.warn(
                f"oscen: compiling in-process, the compile worker failed: {exc}",
                JitWorkerWarning,
                stacklevel=3,
            )

    def _compile_version(self) -> int:
        """Compile the graph as it is now; returns the version compiled (or that failed). With
        tiers, the quick tier is made ready first, then the optimized one (unless an edit came
        meanwhile: the newer topology is compiled first, and its optimized tier after it)."""
        version = self.graph.version
        try:
            version = self._compile_tiers()
        finally:
            self._done_version = max(self._done_version, version)
        return version

    def _compile_tiers(self) -> int:
        requested = self._requested_at
        version = self.graph.version
        background = threading.current_thread() is self._thread
        try:
            # to_ir holds the GIL for milliseconds: between two live blocks
            got = self._quiet(self._snapshot, background)
            if got is None:
                return self.graph.version
            version, ir, graph_uid = got
            t0 = time.perf_counter()
            key = ir.key()
            compiled = self._cache.get(key)
            if compiled is None:
                step = "first" if self.tiered and _tier(self.jit) == "optimized" else ""
                compiled = self._compile_ir(ir, step)
                self._remember(key, compiled)
                seconds = time.perf_counter() - t0
            else:
                self._cache.move_to_end(key)
                seconds = 0.0
            if not self._make_ready(version, ir, graph_uid, compiled, seconds, requested, background):
                return version
        except _EXIT:
            raise
        except BaseException as exc:  # noqa: BLE001 - reported; later edits compile again
            self._compile_failed(version, exc)
            return version
        if _tier(compiled) == "quick" and _tier(self.jit) == "optimized":
            self._optimize(version, ir, graph_uid, compiled, requested, background)
        return version

    def _snapshot(self) -> tuple[int, GraphIR, int] | None:
        """(version, settled IR, graph uid) of the graph now, under the edit lock; None if there
        is nothing to compile (no nodes, or a graph to_ir refuses)."""
        with self._edit_lock:
            version = self.graph.version
            if not self.graph.nodes:
                return None
            try:
                ir = settled(self.graph.to_ir())
            except GraphError:
                return None
            graph_uid = self.graph.uid
        ir.key()  # (cached on the IR: ~1 ms for 64 voices, in this step rather than the next)
        return version, ir, graph_uid

    def _quiet(self, step: Callable[[], _T], background: bool = True) -> _T:
        """``step()``: on the compiler thread between two live blocks (``_Beat.quiet``), else
        at once (a compile on the caller's thread has no block to keep out of)."""
        if background:
            return self._beat.quiet(step)
        return step()

    def _remember(self, key: str, compiled: CompiledGraph) -> None:
        self._cache[key] = compiled
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._retire(self._cache.popitem(last=False))  # its module freed when idle

    def _optimize(
        self,
        version: int,
        ir: GraphIR,
        graph_uid: int,
        quick: CompiledGraph,
        requested: float,
        background: bool,
    ) -> None:
        """The optimized tier of ``quick``'s topology, made ready to swap in after it, unless the
        graph changed meanwhile (the newer topology first) or the JitGraph closed. A failure is
        reported (``tier_error``, one JitTierWarning per JitGraph) and the quick tier plays on."""
        if background:  # a burst of edits: only its last topology gets the optimized tier
            # The wait is the compiler thread's idle time when edits come every ~50 ms (it never
            # gets back to its loop's idle wait then): it frees replaced states meanwhile, one per
            # live block end, rather than leave them all to the next compile (MAX_RETIRED).
            deadline = time.perf_counter() + OPTIMIZE_DELAY
            changed = lambda: self.graph.version != version or self._worker.closed  # noqa: E731
            while not changed():
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                if self._worker.retired:
                    _free_retired(self._worker)
                    continue
                with self._wake:  # (in slices: a swap retires without waking it)
                    self._wake.wait_for(changed, timeout=min(left, 0.02))
        if self.graph.version != version or self._worker.closed:
            return
        t0 = time.perf_counter()
        self._quick = quick
        try:
            compiled = self._compile_ir(ir, "optimized")
            if compiled.layout.size != quick.layout.size or compiled.key != quick.key:
                raise JitError("internal error: the optimized tier laid the state out differently")
        except _EXIT:
            raise
        except BaseException as exc:  # noqa: BLE001 - the quick tier plays on; say why once
            self._tier_failed(exc)
            return
        finally:
            self._quick = None
        key = ir.key()
        if self._cache.get(key) is quick:
            self._remember(key, compiled)
        try:
            self._make_ready(
                version, ir, graph_uid, compiled, time.perf_counter() - t0, requested, background
            )
        except _EXIT:
            raise
        except BaseException as exc:  # noqa: BLE001 - as above
            self._tier_failed(exc)

    def _collect(self) -> None:
        gc.collect()
        self._worker.freeze()

    def _plan_copy(self, ready: _Ready, playing: GraphState) -> None:
        """``ready``'s copy plan from the state that plays, and the values of what that plan
        leaves out of nodes the playing state has (an array of another length, a new
        attribute...), loaded from the node objects: the swap then copies the rest over them."""
        state = ready.state
        try:
            ready.plan = plan = state.copy_plan(playing)
            if plan.partial:
                with self._edit_lock:
                    state.load_from_graph(self.graph, set(plan.partial))
            ready.loaded = True
        except Exception:  # noqa: BLE001 - only a head start: the swap works it out (and says why)
            ready.plan = None

    def _tier_failed(self, exc: BaseException) -> None:
        first = self.tier_error is None
        err = exc if isinstance(exc, Exception) else JitError(f"{type(exc).__name__}: {exc}")
        err.__traceback__ = None  # its frames hold this JitGraph (see _worker_failed)
        self.tier_error = err
        if first:
            warnings.warn(
                f"oscen: the optimized code did not compile, the quick tier plays on: {err}",
                JitTierWarning,
                stacklevel=3,
            )

    def _make_ready(
        self,
        version: int,
        ir: GraphIR,
        graph_uid: int,
        compiled: CompiledGraph,
        seconds: float,
        requested: float,
        background: bool,
    ) -> bool:
        """A state for ``compiled``, bound to it, with its copy plan from the state that plays:
        then pending, for the processing thread to swap in. False if there is no state to make."""

        # The state's values are not loaded here: a hot swap copies them from the state that
        # plays (the plan below) and loads the rest from the node objects (see _Ready.loaded).
        # Each step below holds the GIL for about a millisecond (64 voices): each starts just
        # after a live block ends (_quiet).
        def make_state() -> GraphState | None:
            try:
                made = GraphState(ir, Layout.of(ir, self.jit.max_block))
            except GraphError:
                return None
            made.graph_uid = graph_uid
            made.plan_load()  # here, not at the swap: a first swap loads every node by it
            return made

        state = self._quiet(make_state, background)
        if state is None:
            return False
        # Instantiate the kernel on its state here, not on the processing thread at the swap.
        self._quiet(lambda: compiled._bind(state), background)
        if self.freeze_gc:
            # The graph, the IR and the compiled code are long-lived: moving everything alive now
            # out of the collector's reach keeps its full collections, which hold the GIL and so
            # stall the audio thread, short (they scanned tens of thousands of objects). Garbage
            # cycles the compile left are collected first (this scans only what is not frozen
            # yet), or freezing would keep them forever. A collection cannot be interrupted.
            self._quiet(self._collect, background)
        ready = _Ready(version, ir, compiled, state, seconds, requested)
        cur = self._current  # what plays now will most likely be what the swap replaces
        if cur is not None:
            self._quiet(lambda: self._plan_copy(ready, cur.state), background)
        replaced = self._take_pending()  # not swapped in yet: a newer compile replaces it
        self._pending.append(ready)
        if replaced is not None:
            self._retire(replaced)
        return True
