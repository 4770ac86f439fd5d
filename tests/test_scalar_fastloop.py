"""A scalar segment's sample loop split into a fast loop and the full body (passes.scalarloop).

Every sample must run the statements it ran before, in the same order: bit for bit against the
interpreter (these graphs use no math library call) and against the same graph compiled with
``scalar_fast_loops`` off, while the rare ifs fire: the oscillator's restart every 1024 samples
and at frequency changes, its phase out of range (negative and large frequencies), a biquad's
coefficient update (parameter changes between blocks and inside a block through a connected
input), ramps (the full body on every sample), events in the middle of a block, user nodes with
branches, loops and early returns, and a fault inside a rare arm.
"""

from __future__ import annotations

import numpy as np
import pytest
from jit_support import assert_engines_match, event, run_engines, set_value
from random_graphs import SR

from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.jit import CraneliftJit, GraphState, NodeFault, kernel
from oscen.jit.ops import Op
from oscen.jit.passes import scalarloop
from oscen.jit.passes.walk import walk
from oscen.jit.skeleton import SkeletonBuilder
from oscen.oscillators import Oscillator

BLOCKS = [1, 37, 256, 64, 300]


def seed() -> Graph:
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5), "osc")
    lowpass = graph.add_node(IirLowpass(1000.0, 0.707), "lowpass")
    gain = graph.add_node(Gain(0.8), "gain")
    graph.connect(osc.output, lowpass.input)
    graph.connect(lowpass.output, gain.input)
    graph.set_output(gain.output)
    return graph


def modulated() -> Graph:
    """The seed with its cutoff and its frequency moved by other nodes every sample: the biquad's
    parameter test and the oscillator's increment test are not invariant in the fast loop."""
    graph = Graph(SR)
    lfo = graph.add_node(Oscillator.sine(3.0, 300.0), "lfo")
    vib = graph.add_node(Oscillator.sine(5.0, 20.0), "vib")
    osc = graph.add_node(Oscillator.sine(440.0, 0.5), "osc")
    lowpass = graph.add_node(IirLowpass(1000.0, 0.707), "lowpass")
    graph.connect(vib.output, osc.frequency)
    graph.connect(osc.output, lowpass.input)
    graph.connect(lfo.output, lowpass.cutoff)
    graph.set_output(lowpass.output)
    return graph


class Folder(Node):
    """Branches, a loop and an early return in a scalar segment: a wave folder whose rare if
    (the input beyond the threshold) runs a while loop, with an early return for silence, and
    a rare division that faults when ``divisor`` is 0."""

    input = StreamInput()
    threshold = ValueInput(0.3)
    divisor = ValueInput(1.0)
    output = StreamOutput()

    def __init__(self) -> None:
        self.folds = 0.0
        self.count = 0.0
        self.level = 0.0

    def process(self, sample_rate: float) -> None:
        x = self.input
        if x == 0.0:
            self.output = 0.0
            return
        self.count = self.count + 1.0
        if self.count >= 7.0:
            self.count = 0.0
            self.level = self.level * 0.5 + x / self.divisor
        t = self.threshold
        if x > t or x < -t:
            n = 0
            while (x > t or x < -t) and n < 8:
                x = (2.0 * t - x) if x > t else (-2.0 * t - x)
                n = n + 1
            self.folds = self.folds + n
        self.output = x + 0.01 * self.level


class Steps(Node):
    """No return block to open: every path returns a value of its own (a for loop, an else)."""

    input = StreamInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.acc = 0.0

    def process(self, sample_rate: float) -> None:
        total = 0.0
        for k in range(3):
            if self.input > 0.1 * k:
                total = total + self.input
            else:
                total = total - 0.5 * self.input
        self.acc = 0.999 * self.acc + 0.001 * total
        self.output = self.acc


class Gate(Node):
    """A rare if on a local set twice before it (the second time in the fast loop, by a
    select): the first value is not what the if tests, so the test stays in the loop."""

    input = StreamInput()
    threshold = ValueInput(0.5)
    output = StreamOutput()

    def __init__(self) -> None:
        self.hits = 0.0

    def process(self, sample_rate: float) -> None:
        t = self.threshold
        t = t if self.input < 0.8 else 0.0
        if t < 0.2:
            self.hits = self.hits + 1.0
        self.output = self.input + 0.001 * self.hits


