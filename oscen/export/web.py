"""Export a graph to the web: the same compiled kernel, played by an AudioWorklet in any browser.

The export is a self-contained folder:

* ``kernel.wasm``: the graph's compiled kernel, exactly the WebAssembly that wasmtime runs here
  (compiled for 128-sample blocks, the Web Audio render quantum), and ``math.wasm``, oscen's math
  library that the kernel imports its out-of-line functions from;
* ``state.bin``: the initial memory image (every node's state, parameters, pending events);
* ``manifest.json``: the memory layout the page needs (every value input with its name, default
  and range, every event input, the MIDI input if the patch has one, the output buffers, the fault
  tables), the channels and the sample rate;
* ``index.html``, ``app.js``, ``worklet.js``: the page and the AudioWorkletProcessor.

Because the browser runs the same module on the same memory image, its output equals Python's
compiled render of the same patch to float32 rounding (the browser's output format). Parameter
changes and events are timestamped and land on their exact frame, also inside a 128-frame quantum:
the worklet splits a quantum at each parameter change, and events go into the kernel's own
frame-sorted queues, which dispatch them at their sample.

The page sets parameters and queues events by calling the kernel's own exports ``set_param`` and
``queue_event`` (oscen/jit/protocol.py) with the slot addresses in the manifest, exactly as
:class:`oscen.jit.GraphState` does from Python; the manifest carries the whole memory layout too
(``layout``, :meth:`oscen.jit.layout.Layout.as_dict`).
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime

from ..graph import Graph
from ..jit import CraneliftJit, GraphState
from ..jit import layout as memory
from ..jit.engine import math_module_wat
from ..jit.traps import MATH, TIMEOUT, TRAP_MESSAGES
from ..jit.wasm_math import ERROR_MESSAGES

QUANTUM = 128
"""Frames per Web Audio render quantum: the kernel is compiled for blocks of at most this."""
ASSETS = Path(__file__).with_name("assets")
PAGE_FILES = ("index.html", "app.js", "worklet.js")
MANIFEST_VERSION = 1
LOOP_BUDGET = 100_000_000
"""Loop iterations node code may run in one call in the browser (a fraction of a second at most):
past it the loop traps as a timeout, as Python's watchdog makes it do after its time limit."""


class ExportError(ValueError):
    """A graph that cannot be exported (say, node code the JIT cannot compile)."""


