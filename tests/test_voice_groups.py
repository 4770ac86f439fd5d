"""Voice groups: copies of one sub-graph found in a GraphIR and compiled as one body (oscen.jit.groups).

1. Detection: which nodes form a group, and what keeps nodes out of one (another variant, another
   shape, a feedback cycle, a voice that feeds the next).
2. The compiled module holds one body per group, whatever the voice count.
3. Differential: grouped graphs equal the interpreter (the tolerance policy of docs/jit.md) and the
   same graph compiled node by node bit for bit, with voices started, stopped and re-tuned at arbitrary
   frames; random voice templates (hypothesis) included.
4. A fault in a voice's code names that voice's node.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jit_support import Action, assert_engines_match, event, perturbed_reference, run_engines, set_value
from random_graphs import PARAMS, SR, GraphSpec, graph_specs

from oscen.envelopes import AdsrEnvelope
from oscen.filters import IirLowpass
from oscen.gain import Gain, Mixer, Multiply
from oscen.graph import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.jit import CraneliftJit, GraphState, NodeFault, kernel
from oscen.jit.groups import find_groups
from oscen.jit.passes.walk import walk
from oscen.jit.skeleton import SkeletonBuilder
from oscen.midi import SubGraph, poly_voices
from oscen.oscillators import Oscillator
from oscen.sine import sin_cycles


def sines_into_lowpasses(n: int, sample_rate: float = SR) -> Graph:
    """``n`` sines each into its own lowpass, summed by one Gain (the "64 voices" patch)."""
    graph = Graph(sample_rate)
    mix = graph.add_node(Gain(1.0 / n), "mix")
    for k in range(n):
        osc = graph.add_node(Oscillator.sine(110.0 * 2 ** (k / 12), 0.5), f"osc{k}")
        lp = graph.add_node(IirLowpass(300.0 + 90.0 * k, 0.9), f"lp{k}")
        graph.connect(osc.output, lp.input)
        graph.connect(lp.output, mix.input)
    graph.set_output(mix.output)
    return graph


def enveloped_voice(graph: Graph, index: int = 0) -> SubGraph:
    """A voice for poly_voices: pitch -> saw -> lowpass, times an ADSR gated by the allocator."""
    osc = graph.add_node(Oscillator.saw(220.0, 0.4, band_limited=True), f"saw{index}")
    lp = graph.add_node(IirLowpass(1200.0, 1.2), f"lp{index}")
    env = graph.add_node(AdsrEnvelope(0.002, 0.01, 0.6, 0.02), f"env{index}")
    vca = graph.add_node(Multiply(), f"vca{index}")
    graph.connect(osc.output, lp.input)
    graph.connect(lp.output, vca.a)
    graph.connect(env.output, vca.b)
    return SubGraph(
        graph,
        inputs={"pitch": osc.frequency, "gate": env.gate},
        outputs={"output": vca.output},
        nodes=[osc, lp, env, vca],
    )


def polysynth(n: int) -> Graph:
    graph = Graph(SR)
    synth = poly_voices(graph, enveloped_voice, n, gain=0.3)
    graph.set_output(synth.output)
    return graph


def groups_of(graph: Graph) -> list[list[list[str]]]:
    ir = graph.to_ir()
    label = {n.id: n.label for n in ir.nodes}
    return [[[label[nid] for nid in voice] for voice in g.voices] for g in find_groups(ir)]


# ---------------------------------------------------------------------------------------- detection
def test_parallel_chains_are_one_group_of_voices_in_schedule_order() -> None:
    (group,) = groups_of(sines_into_lowpasses(8))
    assert group == [[f"osc{k}", f"lp{k}"] for k in range(8)]


def test_poly_voices_are_one_group_whose_allocator_inputs_differ_per_voice() -> None:
    graph = polysynth(6)
    ir = graph.to_ir()
    (group,) = find_groups(ir)
    assert len(group.voices) == 6 and len(group.template) == 4
    per_voice = sorted((e.endpoint, e.kind) for e in group.externals if not e.shared)
    assert per_voice == [("frequency", "stream"), ("gate", "event")]
    label = {n.id: n.label for n in ir.nodes}
    assert {label[src] for e in group.externals for src, _ in e.sources} == {"voices"}


def test_a_voice_of_another_shape_or_variant_stays_out_of_the_group() -> None:
    graph = sines_into_lowpasses(4)
    odd = graph.add_node(Oscillator.saw(99.0, 0.2), "odd")  # another variant (waveform constant)
    odd_lp = graph.add_node(IirLowpass(500.0), "odd lp")
    graph.connect(odd.output, odd_lp.input)
    twice = graph.add_node(Oscillator.sine(300.0, 0.2), "twice")  # same variants, another shape:
    twice_lp = graph.add_node(IirLowpass(500.0), "twice lp")  # its output feeds its filter twice
    graph.connect(twice.output, twice_lp.input)
    graph.connect(twice.output, twice_lp.cutoff)
    mix = next(h for h in graph.nodes if h.label == "mix")
    for lp in (odd_lp, twice_lp):
        graph.connect(lp.output, mix.input)
    (group,) = groups_of(graph)
    assert group == [[f"osc{k}", f"lp{k}"] for k in range(4)]


class _TwoInputs(Node):
    """A node with an input named like a connection's kind: shapes must still tell its inputs apart."""

    a = StreamInput()
    stream = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = self.a - self.stream


