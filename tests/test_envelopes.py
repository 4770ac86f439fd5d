"""AdsrEnvelope: exact stage timings in samples, levels, retrigger and release continuity."""

from __future__ import annotations

import numpy as np
import pytest
from jit_support import assert_jit_same, event, set_value
from node_harness import SR, assert_compilable, assert_jit_matches, run

from oscen.envelopes import AdsrEnvelope
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.jit.groups import find_groups


def render(env: AdsrEnvelope, n: int, gates: list[tuple[int, float]], sample_rate: float = SR) -> np.ndarray:
    events = [(i, "gate", (v,)) for i, v in gates]
    return run(env, n, sample_rate, events=events)["output"]


def test_stage_timings_are_exact() -> None:
    sr = 1000.0  # easy numbers: A = 10, D = 20, R = 30 samples
    t0, t1 = 5, 100
    y = render(AdsrEnvelope(0.010, 0.020, 0.5, 0.030), 200, [(t0, 1.0), (t1, 0.0)], sr)
    assert np.all(y[:t0] == 0.0)
    assert y[t0] == 0.0  # the gate's sample outputs the start level
    # attack: exact linear ramp, peak exactly A samples after the gate
    np.testing.assert_allclose(y[t0 : t0 + 11], np.arange(11) / 10.0, atol=1e-15)
    assert y[t0 + 10] == 1.0
    assert np.all(y[t0 : t0 + 10] < 1.0)
    # decay: to sustain exactly D samples after the peak
    np.testing.assert_allclose(y[t0 + 10 : t0 + 31], 1.0 - 0.5 * np.arange(21) / 20.0, atol=1e-15)
    assert y[t0 + 30] == 0.5 and y[t0 + 29] > 0.5
    # sustain holds until the gate off; the gate-off sample still outputs the held level
    assert np.all(y[t0 + 30 : t1 + 1] == 0.5)
    # release: reaches 0 exactly R samples after the gate off, and stays there
    np.testing.assert_allclose(y[t1 : t1 + 31], 0.5 * (1.0 - np.arange(31) / 30.0), atol=1e-15)
    assert y[t1 + 29] > 0.0 and y[t1 + 30] == 0.0
    assert np.all(y[t1 + 30 :] == 0.0)
    assert env_stage_after(AdsrEnvelope(0.010, 0.020, 0.5, 0.030), sr) == "idle"


def env_stage_after(env: AdsrEnvelope, sr: float) -> str:
    render(env, 100, [(0, 1.0), (40, 0.0)], sr)
    return env.stage


@pytest.mark.parametrize(("attack", "decay", "release"), [(0.0101, 0.0333, 0.0507), (0.25, 0.1, 0.4)])
def test_timings_at_44k1_round_to_samples(attack: float, decay: float, release: float) -> None:
    a, d, r = round(attack * SR), round(decay * SR), round(release * SR)
    t1 = a + d + 100
    env = AdsrEnvelope(attack, decay, 0.3, release)
    y = render(env, t1 + r + 10, [(0, 0.8), (t1, 0.0)])
    peak, sustain = 0.8, 0.8 * 0.3
    assert int(np.argmax(y)) == a and y[a] == peak
    assert y[a + d] == pytest.approx(sustain, abs=1e-15) and y[a + d - 1] > sustain
    assert y[t1 + r] == 0.0 and y[t1 + r - 1] > 0.0
    # slopes are constant within each stage
    np.testing.assert_allclose(np.diff(y[: a + 1]), peak / a, rtol=1e-9)
    np.testing.assert_allclose(np.diff(y[a : a + d + 1]), (sustain - peak) / d, rtol=1e-9)
    np.testing.assert_allclose(np.diff(y[t1 : t1 + r + 1]), -sustain / r, rtol=1e-9)


def test_velocity_sets_peak_and_is_clipped_to_one() -> None:
    y = render(AdsrEnvelope(0.001, 0.001, 0.5, 0.001), 200, [(0, 0.25)])
    assert y.max() == 0.25 and y[-1] == 0.125
    y = render(AdsrEnvelope(0.001, 0.001, 0.5, 0.001), 200, [(0, 3.0)])
    assert y.max() == 1.0


