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
``--block`` frames (96: SynthMark's burst here) with the cyclic GC off; cost(N) = CPU seconds per
audio second (this process's CPU time, the best of ``--runs``: the machine may be shared). Two or
three voice counts give cost = fixed + per_voice * N; VoiceMark_90 is the N where that line
reaches 0.9 (90% of one core), checked by rendering that N. Differences from
SynthMark worth knowing: oscen computes in float64 (SynthMark: float32); SynthMark's envelope
decays exponentially, oscen's ``AdsrEnvelope`` linearly.

``--update-every K`` (default 8, SynthMark's): the lowpass recomputes its coefficients at most
every K frames while its cutoff moves, when oscen's biquads have that option
(``IirLowpass(update_every=K)``); with an oscen that has not, every sample. The table says which
mode ran. ``--breakdown``: the cost per voice of the voice's node families, measured by rendering
voices cut down to their first families (LFO and pitch, + oscillators, + filter, + envelopes and VCA).

``--synthmark PATH``: a SynthMark binary (``synthmark.app``) you built from a SynthMark checkout,
or the checkout holding it. It is run as ``synthmark.app -tv -p90 -r44100 -s10 -a0 -f0`` between
oscen's runs, and its ``VoiceMark_90`` line is parsed. Without it that row is skipped. SynthMark's
code is not part of this repository and this script never builds it.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import math
import re
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
LN2_OVER_12 = math.log(2.0) / 12.0
C3, C4, C5, C6 = 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0  # e ** x's Taylor coefficients


class PitchToFrequency(Node):
    """A MIDI pitch (with a modulation in semitones added) as a frequency in Hz, per sample.

    ``440 * 2 ** ((pitch + semitones - 69) / 12)``, computed as the note's frequency (exact, once
    per pitch change) times the modulation's factor ``e ** x``, ``x = semitones * ln 2 / 12``: for
    |x| <= 0.05 (0.87 semitones; SynthMark's vibrato is 0.03) a degree-6 Taylor polynomial, within
    2e-13 of ``e ** x``, in plain arithmetic that runs packed across voices (Estrin's form: a
    short dependency chain); beyond, ``math.exp``.
    SynthMark itself looks 2 ** x up in a float table."""

    pitch = ValueInput(69.0)
    semitones = StreamInput()
    output = StreamOutput()

    def __init__(self) -> None:
        self._pitch = math.nan
        self._hz = 440.0

    def process(self, sample_rate):
        if self.pitch != self._pitch:  # a new note
            self._pitch = self.pitch
            self._hz = 440.0 * math.exp2((self.pitch - 69.0) / 12.0)
        x = self.semitones * LN2_OVER_12
        # Estrin's scheme: the powers and the pairs of terms are independent, so the latency
        # from the LFO to the frequency (which the oscillators, the filter and the VCA wait on
        # within the sample) is four multiply-adds deep rather than seven, and no division.
        x2 = x * x
        x4 = x2 * x2
        factor = ((1.0 + x) + x2 * (0.5 + x * C3)) + x4 * ((C4 + x * C5) + x2 * C6)
        if x > 0.05 or x < -0.05:  # a deep modulation: the library
            factor = math.exp(x)
        self.output = self._hz * factor


def lowpass_update_every() -> bool:
    """Whether this oscen's biquads take ``update_every`` (coefficients every K frames)."""
    return "update_every" in inspect.signature(IirLowpass.__init__).parameters


STAGES = ("pitch", "oscillators", "filter", "full")
"""Cumulative cuts of the voice for ``--breakdown``: LFO + pitch-to-Hz; + saw, square and detune;
+ filter envelope, depth, cutoff and lowpass; + amplitude ADSR and VCA (the whole voice)."""


def synthmark_voice(
    graph: Graph, pitch: float, rng: np.random.Generator, update_every: int = 1, stage: str = "full"
) -> Endpoint:
    """One SimpleVoice, gated on at frame 0; returns its output (``stage``: cut after that family)."""
    # Draw the random envelope times first, so a cut voice consumes the generator like a full one.
    filter_times = (0.05 + 0.2 * rng.random(), 7.0 + rng.random())
    amp_times = (0.02 + 0.05 * rng.random(), 1.0 + 0.2 * rng.random())
    lfo = graph.add_node(Oscillator.sine(VIBRATO_HZ, VIBRATO_SEMITONES))
    to_hz = graph.add_node(PitchToFrequency())
    graph.set_value(to_hz.pitch, pitch)
    graph.connect(lfo.output, to_hz.semitones)
    if stage == "pitch":
        return to_hz.output
    saw = graph.add_node(Oscillator.saw(440.0, 0.6, band_limited=True))
    detune = graph.add_node(Multiply(DETUNE))
    square = graph.add_node(Oscillator.square(440.0, 0.4, band_limited=True))
    graph.connect(to_hz.output, saw.frequency)
    graph.connect(to_hz.output, detune.a)
    graph.connect(detune.output, square.frequency)
    if stage == "oscillators":
        mix = graph.add_node(Add())
        graph.connect(saw.output, mix.a)
        graph.connect(square.output, mix.a)
        return mix.output

    filter_env = graph.add_node(
        AdsrEnvelope(attack=filter_times[0], decay=filter_times[1], sustain=0.4, release=0.5)
    )
    depth = graph.add_node(Multiply(FILTER_ENV_DEPTH))
    cutoff = graph.add_node(Add(FILTER_CUTOFF))
    every = {"update_every": update_every} if update_every > 1 else {}
    lowpass = graph.add_node(IirLowpass(FILTER_CUTOFF, Q, **every))
    graph.connect(filter_env.output, depth.a)
    graph.connect(depth.output, cutoff.a)
    graph.connect(cutoff.output, lowpass.cutoff)
    graph.connect(saw.output, lowpass.input)  # stream inputs sum: the 0.6 / 0.4 mix
    graph.connect(square.output, lowpass.input)
    graph.queue_event(filter_env.gate, 0, 1.0)
    if stage == "filter":
        return lowpass.output

    amp_env = graph.add_node(AdsrEnvelope(attack=amp_times[0], decay=amp_times[1], sustain=0.4, release=0.5))
    vca = graph.add_node(Multiply())
    graph.connect(lowpass.output, vca.a)
    graph.connect(amp_env.output, vca.b)
    graph.queue_event(amp_env.gate, 0, 1.0)
    return vca.output


def synthmark_graph(voices: int, seed: int = 1, update_every: int = 1, stage: str = "full") -> Graph:
    """``voices`` SimpleVoices, summed into one gain (1/voices)."""
    rng = np.random.default_rng(seed)
    graph = Graph(SR)
    out = graph.add_node(Gain(1.0 / max(voices, 1)))
    for k in range(voices):
        pitch = PITCHES[k % len(PITCHES)] + VIBRATO_SEMITONES * rng.random()
        graph.connect(synthmark_voice(graph, pitch, rng, update_every, stage), out.input)
    graph.set_output(out.output)
    return graph


def cost(
    voices: int, seconds: float, block: int, runs: int, update_every: int = 1, stage: str = "full"
) -> tuple[float, float]:
    """(CPU seconds per audio second of N compiled voices, best of ``runs``; compile seconds)."""
    graph = synthmark_graph(voices, update_every=update_every, stage=stage)
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
            t0 = time.process_time()
            for start in range(0, n, block):
                compiled.process_into(state, out[:, start : start + block])
            times.append(time.process_time() - t0)
        finally:
            gc.enable()
    if not np.isfinite(out).all() or (stage != "pitch" and float(np.abs(out).max()) < 1e-4):
        raise RuntimeError(
            f"{voices} voices rendered {'non-finite' if not np.isfinite(out).all() else 'silent'} audio"
        )
    return min(times) / seconds, compile_s


def synthmark_binary(path: str | None) -> Path | None:
    if not path:
        return None
    p = Path(path)
    if p.is_dir():
        p = p / "synthmark.app"
    if not p.is_file():
        raise SystemExit(f"bench_synthmark: no SynthMark binary at {p} (build it in its checkout first)")
    return p


def run_synthmark(binary: Path, seconds: int = 10, attempts: int = 3) -> float | None:
    """SynthMark's own VoiceMark_90 on this machine, or None when no attempt gave one (SynthMark
    declares its run invalid when other processes take its core: the tail of its output is printed)."""
    for _ in range(attempts):
        result = subprocess.run(
            [str(binary), "-tv", "-p90", f"-r{int(SR)}", f"-s{seconds}", "-a0", "-f0"],
            capture_output=True,
            text=True,
            timeout=120 + 4 * seconds,
            cwd=binary.parent,
        )
        match = re.search(r"VoiceMark_90\s*=\s*([0-9.]+)", result.stdout + result.stderr)
        if match is not None:
            return float(match.group(1))
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-12:])
    print(f"bench_synthmark: SynthMark printed no VoiceMark_90 in {attempts} runs (a busy machine):\n{tail}")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthmark", help="path of a built synthmark.app, or the checkout holding it")
    parser.add_argument("--seconds", type=float, default=5.0, help="audio seconds per oscen run")
    parser.add_argument("--block", type=int, default=96, help="frames per block (SynthMark's burst: 96)")
    parser.add_argument("--runs", type=int, default=3, help="runs per voice count (the best is kept)")
    parser.add_argument("--voices", type=int, nargs="+", default=[16, 64], help="voice counts for the fit")
    parser.add_argument(
        "--update-every",
        type=int,
        default=8,
        help="lowpass coefficients at most every K frames while the cutoff moves (SynthMark: 8; 1: every sample)",
    )
    parser.add_argument(
        "--breakdown",
        type=int,
        default=0,
        metavar="N",
        help="also measure the cost per voice of each node family at N voices (0: skip)",
    )
    args = parser.parse_args(argv)
    if args.update_every < 1:
        parser.error("--update-every must be >= 1")
    binary = synthmark_binary(args.synthmark)
    update_every = args.update_every if lowpass_update_every() else 1
    if args.update_every > 1 and update_every == 1:
        mode = (
            f"every sample (asked for every {args.update_every}: this oscen's IirLowpass has no update_every)"
        )
    elif update_every > 1:
        mode = f"at most every {update_every} frames (IirLowpass(update_every={update_every}))"
    else:
        mode = "every sample"
    print(f"bench_synthmark: lowpass coefficients recomputed {mode}", flush=True)

    rows: list[tuple[int, float, float]] = []
    table = Table(
        f"SynthMark voice in oscen, compiled, {SR:g} Hz, block {args.block}, every voice sounding, "
        f"lowpass coefficients {mode.split(' (')[0]}: cost = CPU seconds per audio second",
        ["voices", "real-time factor", "cost", "compile (ms)"],
        align="rrrr",
    )
    for n in args.voices:
        c, comp = cost(n, args.seconds, args.block, args.runs, update_every)
        rows.append((n, c, comp))
        table.add(n, f"{1 / c:.1f}x", f"{c:.4f}", f"{comp * 1e3:.0f}")
    x = np.array([r[0] for r in rows], dtype=float)
    y = np.array([r[1] for r in rows])
    per_voice, fixed = np.polyfit(x, y, 1) if len(rows) > 1 else (y[0] / x[0], 0.0)
    predicted = (LOAD - fixed) / per_voice if per_voice > 0 else math.inf
    check_n = max(1, int(predicted))
    c, comp = cost(check_n, args.seconds, args.block, args.runs, update_every)
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
    elif binary is not None:
        results.notes.append("SynthMark gave no valid VoiceMark_90 (its run is invalid on a busy machine)")
    else:
        results.notes.append(
            "SynthMark skipped: pass --synthmark PATH to a synthmark.app built from its checkout"
        )
    results.notes.append(
        f"fit: cost = {fixed:.4f} + {per_voice:.6f} x voices; 'at the fit's count' rendered {check_n} voices "
        f"at cost {c:.3f} and scales that to {LOAD:.0%}"
    )
    print_table(results)
    if args.breakdown:
        print_table(breakdown(args.breakdown, args.seconds, args.block, args.runs, update_every))
    return 0


def breakdown(voices: int, seconds: float, block: int, runs: int, update_every: int) -> Table:
    """Cost per voice of each node family: voices cut after each family, differences of their costs."""
    table = Table(
        f"Where a SynthMark voice's time goes in oscen ({voices} voices, block {block}): cost of voices cut "
        "after each node family, per voice-sample",
        ["voice up to", "ns per voice-sample", "this family adds (ns)", "share of the voice"],
        align="lrrr",
    )
    empty, _ = cost(1, seconds, block, runs, update_every, "pitch")  # ~ the graph's fixed cost
    totals = []
    for stage in STAGES:
        c, _ = cost(voices, seconds, block, runs, update_every, stage)
        totals.append(max(c - empty / voices, 0.0) / voices / SR * 1e9)
    names = {
        "pitch": "LFO (sine) + pitch to Hz",
        "oscillators": "+ PolyBLEP saw, square, detune",
        "filter": "+ filter ADSR, depth, cutoff, biquad lowpass",
        "full": "+ amplitude ADSR, VCA (the whole voice)",
    }
    previous = 0.0
    for stage, ns in zip(STAGES, totals, strict=True):
        table.add(names[stage], f"{ns:.1f}", f"{ns - previous:.1f}", f"{(ns - previous) / totals[-1]:.0%}")
        previous = ns
    table.notes.append(
        "Each row renders voices cut after that family (the rest of the voice left out); 'adds' is the "
        "difference to the row above. A one-voice graph's cost is taken off as the fixed part."
    )
    return table


if __name__ == "__main__":
    sys.exit(main())
