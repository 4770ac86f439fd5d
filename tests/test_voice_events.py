"""Events into voice groups behind one "first due sample" test (skeleton: ``due_gate``, ``due<k>``).

A voice group's body reads the queues that are complete when the group runs (external queues,
and the outboxes of sources outside the voice: an allocator's) only from the first sample at
which one of them holds a due event: the caller computes that sample for the voices it runs
(param ``due``), so the fast sample loop tests one compare instead of every queue of every lane.
Outboxes of sources inside the voice (filled while the loop runs) are read every sample, as
before. Checked bit for bit against the interpreter, with events at arbitrary frames, in blocks
of arbitrary sizes, for every lane body (four voices, a pair, one voice)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from jit_support import Action, assert_jit_same, event

from oscen.envelopes import AdsrEnvelope
from oscen.gain import Gain, Multiply
from oscen.graph import EventInput, EventOutput, Graph, Node, StreamOutput, ValueInput
from oscen.jit import CraneliftJit
from oscen.jit.groups import find_groups
from oscen.oscillators import Oscillator

SR = 44100.0
VOICES = 7  # four voices per call, then a pair, then one voice alone


def voices(n: int = VOICES) -> Graph:
    """``n`` saw -> ADSR -> VCA voices, each gated through its own envelope's external queue."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0 / n), "mix")
    for v in range(n):
        osc = graph.add_node(Oscillator.saw(110.0 * (1.0 + 0.13 * v), 0.5, band_limited=True), f"osc{v}")
        env = graph.add_node(AdsrEnvelope(0.001, 0.004, 0.5, 0.003), f"env{v}")
        vca = graph.add_node(Multiply(), f"vca{v}")
        graph.connect(osc.output, vca.a)
        graph.connect(env.output, vca.b)
        graph.connect(vca.output, mix.input)
    graph.set_output(mix.output)
    return graph


def gates(seed: int, n: int = VOICES, count: int = 60, span: int = 3000) -> list[Action]:
    """Gate on/off events at random frames for random voices (some voices several per block,
    some none for long stretches), queued up front or shortly before they are due."""
    rng = np.random.default_rng(seed)
    actions: list[Action] = []
    for _ in range(count):
        at = int(rng.integers(0, span))
        v = int(rng.integers(n))
        velocity = float(rng.choice([0.0, 0.3, 0.9, 1.0]))
        queued = int(rng.integers(0, at + 1)) if rng.random() < 0.5 else 0
        actions.append(event(queued, f"env{v}.gate", velocity, offset=at - queued))
    return actions


def _frames_ok(actions: list[Action]) -> list[Action]:
    """At most one event per voice and frame (queue_event refuses more at one sample than the
    limit; one keeps the test about timing)."""
    seen: set[tuple[str, int]] = set()
    out = []
    for a in actions:
        key = (a.endpoint, a.at + a.offset)
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out


@pytest.mark.parametrize("blocks", [256, [1, 37, 256, 7, 1024], [96]])
@pytest.mark.parametrize("seed", [1, 2])
def test_events_into_voices_play_as_interpreted(blocks, seed) -> None:
    assert_jit_same(voices, 3500, _frames_ok(gates(seed)), blocks=blocks, exact=True)


def test_an_event_at_a_block_s_first_and_last_sample_and_none_for_a_while() -> None:
    actions = [
        event(0, "env0.gate", 1.0),
        event(0, "env6.gate", 1.0, offset=255),  # the last sample of the first block
        event(0, "env3.gate", 1.0, offset=256),  # the first of the second
        event(0, "env0.gate", 0.0, offset=511),
        event(0, "env5.gate", 0.7, offset=2000),  # long after: blocks with nothing due between
        event(0, "env5.gate", 0.0, offset=2001),
    ]
    assert_jit_same(voices, 2600, actions, blocks=256, exact=True)


def _fast_loops(wat: str) -> list[str]:
    """The text of each voice body's fast sample loop (passes.fastpath), not the scalar
    segments' (passes.scalarloop: functions ``seg<k>_fast``)."""
    loops = []
    for m in re.finditer(r"\(block \$_fast \(loop \$_fast__next\n", wat):
        if wat.rfind("(func $seg", 0, m.start()) > wat.rfind("(func $voices", 0, m.start()):
            continue
        end = wat.index("(br $_fast__next)", m.end())
        loops.append(wat[m.end() : end])
    return loops


def test_the_voices_fast_loop_reads_no_queue() -> None:
    """One compare with ``due`` per sample and envelope instead of each lane's queue loop."""
    wat = CraneliftJit(max_block=256).compile(voices().to_ir()).wat
    loops = _fast_loops(wat)
    assert loops, "no fast loop: the test would prove nothing"
    for loop in loops:
        assert "$ev__next" not in loop
        assert "(i32.ge_u (local.get $i) (local.get $due))" in loop


class Pulser(Node):
    """Emits a gate every ``period`` samples (on, then off): an event source inside the voice."""

    period = ValueInput(50.0)  # an input, not a constant of the code: one variant for every voice
    gate = EventOutput()
    output = StreamOutput()

    def __init__(self, period: float) -> None:
        self.period = period
        self._count = 0.0
        self._on = 0.0

    def process(self, sample_rate: float) -> None:
        self._count = self._count + 1.0
        if self._count >= self.period:
            self._count = 0.0
            self._on = 1.0 - self._on
            self.gate.emit(self._on * 0.8)
        self.output = self._on


class Counter(Node):
    """Counts the events it gets (and sums their values): the voice's events made audible."""

    hit = EventInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self._count = 0.0

    def on_hit(self, value: float) -> None:
        self._count = self._count + 1.0 + value

    def process(self, sample_rate: float) -> None:
        self.output = self._count * 0.01


def pulsed_voices(n: int = VOICES) -> Graph:
    """Voices whose envelope is gated by a Pulser in the same voice (read every sample) and by
    external events (behind the gate); a Counter counts the Pulser's events."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0 / n), "mix")
    for v in range(n):
        pulser = graph.add_node(Pulser(37.0 + 11.0 * v), f"pulser{v}")
        osc = graph.add_node(Oscillator.saw(150.0 + 20.0 * v, 0.5), f"osc{v}")
        env = graph.add_node(AdsrEnvelope(0.0005, 0.001, 0.5, 0.0007), f"env{v}")
        count = graph.add_node(Counter(), f"count{v}")
        vca = graph.add_node(Multiply(), f"vca{v}")
        graph.connect(pulser.gate, env.gate)
        graph.connect(pulser.gate, count.hit)
        graph.connect(osc.output, vca.a)
        graph.connect(env.output, vca.b)
        graph.connect(vca.output, mix.input)
        graph.connect(count.output, mix.input)
    graph.set_output(mix.output)
    return graph


@pytest.mark.parametrize("blocks", [256, [1, 37, 256, 7, 1024]])
def test_events_from_inside_the_voice_are_read_every_sample(blocks) -> None:
    ir = pulsed_voices().to_ir()
    (group,) = find_groups(ir)
    assert len(group.voices) == VOICES and len(group.voices[0]) == 5  # the Pulser is in the voice
    assert_jit_same(pulsed_voices, 3000, _frames_ok(gates(5)), blocks=blocks, exact=True)
