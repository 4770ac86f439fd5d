"""oscen against its peers, from the checkout: what ``oscen bench`` runs (by path, in a new process).

    python benchmarks/bench_peers.py [--quick] [--engines oscen,c,...] [--patches seed,voices64]
                                     [--blocks 64,256] [--chart out.png] [--json out.json]

The arguments are :func:`oscen.bench.configure`'s, shared with the ``oscen bench`` command, which
finds this file in the checkout and runs it; the tables print with :func:`oscen.bench.print_table`.
The runner lives here, with the peers and the reference it needs, so that the package never imports
the checkout.

Method, and why:

* Every engine renders the same patches through the same ``prepare``/``render`` interface;
  each engine's first render after ``prepare`` is checked against the numpy/scipy reference
  (:func:`benchmarks.peers.reference.check`) *before* any of its time counts: an engine that
  renders the wrong sound is reported as FAILED with the reason, not timed, so a fast wrong
  answer never wins.
* That first render is also the warm-up (first touch of buffers, DawDreamer sizing its render
  buffers), and compiled engines get one more untimed render of full length.
* Timed renders alternate engines: repetition ``r`` goes round the engines starting at engine
  ``r mod E``, so a slow drift of the machine (other jobs, thermal limits) affects every engine
  alike instead of whichever engine happened to run during it.
* Each timed render of a compiled engine comes right after a short untimed one of the same
  engine (``WARM_SECONDS``), so that no engine's figure depends on which engines ran just
  before it. Without it the same-math C, which the rotation always runs right after the two
  other C peers, started with its code paths warm, and oscen (after the C) with wasmtime's
  cold: ~40 us more in its first kernel call, 5 % of the seed's 0.75 ms render (it read 0.94x
  of that C in the full roster, 1.0-1.02x with any two of the peers). The figure is the median
  real-time factor (audio seconds / wall seconds); the best run is kept in the JSON.
* The cyclic garbage collector is off while a render is timed (as ``timeit`` does), so a
  collection triggered by one engine's garbage is not charged to another.
* The interpreted oscen engine renders short excerpts (``INTERPRETED_SECONDS``): a 10 s render
  of 64 voices would take about a minute.
* Compile latency is measured separately, ``prepare`` alone, round-robin, median of a few.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the checkout's oscen and benchmarks packages
    sys.path.insert(0, str(ROOT))

from oscen.bench import (  # noqa: E402  (after the path set-up)
    ENGINE_KEYS,
    KNOWN_ENGINE_KEYS,
    BenchUnavailable,
    BenchUsageError,
    Table,
    configure,
    fmt_ms,
    fmt_ratio,
    fmt_rtf,
    print_table,
    source_revision,
)

EXIT_OK = 0
EXIT_OSCEN_FAILED = 1
"""An oscen engine's output failed the reference check (a peer failing does not fail the run)."""

DEFAULT_SECONDS = 10.0
QUICK_SECONDS = 1.0
DEFAULT_REPEATS = 5
QUICK_REPEATS = 2
LATENCY_REPEATS = 3
SAMPLE_RATE = 44100.0
SEED_MIN_CORRELATION = 0.999

REFERENCE_ENGINE = "oscen"
"""Ratios are taken against this engine (oscen compiled)."""


def load_benchmarks() -> tuple[Any, Any]:
    """``benchmarks.peers`` and ``benchmarks.oscen_engine``; :class:`~oscen.bench.BenchUnavailable`
    saying what to install when they fail to import (scipy missing, say)."""
    try:
        import benchmarks.oscen_engine as oscen_engine
        import benchmarks.peers as peers
    except ImportError as exc:
        raise BenchUnavailable(
            f"could not import the benchmarks from {ROOT / 'benchmarks'}: {exc} "
            "(the reference needs scipy: pip install scipy, or pip install -e '.[test]')"
        ) from exc
    return peers, oscen_engine


def make_engines(keys: Sequence[str], peers: Any, oscen_engine: Any) -> list[tuple[str, Any]]:
    """Engine instances for ``keys`` (see :data:`ENGINE_KEYS`), in that order."""
    factories: dict[str, Callable[[], Any]] = {
        "oscen": lambda: oscen_engine.OscenEngine(compiled=True),
        "oscen-interpreted": lambda: oscen_engine.OscenEngine(compiled=False),
        "signalflow": peers.SignalFlowEngine,
        "pyo": peers.PyoEngine,
        "faust": peers.DawDreamerEngine,
        "numba": peers.NumbaEngine,
        "c": peers.CEngine,
        "c-rotation": lambda: peers.CEngine(osc="rotation"),  # oscen's sine algorithm
        "c-same": lambda: peers.CEngine(osc="same"),  # oscen's arithmetic exactly (seed only)
        # the same with 16 vector registers on an AVX-512 CPU (opt-in: see oscen.bench)
        "c-same-16": lambda: peers.CEngine(flags=("-O3", "-march=native", "-mno-avx512f"), osc="same"),
    }
    unknown = [k for k in keys if k not in factories]
    if unknown:
        raise ValueError(
            f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(KNOWN_ENGINE_KEYS)}"
        )
    return [(k, factories[k]()) for k in keys]


