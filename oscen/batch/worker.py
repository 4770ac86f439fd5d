"""Rendering items on a worker: one kernel loaded once, every item from the same starting memory.

The driver compiles the patch once and packs a :class:`KernelImage`: the wasmtime module in its
serialised form (machine code, no recompiling), the GraphIR as JSON, the trap tables, and the
state memory as it was before the first sample. A worker deserialises the module once
(:class:`Renderer`) and, for each item, copies that memory image back, writes the item's
parameters and noise seeds, queues its MIDI and runs the kernel. Item ``i`` therefore starts from
exactly the same bytes on any worker, in any process, on any machine with the same wasmtime: its
samples are bit-identical.

When the JIT cannot compile the patch the worker interprets it instead: it builds the graph from
the :class:`PatchSpec` again for every item (a deep copy when a Graph object was given) and
interprets it (slow, but the same determinism rules hold).
"""

from __future__ import annotations

import io
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph import Graph
from ..graph.endpoints import Direction, Endpoint, Kind
from .params import Item
from .plan import PatchSpec, Targets

MASK32 = 0xFFFFFFFF
_BUILD_LOCK = threading.Lock()  # loading a patch file touches sys.path and sys.modules
EVENT_CAPACITY = 256  # external events waiting at once (the compiled queue's capacity)


def noise_state(seed: int) -> int:
    """The PRNG state a Noise node starts from for ``seed`` (as ``Noise.__init__`` computes it)."""
    return (int(seed) * 2654435761 + 0x9E3779B9) & MASK32


def item_noise_seed(batch_seed: int, index: int, node_seed: int) -> int:
    """Item ``index``'s seed for a Noise node built with ``node_seed``: fresh noise for every item,
    the same for the same item everywhere; nodes that shared a seed still share one."""
    words = [int(batch_seed), int(index), int(node_seed) & 0xFFFFFFFFFFFFFFFF]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


@dataclass
class KernelImage:
    """A compiled patch, ready to ship to workers (it pickles; no node classes needed to load it)."""

    module: bytes  # wasmtime.Module.serialize()
    ir_json: str
    max_block: int
    timeout: float
    sites: dict[int, list[Any]]  # node id -> its variant's trap sites (Program.sites)
    segments: list[list[int]]
    node_labels: dict[int, str]
    math_imports: list[str]
    memory: bytes  # the state's memory before the first sample (layout.size bytes, zlib-compressed)
    wasmtime_version: str = ""
    voices: dict[int, list[int]] = field(default_factory=dict)  # Program.voices: faults name the voice

    def initial_memory(self) -> np.ndarray:
        return np.frombuffer(zlib.decompress(self.memory), dtype=np.uint8)

    @classmethod
    def compile(cls, graph: Graph, max_block: int | None = None) -> KernelImage:
        """Compile ``graph`` (raises JitError if it can't be) and capture its starting state."""
        import wasmtime

        from ..jit import CraneliftJit, GraphState
        from ..jit.frontend import settled

        jit = CraneliftJit() if max_block is None else CraneliftJit(max_block=max_block)
        ir = settled(graph.to_ir())  # as compiled: the worker's layout is made from this IR's text
        compiled = jit.compile(ir)
        state = GraphState.from_graph(graph, jit.max_block, ir)
        program = compiled.program
        return cls(
            module=compiled.module.serialize(),
            ir_json=ir.to_json(),
            max_block=jit.max_block,
            timeout=jit.timeout,
            sites={nid: list(sites) for nid, sites in program.sites.items()},
            segments=[list(s) for s in program.segments],
            node_labels=dict(program.node_labels),
            math_imports=list(program.math_imports),
            memory=zlib.compress(bytes(state.bytes[: compiled.layout.size]), 1),
            wasmtime_version=getattr(wasmtime, "__version__", ""),
            voices={nid: list(v) for nid, v in program.voices.items()},
        )

    def load(self) -> tuple[Any, Any]:
        """(CompiledGraph, GraphState) in this process: the module deserialised, not recompiled."""
        import wasmtime

        from ..jit import CompiledGraph, CompileStats, GraphIR, GraphState
        from ..jit.engine import engine
        from ..jit.layout import Layout
        from ..jit.skeleton import Program

        here = getattr(wasmtime, "__version__", "")
        if self.wasmtime_version and here and here != self.wasmtime_version:
            raise RuntimeError(
                f"the kernel was compiled with wasmtime {self.wasmtime_version} but this worker has "
                f"wasmtime {here}; install the same version on every worker"
            )
        ir = GraphIR.from_json(self.ir_json)
        layout = Layout.of(ir, self.max_block)
        memory = self.initial_memory()
        if layout.size != len(memory):
            raise RuntimeError("the kernel's memory layout differs on this worker (another oscen version?)")
        program = Program(
            "", layout, self.sites, self.segments, self.node_labels, self.math_imports, voices=self.voices
        )
        module = wasmtime.Module.deserialize(engine(), self.module)
        compiled = CompiledGraph(
            ir, program, module, CompileStats(0.0, 0.0, 0, len(self.segments)), self.timeout
        )
        state = GraphState(ir, layout)
        state.bytes[: len(memory)] = memory
        compiled.bind(state)
        return compiled, state


