"""Live re-patching under a real-time player: how long until an edit is heard, and what it costs
the audio thread.

A player thread processes blocks at the pace of a sound card (block k is due at ``t0 + k *
period``; it sleeps when ahead and runs at once when behind) while the main thread makes ~50
topology changes, each a new IR (the output Gain is replaced by a fresh node, so nothing comes from
the compile cache), waiting for each to be heard before the next. Two graphs: ``seed`` (sine ->
lowpass -> gain, 3 nodes) and ``voices64`` (64 sines, each through its own lowpass, summed: 129
nodes). Block sizes 64 and 256, each with Python's default GIL switch interval (5 ms) and with
``sys.setswitchinterval(0.001)``.

Each row is one setting; ``--compiler worker thread`` compares JitGraph's compile worker process
(the default) with compiling on the compiler thread alone (``compile_worker=False``; an oscen
without the worker has only that), ``--player normal realtime`` a player at the default CPU
priority with one at SCHED_FIFO (as an audio thread under JACK or a real-time PortAudio host has;
needs the right to), and ``--control`` adds a row per setting with the same player alone for as
long, no edits: what the machine's other load costs by itself (on a shared, loaded machine that
alone can exceed the targets at normal priority). The editing thread looks at whether its edit
plays every ``POLL`` seconds.

Columns
-------
* ``compiler``: where the compiles ran: "worker (k/n)" is k compiles in the worker for n edits
  (with tiers an edit has two: the quick tier it is first heard in, then the optimized one);
  "m optimized" counts the swaps to the optimized tier. Timing columns are the quick tier's.
* ``compile``: ``jit.compile`` (or the worker's round trip, deserialising included) alone
  (``SwapRecord.compile_seconds``).
* ``prepare``: from the edit to the code being ready, minus the compile: the compiler thread's
  2 ms coalescing pause, IR extraction, the bind and the copy plan (each started just after a
  block ends, see ``jitgraph._Beat``).
* ``boundary``: ready -> swapped in at the next block boundary (on average half a period).
* ``to new code``: edit -> the block that runs the new code starts (median / worst).
* ``swap block``: how long that first block takes to process (the swap copies the state over).
* ``max gap``: the longest time between two consecutive block completions, over the whole run;
  it includes the player's sleep, so it is at least one period (1.5 ms at 64, 5.8 ms at 256).
  ``gap w/o swap`` excludes the swap blocks.
* ``stall p99 / max``: per block, from when it was due (the player woke for it, or the block
  before ended late) to its end: the time the processing thread was held up plus its own work
  (0.1-0.5 ms), the 99th percentile and the worst, and how many blocks took more than 3 ms.
* ``VM steal``: on a virtual machine, the milliseconds its CPUs were taken by the host while the
  row ran (both CPUs summed, from ``/proc/stat`` in 10 ms ticks; the share of the row's time in
  brackets): a stall can be that alone, at any priority, and no design of ours can avoid it; the
  control rows show what it and the rest of the machine's load cost without any compile.
* ``late`` counts blocks finished after their due time plus two periods of device buffer (what
  would be heard as an xrun); the player's schedule then restarts, as a device's does.
* ``max GC``: the longest garbage collection during the changes (it stops every thread, the
  player's too). ``--gc frozen`` (the default) is JitGraph's default (``freeze_gc=True``: one full
  collection when the JitGraph is made, then ``gc.freeze()``, and after each compile a collection
  of what is new since, then freeze again); ``--gc unfrozen`` rows use ``freeze_gc=False``.

Usage: python benchmarks/bench_swap.py [--changes 50] [--pause 0.03] [--graphs seed voices64] [--blocks 64 256]
       [--switch 0.005 0.001] [--gc frozen unfrozen] [--compiler worker thread]
       [--player normal realtime] [--control] [--trace N]

``--trace N`` adds, per row, the N longest stalls: how long the player took to start the block,
its CPU / runqueue / blocked time, the stages the other threads ran during each and the stacks
a sampler saw the GIL holder in (``swap_trace.py``); tracing perturbs what it measures a little.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph, NodeHandle
from oscen.jit import JitGraph
from oscen.oscillators import Oscillator

try:
    import swap_trace  # run as a script: benchmarks/ is on the path
except ImportError:  # imported as benchmarks.bench_swap
    from benchmarks import swap_trace

SR = 44100.0
REALTIME_PRIORITY = 10
"""SCHED_FIFO priority of the player with ``--player realtime`` (audio servers use 10-90)."""
POLL = 0.002
"""Seconds between the editing thread's looks at whether its edit plays (the swap's time comes from
JitGraph's SwapRecord, not from this): every look takes the GIL, and an editor polling at 2 kHz
was one more thread the OS could preempt holding it."""
BUFFER_BLOCKS = 2
"""A device buffering two blocks: a block finished later than two periods after it was asked for
would be an xrun."""


# ------------------------------------------------------------------------------------ graphs
def seed_graph() -> tuple[Graph, NodeHandle]:
    """sine 440 -> RBJ lowpass -> gain: returns the graph and the node feeding the output gain."""
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5))
    filt = graph.add_node(IirLowpass(1000.0, 0.707))
    graph.connect(osc.output, filt.input)
    return graph, filt


def voices64_graph() -> tuple[Graph, NodeHandle]:
    """64 sines (110 Hz up in semitones), each through its own lowpass, summed into one Gain."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0))
    for k in range(64):
        osc = graph.add_node(Oscillator.sine(110.0 * 2.0 ** (k / 12.0), 1.0 / 64.0))
        filt = graph.add_node(IirLowpass(1000.0, 0.707))
        graph.connect(osc.output, filt.input)
        graph.connect(filt.output, mix.input)
    return graph, mix


