"""Voices as the inner loop (oscen.jit.passes.voiceinner): per sample, a loop over the group's
lane pairs with their state in memory, wherever every pair's unswitched tests allow.

Every pair-sample must run exactly what the per-pair loops ran: exact against the same graph
with the form off and node by node, within the policy against the interpreter, across runs cut
at different samples in each pair (a restart in one lane), coefficient changes, ramps (the
block runs per pair), voices that stop and start, frequencies past a cycle a sample (a test that
stays true: the rest of the block runs per pair), odd block sizes and a voice left over.
"""

from __future__ import annotations

import numpy as np
import pytest
from jit_support import assert_engines_match, run_engines, set_value
from test_fastpath import tickers
from test_unswitch import ACTIONS, BLOCKS, voices
from test_voice_mix import spread_voices

from oscen.jit import CraneliftJit, kernel
from oscen.jit.passes import voiceinner
from oscen.jit.skeleton import SkeletonBuilder


def names(graph, jit: CraneliftJit | None = None) -> list[str]:
    return [f.name for f in (jit or CraneliftJit()).program(graph.to_ir()).module.functions]


def seg_calls(graph) -> list[str]:
    program = CraneliftJit().program(graph.to_ir())
    seg = next(f for f in program.module.functions if f.name == "seg0")
    out: list[str] = []
    stack = list(seg.body)
    while stack:
        s = stack.pop(0)
        if isinstance(s, kernel.Invoke):
            out.append(s.func)
        for name in ("body", "orelse"):
            inner = getattr(s, name, None)
            if isinstance(inner, list):
                stack.extend(inner)
    return out


def test_a_group_of_pairs_runs_its_voices_as_the_inner_loop() -> None:
    got = names(voices(6))
    for part in ("gate", "pack", "unpack", "run", "step"):
        assert f"voices0_{part}" in got
    assert "voices0" not in got and "voices0p" not in got  # no per-pair body besides the step
    calls = seg_calls(voices(6))
    assert "voices0_run" in calls and "voices0_step" in calls


def test_one_pair_or_an_exit_it_cannot_take_out_keeps_the_pair_calls() -> None:
    assert "voices0_run" not in names(voices(3))  # one pair (and one voice): nothing to overlap
    assert "voices0_run" not in names(tickers(7))  # a Ticker's count is no countdown: its exit stays


def test_the_quick_tier_and_the_flag_leave_it_out(monkeypatch) -> None:
    assert "voices0_run" not in names(voices(6), CraneliftJit(tier="quick"))
    monkeypatch.setattr(SkeletonBuilder, "voice_inner", False)
    assert "voices0_run" not in names(voices(6))


@pytest.mark.parametrize(("build", "n"), [(voices, 3000), (lambda: spread_voices(9), 2400)])
def test_runs_equal_the_per_pair_loops_node_by_node_and_the_interpreter(monkeypatch, build, n: int) -> None:
    actions = ACTIONS if build is voices else [
        set_value(90, "osc1.frequency", 460.0),
        set_value(300, "lp2.cutoff", 2500.0),
        set_value(500, "osc8.frequency", 40.0, 0.003),  # a ramp of the voice left over
        set_value(900, "osc0.amplitude", 0.0),
        set_value(1300, "osc0.amplitude", -3e4),
        set_value(1700, "osc5.frequency", 50000.0),
    ]  # fmt: skip
    on = run_engines(build, n, actions, engines=("interpreted", "state", "jitgraph"), blocks=BLOCKS)
    single = run_engines(
        build, n, actions, engines=("state",), blocks=BLOCKS, jit=CraneliftJit(voice_groups=False)
    )
    monkeypatch.setattr(SkeletonBuilder, "voice_inner", False)
    off = run_engines(build, n, actions, engines=("state",), blocks=BLOCKS)
    assert np.any(np.abs(on["state"]) > 1e-3)
    assert_engines_match(off["state"], on["state"], exact=True, what="voice-inner vs per pair")
    assert_engines_match(single["state"], on["state"], exact=True, what="voice-inner vs node by node")
    assert_engines_match(on["interpreted"], on["state"], what="voice-inner vs interpreted")
    assert_engines_match(on["state"], on["jitgraph"], exact=True, what="voice-inner in JitGraph")


def test_voices_starting_and_stopping_at_arbitrary_frames_stay_exact(monkeypatch) -> None:
    rng = np.random.default_rng(11)
    actions = []
    for at in sorted(int(x) for x in rng.integers(1, 4000, 24)):
        voice = int(rng.integers(0, 8))
        if rng.random() < 0.5:
            actions.append(set_value(at, f"osc{voice}.amplitude", float(rng.choice([0.0, 0.4, -0.9]))))
        else:
            actions.append(set_value(at, f"osc{voice}.frequency", float(rng.uniform(20.0, 3000.0))))
    build = lambda: voices(8)  # noqa: E731
    blocks = [1, 255, 17, 256, 64, 3]
    on = run_engines(build, 4000, actions, engines=("interpreted", "state"), blocks=blocks)
    monkeypatch.setattr(SkeletonBuilder, "voice_inner", False)
    off = run_engines(build, 4000, actions, engines=("state",), blocks=blocks)
    assert_engines_match(off["state"], on["state"], exact=True, what="voice-inner vs per pair")
    assert_engines_match(on["interpreted"], on["state"], what="voice-inner vs interpreted")


def test_the_record_holds_what_the_run_reads_and_carries() -> None:
    program = CraneliftJit().program(voices(6).to_ir())
    fns = {f.name: f for f in program.module.functions}
    run, pack = fns["voices0_run"], fns["voices0_pack"]
    stored = {
        s.value.name for s in pack.body if isinstance(s, kernel.Store) and isinstance(s.value, kernel.Local)
    }
    # the oscillator's rotation and phase and the biquad's state are carried through the record
    for name in ("n1__c__v0", "n1__s__v0", "n1__phase__v0", "n2__s1__v0", "n2__s2__v0"):
        assert name in stored
    # the run holds no way out but its own loops' ends: no exit to a full body, no call
    loops = [s for s in run.body if isinstance(s, kernel.Loop)]
    assert [x.label for x in loops] == ["_vi_sample", "_vi_pair"]  # the samples, then the last one

    # a node's output (written every sample, read by none before) is stored in the last sample only
    def stores(stmts) -> set[str]:
        return {
            x.value.name
            for x in _walk(stmts)
            if isinstance(x, kernel.Store) and isinstance(x.value, kernel.Local)
        }

    assert "n2__s1__v0" in stores(loops[0].body) and "n2__s1__v0" in stores(loops[1].body)
    assert "n1_output__v0" not in stores(loops[0].body) and "n1_output__v0" in stores(loops[1].body)
    exits = [x for x in _walk(run.body) if isinstance(x, kernel.Exit)]
    assert {x.label for x in exits} == {"_vi_sample", "_vi_pair"}
    assert not any(isinstance(x, kernel.Invoke) for x in _walk(run.body))


def test_a_body_of_another_shape_has_no_voice_inner_form() -> None:
    i32 = kernel.T.I32
    loop = kernel.Block(label="sample", body=[])
    fn = kernel.Function("f", [("n", i32), ("v__0", i32)], (), {"i": i32}, [loop])
    assert voiceinner.voice_inner(fn, fn, [], [], 2, lambda p, lane: f"{p}__{lane}") is None


def _walk(stmts):
    for s in stmts:
        yield s
        for name in ("body", "orelse"):
            inner = getattr(s, name, None)
            if isinstance(inner, list):
                yield from _walk(inner)
