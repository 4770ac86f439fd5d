"""Cost per sample of the sampler, wavetable, modulation, stereo, distortion and dynamics nodes,
compiled and interpreted.

Each node runs alone in a graph, fed by a white-noise source where it has an ``input`` (a note
is started for the sampler), and the bare source graph's cost is subtracted. Compiled: the best of
several one-second renders (``CraneliftJit`` on a ``GraphState``); interpreted: the best of a few
short blocks. Times are the thread's CPU time, so other jobs on the machine matter less, but a
loaded machine still inflates them: compare rows with each other, not with other runs.

    python benchmarks/bench_node_families.py [--seconds S]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from oscen.distortion import Waveshaper
from oscen.dynamics import Compressor, EnvelopeFollower, Limiter
from oscen.graph import Graph, Node
from oscen.jit import CraneliftJit, GraphState
from oscen.modulation import Lfo, SampleAndHold, Slew
from oscen.noise import Noise
from oscen.sampler import AudioFileInput, Sampler
from oscen.stereo import Panner, StereoWidth
from oscen.wavetable import Wavetable

SR = 44100.0
SOURCE = np.sin(2 * np.pi * 220.0 * np.arange(int(SR)) / SR)

CASES: dict[str, Callable[[], Node]] = {
    "Sampler (pitched, looped)": lambda: Sampler(SOURCE, 57, "loop", 1000, 40000),
    "AudioFileInput (resampled)": lambda: AudioFileInput(SOURCE, loop=True, sample_rate=48000.0),
    "Wavetable.basic (morphing)": lambda: Wavetable.basic(220.0, position=0.4),
    "Lfo sine": lambda: Lfo(2.0),
    "SampleAndHold": SampleAndHold,
    "Slew": Slew,
    "Panner": Panner,
    "StereoWidth": StereoWidth,
    "Waveshaper tanh 1x": lambda: Waveshaper(3.0, "tanh", 1),
    "Waveshaper tanh 2x": lambda: Waveshaper(3.0, "tanh", 2),
    "Waveshaper tanh 4x": lambda: Waveshaper(3.0, "tanh", 4),
    "EnvelopeFollower": EnvelopeFollower,
    "Compressor": Compressor,
    "Limiter (5 ms look-ahead)": Limiter,
}


def build(make: Callable[[], Node] | None) -> Graph:
    graph = Graph(SR)
    source = graph.add_node(Noise.white(0.9, seed=1))
    out = source.output
    if make is not None:
        node = make()
        handle = graph.add_node(node, "node")
        if "input" in type(node).endpoints():
            graph.connect(source.output, handle.input)
        if "note" in type(node).endpoints():
            graph.queue_event(handle.note, 0, (60.0, 1.0))
        outputs = [name for name in ("output", "left") if name in type(node).endpoints()]
        out = getattr(handle, outputs[0])
    graph.set_output(out)
    return graph


def cpu_best(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        run()
        best = min(best, time.thread_time() - start)
    return best


def compiled_cost(make: Callable[[], Node] | None, samples: int) -> float:
    graph = build(make)
    compiled = CraneliftJit().compile(graph.to_ir())
    state = GraphState.from_graph(graph)
    compiled.process_block(state, 1024)
    return cpu_best(lambda: compiled.process_block(state, samples), 5) / samples


def interpreted_cost(make: Callable[[], Node] | None, samples: int) -> float:
    graph = build(make)
    graph.process_block(64)
    return cpu_best(lambda: graph.process_block(samples), 3) / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="compiled render length (default 1)")
    args = parser.parse_args()
    samples = int(args.seconds * SR)
    short = 2000
    base_c = compiled_cost(None, samples)
    base_i = interpreted_cost(None, short)
    print(f"{'node':<28} {'compiled ns/sample':>19} {'x real time':>12} {'interpreted us/sample':>22}")
    for name, make in CASES.items():
        c = max(compiled_cost(make, samples) - base_c, 1e-12)
        i = max(interpreted_cost(make, short) - base_i, 1e-12)
        print(f"{name:<28} {c * 1e9:>19.1f} {1.0 / (c * SR):>12,.0f} {i * 1e6:>22.1f}")


if __name__ == "__main__":
    main()
