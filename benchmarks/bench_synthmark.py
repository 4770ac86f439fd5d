"""SynthMark's voice built from oscen's nodes: how many fit in 90% of one core (VoiceMark_90).

    python benchmarks/bench_synthmark.py [--synthmark PATH] [--seconds 5] [--block 96] [--runs 3]

google/synthmark is the public benchmark of synthesizer voices per core. Its voice
(``source/synth/SimpleVoice.h``), rebuilt here from oscen nodes:

* a sine LFO at 6 Hz adds vibrato of 0.03 semitones to the note's pitch, which becomes a frequency
  (a small user node, :class:`PitchToFrequency`: ``440 * 2 ** ((pitch - 69) / 12)`` per sample);
* a band-limited sawtooth at that frequency and a band-limited square at 1.0001 times it, mixed
  0.6 / 0.4;
* a resonant biquad lowpass (Q 2) whose cutoff is 400 Hz plus 3000 Hz times a filter envelope;
* two ADSRs, for the filter and the amplitude, with SynthMark's randomised attack and decay times
  (filter: attack 0.05-0.25 s, decay 7-8 s; amplitude: attack 0.02-0.07 s, decay 1-1.2 s; sustain 0.4).

Pitches cycle through 60, 64, 67, 69 plus up to 0.03 semitones of random offset, as SynthMark's
``Synthesizer`` does, and every voice is gated on at frame 0 and sounds throughout.

What is measured: the compiled graph of N voices renders ``--seconds`` of audio in blocks of
``--block`` frames (96: SynthMark's burst here) with the cyclic GC off; cost(N) = wall seconds per
audio second. Two or three voice counts give cost = fixed + per_voice * N; VoiceMark_90 is the N
where that line reaches 0.9 (90% of one core), checked by rendering that N. Differences from
SynthMark worth knowing: oscen computes in float64 and recomputes the biquad's coefficients every
sample when its cutoff is modulated (SynthMark: float32, every 8 frames); SynthMark's envelope
decays exponentially, oscen's ``AdsrEnvelope`` linearly.

``--synthmark PATH``: a SynthMark binary (``synthmark.app``) you built from a SynthMark checkout,
or the checkout holding it. It is run as ``synthmark.app -tv -p90 -r44100 -s10 -a0 -f0`` between
oscen's runs, and its ``VoiceMark_90`` line is parsed. Without it that row is skipped. SynthMark's
code is not part of this repository and this script never builds it.
"""

from __future__ import annotations

import argparse
import gc
import math
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the checkout's oscen and benchmarks packages
    sys.path.insert(0, str(ROOT))

from oscen import Node, StreamInput, StreamOutput, ValueInput  # noqa: E402
from oscen.bench import Table, print_table  # noqa: E402
from oscen.envelopes import AdsrEnvelope  # noqa: E402
from oscen.filters import IirLowpass  # noqa: E402
from oscen.gain import Add, Gain, Multiply  # noqa: E402
from oscen.graph import Endpoint, Graph  # noqa: E402
from oscen.jit import CraneliftJit, GraphState  # noqa: E402
from oscen.oscillators import Oscillator  # noqa: E402

SR = 44100.0
DETUNE = 1.0001
VIBRATO_HZ = 6.0
VIBRATO_SEMITONES = 0.03
FILTER_CUTOFF = 400.0
FILTER_ENV_DEPTH = 3000.0
Q = 2.0
PITCHES = (60.0, 64.0, 67.0, 69.0)
LOAD = 0.9  # VoiceMark_90: voices in 90% of one core


class PitchToFrequency(Node):
    """A MIDI pitch (with a modulation in semitones added) as a frequency in Hz, per sample."""

    pitch = ValueInput(69.0)
    semitones = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = 440.0 * 2.0 ** ((self.pitch + self.semitones - 69.0) / 12.0)


def synthmark_voice(graph: Graph, pitch: float, rng: np.random.Generator) -> Endpoint:
    """One SimpleVoice, gated on at frame 0; returns its output."""
    lfo = graph.add_node(Oscillator.sine(VIBRATO_HZ, VIBRATO_SEMITONES))
    to_hz = graph.add_node(PitchToFrequency())
    graph.set_value(to_hz.pitch, pitch)
    graph.connect(lfo.output, to_hz.semitones)
    saw = graph.add_node(Oscillator.saw(440.0, 0.6, band_limited=True))
    detune = graph.add_node(Multiply(DETUNE))
    square = graph.add_node(Oscillator.square(440.0, 0.4, band_limited=True))
    graph.connect(to_hz.output, saw.frequency)
    graph.connect(to_hz.output, detune.a)
    graph.connect(detune.output, square.frequency)

    filter_env = graph.add_node(
        AdsrEnvelope(attack=0.05 + 0.2 * rng.random(), decay=7.0 + rng.random(), sustain=0.4, release=0.5)
    )
    depth = graph.add_node(Multiply(FILTER_ENV_DEPTH))
    cutoff = graph.add_node(Add(FILTER_CUTOFF))
    lowpass = graph.add_node(IirLowpass(FILTER_CUTOFF, Q))
    graph.connect(filter_env.output, depth.a)
    graph.connect(depth.output, cutoff.a)
    graph.connect(cutoff.output, lowpass.cutoff)
    graph.connect(saw.output, lowpass.input)  # stream inputs sum: the 0.6 / 0.4 mix
    graph.connect(square.output, lowpass.input)

    amp_env = graph.add_node(
        AdsrEnvelope(
            attack=0.02 + 0.05 * rng.random(), decay=1.0 + 0.2 * rng.random(), sustain=0.4, release=0.5
        )
    )
    vca = graph.add_node(Multiply())
    graph.connect(lowpass.output, vca.a)
    graph.connect(amp_env.output, vca.b)
    graph.queue_event(filter_env.gate, 0, 1.0)
    graph.queue_event(amp_env.gate, 0, 1.0)
    return vca.output


