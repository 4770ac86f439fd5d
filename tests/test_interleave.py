"""Two voice pairs per sample loop (oscen.jit.passes.interleave): the pair body's renamed copy.

A group whose pair body has a small fast loop runs four voices per call, then a pair and a single
voice for what is left over; every voice must compute exactly what it computes alone, the mix
must add the voices in voice order, and a fault must name the voice it happened in, in either pair.
"""

from __future__ import annotations

import pytest
from jit_support import assert_engines_match, run_engines, set_value
from test_fastpath import fault_of_voice, tickers
from test_voice_mix import same_as_node_by_node, spread_voices

from oscen.jit import CraneliftJit, kernel
from oscen.jit.passes.interleave import interleave
from oscen.jit.passes.lanes import lane_name
from oscen.jit.skeleton import SkeletonBuilder


@pytest.fixture(autouse=True)
def _per_pair_calls(monkeypatch) -> None:
    """These tests are about the per-pair calls: without the voice-inner form, which replaces
    them for groups of two pairs or more (tests/test_voiceinner.py)."""
    monkeypatch.setattr(SkeletonBuilder, "voice_inner", False)


def calls(graph) -> list[tuple[str, int]]:
    """(function, voice indices' first argument) of each voice call in the group's segment."""
    program = CraneliftJit().program(graph.to_ir())
    seg = next(f for f in program.module.functions if f.name == "seg0")
    out: list[str] = []
    for s in seg.body:
        if isinstance(s, kernel.Loop) and s.label == "_seg_calls":  # a loop over calls: N of each
            (bound,) = [x.cond.args[1].value for x in s.body if isinstance(x, kernel.Exit)]
            out += [x.func for x in s.body if isinstance(x, kernel.Invoke)] * bound
        elif isinstance(s, kernel.Invoke):
            out.append(s.func)
    return [f for f in out if f.startswith("voice")]


@pytest.mark.parametrize(
    ("voices", "expected"),
    [
        (8, ["voices0"] * 2),
        (9, ["voices0"] * 2 + ["voice0"]),
        (10, ["voices0"] * 2 + ["voices0p"]),
        (11, ["voices0"] * 2 + ["voices0p", "voice0"]),
        (2, ["voices0"]),  # too few voices for four: the pair body
    ],
)
def test_four_voices_per_call_then_a_pair_then_one(voices: int, expected: list[str]) -> None:
    assert calls(spread_voices(voices)) == expected


@pytest.mark.parametrize("voices", [4, 6, 9, 11])
def test_interleaved_voices_and_their_mix_equal_the_node_by_node_kernel(voices: int) -> None:
    actions = [set_value(200, "osc2.frequency", 700.0, 0.003), set_value(500, "lp3.cutoff", 1800.0)]
    same_as_node_by_node(lambda: spread_voices(voices), 1000, actions, blocks=[1, 37, 256, 99])


def test_rare_ifs_of_either_pair_stay_exact() -> None:
    actions = [set_value(90, "tick2.period", 7.0), set_value(300, "osc3.frequency", 800.0, 0.002)]
    same_as_node_by_node(lambda: tickers(7), 1000, actions, blocks=[256, 13])


@pytest.mark.parametrize("voice", [0, 2, 3, 5, 6])
def test_a_fault_names_its_voice_in_either_pair_and_in_the_leftovers(voice: int) -> None:
    assert calls(tickers(7)) == ["voices0", "voices0p", "voice0"]  # 0-3 four, 4-5 a pair, 6 alone
    assert fault_of_voice(tickers(7), voice).node == f"tick{voice}"


def test_interleave_off_gives_the_same_bits(monkeypatch) -> None:
    on = run_engines(lambda: spread_voices(9), 700, engines=("state",), blocks=[256, 41])["state"]
    monkeypatch.setattr(SkeletonBuilder, "interleave", False)
    assert calls(spread_voices(9)) == ["voices0"] * 4 + ["voice0"]
    off = run_engines(lambda: spread_voices(9), 700, engines=("state",), blocks=[256, 41])["state"]
    assert_engines_match(off, on, exact=True, what="interleaved vs pairs")


def test_a_body_of_another_shape_is_not_interleaved() -> None:
    i32 = kernel.T.I32
    n = kernel.Local(i32, "n")
    loop = kernel.Loop(label="sample", cond=None, body=[kernel.Exit(label="sample", cond=n)])
    fn = kernel.Function("f", [("n", i32), ("v__0", i32), ("v__1", i32)], (), {}, [loop])
    assert interleave(fn, ["v"], 2, lane_name) is None  # no i8 / i steps
    assert interleave(kernel.Function("f", fn.params, (), {}, []), ["v"], 2, lane_name) is None
