"""Varying ifs on masks in the lanes pass (oscen.jit.passes.lanes, "masked ifs"): a voice body's
``if`` whose condition differs between the lanes keeps its operands packed (f64x2); an arm of
pure arithmetic runs packed under an ``any_true`` guard and is blended with the mask, any other
arm runs lane by lane under the mask's bits. Each lane must do exactly what the voice run alone
does: the lane body and the voices one by one leave bit-identical memory (LANE apart), a lane
that did not take an arm never traps or sets a math error, and a fault names the voice whose arm
raised.

The nodes have the shapes of the oscillator's phase wraps (a common one-line wrap, a rare wrap
with ``math.floor`` that raises on inf/NaN) and of the biquad's ``if self._stale(sr):`` (a
predicate that sets state, then a call), written here so that the voices take the branches at
chosen samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import wasmtime
from lanes_support import (
    HEADER_BYTES,
    Runner,
    VoiceBody,
    lane_module,
    reference_memory,
    sequential_module,
    voice_body,
)

from oscen.graph import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.jit import kernel as k
from oscen.jit.layout import LANE, NODE, TRAP_CODE, TRAP_SITE
from oscen.jit.ops import Op
from oscen.jit.passes.lanes import lanes
from oscen.jit.passes.walk import walk

SR = 1000.0


def assert_same_memory(a: Runner, b: Runner, size: int) -> None:
    x, y = a.bytes[:size].copy(), b.bytes[:size].copy()
    x[LANE : LANE + 4] = y[LANE : LANE + 4] = 0
    x[NODE : NODE + 4] = y[NODE : NODE + 4] = 0  # a lane's base: attributes a fault only
    diff = np.nonzero(x != y)[0]
    assert diff.size == 0, f"memory differs at bytes {diff[:8]} (of {diff.size})"


def run_both(vb: VoiceBody, voices: int, width: int, blocks=(64, 29), **options) -> tuple[Runner, Runner]:
    """The voices one by one and the lane body, block after block: the same memory each time."""
    lb = lanes(vb.body, vb.locals, width, **options)
    seq = Runner(sequential_module(vb, voices), vb, voices)
    lan = Runner(lane_module(vb, voices, width, lb), vb, voices)
    for n in blocks:
        seq.run(n)
        lan.run(n)
        assert_same_memory(seq, lan, HEADER_BYTES + voices * vb.vs)
    return seq, lan


def sample_loop(body: list[k.Stmt]) -> k.Loop:
    return next(x for x in walk(body) if isinstance(x, k.Loop) and x.label == "sample")


def hot_path(stmts: list[k.Stmt]) -> list[object]:
    """What the sample loop's statements run whatever the lanes take: ifs on a mask's bits, on
    ``any_true`` / ``all_true`` of a mask, left out (each runs only when a lane takes its arm)."""
    out: list[object] = []
    for s in stmts:
        if isinstance(s, k.If):
            guard = any(
                isinstance(x, k.Prim)
                and x.op in (Op.V128_ANY_TRUE, Op.I64X2_ALL_TRUE)
                or isinstance(x, k.Local)
                and x.name == "_lane_bits"
                for x in walk(s.cond)
            )
            if not guard:
                out += [s.cond, *hot_path(s.body), *hot_path(s.orelse)]
        elif isinstance(s, (k.Loop, k.Block)):
            out += hot_path(s.body)
        else:
            out.append(s)
    return out


def lane_moves(stmts: list, part: str = "") -> int:
    """extract_lane / replace_lane operations in ``stmts`` (nested structures included) on
    vectors whose local's name holds ``part``."""
    return sum(
        isinstance(x, k.Prim)
        and ("EXTRACT_LANE" in x.op.name or "REPLACE_LANE" in x.op.name)
        and isinstance(x.args[0], k.Local)
        and part in x.args[0].name
        for x in walk(stmts)
    )


