"""oscen against its peers by CPU time: bench_peers' engines and patches, each render timed with
``time.process_time()``, best of ``--repeats``, engines alternated.

    python benchmarks/bench_peers_cpu.py [--patches seed,voices64] [--seconds 5] [--repeats 5]

Why beside bench_peers (wall time, median): on a machine other processes share, wall time mostly
measures them (a render of 5 s at 60x takes 80 ms, long enough to be preempted; one at 4,000x is
not), so A/B comparisons of oscen builds need CPU time and the best of several renders. The
engines: oscen compiled, the C peer with libm's sine, with oscen's sine algorithm (a rotation
recurrence) and with exactly oscen's arithmetic (seed only), Faust through DawDreamer where it is
installed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import benchmarks.oscen_engine as oscen_engine  # noqa: E402
import benchmarks.peers as peers  # noqa: E402


def engines() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = [
        ("oscen (compiled)", oscen_engine.OscenEngine(compiled=True)),
        ("C, libm sine", peers.CEngine()),
        ("C, rotation sine", peers.CEngine(osc="rotation")),
        ("C, oscen's math", peers.CEngine(osc="same")),  # bit for bit oscen's (seed only)
    ]
    try:
        import dawdreamer  # noqa: F401

        found.append(("faust (dawdreamer)", peers.DawDreamerEngine()))
    except ImportError:
        print("faust: dawdreamer is not installed (pip install dawdreamer): left out")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", default="seed,voices64")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--block", type=int, default=256)
    args = parser.parse_args()
    patches = args.patches.split(",")
    found = engines()
    rows: dict[str, dict[str, float]] = {name: {} for name, _ in found}
    for patch in patches:
        having = [(name, e) for name, e in found if patch in getattr(e, "patches", (patch,))]
        for _, engine in having:
            engine.prepare(patch, 44100.0, args.block)  # type: ignore[attr-defined]
            engine.render(0.5)  # type: ignore[attr-defined]
        best = {name: float("inf") for name, _ in having}
        for rep in range(args.repeats):
            order = having[rep % len(having) :] + having[: rep % len(having)]
            for name, engine in order:
                t = time.process_time()
                engine.render(args.seconds)  # type: ignore[attr-defined]
                best[name] = min(best[name], time.process_time() - t)
        for name in best:
            rows[name][patch] = args.seconds / best[name]
    print(f"\nReal-time factor by CPU time, 44100 Hz, block {args.block}: best of {args.repeats} renders of "
          f"{args.seconds:g} s, engines alternated")  # fmt: skip
    width = max(len(name) for name in rows)
    print(f"{'engine':<{width}}  " + "  ".join(f"{p:>10}" for p in patches))
    for name, values in rows.items():
        print(
            f"{name:<{width}}  "
            + "  ".join(f"{values[p]:>9,.1f}x" if p in values else f"{'-':>10}" for p in patches)
        )


if __name__ == "__main__":
    main()
