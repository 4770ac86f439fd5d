"""Instruments shared by the stress suite (tests/test_stress.py) and the soak (benchmarks/bench_soak.py).

What they measure, and how:

* **Lost or duplicated blocks.** A :class:`SampleClock` node counts the samples it has processed; its
  output is channel 0 of the rig. It is state like any other, carried over every hot swap, so its
  value must equal the graph's frame counter after every sample. :class:`Probe` sits between the
  player and the :class:`JitGraph` and checks, for every block, that ``frame`` advanced by exactly the
  block size and that the clock's first and last samples are ``frame_before + 1`` and
  ``frame_after``. A lost block, a block played twice, or a swap that carried stale state shows up
  there.
* **Lost events.** :class:`EventTally` nodes count the events delivered to them (and sum their
  payloads, so a lost event hidden by a duplicated one still shows), in both engines; their counts
  are output channels. :class:`EventSender` threads queue events and count what they queued.
* **Edits never reverted.** :class:`Probe` records the topology version each block was played with
  (the compiled code's version, or the interpreter's plan version) and flags any block played with
  an older topology than one already heard.
* **Same sound as the interpreter.** :func:`compare_with_interpreter`: once edits stop and the
  newest code runs, snapshot the running compiled state (a byte copy of its memory), play N blocks
  compiled, load the snapshot into the graph's node objects (``GraphState.save_to_graph``) and play
  the same N blocks, with the same parameter changes and events, on the interpreter.
* **Memory and threads.** :func:`rss_bytes` (``/proc/self/statm``) and :func:`os_threads`
  (``/proc/self/status``), besides ``threading.active_count()``.

The random edits (:class:`RandomEditor`) build bounded, non-chaotic graphs from the library nodes
of tests/test_jit_properties.py (its ``make_node``): connections go from an older node to a newer
one or into the rig's permanent ``mix`` (so every topology is a DAG and compiles), only into stream
inputs (parameters change through ``set_value``, immediate or ramped, within ranges where every
node's gain stays at most about one), so a compiled run equals an interpreted one within the
differential tests' tolerance.
"""

from __future__ import annotations

import gc
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from random_graphs import STREAM_INPUTS, make_node, outputs_of

from oscen.gain import Gain
from oscen.graph import Endpoint, EventInput, Graph, GraphError, Node, NodeHandle, StreamOutput
from oscen.jit import GraphState, JitGraph

JOIN_TIMEOUT = 30.0
"""Every thread join is bounded: a thread still alive after this is a failure, not a hang."""


# ------------------------------------------------------------------------------------ instrument nodes
class SampleClock(Node):
    """Outputs how many samples it has processed: after sample ``f`` (0-based) it outputs ``f + 1``."""

    output = StreamOutput()

    def __init__(self) -> None:
        self.n = 0.0

    def process(self, sample_rate: float) -> None:
        self.n += 1.0
        self.output = self.n


class EventTally(Node):
    """Counts the events delivered to ``hit`` and sums their payloads (outputs ``count``, ``total``)."""

    hit = EventInput()
    count = StreamOutput()
    total = StreamOutput()

    def __init__(self) -> None:
        self.seen = 0.0
        self.summed = 0.0

    def on_hit(self, value: float) -> None:
        self.seen += 1.0
        self.summed += value

    def process(self, sample_rate: float) -> None:
        self.count = self.seen
        self.total = self.summed


# ------------------------------------------------------------------------------------ the rig
@dataclass
class Rig:
    """A graph with the instruments: output channels are [clock, mix, tally counts..., tally totals...].

    ``mix`` (a Gain) is the permanent sink the random nodes feed and ``root`` (a saw) a permanent
    source they may read; ``clock`` and the tallies are never removed or connected, so their counts
    stay meaningful through any edit."""

    graph: Graph
    clock: NodeHandle
    root: NodeHandle
    mix: NodeHandle
    tallies: list[NodeHandle]

    @classmethod
    def build(cls, sample_rate: float, tallies: int = 3) -> Rig:
        graph = Graph(sample_rate)
        clock = graph.add_node(SampleClock(), "clock")
        root = graph.add_node(make_node("saw", {"frequency": 220.0, "amplitude": 0.3}, 1), "root")
        mix = graph.add_node(Gain(0.5), "mix")
        graph.connect(root.output, mix.input)
        counted = [graph.add_node(EventTally(), f"tally{i}") for i in range(tallies)]
        rig = cls(graph, clock, root, mix, counted)
        graph.set_output(*rig.outputs())
        return rig

    def outputs(self) -> list[Endpoint]:
        return [
            self.clock.output,
            self.mix.output,
            *[t.count for t in self.tallies],
            *[t.total for t in self.tallies],
        ]

    def counts(self, block: np.ndarray) -> tuple[int, float]:
        """(events delivered, sum of their payloads) after the last sample of an output block."""
        k = len(self.tallies)
        return int(round(block[2 : 2 + k, -1].sum())), float(block[2 + k : 2 + 2 * k, -1].sum())


