"""``sin_cycles(p) = sin(2 pi p)`` in plain float arithmetic: the sine of the oscillators and LFOs.

Why not ``math.sin(2 * math.pi * p)``: compiled code has no libm, so the JIT runs its own port of
``sin``, which may differ from CPython's by an ulp (the engines then agree only within the
tolerance policy of docs/jit.md), and a call into a library routine with branches on the argument's
size cannot be packed into SIMD lanes. This function uses only ``+ - *`` and ``min``/``max``
(compare and select), no branch and no call: the interpreter and compiled code perform the same IEEE
operations in the same order, so a sine oscillator is bit-exact across the engines and vectorises.

The algorithm (phase in cycles, any float):

1. ``x = p - round(p)`` in [-1/2, 1/2], rounding with the constant ``1.5 * 2**52`` (adding it leaves
   no fraction bits; subtracting it back is exact): exact, also for negative phases. Beyond
   ``|p| = 2**51`` every float is a multiple of 1/2, whose sine is 0: ``p`` is first clamped to
   ``+/-2**51`` (an integer), which gives that 0 (so do infinities, where ``math.sin`` raises; NaN
   stays NaN).
2. Fold onto [-1/4, 1/4] with the symmetry ``sin(2 pi (1/2 - x)) = sin(2 pi x)``: ``x = min(x, 1/2 - x)``,
   then ``x = max(x, -1/2 - x)``; the subtraction is exact whenever its result is the one chosen
   (Sterbenz), so the folded argument is exact too.
3. An odd polynomial of degree 17, ``x (S1 + S3 z + ... + S17 z**8)`` with ``z = x*x``, in Horner
   form. The coefficients minimise the relative error of ``sin(2 pi x)`` on [-1/4, 1/4] (Remez
   exchange in 60-digit arithmetic, ``benchmarks/bench_sine.py --coefficients`` rederives them):
   2.6e-19 before rounding to doubles, far below one ulp, so what remains is the rounding of the
   evaluation.

Measured (``benchmarks/bench_sine.py``, 2.14 million phases: 2 million uniform in [0, 1) plus dense
runs of consecutive floats around 0, 1/4, 1/2 and 3/4): at most 3.2e-16 from the exact
``sin(2 pi p)`` (3 ulp of a result near 1, where an ulp is 1.1e-16), at most 7.2e-16 from
``math.sin(2 * math.pi * p)`` (which itself is up to 6.9e-16 off, from rounding ``2 pi p`` before
the sine); ``|sin_cycles(p)| <= 1`` and ``sin_cycles`` is exactly 0 at
p = 0 and 1/2, exactly 1 at p = 1/4 and -1 at p = 3/4. The spectrum of a 1 kHz or 997 Hz sine at
48 kHz (1 s, Blackman-Harris) has no spur above the float64 noise floor (below -290 dBFS).

Nodes reach it as the static method ``self._sin_cycles(p)`` (``_sin_cycles = staticmethod(sin_cycles)``
in the class), which is how the JIT compiles a shared helper with the node. ``cos_cycles(p)`` is
``cos(2 pi p)`` by the same reduction and polynomial (``sin_cycles(1/4 - |x|)``, bit for bit).
The ``Oscillator``'s sine runs a rotation recurrence and uses both only to restart it from the
phase (every 1024 samples and at a new frequency) and while FM or PM changes every sample; the
LFOs (``Lfo``, the chorus, flanger and phaser) call ``sin_cycles`` every sample.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIN_COEFFICIENTS", "cos_cycles", "cos_cycles_array", "sin_cycles", "sin_cycles_array"]

ROUND = 6755399441055744.0
"""1.5 * 2**52: ``(p + ROUND) - ROUND`` is ``p`` rounded to the nearest integer (ties to even),
for ``|p| <= 2**51``."""
LIMIT = 2251799813685248.0
"""2**51: phases are clamped to +/-LIMIT before rounding (every float beyond it has a zero sine)."""

S1 = 6.283185307179586
S3 = -41.341702240399755
S5 = 81.60524927607341
S7 = -76.7058597527985
S9 = 42.05869392378516
S11 = -15.094641620507256
S13 = 3.819927050426838
S15 = -0.7177235796322367
S17 = 0.1008563286389846

SIN_COEFFICIENTS = (S1, S3, S5, S7, S9, S11, S13, S15, S17)
"""The polynomial's coefficients, lowest degree first (for tests and vectorised mirrors)."""


def sin_cycles(p: float) -> float:
    # sin(2 pi p) for a phase p in cycles: reduce, fold, polynomial (see the module docstring).
    # Compiled node code: plain statements only, no docstring.
    q = min(max(p, -LIMIT), LIMIT)
    x = q - ((q + ROUND) - ROUND)
    x = min(x, 0.5 - x)
    x = max(x, -0.5 - x)
    z = x * x
    r = S17 * z + S15
    r = r * z + S13
    r = r * z + S11
    r = r * z + S9
    r = r * z + S7
    r = r * z + S5
    r = r * z + S3
    r = r * z + S1
    return x * r


def cos_cycles(p: float) -> float:
    # cos(2 pi p) = sin(2 pi y), y = 1/4 - |x|, x = p - round(p) in [-1/2, 1/2]: the reduction of
    # sin_cycles, exact; y is exact for |x| >= 1/8 (Sterbenz), and below that its rounding (at most
    # 2.8e-17 cycles) lands where the sine is flat. y is in [-1/4, 1/4], where sin_cycles' own
    # reduction and fold change nothing, so this is sin_cycles(y) bit for bit: the polynomial is
    # evaluated directly (compiled node code: plain statements, no call of another function).
    q = min(max(p, -LIMIT), LIMIT)
    x = q - ((q + ROUND) - ROUND)
    x = 0.25 - abs(x)
    z = x * x
    r = S17 * z + S15
    r = r * z + S13
    r = r * z + S11
    r = r * z + S9
    r = r * z + S7
    r = r * z + S5
    r = r * z + S3
    r = r * z + S1
    return x * r


def sin_cycles_array(p: np.ndarray) -> np.ndarray:
    """:func:`sin_cycles` of every element of a float64 array: the same operations in the same
    order (``min``/``max`` as the selects Python does), so the result is bit for bit what
    ``sin_cycles`` gives each element. For tables, measurements and tests; not compiled."""
    p = np.asarray(p, dtype=np.float64)
    q = np.where(-LIMIT > p, -LIMIT, p)  # max(p, -LIMIT): the first unless the second is larger
    q = np.where(LIMIT < q, LIMIT, q)  # min(q, LIMIT): the first unless the second is smaller
    x = q - ((q + ROUND) - ROUND)
    y = 0.5 - x
    x = np.where(y < x, y, x)
    y = -0.5 - x
    x = np.where(y > x, y, x)
    z = x * x
    r = S17 * z + S15
    for c in (S13, S11, S9, S7, S5, S3, S1):
        r = r * z + c
    return x * r


def cos_cycles_array(p: np.ndarray) -> np.ndarray:
    """:func:`cos_cycles` of every element of a float64 array, bit for bit (as :func:`sin_cycles_array`)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.where(-LIMIT > p, -LIMIT, p)
    q = np.where(LIMIT < q, LIMIT, q)
    x = q - ((q + ROUND) - ROUND)
    return sin_cycles_array(0.25 - np.abs(x))
