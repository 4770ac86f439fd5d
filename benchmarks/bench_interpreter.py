"""The interpreter's cost per node per sample, for each node of the library.

Each node runs alone in a graph (inputs fed by a cheap constant source where it has a stream input),
and the graph's per-sample cost, minus the cost of the bare source graph, is divided by the number
of nodes. Measured with the thread's CPU time, so other jobs on the machine matter less.

    python benchmarks/bench_interpreter.py [--samples N]
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


def per_sample(build: Callable[[Graph], None], samples: int, repeats: int = 3) -> float:
    """Best seconds per sample of a graph built by ``build``."""
    best = float("inf")
    for _ in range(repeats):
        graph = Graph(44100.0)
        build(graph)
        graph.process_block(64)  # plan built, caches warm
        t0 = time.thread_time()
        graph.process_block(samples)
        best = min(best, (time.thread_time() - t0) / samples)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    args = parser.parse_args()

    def source_only(g: Graph) -> None:
        g.add_node(Constant(0.25))

    base = per_sample(source_only, args.samples)
    print(f"interpreter, {args.samples} samples per run, best of 3 (thread CPU time)")
    print(f"{'node':28s} {'ns / node / sample':>20s}")
    print(f"{'(Constant source alone)':28s} {base * 1e9:20.0f}")
    for name, make in CASES.items():

        def build(g: Graph, make: Callable[[], Node] = make) -> None:
            src = g.add_node(Constant(0.25))
            node = g.add_node(make())
            if "input" in type(node.node)._endpoints:
                g.connect(src.output, node.input)

        cost = per_sample(build, args.samples) - base
        print(f"{name:28s} {cost * 1e9:20.0f}")


if __name__ == "__main__":
    main()
