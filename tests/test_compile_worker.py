"""The compile worker process (oscen.jit.worker): JitGraph's background compiles of built-in nodes
run there, and nothing a worker does wrong may cost a live graph its sound or hang its thread.

What is checked, by behaviour (no timings):
- code the worker compiled plays the same samples, through swaps, as code compiled in-process
  (state carried over, edits and parameter changes kept);
- a worker killed mid-session: the next compile runs in-process, ``worker_error`` says why (once,
  with a JitWorkerWarning), and a later compile starts a new worker;
- a worker that stops answering: the compile gives up after its timeout and the process is gone;
- node classes defined outside oscen, or patched since import, compile in-process, quietly;
- the IR's chunked encoding gives back the same IR; ``shutdown()`` leaves no process behind.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph, Node, NodeHandle, StreamInput, StreamOutput
from oscen.jit import CraneliftJit, JitGraph, worker
from oscen.jit.frontend import settled
from oscen.jit.jitgraph import JitWorkerWarning
from oscen.oscillators import Oscillator

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the worker's pipes use select()")

SR = 44100.0
BLOCK = 64
TIMEOUT = 30.0
"""Generous bounds for waits (two-core machine, the suite's other workers compiling too)."""


def voices(n: int = 4) -> tuple[Graph, NodeHandle, NodeHandle]:
    """n sines, each through its own lowpass, into a Gain, then a tail Gain (the node edits replace)."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0 / n))
    for k in range(n):
        osc = graph.add_node(Oscillator.sine(220.0 * (k + 1), 0.5))
        filt = graph.add_node(IirLowpass(1500.0, 0.707))
        graph.connect(osc.output, filt.input)
        graph.connect(filt.output, mix.input)
    tail = graph.add_node(Gain(0.8))
    graph.connect(mix.output, tail.input)
    graph.set_output(tail.output)
    return graph, mix, tail


def settle(jit: JitGraph) -> None:
    assert jit.wait_compiled(timeout=TIMEOUT), f"no compiled code: {jit.last_error!r}"
    jit.process_block(0)
    assert jit.compiled_version == jit.graph.version


def replace_tail(jit: JitGraph, mix: NodeHandle, tail: NodeHandle, gain: float) -> NodeHandle:
    new = jit.add_node(Gain(gain))
    jit.connect(mix.output, new.input)
    jit.set_output(new.output)
    jit.remove_node(tail)
    return new


@pytest.fixture
def ready_worker() -> Iterator[worker.CompileWorker]:
    shared = worker.shared()
    assert shared.wait_ready(TIMEOUT), "the compile worker did not start"
    yield shared


def session(jit: JitGraph, mix: NodeHandle, tail: NodeHandle, edits: int) -> np.ndarray:
    """Blocks played around ``edits`` topology changes (each a new IR) and a parameter change."""
    out = [jit.process_block(BLOCK) for _ in range(3)]
    for k in range(edits):
        tail = replace_tail(jit, mix, tail, 0.5 + 0.1 * k)
        settle(jit)
        out += [jit.process_block(BLOCK) for _ in range(2)]
        jit.set_value(tail.gain, 0.3 + 0.05 * k)
        out += [jit.process_block(BLOCK) for _ in range(2)]
    return np.concatenate(out)


def test_worker_code_plays_like_in_process_code_through_swaps(ready_worker: worker.CompileWorker) -> None:
    results = []
    for use_worker in (True, False):
        graph, mix, tail = voices()
        with JitGraph(graph, compile_worker=use_worker) as jit:
            settle(jit)
            results.append(session(jit, mix, tail, edits=4))
            if use_worker:
                assert jit.worker_compiles >= 4, "the edits' compiles did not run in the worker"
                assert jit.worker_error is None
                assert jit._current is not None and "(func" in jit._current.compiled.wat
            else:
                assert jit.worker_compiles == 0
    np.testing.assert_array_equal(results[0], results[1])
    assert np.abs(results[0]).max() > 0.01


def test_the_worker_sends_the_binary_not_the_text_and_wat_prints_here(
    ready_worker: worker.CompileWorker,
) -> None:
    """Printing the text took the worker 1-5 ms per compile of 64 voices, for a reply nothing on
    the running side reads; it sends the binary, and ``wat`` prints the same text here when asked."""
    graph, _, _ = voices()
    ir = settled(graph.to_ir())
    jit = CraneliftJit(max_block=BLOCK)
    compiled, result = ready_worker.compile(ir, jit, "first")
    here = jit.compile_first(ir)
    assert not hasattr(result, "wat") and result.binary == here.program.binary
    assert compiled.program.binary == here.program.binary and compiled.program.text is None
    assert compiled.wat == here.program.wat and "(func" in compiled.wat
    assert compiled.stats.wat_bytes == len(here.program.wat)


def test_killed_worker_falls_back_in_process_and_restarts(ready_worker: worker.CompileWorker) -> None:
    graph, mix, tail = voices()
    with JitGraph(graph) as jit:
        settle(jit)
        pid = ready_worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT  # dead before the next compile asks (a race before)
        while ready_worker.alive and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not ready_worker.alive
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tail = replace_tail(jit, mix, tail, 0.7)
            settle(jit)  # compiled all the same, in this process
        assert jit.mode == "compiled"
        assert jit.worker_error is not None, "the worker's death was not reported"
        assert any(issubclass(w.category, JitWorkerWarning) for w in caught)
        before = jit.worker_compiles
        # a later compile starts a new worker (once it is ready, the compiles go there again)
        assert ready_worker.wait_ready(TIMEOUT)
        assert ready_worker.pid != pid
        tail = replace_tail(jit, mix, tail, 0.6)
        settle(jit)
        assert jit.worker_compiles == before + 2  # both tiers: the quick code, then the optimized


def test_unanswering_worker_times_out_and_is_stopped() -> None:
    own = worker.CompileWorker(compile_timeout=0.5)
    try:
        assert own.wait_ready(TIMEOUT)
        proc = own._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)  # alive, but never reads nor answers
        graph, _, _ = voices(2)
        ir = settled(graph.to_ir())
        started = time.perf_counter()
        with pytest.raises(worker.WorkerUnavailable) as info:
            own.compile(ir, CraneliftJit())
        assert info.value.failed
        assert time.perf_counter() - started < TIMEOUT
        assert proc.poll() is not None, "the stuck worker was not stopped"
        assert not own.alive
    finally:
        own.close()


class Doubler(Node):
    """A node class from outside oscen: the worker could not import it as it is here."""

    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = 2.0 * self.input


def test_user_node_classes_compile_in_process_quietly(ready_worker: worker.CompileWorker) -> None:
    graph, mix, tail = voices(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", JitWorkerWarning)
        with JitGraph(graph) as jit:
            settle(jit)
            double = jit.add_node(Doubler())
            jit.connect(mix.output, double.input)
            jit.set_output(double.output)
            settle(jit)
            before = jit.worker_compiles
            jit.remove_node(tail)
            settle(jit)
            assert jit.worker_compiles == before  # Doubler is still in the graph
            assert jit.worker_error is None


def test_a_patched_builtin_class_compiles_in_process(
    ready_worker: worker.CompileWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph, mix, tail = voices(2)
    with JitGraph(graph) as jit:
        settle(jit)
        before = worker.class_fingerprint(Gain)

        def process(self: Gain, sample_rate: float) -> None:
            self.output = self.input * self.gain * 0.5

        monkeypatch.setattr(Gain, "process", process)
        assert worker.class_fingerprint(Gain) != before
        with warnings.catch_warnings():
            warnings.simplefilter("error", JitWorkerWarning)
            count = jit.worker_compiles
            tail = replace_tail(jit, mix, tail, 1.0)
            settle(jit)
        assert jit.worker_compiles == count, "the worker compiled its own (unpatched) Gain"
        assert jit.worker_error is None
        # the patched code is what plays: the tail Gain(1.0) halves the mix
        out = jit.process_block(BLOCK)
        assert jit.mode == "compiled"
        assert np.abs(out).max() > 0.01
        assert jit.get_value(tail.output) == 0.5 * jit.get_value(mix.output)


def test_ir_encoding_round_trips() -> None:
    graph, _, _ = voices(3)
    ir = settled(graph.to_ir())
    back = worker.decode_ir(worker.encode_ir(ir))
    assert back.key() == ir.key()
    assert back.to_json() == ir.to_json()


def test_shutdown_leaves_no_process() -> None:
    own = worker.CompileWorker()
    assert own.wait_ready(TIMEOUT)
    proc = own._proc
    assert proc is not None and proc.poll() is None
    own.close()
    assert proc.poll() is not None
    assert not own.alive


def test_generated_classes_compile_in_process(ready_worker: worker.CompileWorker) -> None:
    from oscen.midi.voices import voice_allocator_class

    cls = voice_allocator_class(2)
    graph = Graph(SR)
    node = graph.add_node(cls())
    with pytest.raises(worker.WorkerUnavailable) as info:
        worker.fingerprints(settled(graph.to_ir()))
    assert not info.value.failed and cls.__module__ in str(info.value)
    graph.remove_node(node)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_does_not_use_the_parents_worker(ready_worker: worker.CompileWorker) -> None:
    pid = os.fork()
    if pid == 0:  # the child: only check, then leave at once (no cleanup of the parent's things)
        os._exit(0 if worker._shared is None and worker.shared() is not ready_worker else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert ready_worker.alive  # the parent's worker is untouched


def test_close_does_not_wait_long_for_a_busy_worker() -> None:
    own = worker.CompileWorker()
    try:
        assert own.wait_ready(TIMEOUT)
        proc = own._proc
        assert proc is not None
        assert own._lock.acquire(timeout=1.0)  # as a compile under way on another thread holds it
        try:
            own.close(timeout=0.2)
        finally:
            own._lock.release()
        assert proc.poll() is not None and not own.alive
    finally:
        own.close()


def test_a_request_larger_than_the_pipe_does_not_hang_on_a_reader_that_stopped() -> None:
    read, write = os.pipe()
    try:
        os.set_blocking(write, False)
        started = time.perf_counter()
        with pytest.raises(worker.WorkerUnavailable, match="did not take the request"):
            worker._write_all(write, bytes(1 << 20), time.perf_counter() + 0.3)
        assert time.perf_counter() - started < TIMEOUT
    finally:
        os.close(read)
        os.close(write)


def test_the_worker_is_on_by_default_only_on_posix_and_env_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OSCEN_COMPILE_WORKER", raising=False)
    monkeypatch.setattr(worker.os, "name", "posix")
    assert worker.enabled()
    monkeypatch.setenv("OSCEN_COMPILE_WORKER", "0")
    assert not worker.enabled()
    monkeypatch.delenv("OSCEN_COMPILE_WORKER")
    monkeypatch.setattr(worker.os, "name", "nt")  # select() cannot wait on Windows pipes
    assert not worker.enabled()


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_the_worker_compiles_on_one_thread_under_sched_batch() -> None:
    """The worker process leaves the audio thread a core (engine.PARALLEL_COMPILATION off before
    it makes an engine) and is preempted by it at once (SCHED_BATCH, at its nice value)."""
    import subprocess

    probe = (
        "import os, sys\n"
        "from oscen.jit import engine, worker\n"
        "def serve(inp, out):\n"
        "    print(engine.PARALLEL_COMPILATION, engine._engine is None, os.sched_getscheduler(0),\n"
        "          os.sched_getscheduler(0) == os.SCHED_BATCH, os.nice(0), file=sys.__stdout__, flush=True)\n"
        "worker._serve = serve\n"
        "worker.main(['3'])\n"
    )
    home = os.path.dirname(os.path.dirname(os.path.abspath(worker.__file__ + "/..")))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH", "")) if p),
    }
    got = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env, check=True
    ).stdout.split()
    parallel, no_engine_yet, _, batch, nice = got
    assert (parallel, no_engine_yet, batch) == ("False", "True", "True")
    assert int(nice) >= 3
