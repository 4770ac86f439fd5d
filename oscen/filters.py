"""Filters: the RBJ cookbook biquads and Zavalishin's TPT state-variable filter.

Biquads share one base class, :class:`Biquad`: it owns the transposed direct-form II state and the
per-sample recursion, and recomputes its coefficients (one ``_update_coefficients`` per filter
type) only when a parameter or the sample rate changed, so a static filter costs five multiplies
a sample. Coefficient formulas: Robert Bristow-Johnson, "Cookbook formulae for audio EQ biquad
filter coefficients" (the Audio EQ Cookbook).

``process`` and the ``_``-methods are compiled by the JIT (through the class hierarchy): they use
only float arithmetic, ``math`` and calls to the node's own methods.
"""

from __future__ import annotations

import math

from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node

TWO_PI = 2.0 * math.pi

MIN_CUTOFF_HZ = 0.01
"""Cutoffs are clamped to [MIN_CUTOFF_HZ, MAX_CUTOFF_RATIO * sample_rate]: at 0 Hz or at Nyquist
the cookbook formulas degenerate (poles on the unit circle)."""
MAX_CUTOFF_RATIO = 0.49
MIN_Q = 0.01
"""Q is clamped to at least MIN_Q (alpha = sin(w0) / 2Q)."""
DENORMAL = 1.0e-30
"""Outputs below this magnitude are flushed to zero: a filter ringing out into silence would
otherwise spend long stretches on subnormal floats, which are very slow on x86."""


