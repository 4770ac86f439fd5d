"""The live layer keeps its promises under faults, threads, edits and time (issue 9, items 1-7, 11-13,
16, 17): nothing hangs, nothing leaks, nothing is lost, no edit is reverted.

Anything that could hang or abort the process on a broken engine (an endless loop replayed in the
interpreter, two threads in one wasmtime store) runs in a subprocess under a timeout, so that the
failure is a test failure, not a stuck or killed pytest.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from oscen.envelopes import AdsrEnvelope
from oscen.gain import Gain
from oscen.graph import Graph, GraphError, Node, NodeHandle, StreamInput, StreamOutput, ValueInput
from oscen.io.render import render
from oscen.jit import CraneliftJit, GraphState, JitError, JitFallbackWarning, JitGraph, NodeFault
from oscen.jit import engine as jit_engine
from oscen.oscillators import Oscillator

SR = 44100.0
BLOCK = 256
COMPILE_TIMEOUT = 60.0
"""Generous: the suite runs on two workers of a two-core machine."""
SUBPROCESS_TIMEOUT = 120.0
"""A subprocess that has not finished by then hangs (each needs a few seconds: import, compile)."""
ROOT = Path(__file__).resolve().parent.parent

NODES = '''
from oscen.graph import Node, StreamOutput, ValueInput


class Spin(Node):
    """Loops for as long as ``spin`` is set: an endless loop on demand."""

    spin = ValueInput(0.0)
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        while self.spin > 0.5:
            pass
        self.output = 0.25
'''


# ------------------------------------------------------------------------------------------ helpers
@pytest.fixture
def jits() -> Iterator[Callable[..., JitGraph]]:
    made: list[JitGraph] = []

    def make(graph: Graph, **options: object) -> JitGraph:
        jit = JitGraph(graph, **options)  # type: ignore[arg-type]
        made.append(jit)
        return jit

    yield make
    for jit in made:
        jit.close()
        if jit._thread is not None:
            jit._thread.join(timeout=COMPILE_TIMEOUT)


def run_script(
    tmp_path: Path, body: str, *args: str, setup: str = "", env: dict[str, str] | None = None
) -> str:
    """Run ``setup`` and ``body`` as a script next to a module ``spin_nodes`` (node classes need a
    source file for the JIT); fail if it hangs or does not exit 0; returns its stdout."""
    (tmp_path / "spin_nodes.py").write_text(NODES)
    script = tmp_path / "script.py"
    script.write_text(setup + textwrap.dedent(body))
    try:
        done = subprocess.run(
            [sys.executable, str(script), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", **(env or {})},
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung: still running after {SUBPROCESS_TIMEOUT:g} s; output so far: {exc.stdout!r}")
    assert done.returncode == 0, f"exit code {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    return done.stdout


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def oscen_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "oscen-jit")


# ------------------------------------------------------------------------ 1. endless loops end
SPIN_SETUP = """
import time
import numpy as np
from oscen.graph import Graph
from oscen.jit import CraneliftJit, GraphState, JitGraph, NodeTimeout
from spin_nodes import Spin

