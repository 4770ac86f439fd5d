"""The longest gap of the processing thread while a graph recompiles in the background (issue 11).

- Replaced states (the old GraphState, its wasmtime store and memory) are freed by the compiler
  thread when it is idle, one per live block end and never inside a block: freed at the swap, or at
  whatever moment the compiler thread woke, they were a millisecond-long GIL-held gap.
- ``_Beat.quiet(step)``: the compiler thread's GIL-holding steps start just after a live block
  ends; at once when nothing plays live or when the blocks are short (waiting only made the
  compile later at block 64). The compile worker's reply load is one of them (``quiet=``).
- A copy plan's per-node work (which fields it copies, whether the node must be partly loaded from
  the node objects) is done once per pair of templates and kept, not per swap per node.

Waits are bounded loops and joins; nothing here asserts how long something took.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph, NodeHandle
from oscen.jit import GraphState, JitGraph, jitgraph
from oscen.jit import state as state_mod
from oscen.oscillators import Oscillator

SR = 44100.0
TIMEOUT = 30.0
BLOCK = 256


def voices(n: int = 8) -> tuple[Graph, NodeHandle]:
    """``n`` sines, each through its own lowpass, summed into a Gain (bench_swap's voices64, small)."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0))
    for k in range(n):
        osc = graph.add_node(Oscillator.sine(110.0 * 2.0 ** (k / 12.0), 1.0 / n))
        filt = graph.add_node(IirLowpass(1000.0, 0.707))
        graph.connect(osc.output, filt.input)
        graph.connect(filt.output, mix.input)
    graph.set_output(mix.output)
    return graph, mix


class Blocks:
    """Plays live blocks on the calling thread, as a player does, and records when a hook ran:
    inside a block (``in_block``) and after how many block ends (``ends``). Each block spends
    ``inside`` seconds asleep within it, so that a free at an arbitrary moment often lands there."""

    def __init__(self, jit: JitGraph, inside: float = 0.004, between: float = 0.008) -> None:
        self.jit = jit
        self.inside = inside
        self.between = between
        self.in_block = False
        self.ends = 0
        self.played = 0
        self.out = np.empty((1, BLOCK))
        original = jit._process_locked

        def in_block(n: int, live: bool) -> np.ndarray:
            self.in_block = True
            try:
                result = original(n, live)
                time.sleep(self.inside)
                return result
            finally:
                self.in_block = False

        jit._process_locked = in_block  # type: ignore[method-assign]
        tick = jit._beat.tick

        def counted() -> None:
            self.ends += 1
            tick()

        jit._beat.tick = counted  # type: ignore[method-assign]

    def play(self, until: Callable[[], bool], limit: int = 4000) -> None:
        for _ in range(limit):
            if until():
                return
            self.jit.process_into(self.out)
            self.played += 1
            time.sleep(self.between)
        raise AssertionError("the condition never came true while blocks played")


@pytest.fixture
def live() -> Iterator[Callable[..., JitGraph]]:
    made: list[JitGraph] = []

    def make(graph: Graph, **options: Any) -> JitGraph:
        options.setdefault("compile_worker", False)
        options.setdefault("tiered", False)
        jit = JitGraph(graph, **options)
        made.append(jit)
        return jit

    yield make
    for jit in made:
        jit.close()


def edit(jit: JitGraph, feed: NodeHandle, tail: NodeHandle | None) -> NodeHandle:
    """bench_swap's edit: a fresh output Gain (a new IR) replacing the one before."""
    new = jit.add_node(Gain(0.8))
    jit.connect(feed.output, new.input)
    jit.set_output(new.output)
    if tail is not None:
        jit.remove_node(tail)
    return new


def test_replaced_states_are_freed_by_the_compiler_thread_between_blocks(
    live: Callable[..., JitGraph],
) -> None:
    graph, mix = voices()
    jit = live(graph)
    blocks = Blocks(jit)
    frees: list[tuple[str, bool, int]] = []  # (thread, inside a block, block ends so far)
    watched = 0
    tail = None
    assert jit.wait_compiled(TIMEOUT), repr(jit.last_error)
    for _ in range(6):
        tail = edit(jit, mix, tail)
        version = graph.version
        blocks.play(lambda: jit.compiled_version == version)  # noqa: B023 - called at once
        # the state just replaced is on its way out: record where it dies
        for obj in list(jit._worker.retired):
            state = obj.state if isinstance(obj, jitgraph._Ready) else None
            if state is not None and not hasattr(state, "_watched"):
                state._watched = True
                watched += 1
                weakref.finalize(
                    state,
                    lambda: frees.append((threading.current_thread().name, blocks.in_block, blocks.ends)),
                )
        obj = state = None  # (the test's own references)
    blocks.play(lambda: len(frees) == watched)
    assert watched >= 5
    assert all(thread == "oscen-jit" for thread, _, _ in frees), frees
    assert not any(inside for _, inside, _ in frees), f"freed inside a block: {frees}"


def test_retired_objects_are_freed_one_per_block_end(live: Callable[..., JitGraph]) -> None:
    graph, _ = voices(2)
    jit = live(graph)
    blocks = Blocks(jit)
    assert jit.wait_compiled(TIMEOUT), repr(jit.last_error)
    blocks.play(lambda: blocks.ends > 3 and not jit._worker.retired)

    class Garbage:
        pass

    freed: list[int] = []
    for _ in range(4):
        obj = Garbage()
        weakref.finalize(obj, lambda: freed.append(blocks.ends))
        jit._worker.retire(obj)
        del obj
    blocks.play(lambda: len(freed) == 4)
    assert len(set(freed)) == 4, f"several freed after one block end: {freed}"


def test_no_states_stay_alive_after_many_edits(live: Callable[..., JitGraph]) -> None:
    graph, mix = voices(4)
    jit = live(graph, tiered=True)  # two swaps per edit: the quick tier, then the optimized one
    blocks = Blocks(jit, inside=0.0, between=0.004)
    states: list[weakref.ref[GraphState]] = []
    tail = None
    assert jit.wait_compiled(TIMEOUT), repr(jit.last_error)
    for _ in range(12):
        tail = edit(jit, mix, tail)
        version = graph.version
        blocks.play(lambda: jit.compiled_version == version)  # noqa: B023 - called at once
        assert jit._current is not None
        states.append(weakref.ref(jit._current.state))
    blocks.play(lambda: jit._done_version >= graph.version and not jit._pending and not jit._worker.retired)
    current = jit._current.state if jit._current is not None else None
    alive = [ref for ref in states if ref() is not None and ref() is not current]
    assert not alive, f"{len(alive)} of {len(states)} replaced states are still alive"


def test_a_compile_starts_with_few_replaced_states_waiting(live: Callable[..., JitGraph]) -> None:
    """Replaced states wait for the compiler thread's idle time, but not without bound: edits that
    keep it busy (never idle) would pile them up. Beyond MAX_RETIRED it frees the oldest before
    its next compile (at once here: no live block plays)."""
    graph, mix = voices(2)
    jit = live(graph)
    assert jit.wait_compiled(TIMEOUT), repr(jit.last_error)
    jit.process_block(BLOCK)
    for _ in range(1000):  # until the compiler thread is idle with nothing to free
        if not jit._worker.retired and jit._done_version >= graph.version:
            break
        time.sleep(0.005)
    waiting: list[int] = []
    compile_version = jit._compile_version

    def counted() -> int:
        waiting.append(len(jit._worker.retired))
        return compile_version()

    jit._compile_version = counted  # type: ignore[method-assign]

    class Garbage:
        pass

    with jit._wake:  # the compiler thread sees the edit and the garbage at once: not idle
        for _ in range(3 * jitgraph.MAX_RETIRED):
            jit._worker.retire(Garbage())
        edit(jit, mix, None)
    assert jit.wait_compiled(TIMEOUT), repr(jit.last_error)
    assert waiting and waiting[0] <= jitgraph.MAX_RETIRED, waiting


def test_replaced_states_are_freed_while_the_optimized_tier_waits(
    live: Callable[..., JitGraph], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait before the optimized tier (OPTIMIZE_DELAY) is idle time too: with edits every
    ~50 ms (bench_swap's) the compiler thread never got back to its idle loop, so replaced states
    waited for MAX_RETIRED, freed before the next compile (11 ms more from edit to ready)."""
    monkeypatch.setattr(jitgraph, "OPTIMIZE_DELAY", 60.0)
    graph, mix = voices(2)
    jit = live(graph, tiered=True)
    edit(jit, mix, None)
    assert jit.wait_compiled(TIMEOUT, first=True), repr(jit.last_error)

    class Garbage:
        pass

    freed: list[int] = []
    for _ in range(2):
        obj = Garbage()
        weakref.finalize(obj, lambda: freed.append(1))
        jit._worker.retire(obj)
        del obj
    for _ in range(2000):
        if len(freed) == 2:
            break
        time.sleep(0.005)
    assert len(freed) == 2, "not freed while the compiler thread waited to optimize"
    assert jit._done_version < graph.version, "(the optimized tier was not waiting after all)"


def ticking(beat: jitgraph._Beat, period: float) -> tuple[threading.Thread, threading.Event, list[int]]:
    """A thread ending a live block every ``period`` seconds (and counting them) until stopped."""
    stop = threading.Event()
    count = [0]

    def run() -> None:
        while not stop.wait(period):
            count[0] += 1
            beat.tick()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, stop, count


def test_quiet_steps_wait_for_a_block_end_while_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jitgraph._Beat, "LIMIT", 60.0)
    beat = jitgraph._Beat()
    thread, stop, ends = ticking(beat, 0.01)
    try:
        while ends[0] < 3:  # a period known, and playing
            time.sleep(0.001)
        for _ in range(5):  # one step per block end (as the compiler thread frees replaced states)
            asked = ends[0]
            ran = beat.quiet(lambda: ends[0], fresh=True)
            assert ran > asked, "the step did not wait for the next block end"
    finally:
        stop.set()
        thread.join(TIMEOUT)


def test_quiet_steps_run_at_once_offline_and_for_short_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jitgraph._Beat, "LIMIT", 60.0)
    done = threading.Event()
    offline = jitgraph._Beat()  # no live block ever

    short = jitgraph._Beat()
    short.tick()
    short.period = 0.001  # block 64 at 1 ms switch: shorter than _Beat.SHORT
    short.last = time.perf_counter() + 30.0  # (as if a block had just ended, all along)

    def run() -> None:
        assert offline.quiet(lambda: 1) == 1
        assert short.quiet(lambda: 2, fresh=True) == 2
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert done.is_set(), "a quiet step waited with nothing (or only short blocks) playing"


def test_the_worker_reply_load_runs_through_quiet() -> None:
    from oscen.jit import CraneliftJit, worker
    from oscen.jit.frontend.typing import settled

    shared = worker.shared()
    if not shared.wait_ready(60.0):
        pytest.skip("no compile worker here")
    graph, _ = voices(2)
    steps: list[str] = []

    def quiet(step: Callable[[], Any]) -> Any:
        steps.append(getattr(step, "__name__", "?"))
        return step()

    compiled, _ = shared.compile(settled(graph.to_ir()), CraneliftJit(), quiet=quiet)
    assert len(steps) >= 2, steps  # the reply's unpickling, then loading its code and program
    state = GraphState.from_graph(graph)
    np.testing.assert_allclose(compiled.process_block(state, 64), voices(2)[0].process_block(64), atol=1e-9)


def test_a_class_the_worker_cannot_import_is_not_a_failure_of_the_worker() -> None:
    """Regression: with the request's pickling made a quiet step, the fingerprints of a class
    defined in a test (not importable by the worker) raised inside the request, where every
    WorkerUnavailable kills the worker and counts as one of its failures: after three, every
    JitGraph of the process compiled in-process."""
    from test_jitgraph_background import Table

    from oscen.jit import CraneliftJit, worker
    from oscen.jit.frontend.typing import settled

    shared = worker.shared()
    if not shared.wait_ready(60.0):
        pytest.skip("no compile worker here")
    graph = Graph(SR)
    table = graph.add_node(Table(np.zeros(4)))
    graph.set_output(table.output)
    failures, pid = shared._failures, shared.pid
    for _ in range(4):
        with pytest.raises(worker.WorkerUnavailable) as refused:
            shared.compile(settled(graph.to_ir()), CraneliftJit(), quiet=lambda step: step())
        assert not refused.value.failed
    assert shared._failures == failures and shared.pid == pid and shared.alive


def two_layouts() -> tuple[GraphState, GraphState]:
    graph, mix = voices(4)
    old = GraphState.from_graph(graph)
    tail = graph.add_node(Gain(0.5))
    graph.connect(mix.output, tail.input)
    graph.set_output(tail.output)
    return old, GraphState.from_graph(graph)


def test_copy_plans_are_worked_out_once_per_pair_of_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = two_layouts()
    calls: list[tuple[int, int]] = []
    work = state_mod._pair_plan

    def counted(t: Any, st: Any) -> Any:
        calls.append((id(t), id(st)))
        return work(t, st)

    monkeypatch.setattr(state_mod, "_pair_plan", counted)
    first = new.copy_plan(old)
    once = len(calls)
    assert 0 < once <= 4  # the oscillators', the lowpasses', the mixer's templates (not 4 voices each)
    second = new.copy_plan(old)
    assert len(calls) == once, "the second plan between the same layouts worked the pairs out again"
    assert first.runs == second.runs and first.partial == second.partial == frozenset()
    t = new.layout.nodes[1].__dict__["_template"]
    st = old.layout.nodes[1].__dict__["_template"]
    assert state_mod.pair_plan(t, st) is state_mod.pair_plan(t, st)


def test_a_swap_copies_many_runs_by_one_gather_of_words_with_the_same_bytes() -> None:
    """64 voices left 129 runs (one per node: their output buffers lie between them), copied by
    one numpy slice each on the audio thread at every swap (110-200 us); the plan now carries the
    words' indices and copies them by one gather. The bytes must be those of the run-by-run copy."""
    import dataclasses

    old, new = two_layouts()
    plan = new.copy_plan(old)
    assert len(plan.runs) >= state_mod.WORD_INDEX_RUNS and plan.words is not None
    ends = [(d + size, s + size) for d, s, size in plan.runs]
    assert all(plan.runs[i + 1][0] >= ends[i][0] for i in range(len(ends) - 1)), (
        "runs not in destination order"
    )
    assert not any(ends[i] == plan.runs[i + 1][:2] for i in range(len(ends) - 1)), (
        "continuing runs not merged"
    )
    old.bytes[:] = np.random.default_rng(7).integers(0, 256, old.bytes.size, dtype=np.uint8)
    before = new.bytes.copy()
    new.copy_nodes_from(old, plan)
    gathered = new.bytes.copy()
    new.bytes[:] = before
    new.copy_nodes_from(old, dataclasses.replace(plan, words=None))
    assert np.array_equal(gathered, new.bytes)
    assert not np.array_equal(gathered, before)  # (something was copied at all)


def test_copy_runs_merge_in_destination_order_and_keep_overlaps_in_their_order() -> None:
    lanes = [[0 + 8 * v, 1000 + 8 * v, 8] for v in (2, 0, 3, 1)]  # one field of four voices, any order
    assert state_mod._merged(lanes) == ((0, 1000, 32),)
    apart = [[0, 1000, 8], [8, 2000, 8]]  # adjacent destinations, sources apart: two runs
    assert state_mod._merged(apart) == ((0, 1000, 8), (8, 2000, 8))
    overlap = [[8, 100, 16], [0, 200, 16]]  # the second overwrites part of the first: order kept
    assert state_mod._merged(overlap) == ((8, 100, 16), (0, 200, 16))
    words = state_mod._word_indices(tuple((8 * k * 3, 8 * k * 2, 16) for k in range(8)))
    assert words is not None
    to, of = words
    assert to.tolist()[:4] == [0, 1, 3, 4] and of.tolist()[:4] == [0, 1, 2, 3] and len(to) == len(of) == 16
    assert state_mod._word_indices(((0, 0, 8),) * 3) is None  # few runs: slice copies
    assert state_mod._word_indices(tuple((16 * k, 16 * k + 4, 8) for k in range(8))) is None  # unaligned


def test_a_node_with_a_longer_array_is_partly_covered() -> None:
    from test_jitgraph_background import Table

    graph = Graph(SR)
    table = graph.add_node(Table(np.zeros(4)))
    graph.set_output(table.output)
    old = GraphState.from_graph(graph)
    table.node.table = np.arange(8, dtype=float)
    gain = graph.add_node(Gain(1.0))
    graph.connect(table.output, gain.input)
    graph.set_output(gain.output)
    new = GraphState.from_graph(graph)
    plan = new.copy_plan(old)
    assert plan.partial == frozenset({table.id}) and plan.fresh == frozenset({gain.id})


def test_state_carries_over_across_swaps_as_the_interpreter_plays(live: Callable[..., JitGraph]) -> None:
    graph, mix = voices(4)
    reference, ref_mix = voices(4)
    jit = live(graph, tiered=True)
    blocks = Blocks(jit, inside=0.0, between=0.002)
    assert jit.wait_compiled(TIMEOUT), repr(jit.last_error)
    tail = ref_tail = None
    for _ in range(6):
        tail = edit(jit, mix, tail)
        ref_tail = edit(reference, ref_mix, ref_tail)  # type: ignore[arg-type]
        assert jit.wait_compiled(TIMEOUT), repr(jit.last_error)
        np.testing.assert_allclose(jit.process_block(BLOCK), reference.process_block(BLOCK), atol=1e-9)
        assert jit.mode == "compiled"
        # a few live blocks between: the replaced states are freed meanwhile
        version = graph.version
        played = blocks.played
        blocks.play(lambda: jit.compiled_version == version and not jit._worker.retired)  # noqa: B023
        for _ in range(blocks.played - played):  # the reference plays as many samples
            reference.process_block(BLOCK)
        for _ in range(2):
            np.testing.assert_allclose(jit.process_block(BLOCK), reference.process_block(BLOCK), atol=1e-9)