# ------------------------------------------------------------------------------------ the probe
@dataclass
class ProbeReport:
    blocks: int = 0
    frames: int = 0
    frame_errors: list[str] = field(default_factory=list)
    """Blocks after which the frame did not advance by exactly the block size."""
    clock_errors: list[str] = field(default_factory=list)
    """Blocks whose sample clock disagrees with the frame (state lost, replayed or stale)."""
    reversions: list[str] = field(default_factory=list)
    """Blocks played with an older topology than one already heard (an edit reverted)."""
    compiled_blocks: int = 0
    max_lag: int = 0
    """The most topology versions the code playing a block was behind the graph (compiles
    coalesce edits, so some lag is expected while edits continue; issue 9 item 17 is about it
    never catching up)."""
    lag_sum: int = 0

    @property
    def mean_lag(self) -> float:
        return self.lag_sum / max(self.blocks, 1)

    def problems(self) -> list[str]:
        return [*self.frame_errors[:5], *self.clock_errors[:5], *self.reversions[:5]]


class Probe:
    """Stands between a player and a JitGraph, checking every block (see the module docstring).

    It has what :class:`oscen.io.realtime.Player` needs (``sample_rate``, ``process_block``,
    ``process_into``). ``last`` keeps a copy of the last block (tally counts are read from it).
    """

    def __init__(self, jit: JitGraph, channels: int) -> None:
        self.jit = jit
        self.sample_rate = jit.sample_rate
        self.report = ProbeReport()
        self.heard_version = -1
        self.last = np.zeros((channels, 0))

    def process_block(self, n: int) -> np.ndarray:
        out = np.zeros((self.last.shape[0], n))
        self.process_into(out)
        return out

    def process_into(self, out: np.ndarray) -> None:
        jit, rep = self.jit, self.report
        n = out.shape[-1]
        before = jit.frame
        jit.process_into(out)
        after = jit.frame
        if n == 0:
            return
        rep.blocks += 1
        rep.frames += n
        if after - before != n:
            rep.frame_errors.append(f"block {rep.blocks}: frame {before} -> {after} for {n} samples")
        clock = out[0]
        if clock[0] != before + 1 or clock[-1] != after or clock[-1] - clock[0] != n - 1:
            rep.clock_errors.append(
                f"block {rep.blocks}: clock {clock[0]:.0f}..{clock[-1]:.0f}, frames {before + 1}..{after}"
            )
        version = heard_version(jit)
        if version is not None:
            if version < self.heard_version:
                rep.reversions.append(
                    f"block {rep.blocks}: played topology {version} after {self.heard_version} ({jit.mode})"
                )
            self.heard_version = max(self.heard_version, version)
            lag = max(0, jit.graph.version - version)
            rep.max_lag = max(rep.max_lag, lag)
            rep.lag_sum += lag
        if jit.mode == "compiled":
            rep.compiled_blocks += 1
        self.last = out.copy()  # one reference assignment: no lock on the audio thread


def heard_version(jit: JitGraph) -> int | None:
    """The topology version the last block was played with: the compiled code's, or the version
    of the interpreter's plan (``JitGraph._plan_version``, private; None if it is not there)."""
    if jit.mode == "compiled":
        return jit.compiled_version
    version = getattr(jit, "_plan_version", None)
    return version if isinstance(version, int) and version >= 0 else None