graph = Graph(44100.0)
node = graph.add_node(Spin(), "spinner")
"""


def test_an_endless_loop_ends_with_a_named_timeout_through_graphstate_and_jitgraph(tmp_path: Path) -> None:
    """The issue's reproducer: compiled code times out, and nothing replays the block in the
    interpreter (which has no time limit). GraphState/CompiledGraph and JitGraph (foreground and
    background compiles) each raise NodeTimeout naming the node and its file:line within the
    timeout plus one block; after the loop's condition is cleared, the graph plays on."""
    out = run_script(
        tmp_path,
        setup=SPIN_SETUP,
        body="""
        jit = CraneliftJit(timeout=0.2)
        compiled = jit.compile(graph.to_ir())
        state = GraphState.from_graph(graph, jit.max_block)
        compiled.process_block(state, 16)
        state.set_value(node.spin, 1.0)
        t0 = time.perf_counter()
        try:
            compiled.process_block(state, 16)
        except NodeTimeout as exc:
            assert "spinner" in str(exc) and "spin_nodes.py:" in str(exc), exc
            assert time.perf_counter() - t0 < 5.0
        else:
            raise AssertionError("no NodeTimeout from CompiledGraph")
        for background in (False, True):
            live = JitGraph(graph, jit=CraneliftJit(timeout=0.2), background=background)
            assert live.wait_compiled(60.0)
            live.set_value(node.spin, 0.0)
            live.process_block(16)
            live.set_value(node.spin, 1.0)
            for attempt in range(2):  # still protected the second time: no interpreter replay
                t0 = time.perf_counter()
                try:
                    live.process_block(16)
                except NodeTimeout as exc:
                    assert "spinner" in str(exc) and "spin_nodes.py:" in str(exc), exc
                    assert live.last_error is exc
                else:
                    raise AssertionError("no NodeTimeout from JitGraph")
                assert time.perf_counter() - t0 < 5.0
            live.set_value(node.spin, 0.0)
            assert np.all(live.process_block(16) == 0.25)
            live.close()
        print("ok")
        """,
    )
    assert out.strip().endswith("ok")


def test_a_player_survives_an_endless_loop_and_stops(tmp_path: Path) -> None:
    """Under a Player the stuck block ends with the NodeTimeout reported as the player's error,
    playback stops cleanly and ``Player.stop()`` returns."""
    out = run_script(
        tmp_path,
        setup=SPIN_SETUP,
        body="""
        import functools, math
        from oscen.io.realtime import FakeOutputStream, Player

        live = JitGraph(graph, jit=CraneliftJit(timeout=0.2))
        assert live.wait_compiled(60.0)
        player = Player(live, 256, stream_factory=functools.partial(FakeOutputStream, speed=math.inf))
        player.start()
        time.sleep(0.05)
        live.set_value(node.spin, 1.0)
        assert player.wait(timeout=20.0), "the player did not report the fault"
        t0 = time.perf_counter()
        player.stop()
        assert time.perf_counter() - t0 < 5.0
        assert isinstance(player.error, NodeTimeout) and "spinner" in str(player.error), player.error
        live.close()
        print("ok")
        """,
    )
    assert out.strip().endswith("ok")


CLI_PATCH = """
from oscen.graph import Graph
from spin_nodes import Spin


def patch(sample_rate):
    graph = Graph(sample_rate)
    node = graph.add_node(Spin(), "spinner")
    graph.set_value(node.spin, 1.0)
    return graph
"""


@pytest.mark.parametrize("command", ["render", "play"])
def test_the_command_line_ends_an_endless_loop_with_a_clear_error(tmp_path: Path, command: str) -> None:
    """``oscen render`` and ``oscen play`` of a patch stuck in a loop exit non-zero, naming the node,
    instead of falling back to the interpreter and hanging (the JIT's default timeout is 2 s)."""
    (tmp_path / "stuck.py").write_text(CLI_PATCH)
    args = ["--seconds", "1"]
    if command == "render":
        args += ["--out", str(tmp_path / "stuck.wav")]
    out = run_script(
        tmp_path,
        f"""
        import sys
        from oscen.cli import main
        code = main([{command!r}, "stuck.py", *sys.argv[1:]])
        print("exit", code)
        """,
        *args,
        env={"OSCEN_FAKE_AUDIO": "fast"},
    )
    assert "exit 0" not in out and "exit " in out, out
    assert not (tmp_path / "stuck.wav").exists()


