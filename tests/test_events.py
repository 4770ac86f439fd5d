"""Queued events: no hidden limit in any engine (issue 9, item 10).

The compiled kernel's queue of one event input holds EXTERNAL_QUEUE_CAPACITY events; more wait in
GraphState's host-side overflow and are fed in block by block. Every engine accepts the same events
and plays them the same; the one real limit (MAX_EVENTS_PER_SAMPLE events for one input at one
sample) is the same everywhere and raised by ``queue_event``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from jit_support import assert_jit_same, event, make_engine

from oscen.envelopes import AdsrEnvelope
from oscen.gain import Multiply
from oscen.graph import EventInput, Graph, GraphError, Node, StreamOutput
from oscen.jit import CraneliftJit, GraphState, JitGraph
from oscen.oscillators import Oscillator

ENGINES = ("interpreted", "state", "jitgraph")


class Tally(Node):
    """Counts events and sums their first fields (exactly, in any order of arrival)."""

    hit = EventInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.count = 0.0
        self.total = 0.0

    def on_hit(self, value: float) -> None:
        self.count = self.count + 1.0
        self.total = self.total * 0.5 + value  # order matters: a reordered queue shows

    def process(self, sample_rate: float) -> None:
        self.output = self.count * 1000.0 + self.total


def tally() -> Graph:
    g = Graph(44100.0)
    g.add_node(Tally(), "tally")
    return g


def voice() -> Graph:
    g = Graph(44100.0)
    osc = g.add_node(Oscillator.sine(330.0, 0.5), "osc")
    env = g.add_node(AdsrEnvelope(0.002, 0.005, 0.6, 0.003), "env")
    vca = g.add_node(Multiply(), "vca")
    g.connect(osc.output, vca.a)
    g.connect(env.output, vca.b)
    g.set_output(vca.output)
    return g


def test_many_more_events_than_the_kernel_queue_holds_play_as_interpreted() -> None:
    """900 events, queued up front, 3 per 7 samples (so a 1024-sample block holds ~440 of them,
    more than the kernel's queue), in an order that is not their time order."""
    rng = np.random.default_rng(3)
    offsets = rng.permutation(np.arange(900) * 7 // 3)
    actions = [event(0, "tally.hit", float(i % 5), offset=int(o)) for i, o in enumerate(offsets)]
    ref = assert_jit_same(tally, 2200, actions, blocks=1024)
    assert ref[-1] // 1000 == 900


def test_events_queued_later_and_earlier_than_the_overflow_interleave() -> None:
    """Events queued while others wait in the overflow: some before them (so the kernel queue's
    last moves out), some after, some at the same frames (they stay in queueing order)."""
    actions = [event(0, "tally.hit", 1.0, offset=10 + i) for i in range(300)]
    actions += [event(0, "tally.hit", 2.0, offset=5 + 2 * i) for i in range(200)]
    actions += [event(100, "tally.hit", 3.0, offset=i % 50) for i in range(300)]
    actions += [event(100, "tally.hit", 4.0, offset=0) for _ in range(40)]
    ref = assert_jit_same(tally, 1200, actions, blocks=[100, 64, 1036])
    assert ref[-1] // 1000 == 840


def test_300_note_events_render_compiled_like_the_interpreter() -> None:
    actions = [event(0, "env.gate", 1.0 if i % 2 == 0 else 0.0, offset=150 * i) for i in range(300)]
    assert_jit_same(voice, 150 * 300 + 500, actions, blocks=512)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_per_sample_limit_is_the_same_everywhere_and_raised_by_queue_event(engine: str) -> None:
    from oscen.graph.validation import MAX_EVENTS_PER_SAMPLE

    e = make_engine(engine, tally(), CraneliftJit())
    hit = e.graph.handle(0).hit
    target = e.target()
    for _ in range(MAX_EVENTS_PER_SAMPLE):
        target.queue_event(hit, 3, 1.0)
    with pytest.raises(
        GraphError, match=f"already has {MAX_EVENTS_PER_SAMPLE} events waiting at frame 3.*MAX_EVENTS_PER"
    ):
        target.queue_event(hit, 3, 1.0)
    for _ in range(MAX_EVENTS_PER_SAMPLE):  # other samples are fine
        target.queue_event(hit, 4, 1.0)
    out = e.block(8)
    assert (
        out[2] == 0.0
        and out[3] // 1000 == MAX_EVENTS_PER_SAMPLE
        and out[4] // 1000 == 2 * MAX_EVENTS_PER_SAMPLE
    )


def test_compiled_state_keeps_overflowing_events_through_save_and_load() -> None:
    g = tally()
    hit = g.handle(0).hit
    state = GraphState.from_graph(g)
    for i in range(600):
        state.queue_event(hit, 600 - i, float(i))
    waiting = state.pending_events(0, "hit")
    assert len(waiting) == 600
    assert [f for f, _ in waiting] == sorted(f for f, _ in waiting)
    state.save_to_graph(g)
    assert len(list(g.pending_events())) == 600
    again = GraphState.from_graph(g)
    assert again.pending_events(0, "hit") == waiting


def test_jitgraph_carries_overflowing_events_across_a_hot_swap() -> None:
    def build() -> Graph:
        g = tally()
        g.add_node(Oscillator.sine(100.0, 0.0), "extra")
        return g

    reference = build()
    live_graph = build()
    live = JitGraph(live_graph, background=False)
    assert live.wait_compiled(60.0)
    for target, g in ((reference, reference), (live, live_graph)):
        for i in range(700):
            target.queue_event(g.handle(0).hit, 3 + i, float(i % 3))
    out_ref = [reference.process_block(256)]
    out_live = [live.process_block(256)]
    for target in (reference, live):  # an edit: new code swaps in, events still waiting
        target.set_output(target.graph.handle(0).output if target is live else reference.handle(0).output)
    out_ref.append(reference.process_block(800))
    out_live.append(live.process_block(800))
    assert live.mode == "compiled" and live.swap_count == 2
    np.testing.assert_array_equal(np.concatenate(out_live), np.concatenate(out_ref))
    assert out_ref[-1][-1] // 1000 == 700
    live.close()


def test_a_patch_queueing_300_events_renders_compiled(tmp_path: Path) -> None:
    """What ``oscen render`` does with such a patch: the JIT engine, rendered block by block."""
    from oscen.cli import _close_engines
    from oscen.cli import make_engine as cli_engine
    from oscen.io.render import render
    from oscen.patch import load_patch

    patch = tmp_path / "many_notes.py"
    patch.write_text(
        textwrap.dedent(
            """
            from oscen.envelopes import AdsrEnvelope
            from oscen.graph import Graph
            from oscen.oscillators import Oscillator

            def patch(sample_rate):
                g = Graph(sample_rate)
                osc = g.add_node(Oscillator.sine(440.0, 0.5))
                env = g.add_node(AdsrEnvelope(0.001, 0.002, 0.5, 0.002))
                out = osc.output * env.output
                for i in range(300):
                    g.queue_event(env.gate, 40 * i, 1.0 if i % 2 == 0 else 0.0)
                g.set_output(out)
                return g
            """
        )
    )
    interpreted = render(load_patch(patch, 8000.0), 1.6, block_size=256, progress=False)
    engine, used = cli_engine(load_patch(patch, 8000.0), "jit")
    try:
        assert used == "jit", used
        compiled = render(engine, 1.6, block_size=256, progress=False)
        assert engine.mode == "compiled"
    finally:
        _close_engines()
    assert np.max(np.abs(interpreted)) > 0.1
    np.testing.assert_allclose(compiled, interpreted, atol=1e-9, rtol=0)


@pytest.mark.parametrize("seed", range(4))
def test_random_bursts_and_blocks_compiled_equal_interpreted(seed: int) -> None:
    """Random bursts (some at one frame, up to a few hundred at once) queued at random block
    boundaries, random block sizes: every engine hands the node the same events in the same order."""
    rng = np.random.default_rng(seed)
    n = 3000
    cuts = sorted({int(c) for c in rng.integers(1, n, 12)})
    actions = []
    for at in [0, *cuts[::2]]:
        spread = int(rng.choice([1, 30, 600, 2000]))
        burst = int(rng.integers(1, 200 if spread == 1 else 400))  # within MAX_EVENTS_PER_SAMPLE
        for _ in range(burst):
            offset = int(rng.integers(0, spread))
            actions.append(event(at, "tally.hit", float(rng.integers(0, 8)), offset=offset))
    blocks = np.diff([0, *cuts, n]).tolist()
    ref = assert_jit_same(tally, n, actions, blocks=blocks)
    assert ref[-1] // 1000 == sum(1 for a in actions if a.at + a.offset < n)
