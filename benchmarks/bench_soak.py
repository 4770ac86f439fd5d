"""Soak: a JitGraph played by the fake audio player for minutes while threads edit it at random.

Editing threads add and remove nodes, connect and disconnect them and change parameters (immediate
and ramped); event threads queue bursts of events; all from a seeded RNG. The instruments are those
of the stress suite (tests/stress_support.py): a sample-clock node and a probe between player and
graph catch lost or doubled blocks and reverted edits, event-counting nodes count what was
delivered in whichever engine ran. At the end the edits stop, the newest topology must play
compiled, and its output from a snapshot of the running state is compared with the interpreter's
from the same snapshot (the same N blocks, parameter changes and events; see
``compare_with_interpreter``).

It prints one table and exits 1 when a target is missed, naming it:

* 0 events lost (delivered == queued, count and payload sum),
* 0 blocks lost or duplicated (frame and sample clock advance by exactly each block),
* RSS growth at most 1 KB per topology edit (RSS taken after a full collection, at the start after
  ``--warmup`` seconds of the same edits, which fill the bounded caches and the allocator's pools,
  at the end once the edits stopped),
* a constant thread count (Python's, and the OS's),
* and, for the run to mean anything: no exception in the audio callback or the threads, no edit
  reverted, the final output equal to the interpreter's (1e-9).

Usage: python benchmarks/bench_soak.py [--seconds 120] [--warmup 10] [--seed 1] [--block 256]
       [--sample-rate 44100] [--editors 2] [--senders 1] [--burst 32] [--speed 1.0]
       [--edit-pause 0.1] [--event-pause 0.05] [--rss-limit-mb 3072]
The defaults play in real time (``--speed 1``: the fake stream's pace; late blocks are real).
"""

from __future__ import annotations

import argparse
import functools
import gc
import random
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from stress_support import (  # noqa: E402
    EventSender,
    Probe,
    RandomEditor,
    Rig,
    Worker,
    compare_with_interpreter,
    final_actions,
    join_all,
    os_threads,
    rss_bytes,
    wait_newest_compiled,
)

from oscen.io.realtime import FakeOutputStream, Player  # noqa: E402
from oscen.jit import JitFallbackWarning, JitGraph  # noqa: E402

TOLERANCE = 1e-9
RSS_TARGET_PER_EDIT = 1024
COMPILE_TIMEOUT = 60.0
TOPOLOGY = ("add", "remove", "connect", "disconnect")
ROWS = (
    "topology edits",
    "parameter changes",
    "refused edits",
    "swaps",
    "blocks",
    "late blocks",
    "xruns",
    "events queued",
    "events refused",
    "events delivered",
    "lost or duplicated blocks",
    "reverted edits (blocks)",
    "versions behind (mean/max)",
    "RSS before warm-up",
    "RSS start",
    "RSS end",
    "RSS growth per edit",
    "threads start (python/OS)",
    "threads end (python/OS)",
    "newest topology compiled",
    "final output vs interpreter",
)
LAST_REPORT: SoakReport | None = None
"""The report of the last ``main`` run (for the smoke test)."""