@dataclass
class AudioFormat:
    """How workers encode audio: a soundfile format and subtype, or None to return arrays."""

    format: str | None = "FLAC"
    subtype: str | None = None

    @property
    def extension(self) -> str:
        return "." + (self.format or "npy").lower()


@dataclass
class WorkerSpec:
    """Everything a worker needs, sent once per worker."""

    kernel: KernelImage | None  # None: interpret
    patch: PatchSpec | None  # for interpreting
    targets: Targets
    sample_rate: float
    samples: int
    channels: int
    seed: int
    reseed_noise: bool = True
    audio: AudioFormat = field(default_factory=AudioFormat)


@dataclass
class ItemResult:
    """What a worker sends back for one item."""

    index: int
    ok: bool
    error: str = ""
    data: bytes | None = None  # encoded audio file
    array: np.ndarray | None = None  # raw float64 samples (in-memory batches)
    peak: float = 0.0
    seconds: float = 0.0
    worker: str = ""


class Renderer:
    """Renders items on one worker; build it once, call :meth:`render` for each item."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.name = f"{os.uname().nodename}:{os.getpid()}:{threading.get_ident() % 10000}"
        if spec.kernel is not None:
            self.engine: _Engine = _Compiled(spec)
        else:
            assert spec.patch is not None
            self.engine = _Interpreted(spec)

    def render(self, item: Item) -> ItemResult:
        """Render one item; a failure is returned as a result with the error, never raised."""
        t0 = time.perf_counter()
        try:
            out = self.engine.render(item, self._events(item))
            bad = ~np.isfinite(out)
            if bad.any():
                channel, sample = (int(v[0]) for v in np.nonzero(bad))
                value = out[channel, sample]
                raise FloatingPointError(
                    f"non-finite output ({value}) at sample {sample} ({sample / self.spec.sample_rate:.4f} s), "
                    f"channel {channel}"
                )
            samples = out[0] if out.shape[0] == 1 else out
            result = ItemResult(item.index, True, peak=float(np.abs(out).max(initial=0.0)), worker=self.name)
            if self.spec.audio.format is None:
                result.array = samples
            else:
                result.data = self._encode(out)
        except Exception as exc:  # any failure of one item is that item's, recorded, never the batch's
            result = ItemResult(item.index, False, f"{type(exc).__name__}: {exc}", worker=self.name)
        result.seconds = time.perf_counter() - t0
        return result

    def render_many(self, items: list[Item]) -> list[ItemResult]:
        return [self.render(item) for item in items]

    def _encode(self, out: np.ndarray) -> bytes:
        import soundfile

        buffer = io.BytesIO()
        fmt = self.spec.audio
        soundfile.write(
            buffer, out.T, int(round(self.spec.sample_rate)), format=fmt.format, subtype=fmt.subtype
        )
        return buffer.getvalue()

    def _events(self, item: Item) -> list[tuple[int, tuple[float, ...]]]:
        """The item's MIDI as (frame, (status, data1, data2)), in order."""
        if item.note is None and item.midi is None:
            return []
        if self.spec.targets.midi is None:
            raise ValueError(
                "the item has a MIDI note or sequence but the patch has no MIDI input (a MidiParser node)"
            )
        from ..midi import midi_file_events, note_off, note_on

        rate = self.spec.sample_rate
        events: list[tuple[int, tuple[float, ...]]] = []
        if item.note is not None:
            events.append((0, tuple(float(v) for v in note_on(item.note, item.velocity))))
            if item.duration is not None:
                events.append((round(item.duration * rate), tuple(float(v) for v in note_off(item.note))))
        if isinstance(item.midi, (str, os.PathLike)):
            events += [(f, tuple(float(v) for v in m)) for f, m in midi_file_events(item.midi, rate)]
        elif item.midi is not None:
            for entry in item.midi:
                t, *fields = entry
                if len(fields) != 3:
                    raise ValueError(f"a MIDI event is (seconds, status, data1, data2), got {entry!r}")
                events.append((round(float(t) * rate), tuple(float(v) for v in fields)))
        events.sort(key=lambda e: e[0])  # stable: events at one frame keep their order
        return events


