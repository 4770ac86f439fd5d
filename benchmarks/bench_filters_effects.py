"""Compiled cost per sample of the ladder, one-poles, combs, effects, Pluck and the clock, each
alone behind a saw (minus the bare saw graph), next to the biquad and the TptFilter for scale.

Thread CPU time, best of several runs, so other jobs on the machine matter less (but on a shared
machine the numbers are still only indicative):

    python benchmarks/bench_filters_effects.py [--blocks N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from oscen.effects import Chorus, Flanger, Phaser
from oscen.filters import (
    AllpassFilter,
    CombFilter,
    DcBlocker,
    IirLowpass,
    LadderFilter,
    OnePoleLowpass,
    TptFilter,
)
from oscen.graph import Graph, Node
from oscen.jit import CraneliftJit, GraphState
from oscen.oscillators import Oscillator
from oscen.pluck import Pluck
from oscen.sequencing import Clock

CASES: dict[str, Callable[[], Node]] = {
    "IirLowpass (for scale)": lambda: IirLowpass(1000.0, 0.7),
    "TptFilter (for scale)": lambda: TptFilter(1000.0, 0.7),
    "OnePoleLowpass": lambda: OnePoleLowpass(1000.0),
    "DcBlocker": DcBlocker,
    "LadderFilter": lambda: LadderFilter(1000.0, 0.8, 2.0),
    "CombFilter (feedback)": lambda: CombFilter(0.0031, 0.7),
    "AllpassFilter": AllpassFilter,
    "Chorus": Chorus,
    "Flanger": Flanger,
    "Phaser (4 stages)": Phaser,
    "Phaser (12 stages)": lambda: Phaser(12),
    "Pluck": Pluck,
    "Clock": Clock,
}
BLOCK = 1024


def seconds_per_sample(make: Callable[[], Node] | None, blocks: int) -> float:
    graph = Graph(44100.0)
    saw = graph.add_node(Oscillator.saw(110.0, 0.5))
    if make is not None:
        node = graph.add_node(make())
        if "input" in type(node.node)._endpoints:
            graph.connect(saw.output, node.input)
    compiled = CraneliftJit().compile(graph.to_ir())
    state = GraphState.from_graph(graph)
    compiled.process_block(state, BLOCK)
    best = float("inf")
    for _ in range(7):
        start = time.thread_time()
        for _ in range(blocks):
            compiled.process_block(state, BLOCK)
        best = min(best, time.thread_time() - start)
    return best / (blocks * BLOCK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=40, help="blocks of 1024 samples per run")
    args = parser.parse_args()
    base = seconds_per_sample(None, args.blocks)
    print(f"{'node':<26} {'ns/sample':>10} {'x real time (one node)':>24}")
    for name, make in CASES.items():
        cost = max(seconds_per_sample(make, args.blocks) - base, 1e-12)
        print(f"{name:<26} {cost * 1e9:>10.1f} {1.0 / (cost * 44100.0):>24,.0f}")


if __name__ == "__main__":
    main()