# ------------------------------------------------------------------------------------ random edits
SOURCES = ["sine", "saw", "noise", "const", "adsr"]
PROCESSORS = ["lowpass", "highpass", "tpt", "gain", "add", "mul", "mixer", "delay"]
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "sine": {"frequency": (50.0, 2000.0), "amplitude": (0.0, 0.5)},
    "saw": {"frequency": (50.0, 2000.0), "amplitude": (0.0, 0.5)},
    "noise": {"amplitude": (0.0, 0.5)},
    "const": {"value": (-0.5, 0.5)},
    "adsr": {"attack": (0.0, 0.02), "decay": (0.0, 0.05), "sustain": (0.0, 1.0), "release": (0.0, 0.05)},
    "lowpass": {"cutoff": (100.0, 3000.0), "q": (0.3, 0.7)},
    "highpass": {"cutoff": (100.0, 3000.0), "q": (0.3, 0.7)},
    "tpt": {"cutoff": (100.0, 3000.0), "q": (0.3, 0.7)},
    "gain": {"gain": (-1.0, 1.0)},
    "add": {"b": (-0.5, 0.5)},
    "mul": {"b": (-1.0, 1.0)},
    "mixer": {"level0": (-0.5, 0.5), "level1": (-0.5, 0.5)},
    "delay": {"delay_time": (0.0, 0.02), "feedback": (0.0, 0.3)},
}
"""Parameter ranges (a subset of test_jit_properties.PARAMS's) keeping every node's gain at most ~1."""
RAMPS = (0.0, 0.0, 0.002, 0.01, 0.05)


@dataclass
class Live:
    """A node the random edits made: its handle and kind."""

    handle: NodeHandle
    kind: str


class RandomEditor:
    """Random edits of a rig through a JitGraph, safe to call from several threads at once.

    ``step()`` makes one edit and returns its kind ("add", "remove", "connect", "disconnect", "set",
    or "refused" when the graph refused it because another thread got there first: a GraphError,
    with the graph unchanged). The editors share one list of live nodes."""

    def __init__(self, jit: JitGraph, rig: Rig, max_nodes: int = 12) -> None:
        self.jit = jit
        self.rig = rig
        self.max_nodes = max_nodes
        self.nodes: list[Live] = []
        self._lock = threading.Lock()
        self._seed = 0

    def _pick(self, rng: random.Random, older_than: int | None = None) -> Live | None:
        with self._lock:
            nodes = [n for n in self.nodes if older_than is None or n.handle.id < older_than]
        return rng.choice(nodes) if nodes else None

    def add(self, rng: random.Random) -> Live:
        kind = rng.choice(SOURCES if rng.random() < 0.5 else PROCESSORS)
        params = {name: rng.uniform(lo, hi) for name, (lo, hi) in RANGES[kind].items()}
        with self._lock:
            self._seed += 1
            seed = self._seed
        handle = self.jit.add_node(make_node(kind, params, seed))
        live = Live(handle, kind)
        with self._lock:
            self.nodes.append(live)
        return live

    def step(self, rng: random.Random) -> str:
        try:
            return self._step(rng)
        except GraphError:
            return "refused"

    def _step(self, rng: random.Random) -> str:
        with self._lock:
            count = len(self.nodes)
        r = rng.random()
        if count < 2 or (r < 0.2 and count < self.max_nodes):
            live = self.add(rng)
            self.jit.connect(getattr(live.handle, outputs_of(live.kind)[0]), self.rig.mix.input)
            inputs = STREAM_INPUTS.get(live.kind)
            if inputs:  # a processor: feed it from an older node (or the root)
                source = self._pick(rng, older_than=live.handle.id)
                out = (
                    self.rig.root.output
                    if source is None
                    else getattr(source.handle, outputs_of(source.kind)[0])
                )
                self.jit.connect(out, getattr(live.handle, rng.choice(inputs)))
            return "add"
        if r < 0.35 or count >= self.max_nodes + 2:
            with self._lock:
                if not self.nodes:
                    return "refused"
                live = self.nodes.pop(rng.randrange(len(self.nodes)))
            self.jit.remove_node(live.handle)
            return "remove"
        if r < 0.6:
            a, b = self._pick(rng), self._pick(rng)
            if a is None or b is None:
                return "refused"
            if a.handle.id > b.handle.id:
                a, b = b, a
            if rng.random() < 0.2:
                a = Live(self.rig.root, "saw")
            source = getattr(a.handle, rng.choice(outputs_of(a.kind)))
            inputs = STREAM_INPUTS.get(b.kind)
            target = self.rig.mix.input if a is b or not inputs else getattr(b.handle, rng.choice(inputs))
            self.jit.connect(source, target)
            return "connect"
        if r < 0.75:
            connections = [c for c in self.jit.graph.connections if c.target.node_id != self.rig.mix.id]
            if not connections:
                return "refused"
            c = rng.choice(connections)
            self.jit.disconnect(c.source, c.target)
            return "disconnect"
        live = self._pick(rng)
        if live is None:
            return "refused"
        name, (lo, hi) = rng.choice(sorted(RANGES[live.kind].items()))
        self.jit.set_value(getattr(live.handle, name), rng.uniform(lo, hi), rng.choice(RAMPS))
        return "set"