# --------------------------------------------------------------------------- the nodes
class Wrapper(Node):
    """A phase with the oscillator's wraps: the common one-line wrap and a rare wrap by
    ``math.floor`` when a jump (``jump`` at sample ``at``: a voice's own) leaves [0, 1)."""

    step = ValueInput(0.01)
    jump = ValueInput(0.0)
    at = ValueInput(-1.0)
    output = StreamOutput()

    def __init__(self, step: float, jump: float = 0.0, at: float = -1.0) -> None:
        self.step = float(step)
        self.jump = float(jump)
        self.at = float(at)
        self.phase = 0.0
        self.t = 0.0
        self.wraps = 0.0

    def process(self, sample_rate: float) -> None:
        phase = self.phase + self.step
        if self.t == self.at:
            phase = phase + self.jump
        if phase >= 1.0:
            phase = phase - 1.0
        if phase >= 1.0 or phase < 0.0:
            phase = phase - math.floor(phase)
            self.wraps = self.wraps + 1.0
            if phase >= 1.0:
                phase = 0.0
        self.phase = phase
        self.t = self.t + 1.0
        self.output = phase


def wrappers(jumps: dict[int, tuple[float, float]]):
    """Voice v: a wrapper whose jump (size, sample) is ``jumps[v]`` (none if absent)."""

    def make(v: int) -> Graph:
        g = Graph(SR)
        jump, at = jumps.get(v, (0.0, -1.0))
        g.set_output(g.add_node(Wrapper(0.013 + 0.007 * v, jump, at)).output)
        return g

    return make


class Stale(Node):
    """The biquad's shape: ``if self._stale(sr): self._update()`` (a predicate that sets state,
    then a method large enough to be called), then packed work on the state."""

    cutoff = ValueInput(100.0)
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, cutoff: float) -> None:
        self.cutoff = float(cutoff)
        self._last = -1.0
        self._a = 0.0
        self._b = 0.0
        self._s = 0.0

    def process(self, sample_rate: float) -> None:
        if self._stale(sample_rate):
            self._update(sample_rate)
        y = self._a * self.input + self._s
        self._s = self._b * y
        self.output = y

    def _stale(self, sample_rate: float) -> bool:
        if self.cutoff != self._last:
            self._last = self.cutoff
            return True
        return False

    def _update(self, sample_rate: float) -> None:
        w = math.tan(math.pi * min(self.cutoff, 0.45 * sample_rate) / sample_rate)
        self._a = w / (1.0 + w) + math.sin(w) * 0.01 + math.cos(w) * 0.01 - math.exp(-w) * 0.01
        self._b = 1.0 / (1.0 + w) - math.atan(w) * 0.01 + math.log1p(w) * 0.01
        if self._a > 0.9:
            self._a = 0.9


def stale_voice(v: int) -> Graph:
    g = Graph(SR)
    src = g.add_node(Wrapper(0.011 + 0.003 * v))
    f = g.add_node(Stale(50.0 + 30.0 * v))
    g.connect(src.output, f.input)
    g.set_output(f.output)
    if v % 3 == 1:  # a ramp in some voices: the predicate holds at other samples per voice
        g.set_value(f.cutoff, 200.0, ramp=0.01)
    return g


class Branchy(Node):
    """Nested varying ifs and an if/else, arms of pure arithmetic larger than selects take."""

    a = ValueInput(0.0)
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, a: float) -> None:
        self.a = float(a)
        self.y = 0.0
        self.z = 0.0
        self.w = 0.0

    def process(self, sample_rate: float) -> None:
        x = self.input + self.a
        y = self.y
        z = self.z
        w = self.w
        if x > 0.0:
            y = y * 0.5 + x
            z = z - x * 0.25
            w = w + y * z
            if x > 0.4:
                y = y - 0.125
                z = z * 0.75 + w * 0.001
                w = w * 0.5
                x = x * 3.0
                y = y + x
            else:
                z = -z
        else:
            y = y * 0.25 - x
            z = z + 0.5
            w = w * 0.875 - z * 0.01
            x = -x
            y = y + x * 0.5
        self.y = y
        self.z = z
        self.w = w
        self.output = y + z + w


def branchy(v: int) -> Graph:
    g = Graph(SR)
    src = g.add_node(Wrapper(0.017 + 0.011 * v))
    b = g.add_node(Branchy(-0.5 + 0.3 * v))
    g.connect(src.output, b.input)
    g.set_output(b.output)
    return g