class Biquad(Node):
    """Base of the RBJ biquads: a second-order IIR section in transposed direct form II.

    ``y = b0 x + s1;  s1' = b1 x - a1 y + s2;  s2' = b2 x - a2 y`` (coefficients normalized by a0).

    Subclasses override ``_update_coefficients`` (the base is the identity filter). A cutoff,
    Q or gain change takes effect at the next sample; the state is kept, so sweeps are smooth
    as long as the filter stays stable (it always does: cookbook biquads with Q > 0 are stable).

    Endpoints:
        cutoff (value, Hz): the cutoff / centre / corner frequency.
        q (value): quality factor (resonance; 0.7071 is Butterworth for low/highpass).
        input (stream), output (stream).
    """

    cutoff = ValueInput(1000.0)
    q = ValueInput(0.7071067811865476)
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, cutoff: float = 1000.0, q: float = 0.7071067811865476) -> None:
        self.cutoff = float(cutoff)
        self.q = float(q)
        self._b0 = 1.0
        self._b1 = 0.0
        self._b2 = 0.0
        self._a1 = 0.0
        self._a2 = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        # Parameters the coefficients were computed for; NaN (never equal) forces the first computation.
        self._last_cutoff = math.nan
        self._last_q = math.nan
        self._last_gain_db = math.nan
        self._last_sample_rate = math.nan

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({self.cutoff!r}, {self.q!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        if self._stale(sample_rate):
            self._update_coefficients(sample_rate)
        x = self.input
        y = self._b0 * x + self._s1
        if abs(y) < DENORMAL:
            y = 0.0
        self._s1 = self._b1 * x - self._a1 * y + self._s2
        self._s2 = self._b2 * x - self._a2 * y
        self.output = y

    def _stale(self, sample_rate: float) -> bool:
        # True (and remember the new parameters) when the coefficients must be recomputed.
        if (
            self.cutoff != self._last_cutoff
            or self.q != self._last_q
            or sample_rate != self._last_sample_rate
        ):
            self._last_cutoff = self.cutoff
            self._last_q = self.q
            self._last_sample_rate = sample_rate
            return True
        return False

    def _omega(self, sample_rate: float) -> float:
        # w0 = 2 pi f0 / Fs, with f0 clamped into the usable range
        f0 = min(max(self.cutoff, MIN_CUTOFF_HZ), MAX_CUTOFF_RATIO * sample_rate)
        return TWO_PI * f0 / sample_rate

    def _alpha(self, w0: float) -> float:
        return math.sin(w0) / (2.0 * max(self.q, MIN_Q))

    def _set(self, b0: float, b1: float, b2: float, a0: float, a1: float, a2: float) -> None:
        # store the coefficients normalized by a0 (a0 > 0 for every cookbook type with Q > 0)
        inv = 1.0 / a0
        self._b0 = b0 * inv
        self._b1 = b1 * inv
        self._b2 = b2 * inv
        self._a1 = a1 * inv
        self._a2 = a2 * inv

    def _update_coefficients(self, sample_rate: float) -> None:
        self._set(1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


class IirLowpass(Biquad):
    """RBJ lowpass: H(s) = 1 / (s^2 + s/Q + 1). Unity gain at DC, -3 dB at ``cutoff`` for Q = 0.7071."""

    def _update_coefficients(self, sample_rate: float) -> None:
        w0 = self._omega(sample_rate)
        cos_w0 = math.cos(w0)
        alpha = self._alpha(w0)
        b1 = 1.0 - cos_w0
        self._set(0.5 * b1, b1, 0.5 * b1, 1.0 + alpha, -2.0 * cos_w0, 1.0 - alpha)


class IirHighpass(Biquad):
    """RBJ highpass: H(s) = s^2 / (s^2 + s/Q + 1). Unity gain at Nyquist."""

    def _update_coefficients(self, sample_rate: float) -> None:
        w0 = self._omega(sample_rate)
        cos_w0 = math.cos(w0)
        alpha = self._alpha(w0)
        b0 = 0.5 * (1.0 + cos_w0)
        self._set(b0, -2.0 * b0, b0, 1.0 + alpha, -2.0 * cos_w0, 1.0 - alpha)


class IirBandpass(Biquad):
    """RBJ bandpass with constant 0 dB peak gain: H(s) = (s/Q) / (s^2 + s/Q + 1); Q sets the bandwidth."""

    def _update_coefficients(self, sample_rate: float) -> None:
        w0 = self._omega(sample_rate)
        alpha = self._alpha(w0)
        self._set(alpha, 0.0, -alpha, 1.0 + alpha, -2.0 * math.cos(w0), 1.0 - alpha)


class IirNotch(Biquad):
    """RBJ notch: H(s) = (s^2 + 1) / (s^2 + s/Q + 1); zero gain at ``cutoff``, unity far from it."""

    def _update_coefficients(self, sample_rate: float) -> None:
        w0 = self._omega(sample_rate)
        cos_w0 = math.cos(w0)
        alpha = self._alpha(w0)
        self._set(1.0, -2.0 * cos_w0, 1.0, 1.0 + alpha, -2.0 * cos_w0, 1.0 - alpha)


class GainBiquad(Biquad):
    """Base of the biquads with a gain: adds the ``gain_db`` value input (dB, default 0).

    ``A = 10^(gain_db / 40)`` as in the cookbook (the square root of the linear peak/shelf gain).
    """

    gain_db = ValueInput(0.0)

    def __init__(self, cutoff: float = 1000.0, q: float = 0.7071067811865476, gain_db: float = 0.0) -> None:
        super().__init__(cutoff, q)
        self.gain_db = float(gain_db)

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({self.cutoff!r}, {self.q!r}, {self.gain_db!r})"

    def _stale(self, sample_rate: float) -> bool:
        if (
            self.cutoff != self._last_cutoff
            or self.q != self._last_q
            or self.gain_db != self._last_gain_db
            or sample_rate != self._last_sample_rate
        ):
            self._last_cutoff = self.cutoff
            self._last_q = self.q
            self._last_gain_db = self.gain_db
            self._last_sample_rate = sample_rate
            return True
        return False

    def _amplitude(self) -> float:
        return math.pow(10.0, self.gain_db / 40.0)


class IirPeak(GainBiquad):
    """RBJ peaking EQ: boost or cut of ``gain_db`` at ``cutoff``, bandwidth set by Q; unity far away."""

    def _update_coefficients(self, sample_rate: float) -> None:
        w0 = self._omega(sample_rate)
        cos_w0 = math.cos(w0)
        alpha = self._alpha(w0)
        a = self._amplitude()
        self._set(
            1.0 + alpha * a, -2.0 * cos_w0, 1.0 - alpha * a, 1.0 + alpha / a, -2.0 * cos_w0, 1.0 - alpha / a
        )


def shelf_q(slope: float, gain_db: float) -> float:
    """The Q equivalent to the cookbook's shelf slope S at a given gain.

    ``1/Q = sqrt((A + 1/A)(1/S - 1) + 2)``; S = 1 is the steepest slope without overshoot (Q = 0.7071).
    """
    a = 10.0 ** (gain_db / 40.0)
    return 1.0 / math.sqrt((a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0)


class IirLowShelf(GainBiquad):
    """RBJ low shelf: gain ``gain_db`` below ``cutoff`` (the shelf midpoint), unity above.

    The steepness is given as Q (the ``q`` value input); build from the cookbook's slope S with
    ``IirLowShelf.from_slope(cutoff, slope, gain_db)`` (the slope is converted to Q once, for that gain).
    """

    @classmethod
    def from_slope(cls, cutoff: float, slope: float = 1.0, gain_db: float = 0.0) -> IirLowShelf:
        return cls(cutoff, shelf_q(slope, gain_db), gain_db)

    def _update_coefficients(self, sample_rate: float) -> None:
        w0 = self._omega(sample_rate)
        cos_w0 = math.cos(w0)
        a = self._amplitude()
        k = 2.0 * math.sqrt(a) * self._alpha(w0)
        ap1 = a + 1.0
        am1 = a - 1.0
        self._set(
            a * (ap1 - am1 * cos_w0 + k),
            2.0 * a * (am1 - ap1 * cos_w0),
            a * (ap1 - am1 * cos_w0 - k),
            ap1 + am1 * cos_w0 + k,
            -2.0 * (am1 + ap1 * cos_w0),
            ap1 + am1 * cos_w0 - k,
        )


class IirHighShelf(GainBiquad):
    """RBJ high shelf: gain ``gain_db`` above ``cutoff`` (the shelf midpoint), unity below.

    As :class:`IirLowShelf`: Q sets the steepness, ``from_slope`` builds from the slope S.
    """

    @classmethod
    def from_slope(cls, cutoff: float, slope: float = 1.0, gain_db: float = 0.0) -> IirHighShelf:
        return cls(cutoff, shelf_q(slope, gain_db), gain_db)

    def _update_coefficients(self, sample_rate: float) -> None:
        w0 = self._omega(sample_rate)
        cos_w0 = math.cos(w0)
        a = self._amplitude()
        k = 2.0 * math.sqrt(a) * self._alpha(w0)
        ap1 = a + 1.0
        am1 = a - 1.0
        self._set(
            a * (ap1 + am1 * cos_w0 + k),
            -2.0 * a * (am1 + ap1 * cos_w0),
            a * (ap1 + am1 * cos_w0 - k),
            ap1 - am1 * cos_w0 + k,
            2.0 * (am1 - ap1 * cos_w0),
            ap1 - am1 * cos_w0 - k,
        )


class TptFilter(Node):
    """Zavalishin's topology-preserving-transform state-variable filter (trapezoidal integration).

    Two trapezoidal integrators in the analog SVF loop, the zero-delay feedback solved exactly
    each sample (The Art of VA Filter Design, ch. 4). Unlike the biquads it keeps its state in the
    integrators, so cutoff and Q can be modulated at audio rate without blowing up or zipper noise.

    With g = tan(pi fc / fs) and k = 1/Q, per sample::

        hp = (x - (k + g) s1 - s2) / (1 + k g + g^2)
        bp = g hp + s1;  s1' = bp + g hp
        lp = g bp + s2;  s2' = lp + g bp

    It is the bilinear transform, prewarped at fc, of H_lp = 1/(s^2 + k s + 1),
    H_bp = k s/(s^2 + k s + 1), H_hp = s^2/(s^2 + k s + 1) (s normalized to the cutoff).

    Endpoints:
        cutoff (value, Hz, default 1000), q (value, default 0.7071).
        cutoff_mod (stream, Hz): added to cutoff; the sum is clamped to [0.01 Hz, 0.49 fs].
        input (stream).
        lowpass, bandpass, highpass (streams). The bandpass is normalized to 0 dB at the cutoff
            (it is k times the SVF's raw band output), so lowpass + bandpass + highpass = input.
    """

    cutoff = ValueInput(1000.0)
    q = ValueInput(0.7071067811865476)
    cutoff_mod = StreamInput()
    input = StreamInput()
    lowpass = StreamOutput()
    bandpass = StreamOutput()
    highpass = StreamOutput()

    def __init__(self, cutoff: float = 1000.0, q: float = 0.7071067811865476) -> None:
        self.cutoff = float(cutoff)
        self.q = float(q)
        self._s1 = 0.0
        self._s2 = 0.0
        self._g = 0.0
        self._k = 1.0
        self._denominator = 1.0
        self._last_fc = math.nan
        self._last_q = math.nan
        self._last_sample_rate = math.nan

    def __repr__(self) -> str:
        return f"TptFilter({self.cutoff!r}, {self.q!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        fc = min(max(self.cutoff + self.cutoff_mod, MIN_CUTOFF_HZ), MAX_CUTOFF_RATIO * sample_rate)
        if fc != self._last_fc or self.q != self._last_q or sample_rate != self._last_sample_rate:
            self._last_fc = fc
            self._last_q = self.q
            self._last_sample_rate = sample_rate
            g = math.tan(math.pi * fc / sample_rate)
            k = 1.0 / max(self.q, MIN_Q)
            self._g = g
            self._k = k
            self._denominator = 1.0 / (1.0 + k * g + g * g)
        g = self._g
        k = self._k
        s1 = self._s1
        s2 = self._s2
        hp = (self.input - (k + g) * s1 - s2) * self._denominator
        v1 = g * hp
        bp = v1 + s1
        v2 = g * bp
        lp = v2 + s2
        s1 = bp + v1
        s2 = lp + v2
        if abs(s1) < DENORMAL:
            s1 = 0.0
        if abs(s2) < DENORMAL:
            s2 = 0.0
        self._s1 = s1
        self._s2 = s2
        self.lowpass = lp
        self.bandpass = k * bp
        self.highpass = hp
