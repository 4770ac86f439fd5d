"""The TPT filter in voice lanes: its coefficient update (tan) runs packed, two voices at once.

The polysynth's voices move their TptFilter's cutoff with an envelope, so while a note's
envelope moves, every sample recomputes ``g = tan(pi fc / fs)``. With the f64x2 form of tan
(``m_tan_f64x2_main``, bit for bit the scalar fdlibm kernel: tests/test_mathlib_vector.py) and a
divisor the frontend can prove non-zero, the lanes pass runs that update as a pure arm, packed
(before: lane by lane, a call of the scalar ``m_tan`` per voice). Differential: the grouped
kernel equals the node-by-node kernel bit for bit, and the interpreter within docs/jit.md's
policy, with notes starting and stopping at arbitrary frames.
"""

from __future__ import annotations

import numpy as np
from jit_support import Action, assert_engines_match, event, run_engines
from random_graphs import SR

from oscen.envelopes import AdsrEnvelope
from oscen.filters import TptFilter
from oscen.gain import Multiply
from oscen.graph import Graph
from oscen.jit import CraneliftJit, kernel
from oscen.jit.passes.walk import walk
from oscen.midi import SubGraph, poly_voices
from oscen.oscillators import Oscillator

CALLS = (kernel.CallFn, kernel.Invoke)


def swept_voice(graph: Graph) -> SubGraph:
    """Saw -> TptFilter whose cutoff an ADSR sweeps (the polysynth's filter), times an ADSR."""
    saw = graph.add_node(Oscillator.saw(220.0, 0.5, band_limited=True))
    filter_env = graph.add_node(AdsrEnvelope(0.003, 0.02, 0.3, 0.015))
    depth = graph.add_node(Multiply(3000.0))
    lowpass = graph.add_node(TptFilter(300.0, 2.5))
    amp_env = graph.add_node(AdsrEnvelope(0.002, 0.03, 0.6, 0.02))
    vca = graph.add_node(Multiply())
    graph.connect(saw.output, lowpass.input)
    graph.connect(filter_env.output, depth.a)
    graph.connect(depth.output, lowpass.cutoff_mod)
    graph.connect(lowpass.lowpass, vca.a)
    graph.connect(amp_env.output, vca.b)
    return SubGraph(
        graph,
        inputs={"pitch": saw.frequency, "gate": [filter_env.gate, amp_env.gate]},
        outputs={"output": vca.output},
    )


def synth(voices: int = 4) -> Graph:
    graph = Graph(SR)
    poly = poly_voices(graph, swept_voice, voices, gain=0.3)
    graph.set_output(poly.output)
    return graph


def notes() -> list[Action]:
    rng = np.random.default_rng(11)
    actions: list[Action] = []
    held: list[int] = []
    for at in sorted(rng.integers(0, 3500, 24)):
        if held and rng.random() < 0.4:
            actions.append(event(int(at), "midi.midi", (128.0, float(held.pop(0)), 0.0)))
        else:
            held.append(int(rng.integers(30, 100)))
            actions.append(event(int(at), "midi.midi", (144.0, float(held[-1]), float(rng.integers(1, 128)))))
    return actions


def test_the_filter_update_calls_the_packed_tan_in_the_voice_pair() -> None:
    program = CraneliftJit(lanes=2).program(synth().to_ir())
    (pair,) = [f for f in program.module.functions if f.name.startswith("voices")]
    calls = {x.func for x in walk(pair.body) if isinstance(x, CALLS)}
    # the scalar m_tan stays beside it: the fallback for a lane off the main path (inf, huge)
    assert "m_tan_f64x2_main" in calls, "the filter's tan runs lane by lane"


def test_swept_tpt_voices_equal_node_by_node_and_the_interpreter() -> None:
    n, blocks = 4000, [256, 37, 512]
    grouped = run_engines(synth, n, notes(), engines=("interpreted", "state"), blocks=blocks)
    single = run_engines(
        synth, n, notes(), engines=("state",), blocks=blocks, jit=CraneliftJit(voice_groups=False)
    )
    assert np.any(np.abs(grouped["interpreted"]) > 1e-3), "silent: the test would prove little"
    assert_engines_match(single["state"], grouped["state"], exact=True, what="grouped vs node by node")
    assert_engines_match(grouped["interpreted"], grouped["state"], what="grouped vs interpreted")