class Floorer(Node):
    """``math.floor(self.t / self.div)`` only where ``div != 0``: a lane with ``div == 0`` that
    evaluated the arm would raise (floor of inf); ``div`` tiny: floor of inf raises in that
    voice at its second sample."""

    div = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self, div: float) -> None:
        self.div = float(div)
        self.t = 0.0
        self.acc = 0.0

    def process(self, sample_rate: float) -> None:
        x = 0.5
        if self.div != 0.0:
            x = math.floor(self.t / self.div) * 0.5
        self.acc = self.acc + x
        self.t = self.t + 1.0
        self.output = self.acc


def floorers(divs: dict[int, float]):
    def make(v: int) -> Graph:
        g = Graph(SR)
        g.set_output(g.add_node(Floorer(divs.get(v, 0.0))).output)
        return g

    return make


class Logs(Node):
    """Math calls under a mask: ``log`` only of positive values (a lane with a negative value
    that called it would set the domain error), ``sin`` in the other arm."""

    x = ValueInput(1.0)
    output = StreamOutput()

    def __init__(self, x: float) -> None:
        self.x = float(x)
        self.t = 0.0

    def process(self, sample_rate: float) -> None:
        v = self.x + math.sin(self.t * 0.37)  # crosses 0 at other samples per voice
        if v > 0.0:
            y = math.log(v) * 0.5 + v
        else:
            y = math.sin(v) - math.cos(v * 0.5)
        self.t = self.t + 1.0
        self.output = y


def logs(v: int) -> Graph:
    g = Graph(SR)
    g.set_output(g.add_node(Logs(-0.9 + 0.6 * v)).output)
    return g


# --------------------------------------------------------------------------- exactness
@pytest.mark.parametrize(
    "jumps",
    [
        {1: (-0.3, 5.0)},  # one lane of the first pair, once
        {0: (2.5, 7.0), 1: (-4.75, 7.0)},  # both lanes of a pair at the same sample
        {0: (2.5, 3.0), 1: (-1.5, 40.0), 2: (7.25, 11.0), 3: (-3.0, 11.0)},  # other samples
    ],
    ids=["one-lane", "both-lanes", "other-samples"],
)
@pytest.mark.parametrize("width", [2, 4])
def test_a_rare_wrap_taken_by_some_lanes_is_exact(jumps, width: int) -> None:
    make = wrappers(jumps)
    for v in range(4):  # the rare wrap happens where (and only where) a voice jumps
        g = make(v)
        g.process_block(93)
        (node,) = (n.node for n in g.nodes if isinstance(n.node, Wrapper))
        assert (node.wraps > 0) == (v in jumps), v
    run_both(voice_body(make, 4), 4, width)


def test_the_rare_wrap_keeps_the_phase_packed() -> None:
    """The phase is a packed local: per sample the loop moves no lane of it in or out of a vector
    except in the arms a lane takes; the rare wrap is guarded by the mask's bits. Before masked
    ifs, each varying if ran once per lane on scalar copies (the phase moved every sample)."""
    vb = voice_body(wrappers({}), 2)
    lb = lanes(vb.body, vb.locals, 2)
    loop = sample_loop(lb.body)
    hot = hot_path(loop.body)
    assert lane_moves(hot, "phase") == 0
    # the two lanes' output stores; the value inputs (locals p0_*) are gathered only in the
    # ramp step, behind the loop's one ramp test
    assert lane_moves(hot) - lane_moves(hot, "p0_") <= 5
    assert any(isinstance(x, k.Prim) and x.op == Op.I64X2_BITMASK for x in walk(loop.body))
    phase = [name for name in lb.locals if name.endswith("phase__v0")]
    assert phase, sorted(lb.locals)


@pytest.mark.parametrize("width", [2, 4])
def test_the_stale_predicate_and_its_call_are_exact(width: int) -> None:
    vb = voice_body(stale_voice, 4, inline_math=False)
    run_both(vb, 4, width, blocks=(64, 29, 64))