# ------------------------------------------------------------------------------------ running
@dataclass
class BenchConfig:
    engines: tuple[str, ...] = ENGINE_KEYS
    patches: tuple[str, ...] = ("seed", "voices64")
    blocks: tuple[int, ...] = (64, 256)
    seconds: float = DEFAULT_SECONDS
    repeats: int = DEFAULT_REPEATS
    latency_repeats: int = LATENCY_REPEATS
    sample_rate: float = SAMPLE_RATE
    interpreted_seconds: dict[str, float] | None = None  # None: oscen_engine.INTERPRETED_SECONDS

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        """Few and short renders: a smoke run for CI, numbers only roughly right."""
        values: dict[str, Any] = {"seconds": QUICK_SECONDS, "repeats": QUICK_REPEATS, "latency_repeats": 1}
        values.update(overrides)
        return cls(**values)


@dataclass
class Measurement:
    """One engine on one patch at one block size."""

    engine: str
    key: str
    patch: str
    block: int
    version: str = ""
    status: str = "ok"  # "ok" or "FAILED"
    reason: str = ""
    seconds: float = 0.0  # audio seconds per render
    prepare_seconds: float = math.nan
    times: list[float] = field(default_factory=list)
    rms_ratio: float = math.nan
    correlation: float = math.nan
    max_abs_error: float = math.nan

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def rtf(self) -> float:
        """Median real-time factor (nan until timed)."""
        return self.seconds / statistics.median(self.times) if self.times else math.nan

    @property
    def best_rtf(self) -> float:
        return self.seconds / min(self.times) if self.times else math.nan


@dataclass
class Latency:
    """``prepare`` latencies of one engine for one patch (seconds), plus oscen's breakdown."""

    engine: str
    key: str
    patch: str
    samples: list[float] = field(default_factory=list)
    frontend: list[float] = field(default_factory=list)
    cranelift: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan


@dataclass
class BenchReport:
    config: BenchConfig
    measurements: list[Measurement] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # engine name -> why not available
    versions: dict[str, str] = field(default_factory=dict)

    def find(self, key: str, patch: str, block: int) -> Measurement | None:
        for m in self.measurements:
            if (m.key, m.patch, m.block) == (key, patch, block):
                return m
        return None

    def engines(self) -> list[tuple[str, str]]:
        """(key, name) of the engines measured, in run order."""
        seen: dict[str, str] = {}
        for m in self.measurements:
            seen.setdefault(m.key, m.engine)
        return list(seen.items())

    def oscen_failed(self) -> bool:
        return any(m.key.startswith("oscen") and not m.ok for m in self.measurements)

    def to_json(self) -> dict[str, Any]:
        def meas(m: Measurement) -> dict[str, Any]:
            d = asdict(m)
            d["rtf_median"], d["rtf_best"] = m.rtf, m.best_rtf
            return d

        return {
            "config": asdict(self.config),
            "measurements": [meas(m) for m in self.measurements],
            "latencies": [asdict(lat) | {"median": lat.median} for lat in self.latencies],
            "skipped": self.skipped,
            "versions": self.versions,
        }


def passes(patch: str, cmp: Any) -> bool:
    """Same sound? RMS within 1 % always; the seed must also correlate (≥ 0.999). voices64 is judged
    on RMS only: a 64-voice sum's waveform is sensitive to each float32 engine's phase rounding,
    its energy is not (the rule of benchmarks/peers/smoke.py)."""
    return bool(cmp.ok(min_correlation=SEED_MIN_CORRELATION if patch == "seed" else None))


def describe_failure(cmp: Any) -> str:
    if not cmp.length_ok:
        return "wrong number of samples"
    return (
        f"differs from the reference: rms ratio {cmp.rms_ratio:.4f}, correlation {cmp.correlation:.4f}, "
        f"max error {cmp.max_abs_error:.2g}"
    )


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


WARM_SECONDS = 0.05
"""Audio seconds of the untimed render before each timed one (see the module docstring)."""