# ------------------------------------------------------------------------ 2. the watchdog survives
def test_the_watchdog_survives_its_own_errors_and_concurrent_binds(tmp_path: Path) -> None:
    """A binding the watchdog cannot read (its error) and states bound from four threads while it
    runs (the WeakSet changed size under it): the watchdog lives on and still ends a loop."""
    out = run_script(
        tmp_path,
        setup=SPIN_SETUP,
        body="""
        import threading
        from oscen.jit import engine

        class Broken:
            @property
            def started(self):
                raise RuntimeError("a binding the watchdog cannot read")

        broken = Broken()
        jit = CraneliftJit(timeout=0.2)
        compiled = jit.compile(graph.to_ir())
        compiled.process_block(GraphState.from_graph(graph, jit.max_block), 1)  # the watchdog runs
        engine.watch(broken)
        time.sleep(0.1)
        stop = threading.Event()

        def binder():
            while not stop.is_set():
                compiled.bind(GraphState.from_graph(graph, jit.max_block))

        threads = [threading.Thread(target=binder) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        assert any(t.name == "oscen-watchdog" for t in threading.enumerate())
        assert engine.watchdog_errors, "the broken binding was never looked at"
        state = GraphState.from_graph(graph, jit.max_block)
        state.set_value(node.spin, 1.0)
        try:
            compiled.process_block(state, 16)
        except NodeTimeout:
            print("ok")
        """,
    )
    assert out.strip().endswith("ok")


def test_the_math_library_compiles_first_in_a_fresh_process(tmp_path: Path) -> None:
    """engine.math_module() before anything made the engine: it took the engine's lock, then asked
    engine() for the engine inside it, which takes the same lock (the process hung)."""
    out = run_script(
        tmp_path,
        body="""
        from oscen.jit import engine

        assert engine._engine is None
        module = engine.math_module()
        assert engine.math_module() is module and engine._engine is not None
        print("ok")
        """,
    )
    assert out.strip() == "ok"


