"""oscen itself behind the peers' :class:`~benchmarks.peers.base.PeerEngine` interface.

So that ``oscen bench`` times oscen exactly like SignalFlow, pyo, Faust, numba and the C baseline
(same ``prepare``/``render`` contract, same reference check), oscen comes in two flavours:

* ``OscenEngine(compiled=True)``, "oscen (compiled)": ``graph.to_ir()`` →
  ``CraneliftJit(max_block=block).compile(ir)`` → ``GraphState``; ``render`` calls
  ``compiled.process_into`` once, which runs the blocks of ``block_size`` samples inside the kernel
  (its ``render`` export, up to ``layout.RENDER_SAMPLES`` = 32,768 samples per call), as the
  peers run their block loops natively.
  ``prepare`` returns graph building + ``to_ir`` + compile + state creation: everything between
  "here is a patch" and "it can play", comparable to Faust's and numba's compile latency.
  Every ``render`` restarts from t = 0 by copying a snapshot of the state's linear memory back
  (all of a compiled graph's state lives there), like the C and numba peers, so any render
  can be checked against the reference and a MIDI-driven patch replays the same music.
* ``OscenEngine(compiled=False)``, "oscen (interpreted)": the reference interpreter,
  ``Graph.process_block`` block by block. It runs ~10x real time for the seed and well below
  real time for 64 voices, so benchmarks give it short renders (:data:`INTERPRETED_SECONDS`).
  Renders continue the stream (restarting would mean rebuilding the graph).

Patches: ``seed`` and ``voices64`` are built from the node library exactly as
:mod:`benchmarks.peers.reference` defines them (phase-0 sines, RBJ ``IirLowpass``, ``Gain``),
from the same constants, so :func:`benchmarks.peers.reference.check` applies. ``polysynth`` is
``examples/polysynth.py`` (16 voices, stereo, averaged to mono) playing ``examples/song.mid``
from its start at every render (compiled) or from where the stream is (interpreted); it has no
reference signal. The graph builders are public: ``bench_jit.py`` uses them for its own graphs.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

if __package__ in (None, ""):  # imported as a script's sibling: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.peers.base import NotPrepared, check_block_size
from benchmarks.peers.reference import (
    CUTOFF,
    PATCHES,
    SEED_AMP,
    SEED_FREQ,
    SEED_GAIN,
    VOICES,
    Q,
    num_samples,
    voice_frequencies,
)
from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Endpoint, Graph
from oscen.oscillators import Oscillator

REPO = Path(__file__).resolve().parents[1]
POLYSYNTH_FILE = REPO / "examples" / "polysynth.py"
SONG_FILE = REPO / "examples" / "song.mid"

OSCEN_PATCHES: tuple[str, ...] = (*PATCHES, "polysynth")
"""What this engine renders: the peers' two patches, and the polysynth example (oscen only)."""

INTERPRETED_SECONDS: dict[str, float] = {"seed": 1.0, "voices64": 0.25, "polysynth": 0.25}
"""Render lengths that keep the interpreter's runs to a few seconds each (benchmark default)."""


# ------------------------------------------------------------------------------------ patches
def seed_graph(sample_rate: float) -> Graph:
    """The ``seed`` patch: sine 440 Hz amp 0.5 (phase 0) → RBJ lowpass 1000 Hz Q 0.707 → gain 0.8."""
    graph = Graph(sample_rate)
    osc = graph.add_node(Oscillator.sine(SEED_FREQ, SEED_AMP), "osc")
    lowpass = graph.add_node(IirLowpass(CUTOFF, Q), "lowpass")
    gain = graph.add_node(Gain(SEED_GAIN), "gain")
    graph.connect(osc.output, lowpass.input)
    graph.connect(lowpass.output, gain.input)
    graph.set_output(gain.output)
    return graph


