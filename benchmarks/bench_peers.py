"""oscen against its peers, from the checkout: the same run as ``oscen bench``.

    python benchmarks/bench_peers.py [--quick] [--engines oscen,c,...] [--patches seed,voices64]
                                     [--blocks 64,256] [--chart out.png] [--json out.json]

The runner lives in :mod:`oscen.bench` so that the ``oscen bench`` command of an installed oscen
can run it too; this script only makes the checkout importable and calls it. See that module's
docstring for the method (reference check before timing, round-robin repetitions, medians).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the checkout's oscen and benchmarks packages
    sys.path.insert(0, str(ROOT))

from oscen.bench import main  # noqa: E402  (after the path set-up)

if __name__ == "__main__":
    raise SystemExit(main())
