"""The fast loop's run in a function of its own, the full body in another (passes.outline, behind
``SkeletonBuilder.outline``).

Every sample must run what it ran with the run and the full body in one function: exact against
the same graph without the pass and node by node, within the policy against the interpreter,
across ramps (the full body for every sample), parameter and frequency changes mid-block, voices
that stop and start, resynchronisation countdowns at different samples in each lane, two pairs
per loop and one, and odd block sizes (a run cut at the block's end, a full stretch cut there).
"""

from __future__ import annotations

import numpy as np
import pytest
from jit_support import assert_engines_match, run_engines
from test_fastpath import tickers
from test_unswitch import ACTIONS, BLOCKS, voices

from oscen.jit import CraneliftJit, kernel
from oscen.jit.passes import outline
from oscen.jit.skeleton import SkeletonBuilder


def _calls(stmts: list[kernel.Stmt]) -> list[str]:
    out: list[str] = []
    stack = list(stmts)
    while stack:
        s = stack.pop()
        if isinstance(s, kernel.Invoke):
            out.append(s.func)
        for name in ("body", "orelse"):
            inner = getattr(s, name, None)
            if isinstance(inner, list):
                stack.extend(inner)
    return out


def _labels(stmts: list[kernel.Stmt]) -> set[str]:
    out: set[str] = set()
    stack = list(stmts)
    while stack:
        s = stack.pop()
        if isinstance(s, kernel.Exit | kernel.Next):
            out.add(s.label)
        for name in ("body", "orelse"):
            inner = getattr(s, name, None)
            if isinstance(inner, list):
                stack.extend(inner)
    return out


def test_the_run_has_no_way_into_the_full_body_and_no_call() -> None:
    program = CraneliftJit().program(voices(8).to_ir())
    names = {f.name: f for f in program.module.functions}
    fast = [f for n, f in names.items() if n.endswith("_fast")]
    assert {f.name for f in fast} == {"voices0_pair_fast", "voices0_wide_fast"}
    for f in fast:
        assert not _calls(f.body), f"{f.name} calls {_calls(f.body)}"
        assert not any(label.startswith("_slow") for label in _labels(f.body))
        assert f.results == (kernel.T.I32,)
    # the wide body's full samples are the pair's, one call per pair
    assert _calls(names["voices0_wide_full"].body) == ["voices0_pair_full"] * 2
    # the drivers: 8 voices run as two calls of the four-voice body (voices0), 6 as one and a pair
    assert sorted(_calls(names["voices0"].body)) == ["voices0_wide_fast", "voices0_wide_full"]
    six = {f.name: f for f in CraneliftJit().program(voices(6).to_ir()).module.functions}
    assert sorted(_calls(six["voices0p"].body)) == ["voices0_pair_fast", "voices0_pair_full"]


@pytest.mark.parametrize("lanes", [2, 4])
def test_outlined_runs_match_the_voice_function_with_the_full_body(monkeypatch, lanes: int) -> None:
    on = run_engines(
        voices, 3000, ACTIONS, engines=("interpreted", "state"), blocks=BLOCKS, jit=CraneliftJit(lanes=lanes)
    )
    monkeypatch.setattr(SkeletonBuilder, "outline", False)
    off = run_engines(voices, 3000, ACTIONS, engines=("state",), blocks=BLOCKS, jit=CraneliftJit(lanes=lanes))
    single = run_engines(
        voices, 3000, ACTIONS, engines=("state",), blocks=BLOCKS, jit=CraneliftJit(voice_groups=False)
    )
    assert np.any(np.abs(on["state"]) > 1e-3)
    assert_engines_match(off["state"], on["state"], exact=True, what="outlined vs not")
    assert_engines_match(single["state"], on["state"], exact=True, what="outlined vs node by node")
    assert_engines_match(on["interpreted"], on["state"], what="outlined vs interpreted")


@pytest.mark.parametrize("full_run", [1, 3])
def test_any_length_of_the_full_stretch_is_exact(monkeypatch, full_run: int) -> None:
    """FULL_RUN only trades calls for full-body samples: any length gives the same floats."""
    base = run_engines(voices, 2000, ACTIONS[:5], engines=("state",), blocks=[256, 37])
    monkeypatch.setattr(outline, "FULL_RUN", full_run)
    got = run_engines(voices, 2000, ACTIONS[:5], engines=("interpreted", "state"), blocks=[256, 37])
    assert_engines_match(base["state"], got["state"], exact=True, what=f"full stretch {full_run}")
    assert_engines_match(got["interpreted"], got["state"], what="vs interpreted")


def test_a_run_that_keeps_an_exit_stays_in_its_function() -> None:
    # a Ticker counts up to its period: its exit stays in the fast loop, so no outlining
    program = CraneliftJit().program(tickers().to_ir())
    names = [f.name for f in program.module.functions]
    assert "voices0" in names
    assert not any(n.endswith("_fast") or n.endswith("_full") for n in names)