def _timed_render(engine: Any, seconds: float) -> float:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        engine.render(seconds)
        return time.perf_counter() - t0
    finally:
        if was_enabled:
            gc.enable()


def _rotations(items: list[Any], repeats: int) -> list[list[Any]]:
    """Repetition r visits the items starting at item r mod len (round-robin order)."""
    if not items:
        return []
    return [items[r % len(items) :] + items[: r % len(items)] for r in range(repeats)]


def run_bench(
    config: BenchConfig,
    log: Callable[[str], None] | None = None,
    modules: tuple[Any, Any] | None = None,
    engines: Sequence[tuple[str, Any]] | None = None,
) -> BenchReport:
    """Check, then time every available engine on every patch and block size; then compile latency.

    ``engines``: explicit (key, engine) pairs instead of ``config.engines`` (bench_jit's C section
    uses it for C variants); ratios are still taken against the engine keyed ``"oscen"``.
    """
    peers, oscen_engine = modules if modules is not None else load_benchmarks()
    from benchmarks.peers.reference import compare, reference

    log = log or (lambda message: None)
    references: dict[tuple[str, float], Any] = {}  # 64 sines of 10 s are worth computing once
    interp_seconds = config.interpreted_seconds or oscen_engine.INTERPRETED_SECONDS
    report = BenchReport(config)
    candidates = list(engines) if engines is not None else make_engines(config.engines, peers, oscen_engine)
    ready: list[tuple[str, Any]] = []
    for key, engine in candidates:
        reason = engine.available()
        if reason is not None:
            report.skipped[engine.name] = reason
            log(f"skip {engine.name}: {reason}")
            continue
        report.versions[engine.name] = engine.version()
        ready.append((key, engine))

    def seconds_for(engine: Any, patch: str) -> float:
        if getattr(engine, "interpreted", False):
            return min(config.seconds, interp_seconds.get(patch, config.seconds))
        return config.seconds

    try:
        for patch in config.patches:
            for block in config.blocks:
                active: list[tuple[Measurement, Any]] = []
                for key, engine in ready:
                    if not _has_patch(engine, patch):
                        continue
                    m = Measurement(engine.name, key, patch, block, report.versions[engine.name])
                    m.seconds = seconds_for(engine, patch)
                    report.measurements.append(m)
                    try:
                        m.prepare_seconds = engine.prepare(patch, config.sample_rate, block)
                        out = engine.render(m.seconds)
                        ref = references.get((patch, m.seconds))
                        if ref is None:
                            ref = references[(patch, m.seconds)] = reference(
                                patch, m.seconds, config.sample_rate
                            )
                        cmp = compare(out, ref, config.sample_rate)
                        m.rms_ratio, m.correlation, m.max_abs_error = (
                            cmp.rms_ratio,
                            cmp.correlation,
                            cmp.max_abs_error,
                        )
                        if not passes(patch, cmp):
                            m.status, m.reason = "FAILED", describe_failure(cmp)
                        else:
                            if not getattr(engine, "interpreted", False):
                                engine.render(m.seconds)  # warm-up (the check render was the first)
                            active.append((m, engine))
                    except Exception as exc:  # an engine crashing is a result, not the end of the run
                        m.status, m.reason = "FAILED", _error(exc)
                    log(f"  {patch} b{block} {engine.name}: {m.status} {m.reason}".rstrip())
                for order in _rotations(active, config.repeats):
                    for m, engine in order:
                        if not m.ok:
                            continue
                        try:
                            if not getattr(engine, "interpreted", False):
                                engine.render(WARM_SECONDS)  # its own code paths warm, untimed
                            m.times.append(_timed_render(engine, m.seconds))
                        except Exception as exc:
                            m.status, m.reason, m.times = "FAILED", _error(exc), []
                for m, _ in active:
                    log(f"  {patch} b{block} {m.engine}: {fmt_rtf(m.rtf)}")
        report.latencies = _measure_latency(config, ready, log)
    finally:
        for _, engine in ready:
            engine.close()
    return report


def _has_patch(engine: Any, patch: str) -> bool:
    """Whether ``engine`` renders ``patch``: an engine made for some patches only (the C peer with
    oscen's arithmetic, ``c-same``) says so with ``patches``; it is left out of the others' rows."""
    return patch in getattr(engine, "patches", (patch,))