def test_the_stale_check_keeps_the_filter_state_packed() -> None:
    """``if self._stale(sr): self._update(sr)``: the predicate's state is packed (a blend), the
    call runs lane by lane under the mask's bits, and the filter state stays packed outside it."""
    vb = voice_body(stale_voice, 2, inline_math=False)
    lb = lanes(vb.body, vb.locals, 2)
    loop = sample_loop(lb.body)
    hot = hot_path(loop.body)
    calls = [x for x in walk(hot) if isinstance(x, k.Invoke) and "update" in x.func]
    assert not calls  # the update call sits under the mask's bits
    assert any(name.endswith("_last__v0") for name in lb.locals)
    assert any(name.endswith("_s__v0") for name in lb.locals)


@pytest.mark.parametrize("selects", [True, False], ids=["selects", "masks-only"])
@pytest.mark.parametrize("width", [2, 4])
def test_nested_varying_ifs_and_if_else_are_exact(width: int, selects: bool) -> None:
    vb = voice_body(branchy, 4)
    _, lan = run_both(vb, 4, width, selects=selects)
    lb = lanes(vb.body, vb.locals, width, selects=selects)
    ops = {x.op for x in walk(lb.body) if isinstance(x, k.Prim)}
    assert {Op.V128_ANY_TRUE, Op.V128_BITSELECT} <= ops  # packed arms, blended


def test_the_nested_arms_run_packed() -> None:
    """Branchy's arms are pure arithmetic: no lane-by-lane copy of them (their locals packed:
    no extract or replace in the loop but where the state and the output meet memory)."""
    vb = voice_body(branchy, 2)
    lb = lanes(vb.body, vb.locals, 2, selects=False)
    loop = sample_loop(lb.body)
    assert lane_moves(loop.body, "v1_process1_") == 0
    guards = [x for x in walk(loop.body) if isinstance(x, k.Prim) and x.op == Op.V128_ANY_TRUE]
    assert len(guards) >= 2  # the outer then and the nested then


# --------------------------------------------------------------------------- faults
def test_a_lane_that_does_not_take_a_trapping_arm_never_traps() -> None:
    """Voices with ``div == 0`` beside voices that floor: floor of inf would raise in the lanes
    that did not take the arm."""
    vb = voice_body(floorers({1: 0.25, 2: 3.0}), 4)
    for width in (2, 4):
        run_both(vb, 4, width)


@pytest.mark.parametrize("lane", [1, 2])
def test_a_trapping_arm_taken_by_one_lane_names_that_voice(lane: int) -> None:
    vb = voice_body(floorers({lane: 1e-320, 0: 0.5}), 4)  # t / 1e-320 is inf from t = 1 on
    seq = Runner(sequential_module(vb, 4), vb, 4)
    lan = Runner(lane_module(vb, 4, 2), vb, 4)
    for r in (seq, lan):
        with pytest.raises(wasmtime.Trap):
            r.run(16)
    assert lan.header(LANE)[0] == seq.header(LANE)[0] == lane
    assert lan.header(TRAP_CODE)[0] == seq.header(TRAP_CODE)[0] != 0
    assert lan.header(TRAP_SITE)[0] == seq.header(TRAP_SITE)[0] > 0
    assert lan.header(NODE)[0] == seq.header(NODE)[0]


@pytest.mark.parametrize("width", [2, 4])
def test_math_calls_under_a_mask_are_exact_and_set_no_error(width: int) -> None:
    """``log`` in the arm of positive values, ``sin``/``cos`` in the other, lanes crossing 0 at
    other samples: the f64x2 forms run for both lanes, the scalar fallback only for a lane that
    takes the arm; no lane raises a domain error it would not raise alone."""
    vb = voice_body(logs, 4, inline_math=False)
    seq, lan = run_both(vb, 4, width)
    assert seq.math_error() == lan.math_error() == 0
    lb = lanes(vb.body, vb.locals, width)
    called = {x.func for x in walk(lb.body) if isinstance(x, k.Invoke)}
    assert any(f.endswith("_f64x2_main") for f in called)