GRAPHS: dict[str, Callable[[], tuple[Graph, NodeHandle]]] = {"seed": seed_graph, "voices64": voices64_graph}


# ------------------------------------------------------------------------------------ measuring
@dataclass
class Run:
    graph: str
    block: int
    switch: float
    gc_mode: str
    compile: list[float] = field(default_factory=list)
    prepare: list[float] = field(default_factory=list)
    boundary: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    swap_block: list[float] = field(default_factory=list)
    compiler: str = "worker"
    player: str = "normal"
    max_gap: float = 0.0
    max_gap_plain: float = 0.0
    stalls: list[float] = field(default_factory=list)
    late: int = 0
    blocks: int = 0
    max_gc: float = 0.0
    worker_compiles: int = 0
    optimized: int = 0
    """Swaps to the optimized tier (after the quick one an edit is first heard in, see JitGraph)."""
    control: bool = False
    trace: str = ""
    steal: float | None = None
    """Seconds the host took this VM's CPUs away while the player ran (all CPUs, /proc/stat)."""
    seconds: float = 0.0
    """How long the player ran."""

    @property
    def period(self) -> float:
        return self.block / SR


class Player(threading.Thread):
    """Processes blocks at a sound card's pace and logs (start, end, swaps so far) per block.

    Block k is due to be *played* ``BUFFER_BLOCKS`` periods after it is asked for: the player
    sleeps until a block is asked for, and a block that ends after it was due is an xrun, after
    which the schedule restarts from then, as a device that ran dry does."""

    def __init__(self, jit: JitGraph, block: int, realtime: bool = False, trace: bool = False) -> None:
        super().__init__(name="bench-player", daemon=True)
        self.realtime = realtime
        self.trace = trace
        self.sched: list[tuple[float, float]] = []
        """With ``trace``: the player's (CPU seconds, runnable-waiting seconds) after each block."""
        self.jit = jit
        self.block = block
        self.period = block / SR
        self.log: list[tuple[float, float, int]] = []
        self.due: list[float] = []
        """When each block was asked for (the player woke for it, or the previous block ended late)."""
        self.late = 0
        self.stop = threading.Event()

    def run(self) -> None:
        jit, n, period, log = self.jit, self.block, self.period, self.log
        out = np.empty((1, n))
        if self.realtime:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
            except (OSError, AttributeError):  # no right to (or no such call here): normal priority
                self.realtime = False
        t0 = time.perf_counter()
        k = 0
        asked = t0
        while not self.stop.is_set():
            start = time.perf_counter()
            self.due.append(min(start, max(asked, self.log[-1][1] if self.log else start)))
            jit.process_into(out)  # the real-time path: the newest code plays while one compiles
            end = time.perf_counter()
            log.append((start, end, len(jit.swaps)))
            if self.trace:
                self.sched.append(swap_trace.schedstat())
            if end > t0 + (k + BUFFER_BLOCKS) * period:
                self.late += 1
                t0, k = end, 0
            else:
                k += 1
            asked = t0 + k * period
            if end < asked:
                time.sleep(asked - end)