def _measure_latency(
    config: BenchConfig, engines: list[tuple[str, Any]], log: Callable[[str], None]
) -> list[Latency]:
    """``prepare`` alone, round-robin over engines, ``latency_repeats`` times per patch."""
    block = config.blocks[-1]
    out: list[Latency] = []
    for patch in config.patches:
        having = [(key, engine) for key, engine in engines if _has_patch(engine, patch)]
        lats = [Latency(engine.name, key, patch) for key, engine in having]
        pairs = list(zip(lats, (e for _, e in having), strict=True))
        for order in _rotations(pairs, config.latency_repeats):
            for lat, engine in order:
                if lat.error:
                    continue
                try:
                    lat.samples.append(engine.prepare(patch, config.sample_rate, block))
                except Exception as exc:
                    lat.error = _error(exc)
                    continue
                stats = getattr(engine, "compile_stats", None)
                if stats is not None:
                    lat.frontend.append(stats.frontend_seconds)
                    lat.cranelift.append(stats.wasm_seconds)
                engine.close()
        for lat in lats:
            log(f"  latency {patch} {lat.engine}: {fmt_ms(lat.median)} ms {lat.error}".rstrip())
        out.extend(lats)
    return out


# ------------------------------------------------------------------------------------ reporting
def rtf_tables(report: BenchReport) -> list[Table]:
    """One table per block size: engines × patches, real-time factor and ratio to oscen compiled."""
    cfg = report.config
    tables = []
    interp = [m for m in report.measurements if m.key == "oscen-interpreted"]
    for block in cfg.blocks:
        columns = ["engine"]
        for patch in cfg.patches:
            columns += [patch, "vs oscen"]
        table = Table(
            f"Real-time factor (audio s / wall s), {cfg.sample_rate:g} Hz, block {block}: median of "
            f"{cfg.repeats} renders of {cfg.seconds:g} s, engines alternated",
            columns,
        )
        failures = []
        for key, name in report.engines():
            cells = [name]
            for patch in cfg.patches:
                m = report.find(key, patch, block)
                ref = report.find(REFERENCE_ENGINE, patch, block)
                if m is None:
                    cells += ["-", ""]
                elif not m.ok:
                    cells += ["FAILED", ""]
                    failures.append(f"  {name}, {patch}: {m.reason}")
                else:
                    ratio = m.rtf / ref.rtf if ref is not None and ref.ok else math.nan
                    cells += [fmt_rtf(m.rtf), fmt_ratio(ratio)]
            table.add(*cells)
        table.notes.append(
            "vs oscen = engine's real-time factor / oscen (compiled)'s: above 1 the engine is faster."
        )
        if interp:
            lengths = ", ".join(f"{m.patch} {m.seconds:g} s" for m in interp if m.block == block)
            table.notes.append(f"oscen (interpreted) renders shorter excerpts: {lengths}.")
        if failures:
            table.notes.append("FAILED (output checked against the reference before timing; not timed):")
            table.notes.extend(failures)
        for name, reason in report.skipped.items():
            table.notes.append(f"not run: {name}: {reason}")
        tables.append(table)
    return tables


def latency_table(report: BenchReport) -> Table:
    """Compile (``prepare``) latency per engine and patch, and oscen compiled's ratio to each."""
    cfg = report.config
    columns = ["engine"]
    for patch in cfg.patches:
        columns += [f"{patch} (ms)", "oscen / this"]
    table = Table(
        f"Compile latency: prepare() (build + compile + ready to play), median of {cfg.latency_repeats}, "
        f"block {cfg.blocks[-1]}",
        columns,
    )
    by = {(lat.key, lat.patch): lat for lat in report.latencies}
    keys: dict[str, str] = {}
    for lat in report.latencies:
        keys.setdefault(lat.key, lat.engine)
    for key, name in keys.items():
        cells = [name]
        for patch in cfg.patches:
            lat, ref = by.get((key, patch)), by.get((REFERENCE_ENGINE, patch))
            if lat is None or lat.error:
                cells += ["FAILED" if lat is not None else "-", ""]
                continue
            ratio = ref.median / lat.median if ref is not None and lat.median > 0 else math.nan
            cells += [fmt_ms(lat.median), fmt_ratio(ratio)]
        table.add(*cells)
    for patch in cfg.patches:
        lat = by.get((REFERENCE_ENGINE, patch))
        if lat is not None and lat.frontend:
            fe, cl = statistics.median(lat.frontend), statistics.median(lat.cranelift)
            table.notes.append(
                f"oscen (compiled) {patch}: frontend+codegen {fmt_ms(fe)} ms, Cranelift {fmt_ms(cl)} ms, "
                f"graph building + to_ir + state {fmt_ms(max(lat.median - fe - cl, 0.0))} ms"
            )
    table.notes.append(
        "oscen / this above 1: oscen compiles slower. Faust = libfaust → LLVM JIT; numba = type inference + "
        "LLVM; C = a cc -O3 process; SignalFlow, pyo and the interpreter only build objects."
    )
    for lat in report.latencies:
        if lat.error:
            table.notes.append(f"  {lat.engine}, {lat.patch}: {lat.error}")
    return table