@dataclass(frozen=True)
class WebExport:
    """What :func:`export_web` wrote: the folder and its manifest."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


def _range_of(spec: Any, default: float) -> tuple[float, float, bool]:
    """(low, high, logarithmic) for a value input's control: the node's declared range if it has
    one (``ValueInput(..., range=(lo, hi))``), otherwise one derived from the default and the name."""
    declared = getattr(spec, "range", None)
    if declared is not None:
        lo, hi = (float(v) for v in declared)
        return lo, hi, lo > 0 and hi / lo >= 100
    name = spec.name.lower()
    if any(word in name for word in ("freq", "cutoff", "rate", "pitch")) and default > 0:
        return max(default / 16, 1e-3), default * 16, True
    if default == 0:
        return -1.0, 1.0, False
    if default > 0:
        return 0.0, max(2 * default, 1.0), False
    return min(2 * default, -1.0), -2 * default, False


def manifest_of(graph: Graph, compiled: Any, title: str) -> dict[str, Any]:
    """Everything the page needs to know about the kernel's memory, as JSON-ready data."""
    from ..midi import find_midi_input

    layout = compiled.layout
    program = compiled.program
    outputs = [layout.nodes[n].buffers[e] for n, e in compiled.ir.outputs]  # each channel's buffer
    params = []
    events = []
    driven = {(c.target.node_id, c.target.name) for c in graph.connections}
    for handle in graph.nodes:
        named = handle.label != f"{type(handle.node).__qualname__}#{handle.id}"
        specs = type(handle.node).endpoints()
        node_layout = layout.nodes[handle.id]
        for name, slots in node_layout.params.items():
            default = float(graph.get_value(getattr(handle, name)))
            lo, hi, log = _range_of(specs[name], default)
            params.append(
                {
                    "id": f"{handle.label}.{name}",
                    "node": handle.label,
                    "name": name,
                    "default": default,
                    "min": lo,
                    "max": hi,
                    "log": log,
                    "named": named,  # the patch gave the node a label: a control worth showing first
                    "driven": (handle.id, name) in driven,  # a signal drives it (set_value is its base)
                    "value": slots.value,  # the slot the kernel's set_param takes
                }
            )
        for name, queue in node_layout.external_queues.items():
            events.append(
                {"id": f"{handle.label}.{name}", "node": handle.label, "name": name, "base": queue.base,
                 "capacity": queue.capacity, "named": named, "driven": (handle.id, name) in driven}
            )  # fmt: skip
    midi = find_midi_input(graph)
    midi_id = None
    if midi is not None:
        midi_id = f"{graph.handle(midi.node_id).label}.{midi.name}"
    sites = {  # node id -> trap site id -> where (site ids belong to the node's variant)
        str(nid): {
            str(i): {"where": str(s.site) if s.site else "", "detail": s.detail}
            for i, s in enumerate(node_sites)
            if i and s.site is not None
        }
        for nid, node_sites in program.sites.items()
    }
    return {
        "version": MANIFEST_VERSION,
        "title": title,
        "sample_rate": graph.sample_rate,
        "channels": len(outputs),
        "max_block": layout.max_block,
        "memory_bytes": layout.size,
        "header": dict(memory.HEADER_SLOTS),
        "loop_budget": LOOP_BUDGET,
        "event_bytes": memory.EVENT_BYTES,
        "event_fields": memory.EVENT_FIELDS,
        "outputs": outputs,
        "params": params,
        "events": events,
        "midi": midi_id,
        "math_imports": list(program.math_imports),
        "layout": layout.as_dict(),  # the whole memory layout (oscen.jit.layout.Layout.from_dict)
        "faults": {
            "sites": sites,
            "codes": {str(code): [exc.__name__, text] for code, (exc, text) in TRAP_MESSAGES.items()},
            "math": {str(code): [exc.__name__, text] for code, (exc, text) in ERROR_MESSAGES.items()},
            "math_code": MATH,
            "timeout_code": TIMEOUT,
            "node_labels": {str(k): v for k, v in program.node_labels.items()},
            "segments": program.segments,
            # the NODE slot holds the faulting node's base; a voice group member's node in each
            # voice, for the voice in the LANE slot (oscen.jit.skeleton.Program.fault_node)
            "bases": {str(nl.base): nid for nid, nl in layout.nodes.items()},
            "voices": {str(m): members for members in program.voices.values() for m in members},
        },
    }


def compile_for_web(graph: Graph) -> tuple[Any, GraphState]:
    """The graph compiled for 128-frame blocks, and its initial state (not yet bound to the kernel)."""
    from ..jit import JitError

    try:
        compiled = CraneliftJit(max_block=QUANTUM).compile(graph.to_ir())
    except JitError as exc:
        raise ExportError(f"this graph cannot be exported: the JIT cannot compile it: {exc}") from exc
    return compiled, GraphState.from_graph(graph, max_block=QUANTUM)


def export_web(graph: Graph, folder: str | Path, title: str = "oscen patch") -> WebExport:
    """Write the web export of ``graph`` into ``folder`` (created if missing; files are replaced).

    The graph is not changed: its current state (node state, parameters, queued events) is what
    the page starts from.
    """
    if not isinstance(graph, Graph):
        raise ExportError(f"export_web takes a Graph, got {type(graph).__name__}")
    rate = graph.sample_rate
    if not (3000 <= rate <= 768000) or rate != math.floor(rate):
        raise ExportError(
            f"browsers play whole sample rates from 3000 to 768000 Hz; this graph runs at {rate:g}"
        )
    compiled, state = compile_for_web(graph)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    # the binary Cranelift compiled here (the text's assembly where a program has none)
    kernel = compiled.program.binary or wasmtime.wat2wasm(compiled.wat)
    (out / "kernel.wasm").write_bytes(kernel)
    (out / "math.wasm").write_bytes(wasmtime.wat2wasm(math_module_wat()))
    (out / "state.bin").write_bytes(state.bytes[: compiled.layout.size].tobytes())
    manifest = manifest_of(graph, compiled, title)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for name in PAGE_FILES:
        shutil.copyfile(ASSETS / name, out / name)
    return WebExport(out, manifest)