def test_the_reference_backend_runs_masked_ifs_as_wasmtime_does() -> None:
    """any_true / all_true guards, blends and bitmask tests on the IR's other evaluator."""
    vb = voice_body(branchy, 2)
    module = lane_module(vb, 2, 2, lanes(vb.body, vb.locals, 2, selects=False))
    ops = {x.op for x in walk(module.functions[-1].body) if isinstance(x, k.Prim)}
    assert {Op.V128_ANY_TRUE, Op.I64X2_ALL_TRUE, Op.I64X2_BITMASK, Op.V128_BITSELECT} <= ops
    wasm_run = Runner(module, vb, 2)
    wasm_run.run(40)
    memory = reference_memory(module, vb, 2, 40, len(wasm_run.bytes))
    x, y = wasm_run.bytes[: HEADER_BYTES + 2 * vb.vs].copy(), memory[: HEADER_BYTES + 2 * vb.vs].copy()
    x[LANE : LANE + 4] = y[LANE : LANE + 4] = 0
    x[NODE : NODE + 4] = y[NODE : NODE + 4] = 0  # a lane's base: attributes a fault only
    assert (x == y).all()


# --------------------------------------------------------------------------- selects reading targets
F64 = k.T.F64
I32 = k.T.I32


def _two_target_if(then: list[tuple[str, k.Expr]], orelse: list[tuple[str, k.Expr]]) -> list[k.Stmt]:
    """A voice body over slots a, b at vb (loaded, an ``if a < b`` whose arms set them, stored)."""
    vb = k.Local(I32, "vb")
    a, b = k.Local(F64, "a"), k.Local(F64, "b")

    def arm(sets):
        return [k.SetLocal(name=n, value=v) for n, v in sets]

    cond = k.Prim(Op.F64_LT.result, Op.F64_LT, [a, b])
    return [
        k.SetLocal(name="a", value=k.Load(F64, vb, 0)),
        k.SetLocal(name="b", value=k.Load(F64, vb, 8)),
        k.If(k.NOSITE, cond, arm(then), arm(orelse)),
        k.Store(type=F64, addr=vb, offset=16, value=a),
        k.Store(type=F64, addr=vb, offset=24, value=b),
    ]


def _plus(x: k.Expr, c: float) -> k.Expr:
    return k.Prim(Op.F64_ADD.result, Op.F64_ADD, [x, k.Const(F64, c)])


A, B = k.Local(F64, "a"), k.Local(F64, "b")
SHAPES = {
    "own-target": ([("a", _plus(A, 1.0))], [("b", _plus(B, -1.0))]),
    "reads-earlier-set": ([("a", _plus(B, 1.0)), ("b", _plus(A, 2.0))], [("b", _plus(A, 3.0))]),
    "reads-later-set": ([("b", _plus(A, 1.0)), ("a", _plus(B, 2.0))], [("a", _plus(B, 3.0))]),
    "swap-ish": ([("a", B), ("b", A)], [("b", A), ("a", B)]),
    "else-reads-then-target": ([("a", _plus(A, 5.0))], [("b", _plus(A, 0.5)), ("a", _plus(B, 0.25))]),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("width", [2, 3])
def test_selects_whose_values_read_targets_keep_the_arms_meaning(shape: str, width: int) -> None:
    """Small if/else made selects where a value reads what an arm sets: each lane's result is
    its arm run statement by statement (slots a < b in some voices, not in others)."""
    then, orelse = SHAPES[shape]
    body = _two_target_if(then, orelse)
    images = [
        np.array([x, y, 0.0, 0.0]).view(np.uint8)
        for x, y in ((1.0, 2.0), (5.0, -3.0), (0.5, 0.5), (-2.0, 7.0))
    ]
    vb = VoiceBody(body, {"a": F64, "b": F64}, [], [], 32, images, {}, [], 2048)
    seq = Runner(sequential_module(vb, 6 if width == 3 else 4), vb, 6 if width == 3 else 4)
    voices = 6 if width == 3 else 4
    lan = Runner(lane_module(vb, voices, width), vb, voices)
    seq.run(1)
    lan.run(1)
    assert_same_memory(seq, lan, 2048 + voices * 32)
