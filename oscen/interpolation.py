"""6-point, 5th-order Lagrange interpolation: the compiled helper shared by the sample players and
wavetables.

Why this interpolator: sound files and wavetables are read at arbitrary fractional positions, and
the interpolation error is heard as noise and images. The 6-point Lagrange polynomial is exact for
polynomials up to degree 5, so its error falls with the 6th power of frequency (36 dB per
octave): reading a sine at 1/10 of Nyquist (2.2 kHz at 44.1 kHz) the RMS error is -113 dB, where
4-point cubic Hermite (Catmull-Rom, what ``Delay`` uses for its cheapness under modulation) gives
-71 dB; at 1/5 of Nyquist -77 against -52 dB (tests/test_nodes_sampler.py measures both). It costs six reads and about 25 flops, still small next to a node's other work, and at a
fraction of exactly 0 it returns the sample itself, bit for bit, so unpitched playback is exact.
Above 1/2 of Nyquist every polynomial interpolator degrades; the wavetable therefore keeps its
tables 8x oversampled (the highest partial at most 1/8 of the table's Nyquist), where this
interpolator's images stay below -100 dB.
"""

from __future__ import annotations

__all__ = ["Lagrange6"]


class Lagrange6:
    """Mixin for nodes: ``self._lagrange6(xm2, xm1, x0, x1, x2, x3, t)`` interpolates at
    ``0 <= t < 1`` between ``x0`` (t = 0) and ``x1`` (t = 1) from the six samples around them.

    A plain helper method (not a module function) so that the JIT compiles it with the node.
    """

    def _lagrange6(
        self, xm2: float, xm1: float, x0: float, x1: float, x2: float, x3: float, t: float
    ) -> float:
        # Lagrange basis on the nodes -2..3: w_k = prod_{j != k} (t - j) / (k - j), from the
        # factors a..f = t + 2, t + 1, t, t - 1, t - 2, t - 3, via prefix and suffix products.
        a = t + 2.0
        b = t + 1.0
        d = t - 1.0
        e = t - 2.0
        f = t - 3.0
        ab = a * b
        abt = ab * t
        abtd = abt * d
        ef = e * f
        def_ = d * ef
        tdef = t * def_
        btdef = b * tdef
        wm2 = btdef * (-1.0 / 120.0)
        wm1 = (a * tdef) * (1.0 / 24.0)
        w0 = (ab * def_) * (-1.0 / 12.0)
        w1 = (abt * ef) * (1.0 / 12.0)
        w2 = (abtd * f) * (-1.0 / 24.0)
        w3 = (abtd * e) * (1.0 / 120.0)
        return wm2 * xm2 + wm1 * xm1 + w0 * x0 + w1 * x1 + w2 * x2 + w3 * x3
