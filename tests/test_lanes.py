"""The lanes pass (oscen.jit.passes.lanes, issue 11 item 3): a per-voice body made into a body for
W voices at once must do exactly what running the per-voice body W times does.

Per-voice bodies are built from real node variants the way the skeleton builds a voice group's
step (tests/lanes_support.py); W voices' state sits in memory; the body run voice by voice and the
lane body run once must leave bit-identical memory (everything but the LANE slot, whose last value
only attributes faults), and a fault in one lane must name that lane."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lanes_support import (
    HEADER_BYTES,
    Runner,
    VoiceBody,
    c32,
    lane_module,
    loc,
    p,
    poly_lowpass,
    reference_memory,
    sequential_module,
    voice_body,
)

from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass
from oscen.gain import Mixer
from oscen.graph import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.jit import kernel as k
from oscen.jit.kernel import T
from oscen.jit.layout import HEADER_SLOTS, LANE, NODE, TRAP_CODE, TRAP_SITE
from oscen.jit.ops import Op
from oscen.jit.passes.lanes import NotLaneable, expand, lanes, straighten
from oscen.jit.passes.walk import walk
from oscen.jit.traps import FLOAT_ZERO_DIV, TIMEOUT
from oscen.oscillators import Oscillator
from oscen.sampler import Sampler
from oscen.sequencing import Sequencer
from oscen.wavetable import Wavetable

SR = 44100.0
I32, I64, F64 = T.I32, T.I64, T.F64


# --------------------------------------------------------------------------- voices
def sine_lowpass(v: int) -> Graph:
    g = Graph(SR)
    osc = g.add_node(Oscillator.sine(110.0 * (v + 1) + 3.0 * v, 0.5 + 0.1 * v))
    lp = g.add_node(IirLowpass(500.0 + 700.0 * v, 0.7 + 0.2 * v))
    g.connect(osc.output, lp.input)
    g.set_output(lp.output)
    if v % 2:  # a ramp running in some voices only
        g.set_value(osc.frequency, 300.0, ramp=0.0005)
    return g


def enveloped(v: int) -> Graph:
    """An ADSR with gate events at other frames per voice, and a saw through a lowpass."""
    g = Graph(SR)
    env = g.add_node(AdsrEnvelope(0.0002 * (v + 1), 0.0003, 0.5 + 0.1 * v, 0.0004))
    osc = g.add_node(Oscillator.saw(200.0 + 50.0 * v, 0.8))
    lp = g.add_node(IirLowpass(2000.0 - 100.0 * v))
    g.connect(osc.output, lp.input)
    g.set_output(lp.output, env.output)
    g.queue_event(env.gate, 3 + 5 * v, 1.0)
    g.queue_event(env.gate, 20 + 7 * v, 0.0)
    if v == 2:
        g.queue_event(env.gate, 21, 0.6)  # a retrigger in one voice only
    return g


class Busy(Node):
    """Branches, loops and arrays whose paths differ from voice to voice."""

    level = ValueInput(1.0)
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, level: float = 1.0, start: int = 0) -> None:
        self.level = float(level)
        self.buf = np.zeros(8)
        self.pos = start
        self.count = start
        self.total = 0.0

    def process(self, sample_rate: float) -> None:
        x = self.input * self.level
        self.buf[self.pos] = x
        self.pos = (self.pos + 1) % 8
        acc = 0.0
        for j in range(self.count % 5):
            acc += self.buf[(self.pos - j) % 8]
        while acc > 1.0:
            acc -= 0.75
        for j in range(2):  # the same trips in every voice: one loop around the lanes' work
            acc = acc * 0.5 + self.buf[j] * 0.25
        if x > 0.0:
            self.count += 1
            y = acc
        else:
            self.count += 2
            y = -acc
        self.total = self.total + abs(y)
        self.output = y


def busy(v: int) -> Graph:
    g = Graph(SR)
    osc = g.add_node(Oscillator.sine(300.0 + 170.0 * v, 0.9))
    b = g.add_node(Busy(1.0 + 0.5 * v, v))
    g.connect(osc.output, b.input)
    g.set_output(b.output)
    return g


class Divider(Node):
    """Divides by (sample count - ``at``): ZeroDivisionError at sample ``at`` (never if negative)."""

    at = ValueInput(-1.0)
    output = StreamOutput()

    def __init__(self, at: float) -> None:
        self.at = float(at)
        self.t = 0.0

    def process(self, sample_rate: float) -> None:
        self.output = 1.0 / (self.t - self.at)
        self.t = self.t + 1.0


def divider(trap_at: dict[int, float]):
    def make(v: int) -> Graph:
        g = Graph(SR)
        d = g.add_node(Divider(trap_at.get(v, -1.0)))
        g.set_output(d.output)
        return g

    return make


# --------------------------------------------------------------------------- running both ways
def run_both(vb: VoiceBody, voices: int, width: int, n: int) -> tuple[Runner, Runner]:
    seq = Runner(sequential_module(vb, voices), vb, voices)
    lan = Runner(lane_module(vb, voices, width), vb, voices)
    seq.run(n)
    lan.run(n)
    return seq, lan


def assert_same_memory(a: Runner | np.ndarray, b: Runner | np.ndarray, size: int) -> None:
    """The first ``size`` bytes of two memories (runners' or arrays) are equal, LANE and NODE apart
    (a packed math call stores its pair's first lane's node base in NODE, once, where the voices
    one by one store each voice's before its call: a fault takes the voice from LANE)."""
    x, y = (getattr(m, "bytes", m)[:size].copy() for m in (a, b))
    x[LANE : LANE + 4] = y[LANE : LANE + 4] = 0
    x[NODE : NODE + 4] = y[NODE : NODE + 4] = 0
    diff = np.nonzero(x != y)[0]
    assert diff.size == 0, f"memory differs at bytes {diff[:8]} (of {diff.size})"


@pytest.mark.parametrize(
    ("make", "voices", "width"),
    [
        (sine_lowpass, 2, 2),
        (sine_lowpass, 4, 2),
        (sine_lowpass, 4, 4),
        (enveloped, 4, 2),
        (busy, 4, 2),
        (busy, 3, 3),
    ],
    ids=["sine-lp-2", "sine-lp-4x2", "sine-lp-4x4", "adsr-4x2", "busy-4x2", "busy-3x3"],
)
def test_lane_body_leaves_the_memory_the_voices_one_by_one_leave(make, voices, width) -> None:
    vb = voice_body(make, voices)
    seq, lan = run_both(vb, voices, width, 64)
    size = HEADER_BYTES + voices * vb.vs
    outs = [vb.output(seq.bytes, v, j, 64) for v in range(voices) for j in range(len(vb.outputs))]
    for out in outs:  # the voices did something, each its own
        assert np.isfinite(out).all() and np.abs(out).max() > 0.01
    assert len({out.tobytes() for out in outs}) == len(outs)
    assert_same_memory(seq, lan, size)
    # and again from there: state carried over in memory
    seq.run(37)
    lan.run(37)
    assert_same_memory(seq, lan, size)


def test_voices_differ_so_the_comparison_can_fail() -> None:
    """Lanes swapped (voice 1's base for lane 0) give other memory: the check above has teeth."""
    vb = voice_body(sine_lowpass, 2)
    seq = Runner(sequential_module(vb, 2), vb, 2)
    lb = lanes(vb.body, vb.locals, 2)
    lb.body = [
        k.SetLocal(name="vb__0", value=loc(I32, "vb__1")),
        k.SetLocal(name="v__0", value=loc(I32, "v__1")),
        *lb.body,
    ]
    bad = Runner(lane_module(vb, 2, 2, lb), vb, 2)
    seq.run(64)
    bad.run(64)
    with pytest.raises(AssertionError, match="memory differs"):
        assert_same_memory(seq, bad, HEADER_BYTES + 2 * vb.vs)


def test_sample_loop_stays_one_loop_and_event_dispatch_is_per_lane() -> None:
    vb = voice_body(enveloped, 2)
    lb = lanes(vb.body, vb.locals, 2)
    loops = [x for x in walk(lb.body) if isinstance(x, k.Loop)]
    assert [x.label for x in loops].count("sample") == 1
    assert [x.label for x in loops].count("ev") == 2  # the gate queue: one dispatch loop per lane
    assert {"i", "i8", "n"} & set(lb.locals) == {"i", "i8"}  # uniform: not renamed
    assert "nb" not in lb.locals and {"nb__0", "nb__1", "vb__0", "vb__1", "v__0", "v__1"} <= set(lb.locals)
    # NODE is written on trap paths only (a trap stores its lane's nb), never per sample
    (sample,) = [x for x in loops if x.label == "sample"]
    assert not [x for x in sample.body if isinstance(x, k.Store) and x.addr == c32(NODE)]
    # inline trap paths store their own lane's base; outlined ones (the default) the base their
    # lane passes in as the function's ``nb``
    inline = lanes(vb.body, vb.locals, 2, outline=False)
    node_stores = [x for x in walk(inline.body) if isinstance(x, k.Store) and x.addr == c32(NODE)]
    assert node_stores and {x.value.name for x in node_stores} <= {"nb__0", "nb__1"}
    for fn in lb.functions:
        if fn.name.startswith("_lane_arm_"):
            stores = [x for x in walk(fn.body) if isinstance(x, k.Store) and x.addr == c32(NODE)]
            assert all(x.value.name == "nb" and "nb" in dict(fn.params) for x in stores)


def test_small_pure_if_else_become_selects() -> None:
    vb = voice_body(sine_lowpass, 2)
    with_sel = lanes(vb.body, vb.locals, 2, outline=False)  # the arms' selects stay in the body
    without = lanes(vb.body, vb.locals, 2, selects=False, outline=False)
    n_with = sum(isinstance(x, k.Choose) for x in walk(with_sel.body))
    n_without = sum(isinstance(x, k.Choose) for x in walk(without.body))
    assert n_with > n_without
    assert sum(isinstance(x, k.If) for x in walk(with_sel.body)) < sum(
        isinstance(x, k.If) for x in walk(without.body)
    )
    seq = Runner(sequential_module(vb, 2), vb, 2)
    plain = Runner(lane_module(vb, 2, 2, without), vb, 2)
    seq.run(64)
    plain.run(64)
    assert_same_memory(seq, plain, HEADER_BYTES + 2 * vb.vs)


# --------------------------------------------------------------------------- faults
@pytest.mark.parametrize("lane", [0, 1, 3])
def test_a_fault_in_one_lane_names_that_lane(lane: int) -> None:
    voices = 4
    vb = voice_body(divider({lane: 9.0}), voices)
    seq = Runner(sequential_module(vb, voices), vb, voices)
    lan = Runner(lane_module(vb, voices, 2), vb, voices)
    for r in (seq, lan):
        with pytest.raises(wasmtime.Trap):
            r.run(32)
    assert lan.header(LANE)[0] == lane
    assert lan.header(TRAP_CODE)[0] == seq.header(TRAP_CODE)[0] == FLOAT_ZERO_DIV
    assert lan.header(TRAP_SITE)[0] == seq.header(TRAP_SITE)[0] > 0
    assert lan.header(NODE)[0] == seq.header(NODE)[0]


def test_header_has_the_lane_slot() -> None:
    assert HEADER_SLOTS["lane"] == LANE == 28
    assert LANE + 4 <= HEADER_BYTES and LANE not in (v for n, v in HEADER_SLOTS.items() if n != "lane")


class Looper(Node):
    """``reps`` loop iterations per sample (0 in some voices): the loop budget counts them."""

    reps = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self, reps: float) -> None:
        self.reps = float(reps)
        self.acc = 0.0

    def process(self, sample_rate: float) -> None:
        for _ in range(int(self.reps)):
            self.acc = self.acc * 0.5 + 1.0
        self.output = self.acc


def looper(reps: dict[int, float]):
    def make(v: int) -> Graph:
        g = Graph(SR)
        n = g.add_node(Looper(reps.get(v, 0.0)))
        g.set_output(n.output)
        return g

    return make


def test_the_loop_budget_is_counted_by_every_lane() -> None:
    """INTERRUPT is counted down by every lane's loops (a shared header slot, written lane by
    lane): the memory after a block, INTERRUPT included, is the voices' one by one."""
    vb = voice_body(busy, 2)
    seq = Runner(sequential_module(vb, 2), vb, 2)
    lan = Runner(lane_module(vb, 2, 2), vb, 2)
    seq.run(16)
    lan.run(16)
    assert seq.header(20)[0] < 2**31 - 1  # the loops counted
    assert_same_memory(seq, lan, HEADER_BYTES + 2 * vb.vs)


@pytest.mark.parametrize("lane", [1, 2])
def test_a_loop_budget_runs_out_in_the_lane_that_loops(lane: int) -> None:
    """Only one voice loops: when the budget runs out, TIMEOUT names that voice's lane."""
    vb = voice_body(looper({lane: 4.0}), 4)
    seq = Runner(sequential_module(vb, 4), vb, 4)
    lan = Runner(lane_module(vb, 4, 2), vb, 4)
    for r in (seq, lan):
        r.header(20)[0] = 30  # the host's budget: a few samples' loops
        with pytest.raises(wasmtime.Trap):
            r.run(64)
    assert lan.header(TRAP_CODE)[0] == seq.header(TRAP_CODE)[0] == TIMEOUT
    assert lan.header(LANE)[0] == seq.header(LANE)[0] == lane
    assert lan.header(20)[0] == seq.header(20)[0]


# --------------------------------------------------------------------------- refusals
def test_what_cannot_be_lanes_is_refused_with_a_reason() -> None:
    ret = [k.ReturnValues(values=[])]
    with pytest.raises(NotLaneable, match="return"):
        lanes(ret, {})
    text = k.Code([], {})
    text.derived["wat"] = "nop"
    with pytest.raises(NotLaneable, match="WebAssembly text"):
        lanes([k.Instance(code=text)], {})
    with pytest.raises(NotLaneable, match="outside the body"):
        lanes([k.Exit(label="elsewhere")], {})
    shared = k.Store(type=F64, addr=loc(I32, "n"), offset=0, value=k.Const(F64, 1.0))
    with pytest.raises(NotLaneable, match="shared address"):
        lanes([shared], {})


def test_expansion_applies_renames_syncs_and_numbers_traps() -> None:
    site = k.TrapSite(None, "x")
    code = k.Code(
        [
            k.SetLocal(name="S_a", value=k.Local(F64, "tmp")),
            k.SyncState(direction="flush"),
            k.Trap(code=7, where=site),
        ],
        {"tmp": F64},
        [k.TrapSite(None, "other"), site],
    )
    flush = [k.Store(type=F64, addr=loc(I32, "nb"), offset=8, value=k.Local(F64, "S_a"))]
    inst = k.Instance(code=code, renames={"S_a": "n3_a"}, flush=flush)
    got = expand([inst])
    assert isinstance(got[0], k.SetLocal) and got[0].name == "n3_a"
    assert isinstance(got[1], k.Store) and got[1].value == k.Local(F64, "n3_a")
    assert got[2].number == 2  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- random bodies
MATH = ["m_sin", "m_cos", "m_tanh"]
"""Math functions the random bodies call (out of line, imported; each has an f64x2 form)."""


class _Draw:
    """Choices for the random bodies: from hypothesis, or from a seeded ``random.Random``."""

    def __init__(self, draw=None, rng: random.Random | None = None) -> None:
        self.draw, self.rng = draw, rng

    def ints(self, a: int, b: int) -> int:
        return self.rng.randint(a, b) if self.rng else self.draw(st.integers(a, b))

    def pick(self, seq):
        return self.rng.choice(seq) if self.rng else self.draw(st.sampled_from(seq))

    def coin(self) -> bool:
        return self.rng.random() < 0.5 if self.rng else self.draw(st.booleans())


def _random_body(draw: _Draw, base: str = "vb") -> tuple[list[k.Stmt], dict[str, T]]:
    """A per-voice body over 8 f64 slots at ``base`` and a uniform table at a fixed address:
    straight lines, branches on voice data and on the sample, a small loop, a select-able
    if/else, inlined-helper shapes (``min`` as a value with statements; a checked value)."""
    vb = loc(I32, base)
    names = [f"x{j}" for j in range(4)]
    locals_: dict[str, T] = {nm: F64 for nm in names}
    locals_.update({"i": I32, "j": I32, "c": I32, "t": F64, "u": F64})

    def slot(j: int) -> k.Load:
        return k.Load(F64, vb, 8 * j)

    def table() -> k.Load:
        return k.Load(F64, p(Op.I32_SHL, p(Op.I32_AND, loc(I32, "i"), c32(3)), c32(3)), TABLE)

    def expr(depth: int) -> k.Expr:
        kind = draw.ints(0, 7 if depth else 2)
        if kind == 0:
            return loc(F64, draw.pick(names))
        if kind == 1:
            return k.Const(F64, draw.pick([0.5, -1.25, 3.0, -0.0, 0.0]))
        if kind == 2:
            return slot(draw.ints(0, 7)) if draw.coin() else table()
        if kind == 3:  # min(a, b) as the frontend inlines it: a temporary, then a select
            t, b = loc(F64, "t"), expr(depth - 1)
            lt = p(Op.F64_LT, b, t)
            return k.Seq(F64, [k.SetLocal(name="t", value=expr(depth - 1))], k.Select(F64, lt, b, t))
        if kind == 4:  # a checked value (never fails here: the values are finite)
            u = loc(F64, "u")
            check = k.If(k.NOSITE, p(Op.F64_NE, u, u), [k.Trap(code=1)], [])
            return k.Seq(F64, [k.SetLocal(name="u", value=expr(depth - 1)), check], u)
        if kind == 5:  # a math call (finite arguments: never raises), its site noted first
            note = [
                k.Store(type=I32, addr=c32(TRAP_SITE), offset=0, value=c32(1)),
                k.Store(type=I32, addr=c32(TRAP_CODE), offset=0, value=c32(12)),
            ]
            call = k.CallFn(F64, draw.pick(MATH), [expr(depth - 1)])
            return k.Seq(F64, note, call) if draw.coin() else call
        op = draw.pick([Op.F64_ADD, Op.F64_SUB, Op.F64_MUL, Op.F64_MIN, Op.F64_MAX])
        return p(op, expr(depth - 1), expr(depth - 1))

    def cond() -> k.Expr:
        if draw.coin():
            return p(draw.pick([Op.F64_LT, Op.F64_LE, Op.F64_GT, Op.F64_EQ]), expr(1), expr(1))
        return p(Op.I32_EQ, p(Op.I32_AND, loc(I32, "i"), c32(1)), c32(0))  # uniform

    def stmts(depth: int, count: int) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for _ in range(count):
            kind = draw.ints(0, 4 if depth else 1)
            if kind == 0:
                out.append(k.SetLocal(name=draw.pick(names), value=expr(2)))
            elif kind == 1:
                out.append(k.Store(type=F64, addr=vb, offset=8 * draw.ints(0, 7), value=expr(2)))
            elif kind == 2:
                out.append(k.If(k.NOSITE, cond(), stmts(depth - 1, 2), stmts(depth - 1, draw.ints(0, 2))))
            elif kind == 3:  # a select-able if/else
                a, b, c = draw.pick(names[:2]), draw.pick(names[:2]), draw.pick(names[2:])
                out.append(
                    k.If(
                        k.NOSITE,
                        cond(),
                        [k.SetLocal(name=a, value=p(Op.F64_ADD, loc(F64, c), k.Const(F64, 1.0)))],
                        [k.SetLocal(name=b, value=p(Op.F64_MUL, loc(F64, c), k.Const(F64, -0.5)))],
                    )
                )
            else:  # a loop whose trip count is the voice's
                out += [
                    k.SetLocal(name="j", value=p(Op.I32_AND, p(Op.I32_TRUNC_SAT_F64_S, slot(0)), c32(3))),
                    k.Loop(
                        label="rep",
                        cond=p(Op.I32_GT_S, loc(I32, "j"), c32(0)),
                        body=[
                            *stmts(depth - 1, 2),
                            k.SetLocal(name="j", value=p(Op.I32_SUB, loc(I32, "j"), c32(1))),
                        ],
                    ),
                ]
        return out

    pro = [k.SetLocal(name=nm, value=slot(j)) for j, nm in enumerate(names)]
    i = loc(I32, "i")
    loop = k.Loop(
        label="sample",
        cond=None,
        body=[
            k.Exit(label="sample", cond=p(Op.I32_GE_U, i, loc(I32, "n"))),
            *stmts(2, draw.ints(1, 5)),
            k.SetLocal(name="i", value=p(Op.I32_ADD, i, c32(1))),
        ],
    )
    epi = [k.Store(type=F64, addr=vb, offset=8 * (4 + j), value=loc(F64, nm)) for j, nm in enumerate(names)]
    return [*pro, k.SetLocal(name="i", value=c32(0)), loop, *epi], locals_


TABLE = 1024  # a uniform table of 4 f64 before the voices' memory
VOICE_BASE = 2048


@st.composite
def random_body(draw):
    return _random_body(_Draw(draw))


def _check_random_body(body: list[k.Stmt], locals_: dict[str, T], seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = [-1.25, -0.5, -0.0, 0.0, 0.5, 1.0, 3.0]  # few: comparisons meet equal operands too
    images = [rng.choice(values, 8) for _ in range(4)]
    vb = VoiceBody(body, locals_, [], MATH, 64, [im.view(np.uint8) for im in images], {}, [], VOICE_BASE)
    table = rng.choice(values, 4)
    modules = [sequential_module(vb, 4), lane_module(vb, 4, 2)]
    modules += [lane_module(vb, 4, 2, lanes(body, locals_, 2, pack="all")), lane_module(vb, 4, 4)]
    modules += [lane_module(vb, 4, 4, lanes(body, locals_, 4, pack="all"))]
    runners = []
    for module in modules:
        r = Runner(module, vb, 4)
        r.bytes[TABLE : TABLE + 32] = table.view(np.uint8)
        r.run(7)
        runners.append(r)
    for r in runners[1:]:
        assert_same_memory(runners[0], r, VOICE_BASE + 4 * 64)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_body(), st.integers(0, 2**32 - 1))
def test_random_bodies_as_lanes(body_locals, seed) -> None:
    _check_random_body(*body_locals, seed)


def test_seeded_random_bodies_as_lanes() -> None:
    """As above, from plain seeded choices: evenly spread shapes (hypothesis favours small ones)."""
    for seed in range(60):
        _check_random_body(*_random_body(_Draw(rng=random.Random(seed))), seed)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_lane_inputs_named_by_the_caller(data) -> None:
    """Bodies addressed from another lane input (a node base ``b1`` = vb + 0 set by the caller),
    with the voice index ``v`` among the inputs: the lane body reads ``b1__L``."""
    core, locals_ = _random_body(_Draw(data.draw), base="b1")
    set_b1 = k.SetLocal(name="b1", value=p(Op.I32_ADD, loc(I32, "vb"), c32(0)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    images = [rng.normal(0, 2, 8).view(np.uint8) for _ in range(4)]
    vb = VoiceBody([set_b1, *core], {**locals_, "b1": I32}, [], MATH, 64, images, {}, [], VOICE_BASE)
    lb = lanes(core, locals_, 2, lane_inputs=("b1", "v"), index="v")
    assert "b1__0" in lb.locals and "b1" not in lb.locals
    lb.body = [
        *(k.SetLocal(name=f"b1__{lane}", value=loc(I32, f"vb__{lane}")) for lane in range(2)),
        *lb.body,
    ]
    lb.locals.update({"vb__0": I32, "vb__1": I32})
    runners = []
    for module in (sequential_module(vb, 4), lane_module(vb, 4, 2, lb)):
        r = Runner(module, vb, 4)
        r.bytes[TABLE : TABLE + 32] = np.arange(4.0).view(np.uint8)
        r.run(5)
        runners.append(r)
    assert_same_memory(*runners, VOICE_BASE + 4 * 64)
    with pytest.raises(ValueError, match="voice index"):
        lanes(core, locals_, 2, lane_inputs=("b1",))


def test_statements_of_values_move_out_only_where_the_meaning_is_kept() -> None:
    """``min(a, t) + min(b, t)`` as inlined: each ``min`` sets the temporary ``t`` then selects.
    The first ``min``'s statements move before the statement; the second's may not (the first
    operand, evaluated before them, reads the ``t`` they set). Run both ways: the same memory."""
    vb_ = loc(I32, "vb")

    def min_of(j: int) -> k.Seq:
        t, b = loc(F64, "t"), k.Load(F64, vb_, 8 * j)
        return k.Seq(
            F64,
            [k.SetLocal(name="t", value=k.Load(F64, vb_, 8 * (j + 1)))],
            k.Select(F64, p(Op.F64_LT, b, t), b, t),
        )

    body = [
        k.SetLocal(name="x", value=p(Op.F64_ADD, min_of(0), min_of(2))),
        k.Store(type=F64, addr=vb_, offset=32, value=loc(F64, "x")),
    ]
    locals_ = {"x": F64, "t": F64}
    got = straighten(expand(body))
    assert isinstance(got[0], k.SetLocal) and got[0].name == "t"  # the first min's statement moved
    assert sum(isinstance(x, k.Seq) for x in walk(got)) == 1  # the second stayed in place
    images = [
        np.array([1.0, 2.0, 5.0, 4.0] + [0.0] * 4).view(np.uint8),
        np.array([3.0, 2.0, 1.0, 7.0] + [0.0] * 4).view(np.uint8),
    ]
    vb = VoiceBody(body, locals_, [], [], 64, images, {}, [], VOICE_BASE)
    runners = [Runner(m, vb, 2) for m in (sequential_module(vb, 2), lane_module(vb, 2, 2))]
    for r in runners:
        r.run(1)
    assert_same_memory(*runners, VOICE_BASE + 2 * 64)
    x = runners[1].bytes[VOICE_BASE + 32 : VOICE_BASE + 40].view(np.float64)[0]
    assert x == 1.0 + 4.0  # min(1, 2) + min(5, 4)


def test_straight_line_f64_work_is_packed_and_exact() -> None:
    vb = voice_body(poly_lowpass, 4)
    lb = lanes(vb.body, vb.locals, 2)
    ops = [x.op.name for x in walk(lb.body) if isinstance(x, k.Prim)]
    assert ops.count("F64X2_MUL") >= 8 and ops.count("F64X2_ADD") >= 5  # the polynomial, both lanes at once
    assert any(t == T.V128 for t in lb.locals.values())
    seq = Runner(sequential_module(vb, 4), vb, 4)
    lan = Runner(lane_module(vb, 4, 2, lb), vb, 4)
    for n in (64, 13):
        seq.run(n)
        lan.run(n)
        assert_same_memory(seq, lan, HEADER_BYTES + 4 * vb.vs)


# --------------------------------------------------------------------------- math calls
class Logger(Node):
    """``log`` of a value counting down from ``start``: a math domain error once it reaches 0."""

    start = ValueInput(5.0)
    output = StreamOutput()

    def __init__(self, start: float) -> None:
        self.start = float(start)
        self.t = 0.0

    def process(self, sample_rate: float) -> None:
        self.output = math.log(self.start - self.t) + math.sin(self.t * 0.1)
        self.t = self.t + 1.0


class MathSine(Node):
    """A sine of the phase through ``math.sin`` (the library call the built-in sine no longer makes)."""

    frequency = ValueInput(440.0)
    output = StreamOutput()

    def __init__(self, frequency: float = 440.0) -> None:
        self.frequency = frequency
        self._phase = 0.0

    def process(self, sample_rate: float) -> None:
        self.output = math.sin(6.283185307179586 * self._phase)
        self._phase = (self._phase + self.frequency / sample_rate) % 1.0


def math_sine_lowpass(v: int) -> Graph:
    g = Graph(SR)
    osc = g.add_node(MathSine(110.0 * (v + 1) + 3.0 * v))
    lp = g.add_node(IirLowpass(500.0 + 700.0 * v, 0.7 + 0.2 * v))
    g.connect(osc.output, lp.input)
    g.set_output(lp.output)
    return g


def logger(starts: dict[int, float]):
    def make(v: int) -> Graph:
        g = Graph(SR)
        n = g.add_node(Logger(starts.get(v, 1000.0 + v)))
        g.set_output(n.output)
        return g

    return make


@pytest.mark.parametrize("make", [math_sine_lowpass, logger({})], ids=["sine-lp", "log-sin"])
def test_math_calls_take_the_f64x2_forms(make) -> None:
    """Out-of-line math (large graphs): each pair of lanes calls the f64x2 main path, and the
    scalar function only for a lane off it; the memory is the voices' one by one."""
    vb = voice_body(make, 4, inline_math=False)
    lb = lanes(vb.body, vb.locals, 2)
    called = {x.func for x in walk(lb.body) if isinstance(x, k.Invoke)}
    assert any(f.endswith("_f64x2_main") for f in called)
    assert {f.name for f in lb.functions} >= {f for f in called if f.endswith("_f64x2_main")}
    seq = Runner(sequential_module(vb, 4), vb, 4)
    lan = Runner(lane_module(vb, 4, 2, lb), vb, 4)
    for n in (64, 29):
        seq.run(n)
        lan.run(n)
        assert_same_memory(seq, lan, HEADER_BYTES + 4 * vb.vs)


@pytest.mark.parametrize("lane", [0, 1, 2])
def test_a_math_error_in_one_lane_names_that_lane(lane: int) -> None:
    vb = voice_body(logger({lane: 6.0}), 4, inline_math=False)
    seq = Runner(sequential_module(vb, 4), vb, 4)
    lan = Runner(lane_module(vb, 4, 2), vb, 4)
    for r in (seq, lan):
        with pytest.raises(wasmtime.Trap):
            r.run(16)
    assert lan.header(LANE)[0] == lane == seq.header(LANE)[0]
    errors = [r.math_error() for r in (seq, lan)]
    assert errors[0] == errors[1] != 0


@pytest.mark.parametrize(
    ("make", "inline"), [(poly_lowpass, True), (sine_lowpass, False)], ids=["poly", "calls"]
)
def test_the_reference_backend_runs_lane_bodies_as_wasmtime_does(make, inline: bool) -> None:
    """The packed lane body on the reference backend (the IR's other evaluator): the same
    memory as wasmtime, bit for bit."""
    vb = voice_body(make, 2, inline_math=inline)
    module = lane_module(vb, 2, 2)
    wasm_run = Runner(module, vb, 2)
    wasm_run.run(16)
    memory = reference_memory(module, vb, 2, 16, len(wasm_run.bytes))
    assert_same_memory(wasm_run, memory, HEADER_BYTES + 2 * vb.vs)


def test_a_select_whose_condition_sets_a_side_stays_lazy() -> None:
    """``t if c else x`` where computing ``c`` sets ``t`` (statements that cannot move out: a
    check): as a select of both sides, ``t`` would be read before ``c`` set it. Regression: it was
    made a select of the stale ``t``."""
    vb_ = loc(I32, "vb")
    t, x = loc(F64, "t"), loc(F64, "x")
    check = k.If(k.NOSITE, p(Op.F64_NE, t, t), [k.Trap(code=1)], [])
    cond = k.Seq(T.BOOL, [k.SetLocal(name="t", value=k.Load(F64, vb_, 8)), check], p(Op.F64_LT, t, x))
    body = [
        k.SetLocal(name="x", value=k.Load(F64, vb_, 0)),
        k.SetLocal(name="y", value=k.Select(F64, cond, t, x)),
        k.Store(type=F64, addr=vb_, offset=16, value=loc(F64, "y")),
    ]
    images = [
        np.array([5.0, 2.0] + [0.0] * 6).view(np.uint8),
        np.array([1.0, 3.0] + [0.0] * 6).view(np.uint8),
    ]
    vb = VoiceBody(body, {"x": F64, "y": F64, "t": F64}, [], [], 64, images, {}, [], VOICE_BASE)
    runners = [Runner(m, vb, 2) for m in (sequential_module(vb, 2), lane_module(vb, 2, 2))]
    for r in runners:
        r.run(1)
    assert_same_memory(*runners, VOICE_BASE + 2 * 64)
    assert runners[1].bytes[VOICE_BASE + 16 : VOICE_BASE + 24].view(np.float64)[0] == 2.0  # min(5, 2)


@pytest.mark.parametrize("make", [enveloped, poly_lowpass, busy], ids=["adsr", "poly", "busy"])
def test_the_lane_body_shares_no_node(make) -> None:
    """Every statement and expression of the lane body is its own object (constants apart), so a
    later pass may rewrite it in place; the per-voice body is left as it was."""
    vb = voice_body(make, 2)
    before = wasm_text(vb.body)
    lb = lanes(vb.body, vb.locals, 2)
    seen: dict[int, object] = {}
    for x in walk(lb.body):
        if isinstance(x, k.Const):
            continue
        assert id(x) not in seen, f"{type(x).__name__} appears twice"
        seen[id(x)] = x
    assert wasm_text(vb.body) == before


def wasm_text(body: list[k.Stmt]) -> str:
    from oscen.jit.backends import wasm

    return "\n".join(wasm.Printer().stmts(body))


# --------------------------------------------------------------------------- every node class
NODE_MODULES = (
    "delay distortion dynamics effects envelopes filters gain modulation noise oscillators pluck random"
    " reverb sampler sequencing stereo wavetable"
).split()
TABLE_WAVE = np.sin(np.linspace(0.0, 2.0 * np.pi, 256, endpoint=False))
CONSTRUCT = {  # the classes that need arguments
    "Sampler": lambda: Sampler(TABLE_WAVE),
    "Wavetable": lambda: Wavetable(TABLE_WAVE),
    "Sequencer": lambda: Sequencer([60.0, None, 64.0, 67.0]),
    "Mixer": lambda: Mixer(3),
    "AudioFileInput": None,  # reads a file: not a voice
    "DelayLineFilter": None,  # bases of comb/allpass, chorus/flanger (covered by those)
    "ModulatedDelay": None,
}


def _node_classes() -> dict[str, type]:
    import importlib
    import inspect

    out: dict[str, type] = {}
    for name in NODE_MODULES:
        mod = importlib.import_module(f"oscen.{name}")
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, Node) and cls is not Node and cls.__module__ == mod.__name__:
                out[cls.__name__] = cls
    return out


NODE_CLASSES = _node_classes()


def _one_node_voice(construct):
    """A voice of one node fed by a sine on each stream input, with gate-like events on each event
    input at other frames per voice, its stream outputs the graph's."""

    def make(v: int) -> Graph:
        g = Graph(SR)
        node = g.add_node(construct())
        src = g.add_node(Oscillator.sine(200.0 + 90.0 * v, 0.7))
        outs = []
        for name, ep in type(node.node).endpoints().items():
            kind = type(ep).__name__
            if kind == "StreamInput":
                g.connect(src.output, getattr(node, name))
            elif kind == "EventInput":
                g.queue_event(getattr(node, name), 3 + 4 * v, 1.0)
                g.queue_event(getattr(node, name), 30 + 2 * v, 0.0)
            elif kind == "StreamOutput":
                outs.append(getattr(node, name))
        if outs:
            g.set_output(*outs)
        return g

    return make


@pytest.mark.parametrize("name", sorted(NODE_CLASSES))
def test_every_node_class_as_lanes(name: str) -> None:
    """Each of oscen's node classes as a voice (the real variant code: events, ramps, arrays,
    helpers, state syncs): the lane body at widths 2 and 4 leaves the voices' memory."""
    construct = CONSTRUCT.get(name, NODE_CLASSES[name])
    if construct is None:
        pytest.skip(f"{name} is no voice of its own")
    vb = voice_body(_one_node_voice(construct), 4)
    for width in (2, 4):
        seq = Runner(sequential_module(vb, 4), vb, 4)
        lan = Runner(lane_module(vb, 4, width), vb, 4)
        for n in (64, 21):
            seq.run(n)
            lan.run(n)
            assert_same_memory(seq, lan, HEADER_BYTES + 4 * vb.vs)