def write_chart(report: BenchReport, path: Path) -> None:
    """Grouped bars (one group per patch and block size, one bar per engine), log scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cfg = report.config
    groups = [(p, b) for p in cfg.patches for b in cfg.blocks]
    engines = report.engines()
    width_in = min(13.0, max(7.0, 3.0 + 0.35 * len(groups) * max(len(engines), 1)))
    fig = Figure(figsize=(width_in, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / max(len(engines), 1)
    for i, (key, name) in enumerate(engines):
        xs, ys = [], []
        for g, (patch, block) in enumerate(groups):
            m = report.find(key, patch, block)
            if m is not None and m.ok and math.isfinite(m.rtf):
                xs.append(g - 0.4 + width * (i + 0.5))
                ys.append(m.rtf)
        bars = ax.bar(xs, ys, width, label=name)
        ax.bar_label(bars, labels=[fmt_rtf(y) for y in ys], fontsize=6, rotation=90, padding=2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)), [f"{p}\nblock {b}" for p, b in groups])
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_ylabel("real-time factor (log scale; 1 = real time)")
    ax.set_title(
        f"oscen bench: median of {cfg.repeats} renders, {cfg.sample_rate:g} Hz (missing bar: FAILED)"
    )
    ax.legend(fontsize="small", ncols=2)
    ax.margins(y=0.25)
    fig.savefig(path, dpi=110)


def print_report(report: BenchReport) -> None:
    for table in rtf_tables(report):
        print_table(table)
    print_table(latency_table(report))
    if report.versions:
        print("versions: " + "; ".join(f"{k}: {v}" for k, v in report.versions.items()), flush=True)


# ------------------------------------------------------------------------------------ command line
def config_from_args(args: argparse.Namespace) -> BenchConfig:
    from benchmarks.peers.reference import PATCHES

    unknown = [p for p in args.patches if p not in PATCHES]
    if unknown:
        raise BenchUsageError(f"unknown patch(es) {', '.join(unknown)}; choose from {', '.join(PATCHES)}")
    bad = [k for k in args.engines if k not in KNOWN_ENGINE_KEYS]
    if bad:
        raise BenchUsageError(
            f"unknown engine(s) {', '.join(bad)}; choose from {', '.join(KNOWN_ENGINE_KEYS)}"
        )
    overrides: dict[str, Any] = {
        "engines": tuple(dict.fromkeys(args.engines)),
        "patches": tuple(dict.fromkeys(args.patches)),
        "blocks": tuple(dict.fromkeys(args.blocks)),
    }
    if args.seconds is not None:
        if not args.seconds > 0:
            raise BenchUsageError(f"--seconds must be > 0, got {args.seconds}")
        overrides["seconds"] = args.seconds
    if args.repeats is not None:
        if args.repeats < 1:
            raise BenchUsageError(f"--repeats must be >= 1, got {args.repeats}")
        overrides["repeats"] = args.repeats
    return BenchConfig.quick(**overrides) if args.quick else BenchConfig(**overrides)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for parsed arguments; raises BenchUnavailable/BenchUsageError for the
    caller to report as a user error."""
    modules = load_benchmarks()
    config = config_from_args(args)
    for path in (args.chart, args.json):
        if path is not None and not path.parent.exists():
            raise BenchUsageError(f"cannot write {path}: directory {path.parent} does not exist")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    print(
        f"oscen bench: engines {','.join(config.engines)}; patches {','.join(config.patches)}; "
        f"blocks {','.join(map(str, config.blocks))}; {config.seconds:g} s renders x {config.repeats}"
        + (f"; code: {source_revision()}" if source_revision() else ""),
        flush=True,
    )
    report = run_bench(config, log=log, modules=modules)
    print()
    print_report(report)
    if args.chart is not None:
        write_chart(report, args.chart)
        print(f"wrote {args.chart}")
    if args.json is not None:
        args.json.write_text(json.dumps(report.to_json(), indent=1, default=str))
        print(f"wrote {args.json}")
    return EXIT_OSCEN_FAILED if report.oscen_failed() else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python benchmarks/bench_peers.py`` (same arguments as ``oscen bench``, which runs it)."""
    parser = argparse.ArgumentParser(prog="bench_peers", description=__doc__.split("\n\n")[0])
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (BenchUnavailable, BenchUsageError) as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