class Counter(Node):
    """A rare if on an inlined predicate with an effect (it counts): its statements stay, and
    the if tests what they leave."""

    input = StreamInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self.count = 0.0
        self.level = 0.0

    def _tick(self) -> bool:
        self.count = self.count + 1.0
        return self.count >= 5.0

    def process(self, sample_rate: float) -> None:
        if self._tick():
            self.count = 0.0
            self.level = self.level * 0.5 + self.input
        self.output = self.level + self.input


def users() -> Graph:
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(97.0, 0.9), "osc")
    fold = graph.add_node(Folder(), "fold")
    steps = graph.add_node(Steps(), "steps")
    gate = graph.add_node(Gate(), "gate")
    count = graph.add_node(Counter(), "count")
    env = graph.add_node(AdsrEnvelope(0.002, 0.003, 0.5, 0.004), "env")
    mix = graph.add_node(Gain(1.0), "mix")
    graph.connect(osc.output, fold.input)
    graph.connect(fold.output, steps.input)
    graph.connect(steps.output, mix.input)
    graph.connect(osc.output, gate.input)
    graph.connect(gate.output, mix.input)
    graph.connect(osc.output, count.input)
    graph.connect(count.output, mix.input)
    graph.connect(env.output, mix.input)
    graph.set_output(mix.output)
    return graph


def functions(graph: Graph, jit: CraneliftJit | None = None) -> dict[str, kernel.Function]:
    program = (jit or CraneliftJit()).program(graph.to_ir())
    assert program.module is not None
    return {f.name: f for f in program.module.functions}


def _walk(stmts):
    for s in stmts:
        yield s
        for name in ("body", "orelse"):
            inner = getattr(s, name, None)
            if isinstance(inner, list):
                yield from _walk(inner)


def _answers_only(s: kernel.Stmt) -> bool:
    return isinstance(s, kernel.If) and all(isinstance(x, kernel.ReturnValues) for x in s.body)


# ------------------------------------------------------------------------------ structure
def test_the_seeds_fast_loop_is_a_function_of_its_own_without_the_rare_arms() -> None:
    fns = functions(seed())
    fast = fns["seg0_fast"]
    (loop,) = [s for s in fast.body if isinstance(s, kernel.Loop)]
    # no arm left: the only ifs return the loop's locals to the segment (0 done, k the kth rare if)
    assert all(_answers_only(s) for s in loop.body if isinstance(s, kernel.If))
    answers = [s for s in loop.body if isinstance(s, kernel.If)]
    # i >= n; the restart's countdown (the phase test reads only the increment: made before)
    assert len(answers) == 2
    # the invariant tests (ramps, the biquad's parameters, the increment against the last one)
    # are made once, before the call, not every sample
    seg = fns["seg0"]
    calls = [s for s in _walk(seg.body) if isinstance(s, kernel.Invoke) and s.func == "seg0_fast"]
    assert len(calls) == 1
    entry = [s for s in _walk(seg.body) if isinstance(s, kernel.Exit) and s.label == "_slow0"]
    assert len(entry) == 1
    reads = {x.name for x in walk([entry[0].cond]) if isinstance(x, kernel.Local)}
    assert {"ramps", "n1__last_cutoff", "n0__increment", "p0_frequency"} <= reads


def test_the_fast_loop_stays_in_the_segment_without_outlining(monkeypatch) -> None:
    monkeypatch.setattr(SkeletonBuilder, "outline_fast_loops", False)
    fns = functions(seed())
    assert "seg0_fast" not in fns
    fast = [s for s in _walk(fns["seg0"].body) if isinstance(s, kernel.Loop) and s.label == "_fast"]
    assert len(fast) == 1 and not any(isinstance(s, kernel.If) for s in fast[0].body)