def synthmark_graph(voices: int, seed: int = 1) -> Graph:
    """``voices`` SimpleVoices, summed into one gain (1/voices)."""
    rng = np.random.default_rng(seed)
    graph = Graph(SR)
    out = graph.add_node(Gain(1.0 / max(voices, 1)))
    for k in range(voices):
        pitch = PITCHES[k % len(PITCHES)] + VIBRATO_SEMITONES * rng.random()
        graph.connect(synthmark_voice(graph, pitch, rng), out.input)
    graph.set_output(out.output)
    return graph


def cost(voices: int, seconds: float, block: int, runs: int) -> tuple[float, float]:
    """(wall seconds per audio second of N compiled voices, median of ``runs``; compile seconds)."""
    graph = synthmark_graph(voices)
    t0 = time.perf_counter()
    compiled = CraneliftJit(max_block=block).compile(graph.to_ir())
    state = GraphState.from_graph(graph, max_block=block)
    compile_s = time.perf_counter() - t0
    n = int(seconds * SR)
    out = np.empty((1, n))
    compiled.process_into(state, out[:, : min(n, 8 * block)])  # warm-up
    times = []
    for _ in range(runs):
        gc.disable()
        try:
            t0 = time.perf_counter()
            for start in range(0, n, block):
                compiled.process_into(state, out[:, start : start + block])
            times.append(time.perf_counter() - t0)
        finally:
            gc.enable()
    if not np.isfinite(out).all() or float(np.abs(out).max()) < 1e-4:
        raise RuntimeError(
            f"{voices} voices rendered {'non-finite' if not np.isfinite(out).all() else 'silent'} audio"
        )
    return statistics.median(times) / seconds, compile_s


def synthmark_binary(path: str | None) -> Path | None:
    if not path:
        return None
    p = Path(path)
    if p.is_dir():
        p = p / "synthmark.app"
    if not p.is_file():
        raise SystemExit(f"bench_synthmark: no SynthMark binary at {p} (build it in its checkout first)")
    return p


def run_synthmark(binary: Path, seconds: int = 10) -> float:
    """SynthMark's own VoiceMark_90 on this machine."""
    result = subprocess.run(
        [str(binary), "-tv", "-p90", f"-r{int(SR)}", f"-s{seconds}", "-a0", "-f0"],
        capture_output=True,
        text=True,
        timeout=120 + 4 * seconds,
        cwd=binary.parent,
    )
    match = re.search(r"VoiceMark_90\s*=\s*([0-9.]+)", result.stdout + result.stderr)
    if match is None:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise RuntimeError(f"SynthMark printed no VoiceMark_90 (a busy machine makes it invalid):\n{tail}")
    return float(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthmark", help="path of a built synthmark.app, or the checkout holding it")
    parser.add_argument("--seconds", type=float, default=5.0, help="audio seconds per oscen run")
    parser.add_argument("--block", type=int, default=96, help="frames per block (SynthMark's burst: 96)")
    parser.add_argument("--runs", type=int, default=3, help="runs per voice count (median)")
    parser.add_argument("--voices", type=int, nargs="+", default=[16, 64], help="voice counts for the fit")
    args = parser.parse_args(argv)
    binary = synthmark_binary(args.synthmark)

    rows: list[tuple[int, float, float]] = []
    table = Table(
        f"SynthMark voice in oscen, compiled, {SR:g} Hz, block {args.block}, every voice sounding: "
        "cost = wall seconds per audio second",
        ["voices", "real-time factor", "cost", "compile (ms)"],
        align="rrrr",
    )
    for n in args.voices:
        c, comp = cost(n, args.seconds, args.block, args.runs)
        rows.append((n, c, comp))
        table.add(n, f"{1 / c:.1f}x", f"{c:.4f}", f"{comp * 1e3:.0f}")
    x = np.array([r[0] for r in rows], dtype=float)
    y = np.array([r[1] for r in rows])
    per_voice, fixed = np.polyfit(x, y, 1) if len(rows) > 1 else (y[0] / x[0], 0.0)
    predicted = (LOAD - fixed) / per_voice if per_voice > 0 else math.inf
    check_n = max(1, int(predicted))
    c, comp = cost(check_n, args.seconds, args.block, args.runs)
    table.add(f"{check_n} (fit's VoiceMark_90)", f"{1 / c:.2f}x", f"{c:.4f}", f"{comp * 1e3:.0f}")
    measured = check_n * LOAD / c  # the check's own load scaled to 90%
    print_table(table)

    results = Table(
        "VoiceMark_90: voices that fit in 90% of one core",
        ["engine", "VoiceMark_90", "ratio to SynthMark"],
        align="lrr",
    )
    sm = None
    if binary is not None:
        sm = run_synthmark(binary)
    results.add("oscen compiled (fit)", f"{predicted:.0f}", f"{predicted / sm:.2f}" if sm else "-")
    results.add(
        "oscen compiled (at the fit's count)", f"{measured:.0f}", f"{measured / sm:.2f}" if sm else "-"
    )
    if sm is not None:
        results.add("SynthMark (C++, float32)", f"{sm:.0f}", "1.00")
    else:
        results.notes.append(
            "SynthMark skipped: pass --synthmark PATH to a synthmark.app built from its checkout"
        )
    results.notes.append(
        f"fit: cost = {fixed:.4f} + {per_voice:.6f} x voices; 'at the fit's count' rendered {check_n} voices "
        f"at cost {c:.3f} and scales that to {LOAD:.0%}"
    )
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
