"""The oscillators' sine, ``oscen.sine.sin_cycles``: accuracy, spectrum and speed, one table each.

    python benchmarks/bench_sine.py [--quick] [--coefficients] [--voices64]

1. Accuracy on 2.1 million phases (2 million uniform in [0, 1), dense runs of consecutive floats
   around 0, 1/4, 1/2 and 3/4): max abs error of ``sin_cycles`` and of ``math.sin(2 pi p)`` against
   ``sin(2 pi p)`` in 80-bit long double (where numpy has one), and against each other.
2. Spectrum of 1 s and of 60 s of ``Oscillator.sine`` at 48 kHz, compiled, 1 kHz and 997 Hz (both
   land on a bin of the FFT): periodic Blackman-Harris window, the strongest bin beyond +/-4 bins
   of the tone, in dBFS; beside it the same phases through ``sin_cycles`` (the polynomial the
   oscillator used before its rotation recurrence), numpy's ``sin`` (libm) and a degree-9 Taylor
   sine (to show what the measurement sees), and the largest difference of the oscillator from
   ``sin_cycles`` of its phase.
3. Speed, compiled, block 256, 44.1 kHz: 64 bare phase accumulators with ``math.sin(2 pi p)``,
   with ``sin_cycles``, 64 ``Oscillator.sine`` with ``sin_cycles`` every sample (the oscillator
   before the recurrence) and 64 ``Oscillator.sine`` (the rotation recurrence), summed
   (real-time factor, best and median CPU time of 5 renders of 10 s each, alternating).
4. The recurrence against the polynomial: ``Oscillator.sine`` (interpreted) at 49 frequencies from
   0.15 Hz to 23.5 kHz at 48 kHz: the largest difference from ``sin_cycles`` of the phase over
   4 restarts, and the largest drift of the radius ``|(c, s)|`` from 1.

5. With ``--voices64``: the "64 voices" patch's real-time factor per compiler configuration
   (``CraneliftJit(max_block=256, lanes=2 or 1, voice_groups=True or False)``, best of 20 renders
   of 0.25 s, CPU time).

``--coefficients`` rederives the polynomial (Remez exchange on the relative error of
``sin(2 pi x)`` on [0, 1/4], 60 digits; needs mpmath) and compares with ``SIN_COEFFICIENTS``.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from oscen.bench import Table, fmt_rtf, print_table, source_revision  # noqa: E402
from oscen.gain import Gain  # noqa: E402
from oscen.graph import Graph, Node, StreamOutput, ValueInput  # noqa: E402
from oscen.oscillators import RESYNC_SAMPLES, Oscillator  # noqa: E402
from oscen.sine import SIN_COEFFICIENTS, sin_cycles, sin_cycles_array  # noqa: E402

TWO_PI = 2.0 * math.pi


def phases(uniform: int) -> np.ndarray:
    rng = np.random.default_rng(2026)
    parts = [rng.random(uniform), np.arange(20000) * 2.0**-60]
    for c in (0.25, 0.5, 0.75):
        parts.append(c + np.arange(-20000, 20000) * np.spacing(c))
    p = np.concatenate(parts)
    return p[(p >= 0.0) & (p < 1.0)]


def accuracy(uniform: int) -> Table:
    p = phases(uniform)
    poly = sin_cycles_array(p)
    check = np.array([sin_cycles(v) for v in p[::97].tolist()])
    assert np.array_equal(check.view(np.int64), poly[::97].view(np.int64)), "array mirror differs"
    libm = np.array([math.sin(TWO_PI * v) for v in p.tolist()])
    table = Table(f"1. Accuracy on {len(p):,} phases: max abs error", ["what", "against", "max error", "at p"])
    extended = np.finfo(np.longdouble).eps < 1e-18
    rows = [("sin_cycles(p)", "math.sin(2 pi p)", poly, libm)]
    if extended:
        pi = np.longdouble("3.14159265358979323846264338327950288")
        exact = np.sin(2 * pi * p.astype(np.longdouble))
        rows = [("sin_cycles(p)", "sin(2 pi p), long double", poly, exact), *rows,
                ("math.sin(2 pi p)", "sin(2 pi p), long double", libm, exact)]  # fmt: skip
    else:
        table.notes.append("no 80-bit long double here: the exact reference is left out")
    for what, against, a, b in rows:
        err = np.abs(a.astype(np.longdouble) - b).astype(np.float64)
        k = int(np.argmax(err))
        table.add(what, against, f"{err[k]:.2e}", f"{p[k]:.17g}")
    table.notes.append(f"max |sin_cycles(p)| = {float(np.max(np.abs(poly)))!r}")
    return table


def spur_levels(y: np.ndarray, freq: float, sample_rate: float) -> tuple[float, float, float]:
    from scipy.signal import windows

    w = windows.blackmanharris(len(y), sym=False)
    amp = 2.0 * np.abs(np.fft.rfft(y * w)) / w.sum()
    k0 = int(round(freq * len(y) / sample_rate))
    away = np.ones(len(amp), dtype=bool)
    away[k0 - 4 : k0 + 5] = False
    k = int(np.argmax(np.where(away, amp, -1.0)))
    db = float(20.0 * np.log10(max(amp[k], 1e-300)))
    return float(20.0 * np.log10(amp[k0])), db, k * sample_rate / len(y)


def node_phases(n: int, inc: float) -> np.ndarray:
    """The phases the oscillator reads, by its own accumulator (one subtraction wraps)."""
    phase, seq = 0.0, np.empty(n)
    for i in range(n):
        seq[i] = phase
        phase += inc
        if phase >= 1.0:
            phase -= 1.0
    return seq


def spectrum(minute: bool) -> Table:
    from oscen.jit import CraneliftJit, GraphState

    sr = 48000.0
    table = Table(
        "2. Spectrum at 48 kHz, periodic Blackman-Harris, one FFT of the whole render: strongest spur "
        "beyond +/-4 bins of the tone",
        ["sine", "length", "tone", "Oscillator.sine compiled", "at Hz", "sin_cycles, same phases",
         "libm, same phases", "Taylor 9, same phases", "max |osc - sin_cycles|"],
        align="llrrrrrrr",
    )  # fmt: skip
    for seconds in (1, 60) if minute else (1,):
        n = int(sr) * seconds
        for freq in (1000.0, 997.0):
            graph = Graph(sr)
            osc = graph.add_node(Oscillator.sine(freq, 1.0))
            graph.set_output(osc.output)
            ir = graph.to_ir()
            state = GraphState.from_graph(graph, max_block=4800, ir=ir)
            compiled = CraneliftJit(max_block=4800).compile(ir)
            y = np.concatenate([compiled.process_block(state, 4800).reshape(-1) for _ in range(n // 4800)])
            seq = node_phases(n, freq * (1.0 / sr))
            poly = sin_cycles_array(seq)
            x = seq - np.round(seq)
            x = np.where(x > 0.25, 0.5 - x, np.where(x < -0.25, -0.5 - x, x)) * TWO_PI
            taylor = x - x**3 / 6 + x**5 / 120 - x**7 / 5040 + x**9 / 362880
            tone, spur, at = spur_levels(y, freq, sr)
            others = [spur_levels(v, freq, sr)[1] for v in (poly, np.sin(TWO_PI * seq), taylor)]
            table.add(f"{freq:g} Hz", f"{seconds} s", f"{tone:.1e} dB", f"{spur:.1f} dBFS", f"{at:g}",
                      *(f"{v:.1f} dBFS" for v in others), f"{np.max(np.abs(y - poly)):.2e}")  # fmt: skip
    table.notes.append(
        "Oscillator.sine runs a rotation recurrence restarted from sin_cycles every "
        f"{RESYNC_SAMPLES:g} samples; its spurs sit far below -140 dBFS, above the polynomial's floor"
    )
    return table


class LibmSine(Node):
    """A bare phase accumulator through ``math.sin``: what the oscillator's sine was."""

    frequency = ValueInput(440.0)
    output = StreamOutput()

    def __init__(self, frequency: float) -> None:
        self.frequency = float(frequency)
        self._phase = 0.0

    def process(self, sample_rate: float) -> None:
        self.output = math.sin(TWO_PI * self._phase)
        phase = self._phase + self.frequency / sample_rate
        if phase >= 1.0:
            phase = phase - 1.0
        self._phase = phase


