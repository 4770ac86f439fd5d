"""Outlined rare arms in the lanes pass (oscen.jit.passes.lanes, "outlined arms"): an arm that
runs lane by lane (a trap path, a call with its state flush and reload, a ramp step) becomes ONE
module function, each lane's copy a call of it in the arm's cold branch. Each lane must still do
exactly what the voice run alone does (bit-identical memory, LANE apart), only the lanes that
take the arm run it, a fault in the function names the voice whose arm raised, and the lane
body gets smaller (what Cranelift's compile time follows)."""

from __future__ import annotations

import math

import pytest
import wasmtime
from lanes_support import HEADER_BYTES, Runner, lane_module, sequential_module, voice_body
from test_lanes_masked import assert_same_memory, floorers, hot_path, run_both, sample_loop, stale_voice

from oscen.graph import Graph, Node, StreamOutput, ValueInput
from oscen.jit import kernel as k
from oscen.jit.backends import wasm
from oscen.jit.layout import LANE, NODE, TRAP_CODE, TRAP_SITE
from oscen.jit.passes.lanes import lanes
from oscen.jit.passes.walk import walk

SR = 1000.0


def arm_calls(stmts: list) -> list[k.Invoke]:
    return [x for x in walk(stmts) if isinstance(x, k.Invoke) and x.func.startswith("_lane_arm_")]


def lane_text(lb) -> str:
    return wasm.function_text(k.Function("voices", [], (), lb.locals, lb.body))


class Bumper(Node):
    """A rare arm with an effect only its own lane may show: from sample ``at`` on, every
    ``every``-th sample calls a method (large enough to stay a call) that counts and mixes."""

    at = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self, at: float, every: float) -> None:
        self.at = float(at)
        self.every = float(every)
        self.t = 0.0
        self.count = 0.0
        self.mix = 0.25

    def process(self, sample_rate: float) -> None:
        if self.t >= self.at and math.fmod(self.t, self.every) == 0.0:
            self._bump(sample_rate)
        self.t = self.t + 1.0
        self.output = self.count + self.mix

    def _bump(self, sample_rate: float) -> None:
        self.count = self.count + 1.0
        w = math.sin(self.count * 0.1) + math.cos(self.count * 0.2) + math.exp(-self.count * 0.01)
        self.mix = self.mix * 0.5 + math.atan(w) * 0.125 + math.log1p(self.count) * 0.001


class MaskedBumper(Bumper):
    """The same call under a condition that packs (f64 comparisons: a mask, its arm run lane by
    lane under the mask's bits)."""

    def process(self, sample_rate: float) -> None:
        if self.t >= self.at and self.t < self.at + self.every * 9.0:
            self._bump(sample_rate)
        self.t = self.t + 1.0
        self.output = self.count + self.mix


def bumpers(cls: type[Bumper]):
    def make(v: int) -> Graph:
        g = Graph(SR)
        g.set_output(g.add_node(cls(at=[3.0, 1e9, 17.0, 40.0][v % 4], every=float(2 + v % 3))).output)
        return g

    return make


@pytest.mark.parametrize("width", [2, 4])
def test_the_stale_call_becomes_one_function_called_per_lane(width: int) -> None:
    vb = voice_body(stale_voice, 4, inline_math=False)
    lb = lanes(vb.body, vb.locals, width)
    arms = [f for f in lb.functions if f.name.startswith("_lane_arm_")]
    assert arms, [f.name for f in lb.functions]
    loop = sample_loop(lb.body)
    calls = arm_calls(loop.body)
    assert calls and not arm_calls(hot_path(loop.body))  # each in a cold branch
    by_func: dict[str, int] = {}
    for c in calls:
        by_func[c.func] = by_func.get(c.func, 0) + 1
    assert set(by_func.values()) == {width}  # one call per lane of each outlined arm
    assert {c.func for c in calls} <= {f.name for f in arms}
    plain = lanes(vb.body, vb.locals, width, outline=False)
    assert not arm_calls(plain.body)
    assert len(lane_text(lb)) < len(lane_text(plain))
    run_both(vb, 4, width, blocks=(64, 29, 64))


@pytest.mark.parametrize("cls", [Bumper, MaskedBumper], ids=["per-lane-if", "masked-if"])
@pytest.mark.parametrize("width", [2, 4])
def test_lanes_run_an_outlined_arm_only_when_they_take_it(width: int, cls: type[Bumper]) -> None:
    """Voices start their calls at other samples (one never): their counts and mixes stay each
    voice's own, block after block (the memory compared after each)."""
    vb = voice_body(bumpers(cls), 4, inline_math=False)
    lb = lanes(vb.body, vb.locals, width)
    assert arm_calls(lb.body)
    seq, lan = run_both(vb, 4, width, blocks=(16, 7, 64, 33))
    plain = Runner(lane_module(vb, 4, width, lanes(vb.body, vb.locals, width, outline=False)), vb, 4)
    for n in (16, 7, 64, 33):
        plain.run(n)
    assert_same_memory(plain, lan, HEADER_BYTES + 4 * vb.vs)


@pytest.mark.parametrize("lane", [1, 2, 3])
def test_an_outlined_trapping_arm_names_that_voice(lane: int) -> None:
    vb = voice_body(floorers({lane: 1e-320, 0: 0.5}), 4)  # t / 1e-320 is inf from t = 1 on
    lb = lanes(vb.body, vb.locals, 4)
    arms = [f for f in lb.functions if f.name.startswith("_lane_arm_")]
    assert any(isinstance(x, k.Unreachable) for f in arms for x in walk(f.body))  # the trap moved
    seq = Runner(sequential_module(vb, 4), vb, 4)
    lan = Runner(lane_module(vb, 4, 4, lb), vb, 4)
    for r in (seq, lan):
        with pytest.raises(wasmtime.Trap):
            r.run(16)
    assert lan.header(LANE)[0] == seq.header(LANE)[0] == lane
    assert lan.header(TRAP_CODE)[0] == seq.header(TRAP_CODE)[0] != 0
    assert lan.header(TRAP_SITE)[0] == seq.header(TRAP_SITE)[0] > 0
    assert lan.header(NODE)[0] == seq.header(NODE)[0]


def test_outlined_arms_are_shared_between_lane_bodies_by_content() -> None:
    """The function's name is its text's hash: two lane bodies with the same arm (voices0,
    voices1 of one module) name the same function, which the module holds once."""
    vb = voice_body(stale_voice, 2, inline_math=False)
    a = {f.name: wasm.function_text(f) for f in lanes(vb.body, vb.locals, 2).functions}
    b = {f.name: wasm.function_text(f) for f in lanes(vb.body, vb.locals, 4).functions}
    shared = {n for n in a if n.startswith("_lane_arm_")} & set(b)
    assert shared and all(a[n] == b[n] for n in shared)
