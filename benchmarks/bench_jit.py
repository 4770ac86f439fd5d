"""The JIT's numbers (issue "JIT"), all measured in one run, one table per section.

    python benchmarks/bench_jit.py [--quick] [--section a,b,c,d] [--json out.json]
                                   [--sizes 10,100,1000] [--voice-graphs 8,16,64,256]
                                   [--voices 4,8,16,32] [--interp-voices 1,2,4,8]

a. Interpreted vs compiled, on the seed graph and the demo patch: real-time factors (median of
   several runs; the interpreter on a short excerpt, the compiled code on ~10 s) and their ratio.
b. Compile latency (frontend + codegen, Cranelift, total; median of 5) for chains and parallel
   voices of 10, 100 and 1000 nodes, with a straight-line fit so linear growth (or not) shows;
   then the voices64 shape at 8, 16, 64 and 256 voices (N sines, each into its own IirLowpass,
   summed by one Gain) and the 101-node graph (50 sine -> lowpass pairs into one gain): latency
   from patch to playable (the quick tier), of the optimized tier after it, and the real-time
   factor of each tier at block 256.
c. The hand-written C of seed and voices64 (``cc -O3 -march=native``) against oscen compiled: the
   ratio says how far oscen is from what plain C does with the same math; a second C row (rotation
   oscillator, voices interleaved) is this machine's practical limit for the patches.
d. The polysynth example: how many voices run in real time at 44.1 kHz in 256-sample blocks,
   compiled and interpreted (per-voice cost fitted over a few voice counts, then extrapolated),
   and the render speed of the 16-voice example playing ``examples/song.mid``.

Every run is timed with the cyclic GC off (as ``timeit`` does); where two engines are compared
their runs alternate, so drift of a shared machine hits both. Outputs are checked against the
reference (seed, voices64) or against each other (the demo: compiled vs interpreted) first.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the checkout's oscen and benchmarks packages
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_peers import BenchConfig, passes, run_bench  # noqa: E402
from benchmarks.oscen_engine import (  # noqa: E402
    OscenEngine,
    chain_graph,
    midi_input,
    parallel_graph,
    polysynth_graph,
    song_seconds,
    voices_graph,
)
from benchmarks.peers import CEngine  # noqa: E402
from benchmarks.peers.reference import check  # noqa: E402
from oscen.bench import Table, fmt_ms, fmt_ratio, fmt_rtf, print_table, source_revision  # noqa: E402

SR = 44100.0
BLOCK = 256
SECTIONS = ("a", "b", "c", "d")
CHECK_VOICES_CAP = 128
"""Section d checks the fit at most at this many voices by default: building the polysynth graph is
worse than linear in its size (Graph.connect reschedules the whole graph), ~30 s at 128 voices but
minutes at 256; ``--check-voices 256`` goes to VoiceAllocator's maximum."""


class Settings:
    """Run lengths and repetition counts; ``--quick`` shrinks them all for a CI smoke run."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.compiled_seconds = 2.0 if quick else 10.0
        self.interpreted_seconds = 0.25 if quick else 1.0  # seed; the demo gets the same
        self.runs = 2 if quick else 5
        self.interpreted_runs = 1 if quick else 3
        self.compile_runs = 1 if quick else 5
        self.voice_seconds = 0.5 if quick else 3.0  # compiled polysynth, per voice count
        self.interp_voice_seconds = 0.05 if quick else 0.25
        self.voice_runs = 1 if quick else 3
        self.interp_song_seconds = 0.1 if quick else 0.5


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of ``fn()``, with the cyclic GC off during it."""
    was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        if was:
            gc.enable()