class PolySine(LibmSine):
    """The same accumulator through ``sin_cycles``."""

    _sin_cycles = staticmethod(sin_cycles)

    def process(self, sample_rate: float) -> None:
        self.output = self._sin_cycles(self._phase)
        phase = self._phase + self.frequency / sample_rate
        if phase >= 1.0:
            phase = phase - 1.0
        self._phase = phase


class PolynomialOscillator(Oscillator):
    """``Oscillator.sine`` as it was before the rotation recurrence: ``sin_cycles`` every sample."""

    def process(self, sample_rate: float) -> None:
        increment = (self.frequency + self.fm) * (1.0 / sample_rate)
        p = self._phase + self.pm
        if p >= 1.0 or p < 0.0:
            p = p - math.floor(p)
            if p >= 1.0:
                p = 0.0
        self.output = self.amplitude * self._sin_cycles(p)
        phase = self._phase + increment
        if phase >= 1.0:
            phase = phase - 1.0
        if phase >= 1.0 or phase < 0.0:
            phase = phase - math.floor(phase)
            if phase >= 1.0:
                phase = 0.0
        self._phase = phase


def speed(seconds: float, runs: int) -> Table:
    from benchmarks.oscen_engine import OscenEngine

    table = Table(
        f"3. Speed: 64 bare sines summed, compiled, 44.1 kHz, block 256, {runs} renders of {seconds:g} s each "
        "(CPU time)",
        ["sine", "real-time factor, best", "median", "ns per sine sample, best"],
        align="lrrr",
    )
    makers = (
        ("math.sin(2 pi p)", LibmSine),
        ("sin_cycles(p)", PolySine),
        ("Oscillator.sine, polynomial (as before)", lambda f: PolynomialOscillator(f, 1.0)),
        ("Oscillator.sine (recurrence)", lambda f: Oscillator.sine(f, 1.0)),
    )
    engines = {}
    for name, make in makers:
        graph = Graph(44100.0)
        mix = graph.add_node(Gain(1.0 / 64.0))  # its input sums the sines
        for k in range(64):
            s = graph.add_node(make(110.0 * 2.0 ** (k / 12.0)))
            graph.connect(s.output, mix.input)
        graph.set_output(mix.output)
        engine = OscenEngine(compiled=True)
        engine.load(graph, 256)
        engine.render(seconds)  # warm-up
        engines[name] = engine
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(runs):  # alternate: drift of a shared machine hits both
        for name, engine in engines.items():
            gc.disable()
            t0 = time.process_time()
            engine.render(seconds)
            times[name].append(time.process_time() - t0)
            gc.enable()
    for name, t in times.items():
        best, med = min(t), statistics.median(t)
        table.add(name, fmt_rtf(seconds / best), fmt_rtf(seconds / med), f"{best / (seconds * 44100.0 * 64) * 1e9:.2f}")
    table.notes.append("the rows differ only in the sine; the machine is shared: expect noise of 10-20 %")
    return table