def test_copies_whose_terms_go_to_other_inputs_are_other_groups() -> None:
    # Copies 0 and 1 feed `a` from two outside sources and once from their own oscillator; copies 2
    # and 3 feed `a` once from outside and `stream` from their oscillator. Same variants, same
    # number of terms: only the inputs the terms go to tell the two shapes apart.
    graph = Graph(SR)
    ext = graph.add_node(Oscillator.saw(50.0, 0.1), "ext")
    ext2 = graph.add_node(Oscillator.square(70.0, 0.1), "ext2")
    mix = graph.add_node(Gain(0.25), "mix")
    for k in range(4):
        osc = graph.add_node(Oscillator.sine(100.0 + k, 0.2), f"osc{k}")
        two = graph.add_node(_TwoInputs(), f"two{k}")
        graph.connect(ext.output, two.a)
        if k < 2:
            graph.connect(ext2.output, two.a)
            graph.connect(osc.output, two.a)
        else:
            graph.connect(osc.output, two.stream)
        graph.connect(two.output, mix.input)
    graph.set_output(mix.output)
    assert sorted(groups_of(graph)) == [
        [["osc0", "two0"], ["osc1", "two1"]],
        [["osc2", "two2"], ["osc3", "two3"]],
    ]


def test_voices_in_series_or_in_a_feedback_loop_are_no_group() -> None:
    graph = Graph(SR)
    prev = graph.add_node(Oscillator.sine(100.0), "src")
    for k in range(4):  # each gain feeds the next: running them voice by voice is impossible
        g = graph.add_node(Gain(0.9), f"g{k}")
        graph.connect(prev.output, g.input)
        prev = g
    graph.set_output(prev.output)
    assert groups_of(graph) == []


def test_a_long_chain_of_one_variant_is_no_group() -> None:
    """Seven gains in series split at their middle into two chains of one shape, and those at
    theirs: copies, each fed by the one before. Regression: they became a group of 7 one-node
    voices, run one block after the other, each reading its predecessor's stale buffer."""
    graph = Graph(SR)
    prev = graph.add_node(Oscillator.sine(100.0), "src")
    for k in range(7):
        g = graph.add_node(Gain(0.9), f"g{k}")
        graph.connect(prev.output, g.input)
        prev = g
    graph.set_output(prev.output)
    assert groups_of(graph) == []


def test_voices_into_a_mix_that_feeds_a_node_of_its_own_variant_are_a_group() -> None:
    """The mix (a Gain) feeding a Gain: the mix is fed and feeds, yet it is the node the voices
    hang from (regression: the rule that keeps chains cheap dropped the group; bench_swap's
    graph, 64 voices into a mix into a tail gain, compiled node by node again)."""
    graph = sines_into_lowpasses(8)
    mix = next(h for h in graph.nodes if h.label == "mix")
    tail = graph.add_node(Gain(0.8), "tail")
    graph.connect(mix.output, tail.input)
    graph.set_output(tail.output)
    (group,) = groups_of(graph)
    assert group == [[f"osc{k}", f"lp{k}"] for k in range(8)]


def test_copies_that_share_one_outside_source_are_a_group() -> None:
    graph = Graph(SR)
    lfo = graph.add_node(Oscillator.sine(3.0, 40.0), "lfo")
    mix = graph.add_node(Gain(0.25), "mix")
    for k in range(4):
        osc = graph.add_node(Oscillator.sine(200.0 + 50 * k, 0.5), f"osc{k}")
        graph.connect(lfo.output, osc.fm)
        graph.connect(osc.output, mix.input)
    (group,) = find_groups(graph.to_ir())
    assert [e.shared for e in group.externals] == [True]


