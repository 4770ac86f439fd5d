"""Stress suite: the live layer under load (issue 9, "Must show").

Short by default (the whole file in well under a minute); longer on demand: each test's load runs
for ``OSCEN_STRESS_SECONDS`` (or ``pytest --stress-seconds N``; default 3) and the iteration counts
scale with it. Every thread join has a timeout and every test runs under pytest-timeout.

1. Random graphs (the strategies of tests/test_jit_properties.py) compiled vs interpreted, fresh
   examples (this test's own derandomized seed), on both compiled engines.
2. Edits, parameter ramps and events from several threads against a JitGraph while a player (the
   fake audio stream) plays it: nothing escapes, no block is lost or doubled, no edit reverted, every
   event delivered, and once the edits stop the newest topology plays compiled and sounds as the
   interpreter does from the same state. The instruments are in tests/stress_support.py.
3. Memory per edit and thread counts.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import random
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from jit_support import assert_same, run_both
from random_graphs import outputs_of
from stress_support import (
    JOIN_TIMEOUT,
    EventSender,
    Probe,
    RandomEditor,
    Rig,
    Worker,
    compare_with_interpreter,
    final_actions,
    join_all,
    os_threads,
    settled_rss,
    wait_newest_compiled,
    wait_os_threads,
    wait_threads,
)
from test_jit_properties import scenarios

from oscen.gain import Gain
from oscen.io.realtime import FakeOutputStream, Player
from oscen.jit import CraneliftJit, JitFallbackWarning, JitGraph

pytestmark = pytest.mark.stress

DEFAULT_SECONDS = 3.0
SECONDS = float(os.environ.get("OSCEN_STRESS_SECONDS") or DEFAULT_SECONDS)
SCALE = max(SECONDS / DEFAULT_SECONDS, 0.1)
SR = 8000.0
BLOCK = 64
COMPILE_TIMEOUT = 30.0
"""Generous: the suite shares two cores with other work, and compiles compete for them."""
TOLERANCE = 1e-9
"""The differential tests' tolerance (tests/jit_support.py)."""
MAX_OFFSET = 2 * BLOCK


def _tolerance_check() -> Callable[[Any, Any, str], None]:
    """tests/jit_support.py's shared ``assert_engines_match`` (the tolerance policy of docs/jit.md)
    when it is there, else ``assert_same`` at the differential tests' 1e-9."""
    import jit_support

    shared = getattr(jit_support, "assert_engines_match", None)
    if shared is not None:
        return lambda expected, got, what: shared(expected, got, what=what)
    return lambda expected, got, what: assert_same(expected, got, atol=TOLERANCE, what=what)


engines_match = _tolerance_check()