def recurrence_drift() -> Table:
    sr = 48000.0
    rng = np.random.default_rng(1)
    freqs = [*rng.uniform(20.0, 20000.0, 40), 0.15, 1.0, 110.0, 997.0, 1000.0, 11999.5, 12000.0, 14400.0, 23520.0]
    n = 4 * int(RESYNC_SAMPLES) + 1
    worst = (0.0, 0.0)
    radius = 0.0
    for f in freqs:
        osc = Oscillator.sine(float(f), 1.0)
        y, r = np.empty(n), np.empty(n)
        for i in range(n):
            osc.process(sr)
            y[i] = osc.output
            r[i] = math.hypot(osc._c, osc._s)
        d = float(np.max(np.abs(y - sin_cycles_array(node_phases(n, float(f) * (1.0 / sr))))))
        worst = max(worst, (d, float(f)))
        radius = max(radius, float(np.max(np.abs(r[1:] - 1.0))))
    table = Table(
        f"4. The recurrence against sin_cycles of the phase: {len(freqs)} frequencies at 48 kHz, {n} samples "
        f"(restarts every {RESYNC_SAMPLES:g})",
        ["max |osc - sin_cycles(phase)|", "at Hz", "max ||(c, s)| - 1|"],
        align="rrr",
    )
    table.add(f"{worst[0]:.2e}", f"{worst[1]:.6g}", f"{radius:.2e}")
    return table