def test_a_modulated_cutoff_and_frequency_are_tested_in_the_fast_loop() -> None:
    # a connected input changes every sample: those tests must stay exits of the fast loop
    fns = functions(modulated())
    (name,) = [n for n in fns if n.endswith("_fast")]
    (loop,) = [s for s in fns[name].body if isinstance(s, kernel.Loop)]
    tested = {
        x.name
        for s in loop.body
        if isinstance(s, kernel.If)
        for x in walk([s.cond])
        if isinstance(x, kernel.Local)
    }
    assert any(t.endswith("__last_cutoff") for t in tested)
    assert any(t.endswith("__increment") for t in tested)


# ------------------------------------------------------------------------------ exactness
SEED_ACTIONS = [
    set_value(700, "lowpass.cutoff", 2500.0),  # a coefficient update at a block edge
    set_value(1500, "osc.frequency", 1234.5),  # a new increment: polynomial, then a restart
    set_value(2300, "lowpass.q", 3.0, 0.004),  # a ramp: the full body on every sample
    set_value(2600, "osc.frequency", -300.0),  # the phase runs backwards: out of range below 0
    set_value(3100, "osc.frequency", 60000.0),  # beyond the sample rate: out of range above 1
    set_value(3400, "gain.gain", 0.3, 0.002),
    set_value(3600, "osc.frequency", 440.0),
]


@pytest.mark.parametrize("build", [seed, modulated, users], ids=["seed", "modulated", "users"])
def test_exact_against_the_interpreter_and_without_the_fast_loop(build, monkeypatch) -> None:
    n = 5200  # past several restarts (every 1024 samples)
    actions = SEED_ACTIONS if build is seed else []
    if build is users:
        actions = [
            event(300, "env.gate", 1.0, offset=11),  # in the middle of a block
            set_value(900, "fold.threshold", 0.1),
            event(1700, "env.gate", 0.0, offset=5),
            set_value(2500, "fold.threshold", 0.6, 0.003),
            event(3000, "env.gate", 1.0, offset=200),
        ]
    outs = run_engines(build, n, actions, engines=("interpreted", "state"), blocks=BLOCKS)
    assert np.any(np.abs(outs["state"]) > 1e-3)
    assert_engines_match(outs["interpreted"], outs["state"], exact=True, what="fast loop vs interpreted")
    monkeypatch.setattr(SkeletonBuilder, "scalar_fast_loops", False)
    plain = run_engines(build, n, actions, engines=("state",), blocks=BLOCKS)["state"]
    assert_engines_match(plain, outs["state"], exact=True, what="fast loop vs none")


def test_inline_fast_loop_is_exact_too(monkeypatch) -> None:
    monkeypatch.setattr(SkeletonBuilder, "outline_fast_loops", False)
    outs = run_engines(seed, 4000, SEED_ACTIONS, engines=("interpreted", "state"), blocks=BLOCKS)
    assert_engines_match(outs["interpreted"], outs["state"], exact=True, what="inline fast loop")


def test_user_nodes_are_opened_only_where_their_block_has_no_early_exit() -> None:
    ir = users().to_ir()
    jit = CraneliftJit()
    program = jit.program(ir)
    seg = [f for f in program.module.functions if f.name == "seg0"][0]
    instances = [s for s in _walk(seg.body) if isinstance(s, kernel.Instance)]
    # the folder's process returns early (``return`` for silence): its block stays one Instance
    # holding the whole process; the others are pasted as pieces
    whole = [s for s in instances if len(s.code.body) == 1 and isinstance(s.code.body[0], kernel.Block)]
    assert whole


def test_a_fault_inside_a_rare_arm_names_the_node() -> None:
    graph = users()
    ir = graph.to_ir()
    compiled = CraneliftJit().compile(ir)
    state = GraphState.from_graph(graph, ir=ir)
    compiled.bind(state)
    compiled.process_block(state, 64)
    fold = next(h for h in graph.nodes if h.label == "fold")
    state.set_value(fold.divisor, 0.0)
    with pytest.raises(NodeFault) as info:
        compiled.process_block(state, 64)
    assert isinstance(info.value, ZeroDivisionError)
    assert info.value.node == "fold"


def test_labels_taken_leave_the_loop_alone() -> None:
    i32 = kernel.T.I32
    body = [kernel.Block(label="_fast", body=[])]
    fn = kernel.Function("seg9", [("n", i32)], (), {}, [kernel.Loop(label="sample", cond=None, body=body)])
    assert scalarloop.scalar_fast_loop(fn) == [fn]