# ---------------------------------------------------------------------------------------- one body
def bodies_of(program) -> list[str]:
    """The voice bodies of a program's module: a voice-inner form's parts (oscen.jit.passes.
    voiceinner: ``voices0_gate``, ``_pack``, ``_unpack``, ``_run``, ``_step``) count as its one body."""
    names = [f.name.split("_")[0] for f in program.module.functions if f.name.startswith("voice")]
    return list(dict.fromkeys(names))


def test_one_body_for_any_number_of_voices() -> None:
    sizes = {}
    for n in (4, 16, 64):
        program = CraneliftJit().program(sines_into_lowpasses(n).to_ir())
        # one body: the voice pair's (lanes), beside the one-voice body only for an odd voice out
        assert bodies_of(program) == ["voices0"]
        sizes[n] = len(program.wat)
    # what grows with the voice count is one call per voice and the mix's sum, not node code
    assert sizes[64] < 2.0 * sizes[4]
    off = len(CraneliftJit(voice_groups=False).program(sines_into_lowpasses(64).to_ir()).wat)
    assert sizes[64] * 5 < off


@pytest.mark.parametrize(("voices", "lanes", "bodies"), [(5, 2, ["voice0", "voices0"]), (6, 1, ["voice0"]),
                                                         (8, 4, ["voices0"]), (6, 4, ["voice0", "voices0"])])  # fmt: skip
def test_voices_left_over_by_the_lanes_run_one_by_one(voices: int, lanes: int, bodies: list[str]) -> None:
    jit = CraneliftJit(lanes=lanes)
    program = jit.program(sines_into_lowpasses(voices).to_ir())
    assert bodies_of(program) == bodies
    exact_engines(
        lambda: sines_into_lowpasses(voices), 1500, [set_value(300, "lp4.cutoff", 900.0, 0.01)], jit=jit
    )


# ---------------------------------------------------------------------------------------- differential
def exact_engines(build, n: int, actions: list[Action], blocks=512, jit: CraneliftJit | None = None) -> None:
    """Interpreter, grouped kernel and node-by-node kernel: the two kernels bit for bit, and the
    interpreter within the policy (math-library calls: 1e-9)."""
    grouped = run_engines(
        build, n, actions, engines=("interpreted", "state", "jitgraph"), blocks=blocks, jit=jit
    )
    single = run_engines(
        build, n, actions, engines=("state",), blocks=blocks, jit=CraneliftJit(voice_groups=False)
    )
    assert np.any(np.abs(grouped["interpreted"]) > 1e-4), "silent: the test would prove little"
    assert_engines_match(grouped["interpreted"], grouped["state"], what="grouped vs interpreted")
    assert_engines_match(grouped["interpreted"], grouped["jitgraph"], what="grouped jitgraph vs interpreted")
    assert_engines_match(single["state"], grouped["state"], exact=True, what="grouped vs node by node")


def test_sixty_four_voices_equal_the_interpreter_and_the_ungrouped_kernel() -> None:
    actions = [set_value(700, "osc5.frequency", 880.0, 0.01), set_value(1500, "lp63.cutoff", 2000.0)]
    exact_engines(lambda: sines_into_lowpasses(64), 3000, actions, blocks=[256, 100, 1024])


def midi(at: int, status: int, note: int, velocity: int) -> Action:
    return event(at, "midi.midi", (float(status), float(note), float(velocity)))


@pytest.mark.parametrize("blocks", [512, [1, 37, 256, 1024]])
def test_voices_start_and_stop_at_arbitrary_frames(blocks) -> None:
    rng = np.random.default_rng(7)
    actions: list[Action] = []
    held: list[int] = []
    for at in sorted(rng.integers(0, 5000, 40)):
        if held and rng.random() < 0.45:
            actions.append(midi(int(at), 0x80, held.pop(int(rng.integers(len(held)))), 0))
        else:
            note = int(rng.integers(40, 90))
            held.append(note)
            actions.append(midi(int(at), 0x90, note, int(rng.integers(1, 128))))
    exact_engines(lambda: polysynth(8), 6000, actions, blocks=blocks)