def voices64_graph(sample_rate: float) -> Graph:
    """The ``voices64`` patch: 64 × (sine 110·2^(k/12) Hz amp 1/64 → own RBJ lowpass), summed.

    The sum is a unity ``Gain``: a stream input adds all its sources, which is how oscen mixes.
    """
    return voices_graph(VOICES, sample_rate)


def voices_graph(voices: int, sample_rate: float = 44100.0) -> Graph:
    """The ``voices64`` shape at any size: ``voices`` × (sine → own RBJ lowpass), summed by one unity
    ``Gain`` (``2 voices + 1`` nodes). Voice k plays 110·2^((k mod 64)/12) Hz at amplitude
    1/voices; ``voices_graph(64)`` is the ``voices64`` patch."""
    if voices < 1:
        raise ValueError(f"voices_graph needs at least 1 voice, got {voices}")
    graph = Graph(sample_rate)
    mix = graph.add_node(Gain(1.0), "mix")
    freqs = voice_frequencies(VOICES)
    for k in range(voices):
        osc = graph.add_node(Oscillator.sine(float(freqs[k % VOICES]), 1.0 / voices), f"osc{k}")
        lowpass = graph.add_node(IirLowpass(CUTOFF, Q), f"lowpass{k}")
        graph.connect(osc.output, lowpass.input)
        graph.connect(lowpass.output, mix.input)
    graph.set_output(mix.output)
    return graph


def chain_graph(n_nodes: int, sample_rate: float = 44100.0) -> Graph:
    """``n_nodes`` in series: sine → lowpass → gain → lowpass → gain → … (compile-latency shape).

    A long dependency chain: every node reads the previous one's output in the same sample.
    """
    if n_nodes < 1:
        raise ValueError(f"chain_graph needs at least 1 node, got {n_nodes}")
    graph = Graph(sample_rate)
    prev = graph.add_node(Oscillator.sine(220.0, 0.5))
    for i in range(1, n_nodes):
        node = IirLowpass(CUTOFF + 10.0 * i, Q) if i % 2 else Gain(0.99)
        handle = graph.add_node(node)
        graph.connect(prev.output, handle.input)
        prev = handle
    graph.set_output(prev.output)
    return graph


