"""Smoke benchmark of the peer engines: correctness against the reference, then speed.

For every available engine, patch and block size: ``prepare`` (compile latency), one cold
render checked against :mod:`.reference`, then ``--repeats`` timed renders. Prints a markdown
table of real-time factors (audio seconds / wall seconds). This is not the ``oscen bench``
runner, just the check that each peer renders the right sound at a plausible speed.

    python -m benchmarks.peers.smoke [--seconds 10] [--repeats 5] [--variants]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.peers"

from benchmarks.peers import BLOCK_SIZES, PATCHES, PeerEngine, default_engines, variant_engines
from benchmarks.peers.reference import compare, reference


@dataclass
class Row:
    engine: str
    version: str
    patch: str
    block: int
    compile_s: float
    cold_rtf: float
    median_rtf: float
    best_rtf: float
    rms_ratio: float
    correlation: float
    ok: bool


def run_one(
    engine: PeerEngine,
    patch: str,
    block: int,
    seconds: float,
    repeats: int,
    sr: float,
    ref_cache: dict[str, object],
) -> Row:
    """Prepare, check the first render, then time ``repeats`` renders."""
    compile_s = engine.prepare(patch, sr, block)
    t0 = time.perf_counter()
    out = engine.render(seconds)
    cold = time.perf_counter() - t0
    ref = ref_cache.setdefault(patch, reference(patch, seconds, sr))
    cmp = compare(out, ref, sr)  # type: ignore[arg-type]
    # The seed patch must also correlate; voices64 is judged on RMS (a 64-voice sum's waveform
    # is sensitive to each engine's oscillator phase rounding, its energy is not).
    ok = cmp.ok(min_correlation=0.999 if patch == "seed" else None)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        engine.render(seconds)
        times.append(time.perf_counter() - t0)
    return Row(
        engine.name,
        engine.version(),
        patch,
        block,
        compile_s,
        seconds / cold,
        seconds / statistics.median(times),
        seconds / min(times),
        cmp.rms_ratio,
        cmp.correlation,
        ok,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sample-rate", type=float, default=44100.0)
    p.add_argument("--block-sizes", type=int, nargs="+", default=list(BLOCK_SIZES))
    p.add_argument("--patches", nargs="+", default=list(PATCHES), choices=PATCHES)
    p.add_argument("--variants", action="store_true", help="also run the explanatory variants")
    p.add_argument("--only", nargs="+", default=None, help="engine names containing any of these")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)

    engines = default_engines() + (variant_engines() if args.variants else [])
    if args.only:
        engines = [e for e in engines if any(s.lower() in e.name.lower() for s in args.only)]
    rows: list[Row] = []
    ref_cache: dict[str, object] = {}
    failed = False
    for engine in engines:
        reason = engine.available()
        if reason is not None:
            print(f"skip {engine.name}: {reason}", file=sys.stderr)
            continue
        try:
            for patch in args.patches:
                for block in args.block_sizes:
                    row = run_one(
                        engine, patch, block, args.seconds, args.repeats, args.sample_rate, ref_cache
                    )
                    rows.append(row)
                    failed |= not row.ok
                    print(
                        f"  {row.engine:48s} {patch:9s} b{block:<4d} x{row.median_rtf:8.1f}", file=sys.stderr
                    )
        finally:
            engine.close()

    print(f"\n{args.seconds:g} s renders, median/best of {args.repeats}; compile = prepare() latency\n")
    print("| engine | patch | block | compile (s) | cold x | median x | best x | rms ratio | corr | ok |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r.engine} | {r.patch} | {r.block} | {r.compile_s:.3f} | {r.cold_rtf:.0f} | {r.median_rtf:.1f} "
            f"| {r.best_rtf:.1f} | {r.rms_ratio:.6f} | {r.correlation:.6f} | {'yes' if r.ok else 'NO'} |"
        )
    print("\nversions: " + "; ".join(sorted({f"{r.engine}: {r.version}" for r in rows})))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