# ------------------------------------------------------------------------------------ threads
class Worker(threading.Thread):
    """A daemon thread running ``body(rng)`` until stopped; any exception is kept for the test.

    Between calls it waits up to ``pause`` seconds, and with probability ``rest_chance`` up to
    ``rest`` seconds instead (bursts of work with rests between)."""

    def __init__(
        self,
        name: str,
        body: Callable[[random.Random], Any],
        seed: int,
        pause: float,
        rest: float = 0.0,
        rest_chance: float = 0.0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.body = body
        self.rng = random.Random(seed)
        self.pause = pause
        self.rest = rest
        self.rest_chance = rest_chance
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.done: dict[str, int] = {}

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                kind = self.body(self.rng)
                if kind:
                    self.done[kind] = self.done.get(kind, 0) + 1
                longest = self.rest if self.rng.random() < self.rest_chance else self.pause
                self.stop_event.wait(self.rng.uniform(0.0, longest))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            self.error = exc

    def stop(self) -> None:
        self.stop_event.set()


class EventSender:
    """Queues events on the rig's tallies (payloads 1..9, offsets below ``max_offset``), counting
    what it queued; a burst is ``burst`` events at once."""

    def __init__(self, jit: JitGraph, rig: Rig, max_offset: int, burst: int = 8) -> None:
        self.jit = jit
        self.rig = rig
        self.max_offset = max_offset
        self.burst = burst
        self.queued = 0
        self.refused = 0
        self.payload_sum = 0.0
        self._lock = threading.Lock()

    def send(self, rng: random.Random) -> str:
        for _ in range(rng.randint(1, self.burst)):
            tally = rng.choice(self.rig.tallies)
            payload = float(rng.randint(1, 9))
            try:
                self.jit.queue_event(tally.hit, rng.randrange(self.max_offset), payload)
            except GraphError as exc:
                # The stated limit (MAX_EVENTS_PER_SAMPLE at one input and sample), refused at
                # queue_event, on this thread: not queued, so not owed. Anything else is a failure.
                if "MAX_EVENTS_PER_SAMPLE" not in str(exc):
                    raise
                with self._lock:
                    self.refused += 1
                continue
            with self._lock:
                self.queued += 1
                self.payload_sum += payload
        return "events"


def join_all(threads: list[threading.Thread], timeout: float = JOIN_TIMEOUT) -> list[str]:
    """Join every thread within ``timeout`` overall; returns the names of those still alive."""
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threads if t.is_alive()]


# ------------------------------------------------------------------------------------ settling, comparing
def wait_newest_compiled(probe: Probe, timeout: float) -> bool:
    """While a player keeps playing, wait until it plays compiled code of the newest topology."""
    jit = probe.jit
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if jit.mode == "compiled" and jit.compiled_version == jit.graph.version and probe.report.blocks:
            return True
        time.sleep(0.005)
    return False


def snapshot(jit: JitGraph) -> GraphState:
    """A byte copy of the running compiled state (``JitGraph._current``, private)."""
    current = jit._current
    if current is None:
        raise AssertionError(f"the JitGraph is not running compiled code (last error {jit.last_error!r})")
    state = current.state
    copy = GraphState(state.ir, state.layout)
    copy.bytes[:] = state.bytes[: len(copy.bytes)]
    return copy


Action = tuple[int, str, Endpoint, float, float]
"""(block index, "set" or "event", endpoint, value or payload, ramp or frame offset)."""