class Divider(Node):
    """Divides its input by ``divisor``: a ZeroDivisionError when a voice's divisor is 0."""

    input = StreamInput()
    divisor = ValueInput(1.0)
    output = StreamOutput()

    def __init__(self, divisor: float = 1.0) -> None:
        self.divisor = divisor

    def process(self, sample_rate: float) -> None:
        self.output = self.input / self.divisor


def test_a_fault_in_a_voice_names_that_voices_node() -> None:
    graph = Graph(SR)
    mix = graph.add_node(Gain(0.5), "mix")
    handles = []
    for k in range(5):
        osc = graph.add_node(Oscillator.sine(100.0 + k, 0.5), f"osc{k}")
        div = graph.add_node(Divider(1.0), f"divider{k}")
        graph.connect(osc.output, div.input)
        graph.connect(div.output, mix.input)
        handles.append(div)
    graph.set_output(mix.output)
    ir = graph.to_ir()
    assert len(find_groups(ir)) == 1
    compiled = CraneliftJit().compile(ir)
    state = GraphState.from_graph(graph, ir=ir)
    compiled.bind(state)
    compiled.process_block(state, 64)
    state.set_value(handles[3].divisor, 0.0)
    with pytest.raises(NodeFault) as info:
        compiled.process_block(state, 64)
    assert isinstance(info.value, ZeroDivisionError)
    assert "divider3" in str(info.value) and info.value.node == "divider3"
    assert "divider0" not in str(info.value)


# ---------------------------------------------------------------------------------------- random voices
VOICE_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def voice_scenarios(draw: st.DrawFn):
    """A random voice template (a random graph without feedback), 2 to 5 copies with their own
    parameters, mixed; each copy's parameters set and ramped and its envelopes gated at random
    frames."""
    template: GraphSpec = draw(graph_specs())
    template.feedback = None
    voices = draw(st.integers(2, 5))
    params = [
        [{name: draw(s) for name, s in PARAMS[k].items()} for k in template.kinds] for _ in range(voices)
    ]
    n = draw(st.integers(300, 2500))

    def build() -> Graph:
        graph = Graph(SR)
        mix = graph.add_node(Mixer(voices), "mix")
        for v in range(voices):
            spec = GraphSpec(template.kinds, params[v], template.links, None, [])
            handles = spec.add_to(graph, prefix=f"v{v}.")
            last = len(template.kinds) - 1
            out = "output" if template.kinds[last] != "tpt" else "lowpass"
            graph.connect(getattr(handles[last], out), getattr(mix, f"input{v}"))
        graph.set_output(mix.output)
        return graph

    connected = {(t, inp) for _, _, t, inp in template.links}
    actions: list[Action] = []
    for _ in range(draw(st.integers(0, 8))):
        v = draw(st.integers(0, voices - 1))
        settable = [
            (i, p) for i, k in enumerate(template.kinds) for p in PARAMS[k] if (i, p) not in connected
        ]
        i, name = draw(st.sampled_from(settable))
        value = draw(PARAMS[template.kinds[i]][name])
        actions.append(
            set_value(
                draw(st.integers(0, n - 1)), f"v{v}.n{i}.{name}", value, draw(st.sampled_from([0.0, 0.005]))
            )
        )
    for i, kind in enumerate(template.kinds):
        if kind == "adsr":
            for _ in range(draw(st.integers(0, 4))):
                v = draw(st.integers(0, voices - 1))
                actions.append(
                    event(
                        draw(st.integers(0, n - 1)),
                        f"v{v}.n{i}.gate",
                        draw(st.sampled_from([0.0, 1.0])),
                        draw(st.integers(0, 50)),
                    )
                )
    blocks = draw(st.lists(st.integers(1, 1500), min_size=1, max_size=3))
    return build, voices, n, sorted(actions, key=lambda a: a.at), blocks