# ------------------------------------------------------------------------ 3. the compiler thread survives
class RecursingJit(CraneliftJit):
    """Fails its first compile with ``error`` (as deep code made the frontend recurse)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error: BaseException | None = error

    def compile(self, ir):  # type: ignore[no-untyped-def]
        error, self.error = self.error, None
        if error is not None:
            raise error
        return super().compile(ir)


class Unexpected(BaseException):
    """Not an Exception: the compiler thread must survive it too."""


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize("error", [RecursionError("maximum recursion depth exceeded"), Unexpected("boom")])
def test_the_compiler_thread_survives_any_error(
    jits: Callable[..., JitGraph], error: BaseException, background: bool
) -> None:
    """Any error of the compiler (deep code made it recurse; anything unexpected) is reported
    once, stored, and later edits still compile (it silently killed the compiler thread)."""
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        live = jits(graph, jit=RecursingJit(error), background=background)
        assert not live.wait_compiled(timeout=COMPILE_TIMEOUT)
        fallbacks = [w for w in caught if issubclass(w.category, JitFallbackWarning)]
    assert len(fallbacks) == 1 and type(error).__name__ in str(fallbacks[0].message)
    assert isinstance(live.last_error, JitError) and live.last_error.__cause__ is error
    assert not background or (live._thread is not None and live._thread.is_alive())
    gain = live.add_node(Gain(0.5))  # a later edit compiles
    live.connect(osc.output, gain.input)
    assert live.wait_compiled(timeout=COMPILE_TIMEOUT), live.last_error
    live.process_block(BLOCK)
    assert live.mode == "compiled"


# ------------------------------------------------------------------------ 4. one processing thread
def test_two_threads_processing_one_graph_get_a_clear_error(tmp_path: Path) -> None:
    """JitGraph and CompiledGraph on a GraphState: the second thread is refused with a GraphError,
    the first goes on; never an abort (wasmtime aborts when two threads enter one store)."""
    out = run_script(
        tmp_path,
        """
        import threading, time
        from oscen.graph import Graph, GraphError
        from oscen.jit import CraneliftJit, GraphState, JitGraph
        from oscen.oscillators import Oscillator

        graph = Graph(44100.0)
        for _ in range(8):
            graph.add_node(Oscillator.saw(440.0, 0.1))
        jit = CraneliftJit()
        compiled = jit.compile(graph.to_ir())
        state = GraphState.from_graph(graph, jit.max_block)
        live = JitGraph(graph, background=False)
        assert live.wait_compiled(60.0)
        engines = {
            "CompiledGraph": lambda: compiled.process_block(state, 200_000),
            "JitGraph": lambda: live.process_block(200_000),
        }
        for name, process in engines.items():
            refused, other = [], []
            stop = threading.Event()

            def worker():
                while not stop.is_set():
                    try:
                        process()
                    except GraphError as exc:
                        assert "concurrently" in str(exc), exc
                        refused.append(exc)
                    except BaseException as exc:
                        other.append(exc)

            threads = [threading.Thread(target=worker) for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(1.5)
            stop.set()
            for t in threads:
                t.join()
            assert not other, other
            assert refused, f"{name}: no thread was refused"
            process()  # still usable
        print("ok")
        """,
    )
    assert out.strip().endswith("ok")


# ------------------------------------------------------------------------ 5. no leak per swap
def test_replaced_states_are_freed_with_the_collector_frozen(jits: Callable[..., JitGraph]) -> None:
    """gc.freeze() (JitGraph's default) made every replaced GraphState immortal: the state and its
    binding formed a cycle. Now nothing per compile is cyclic: old states die by reference
    counting, and memory per swap stays small (it was ~213 KB for 3 nodes)."""
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5))
    live = jits(graph, background=False, freeze_gc=True)
    states: list[weakref.ref[GraphState]] = []
    extra: list[NodeHandle] = []

    def swap(i: int) -> None:
        if extra:
            live.remove_node(extra.pop())
        else:
            gain = live.add_node(Gain(0.5))
            live.connect(osc.output, gain.input)
            extra.append(gain)
        live.process_block(16)
        assert live._current is not None and live._current.version == graph.version
        states.append(weakref.ref(live._current.state))

    for i in range(20):  # warm up: caches, the first freeze
        swap(i)
    before = rss_bytes()
    swaps = 200
    for i in range(swaps):
        swap(i)
    grown = rss_bytes() - before
    alive = sum(1 for ref in states if ref() is not None)
    assert alive <= 2, f"{alive} GraphStates of {len(states)} are still alive"
    assert grown / swaps < 40_000, f"{grown / swaps:.0f} bytes per swap"


def test_a_state_switched_between_two_kernels_reuses_their_instances() -> None:
    """One state alternately run by two kernels of the same IR: one wasm instance per kernel in
    the state's store (a new one at each bind grew the store by ~640 KB per switch), and the state
    carries on exactly as with one kernel."""
    graph = Graph(SR)
    graph.add_node(Oscillator.saw(220.0, 0.3))
    jit = CraneliftJit()
    ir = graph.to_ir()
    a, b = jit.compile(ir), jit.compile(ir)
    state = GraphState.from_graph(graph, jit.max_block, ir)
    reference = GraphState.from_graph(graph, jit.max_block, ir)
    for k in range(10):
        (a if k % 2 else b).process_block(state, 32)
    before = rss_bytes()
    got, want = [], []
    for k in range(200):
        got.append((a if k % 2 else b).process_block(state, 32))
    for _ in range(210):
        want.append(a.process_block(reference, 32))
    grown = rss_bytes() - before
    assert len(state._bindings) == 2
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want[10:]))
    assert grown < 20_000_000, f"RSS grew {grown / 1e6:.1f} MB over 200 switches"


# ------------------------------------------------------------------------ 7. dropping is safe
def test_dropped_jitgraphs_stop_their_threads() -> None:
    """200 JitGraphs dropped without close(): their compiler threads end (each held its JitGraph
    strongly before), and a dropped compiled one frees its graph."""
    baseline = oscen_threads()
    for _ in range(200):
        JitGraph(Graph(SR))
    graph = Graph(SR)
    graph.add_node(Oscillator.sine(440.0, 0.5))
    # Not frozen: gc.freeze keeps the (cyclic) graph until the last freezing JitGraph goes, and
    # other tests in this process may keep one.
    live = JitGraph(graph, freeze_gc=False)
    assert live.wait_compiled(timeout=COMPILE_TIMEOUT)
    live.process_block(BLOCK)
    graph_ref = weakref.ref(graph)
    del live, graph
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        gc.collect()
        if oscen_threads() <= baseline and graph_ref() is None:
            break
        time.sleep(0.05)
    assert oscen_threads() <= baseline, f"{oscen_threads() - baseline} compiler threads left"
    assert graph_ref() is None, "the dropped JitGraph's graph is still alive"


def test_a_jitgraph_is_a_context_manager() -> None:
    graph = Graph(SR)
    graph.add_node(Oscillator.sine(440.0, 0.5))
    with JitGraph(graph) as live:
        assert live.wait_compiled(timeout=COMPILE_TIMEOUT)
        thread = live._thread
    assert live.closed
    assert thread is not None
    thread.join(timeout=COMPILE_TIMEOUT)
    assert not thread.is_alive()


# ------------------------------------------------------------------------ 11. deterministic renders
def _edit_script(engine: JitGraph | Graph) -> np.ndarray:
    """Five topology edits, each followed by 0.1 s of render: what an offline script does."""
    osc = engine.add_node(Oscillator.saw(220.0, 0.3), "osc")
    out = [render(engine, 0.1, block_size=BLOCK)]
    gain = engine.add_node(Gain(0.5), "gain")
    engine.connect(osc.output, gain.input)
    engine.set_output(gain.output)
    out.append(render(engine, 0.1, block_size=BLOCK))
    lfo = engine.add_node(Oscillator.sine(3.0, 100.0), "lfo")
    engine.connect(lfo.output, osc.frequency)
    out.append(render(engine, 0.1, block_size=BLOCK))
    flip = engine.add_node(Gain(-2.0), "flip")
    engine.connect(gain.output, flip.input)
    engine.set_output(flip.output)
    out.append(render(engine, 0.1, block_size=BLOCK))
    engine.remove_node(lfo)
    engine.set_value(osc.frequency, 330.0, ramp=0.05)
    out.append(render(engine, 0.1, block_size=BLOCK))
    engine.set_output(gain.output)  # an output node can't be removed while the output uses it
    engine.remove_node(flip)
    out.append(render(engine, 0.1, block_size=BLOCK))
    return np.concatenate(out)


def test_offline_renders_through_jitgraph_follow_every_edit(jits: Callable[..., JitGraph]) -> None:
    """A script of edits and renders through a background-compiling JitGraph sounds like the
    interpreter at every block, every time (code made for an older topology once played after
    newer edits, or was swapped in over them)."""
    reference = _edit_script(Graph(SR))  # type: ignore[arg-type]
    for _ in range(10):
        live = jits(Graph(SR))
        got = _edit_script(live)  # type: ignore[arg-type]
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-9)
    assert live.wait_compiled(timeout=COMPILE_TIMEOUT)
    live.process_block(BLOCK)
    assert live.mode == "compiled"


def _midi_script(tmp_path: Path, engine: JitGraph | Graph, synth: NodeHandle) -> np.ndarray:
    """A MIDI render, an edit (a gain after the synth), and the next part of the file."""
    import mido

    from oscen.midi import render_midi

    mid = mido.MidiFile(type=0, ticks_per_beat=96)
    track = mido.MidiTrack()
    for k, note in enumerate((60, 64, 67, 72)):
        track.append(mido.Message("note_on", note=note, velocity=100, time=0 if k == 0 else 24))
        track.append(mido.Message("note_off", note=note, time=24))
    mid.tracks.append(track)
    path = tmp_path / "notes.mid"
    mid.save(path)
    first = render_midi(engine, synth.midi, path, block_size=BLOCK, seconds=0.3)
    gain = engine.add_node(Gain(0.5), "gain")
    engine.connect(synth.output, gain.input)
    engine.set_output(gain.output)
    second = render_midi(engine, synth.midi, path, block_size=BLOCK, seconds=0.3)
    return np.concatenate([first, second])


def test_midi_renders_through_jitgraph_follow_every_edit(
    tmp_path: Path, jits: Callable[..., JitGraph]
) -> None:
    """``render_midi`` through a background-compiling JitGraph, not waited for, with an edit
    between two renders: the interpreter's output, block for block."""
    from midi_support import envelope_voice

    from oscen.midi import poly_voices

    def synth_graph() -> tuple[Graph, NodeHandle]:
        graph = Graph(SR)
        synth = poly_voices(graph, envelope_voice, 2)
        graph.set_output(synth.output)
        return graph, synth

    graph, synth = synth_graph()
    want = _midi_script(tmp_path, graph, synth)
    assert np.abs(want).max() > 0.1
    for _ in range(3):
        graph, synth = synth_graph()
        got = _midi_script(tmp_path, jits(graph), synth)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


# ------------------------------------------------------------------------ 12. a removed modulator
def _modulated() -> tuple[Graph, NodeHandle, NodeHandle]:
    graph = Graph(SR)
    lfo = graph.add_node(Oscillator.sine(2.0, 100.0), "lfo")
    osc = graph.add_node(Oscillator.saw(440.0, 0.3), "osc")
    graph.connect(lfo.output, osc.frequency)
    graph.set_output(osc.output)
    return graph, lfo, osc


def _remove_and_ramp(engine: JitGraph | Graph, lfo: NodeHandle, osc: NodeHandle) -> tuple[np.ndarray, float]:
    out = [engine.process_block(BLOCK) for _ in range(4)]
    engine.remove_node(lfo)
    if isinstance(engine, JitGraph):
        assert engine.wait_compiled(timeout=COMPILE_TIMEOUT)
    engine.set_value(osc.frequency, 600.0, ramp=0.05)
    out += [engine.process_block(BLOCK) for _ in range(4)]
    return np.concatenate(out), engine.get_value(osc.frequency)


@pytest.mark.parametrize("background", [False, True])
def test_removing_a_modulator_then_ramping_starts_from_what_it_sent(
    jits: Callable[..., JitGraph], background: bool
) -> None:
    """The ramp starts where the modulator left the input (the compiled code reads a connected
    input from its source and left the parameter slot stale: 514.3 instead of 294.0)."""
    graph, lfo, osc = _modulated()
    want, want_value = _remove_and_ramp(graph, lfo, osc)
    graph, lfo, osc = _modulated()
    live = jits(graph, background=background)
    assert live.wait_compiled(timeout=COMPILE_TIMEOUT)
    got, got_value = _remove_and_ramp(live, lfo, osc)
    assert live.mode == "compiled"
    assert got_value == pytest.approx(want_value, abs=1e-9)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_a_connected_value_input_reads_what_its_source_sent(jits: Callable[..., JitGraph]) -> None:
    graph, lfo, osc = _modulated()
    reference, _, ref_osc = _modulated()
    live = jits(graph, background=False)
    assert live.wait_compiled(timeout=COMPILE_TIMEOUT)
    live.process_block(300)
    reference.process_block(300)
    assert live.get_value(osc.frequency) == pytest.approx(reference.get_value(ref_osc.frequency), abs=1e-9)


# ------------------------------------------------------------------------ 13. events survive faults
class Divider(Node):
    """0.1 / d: a ZeroDivisionError on demand, in both engines."""

    d = ValueInput(1.0)
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = 0.1 / self.d


class Follow(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = self.input


def _faulting(graph: Graph) -> tuple[NodeHandle, NodeHandle]:
    env = graph.add_node(AdsrEnvelope(0.002, 0.01, 0.5, 0.005), "env")  # takes its event, then
    div = graph.add_node(Divider(), "divider")  # this faults in the same sample
    graph.set_output(div.output, env.output)
    return div, env


def _fault_script(
    engine: JitGraph | Graph, div: NodeHandle, env: NodeHandle
) -> tuple[np.ndarray, BaseException]:
    out = [engine.process_block(BLOCK)]
    engine.set_value(div.d, 0.0)
    engine.queue_event(env.gate, 0, 1.0)  # due in the block that faults
    with pytest.raises(ZeroDivisionError) as raised:
        engine.process_block(BLOCK)
    engine.set_value(div.d, 1.0)
    out += [engine.process_block(BLOCK) for _ in range(3)]
    return np.concatenate(out, axis=-1), raised.value


def test_a_compiled_fault_keeps_the_events_and_names_the_node(jits: Callable[..., JitGraph]) -> None:
    """The faulting block's events wait again (the envelope fires after recovery, as interpreted),
    and the error raised and stored names the node and line (it was the bare interpreter
    exception)."""
    graph = Graph(SR)
    div, env = _faulting(graph)
    want, _ = _fault_script(graph, div, env)
    graph = Graph(SR)
    div, env = _faulting(graph)
    live = jits(graph, background=False)
    assert live.wait_compiled(timeout=COMPILE_TIMEOUT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JitFallbackWarning)
        got, error = _fault_script(live, div, env)
    assert np.abs(got[1]).max() > 0.4, "the envelope never fired"
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert isinstance(error, NodeFault) and "divider" in str(error), error
    assert "test_live_hardening.py:" in str(error), error
    assert live.last_error is error
    live.set_value(div.d, 0.0)  # now interpreted: its faults name the node and line too
    with pytest.raises(ZeroDivisionError) as raised:
        live.process_block(BLOCK)
    assert isinstance(raised.value, NodeFault) and "divider" in str(raised.value), raised.value
    assert "test_live_hardening.py:" in str(raised.value) and live.last_error is raised.value


def test_graphstate_faults_rewind_the_events_of_the_abandoned_block() -> None:
    """The envelope runs first and takes its event at sample 0, then the divider faults in the
    same sample: the abandoned block's event waits again, at its frame (it was consumed)."""
    graph = Graph(SR)
    env = graph.add_node(AdsrEnvelope(0.002, 0.01, 0.5, 0.005), "env")
    div = graph.add_node(Divider(), "divider")
    graph.set_output(env.output, div.output)
    jit = CraneliftJit()
    compiled = jit.compile(graph.to_ir())
    state = GraphState.from_graph(graph, jit.max_block)
    compiled.process_block(state, BLOCK)
    state.set_value(div.d, 0.0)
    state.queue_event(env.gate, 0, 1.0)
    frame = state.frame
    with pytest.raises(ZeroDivisionError):
        compiled.process_block(state, BLOCK)
    assert state.frame == frame
    assert state.pending_events(env.id, "gate") == [(frame, (1.0, 0.0, 0.0, 0.0))]
    state.set_value(div.d, 1.0)
    assert np.abs(compiled.process_block(state, BLOCK)[0]).max() > 0.4  # the envelope fired


# ------------------------------------------------------------------------ 16. edits after close
def test_edits_after_close_raise_and_an_edit_racing_close_is_heard(jits: Callable[..., JitGraph]) -> None:
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5))
    live = jits(graph)
    assert live.wait_compiled(timeout=COMPILE_TIMEOUT)
    live.process_block(BLOCK)
    gain = live.add_node(Gain(0.25))  # then closed before its compile is swapped in
    live.connect(osc.output, gain.input)
    live.set_output(gain.output)
    live.close()
    reference = Graph(SR)
    ref_osc = reference.add_node(Oscillator.sine(440.0, 0.5))
    ref_gain = reference.add_node(Gain(0.25))
    reference.connect(ref_osc.output, ref_gain.input)
    reference.set_output(ref_gain.output)
    reference.process_block(BLOCK)
    for process in (
        live.process_block,
        lambda n: (lambda o: (live.process_into(o), o[0])[1])(np.empty((1, n))),
    ):
        np.testing.assert_allclose(process(BLOCK), reference.process_block(BLOCK), rtol=0, atol=1e-9)
    with pytest.raises(GraphError, match="closed"):
        live.add_node(Gain(1.0))
    with pytest.raises(GraphError, match="closed"):
        live.disconnect(osc.output, gain.input)
    assert len(graph.nodes) == 2


# ------------------------------------------------------------------------ 17. swaps keep coming
def test_swaps_keep_coming_while_edits_outpace_compiles(jits: Callable[..., JitGraph]) -> None:
    """Edits every 10 ms on a 120-node chain, each replacing the newest node: every compile
    finishes after one of its nodes was removed, and was thrown away for that (starvation). Now
    each finished compile newer than what plays swaps in; when the edits stop, the newest topology
    plays compiled after one compile."""
    graph = Graph(SR)
    last = graph.add_node(Oscillator.saw(110.0, 0.2))
    for _ in range(120):
        node = graph.add_node(Gain(1.0))
        graph.connect(last.output, node.input)
        last = node
    graph.set_output(last.output)
    live = jits(graph)
    assert live.wait_compiled(timeout=COMPILE_TIMEOUT)
    stop = threading.Event()
    failures: list[BaseException] = []
    buffer = np.empty((1, BLOCK))

    def player() -> None:
        try:
            while not stop.is_set():
                live.process_into(buffer)
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    thread = threading.Thread(target=player)
    thread.start()
    swaps_before = live.swap_count
    tail: NodeHandle | None = None
    try:
        edits, started = 0, time.monotonic()
        # at least 150 edits; then on until 3 swaps came (or 30 s, on a very slow machine)
        while edits < 150 or (live.swap_count - swaps_before < 3 and time.monotonic() - started < 30.0):
            if tail is not None:
                live.remove_node(tail)
            tail = live.add_node(Follow())
            live.connect(last.output, tail.input)
            edits += 1
            time.sleep(0.01)
        during = live.swap_count - swaps_before
        assert live.wait_compiled(timeout=COMPILE_TIMEOUT)
        deadline = time.monotonic() + COMPILE_TIMEOUT
        while live.compiled_version != graph.version and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=COMPILE_TIMEOUT)
    assert not failures, failures
    assert during >= 2, f"only {during} swaps during {edits} edits"
    assert live.compiled_version == graph.version