class GcPauses:
    """Collects the duration of every garbage collection (they stop every thread)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def instrument(jit: JitGraph) -> dict[int, float]:
    """Record when each version's code became ready (the compiler thread's compile returned,
    just after it made the code pending: the player may swap it in before this records it)."""
    ready: dict[int, float] = {}
    make_ready = getattr(jit, "_make_ready", None)
    if make_ready is not None:  # with tiers: when the first code of each version (the quick) was ready

        def timed_ready(version: int, *args: object) -> bool:
            made = make_ready(version, *args)
            ready.setdefault(version, time.perf_counter())
            return made

        jit._make_ready = timed_ready  # type: ignore[method-assign]
        return ready
    compile_version = jit._compile_version

    def timed() -> int:
        version = compile_version()
        ready.setdefault(version, time.perf_counter())
        return version

    jit._compile_version = timed  # type: ignore[method-assign]
    return ready


def make_jit(graph: Graph, gc_mode: str, compiler: str) -> JitGraph:
    """The JitGraph of a row; ``compiler`` "worker" or "thread" (an oscen without the compile worker
    has only the thread: its rows say "thread")."""
    options: dict[str, object] = {"freeze_gc": gc_mode == "frozen"}
    if "compile_worker" in inspect.signature(JitGraph).parameters:
        options["compile_worker"] = compiler == "worker"
    elif compiler == "worker":
        raise SystemExit("this oscen has no compile worker: run with --compiler thread")
    return JitGraph(graph, **options)  # type: ignore[arg-type]


def warm_worker() -> None:
    """Start the compile worker and wait until it is ready (JitGraph never waits for it: its first
    compiles run in-process meanwhile)."""
    try:
        from oscen.jit import worker
    except ImportError:
        return
    if not worker.shared().wait_ready(60.0):
        raise SystemExit("the compile worker did not start")


def measure(
    name: str,
    block: int,
    switch: float,
    gc_mode: str,
    changes: int,
    compiler: str = "worker",
    player_mode: str = "normal",
    control: bool = False,
    trace: int = 0,
    pause: float = 0.03,
) -> Run:
    """One row: ``changes`` uncached topology changes under a real-time player (``control``: the
    same player for as long, without edits, to show what the machine's load alone costs);
    ``pause`` seconds (plus two periods) after each edit is heard before the next."""
    run = Run(name, block, switch, gc_mode, compiler=compiler, player=player_mode, control=control)
    old_switch = sys.getswitchinterval()
    sys.setswitchinterval(switch)
    graph, feed = GRAPHS[name]()
    tail = graph.add_node(Gain(0.8))
    graph.connect(feed.output, tail.input)
    graph.set_output(tail.output)
    if compiler == "worker":
        warm_worker()
    jit = make_jit(graph, gc_mode, compiler)
    gc_pauses = GcPauses()
    try:
        assert jit.wait_compiled(60.0), jit.last_error
        jit.process_block(block)
        ready = instrument(jit)
        worker_before = getattr(jit, "worker_compiles", 0)
        player = Player(jit, block, realtime=player_mode == "realtime", trace=trace > 0)
        tracer = swap_trace.Tracer()
        if trace:
            tracer.__enter__()
        steal_before = vm_steal()
        started = time.perf_counter()
        player.start()
        time.sleep(0.2)
        edits_from = time.perf_counter()
        with gc_pauses:
            for _ in range(0 if control else changes):
                edited = time.perf_counter()
                new_tail = jit.add_node(Gain(0.8))  # a new node id: a new IR, compiled from scratch
                jit.connect(feed.output, new_tail.input)
                jit.set_output(new_tail.output)
                jit.remove_node(tail)
                tail = new_tail
                version = graph.version
                deadline = time.perf_counter() + 60.0
                while jit.compiled_version != version:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"version {version} never swapped in: {jit.last_error!r}")
                    time.sleep(POLL)
                swap = jit.swaps[-1]
                run.compile.append(swap.compile_seconds)
                while version not in ready and time.perf_counter() < deadline:
                    time.sleep(POLL)  # swapped in before the compiler thread's call returned
                done = min(ready[version], swap.swapped_at)
                run.prepare.append(done - edited - swap.compile_seconds)
                run.boundary.append(swap.swapped_at - done)
                run.total.append(swap.swapped_at - edited)
                time.sleep(pause + 2 * block / SR)  # let the swap block finish; the next edit comes later
            if control:
                time.sleep(max(1.0, 0.08 * changes))
        player.stop.set()
        player.join(timeout=10.0)
        run.seconds = time.perf_counter() - started
        steal_after = vm_steal()
        if steal_before is not None and steal_after is not None:
            run.steal = steal_after - steal_before
    finally:
        if trace:
            tracer.__exit__()
        jit.close()
        sys.setswitchinterval(old_switch)
    run.worker_compiles = getattr(jit, "worker_compiles", 0) - worker_before
    run.optimized = sum(
        getattr(s, "tier", "") == "optimized" and s.swapped_at >= edits_from for s in jit.swaps
    )
    if player_mode == "realtime" and not player.realtime:
        run.player = "realtime refused: normal"
    log = player.log
    # a swap block is one during which the swap count went up (it swapped and bound the new code)
    swapped = [i > 0 and log[i][2] != log[i - 1][2] for i in range(len(log))]
    for i, (start, end, _) in enumerate(log):
        if swapped[i]:
            run.swap_block.append(end - start)
        run.stalls.append(end - player.due[i])
        if i:
            gap = end - log[i - 1][1]
            run.max_gap = max(run.max_gap, gap)
            if not swapped[i] and not swapped[i - 1]:
                run.max_gap_plain = max(run.max_gap_plain, gap)
    run.late = player.late
    run.blocks = len(log)
    if trace and len(player.sched) == len(log) > 1:
        blocks = [
            (player.due[i], log[i][0], log[i][1], *player.sched[i - 1], *player.sched[i])
            for i in range(1, len(log))
        ]
        run.trace = swap_trace.table(tracer.spans, blocks, trace, tracer.samples)
    run.max_gc = max((p for _, p in gc_pauses.pauses), default=0.0)
    return run


def vm_steal() -> float | None:
    """Seconds of steal time of all CPUs so far (``/proc/stat``; None where there is none): time a
    virtual machine's CPUs were runnable but the host ran something else. The guest sees it as
    lost wall time in whatever ran then: with the kernel's paravirtual steal accounting it is not
    counted as the player's run time, so in ``--trace`` it lands in "blocked" with the GIL waits.
    In ticks of 1/CLK_TCK (10 ms): a row's total is meaningful, one stall's is not."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK") if fields[0] == "cpu" and len(fields) > 8 else None
    except (OSError, ValueError, IndexError):
        return None