def test_a_fast_loop_with_too_many_values_stays_in_its_segment(monkeypatch) -> None:
    monkeypatch.setattr(scalarloop, "MAX_VALUES", 3)
    fns = functions(seed())
    assert "seg0_fast" not in fns
    assert any(isinstance(s, kernel.Loop) and s.label == "_fast" for s in _walk(fns["seg0"].body))
    outs = run_engines(seed, 3000, SEED_ACTIONS[:3], engines=("interpreted", "state"), blocks=BLOCKS)
    assert_engines_match(outs["interpreted"], outs["state"], exact=True, what="inline fast loop")


# ------------------------------------------------------------------------------ register pressure
def _deep(stmts):
    """Every node, into node code (an Instance's Code) too."""
    for x in walk(stmts):
        yield x
        if isinstance(x, kernel.Instance):
            yield from _deep(x.code.body)


def _around(stmts, pred):
    """(the statement list holding the first statement ``pred`` accepts, its index there)."""
    for j, s in enumerate(stmts):
        if pred(s):
            return stmts, j
        for name in ("body", "orelse"):
            inner = getattr(s, name, None)
            if isinstance(inner, list):
                got = _around(inner, pred)
                if got is not None:
                    return got
    return None


def _is_answer(s: kernel.Stmt, code: int) -> bool:
    return (
        isinstance(s, kernel.If)
        and len(s.body) == 1
        and isinstance(s.body[0], kernel.ReturnValues)
        and s.body[0].values[0] == kernel.Const(kernel.T.I32, code)
    )


def test_the_seeds_fast_loop_takes_only_the_state_it_carries() -> None:
    fns = functions(seed())
    fast, seg = fns["seg0_fast"], fns["seg0"]
    params = {n for n, _ in fast.params}
    # the oscillator's and the filter's state and the nodes' outputs: no coefficient, no
    # parameter, no temporary the full body would set before reading it (the restart's c, the
    # floor's rnd: read in the rare arms only after they set them); and r0, the graph output's
    # render offset (an i32 its buffer stores add, skeleton.find_direct)
    assert params == {
        "i", "n", "n0__c", "n0__s", "n0__left", "n0__phase", "n0_output",
        "n1__s1", "n1__s2", "n1_output", "n2_output", "r0",
    }  # fmt: skip
    # the values it reads and never sets come from globals, each read in the loop itself
    read = {x.name for x in walk(fast.body) if isinstance(x, kernel.GetGlobal)}
    invariants = {"n0__cw", "n0__sw", "n1__b0", "n1__b1", "n1__b2", "n1__a1", "n1__a2", "p2_gain"}
    assert {f"seg0_fast.{n}" for n in invariants} <= read
    (loop,) = [s for s in fast.body if isinstance(s, kernel.Loop)]
    inside = {x.name for x in walk(loop.body) if isinstance(x, kernel.GetGlobal)}
    assert inside == read
    # ... which the segment sets from its locals right before the call, every time it calls
    stmts, j = _around(seg.body, lambda s: isinstance(s, kernel.Invoke) and s.func == "seg0_fast")
    sets = {s.name: s.value for s in stmts[:j] if isinstance(s, kernel.SetGlobal)}
    assert set(sets) == read
    assert all(v == kernel.Local(kernel.T.F64, g.split(".", 1)[1]) for g, v in sets.items())
    module = CraneliftJit().program(seed().to_ir()).module
    assert read <= {g.name for g in module.globals}


def test_the_seeds_fast_loop_tests_the_block_end_after_each_sample() -> None:
    fast = functions(seed())["seg0_fast"]
    (loop,) = [s for s in fast.body if isinstance(s, kernel.Loop)]
    # i >= n once before the first sample, then at the end of each: the outputs the answer
    # returns are fresh there, not carried around the back edge to a test at the top
    assert _is_answer(fast.body[0], 0) and _is_answer(loop.body[-1], 0)
    assert not any(_is_answer(s, 0) for s in loop.body[:-1])
    assert fast.body[0].cond == loop.body[-1].cond


