"""Clock and Sequencer: events at the exact frames of the stated rules, identical in both engines
and whatever the block sizes.

Clock rule (steady tempo): tick k at frame ceil(k P), P = 60 fs / (bpm division), computed here in
numpy with the same float64 operations; after a tempo change, one new period after the last tick's
exact time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from both_engines import EventProbe, check_example, run_node
from jit_support import assert_same, run_engines
from node_harness import assert_compilable

from oscen.graph import Graph
from oscen.sequencing import Clock, Sequencer, midi_to_hz

BLOCKS = [(512, 333), (1, 7, 1000)]


def tick_frames(y: np.ndarray) -> np.ndarray:
    """Frames at which the probe (rows count, first, second) saw a tick; exactly one each."""
    frames = np.flatnonzero(y[0])
    assert np.all(y[0][frames] == 1.0)
    return frames


@pytest.mark.parametrize(("bpm", "division", "rate"), [(120.0, 4, 44100.0), (97.0, 3, 12000.0), (133.7, 1, 8000.0),
                                                       (300.0, 8, 22050.0)])  # fmt: skip
@pytest.mark.parametrize("blocks", BLOCKS)
def test_clock_ticks_at_ceil_k_period(bpm: float, division: int, rate: float, blocks) -> None:
    period = 60.0 * rate / (bpm * float(division))
    n = int(20 * period) + 3
    k = np.arange(0, 60)
    expected = np.ceil(k * period)
    expected = expected[expected < n].astype(int)
    outs = run_node(lambda: Clock(bpm, division), n, outputs=(), probes=("tick",), sample_rate=rate, blocks=blocks)
    for y in outs.values():
        frames = tick_frames(y)
        np.testing.assert_array_equal(frames, expected)
        np.testing.assert_array_equal(y[1][frames], np.arange(len(frames)))  # the tick index
        np.testing.assert_array_equal(y[2][frames], np.arange(len(frames)) % division)  # place in the beat


def test_tempo_change_keeps_counting_from_the_last_tick() -> None:
    rate, division = 8000.0, 2
    p1 = 60.0 * rate / (120.0 * division)  # 2000 samples
    p2 = 60.0 * rate / (90.0 * division)  # 2666.67 samples
    change = 5 * 2000 + 700  # between tick 5 (frame 10000) and tick 6
    n = 30000
    before = np.ceil(np.arange(6) * p1)
    after = np.ceil(5 * p1 + np.arange(1, 8) * p2)
    expected = np.concatenate([before, after[after < n]]).astype(int)
    outs = run_node(lambda: Clock(120.0, division), n, outputs=(), probes=("tick",), sample_rate=rate,
                    values=[(change, "bpm", 90.0)])  # fmt: skip
    for y in outs.values():
        np.testing.assert_array_equal(tick_frames(y), expected)


def test_speeding_up_past_the_due_time_ticks_at_once() -> None:
    rate = 8000.0
    outs = run_node(lambda: Clock(60.0, 1), 20000, outputs=(), probes=("tick",), sample_rate=rate,
                    values=[(12000, "bpm", 240.0)])  # 8000-sample ticks; at 12000 the new period 2000 has passed
    for y in outs.values():
        np.testing.assert_array_equal(tick_frames(y), [0, 8000, 12000, 14000, 16000, 18000])


def test_reset_restarts_the_count() -> None:
    rate = 8000.0
    outs = run_node(lambda: Clock(120.0, 1), 20000, outputs=(), probes=("tick",), sample_rate=rate,
                    events=[(6100, "reset", ())])  # fmt: skip
    for y in outs.values():
        frames = tick_frames(y)
        np.testing.assert_array_equal(frames, [0, 4000, 6100, 10100, 14100, 18100])
        np.testing.assert_array_equal(y[1][frames], [0, 1, 0, 1, 2, 3])


def test_clock_refuses_a_bad_division() -> None:
    for bad in (0, 2.5, True, "4"):
        with pytest.raises(ValueError, match="division"):
            Clock(120.0, bad)


# ------------------------------------------------------------------------------------- sequencer
NOTES = [60, None, 64, 67.5]
VELOCITIES = [1.0, 1.0, 0.5, 0.7]


def test_sequencer_plays_steps_at_the_clock_frames() -> None:
    rate, gate_time = 10000.0, 0.0123  # 123 samples
    clocks = [0, 500, 1000, 1500, 2000, 2600, 2601]
    outs = run_node(lambda: Sequencer(NOTES, VELOCITIES, gate_time=gate_time), 3000, sample_rate=rate,
                    events=[(f, "clock", ()) for f in clocks], probes=("gate", "note"),
                    outputs=("frequency", "step"))  # fmt: skip
    for y in outs.values():
        frequency, step, gates, gate_v, _, notes, note_n, note_v = y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7]
        # steps: 0 (60), 1 (rest), 2 (64), 3 (67.5), 0 (60), then two clocks: 1 (rest) at 2600, 2 (64) at 2601
        expected_gates = {0: 1.0, 123: 0.0, 1000: 0.5, 1123: 0.0, 1500: 0.7, 1623: 0.0, 2000: 1.0, 2123: 0.0,
                          2601: 0.5, 2724: 0.0}  # fmt: skip
        np.testing.assert_array_equal(np.flatnonzero(gates), sorted(expected_gates))
        np.testing.assert_array_equal(gate_v[sorted(expected_gates)], [expected_gates[f] for f in sorted(expected_gates)])
        np.testing.assert_array_equal(np.flatnonzero(notes), sorted(expected_gates))
        np.testing.assert_array_equal(note_n[[0, 1000, 1500, 2601]], [60.0, 64.0, 67.5, 64.0])
        np.testing.assert_array_equal(note_v[[0, 123, 1000]], [1.0, 0.0, 0.5])
        assert frequency[0] == midi_to_hz(60.0) and frequency[600] == midi_to_hz(60.0)  # held over the rest
        assert frequency[1500] == pytest.approx(midi_to_hz(67.5), rel=1e-15)
        np.testing.assert_array_equal(step[[0, 499, 500, 1000, 1500, 2000, 2600, 2601]], [0, 0, 1, 2, 3, 0, 1, 2])


def test_long_gates_retrigger_and_reset_returns_to_step_zero() -> None:
    rate = 10000.0
    outs = run_node(lambda: Sequencer([60, 62, 64], gate_time=1.0, transpose=12.0), 2000, sample_rate=rate,
                    events=[(0, "clock", ()), (400, "clock", ()), (800, "reset", ()), (800, "clock", ()),
                            (1200, "clock", ())],
                    probes=("gate", "note"), outputs=("step",))  # fmt: skip
    for y in outs.values():
        gates, gate_v, notes, note_n = y[1], y[2], y[4], y[5]
        np.testing.assert_array_equal(np.flatnonzero(gates), [0, 400, 800, 1200])
        np.testing.assert_array_equal(gates[[0, 400, 800, 1200]], [1, 2, 2, 2])  # off, then on, at one frame
        np.testing.assert_array_equal(notes[[0, 400, 800, 1200]], [1, 2, 2, 2])
        assert np.all(gate_v[[0, 400, 800, 1200]] == 1.0)  # the last event at each frame is the note on
        np.testing.assert_array_equal(note_n[[0, 400, 800, 1200]], [72.0, 74.0, 72.0, 74.0])
        np.testing.assert_array_equal(y[0][[0, 400, 800, 1200]], [0, 1, 0, 1])


def test_two_clocks_at_one_frame_advance_two_steps() -> None:
    outs = run_node(lambda: Sequencer([60, 62, 64, 65]), 300, events=[(0, "clock", ()), (100, "clock", ()),
                    (100, "clock", ())], outputs=("step", "frequency"))  # fmt: skip
    for y in outs.values():
        np.testing.assert_array_equal(y[0][[0, 99, 100, 299]], [0, 0, 2, 2])
        assert y[1][100] == midi_to_hz(64.0)


def test_sequencer_refuses_bad_patterns() -> None:
    with pytest.raises(ValueError, match="at least one step"):
        Sequencer([])
    with pytest.raises(ValueError, match="2 velocities"):
        Sequencer([60, 62, 64], [1.0, 0.5])
    with pytest.raises(ValueError, match="step 1: note 'C4'"):
        Sequencer([60, "C4"])
    with pytest.raises(ValueError, match="step 0: velocity"):
        Sequencer([60], [-1.0])


@pytest.mark.parametrize("blocks", BLOCKS)
def test_clock_drives_the_sequencer_at_tempo(blocks) -> None:
    # Clock (150 bpm, 16ths at 8 kHz: 800 samples a tick) -> Sequencer; the notes land on the ticks.
    rate = 8000.0

    def build() -> Graph:
        graph = Graph(rate)
        clock = graph.add_node(Clock(150.0, 4), "clock")
        seq = graph.add_node(Sequencer([48, 55, None, 60], gate_time=0.05), "seq")
        probe = graph.add_node(EventProbe(), "probe")
        graph.connect(clock.tick, seq.clock)
        graph.connect(seq.gate, probe.input)
        graph.set_output(probe.count, probe.first, seq.frequency)
        return graph

    outs = run_engines(build, 8000, engines=("interpreted", "state", "jitgraph"), blocks=blocks)
    for name in ("state", "jitgraph"):
        assert_same(outs["interpreted"], outs[name])
    y = outs["interpreted"]
    ons = [k * 800 for k in range(10) if k % 4 != 2]
    offs = [f + 400 for f in ons]
    np.testing.assert_array_equal(np.flatnonzero(y[0]), sorted(ons + offs))
    assert y[2][7999] == midi_to_hz(55.0) and math.isclose(y[2][0], midi_to_hz(48.0))


def test_example_patch_renders_the_same_in_both_engines() -> None:
    check_example("sequencer_patch.py")


def test_clock_and_sequencer_stay_in_the_compilable_subset() -> None:
    assert_compilable(Clock(300.0, 4), events=[(50, "reset", ())])
    assert_compilable(Sequencer([60, None, 62], gate_time=0.001), events=[(0, "clock", ()), (100, "clock", ()),
                      (100, "reset", ()), (200, "clock", ())])  # fmt: skip


def test_nan_tempo_pauses_nothing_for_good() -> None:
    # a NaN bpm (from a connected signal) counts as the minimum tempo; once it is valid again the
    # ticks resume (the due time passed: at once, then counting from there)
    bpm = np.full(12000, 120.0)
    bpm[100:5000] = np.nan
    outs = run_node(lambda: Clock(120.0, 1), 12000, inputs={"bpm": bpm}, outputs=(), probes=("tick",),
                    sample_rate=8000.0)  # fmt: skip
    for y in outs.values():
        np.testing.assert_array_equal(tick_frames(y), [0, 5000, 9000])