def steal_summary(r: Run) -> str:
    if r.steal is None or r.seconds <= 0.0:
        return "-"
    return f"{r.steal * 1e3:.0f} ({100.0 * r.steal / r.seconds:.1f} %)"


# ------------------------------------------------------------------------------------ report
def ms(x: float) -> str:
    return f"{x * 1e3:.1f}"


def med_max(values: list[float]) -> str:
    return f"{ms(statistics.median(values))} / {ms(max(values))}" if values else "-"


def stall_summary(values: list[float]) -> str:
    """99th percentile / worst, and how many blocks were more than 3 ms late."""
    if not values:
        return "-"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    over = sum(1 for v in values if v > 0.003)
    return f"{ms(p99)} / {ms(ordered[-1])} ({over} > 3 ms)"


def table(runs: list[Run]) -> str:
    header = (
        "| graph | block (period) | switch | gc | compiler | player | compile | prepare | boundary | to new code "
        "| swap block | max gap | gap w/o swap | stall p99 / max | max GC | late | VM steal |"
    )
    lines = [header, "|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|"]
    for r in runs:
        compiler = "none (control)" if r.control else r.compiler
        if r.compiler == "worker" and not r.control:
            compiler += f" ({r.worker_compiles}/{len(r.compile)})"
        if r.optimized and not r.control:
            compiler += f", {r.optimized} optimized"
        lines.append(
            f"| {r.graph} | {r.block} ({ms(r.period)} ms) | {r.switch * 1e3:g} ms | {r.gc_mode} | {compiler} "
            f"| {r.player} | {med_max(r.compile)} | {med_max(r.prepare)} | {med_max(r.boundary)} "
            f"| {med_max(r.total)} | {med_max(r.swap_block)} | {ms(r.max_gap)} | {ms(r.max_gap_plain)} "
            f"| {stall_summary(r.stalls)} | {ms(r.max_gc)} | {r.late}/{r.blocks} | {steal_summary(r)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50, help="topology changes per run (default: 50)")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.03,
        help="seconds between an edit being heard and the next edit (default: 0.03; with tiers, above "
        "JitGraph's OPTIMIZE_DELAY, 0.05 s, every edit also gets its optimized tier compiled and swapped in)",
    )
    parser.add_argument("--graphs", nargs="+", choices=list(GRAPHS), default=list(GRAPHS))
    parser.add_argument("--blocks", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--switch", nargs="+", type=float, default=[sys.getswitchinterval(), 0.001])
    parser.add_argument("--gc", nargs="+", choices=("frozen", "unfrozen"), default=["frozen"])
    parser.add_argument(
        "--compiler",
        nargs="+",
        choices=("worker", "thread"),
        default=["worker"],
        help="where background compiles run: the compile worker process, or the compiler thread alone",
    )
    parser.add_argument(
        "--player",
        nargs="+",
        choices=("normal", "realtime"),
        default=["normal"],
        help="the player thread's scheduling: normal, or SCHED_FIFO as an audio thread has (needs the right)",
    )
    parser.add_argument(
        "--control", action="store_true", help="also a row per setting with the player alone, no edits"
    )
    parser.add_argument(
        "--trace",
        type=int,
        default=0,
        metavar="N",
        help="per row, the N longest stalls: the player's CPU / runqueue / blocked time and the stages "
        "the other threads ran meanwhile (swap_trace.py; Linux)",
    )
    args = parser.parse_args(argv)
    runs = []
    for name in args.graphs:
        for block in args.blocks:
            for switch in args.switch:
                for gc_mode in args.gc:
                    for player_mode in args.player:
                        rows = [(c, False) for c in args.compiler] + (
                            [("thread", True)] if args.control else []
                        )
                        for compiler, control in rows:
                            runs.append(
                                measure(
                                    name,
                                    block,
                                    switch,
                                    gc_mode,
                                    args.changes,
                                    compiler,
                                    player_mode,
                                    control,
                                    args.trace,
                                    args.pause,
                                )
                            )
                            print(
                                f"  {name} block {block} switch {switch * 1e3:g} ms gc {gc_mode} {compiler} "
                                f"{player_mode}{' control' if control else ''}: done",
                                file=sys.stderr,
                            )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"bench_swap: {args.changes} topology changes per row, times in ms as median / worst; "
        f"{os.cpu_count()} CPUs, load average {load:.2f} at the end"
    )
    print(table(runs))
    for r in runs:
        if r.trace:
            compiler = "control" if r.control else r.compiler
            print(
                f"\nLongest stalls: {r.graph}, block {r.block}, switch {r.switch * 1e3:g} ms, {compiler}, {r.player}"
            )
            print(r.trace)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