def test_the_seeds_phase_floor_is_not_in_its_fast_loop() -> None:
    # the guard of the oscillator's floor (``not (-1 < increment < 1)``) reads only the
    # increment: tested before the fast loop, so its arm and its test leave the loop
    fast = functions(seed())["seg0_fast"]
    assert not any(isinstance(x, kernel.Prim) and x.op.wasm == "f64.floor" for x in _deep(fast.body))
    assert not any(isinstance(x, kernel.Logical) for x in _deep(fast.body))


def test_without_reloading_the_invariants_are_parameters_again(monkeypatch) -> None:
    monkeypatch.setattr(SkeletonBuilder, "reload_invariants", False)
    fast = functions(seed())["seg0_fast"]
    assert {"n0__cw", "n1__b0", "p2_gain"} <= {n for n, _ in fast.params}
    assert not any(isinstance(x, kernel.GetGlobal) for x in walk(fast.body))
    outs = run_engines(seed, 4000, SEED_ACTIONS, engines=("interpreted", "state"), blocks=BLOCKS)
    assert_engines_match(outs["interpreted"], outs["state"], exact=True, what="invariants as parameters")


# ------------------------------------------------------------------------------ exposed reads
F64, BOOL = kernel.T.F64, kernel.T.BOOL


def _set(name: str, value: kernel.Expr) -> kernel.Stmt:
    return kernel.SetLocal(name=name, value=value)


def _x(name: str) -> kernel.Local:
    return kernel.Local(F64, name)


ONE = kernel.Const(F64, 1.0)
COND = kernel.Local(BOOL, "c")


def _if(body, orelse=()) -> kernel.Stmt:
    return kernel.If(site=kernel.NOSITE, cond=COND, body=list(body), orelse=list(orelse))


AB = {"a", "b"}  # what is read after the statements (and where an Exit(sample) among them goes)


@pytest.mark.parametrize(
    ("stmts", "exposed"),
    [
        ([_if([_set("x", ONE)], [_set("x", ONE)]), _set("y", _x("x"))], {"c"} | AB),  # set on both arms
        ([_if([_set("x", ONE)]), _set("y", _x("x"))], {"c", "x"} | AB),  # on one arm only
        ([_if([_set("x", ONE), _set("y", _x("x"))])], {"c"} | AB),  # read in the arm after its set
        (
            [_set("y", kernel.Seq(F64, [_set("t", ONE)], kernel.Prim(F64, Op.F64_ADD, [_x("t"), _x("t")])))],
            AB,
        ),  # a Seq's statements run before its value
        (
            [
                _set("y", kernel.Select(F64, COND, kernel.Seq(F64, [_set("t", ONE)], _x("t")), ONE)),
                _set("z", _x("t")),
            ],
            {"c", "t"} | AB,
        ),  # a lazy side's sets may not have run
        (
            [
                kernel.Block(label="b", body=[kernel.Exit(label="b", cond=COND), _set("x", ONE)]),
                _set("y", _x("x")),
            ],
            {"c", "x"} | AB,
        ),  # an exit out of the block before the set
        ([kernel.Block(label="b", body=[_set("x", ONE)]), _set("y", _x("x"))], AB),
        # where it leaves for the next statements, ``a`` is set already, ``b`` not yet
        ([_set("a", ONE), kernel.Exit(label="sample", cond=COND), _set("b", ONE)], {"c", "b"}),
    ],
    ids=["both-arms", "one-arm", "in-arm", "seq", "lazy-side", "block-exit", "block", "leave"],
)
def test_exposed_reads_follow_every_path(stmts, exposed) -> None:
    assert scalarloop._exposed(stmts, AB) == exposed


def test_a_small_fast_loop_keeps_its_invariants_in_parameters() -> None:
    # a sine alone: its state and its coefficients fit the registers; nothing goes through globals
    graph = Graph(SR)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5), "osc")
    graph.set_output(osc.output)
    fast = functions(graph)["seg0_fast"]
    params = {n for n, t in fast.params if t is kernel.T.F64}
    assert {"n0__cw", "n0__sw", "p0_amplitude"} <= params
    assert len(params) <= scalarloop.REGISTER_VALUES
    assert not any(isinstance(x, kernel.GetGlobal) for x in walk(fast.body))