# ------------------------------------------------------------------------ the watchdog module
def test_the_watchdog_thread_is_alive() -> None:
    """After everything above in this process: still watching."""
    jit_engine.engine()
    assert any(t.name == "oscen-watchdog" and t.is_alive() for t in threading.enumerate())


class _Uncompilable(Node):
    """Passes its input through, in Python the JIT refuses (a dict): the JitGraph plays it interpreted."""

    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        table = {"gain": 1.0}
        self.output = self.input * table["gain"]


def test_an_offline_block_after_an_edit_plays_the_edit_even_while_the_lock_is_held() -> None:
    """Offline, a block after an edit plays the topology in force: when the compiler (or any
    thread) holds the edit lock at that moment, the block waits for it instead of playing the
    plan of the older topology (seen under load: a connection made just before a render was not
    heard in its first block)."""

    def build(engine: Graph | JitGraph) -> tuple[NodeHandle, NodeHandle]:
        osc = engine.add_node(Oscillator.saw(220.0, 0.3), "osc")
        through = engine.add_node(_Uncompilable(), "through")
        engine.connect(osc.output, through.input)
        return osc, through

    reference = Graph(SR)
    osc, _ = build(reference)
    lfo = reference.add_node(Oscillator.sine(3.0, 100.0), "lfo")
    want = [reference.process_block(BLOCK)]
    reference.connect(lfo.output, osc.frequency)
    want.append(reference.process_block(BLOCK))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JitFallbackWarning)
        live = JitGraph(Graph(SR))
        try:
            osc, _ = build(live)
            lfo = live.add_node(Oscillator.sine(3.0, 100.0), "lfo")
            got = [live.process_block(BLOCK)]
            live.connect(lfo.output, osc.frequency)
            held = threading.Event()

            def hold() -> None:
                with live._edit_lock:
                    held.set()
                    time.sleep(0.2)

            holder = threading.Thread(target=hold)
            holder.start()
            assert held.wait(5.0)
            got.append(live.process_block(BLOCK))
            holder.join(5.0)
        finally:
            live.close()
            if live._thread is not None:  # its fallback warning lands inside this block
                live._thread.join(COMPILE_TIMEOUT)
    np.testing.assert_allclose(np.concatenate(got), np.concatenate(want), rtol=0, atol=1e-9)
