"""The interpreter's cost per node per sample, for each node of the library.

Each node runs alone in a graph (inputs fed by a cheap constant source where it has a stream input),
and the graph's per-sample cost, minus the cost of the bare source graph, is divided by the number
of nodes. Measured with the thread's CPU time, so other jobs on the machine matter less.

    python benchmarks/bench_interpreter.py [--samples N] [--block B]

``--block B`` processes the samples in calls of B samples (default: one call), which shows the
per-call cost (the interpreter snapshots node state per call so that a fault is atomic).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from oscen.delay import Delay
from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass, TptFilter
from oscen.gain import Constant, Gain
from oscen.graph import Graph, Node
from oscen.noise import Noise
from oscen.oscillators import Oscillator
from oscen.reverb import Reverb

CASES: dict[str, Callable[[], Node]] = {
    "Gain": lambda: Gain(0.8),
    "Oscillator.sine": lambda: Oscillator.sine(440.0, 0.5),
    "Oscillator.saw (PolyBLEP)": lambda: Oscillator.saw(440.0, 0.5, band_limited=True),
    "Noise.white": lambda: Noise.white(0.5),
    "IirLowpass": lambda: IirLowpass(1000.0, 0.7),
    "TptFilter": lambda: TptFilter(1000.0, 0.7),
    "AdsrEnvelope": lambda: AdsrEnvelope(0.01, 0.1, 0.5, 0.2),
    "Delay": lambda: Delay(0.01, 0.5),
    "Reverb": lambda: Reverb(),
}


def per_sample(build: Callable[[Graph], None], samples: int, repeats: int = 3, block: int = 0) -> float:
    """Best seconds per sample of a graph built by ``build`` (in calls of ``block`` samples)."""
    block = block or samples
    calls = max(1, samples // block)
    best = float("inf")
    for _ in range(repeats):
        graph = Graph(44100.0)
        build(graph)
        graph.process_block(64)  # plan built, caches warm
        t0 = time.thread_time()
        for _ in range(calls):
            graph.process_block(block)
        best = min(best, (time.thread_time() - t0) / (calls * block))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--block", type=int, default=0, help="samples per call (default: all in one)")
    args = parser.parse_args()

    def source_only(g: Graph) -> None:
        g.add_node(Constant(0.25))

    base = per_sample(source_only, args.samples, block=args.block)
    calls = f"in calls of {args.block}" if args.block else "in one call"
    print(f"interpreter, {args.samples} samples per run {calls}, best of 3 (thread CPU time)")
    print(f"{'node':28s} {'ns / node / sample':>20s}")
    print(f"{'(Constant source alone)':28s} {base * 1e9:20.0f}")
    for name, make in CASES.items():

        def build(g: Graph, make: Callable[[], Node] = make) -> None:
            src = g.add_node(Constant(0.25))
            node = g.add_node(make())
            if "input" in type(node.node)._endpoints:
                g.connect(src.output, node.input)

        cost = per_sample(build, args.samples, block=args.block) - base
        print(f"{name:28s} {cost * 1e9:20.0f}")


if __name__ == "__main__":
    main()