@dataclass
class SoakReport:
    seconds: float = 0.0
    edits: int = 0
    sets: int = 0
    refused: int = 0
    swaps: int = 0
    blocks: int = 0
    late_blocks: int = 0
    xruns: int = 0
    events_queued: int = 0
    events_refused: int = 0
    events_delivered: int = 0
    payload_queued: float = 0.0
    payload_delivered: float = 0.0
    bad_blocks: int = 0
    reverted: int = 0
    mean_lag: float = 0.0
    max_lag: int = 0
    warmup_seconds: float = 0.0
    warmup_edits: int = 0
    rss_first: int = 0
    rss_start: int = 0
    rss_end: int = 0
    threads_start: tuple[int, int] = (0, 0)
    threads_end: tuple[int, int] = (0, 0)
    settled: str = "no"
    compared: bool = False
    max_difference: float = float("nan")
    errors: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def rss_per_edit(self) -> float:
        return (self.rss_end - self.rss_start) / max(self.edits - self.warmup_edits, 1)

    def missed(self) -> list[str]:
        """The targets missed, each named as in the table."""
        missed = []
        if (self.events_delivered, self.payload_delivered) != (self.events_queued, self.payload_queued):
            missed.append("events lost")
        if self.bad_blocks:
            missed.append("lost or duplicated blocks")
        if self.rss_per_edit > RSS_TARGET_PER_EDIT:
            missed.append("RSS growth per edit")
        if self.threads_end != self.threads_start:
            missed.append("thread count")
        if self.errors:
            missed.append("exceptions")
        if self.reverted:
            missed.append("reverted edits")
        if self.settled != "yes":
            missed.append("newest topology compiled")
        if not self.compared or not self.max_difference <= TOLERANCE:
            missed.append("final output vs interpreter")
        return missed

    def table(self) -> str:
        mb = 1024 * 1024
        rows = [
            (
                "topology edits",
                f"{self.edits}",
                f"{self.edits / max(self.seconds + self.warmup_seconds, 1e-9):.1f}/s, "
                f"{self.warmup_edits} of them in the warm-up",
            ),
            ("parameter changes", f"{self.sets}", "immediate and ramped"),
            ("refused edits", f"{self.refused}", "GraphError: another thread got there first"),
            ("swaps", f"{self.swaps}", ""),
            ("blocks", f"{self.blocks}", ""),
            ("late blocks", f"{self.late_blocks}", "callback slower than real time"),
            ("xruns", f"{self.xruns}", "fake device underflows"),
            ("events queued", f"{self.events_queued}", f"payload sum {self.payload_queued:g}"),
            (
                "events refused",
                f"{self.events_refused}",
                "over MAX_EVENTS_PER_SAMPLE at one sample: raised at queue_event",
            ),
            ("events delivered", f"{self.events_delivered}", f"payload sum {self.payload_delivered:g}"),
            ("lost or duplicated blocks", f"{self.bad_blocks}", "target 0"),
            ("reverted edits (blocks)", f"{self.reverted}", "blocks playing an older topology than heard"),
            (
                "versions behind (mean/max)",
                f"{self.mean_lag:.1f}/{self.max_lag}",
                "topology versions the playing code lagged the graph",
            ),
            ("RSS before warm-up", f"{self.rss_first / mb:.1f} MB", "after the first compile, collected"),
            (
                "RSS start",
                f"{self.rss_start / mb:.1f} MB",
                f"after {self.warmup_seconds:.0f} s of warm-up edits (fills caches, pools), collected",
            ),
            ("RSS end", f"{self.rss_end / mb:.1f} MB", "after the edits, collected"),
            ("RSS growth per edit", f"{self.rss_per_edit / 1024:.2f} KB", "start to end, target <= 1 KB"),
            (
                "threads start (python/OS)",
                f"{self.threads_start[0]}/{self.threads_start[1]}",
                "after the warm-up, less the editing and event threads",
            ),
            (
                "threads end (python/OS)",
                f"{self.threads_end[0]}/{self.threads_end[1]}",
                "target: as at start",
            ),
            ("newest topology compiled", self.settled, "within one compile after the edits stop"),
            (
                "final output vs interpreter",
                f"{self.max_difference:.3g}" if self.compared else "not compared",
                f"max |difference|, target <= {TOLERANCE:g}",
            ),
        ]
        width = max(len(r[0]) for r in rows)
        vwidth = max(len(r[1]) for r in rows)
        lines = [f"  {name:<{width}}  {value:>{vwidth}}  {note}".rstrip() for name, value, note in rows]
        return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0, help="how long the edits run (default 120)")
    p.add_argument(
        "--warmup", type=float, default=10.0, help="seconds of edits before RSS and threads are first taken"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--block", type=int, default=256, help="block size (default 256)")
    p.add_argument("--sample-rate", type=float, default=44100.0)
    p.add_argument("--editors", type=int, default=2, help="editing threads (default 2)")
    p.add_argument("--senders", type=int, default=1, help="event threads (default 1)")
    p.add_argument("--burst", type=int, default=32, help="largest event burst (default 32)")
    p.add_argument("--speed", type=float, default=1.0, help="fake audio speed, 1 = real time")
    p.add_argument("--edit-pause", type=float, default=0.1, help="longest pause between edits (s)")
    p.add_argument("--event-pause", type=float, default=0.05, help="longest pause between bursts (s)")
    p.add_argument("--max-nodes", type=int, default=12)
    p.add_argument("--compare-blocks", type=int, default=40)
    p.add_argument("--rss-limit-mb", type=float, default=3072.0, help="stop editing past this growth (MB)")
    args = p.parse_args(argv)
    if args.seconds < 0 or args.block < 1 or args.speed <= 0 or args.editors < 0 or args.senders < 0:
        p.error("--seconds >= 0, --block >= 1, --speed > 0, --editors and --senders >= 0")
    return args


def collected_rss() -> int:
    gc.collect()
    return rss_bytes()


def run(args: argparse.Namespace) -> SoakReport:
    """The soak, with every thread's uncaught exception recorded (a background thread that dies
    is an exception escaping: the JIT's watchdog, its compiler thread)."""
    rep = SoakReport()
    previous = threading.excepthook

    def hook(hook_args: threading.ExceptHookArgs) -> None:
        name = hook_args.thread.name if hook_args.thread is not None else "?"
        rep.errors.append(f"thread {name} died: {hook_args.exc_value!r}")
        previous(hook_args)

    threading.excepthook = hook
    try:
        return _run(args, rep)
    finally:
        threading.excepthook = previous


def _run(args: argparse.Namespace, rep: SoakReport) -> SoakReport:
    rig = Rig.build(args.sample_rate)
    jit = JitGraph(rig.graph)
    probe = Probe(jit, len(rig.outputs()))
    editor = RandomEditor(jit, rig, max_nodes=args.max_nodes)
    rng = random.Random(args.seed)
    for _ in range(4):
        editor.step(rng)
    max_offset = 2 * args.block
    senders = [EventSender(jit, rig, max_offset, args.burst) for _ in range(args.senders)]
    workers = [Worker(f"soak-editor-{i}", editor.step, args.seed * 1000 + i, args.edit_pause)
               for i in range(args.editors)]  # fmt: skip
    workers += [Worker(f"soak-events-{i}", s.send, args.seed * 1000 + 100 + i, args.event_pause)
                for i, s in enumerate(senders)]  # fmt: skip
    player = Player(probe, args.block, stream_factory=functools.partial(FakeOutputStream, speed=args.speed))
    if not jit.wait_compiled(timeout=COMPILE_TIMEOUT):
        rep.errors.append(f"the first compile failed: {jit.last_error!r}")
    player.start()
    if not wait_newest_compiled(probe, COMPILE_TIMEOUT):
        rep.details.append("the first compiled code did not start playing in time")
    time.sleep(0.2)
    rep.rss_first = collected_rss()
    for w in workers:
        w.start()
    t0 = time.monotonic()
    limit = rep.rss_first + args.rss_limit_mb * 1024 * 1024

    def keep_going(until: float) -> bool:
        while time.monotonic() < until:
            time.sleep(0.05)
            if player.error is not None or any(w.error for w in workers):
                rep.details.append(f"stopped early at {time.monotonic() - t0:.1f} s: an exception")
                return False
            if rss_bytes() > limit:
                rep.details.append(f"stopped early at {time.monotonic() - t0:.1f} s: RSS grew past the limit")
                return False
        return True

    going = keep_going(t0 + args.warmup)
    rep.warmup_seconds = time.monotonic() - t0
    rep.warmup_edits = _count(workers)[0]
    rep.rss_start = collected_rss()
    workers_alive = sum(w.is_alive() for w in workers)
    rep.threads_start = (threading.active_count() - workers_alive, os_threads() - workers_alive)
    names_start = {t.name for t in threading.enumerate()} - {w.name for w in workers}
    t0 = time.monotonic()
    if going:
        keep_going(t0 + args.seconds)
    rep.seconds = time.monotonic() - t0
    for w in workers:
        w.stop()
    stuck = join_all(workers)
    if stuck:
        rep.errors.append(f"threads did not stop: {stuck}")
    settled = wait_newest_compiled(probe, COMPILE_TIMEOUT)
    if settled:
        rep.settled = "yes"
    else:
        jit.set_output(*rig.outputs())  # the same outputs again: a new version, asking for a compile
        rep.settled = "only after a nudge" if wait_newest_compiled(probe, COMPILE_TIMEOUT) else "no"
    frames = probe.report.frames
    deadline = time.monotonic() + 10.0
    while probe.report.frames < frames + max_offset + 4 * args.block and time.monotonic() < deadline:
        time.sleep(0.01)  # every event queued is due by now
    rep.rss_end = collected_rss()
    rep.threads_end = (threading.active_count(), os_threads())
    names_end = {t.name for t in threading.enumerate()}
    if names_end != names_start:
        rep.details.append(
            f"threads gone: {sorted(names_start - names_end)}, new: {sorted(names_end - names_start)}"
        )
    stats = player.stop()
    if stats.error is not None:
        rep.errors.append(f"the audio callback raised: {stats.error!r}")
    rep.errors += [f"{w.name} raised: {w.error!r}" for w in workers if w.error is not None]
    rep.edits, rep.sets, rep.refused = _count(workers)
    rep.swaps = jit.swap_count
    pr = probe.report
    rep.blocks, rep.late_blocks, rep.xruns = pr.blocks, stats.late_blocks, stats.xruns
    rep.bad_blocks = len({e.split(":")[0] for e in pr.frame_errors + pr.clock_errors})
    rep.reverted = len(pr.reversions)
    rep.mean_lag, rep.max_lag = pr.mean_lag, pr.max_lag
    rep.details += pr.problems()
    rep.events_queued = sum(s.queued for s in senders)
    rep.events_refused = sum(s.refused for s in senders)
    rep.payload_queued = sum(s.payload_sum for s in senders)
    rep.events_delivered, rep.payload_delivered = rig.counts(probe.last)
    if jit.mode == "compiled" and jit.compiled_version == jit.graph.version:
        sizes = [rng.choice((1, 64, args.block, 3 * args.block)) for _ in range(args.compare_blocks)]
        try:
            compiled, interpreted = compare_with_interpreter(
                jit, sizes, final_actions(rig, editor, rng, len(sizes))
            )
            rep.compared = True
            rep.max_difference = float(np.nanmax(np.abs(compiled - interpreted)))
        except Exception as exc:  # noqa: BLE001 - reported in the table
            rep.errors.append(f"the comparison failed: {exc!r}")
    jit.close()
    thread = getattr(jit, "_thread", None)
    if thread is not None:
        thread.join(timeout=COMPILE_TIMEOUT)
    return rep


def _count(workers: list[Worker]) -> tuple[int, int, int]:
    """(topology edits, parameter changes, refused edits) the workers made so far."""
    edits = sets = refused = 0
    for w in workers:
        for _ in range(10):  # the worker may add a key meanwhile
            try:
                done = dict(w.done)
                break
            except RuntimeError:
                continue
        else:
            done = {}
        edits += sum(done.get(k, 0) for k in TOPOLOGY)
        sets += done.get("set", 0)
        refused += done.get("refused", 0)
    return edits, sets, refused


def main(argv: list[str] | None = None) -> int:
    global LAST_REPORT
    args = parse(argv)
    print(
        f"soak: {args.warmup:g} s of warm-up and {args.seconds:g} s of edits, seed {args.seed}, block {args.block} at {args.sample_rate:g} Hz, "
        f"fake audio at {args.speed:g}x, {args.editors} editing and {args.senders} event thread(s), "
        f"bursts of up to {args.burst} events"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", JitFallbackWarning)
        rep = run(args)
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, JitFallbackWarning)]
    if fallbacks:
        rep.details.append(f"{len(fallbacks)} fallback warning(s), first: {fallbacks[0][:200]}")
    LAST_REPORT = rep
    print(rep.table())
    for line in rep.errors + rep.details:
        print(f"  ! {line}")
    missed = rep.missed()
    if missed:
        print(f"targets missed: {', '.join(missed)}")
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