@VOICE_SETTINGS
@given(voice_scenarios())
def test_random_voice_groups_equal_the_interpreter(scenario) -> None:
    build, voices, n, actions, blocks = scenario
    ir = build().to_ir()
    grouped_nodes = {nid for g in find_groups(ir) for nid in g.members}
    label = {n.id: n.label for n in ir.nodes}
    voice_nodes = {nid for nid, name in label.items() if name.startswith("v")}
    # every copy is in a group: its voice's (a template may hold several identical parts), or a
    # group of its own where it is a hub (one node feeding several of another node's copies)
    for nid in voice_nodes - grouped_nodes:
        neighbours = [c.target for c in ir.connections if c.source == nid]
        neighbours += [c.source for c in ir.connections if c.target == nid]
        classes = [next(n.cls for n in ir.nodes if n.id == m) for m in neighbours if m in voice_nodes]
        assert any(classes.count(c) >= 2 for c in classes), f"{label[nid]} was left out of the voice groups"
    grouped = run_engines(build, n, actions, engines=("interpreted", "state"), blocks=blocks)
    single = run_engines(
        build, n, actions, engines=("state",), blocks=blocks, jit=CraneliftJit(voice_groups=False)
    )
    expected = grouped["interpreted"]
    assert np.all(np.isfinite(expected)), "the graph blew up: the generator should keep graphs bounded"
    assert_engines_match(single["state"], grouped["state"], exact=True, what="grouped vs node by node")
    try:  # the tolerance policy of docs/jit.md: the plain bound, or the graph's own spread
        assert_engines_match(expected, grouped["state"], what="grouped vs interpreted")
    except AssertionError:
        perturbed = perturbed_reference(build, n, actions, blocks=blocks)
        assert_engines_match(expected, grouped["state"], perturbed=perturbed, what="grouped vs interpreted")


class PolynomialSine(Node):
    """A phase accumulator through oscen.sine.sin_cycles every sample: the Oscillator's sine
    before its rotation recurrence (which keeps the polynomial for a rare resync)."""

    frequency = ValueInput(440.0)
    output = StreamOutput()

    def __init__(self, frequency: float) -> None:
        self.frequency = float(frequency)
        self._phase = 0.0

    _sin_cycles = staticmethod(sin_cycles)

    def process(self, sample_rate: float) -> None:
        self.output = self._sin_cycles(self._phase)
        phase = self._phase + self.frequency * (1.0 / sample_rate)
        self._phase = phase - 1.0 if phase >= 1.0 else phase


def test_the_sine_voices_polynomial_runs_two_voices_per_instruction() -> None:
    """The polynomial sine of the phase (oscen.sine.sin_cycles, inlined as a helper with min/max
    and a return) is packed: its Horner steps are f64x2 operations in the pair's body. Before the
    lanes pass straightened inlined helpers' bodies, it ran lane by lane (6 f64x2.mul)."""
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0 / 8), "mix")
    for k in range(8):
        sine = graph.add_node(PolynomialSine(110.0 * 2 ** (k / 12)), f"sine{k}")
        lp = graph.add_node(IirLowpass(300.0 + 90.0 * k, 0.9), f"lp{k}")
        graph.connect(sine.output, lp.input)
        graph.connect(lp.output, mix.input)
    graph.set_output(mix.output)
    program = CraneliftJit(lanes=2).program(graph.to_ir())
    (pair,) = [f for f in program.module.functions if f.name == "voices0"]
    ops = [x.op.name for x in walk(pair.body) if isinstance(x, kernel.Prim)]
    assert ops.count("F64X2_MUL") >= 9 + 4  # the degree-17 polynomial's 9 products and more


@pytest.mark.parametrize("fuse", [True, False])
def test_the_voices_mix_is_added_block_wise_unless_a_voice_output_is_read_elsewhere(monkeypatch, fuse: bool) -> None:
    """The mix input of all voices reads one buffer: each voice body adds its output into it
    (``fuse_mix``, passes.mix: the buffer starts at -0.0) or the group's segment sums the voices'
    buffers (add_buffers, voice after voice); a voice's output that is also a graph output keeps
    its own buffer."""
    monkeypatch.setattr(SkeletonBuilder, "fuse_mix", fuse)
    summing = "mix_start" if fuse else "add_buffers"

    def has_sum(graph: Graph) -> bool:
        program = CraneliftJit().program(graph.to_ir())
        return any(f.name == summing for f in program.module.functions)

    assert has_sum(sines_into_lowpasses(6))
    graph = sines_into_lowpasses(6)
    graph.set_output(
        next(h for h in graph.nodes if h.label == "mix").output,
        next(h for h in graph.nodes if h.label == "lp2").output,
    )
    assert not has_sum(graph)
    # and the sum is the interpreter's to the bit, odd block lengths included (the f64x2 loop's tail)
    exact_engines(lambda: sines_into_lowpasses(6), 900, [], blocks=[1, 37, 256, 99])
