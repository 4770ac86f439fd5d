"""Voices as lanes (issue 11): ns per voice-sample of a voice group's body run voice by voice, as
interleaved lanes, and packed into f64x2, on wasmtime.

Each voice is a sine oscillator into a lowpass (other frequencies and cutoffs per voice): the
library's Oscillator.sine with its math inlined (small graphs) or called (large graphs: packed
code calls simd's f64x2 sin), and a sine by a polynomial in plain arithmetic (the shape of the
oscillator's branch-free sine, issue 11 item 5), which packs entirely; the bodies are built from the real node variants as the skeleton builds a group's
step (tests/lanes_support.py). All rows compute the same memory, bit for bit (checked first).

    .venv/bin/python benchmarks/bench_lanes.py [--voices 16] [--block 256] [--seconds 0.3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from lanes_support import (  # noqa: E402
    HEADER_BYTES,
    Runner,
    lane_module,
    poly_lowpass,
    sequential_module,
    voice_body,
)

from oscen.filters import IirLowpass  # noqa: E402
from oscen.graph import Graph  # noqa: E402
from oscen.jit.layout import LANE  # noqa: E402
from oscen.jit.passes.lanes import lanes  # noqa: E402
from oscen.oscillators import Oscillator  # noqa: E402

SR = 44100.0


def sine_lowpass(v: int) -> Graph:
    g = Graph(SR)
    osc = g.add_node(Oscillator.sine(110.0 * (1 + v % 7) + 3.0 * v, 0.5))
    lp = g.add_node(IirLowpass(500.0 + 150.0 * v, 0.7))
    g.connect(osc.output, lp.input)
    g.set_output(lp.output)
    return g


def time_runner(r: Runner, block: int, seconds: float) -> float:
    """Best seconds per call of ``run(block)`` over repeated rounds of about ``seconds``."""
    calls = 1
    while True:
        t0 = time.process_time()
        for _ in range(calls):
            r.run(block)
        dt = time.process_time() - t0
        if dt > seconds / 5:
            break
        calls *= 2
    best = dt / calls
    for _ in range(2):
        t0 = time.process_time()
        for _ in range(calls):
            r.run(block)
        best = min(best, (time.process_time() - t0) / calls)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voices", type=int, default=16)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=0.3)
    args = ap.parse_args(argv)
    for label, make, inline in (
        ("Oscillator.sine -> IirLowpass (math inlined)", sine_lowpass, True),
        ("Oscillator.sine -> IirLowpass (math called: f64x2 forms)", sine_lowpass, False),
        ("polynomial sine (plain arithmetic) -> IirLowpass", poly_lowpass, True),
    ):
        table(label, make, inline, args)


def table(label: str, make, inline_math: bool, args: argparse.Namespace) -> None:
    vb = voice_body(make, args.voices, inline_math=inline_math, max_block=args.block)
    rows = [
        ("voice by voice", sequential_module(vb, args.voices)),
        ("interleaved W=2", lane_module(vb, args.voices, 2, lanes(vb.body, vb.locals, 2, pack=False))),
        ("interleaved W=4", lane_module(vb, args.voices, 4, lanes(vb.body, vb.locals, 4, pack=False))),
        ("packed f64x2 W=2", lane_module(vb, args.voices, 2, lanes(vb.body, vb.locals, 2))),
        ("packed f64x2 W=4", lane_module(vb, args.voices, 4, lanes(vb.body, vb.locals, 4))),
    ]
    runners = [(name, Runner(m, vb, args.voices)) for name, m in rows]
    size = HEADER_BYTES + args.voices * vb.vs
    ref = None
    for name, r in runners:  # the same memory first, bit for bit (LANE apart)
        r.run(args.block)
        got = r.bytes[:size].copy()
        got[LANE : LANE + 4] = 0
        if ref is None:
            ref = got
        elif not np.array_equal(ref, got):
            raise SystemExit(f"{name}: memory differs from voice by voice")
    print(f"\n{args.voices} voices of {label}, block {args.block} (CPU time, best of 5 rounds)")
    print(f"{'variant':<20}{'ns/voice-sample':>16}{'speed-up':>10}")
    best = [float("inf")] * len(runners)
    for _ in range(5):  # round robin: the machine's noise hits every row alike
        for j, (_, r) in enumerate(runners):
            best[j] = min(best[j], time_runner(r, args.block, args.seconds / 5))
    base = None
    for (name, _), t in zip(runners, best, strict=True):
        ns = t / (args.block * args.voices) * 1e9
        base = base or ns
        print(f"{name:<20}{ns:>16.2f}{base / ns:>9.2f}x")


if __name__ == "__main__":
    main()
