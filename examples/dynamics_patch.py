"""Sidechain "pumping": a pad ducked by a kick drum through a compressor's sidechain, the mix
caught by a brickwall limiter; an envelope follower on the kick opens a filter on the pad too.

The kick (a sine dropping in pitch under a short envelope) plays four on the floor at 124 bpm and
feeds the compressor's ``sidechain`` only, so the pad dips on every beat and swells back with the
release: the dance-music pump. The limiter keeps the sum under -1 dBFS.

    oscen render examples/dynamics_patch.py --seconds 8
"""

from __future__ import annotations

from oscen.dynamics import Compressor, EnvelopeFollower, Limiter
from oscen.envelopes import AdsrEnvelope
from oscen.filters import TptFilter
from oscen.gain import Gain, Multiply
from oscen.graph import Graph
from oscen.oscillators import Oscillator

TEMPO_BPM = 124.0
BEATS = 32


def patch(sample_rate: float) -> Graph:
    graph = Graph(sample_rate)
    # the kick: a 50 Hz sine with a quick pitch drop and a short amplitude envelope
    kick = graph.add_node(Oscillator.sine(50.0))
    pitch_env = graph.add_node(AdsrEnvelope(0.0, 0.04, 0.0, 0.0))
    drop = graph.add_node(Multiply(120.0))
    graph.connect(pitch_env.output, drop.a)
    graph.connect(drop.output, kick.fm)
    amp_env = graph.add_node(AdsrEnvelope(0.001, 0.25, 0.0, 0.05))
    kick_vca = graph.add_node(Multiply())
    graph.connect(kick.output, kick_vca.a)
    graph.connect(amp_env.output, kick_vca.b)

    # the pad: three detuned saws, through a filter opened by the kick's envelope
    pad = graph.add_node(Gain(0.25))
    for hz in (110.0, 110.6, 164.8):
        saw = graph.add_node(Oscillator.saw(hz, 1.0, band_limited=True))
        graph.connect(saw.output, pad.input)
    follower = graph.add_node(EnvelopeFollower(0.002, 0.15))
    graph.connect(kick_vca.output, follower.input)
    opening = graph.add_node(Multiply(2500.0))
    graph.connect(follower.output, opening.a)
    lowpass = graph.add_node(TptFilter(900.0, 1.2))
    graph.connect(pad.output, lowpass.input)
    graph.connect(opening.output, lowpass.cutoff_mod)

    duck = graph.add_node(Compressor(threshold=-30.0, ratio=8.0, attack=0.003, release=0.18, knee=6.0,
                                     external_sidechain=True))  # fmt: skip
    graph.connect(lowpass.lowpass, duck.input)
    graph.connect(kick_vca.output, duck.sidechain)

    limiter = graph.add_node(Limiter(ceiling=-1.0, release=0.08, lookahead=0.003))
    graph.connect(duck.output, limiter.input)
    graph.connect(kick_vca.output, limiter.input)  # the kick and the ducked pad, summed
    graph.set_output(limiter.output)

    beat = round(60.0 / TEMPO_BPM * sample_rate)
    for k in range(BEATS):
        for env in (pitch_env, amp_env):
            graph.queue_event(env.gate, k * beat, 1.0)
            graph.queue_event(env.gate, k * beat + beat // 4, 0.0)
    return graph