def final_actions(rig: Rig, editor: RandomEditor | None, rng: random.Random, blocks: int) -> list[Action]:
    """Parameter changes and events to apply during the comparison, identically in both engines."""
    actions: list[Action] = []
    nodes = list(editor.nodes) if editor is not None else []
    for _ in range(blocks // 2):
        b = rng.randrange(blocks)
        if nodes and rng.random() < 0.5:
            live = rng.choice(nodes)
            name, (lo, hi) = rng.choice(sorted(RANGES[live.kind].items()))
            actions.append((b, "set", getattr(live.handle, name), rng.uniform(lo, hi), rng.choice(RAMPS)))
        else:
            tally = rng.choice(rig.tallies)
            actions.append((b, "event", tally.hit, float(rng.randint(1, 9)), rng.randrange(64)))
        adsrs = [n for n in nodes if n.kind == "adsr"]
        if adsrs and rng.random() < 0.3:
            actions.append(
                (b, "event", rng.choice(adsrs).handle.gate, rng.choice((0.0, 1.0)), rng.randrange(64))
            )
    return sorted(actions, key=lambda a: a[0])


def play_with_actions(engine: Any, sizes: list[int], actions: list[Action]) -> np.ndarray:
    """Blocks of ``sizes`` with each action applied before its block; concatenated along time."""
    outs = []
    for i, n in enumerate(sizes):
        for b, kind, ep, value, extra in actions:
            if b != i:
                continue
            if kind == "set":
                engine.set_value(ep, value, extra)
            else:
                engine.queue_event(ep, int(extra), value)
        outs.append(np.atleast_2d(engine.process_block(n)))
    return np.concatenate(outs, axis=-1)


def compare_with_interpreter(
    jit: JitGraph, sizes: list[int], actions: list[Action]
) -> tuple[np.ndarray, np.ndarray]:
    """(compiled output, interpreted output) of the same blocks and actions from one snapshot.

    The JitGraph must run compiled code of its newest topology, with nothing else processing it.
    It is left closed (its graph now holds the interpreter's run)."""
    saved = snapshot(jit)
    compiled = play_with_actions(jit, sizes, actions)
    assert jit.mode == "compiled", f"fell back to the interpreter during the comparison: {jit.last_error!r}"
    jit.close()
    saved.save_to_graph(jit.graph)
    interpreted = play_with_actions(jit.graph, sizes, actions)
    return compiled, interpreted


# ------------------------------------------------------------------------------------ memory, threads
def rss_bytes() -> int:
    """Resident set size of this process (``/proc/self/statm``, Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def os_threads() -> int:
    """Threads of this process as the OS counts them (Python's and native ones, wasmtime's too)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return threading.active_count()


def settled_rss() -> int:
    """RSS after a full collection (what is still referenced, plus the allocator's holdings)."""
    gc.collect()
    return rss_bytes()


def wait_os_threads(target: int, timeout: float) -> int:
    """Wait (bounded) until the OS counts at most ``target`` threads (a thread Python already sees
    as ended may take a moment to leave the OS's count); returns the count."""
    deadline = time.monotonic() + timeout
    while os_threads() > target and time.monotonic() < deadline:
        time.sleep(0.02)
    return os_threads()


def wait_threads(target: int, timeout: float) -> int:
    """Wait (bounded) until at most ``target`` Python threads are alive; returns the count."""
    deadline = time.monotonic() + timeout
    while threading.active_count() > target and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    return threading.active_count()


# ------------------------------------------------------------------------------------ the watchdog
def watchdog_churn(seconds: float, threads: int = 2, keep: int = 400) -> dict[str, Any]:
    """Bind fresh states to one kernel from ``threads`` threads for ``seconds`` (each binding is
    registered with the JIT's watchdog, as every swap's is), with the GIL switching as often as it
    can, so that the watchdog's scan meets registrations mid-way. Returns what died and what lives.

    Run it in a subprocess (see test_stress.py): a watchdog killed here would leave the process
    without one, and a later endless loop in compiled code would hang instead of timing out."""
    import sys

    from oscen.jit import CraneliftJit

    died: list[str] = []
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        died.append(f"{args.thread.name if args.thread else '?'}: {args.exc_value!r}")

    rig = Rig.build(8000.0)
    ir = rig.graph.to_ir()
    compiled = CraneliftJit().compile(ir)
    compiled.bind(GraphState.from_graph(rig.graph, ir=ir))  # starts the watchdog
    stop = threading.Event()
    binds = [0] * threads

    def churn(k: int) -> None:
        alive: list[GraphState] = []
        while not stop.is_set():
            state = GraphState.from_graph(rig.graph, ir=ir)
            compiled.bind(state)
            alive.append(state)
            if len(alive) > keep:
                alive.pop(0)
            binds[k] += 1

    threading.excepthook = hook
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    workers = [threading.Thread(target=churn, args=(k,), name=f"churn-{k}") for k in range(threads)]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not died:
            time.sleep(0.05)
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        stuck = join_all(workers)
        threading.excepthook = previous_hook
    return {
        "binds": sum(binds),
        "died": died,
        "stuck": stuck,
        "watchdog_alive": any(t.name == "oscen-watchdog" for t in threading.enumerate()),
    }
