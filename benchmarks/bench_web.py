"""The same kernel in a browser and natively: real-time factors in headless Chromium against wasmtime.

    python benchmarks/bench_web.py [--seconds 10] [--runs 3] [--patches seed voices64]

Each patch is exported with ``oscen.export.export_web`` and rendered by the page's
OfflineAudioContext hook (``index.html?render=SECONDS``: the AudioWorklet runs the kernel in
128-frame quanta, as it does live); its wall time is the page's own measurement around
``startRendering()``. The native row runs the identical kernel (compiled for 128-frame blocks)
through wasmtime in 128-frame calls. Runs alternate between the two; medians are reported. Needs
Debian's chromium and chromium-driver and selenium (the test extra).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the checkout's oscen, benchmarks and tests helpers
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.oscen_engine import seed_graph, voices64_graph  # noqa: E402
from oscen.bench import Table, print_table  # noqa: E402
from oscen.export import ExportServer, export_web  # noqa: E402
from oscen.export.web import QUANTUM, compile_for_web  # noqa: E402

SR = 44100.0
PATCHES = {"seed": seed_graph, "voices64": voices64_graph}


def native_seconds(build, seconds: float) -> float:
    compiled, state = compile_for_web(build(SR))
    out = np.empty((1, QUANTUM))
    n = int(seconds * SR) // QUANTUM
    compiled.process_into(state, out)  # binds the kernel to the state: not part of the timing
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            compiled.process_into(state, out)
        return time.perf_counter() - t0
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> int:
    from web_browser import browser_render, start_browser

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--patches", nargs="+", default=list(PATCHES), choices=list(PATCHES))
    args = parser.parse_args(argv)
    driver = start_browser()
    table = Table(
        f"One kernel, two hosts: real-time factor rendering {args.seconds:g} s at {SR:g} Hz in 128-frame quanta "
        f"(median of {args.runs}, runs alternated)",
        ["patch", "headless Chromium (AudioWorklet)", "native wasmtime", "browser / native"],
        align="lrrr",
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.patches:
                folder = Path(tmp) / name
                export_web(PATCHES[name](SR), folder, title=name)
                web, native = [], []
                with ExportServer(folder) as server:
                    browser_render(driver, server.url, 1.0)  # warm-up
                    for _ in range(args.runs):
                        web.append(browser_render(driver, server.url, args.seconds)["wall"])
                        native.append(native_seconds(PATCHES[name], args.seconds))
                w, n = args.seconds / statistics.median(web), args.seconds / statistics.median(native)
                table.add(name, f"{w:,.1f}x", f"{n:,.1f}x", f"{w / n:.2f}")
    finally:
        driver.quit()
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