def test_retrigger_starts_from_current_level() -> None:
    sr = 1000.0
    env = AdsrEnvelope(0.010, 0.010, 0.4, 0.050)
    # note on, note off during release, retrigger at 60% of the way down
    y = render(env, 200, [(0, 1.0), (50, 0.0), (70, 0.6)], sr)
    level_before = y[69]
    assert y[70] == level_before  # continuity: no jump
    # attack from there to the new peak 0.6 in exactly 10 samples
    np.testing.assert_allclose(
        y[70:81], level_before + (0.6 - level_before) * np.arange(11) / 10.0, atol=1e-15
    )
    assert np.max(np.abs(np.diff(y))) <= 0.1 + 1e-12  # never steeper than a full-scale attack


def test_retrigger_during_attack_and_decay_is_continuous() -> None:
    sr = 1000.0
    env = AdsrEnvelope(0.020, 0.020, 0.2, 0.020)
    y = render(env, 150, [(0, 1.0), (7, 1.0), (35, 0.5)], sr)
    assert y[7] == y[6] and y[35] == y[34]
    assert y[7 + 20] == 1.0  # the retriggered attack takes the full attack time
    assert y[35 + 20] == 0.5
    assert np.max(np.abs(np.diff(y))) < 0.06


def test_release_during_attack_starts_from_current_level() -> None:
    sr = 1000.0
    y = render(AdsrEnvelope(0.100, 0.1, 0.5, 0.010), 150, [(0, 1.0), (40, 0.0)], sr)
    assert y[40] == y[39] == pytest.approx(0.39)
    np.testing.assert_allclose(y[40:51], 0.39 * (1 - np.arange(11) / 10.0), atol=1e-15)
    assert np.all(y[50:] == 0.0)


def test_zero_times_jump_immediately() -> None:
    sr = 1000.0
    y = render(AdsrEnvelope(0.0, 0.0, 0.6, 0.0), 20, [(3, 1.0), (10, 0.0)], sr)
    # zero attack and decay: the gate sample is already at the sustain level; zero release: 0 at once
    np.testing.assert_array_equal(y, [0, 0, 0] + [0.6] * 7 + [0.0] * 10)
    y = render(AdsrEnvelope(0.0, 0.005, 0.6, 0.0), 12, [(0, 1.0)], sr)
    assert y[0] == 1.0 and y[5] == 0.6


def test_note_off_when_idle_is_ignored_and_sustain_follows_its_input() -> None:
    sr = 1000.0
    env = AdsrEnvelope(0.001, 0.001, 0.5, 0.001)
    y = render(env, 10, [(2, 0.0)], sr)
    assert np.all(y == 0.0) and env.stage == "idle"
    y = run(
        env,
        20,
        sr,
        inputs={"sustain": np.r_[np.full(10, 0.5), np.full(10, 0.8)]},
        events=[(0, "gate", (1.0,))],
    )
    assert y["output"][5] == 0.5 and y["output"][15] == 0.8


def test_compilable_subset() -> None:
    events = [(0, "gate", (1.0,)), (100, "gate", (0.0,)), (120, "gate", (0.5,)), (250, "gate", (0.0,))]
    assert_compilable(AdsrEnvelope(0.001, 0.001, 0.5, 0.001), 300, events=events)


def test_jit_matches_interpreter() -> None:
    events = [
        (10, "gate", 1.0),
        (900, "gate", 0.0),
        (1000, "gate", 0.6),
        (1003, "gate", 0.9),
        (3000, "gate", 0.0),
    ]
    assert_jit_matches(lambda: AdsrEnvelope(0.005, 0.01, 0.4, 0.02), noise_into=(), events=events)


def adsr_voices(params: list[tuple[float, float, float, float]]) -> Graph:
    """One AdsrEnvelope per parameter set, summed: identical copies, so the JIT runs them as one
    voice group in SIMD lanes (two voices per instruction), each with its own gates."""
    graph = Graph(1000.0)
    mix = graph.add_node(Gain(1.0), "mix")
    for k, (a, d, s, r) in enumerate(params):
        env = graph.add_node(AdsrEnvelope(a, d, s, r), f"env{k}")
        graph.connect(env.output, mix.input)
    graph.set_output(mix.output)
    return graph