def alternate(runs: int, jobs: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run every job ``runs`` times, round-robin (run r starts at job r mod J); each returns seconds."""
    names = list(jobs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(runs):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            times[name].append(jobs[name]())
    return times


def rtf(seconds: float, times: Sequence[float]) -> float:
    return seconds / statistics.median(times) if times else math.nan


# ------------------------------------------------------------------------------------ a
def section_a(s: Settings) -> tuple[Table, dict[str, Any]]:
    """Interpreted vs compiled on the seed graph and the demo patch (block 256)."""
    from oscen.demo import demo_patch

    table = Table(
        f"a. Interpreted vs compiled, {SR:g} Hz, block {BLOCK}: real-time factor, median of "
        f"{s.interpreted_runs} interpreted / {s.runs} compiled runs",
        ["patch", "nodes", "interpreted", "audio", "compiled", "audio", "compiled / interpreted"],
        align="lrrrrrr",
    )
    data: dict[str, Any] = {}
    comp, interp = OscenEngine(compiled=True), OscenEngine(compiled=False)
    builders: dict[str, Callable[[], Any]] = {
        "seed": lambda: _seed(),
        "demo": lambda: demo_patch(SR, events=True),
    }
    for patch, build in builders.items():
        graph = build()
        nodes = len(graph.nodes)
        comp.load(graph, BLOCK)
        interp.load(build(), BLOCK)
        n_check = s.interpreted_seconds
        first_c, first_i = comp.render(n_check), interp.render(n_check)
        if patch == "seed":
            ok = passes("seed", check("seed", first_c, n_check, SR)) and passes(
                "seed", check("seed", first_i, n_check, SR)
            )
            agreement = "reference check: " + ("passed" if ok else "FAILED")
        else:
            diff = float(np.max(np.abs(first_c - first_i)))
            agreement = f"compiled vs interpreted, first {n_check:g} s: max difference {diff:.1e}"
        table.notes.append(f"{patch}: {agreement}")

        def run_compiled() -> float:
            return timed(lambda: comp.render(s.compiled_seconds))

        def run_interpreted(build: Callable[[], Any] = build) -> float:
            interp.load(build(), BLOCK)  # from t = 0 each time (the demo's notes start at 0)
            return timed(lambda: interp.render(s.interpreted_seconds))

        comp.render(s.compiled_seconds)  # warm-up
        times = alternate(
            max(s.runs, s.interpreted_runs),
            {"compiled": run_compiled, "interpreted": run_interpreted},
        )
        times["interpreted"] = times["interpreted"][: s.interpreted_runs]
        r_c = rtf(s.compiled_seconds, times["compiled"])
        r_i = rtf(s.interpreted_seconds, times["interpreted"])
        table.add(
            patch,
            nodes,
            fmt_rtf(r_i),
            f"{s.interpreted_seconds:g} s",
            fmt_rtf(r_c),
            f"{s.compiled_seconds:g} s",
            f"{r_c / r_i:,.0f}",
        )
        data[patch] = {
            "nodes": nodes,
            "interpreted_rtf": r_i,
            "compiled_rtf": r_c,
            "ratio": r_c / r_i,
            "times": times,
        }
    comp.close()
    interp.close()
    table.notes.append(
        "compiled renders restart at t = 0 (state snapshot), interpreted ones rebuild the graph (untimed)."
    )
    return table, data


def _seed() -> Any:
    from benchmarks.oscen_engine import seed_graph

    return seed_graph(SR)


# ------------------------------------------------------------------------------------ b
def compile_latency(jit: Any, build: Callable[[], Any], runs: int) -> tuple[int, int, dict[str, float]]:
    """(nodes, WAT bytes, medians over ``runs`` fresh graphs of to_ir / frontend / cranelift / total)."""
    samples: dict[str, list[float]] = {"to_ir": [], "frontend": [], "cranelift": [], "total": []}
    nodes, wat = 0, 0
    for _ in range(runs):
        graph = build()
        nodes = len(graph.nodes)
        gc.collect()
        t0 = time.perf_counter()
        ir = graph.to_ir()
        samples["to_ir"].append(time.perf_counter() - t0)
        stats = jit.compile(ir).stats
        samples["frontend"].append(stats.frontend_seconds)
        samples["cranelift"].append(stats.wasm_seconds)
        samples["total"].append(stats.total_seconds)
        wat = stats.wat_bytes
    return nodes, wat, {k: statistics.median(v) for k, v in samples.items()}


def section_b(
    s: Settings, sizes: Sequence[int], voice_graphs: Sequence[int] = ()
) -> tuple[list[Table], dict[str, Any]]:
    """Compile latency against graph size, two shapes, median of ``compile_runs``; then the voice
    graphs (latency and run time)."""
    from oscen.jit import CraneliftJit

    jit = CraneliftJit(max_block=BLOCK)
    jit.compile(chain_graph(4).to_ir())  # warm-up: first-use imports and caches are not latency
    table = Table(
        f"b. Compile latency (ms), median of {s.compile_runs}: frontend + codegen (Python → kernel IR → "
        "binary WebAssembly), Cranelift (wasmtime: wasm → machine code), total = the two; WAT = the size the module's "
        "text would have (printed only for this column)",
        ["shape", "nodes", "to_ir", "frontend+codegen", "Cranelift", "total", "total per node", "WAT (KiB)"],
        align="lrrrrrrr",
    )
    fit = Table(
        "b. Linear-fit check: total ms = intercept + slope × nodes (least squares over the sizes above)",
        ["shape", "slope (ms/node)", "intercept (ms)", "R²", "per-node cost, largest / smallest graph"],
        align="lrrrr",
    )
    data: dict[str, Any] = {}
    shapes: dict[str, Callable[[int], Any]] = {"chain": chain_graph, "parallel": parallel_graph}
    for shape, build in shapes.items():
        rows = []
        for size in sizes:
            nodes, wat, med = compile_latency(jit, lambda build=build, size=size: build(size), s.compile_runs)
            rows.append((nodes, med["total"] * 1000.0))
            table.add(
                shape,
                nodes,
                fmt_ms(med["to_ir"]),
                fmt_ms(med["frontend"]),
                fmt_ms(med["cranelift"]),
                fmt_ms(med["total"]),
                f"{med['total'] * 1000.0 / nodes:.2f}",
                f"{wat / 1024:,.0f}",
            )
            data.setdefault(shape, []).append({"nodes": nodes, "wat_bytes": wat, **med})
        x = np.array([r[0] for r in rows], dtype=float)
        y = np.array([r[1] for r in rows])
        if len(rows) >= 2:
            slope, intercept = np.polyfit(x, y, 1)
            pred = intercept + slope * x
            ss_res, ss_tot = float(np.sum((y - pred) ** 2)), float(np.sum((y - y.mean()) ** 2))
            r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
            growth = (y[-1] / x[-1]) / (y[0] / x[0])
            fit.add(shape, f"{slope:.3f}", f"{intercept:.1f}", f"{r2:.4f}", f"{growth:.2f}")
            data[f"{shape}_fit"] = {
                "slope_ms_per_node": slope,
                "intercept_ms": intercept,
                "r2": r2,
                "growth": growth,
            }
    fit.notes.append(
        "Linear growth: R² near 1 and a per-node cost ratio near 1 (a fixed start-up cost makes small graphs "
        "dearer per node, so below 1 is fine); a ratio well above 1 means worse than linear."
    )
    tables = [table, fit]
    if voice_graphs:
        voices_table, data["voices"] = voice_graph_rows(s, jit, voice_graphs)
        tables.append(voices_table)
    return tables, data


def tier_latency(jit: Any, build: Callable[[], Any], runs: int) -> tuple[int, dict[str, Any], Any, Any]:
    """(nodes, medians over ``runs`` fresh graphs, the last graph, the last quick and optimized
    code) of what JitGraph does for a new topology: ``to_ir``, ``compile_first`` (the quick tier:
    playable), then ``optimize`` of it (the optimized tier, swapped in when ready)."""
    samples: dict[str, list[float]] = {
        k: []
        for k in ("to_ir", "frontend", "cranelift", "quick", "playable", "playable_cpu", "optimized", "opt_frontend")
    }
    nodes, graph, first, best = 0, None, None, None
    for _ in range(runs):
        graph = build()
        nodes = len(graph.nodes)
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        ir = graph.to_ir()
        t1 = time.perf_counter()
        first = jit.compile_first(ir)
        t2, c2 = time.perf_counter(), time.process_time()
        best = jit.optimize(first)
        t3 = time.perf_counter()
        samples["to_ir"].append(t1 - t0)
        samples["frontend"].append(first.stats.frontend_seconds)
        samples["cranelift"].append(first.stats.wasm_seconds)
        samples["quick"].append(first.stats.total_seconds)
        samples["playable"].append(t2 - t0)
        samples["playable_cpu"].append(c2 - c0)
        samples["optimized"].append(t3 - t2)
        samples["opt_frontend"].append(best.stats.frontend_seconds)
    med: dict[str, Any] = {k: statistics.median(v) for k, v in samples.items()}
    med["playable_cpu_best"] = min(samples["playable_cpu"])
    med.update(
        first_tier=first.tier,
        wat_quick=first.stats.wat_bytes,
        wat_optimized=best.stats.wat_bytes,
        same_program=best.program is first.program,
    )
    return nodes, med, graph, (first, best)


def render_times(compiled: Any, graph: Any, seconds: float, runs: int) -> list[float]:
    """Wall seconds of ``runs`` renders of ``seconds`` by ``compiled`` at block 256 from t = 0 (the
    state's memory restored before each), after one warm-up render."""
    from oscen.jit import GraphState

    state = GraphState.from_graph(graph, max_block=BLOCK, ir=compiled.ir)
    out = np.empty((len(compiled.ir.outputs) or 1, int(round(seconds * SR))))
    compiled.process_into(state, out[:, :0])
    snapshot = state.bytes.copy()
    times = []
    for r in range(runs + 1):
        state.bytes[:] = snapshot
        t = timed(lambda: compiled.process_into(state, out))
        if r:
            times.append(t)
    return times


def voice_graph_rows(s: Settings, jit: Any, voice_graphs: Sequence[int]) -> tuple[Table, list[dict[str, Any]]]:
    """The voices64 shape at each size, and the 101-node graph: latency of the code that plays
    first (the quick tier) and of the optimized tier that JitGraph swaps in after it, and each
    tier's real-time factor at block 256 (median of ``runs`` renders, restarting at t = 0)."""
    table = Table(
        f"b. Voice graphs, {SR:g} Hz: latency (ms, median of {s.compile_runs}) from patch to playable (to_ir, then "
        f"the quick tier: frontend + codegen, Cranelift) and of the optimized tier compiled after it (what "
        f"JitGraph swaps in); real-time factor of each tier at block {BLOCK} (median of {s.runs} renders of "
        f"{s.voice_seconds:g} s)",
        ["graph", "nodes", "to_ir", "quick: frontend+codegen", "quick: Cranelift", "playable", "playable CPU best",
         "optimized", "WAT KiB quick / opt", "rtf quick", "rtf optimized", "ns per voice-sample (opt)"],  # fmt: skip
        align="lrrrrrrrrrrr",
    )
    builders: list[tuple[str, int, Callable[[], Any]]] = [
        (f"{n} voices (sine → lowpass, one Gain)", n, lambda n=n: voices_graph(n, SR)) for n in voice_graphs
    ]
    builders.append(("50 sine → lowpass pairs → gain", 50, lambda: parallel_graph(101, SR)))
    rows = []
    for name, voices, build in builders:
        nodes, med, graph, (first, best) = tier_latency(jit, build, s.compile_runs)
        quick_times = render_times(first, graph, s.voice_seconds, s.runs)
        times = render_times(best, graph, s.voice_seconds, s.runs)
        r_quick, r = rtf(s.voice_seconds, quick_times), rtf(s.voice_seconds, times)
        per_voice_sample = statistics.median(times) / (s.voice_seconds * SR * voices) * 1e9
        first_tier = "" if med["first_tier"] == "quick" else f" ({med['first_tier']})"
        table.add(
            name,
            nodes,
            fmt_ms(med["to_ir"]),
            fmt_ms(med["frontend"]),
            fmt_ms(med["cranelift"]),
            fmt_ms(med["playable"]) + first_tier,
            fmt_ms(med["playable_cpu_best"]),
            fmt_ms(med["optimized"]) + (" (Cranelift only)" if med["same_program"] else ""),
            f"{med['wat_quick'] / 1024:,.0f} / {med['wat_optimized'] / 1024:,.0f}",
            fmt_rtf(r_quick),
            fmt_rtf(r),
            f"{per_voice_sample:.1f}",
        )
        rows.append({"graph": name, "voices": voices, "nodes": nodes, **med, "rtf_quick": r_quick, "rtf": r,
                     "render_times": times, "quick_render_times": quick_times})  # fmt: skip
    table.notes.append(
        "playable = to_ir + the quick tier's compile (CraneliftJit.compile_first: plain voice bodies, Cranelift opt "
        "level none with the single-pass register allocator); optimized = CraneliftJit.optimize of it, run after "
        "(the fast loop and four-voice copy, Cranelift opt level speed). Both tiers lay the state out alike: JitGraph "
        "plays the quick tier at once and swaps the optimized one in at a block boundary, state kept."
    )
    table.notes.append(
        "playable CPU best = the process time of to_ir + compile_first, the best of the runs (Cranelift's threads "
        "counted): what the compile costs with the machine's other load left out, as far as a shared machine allows."
    )
    table.notes.append(
        "ns per voice-sample = render wall time / (samples × voices): one sine and one biquad, plus a share "
        "of the mix. The machine is shared: expect 10-30 % noise between runs."
    )
    return table, rows


# ------------------------------------------------------------------------------------ c
def section_c(s: Settings) -> tuple[Table, dict[str, Any]]:
    """oscen compiled against the hand-written C (and C's practical limit), both patches."""
    c_plain, c_limit = CEngine(), CEngine(osc="rotation", layout="interleaved")
    engines: list[tuple[str, Any]] = [
        ("oscen", OscenEngine(compiled=True)),
        ("c", c_plain),
        ("c-limit", c_limit),
    ]
    if c_plain.available() is not None:
        table = Table("c. oscen compiled vs hand-written C", ["patch"])
        table.notes.append(f"not run: {c_plain.available()}")
        return table, {"skipped": c_plain.available()}
    config = BenchConfig(
        engines=(),
        patches=("seed", "voices64"),
        blocks=(64, BLOCK),
        seconds=s.compiled_seconds,
        repeats=s.runs,
        latency_repeats=0,
    )
    report = run_bench(config, engines=engines)
    table = Table(
        f"c. oscen compiled vs hand-written C, {SR:g} Hz: real-time factor, median of {s.runs} renders of "
        f"{s.compiled_seconds:g} s, engines alternated",
        ["patch", "block", "oscen", "C", "oscen / C", "C limit", "oscen / C limit"],
        align="lrrrrrr",
    )
    data: dict[str, Any] = {}
    for patch in config.patches:
        for block in config.blocks:
            o, c, lim = (report.find(k, patch, block) for k in ("oscen", "c", "c-limit"))
            cells = []
            for m in (o, c, lim):
                cells.append(fmt_rtf(m.rtf) if m is not None and m.ok else "FAILED")
            r_c = o.rtf / c.rtf if o and c and o.ok and c.ok else math.nan
            r_l = o.rtf / lim.rtf if o and lim and o.ok and lim.ok else math.nan
            table.add(patch, block, cells[0], cells[1], fmt_ratio(r_c), cells[2], fmt_ratio(r_l))
            data[f"{patch}/b{block}"] = {
                "oscen": o.rtf if o else None,
                "c": c.rtf if c else None,
                "c_limit": lim.rtf if lim else None,
            }
    table.notes.append(f"C = {c_plain.name}: the same math as oscen (libm sin per sample, float64 biquad).")
    table.notes.append(
        f"C limit = {c_limit.name}: a rotation oscillator (no sin) and, for voices64, all voices advanced "
        "sample by sample so the 64 filters overlap and vectorise: the practical limit of this machine."
    )
    for m in report.measurements:
        if not m.ok:
            table.notes.append(f"FAILED {m.engine} {m.patch} b{m.block}: {m.reason}")
    return table, data


# ------------------------------------------------------------------------------------ d
def _held_chord(graph: Any, voices: int) -> None:
    """Queue ``voices`` note-ons at frame 0 (distinct keys, so every voice sounds throughout)."""
    from oscen.midi import note_on

    target = midi_input(graph)
    for k in range(voices):
        graph.queue_event(target, 0, note_on(36 + k % 64, 100, k // 64))


@dataclass
class VoiceRow:
    voices: int
    cost: float  # wall seconds per audio second (1 / real-time factor)
    build_seconds: float  # building the Python graph (poly_voices), once
    compile_seconds: float  # engine.load: to_ir + compile + state (compiled), schedule (interpreted)


def _voice_rows(compiled: bool, voices: Sequence[int], seconds: float, runs: int) -> list[VoiceRow]:
    """Wall seconds per audio second of the polysynth holding a chord on every voice, per count."""
    engine = OscenEngine(compiled=compiled)
    rows = []
    for n in voices:

        def build(n: int = n) -> Any:
            graph = polysynth_graph(SR, n)
            _held_chord(graph, n)
            return graph

        t0 = time.perf_counter()
        graph = build()
        build_s = time.perf_counter() - t0
        compile_s = engine.load(graph, BLOCK)
        if compiled:
            engine.render(seconds)  # warm-up
        times = []
        for run in range(runs):
            if not compiled and run > 0:
                engine.load(build(), BLOCK)  # fresh graph: the chord starts at t = 0 each run
            times.append(timed(lambda: engine.render(seconds)))
        rows.append(VoiceRow(n, statistics.median(times) / seconds, build_s, compile_s))
    engine.close()
    return rows


def _fit(rows: Sequence[VoiceRow]) -> tuple[float, float]:
    """(fixed, per_voice): least-squares line through the rows' costs."""
    x = np.array([r.voices for r in rows], dtype=float)
    y = np.array([r.cost for r in rows])
    if len(rows) < 2:
        return 0.0, float(y[0] / x[0])
    per_voice, fixed = np.polyfit(x, y, 1)
    return float(fixed), float(per_voice)


def _voices_cell(n: float, max_voices: int) -> str:
    if not math.isfinite(n):
        return "unlimited"
    text = f"{max(n, 0.0):.0f}"
    return text + f" (> allocator max {max_voices})" if n > max_voices else text


def _voices_at(load: float, fixed: float, per_voice: float) -> float:
    """Voices where the fitted cost reaches ``load`` (1.0 = exactly real time)."""
    return (load - fixed) / per_voice if per_voice > 0 else math.inf


def section_d(
    s: Settings, voices: Sequence[int], interp_voices: Sequence[int], check_voices: int | None
) -> tuple[list[Table], dict[str, Any]]:
    """Voices in real time (compiled, interpreted) and the 16-voice song's render speed.

    ``check_voices``: render the compiled polysynth at this many voices to check the extrapolation
    (None: at the predicted real-time count, at most :data:`CHECK_VOICES_CAP`; 0: no check).
    """
    from oscen.midi.voices import MAX_VOICES

    table = Table(
        f"d. Polysynth (examples/polysynth.py), {SR:g} Hz, block {BLOCK}, every voice sounding (held chord): "
        "cost = wall seconds per audio second",
        ["engine", "voices", "real-time factor", "cost", "graph build (s)", "compile (s)"],
        align="lrrrrr",
    )
    fits = Table(
        "d. Voices in real time: cost = fixed + per_voice × voices fitted over the rows above, solved for "
        "cost = 1 (real time) and 0.5 (half the CPU: headroom a live audio callback needs)",
        ["engine", "fixed cost", "per voice", "voices at 1x", "voices at 0.5 (2x headroom)", "check"],
        align="lrrrrl",
    )
    data: dict[str, Any] = {}
    for name, compiled, counts, seconds in (
        ("compiled", True, voices, s.voice_seconds),
        ("interpreted", False, interp_voices, s.interp_voice_seconds),
    ):
        rows = _voice_rows(compiled, counts, seconds, s.voice_runs)
        fixed, per_voice = _fit(rows)
        for r in rows:
            table.add(
                name,
                r.voices,
                fmt_rtf(1.0 / r.cost),
                f"{r.cost:.4f}",
                f"{r.build_seconds:.2f}",
                f"{r.compile_seconds:.2f}" if compiled else "-",
            )
        n_rt, n_half = _voices_at(1.0, fixed, per_voice), _voices_at(0.5, fixed, per_voice)
        verdict = ""
        if n_rt < 1:
            verdict = (
                f"fewer than 1 voice: 1 voice costs {fixed + per_voice:.2f}, of which {fixed:.2f} is the "
                "voice-independent part (MIDI parser, allocator, mixer, reverb)"
            )
        elif compiled and check_voices != 0 and math.isfinite(n_rt):
            n_check = check_voices if check_voices is not None else min(int(n_rt), CHECK_VOICES_CAP)
            n_check = min(n_check, MAX_VOICES)
            (row,) = _voice_rows(
                True, [n_check], s.voice_seconds, s.voice_runs
            )  # median, like the fit's rows
            predicted = fixed + per_voice * n_check
            verdict = (
                f"measured at {n_check} voices: {fmt_rtf(1.0 / row.cost)}, fit says "
                f"{fmt_rtf(1.0 / predicted)} (graph build {row.build_seconds:.0f} s, compile "
                f"{row.compile_seconds:.1f} s)"
            )
            data[f"{name}_check"] = asdict(row) | {"predicted_cost": predicted}
        fits.add(
            name,
            f"{fixed:.4f}",
            f"{per_voice:.5f}",
            _voices_cell(n_rt, MAX_VOICES),
            _voices_cell(n_half, MAX_VOICES),
            verdict,
        )
        data[name] = {
            "rows": [asdict(r) for r in rows],
            "fixed": fixed,
            "per_voice": per_voice,
            "voices_realtime": n_rt,
            "voices_half_load": n_half,
        }
    fits.notes.append(
        "Extrapolated linearly from the measured voice counts (their spread shows in the table above); "
        "'check' renders the predicted count where that is beyond the measured ones."
    )

    song = song_table(s)
    data["song"] = song[1]
    return [table, fits, song[0]], data


def song_table(s: Settings) -> tuple[Table, dict[str, Any]]:
    """The 16-voice example playing examples/song.mid: compiled (whole song), interpreted (excerpt),
    and through JitGraph + render_midi, which is what ``oscen render --midi`` runs."""
    from benchmarks.oscen_engine import SONG_FILE
    from oscen.jit import CraneliftJit, JitGraph
    from oscen.midi import render_midi

    length = song_seconds()
    table = Table(
        f"d. The 16-voice polysynth playing examples/song.mid ({length:.1f} s with the 2 s tail), block {BLOCK}",
        ["engine", "audio rendered", "runs", "real-time factor"],
        align="lrrr",
    )
    data: dict[str, Any] = {}
    comp = OscenEngine(compiled=True)
    comp.prepare("polysynth", SR, BLOCK)
    comp.render(length)  # warm-up
    runs = s.voice_runs
    times = [timed(lambda: comp.render(length)) for _ in range(runs)]
    comp.close()
    table.add(
        "oscen compiled (CompiledGraph.process_into)", f"{length:.1f} s", runs, fmt_rtf(rtf(length, times))
    )
    data["compiled"] = rtf(length, times)

    jit_times = []
    for _ in range(runs):
        graph = polysynth_graph(SR)
        jg = JitGraph(graph, background=False, jit=CraneliftJit(max_block=BLOCK))
        try:
            if not jg.wait_compiled(timeout=120.0):
                raise RuntimeError(f"JitGraph did not compile the polysynth: {jg.last_error}")
            target = midi_input(graph)
            jit_times.append(
                timed(lambda jg=jg, target=target: render_midi(jg, target, SONG_FILE, block_size=BLOCK))
            )
        finally:
            jg.close()
    table.add(
        "oscen compiled (JitGraph + render_midi)", f"{length:.1f} s", runs, fmt_rtf(rtf(length, jit_times))
    )
    data["jitgraph"] = rtf(length, jit_times)

    interp = OscenEngine(compiled=False)
    excerpt = s.interp_song_seconds
    i_times = []
    for _ in range(runs):
        interp.prepare("polysynth", SR, BLOCK)  # the song from its start each run
        i_times.append(timed(lambda: interp.render(excerpt)))
    interp.close()
    table.add("oscen interpreted", f"first {excerpt:g} s", runs, fmt_rtf(rtf(excerpt, i_times)))
    data["interpreted"] = rtf(excerpt, i_times)
    table.notes.append(
        "JitGraph adds its per-block work (edits, events, swap checks) and a fresh output array per block."
    )
    return table, data


# ------------------------------------------------------------------------------------ main
def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers like 10,100, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 1, got {text!r}")
    return values


def section_list(text: str) -> list[str]:
    values = [v.strip().lower() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in SECTIONS]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"sections are {','.join(SECTIONS)}; got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_jit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs, few repetitions (CI smoke)")
    parser.add_argument(
        "--section", type=section_list, default=list(SECTIONS), help="e.g. a,c (default: all)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the measurements as JSON here")
    parser.add_argument(
        "--sizes", type=int_list, default=None, help="section b graph sizes in nodes (default: 10,100,1000)"
    )
    parser.add_argument(
        "--voice-graphs",
        type=int_list,
        default=None,
        help="section b voice counts of the voices64-shaped graphs (default: 8,16,64,256; --quick: 8,64)",
    )
    parser.add_argument(
        "--voices", type=int_list, default=None, help="section d compiled voice counts (default: 4,8,16,32)"
    )
    parser.add_argument(
        "--interp-voices",
        type=int_list,
        default=None,
        help="section d interpreted voice counts (default: 1,2,4,8)",
    )
    parser.add_argument(
        "--check-voices",
        type=int,
        default=None,
        help="section d: render the compiled polysynth at this many voices to check the fit (default: the "
        f"predicted real-time count, at most {CHECK_VOICES_CAP}; 0: no check; --quick: no check)",
    )
    args = parser.parse_args(argv)
    s = Settings(args.quick)
    sizes = args.sizes or ([10, 100] if args.quick else [10, 100, 1000])
    voice_graphs = args.voice_graphs or ([8, 64] if args.quick else [8, 16, 64, 256])
    voices = args.voices or ([2, 4] if args.quick else [4, 8, 16, 32])
    interp_voices = args.interp_voices or ([1, 2] if args.quick else [1, 2, 4, 8])
    if args.json is not None and not args.json.parent.exists():
        parser.error(f"cannot write {args.json}: directory {args.json.parent} does not exist")

    results: dict[str, Any] = {"quick": args.quick, "sample_rate": SR, "block": BLOCK}
    started = time.perf_counter()
    revision = source_revision()
    results["revision"] = revision
    print(
        f"bench_jit: sections {','.join(args.section)}{' (quick)' if args.quick else ''}"
        + (f"; code: {revision}" if revision else "")
        + "\n",
        flush=True,
    )
    for section in SECTIONS:
        if section not in args.section:
            continue
        t0 = time.perf_counter()
        if section == "a":
            table, data = section_a(s)
            tables = [table]
        elif section == "b":
            tables, data = section_b(s, sizes, voice_graphs)
        elif section == "c":
            table, data = section_c(s)
            tables = [table]
        else:
            tables, data = section_d(s, voices, interp_voices, 0 if args.quick else args.check_voices)
        for table in tables:
            print_table(table)
        print(f"(section {section}: {time.perf_counter() - t0:.0f} s)\n", flush=True)
        results[section] = data
    print(f"bench_jit: done in {time.perf_counter() - started:.0f} s", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=float))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