def parallel_graph(n_nodes: int, sample_rate: float = 44100.0) -> Graph:
    """``n_nodes // 2`` independent sine → lowpass pairs summed into one unity ``Gain``.

    The other compile-latency shape: wide and shallow (``n_nodes // 2 * 2 + 1`` nodes in all).
    """
    pairs = max(1, n_nodes // 2)
    graph = Graph(sample_rate)
    mix = graph.add_node(Gain(1.0 / pairs))
    for k in range(pairs):
        osc = graph.add_node(Oscillator.sine(110.0 * 2.0 ** ((k % 48) / 12.0), 1.0))
        lowpass = graph.add_node(IirLowpass(CUTOFF, Q))
        graph.connect(osc.output, lowpass.input)
        graph.connect(lowpass.output, mix.input)
    graph.set_output(mix.output)
    return graph


_polysynth_module: ModuleType | None = None


def polysynth_module() -> ModuleType:
    """``examples/polysynth.py`` imported as a real module (the JIT reads node source with inspect)."""
    global _polysynth_module
    if _polysynth_module is None:
        if not POLYSYNTH_FILE.is_file():
            raise FileNotFoundError(f"the polysynth example is missing: {POLYSYNTH_FILE}")
        name = "oscen_bench_polysynth"
        spec = importlib.util.spec_from_file_location(name, POLYSYNTH_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _polysynth_module = module
    return _polysynth_module


def polysynth_graph(sample_rate: float, voices: int = 16) -> Graph:
    """The polysynth example with ``voices`` voices (its default is 16)."""
    return polysynth_module().patch(sample_rate, voices=voices)


def midi_input(graph: Graph) -> Endpoint:
    """The graph's MIDI input (first MidiParser), or an error if it has none."""
    from oscen.midi import find_midi_input

    endpoint = find_midi_input(graph)
    if endpoint is None:
        raise ValueError("the graph has no MidiParser to play MIDI into")
    return endpoint


def song_events(sample_rate: float) -> list[tuple[int, tuple[float, ...]]]:
    """``examples/song.mid`` as (frame from the song's start, MIDI event fields), in order."""
    from oscen.midi import midi_file_events

    return [(int(frame), tuple(fields)) for frame, fields in midi_file_events(SONG_FILE, sample_rate)]


def song_seconds() -> float:
    """Length of ``examples/song.mid`` plus the 2 s tail ``oscen render --midi`` adds."""
    from oscen.midi import midi_file_duration

    return float(midi_file_duration(SONG_FILE)) + 2.0


BUILDERS: dict[str, Callable[[float], Graph]] = {
    "seed": seed_graph,
    "voices64": voices64_graph,
    "polysynth": polysynth_graph,
}


def check_oscen_patch(patch: str) -> None:
    if patch not in BUILDERS:
        raise ValueError(f"unknown patch {patch!r}; expected one of {OSCEN_PATCHES}")


# ------------------------------------------------------------------------------------ engine
class OscenEngine:
    """oscen as a peer engine: compiled (Cranelift JIT) or interpreted. See the module docstring."""

    def __init__(self, compiled: bool = True, fuse: int | None = None) -> None:
        self.compiled = compiled
        self.fuse = fuse
        self.name = "oscen (compiled)" if compiled else "oscen (interpreted)"
        self.interpreted = not compiled  # the bench runner gives interpreted engines short renders
        self._graph: Graph | None = None
        self._patch = ""
        self._sample_rate = 44100.0
        self._block_size = 256
        self._channels = 1
        self._kernel: Any = None
        self._state: Any = None
        self._snapshot: np.ndarray | None = None
        self._events: list[tuple[int, tuple[float, ...]]] = []
        self._midi: Endpoint | None = None
        self.compile_stats: Any = None
        """The last compile's ``CompileStats`` (frontend/Cranelift split), compiled flavour only."""

    def available(self) -> str | None:
        if not self.compiled:
            return None
        try:
            import oscen.jit  # noqa: F401  (wasmtime must load)
        except Exception as exc:  # mid-edit or missing wasmtime: say why, never raise
            return f"the oscen JIT does not import ({type(exc).__name__}: {exc})"
        return None

    def version(self) -> str:
        import oscen

        if not self.compiled:
            return f"oscen {oscen.__version__} interpreter, Python {sys.version.split()[0]}"
        from importlib.metadata import version

        return f"oscen {oscen.__version__}, wasmtime {version('wasmtime')} (Cranelift)"

    def prepare(self, patch: str, sample_rate: float, block_size: int) -> float:
        check_oscen_patch(patch)
        check_block_size(block_size)
        self.close()
        start = time.perf_counter()
        graph = BUILDERS[patch](float(sample_rate))
        self.load(graph, block_size, midi=midi_input(graph) if patch == "polysynth" else None)
        elapsed = time.perf_counter() - start
        self._patch = patch
        if patch == "polysynth":  # reading the MIDI file is not compiling: outside the latency
            self._events = song_events(self._sample_rate)
        return elapsed

    def load(self, graph: Graph, block_size: int, midi: Endpoint | None = None) -> float:
        """Make ``graph`` (any graph, e.g. with events already queued) the one ``render`` plays.

        Compiles it (compiled flavour) or builds the interpreter's schedule (interpreted); returns
        the seconds that took. Events queued on the graph before this call play from its first
        sample, in both flavours (the compiled state loads them, and its snapshot keeps them for
        every restart). ``midi`` is where ``render`` queues the song's events (the ``polysynth``
        patch); None plays no MIDI file.
        """
        check_block_size(block_size)
        self.close()
        start = time.perf_counter()
        self._patch = "custom"
        self._channels = len(graph.outputs) if graph.outputs else 1
        self._sample_rate, self._block_size = float(graph.sample_rate), int(block_size)
        self._midi = midi
        if self.compiled:
            from oscen.jit import CraneliftJit, GraphState

            ir = graph.to_ir()
            jit = (
                CraneliftJit(max_block=block_size)
                if self.fuse is None
                else CraneliftJit(block_size, self.fuse)
            )
            kernel = jit.compile(ir)
            state = GraphState.from_graph(graph, max_block=block_size, ir=ir)
            # Instantiate the module in the state now (process_into binds even for 0 samples), so the
            # snapshot below is the state exactly as the first sample will see it.
            kernel.process_into(state, np.empty((self._channels, 0)))
            self._kernel, self._state, self.compile_stats = kernel, state, kernel.stats
            # The memory up to the render area: past it are the render area (256 KB per output,
            # where `render` collects blocks before they are copied out) and the voice-inner
            # runs' scratch, both written in every block before they are read: no state. The
            # restart copies 6.6 KB for the seed instead of 320 KB (5 us a render, 24 us when the
            # caches are cold after another engine's render: 3 % of the seed's).
            self._state_bytes = state.bytes.shape[0]
            self._snapshot = state.bytes[: kernel.layout.render_area].copy()
        else:
            graph.process_block(0)  # builds the interpreter's plan now, not in the first timed render
        self._graph = graph
        return time.perf_counter() - start

    def render(self, seconds: float) -> np.ndarray:
        if self._graph is None:
            raise NotPrepared("call prepare() first")
        n = num_samples(seconds, self._sample_rate)
        out = np.empty((self._channels, n))
        if self.compiled:
            assert self._state is not None and self._snapshot is not None
            if self._state.bytes.shape[0] != self._state_bytes:
                raise RuntimeError("the compiled state's memory changed size since prepare(); cannot restart")
            self._state.bytes[: self._snapshot.shape[0]] = self._snapshot  # restart at t = 0
            if self._events:
                self._render_midi(out, self._state.queue_event, self._compiled_block)
            else:
                self._kernel.process_into(self._state, out)
        elif self._events:
            self._render_midi(out, self._graph.queue_event, self._interpreted_block)
        else:
            for pos in range(0, n, self._block_size):
                m = min(self._block_size, n - pos)
                out[:, pos : pos + m] = self._graph.process_block(m)
        return out[0] if self._channels == 1 else out.mean(axis=0)

    def _compiled_block(self, block: np.ndarray) -> None:
        self._kernel.process_into(self._state, block)

    def _interpreted_block(self, block: np.ndarray) -> None:
        assert self._graph is not None
        block[:] = self._graph.process_block(block.shape[-1])

    def _render_midi(
        self,
        out: np.ndarray,
        queue: Callable[[Endpoint, int, Any], None],
        process: Callable[[np.ndarray], None],
    ) -> None:
        """Block loop of :func:`oscen.midi.render_midi`: each block's MIDI events are queued at
        their exact frames just before the block, as a real-time host does."""
        assert self._graph is not None and self._midi is not None
        frame0 = int(self._state.frame) if self.compiled else int(self._graph.frame)
        events, n, i = self._events, out.shape[-1], 0
        while i < len(events) and events[i][0] < frame0:  # interpreted: song position = stream position
            i += 1
        for pos in range(0, n, self._block_size):
            m = min(self._block_size, n - pos)
            start = frame0 + pos
            while i < len(events) and events[i][0] < start + m:
                queue(self._midi, events[i][0] - start, events[i][1])
                i += 1
            process(out[:, pos : pos + m])

    def close(self) -> None:
        self._graph = self._kernel = self._state = self._snapshot = self._midi = None
        self._events = []
        self.compile_stats = None


def oscen_engines() -> list[OscenEngine]:
    """Both flavours, compiled first (the one every ratio is taken against)."""
    return [OscenEngine(compiled=True), OscenEngine(compiled=False)]