@pytest.mark.parametrize("blocks", [256, [1, 7, 64, 333]])
def test_voices_in_lanes_equal_the_interpreter_with_gates_at_arbitrary_frames(blocks) -> None:
    """Six envelopes, zero-length stages included, gated at random frames (retriggers, note-offs in
    every stage, several gates at one sample, a note-off when idle) and with sustain changed while
    held: the compiled lanes equal the interpreter bit for bit (the envelope is + - * / code)."""
    rng = np.random.default_rng(11)
    params = [(0.0, 0.0, 0.6, 0.0), (0.01, 0.02, 0.5, 0.03), (0.003, 0.0, 0.9, 0.05),
              (0.02, 0.01, 0.0, 0.001), (0.05, 0.05, 1.0, 0.0), (0.0, 0.04, 0.3, 0.02)]  # fmt: skip
    actions = []
    for k in range(len(params)):
        for at in sorted(rng.integers(0, 1400, 14)):
            velocity = float(rng.choice([0.0, 0.0, rng.uniform(0.05, 1.3)]))
            actions.append(event(int(at), f"env{k}.gate", (velocity,)))
    actions.append(event(300, "env1.gate", (0.8,)))
    actions.append(event(300, "env1.gate", (0.0,)))
    actions.append(event(300, "env1.gate", (0.4,)))  # three gates at one sample: the last one wins
    actions.append(set_value(700, "env2.sustain", 0.25))
    actions.sort(key=lambda a: a.at)
    (group,) = find_groups(adsr_voices(params).to_ir())
    assert len(group.voices) == len(params)
    assert_jit_same(lambda: adsr_voices(params), 1500, actions, blocks=blocks, exact=True)


def test_a_stage_change_is_the_only_branch_of_a_sample() -> None:
    """The per-sample path is one comparison (a stage ends, or a gate started one) then straight
    arithmetic and a select: the compiled process has one `if` besides the rare stage change."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(AdsrEnvelope.process)))
    ifs = [n for n in ast.walk(tree) if isinstance(n, ast.If)]
    assert len(ifs) == 1 and len(ifs[0].body) == 1
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.While, ast.For))]


def test_the_held_level_follows_a_sustain_that_moves_every_sample() -> None:
    """Sustain is a ramp of slope 0 from the held level, recomputed when ``sustain`` changes: a
    sustain that moves every sample (and out of [0, 1]) still gives clamp(sustain) * peak at every
    held sample, exactly, and the release starts from the last held level."""
    sr = 1000.0
    env = AdsrEnvelope(0.002, 0.003, 0.5, 0.004)
    sustain = np.r_[np.full(10, 0.5), np.linspace(0.9, -0.2, 30), np.full(20, 1.4)]
    y = run(env, 60, sr, inputs={"sustain": sustain}, events=[(0, "gate", (0.8,)), (50, "gate", (0.0,))])["output"]
    held = np.clip(sustain, 0.0, 1.0) * 0.8
    np.testing.assert_array_equal(y[5:51], held[5:51])  # the gate-off sample still outputs it
    assert y[51] == pytest.approx(held[50] * 3 / 4, abs=1e-15) and y[54] == 0.0


def test_two_gates_at_one_sample_and_a_gate_before_any_sample_start_from_the_last_output() -> None:
    """The level a gate starts from is recomputed from the last sample's ramp (process keeps no
    copy of it): a second gate at the same sample, and one before the first sample, still start
    from the level last output."""
    sr = 1000.0
    env = AdsrEnvelope(0.010, 0.010, 0.4, 0.050)
    y = render(env, 120, [(0, 1.0), (30, 0.0), (45, 0.8), (45, 0.0), (45, 0.9)], sr)
    assert y[45] == y[44] and y[45] > 0.0  # three gates at 45: the last one's attack, from y[44]
    np.testing.assert_allclose(y[45:56], y[44] + (0.9 - y[44]) * np.arange(11) / 10.0, atol=1e-15)
    z = render(AdsrEnvelope(0.010, 0.010, 0.4, 0.050), 20, [(0, 0.0), (0, 1.0)], sr)
    assert z[0] == 0.0 and z[10] == 1.0


def test_process_keeps_no_per_sample_copy_of_the_level() -> None:
    """In a voice group's fast sample loop (the voices of test_voice_events: saw -> ADSR -> VCA),
    the envelope's level is not carried per lane: no extract of it per sample."""
    from test_voice_events import _fast_loops, voices

    from oscen.jit import CraneliftJit

    wat = CraneliftJit(max_block=256).compile(voices().to_ir()).wat
    loops = _fast_loops(wat)
    assert loops
    assert not any("__level__" in loop for loop in loops)