def voices64(seconds: float, runs: int) -> Table:
    """The "64 voices" patch (64 Oscillator.sine -> IirLowpass, summed): real-time factor of one
    256-sample block at a time, per compiler configuration (lanes and voice groups)."""
    from benchmarks.oscen_engine import voices_graph
    from oscen.jit import CraneliftJit, GraphState

    table = Table(
        f"5. voices64, compiled, block 256, best CPU time of {runs} renders of {seconds:g} s each",
        ["configuration", "real-time factor"],
        align="lr",
    )
    n = 256
    blocks = max(1, int(seconds * 44100.0 / n))
    out = np.zeros((1, n))
    for lanes, groups in ((2, True), (1, True), (2, False)):
        graph = voices_graph(64)
        ir = graph.to_ir()
        compiled = CraneliftJit(max_block=n, lanes=lanes, voice_groups=groups).compile(ir)
        state = GraphState.from_graph(graph, max_block=n, ir=ir)
        for _ in range(20):
            compiled.process_into(state, out)
        best = math.inf
        for _ in range(runs):
            t0 = time.process_time()
            for _ in range(blocks):
                compiled.process_into(state, out)
            best = min(best, time.process_time() - t0)
        table.add(f"lanes={lanes}, voice_groups={groups}", fmt_rtf(blocks * n / 44100.0 / best))
    return table


def coefficients() -> Table:
    import mpmath as mp

    mp.mp.dps = 60
    nc = len(SIN_COEFFICIENTS)
    b = mp.mpf(1) / 16  # z = x*x on [0, 1/16]: g(z) = sin(2 pi sqrt z) / sqrt z, relative error

    def g(z: mp.mpf) -> mp.mpf:
        return mp.sin(2 * mp.pi * mp.sqrt(z)) / mp.sqrt(z) if z > 0 else 2 * mp.pi

    pts = [b / 2 - b / 2 * mp.cos(mp.pi * i / nc) for i in range(nc + 1)]
    c: list[mp.mpf] = []
    e = mp.mpf(0)
    for _ in range(8):
        a = mp.matrix(nc + 1, nc + 1)
        rhs = mp.matrix(nc + 1, 1)
        for i, z in enumerate(pts):
            for j in range(nc):
                a[i, j] = z**j
            a[i, nc] = (-1) ** i * g(z)
            rhs[i] = g(z)
        sol = mp.lu_solve(a, rhs)
        c, e = [sol[j] for j in range(nc)], sol[nc]
        grid = [b * i / 4000 for i in range(4001)]
        ev = [(mp.polyval(c[::-1], z) - g(z)) / g(z) for z in grid]
        ext = [grid[0]] + [grid[i] for i in range(1, 4000) if (ev[i] - ev[i - 1]) * (ev[i + 1] - ev[i]) <= 0]
        ext.append(grid[-1])
        if len(ext) != nc + 1:
            break
        pts = ext
    table = Table(f"Remez, degree {2 * nc - 1}: relative error {mp.nstr(abs(e), 3)}", ["coefficient", "derived", "in oscen.sine"])
    for k, (derived, used) in enumerate(zip(c, SIN_COEFFICIENTS, strict=True)):
        table.add(f"S{2 * k + 1}", repr(float(derived)), repr(used) + ("" if float(derived) == used else "  DIFFERS"))
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_sine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="fewer phases, shorter renders")
    parser.add_argument("--coefficients", action="store_true", help="rederive the polynomial (needs mpmath)")
    parser.add_argument("--voices64", action="store_true", help="also the voices64 patch's real-time factor")
    args = parser.parse_args(argv)
    revision = source_revision()
    print(f"bench_sine{' (quick)' if args.quick else ''}" + (f"; code: {revision}" if revision else "") + "\n")
    print_table(accuracy(100_000 if args.quick else 2_000_000))
    print_table(spectrum(minute=not args.quick))
    print_table(speed(1.0 if args.quick else 10.0, 2 if args.quick else 5))
    print_table(recurrence_drift())
    if args.voices64:
        print_table(voices64(0.25, 20))
    if args.coefficients:
        print_table(coefficients())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