# ------------------------------------------------------------------------------------ 1. random graphs
@settings(
    max_examples=max(4, round(12 * SCALE)),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_stress_random_graphs_compiled_equal_interpreted(scenario) -> None:
    """Fresh random graphs, edits and block schedules (tests/test_jit_properties.py's strategy)
    on both compiled engines: GraphState and JitGraph."""
    spec, blocks, actions, n, max_block = scenario
    jit = CraneliftJit(max_block=max_block)
    for engine in ("state", "jitgraph"):
        expected, got = run_both(spec.build, n, actions, engine=engine, blocks=blocks, jit=jit)
        assert np.all(np.isfinite(expected)), "the graph blew up: the generator should keep graphs bounded"
        engines_match(expected, got, f"{engine} vs interpreted for {spec!r}")


# ------------------------------------------------------------------------------------ 2. several threads
def _channels(rig: Rig) -> int:
    return len(rig.outputs())


def _play_and_edit(
    seconds: float, editors: int, senders: int, burst: int, seed: int
) -> tuple[JitGraph, Rig, Probe, RandomEditor, list[EventSender], list[Worker], Player]:
    """The rig under a fake-audio Player (4x real time) while worker threads edit and send events
    for ``seconds``; then the workers are stopped and joined. The player is still playing."""
    rig = Rig.build(SR)
    jit = JitGraph(rig.graph)
    probe = Probe(jit, _channels(rig))
    editor = RandomEditor(jit, rig)
    rng = random.Random(seed)
    for _ in range(4):
        editor.step(rng)
    player = Player(probe, BLOCK, stream_factory=functools.partial(FakeOutputStream, speed=4.0))
    # Editors work in bursts (a few ms apart) with rests of up to 0.3 s, as live coding does, so
    # that compiles finish and swap in between bursts (while a burst goes on they can't: item 17).
    workers = [
        Worker(f"stress-editor-{i}", editor.step, seed + i, 0.004, rest=0.3, rest_chance=0.1)
        for i in range(editors)
    ]
    event_senders = [EventSender(jit, rig, MAX_OFFSET, burst) for _ in range(senders)]
    workers += [
        Worker(f"stress-events-{i}", s.send, seed + 100 + i, 0.006) for i, s in enumerate(event_senders)
    ]
    player.start()
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and player.error is None and not any(w.error for w in workers):
            time.sleep(0.02)
        for w in workers:
            w.stop()
        stuck = join_all(workers)
        assert not stuck, f"threads did not stop within {JOIN_TIMEOUT} s: {stuck}"
    except BaseException:
        player.stop()
        _close(jit)
        raise
    return jit, rig, probe, editor, event_senders, workers, player


def _wait_frames(probe: Probe, frames: int, timeout: float) -> bool:
    """Wait (bounded) until the player has played ``frames`` more frames."""
    target = probe.report.frames + frames
    deadline = time.monotonic() + timeout
    while probe.report.frames < target and time.monotonic() < deadline:
        time.sleep(0.005)
    return probe.report.frames >= target


def _check_live_run(
    jit: JitGraph,
    rig: Rig,
    probe: Probe,
    editor: RandomEditor,
    senders: list[EventSender],
    workers: list[Worker],
    player: Player,
    check_versions: bool = True,
) -> None:
    try:
        errors = [f"{w.name}: {w.error!r}" for w in workers if w.error is not None]
        assert not errors, f"an edit or event thread raised: {errors}"
        assert player.error is None, f"the audio callback raised: {player.error!r}"
        settled = wait_newest_compiled(probe, COMPILE_TIMEOUT)
        if not settled and not check_versions:
            # Work around a compile that was lost (issue 9 items 11, 17): one more edit (the same
            # outputs again) asks for a new one.
            jit.set_output(*rig.outputs())
            nudged = wait_newest_compiled(probe, COMPILE_TIMEOUT)
            assert nudged, f"no compiled code for the newest topology: {jit.last_error!r}"
        # every event queued is due within MAX_OFFSET samples of the block that took it in
        assert _wait_frames(probe, MAX_OFFSET + 4 * BLOCK, timeout=10.0), "the player stopped playing"
    finally:
        player.stop()
    assert player.error is None, f"the audio callback raised: {player.error!r}"
    rep = probe.report
    problems = rep.problems() if check_versions else [*rep.frame_errors[:5], *rep.clock_errors[:5]]
    assert not problems, "\n".join(problems)
    assert settled or not check_versions, (
        f"edits stopped, yet after {COMPILE_TIMEOUT} s the player still plays {jit.mode} code of "
        f"version {jit.compiled_version} (newest {jit.graph.version}; last error {jit.last_error!r})"
    )
    queued = sum(s.queued for s in senders)
    payloads = sum(s.payload_sum for s in senders)
    delivered, delivered_sum = rig.counts(probe.last)
    assert (delivered, delivered_sum) == (queued, payloads), (
        f"{queued} events queued (payloads summing to {payloads}), {delivered} delivered ({delivered_sum})"
    )
    done: dict[str, int] = {}
    for w in workers:
        for k, v in w.done.items():
            done[k] = done.get(k, 0) + v
    edits = sum(done.get(k, 0) for k in ("add", "remove", "connect", "disconnect"))
    assert edits > 20 * min(SCALE, 1.0) and done.get("set", 0) > 5 and queued > 50, done
    assert rep.blocks > 20 and rep.compiled_blocks > 0 and jit.swaps, (rep, jit.swaps)
    # The JIT has run, so its watchdog (started with the wasmtime engine) must still be alive.
    alive = {t.name for t in threading.enumerate()}
    assert "oscen-watchdog" in alive, f"the JIT's watchdog thread died (issue 9 item 2); alive: {alive}"

    # The newest topology, from the very state the live run left, compiled vs interpreted.
    rng = random.Random(7)
    sizes = [rng.choice((1, 17, 64, 100, 256)) for _ in range(24)]
    actions = final_actions(rig, editor, rng, len(sizes))
    compiled, interpreted = compare_with_interpreter(jit, sizes, actions)
    assert np.abs(compiled[1]).max() > 1e-3, "the mix is silent: the comparison would prove little"
    tally_ids = {t.id for t in rig.tallies}
    more = [a for a in actions if a[1] == "event" and a[2].node_id in tally_ids]
    want = (queued + len(more), payloads + sum(a[3] for a in more))
    for name, out in (("compiled", compiled), ("interpreted", interpreted)):
        assert rig.counts(out) == want, f"{name}: {rig.counts(out)} events delivered in all, want {want}"
    engines_match(interpreted, compiled, "JitGraph after the live run vs the interpreter from its state")


@pytest.mark.parametrize(
    "check_versions",
    [
        pytest.param(
            True,
            id="all_checks",
        ),
        pytest.param(False, id="without_version_checks"),
    ],
)
def test_edits_and_events_from_several_threads_while_playing(check_versions: bool) -> None:
    """Two editing threads (add/remove/connect/disconnect, set_value with ramps) and two event
    threads (bursts of up to 8 events, offsets up to two blocks, spread over three tallies, so no
    queue nears its capacity) against a JitGraph that a fake-audio Player plays.

    ``all_checks`` also requires that no block plays an older topology than one already heard and
    that the newest topology plays compiled within COMPILE_TIMEOUT of the last edit;
    ``without_version_checks`` leaves those two out (they fail on the base commit, issue 9 items 11
    and 17), so that everything else is checked before those fixes land too."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", JitFallbackWarning)
        run = _play_and_edit(SECONDS, editors=2, senders=2, burst=8, seed=11)
        try:
            _check_live_run(*run, check_versions=check_versions)
        finally:
            _close(run[0])
    fallbacks = [str(w.message) for w in caught if issubclass(w.category, JitFallbackWarning)]
    assert not fallbacks, f"every topology here compiles, yet: {fallbacks[:3]}"


def test_event_bursts_beyond_256_while_playing() -> None:
    """Bursts of up to 300 events at once (the interpreter accepts any number): all delivered."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JitFallbackWarning)
        run = _play_and_edit(min(SECONDS, 3.0), editors=1, senders=2, burst=300, seed=23)
        try:
            _check_live_run(*run)
        finally:
            _close(run[0])


def test_event_burst_beyond_256_interpreted_reference() -> None:
    """The reference the test above holds the compiled engine to: the interpreter delivers a burst
    of 300 events to one tally, every one."""
    rig = Rig.build(SR, tallies=1)
    for i in range(300):
        rig.graph.queue_event(rig.tallies[0].hit, i % 50, 2.0)
    out = np.concatenate([rig.graph.process_block(BLOCK) for _ in range(2)], axis=-1)
    assert rig.counts(out) == (300, 600.0)


def test_an_edit_made_during_the_first_compile_is_never_reverted() -> None:
    """The deterministic form of what the threaded test above catches by chance: a graph slow to
    compile (a 60-gain chain), an edit while its first compile runs, blocks played meanwhile
    (interpreted, with the edit). The code for the older topology must not be swapped in then."""
    rig = Rig.build(SR)
    previous = rig.root
    for _ in range(60):
        gain = rig.graph.add_node(Gain(0.99))
        rig.graph.connect(previous.output, gain.input)
        previous = gain
    rig.graph.connect(previous.output, rig.mix.input)
    jit = JitGraph(rig.graph)
    try:
        probe = Probe(jit, _channels(rig))
        time.sleep(0.05)  # the compiler thread has taken the IR (it waits 2 ms) and compiles
        extra = jit.add_node(Gain(0.5))
        jit.connect(rig.root.output, extra.input)
        jit.connect(extra.output, rig.mix.input)
        deadline = time.monotonic() + COMPILE_TIMEOUT
        while time.monotonic() < deadline and jit.compiled_version != jit.graph.version:
            probe.process_block(BLOCK)
        probe.process_block(BLOCK)
    finally:
        _close(jit)
    assert jit.compiled_version == jit.graph.version, "the newest topology never played compiled"
    assert not probe.report.reversions, "\n".join(probe.report.reversions[:5])
    assert not probe.report.problems()


def _close(jit: JitGraph) -> None:
    jit.close()
    thread = getattr(jit, "_thread", None)
    if thread is not None:
        thread.join(timeout=JOIN_TIMEOUT)
        assert not thread.is_alive(), "the compiler thread did not end after close()"


def test_probe_catches_a_lost_block_and_a_rewound_state() -> None:
    """The instruments can fail: a frame skipped behind the probe's back, or node state rewound
    (what a swap carrying stale state would do), is reported."""
    rig = Rig.build(SR)
    jit = JitGraph(rig.graph, background=False)
    try:
        probe = Probe(jit, _channels(rig))
        for _ in range(3):
            probe.process_block(BLOCK)
        assert not probe.report.problems()
        assert jit.mode == "compiled"
        jit.process_block(BLOCK)  # a block the player never saw
        probe.process_block(BLOCK)
        assert not probe.report.clock_errors  # the clock follows the frame: consistent
        state = jit._current.state  # private: rewind the clock node's state by one block
        state.scalar(rig.clock.id, "n")[0] -= BLOCK
        probe.process_block(BLOCK)
        assert len(probe.report.clock_errors) == 1, probe.report
    finally:
        jit.close()


# ------------------------------------------------------------------------------------ 3. memory, threads
RSS_BOUND_PER_EDIT = 20 * 1024
"""Generous (the issue's target is 1 KB per edit; the soak measures the real figure): enough to
catch a leak of a state per swap without flaking on allocator noise."""
WARM_UP_EDITS = 250
"""Edits before the RSS windows: until the compiler's caches are full (see the test)."""


def _edit_and_swap(jit: JitGraph, editor: RandomEditor, rig: Rig, rng: random.Random, k: int) -> None:
    """One topology edit (alternately add a node, remove one), waited for until its code plays."""
    if k % 2 == 0 or not editor.nodes:
        live = editor.add(rng)
        jit.connect(getattr(live.handle, outputs_of(live.kind)[0]), rig.mix.input)
    else:
        jit.remove_node(editor.nodes.pop(0).handle)
    assert jit.wait_compiled(timeout=COMPILE_TIMEOUT), f"no compiled code: {jit.last_error!r}"
    jit.process_block(BLOCK)


RSS_WINDOWS = 5
"""Windows of edits measured; the test takes their median (a steady leak shows in every one)."""
SETTLE_TIMEOUT = 5.0
"""Seconds to wait at most, before each RSS reading, for the compiler thread to free what the
swaps replaced (``JitGraph``'s retired states, up to ``MAX_RETIRED`` waiting for its idle time)."""


def _settled(jit: JitGraph) -> int:
    """RSS once the replaced states and code waiting for the compiler thread are freed (bounded
    wait), after a full collection: readings taken with 0 or 4 states pending differed by a
    few MB, which over a window of 30 edits read as tens of KB "per edit" (a CI run under load:
    4.3, 75.5, 83.9 KB)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while jit._worker.retired and time.monotonic() < deadline:
        time.sleep(0.01)
    return settled_rss()


def rss_per_edit(freeze_gc: bool) -> dict[str, Any]:
    """RSS growth per edit (bytes) in up to RSS_WINDOWS windows of edits after the warm-up, and
    the swap count: run by :func:`test_rss_growth_per_edit_is_bounded` in a fresh interpreter."""
    rig = Rig.build(SR)
    jit = JitGraph(rig.graph, freeze_gc=freeze_gc)
    editor = RandomEditor(jit, rig, max_nodes=6)
    rng = random.Random(5)
    window = max(30, round(30 * SCALE))
    per_edit: list[float] = []
    pending: list[int] = []
    try:
        # warm-up: fills the compile cache (16 entries), the session's variant cache (64 node
        # variants: the random edits bring many) and the allocator's pools. Traced Python memory
        # (tracemalloc, 60-edit windows) grows 2-8 KB per edit over the first ~400 edits as those
        # caches fill (edits 120-240 retain the same 2.6-2.7 MB on 960bd8d as with voices as
        # lanes), then 1-2 KB.
        for k in range(WARM_UP_EDITS):
            _edit_and_swap(jit, editor, rig, rng, k)
        over = RSS_WINDOWS // 2 + 1  # windows over the bound that put the median over it
        for _ in range(RSS_WINDOWS):
            before = _settled(jit)
            for k in range(window):
                _edit_and_swap(jit, editor, rig, rng, k)
            pending.append(len(jit._worker.retired))
            per_edit.append((_settled(jit) - before) / window)
            if sum(x > RSS_BOUND_PER_EDIT for x in per_edit) == over:
                break  # the median is over the bound already: don't leak on for more windows
    finally:
        _close(jit)
    return {"per_edit": per_edit, "window": window, "swaps": jit.swap_count, "pending": pending}


@pytest.mark.parametrize(
    "freeze_gc",
    [
        pytest.param(
            True,
            id="freeze_gc",
        ),
        pytest.param(False, id="no_freeze"),
    ],
)
def test_rss_growth_per_edit_is_bounded(freeze_gc: bool) -> None:
    """Edits that each compile and swap in new code (the graph's size stays bounded) must not grow
    the process by more than RSS_BOUND_PER_EDIT per edit once warmed up: the median of
    RSS_WINDOWS windows of edits, each read once the replaced states are freed, so that a window
    or two where the allocator takes a new arena do not flake, while a steady leak shows in all.

    Measured in a fresh interpreter: inside the whole suite's process (hundreds of MB of other
    tests' heap, their caches and modules) the same edits measured 21-23 KB per edit in two CI
    runs, in a fresh process 0-4 KB (0-1 KB on 960bd8d, before voices as lanes)."""
    tests = str(Path(__file__).resolve().parent)
    code = f"import json, test_stress; print(json.dumps(test_stress.rss_per_edit({freeze_gc!r})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tests, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    per_edit, window = result["per_edit"], result["window"]
    assert result["swaps"] >= WARM_UP_EDITS + len(per_edit) * window
    # the median of the windows (a run stopped early has a majority over the bound: that too)
    median = sorted(per_edit)[len(per_edit) // 2]
    assert median <= RSS_BOUND_PER_EDIT, (
        f"RSS grew {', '.join(f'{x / 1024:.1f}' for x in per_edit)} KB per edit in windows of "
        f"{window} edits (bound {RSS_BOUND_PER_EDIT / 1024:.0f} KB; replaced states waiting at each "
        f"window's end: {result['pending']})"
    )


def _many_jitgraphs(count: int, closed: bool) -> None:
    for k in range(count):
        rig = Rig.build(SR)
        jit = JitGraph(rig.graph)
        assert jit.wait_compiled(timeout=COMPILE_TIMEOUT), f"graph {k}: {jit.last_error!r}"
        jit.process_block(BLOCK)
        if closed:
            _close(jit)
        del jit, rig


def test_thread_count_constant_after_many_jitgraphs_closed() -> None:
    """Python threads: back to the count before, exactly. OS threads (wasmtime's native ones too,
    which may appear lazily): no more after a second batch than after the first, so a thread per
    graph shows while a pool started once does not."""
    _many_jitgraphs(2, closed=True)  # warm-up: the watchdog and wasmtime's own threads
    python = threading.active_count()
    batch = max(15, round(15 * SCALE))
    _many_jitgraphs(batch, closed=True)
    assert wait_threads(python, timeout=10.0) == python, [t.name for t in threading.enumerate()]
    time.sleep(0.2)  # let the ended threads leave the OS's count
    native = os_threads()
    _many_jitgraphs(batch, closed=True)
    assert wait_threads(python, timeout=10.0) == python, [t.name for t in threading.enumerate()]
    now = wait_os_threads(native, timeout=5.0)
    assert now <= native, f"{native} OS threads after {batch} graphs, {now} after {2 * batch}"


def test_thread_count_constant_after_many_jitgraphs_dropped() -> None:
    _many_jitgraphs(2, closed=True)
    python = threading.active_count()
    _many_jitgraphs(max(10, round(15 * SCALE)), closed=False)
    gc.collect()
    left = wait_threads(python, timeout=5.0)
    assert left == python, f"{left - python} threads left: {[t.name for t in threading.enumerate()]}"


def test_watchdog_survives_states_bound_from_several_threads() -> None:
    """In a subprocess (a dead watchdog must not stay behind in the test process): two threads
    bind states to a kernel, with the GIL switching every microsecond; the watchdog must live on.
    On the base commit it dies within about a second (it stops there; a fixed watchdog is given 6 s);
    the 2-minute soak (about 1100 swaps) saw it die too."""
    tests = str(Path(__file__).resolve().parent)
    code = (
        "import json, stress_support; "
        f"print(json.dumps(stress_support.watchdog_churn({max(6.0, min(SECONDS, 30.0))})))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tests, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["binds"] > 50, result
    assert not result["died"] and not result["stuck"], result
    assert result["watchdog_alive"], result


# ------------------------------------------------------------------------------------ the soak, briefly
def test_soak_benchmark_runs_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    """benchmarks/bench_soak.py for a few seconds with small settings: it plays, edits, sends
    events, prints every row of its table and a verdict, and its exit code says whether the
    targets were met (1 names the missed ones)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks import bench_soak

    code = bench_soak.main(
        ["--seconds", "3", "--warmup", "1", "--seed", "3", "--block", "64", "--sample-rate", "8000"]
    )
    text = capsys.readouterr().out
    for row in bench_soak.ROWS:
        assert row in text, f"row {row!r} missing from:\n{text}"
    report = bench_soak.LAST_REPORT
    assert report is not None and report.blocks > 20 and report.edits > 10 and report.events_queued > 10
    assert report.compared, "the final comparison with the interpreter did not run"
    missed = report.missed()
    assert code == (1 if missed else 0)
    for target in missed:
        assert target in text
