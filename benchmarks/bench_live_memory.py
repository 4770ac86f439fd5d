"""Memory and threads of the live layer: what a swap, a kernel switch and a dropped JitGraph cost.

    .venv/bin/python benchmarks/bench_live_memory.py [--swaps 300] [--switches 200] [--graphs 200]

Prints one table: RSS growth per hot swap (JitGraph, gc.freeze on, a 61-node chain alternately
given a new Gain, compiled, and back to the chain alone, cached; measured once the kernel cache of
16 is full), per switch of one GraphState between two kernels of the same IR,
and the compiler threads left after dropping JitGraphs without ``close()``. Issue 9 measured
213 KB per swap (3 nodes), 640 KB per switch and one thread per dropped graph on 539fcd8.
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time

from oscen.gain import Gain
from oscen.graph import Graph, NodeHandle
from oscen.jit import CraneliftJit, GraphState, JitGraph
from oscen.oscillators import Oscillator

SR = 44100.0


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def per_swap(swaps: int) -> tuple[float, float]:
    """(bytes of RSS, seconds) per swap, after 40 swaps of warm-up (the kernel cache fills)."""
    graph = Graph(SR)
    last = graph.add_node(Oscillator.sine(440.0, 0.5))
    for _ in range(60):
        node = graph.add_node(Gain(1.0))
        graph.connect(last.output, node.input)
        last = node
    live = JitGraph(graph, background=False, freeze_gc=True)
    extra: list[NodeHandle] = []

    def swap() -> None:
        if extra:
            live.remove_node(extra.pop())
        else:
            gain = live.add_node(Gain(0.5))
            live.connect(last.output, gain.input)
            extra.append(gain)
        live.process_block(64)

    for _ in range(40):
        swap()
    before, t0 = rss(), time.perf_counter()
    for _ in range(swaps):
        swap()
    result = (rss() - before) / swaps, (time.perf_counter() - t0) / swaps
    live.close()
    return result


def per_switch(switches: int) -> float:
    graph = Graph(SR)
    graph.add_node(Oscillator.saw(220.0, 0.3))
    jit = CraneliftJit()
    ir = graph.to_ir()
    a, b = jit.compile(ir), jit.compile(ir)
    state = GraphState.from_graph(graph, jit.max_block, ir)
    for k in range(10):
        (a if k % 2 else b).process_block(state, 32)
    before = rss()
    for k in range(switches):
        (a if k % 2 else b).process_block(state, 32)
    return (rss() - before) / switches


def threads_left(graphs: int) -> int:
    def count() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "oscen-jit")

    baseline = count()
    for _ in range(graphs):
        JitGraph(Graph(SR))
    deadline = time.monotonic() + 30.0
    while count() > baseline and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    return count() - baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=300)
    parser.add_argument("--switches", type=int, default=200)
    parser.add_argument("--graphs", type=int, default=200)
    args = parser.parse_args()
    swap_bytes, swap_seconds = per_swap(args.swaps)
    switch_bytes = per_switch(args.switches)
    left = threads_left(args.graphs)
    print(f"bench_live_memory: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("| measure | value |")
    print("|---|---|")
    print(f"| RSS per hot swap ({args.swaps} swaps, 61 nodes, gc.freeze) | {swap_bytes / 1024:.1f} KB |")
    print(f"| time per hot swap (half compiled, half cached; foreground) | {swap_seconds * 1e3:.1f} ms |")
    print(f"| RSS per kernel switch of one state ({args.switches} switches) | {switch_bytes / 1024:.1f} KB |")
    print(f"| compiler threads left after dropping {args.graphs} JitGraphs | {left} |")


if __name__ == "__main__":
    main()
