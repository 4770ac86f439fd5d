"""The oscillators' sine, ``oscen.sine.sin_cycles``: accuracy, spectrum and speed, one table each.

    python benchmarks/bench_sine.py [--quick] [--coefficients]

1. Accuracy on 2.1 million phases (2 million uniform in [0, 1), dense runs of consecutive floats
   around 0, 1/4, 1/2 and 3/4): max abs error of ``sin_cycles`` and of ``math.sin(2 pi p)`` against
   ``sin(2 pi p)`` in 80-bit long double (where numpy has one), and against each other.
2. Spectrum of 1 s of ``Oscillator.sine`` at 48 kHz, compiled, 1 kHz and 997 Hz (both land on a
   bin of the 48000-point FFT): periodic Blackman-Harris window, the strongest bin beyond +/-4 bins
   of the tone, in dBFS; beside it the same phases through numpy's ``sin`` (libm) and through a
   degree-9 Taylor sine (to show what the measurement sees).
3. Speed, compiled, block 256, 44.1 kHz: 64 bare phase accumulators with ``math.sin(2 pi p)``
   against the same with ``sin_cycles`` (real-time factor, median of 5 renders of 10 s).

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
from oscen.oscillators import Oscillator  # noqa: E402
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


def spectrum() -> Table:
    from oscen.jit import CraneliftJit, GraphState

    sr = 48000.0
    n = int(sr)
    table = Table(
        "2. Spectrum, 1 s at 48 kHz, periodic Blackman-Harris, 48000-point FFT: strongest spur beyond "
        "+/-4 bins of the tone",
        ["sine", "tone", "Oscillator.sine compiled", "at Hz", "libm, same phases", "Taylor 9, same phases"],
        align="lrrrrr",
    )
    for freq in (1000.0, 997.0):
        graph = Graph(sr)
        osc = graph.add_node(Oscillator.sine(freq, 1.0))
        graph.set_output(osc.output)
        y = CraneliftJit().compile(graph.to_ir()).process_block(GraphState.from_graph(graph), n)
        phase, inc, seq = 0.0, freq * (1.0 / sr), np.empty(n)
        for i in range(n):  # the oscillator's accumulator
            seq[i] = phase
            phase += inc
            if phase >= 1.0:
                phase -= 1.0
        assert np.array_equal(sin_cycles_array(seq), y), "the oscillator is not sin_cycles of its phase"
        x = seq - np.round(seq)
        x = np.where(x > 0.25, 0.5 - x, np.where(x < -0.25, -0.5 - x, x)) * TWO_PI
        taylor = x - x**3 / 6 + x**5 / 120 - x**7 / 5040 + x**9 / 362880
        tone, spur, at = spur_levels(y, freq, sr)
        libm = spur_levels(np.sin(TWO_PI * seq), freq, sr)[1]
        table.add(f"{freq:g} Hz", f"{tone:.1e} dB", f"{spur:.1f} dBFS", f"{at:g}", f"{libm:.1f} dBFS",
                  f"{spur_levels(taylor, freq, sr)[1]:.1f} dBFS")  # fmt: skip
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


def speed(seconds: float, runs: int) -> Table:
    from benchmarks.oscen_engine import OscenEngine

    table = Table(
        f"3. Speed: 64 bare sines summed, compiled, 44.1 kHz, block 256, median of {runs} renders of {seconds:g} s",
        ["sine", "real-time factor", "ns per sine sample"],
        align="lrr",
    )
    engines = {}
    for name, cls in (("math.sin(2 pi p)", LibmSine), ("sin_cycles(p)", PolySine)):
        graph = Graph(44100.0)
        mix = graph.add_node(Gain(1.0 / 64.0))  # its input sums the sines
        for k in range(64):
            s = graph.add_node(cls(110.0 * 2.0 ** (k / 12.0)))
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
            t0 = time.perf_counter()
            engine.render(seconds)
            times[name].append(time.perf_counter() - t0)
            gc.enable()
    for name, t in times.items():
        med = statistics.median(t)
        table.add(name, fmt_rtf(seconds / med), f"{med / (seconds * 44100.0 * 64) * 1e9:.2f}")
    table.notes.append("the rows differ only in the sine; the machine is shared: expect noise of 10-20 %")
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
    args = parser.parse_args(argv)
    revision = source_revision()
    print(f"bench_sine{' (quick)' if args.quick else ''}" + (f"; code: {revision}" if revision else "") + "\n")
    print_table(accuracy(100_000 if args.quick else 2_000_000))
    print_table(spectrum())
    print_table(speed(1.0 if args.quick else 10.0, 2 if args.quick else 5))
    if args.coefficients:
        print_table(coefficients())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