class _Engine:
    def render(self, item: Item, events: list[tuple[int, tuple[float, ...]]]) -> np.ndarray:
        raise NotImplementedError


def _drive(
    total: int,
    channels: int,
    events: list[tuple[int, tuple[float, ...]]],
    queue: Any,
    process: Any,
) -> np.ndarray:
    """Run ``total`` samples into a (channels, total) array, queueing ``events`` so that no more
    than EVENT_CAPACITY wait at once (a long sequence goes in as the render reaches it)."""
    out = np.empty((channels, total))
    pos = 0
    i = 0
    pending: list[int] = []
    while pos < total:
        pending = [f for f in pending if f >= pos]
        while i < len(events) and events[i][0] < total and len(pending) < EVENT_CAPACITY:
            frame, fields = events[i]
            queue(frame - pos, fields)
            pending.append(frame)
            i += 1
        end = total if i >= len(events) or events[i][0] >= total else events[i][0]
        if end <= pos:
            raise RuntimeError(f"more than {EVENT_CAPACITY} MIDI events at sample {pos}")
        process(out[:, pos:end])
        pos = end
    return out


class _Compiled(_Engine):
    def __init__(self, spec: WorkerSpec) -> None:
        assert spec.kernel is not None
        self.spec = spec
        self.compiled, self.state = spec.kernel.load()
        self.image = spec.kernel.initial_memory()
        layout = self.compiled.layout
        self.params = {
            name: [layout.nodes[nid].params[ep] for nid, ep in where]
            for name, where in spec.targets.params.items()
        }
        self.noise = [(layout.nodes[nid].scalars["_state"][0], seed) for nid, seed in spec.targets.noise]
        self.midi: Endpoint | None = None
        if spec.targets.midi is not None:
            nid, name, label = spec.targets.midi
            self.midi = Endpoint(nid, name, Kind.EVENT, Direction.INPUT, label)

    def render(self, item: Item, events: list[tuple[int, tuple[float, ...]]]) -> np.ndarray:
        state = self.state
        memory = state.bytes
        memory[: len(self.image)] = self.image  # every item starts from the same bytes
        for name, value in item.params.items():
            for slots in self.params[name]:
                memory[slots.value : slots.value + 8].view(np.float64)[0] = value
                memory[slots.remaining : slots.remaining + 8].view(np.int64)[0] = 0
        if self.spec.reseed_noise:
            for addr, seed in self.noise:
                memory[addr : addr + 8].view(np.int64)[0] = noise_state(
                    item_noise_seed(self.spec.seed, item.index, seed)
                )
        midi = self.midi

        def queue(offset: int, fields: tuple[float, ...]) -> None:
            state.queue_event(midi, offset, fields)

        def process(out: np.ndarray) -> None:
            self.compiled.process_into(state, out)

        return _drive(self.spec.samples, self.spec.channels, events, queue, process)


class _Interpreted(_Engine):
    BLOCK = 4096

    def __init__(self, spec: WorkerSpec) -> None:
        assert spec.patch is not None
        self.spec = spec
        self.patch = spec.patch
        spec.patch.build()  # fail now, not on every item, if the patch does not build here

    def render(self, item: Item, events: list[tuple[int, tuple[float, ...]]]) -> np.ndarray:
        # A fresh graph per item: the patch built again (or the given Graph copied), so each item
        # starts from the patch's own initial state whatever its nodes hold.
        with _BUILD_LOCK:
            graph = self.patch.build()
        for name, value in item.params.items():
            for nid, ep in self.spec.targets.params[name]:
                graph.set_value(getattr(graph.handle(nid), ep), value)
        if self.spec.reseed_noise:
            for nid, seed in self.spec.targets.noise:
                graph.handle(nid).node._state = noise_state(item_noise_seed(self.spec.seed, item.index, seed))
        midi = None
        if self.spec.targets.midi is not None:
            nid, name, _ = self.spec.targets.midi
            midi = getattr(graph.handle(nid), name)

        def queue(offset: int, fields: tuple[float, ...]) -> None:
            graph.queue_event(midi, offset, fields)

        def process(out: np.ndarray) -> None:
            n = out.shape[-1]
            for start in range(0, n, self.BLOCK):
                m = min(self.BLOCK, n - start)
                out[:, start : start + m] = np.asarray(graph.process_block(m)).reshape(out.shape[0], m)

        return _drive(self.spec.samples, self.spec.channels, events, queue, process)
