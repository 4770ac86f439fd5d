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

import numpy as np

from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node
from .sine import cos_cycles, sin_cycles

TWO_PI = 2.0 * math.pi

MIN_CUTOFF_HZ = 0.01
"""Cutoffs are clamped to [MIN_CUTOFF_HZ, MAX_CUTOFF_RATIO * sample_rate]: at 0 Hz or at Nyquist
the cookbook formulas degenerate (poles on the unit circle)."""
MAX_CUTOFF_RATIO = 0.49
MIN_Q = 0.01
TINY = 5e-324
"""The smallest positive float: ``max(x, TINY)`` is ``x`` for every positive ``x`` (and a NaN stays
NaN), and shows the compiler a divisor is never zero."""
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

    ``update_every`` (int, default 1): while the parameters keep changing (a modulated cutoff), the
    coefficients are recomputed at most once every ``update_every`` samples, as SynthMark's voice
    does every 8 frames: a recomputation (a sine, a cosine, a division) costs several times the
    filter itself. Precisely: the coefficients are recomputed at a sample when a parameter differs
    from those they were computed for and at least ``update_every`` samples have passed since the
    last recomputation, so a single change after a quiet stretch still applies at once. With 1,
    every change applies at its own sample.

    Endpoints:
        cutoff (value, Hz): the cutoff / centre / corner frequency.
        q (value): quality factor (resonance; 0.7071 is Butterworth for low/highpass).
        input (stream), output (stream).
    """

    cutoff = ValueInput(1000.0, range=(20.0, 20000.0))
    q = ValueInput(0.7071067811865476, range=(0.1, 20.0))
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, cutoff: float = 1000.0, q: float = 0.7071067811865476, update_every: int = 1) -> None:
        if isinstance(update_every, bool) or not isinstance(update_every, int) or update_every < 1:
            raise ValueError(f"{type(self).__name__}: update_every must be an int >= 1, got {update_every!r}")
        self.cutoff = float(cutoff)
        self.q = float(q)
        self.update_every = update_every  # a constant of compiled code (no method assigns it)
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
        self._wait = 0.0  # samples before the coefficients may be recomputed (update_every > 1)

    def __repr__(self) -> str:
        every = f", update_every={self.update_every}" if self.update_every != 1 else ""
        return f"{type(self).__qualname__}({self.cutoff!r}, {self.q!r}{every})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        # The parameter check is a rare branch (taken when a parameter changed): compares and a
        # skipped `if`; the recomputation, outlined by the JIT, sits under it.
        if self.update_every > 1:  # a constant: only one of the two forms is compiled
            # Both tests are evaluated every sample (they are pure compares): a statement and a
            # select-free `and` of two predicates, which voice lanes pack into one mask.
            wait = self._wait
            stale = self._changed(sample_rate)
            if stale and wait <= 0.0:
                self._recompute(sample_rate)
                wait = float(self.update_every)
            self._wait = max(wait - 1.0, 0.0)
        elif self._changed(sample_rate):
            self._recompute(sample_rate)
        x = self.input
        y = self._b0 * x + self._s1
        y = 0.0 if abs(y) < DENORMAL else y
        self._s1 = self._b1 * x - self._a1 * y + self._s2
        self._s2 = self._b2 * x - self._a2 * y
        self.output = y

    def _changed(self, sample_rate: float) -> bool:
        # Whether a parameter differs from those the coefficients were computed for: one
        # expression, no effects, so it inlines as compares (and packs in voice lanes).
        return (
            self.cutoff != self._last_cutoff
            or self.q != self._last_q
            or sample_rate != self._last_sample_rate
        )

    def _recompute(self, sample_rate: float) -> None:
        # remember the parameters, then compute the coefficients for them
        self._last_cutoff = self.cutoff
        self._last_q = self.q
        self._last_sample_rate = sample_rate
        self._update_coefficients(sample_rate)

    _sin_cycles = staticmethod(sin_cycles)  # sin(2 pi p) in plain arithmetic: exact in both engines
    _cos_cycles = staticmethod(cos_cycles)

    def _sin_cos(self, sample_rate: float) -> tuple[float, float]:
        # (sin, cos)(w0) for w0 = 2 pi f0 / Fs, f0 clamped into the usable range: of the cutoff in
        # cycles per sample, by the polynomial the oscillators use (within 3.2e-16 of the exact
        # values; plain arithmetic, so a recomputation packs across voice lanes: no call, no branch)
        # (the sample rate is positive: max with the smallest positive float changes nothing and
        # lets the compiler drop the division's zero check, so the arm stays pure arithmetic)
        f0 = min(max(self.cutoff, MIN_CUTOFF_HZ), MAX_CUTOFF_RATIO * sample_rate)
        cycles = f0 / max(sample_rate, TINY)
        return self._sin_cycles(cycles), self._cos_cycles(cycles)

    def _alpha(self, sin_w0: float) -> float:
        return sin_w0 / (2.0 * max(self.q, MIN_Q))

    def _set(self, b0: float, b1: float, b2: float, a0: float, a1: float, a2: float) -> None:
        # store the coefficients normalized by a0 (a0 > 0 for every cookbook type with Q > 0)
        inv = 1.0 / max(a0, TINY)  # a0 > 0: max only shows the compiler it is not zero (as above)
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
        sin_w0, cos_w0 = self._sin_cos(sample_rate)
        alpha = self._alpha(sin_w0)
        b1 = 1.0 - cos_w0
        self._set(0.5 * b1, b1, 0.5 * b1, 1.0 + alpha, -2.0 * cos_w0, 1.0 - alpha)


class IirHighpass(Biquad):
    """RBJ highpass: H(s) = s^2 / (s^2 + s/Q + 1). Unity gain at Nyquist."""

    def _update_coefficients(self, sample_rate: float) -> None:
        sin_w0, cos_w0 = self._sin_cos(sample_rate)
        alpha = self._alpha(sin_w0)
        b0 = 0.5 * (1.0 + cos_w0)
        self._set(b0, -2.0 * b0, b0, 1.0 + alpha, -2.0 * cos_w0, 1.0 - alpha)


class IirBandpass(Biquad):
    """RBJ bandpass with constant 0 dB peak gain: H(s) = (s/Q) / (s^2 + s/Q + 1); Q sets the bandwidth."""

    def _update_coefficients(self, sample_rate: float) -> None:
        sin_w0, cos_w0 = self._sin_cos(sample_rate)
        alpha = self._alpha(sin_w0)
        self._set(alpha, 0.0, -alpha, 1.0 + alpha, -2.0 * cos_w0, 1.0 - alpha)


class IirNotch(Biquad):
    """RBJ notch: H(s) = (s^2 + 1) / (s^2 + s/Q + 1); zero gain at ``cutoff``, unity far from it."""

    def _update_coefficients(self, sample_rate: float) -> None:
        sin_w0, cos_w0 = self._sin_cos(sample_rate)
        alpha = self._alpha(sin_w0)
        self._set(1.0, -2.0 * cos_w0, 1.0, 1.0 + alpha, -2.0 * cos_w0, 1.0 - alpha)


class GainBiquad(Biquad):
    """Base of the biquads with a gain: adds the ``gain_db`` value input (dB, default 0).

    ``A = 10^(gain_db / 40)`` as in the cookbook (the square root of the linear peak/shelf gain).
    """

    gain_db = ValueInput(0.0)

    def __init__(
        self,
        cutoff: float = 1000.0,
        q: float = 0.7071067811865476,
        gain_db: float = 0.0,
        update_every: int = 1,
    ) -> None:
        super().__init__(cutoff, q, update_every)
        self.gain_db = float(gain_db)

    def __repr__(self) -> str:
        every = f", update_every={self.update_every}" if self.update_every != 1 else ""
        return f"{type(self).__qualname__}({self.cutoff!r}, {self.q!r}, {self.gain_db!r}{every})"

    def _changed(self, sample_rate: float) -> bool:
        return (
            self.cutoff != self._last_cutoff
            or self.q != self._last_q
            or self.gain_db != self._last_gain_db
            or sample_rate != self._last_sample_rate
        )

    def _recompute(self, sample_rate: float) -> None:
        self._last_cutoff = self.cutoff
        self._last_q = self.q
        self._last_gain_db = self.gain_db
        self._last_sample_rate = sample_rate
        self._update_coefficients(sample_rate)

    def _amplitude(self) -> float:
        return math.pow(10.0, self.gain_db / 40.0)


class IirPeak(GainBiquad):
    """RBJ peaking EQ: boost or cut of ``gain_db`` at ``cutoff``, bandwidth set by Q; unity far away."""

    def _update_coefficients(self, sample_rate: float) -> None:
        sin_w0, cos_w0 = self._sin_cos(sample_rate)
        alpha = self._alpha(sin_w0)
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
        sin_w0, cos_w0 = self._sin_cos(sample_rate)
        a = self._amplitude()
        k = 2.0 * math.sqrt(a) * self._alpha(sin_w0)
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
        sin_w0, cos_w0 = self._sin_cos(sample_rate)
        a = self._amplitude()
        k = 2.0 * math.sqrt(a) * self._alpha(sin_w0)
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

    cutoff = ValueInput(1000.0, range=(20.0, 20000.0))
    q = ValueInput(0.7071067811865476, range=(0.1, 20.0))
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
            # >= 1 (g > 0 for fc in [0.01 Hz, 0.49 fs], k > 0), so the max changes nothing (NaN
            # stays NaN) but proves the divisor non-zero: no ZeroDivisionError check, and in voice
            # lanes this whole update runs packed (two voices' tan at once)
            self._denominator = 1.0 / max(1.0 + k * g + g * g, 1.0)
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


# ------------------------------------------------------------------------------------------------
# One-pole filters, DC blocker, ladder, comb and allpass (issue 14).


def delay_line_size(max_delay: float, max_sample_rate: float) -> int:
    """Length of a delay line holding ``max_delay`` seconds at up to ``max_sample_rate``, plus the
    4-point interpolator's 3 extra points, rounded up to a power of two (positions wrap with a mask).

    As in :class:`oscen.delay.Delay`, lines are allocated at construction, before the sample rate is
    known; at a higher rate the longest delay shrinks accordingly.
    """
    if not (max_delay > 0 and max_sample_rate > 0 and math.isfinite(max_delay * max_sample_rate)):
        raise ValueError(
            f"max_delay and max_sample_rate must be positive and finite, got {max_delay!r}, {max_sample_rate!r}"
        )
    needed = int(math.ceil(max_delay * max_sample_rate)) + 4
    return 1 << max(needed - 1, 1).bit_length()


class OnePole(Node):
    """Base of the one-pole filters: Zavalishin's TPT (trapezoidal) one-pole, prewarped at the cutoff.

    With g = tan(pi fc / fs) and G = g / (1 + g), per sample::

        v = (x - s) G;  lp = v + s;  s' = lp + v;  hp = x - lp

    It is the bilinear transform, prewarped at fc, of H_lp(s) = 1 / (1 + s) and H_hp(s) = s / (1 + s)
    (s normalized to the cutoff): ``|H_lp| = 1 / sqrt(1 + r^2)``, ``|H_hp| = r / sqrt(1 + r^2)``
    with r = tan(w / 2) / g, so both are exactly -3 dB at the cutoff. The state is the integrator,
    so the cutoff can be modulated at audio rate without blowing up.

    Endpoints:
        cutoff (value, Hz, default 1000): clamped to [0.01 Hz, 0.49 fs].
        input (stream), output (stream).
    """

    cutoff = ValueInput(1000.0, range=(20.0, 20000.0))
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, cutoff: float = 1000.0) -> None:
        self.cutoff = float(cutoff)
        self._s = 0.0
        self._gain = 0.0  # G = g / (1 + g)
        self._last_fc = math.nan
        self._last_sample_rate = math.nan

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({self.cutoff!r})"

    # ---------------------------------------------------------------- compiled code
    def _lowpass(self, x: float, sample_rate: float) -> float:
        fc = min(max(self.cutoff, MIN_CUTOFF_HZ), MAX_CUTOFF_RATIO * sample_rate)
        if fc != self._last_fc or sample_rate != self._last_sample_rate:
            self._last_fc = fc
            self._last_sample_rate = sample_rate
            g = math.tan(math.pi * fc / sample_rate)
            self._gain = g / (1.0 + g)
        s = self._s
        v = (x - s) * self._gain
        lp = v + s
        s = lp + v
        if abs(s) < DENORMAL:
            s = 0.0
        self._s = s
        return lp

    def process(self, sample_rate: float) -> None:
        self.output = self._lowpass(self.input, sample_rate)


class OnePoleLowpass(OnePole):
    """First-order lowpass (6 dB/octave), -3 dB at ``cutoff``, unity at DC, zero at Nyquist.

    TPT one-pole (see :class:`OnePole`): H(z) = g (1 + z^-1) / ((1 + g) + (g - 1) z^-1).
    """


class OnePoleHighpass(OnePole):
    """First-order highpass (6 dB/octave), -3 dB at ``cutoff``, zero at DC, unity at Nyquist.

    The input minus the TPT one-pole lowpass: H(z) = (1 - z^-1) / ((1 + g) + (g - 1) z^-1).
    """

    def process(self, sample_rate: float) -> None:
        x = self.input
        self.output = x - self._lowpass(x, sample_rate)


class DcBlocker(Node):
    """Removes DC: a zero at DC and a pole just inside it, normalized to unity gain at Nyquist.

    ``y = c (x - x1) + R y1`` with R = exp(-2 pi fc / fs) and c = (1 + R) / 2, so
    H(z) = c (1 - z^-1) / (1 - R z^-1). The default 10 Hz corner (R = 0.99858 at 44.1 kHz) leaves
    the audible range alone: -0.09 dB at 40 Hz.

    Endpoints:
        cutoff (value, Hz, default 10): the pole's corner; clamped to [0.01 Hz, 0.49 fs].
        input (stream), output (stream).
    """

    cutoff = ValueInput(10.0)
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, cutoff: float = 10.0) -> None:
        self.cutoff = float(cutoff)
        self._x1 = 0.0
        self._y1 = 0.0
        self._r = 0.0
        self._c = 1.0
        self._last_fc = math.nan
        self._last_sample_rate = math.nan

    def __repr__(self) -> str:
        return f"DcBlocker({self.cutoff!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        fc = min(max(self.cutoff, MIN_CUTOFF_HZ), MAX_CUTOFF_RATIO * sample_rate)
        if fc != self._last_fc or sample_rate != self._last_sample_rate:
            self._last_fc = fc
            self._last_sample_rate = sample_rate
            r = math.exp(-TWO_PI * fc / sample_rate)
            self._r = r
            self._c = 0.5 * (1.0 + r)
        x = self.input
        y = self._c * (x - self._x1) + self._r * self._y1
        if abs(y) < DENORMAL:
            y = 0.0
        self._x1 = x
        self._y1 = y
        self.output = y


LADDER_K_MAX = 4.4
"""Feedback gain at ``resonance`` 1. The linear ladder oscillates from k = 4 on (each stage is
-3 dB and -45 degrees at the cutoff, so four of them invert with gain 1/4), i.e. from resonance
4 / 4.4 = 0.91: above it the filter self-oscillates at the cutoff, its level held by the tanh."""


class LadderFilter(Node):
    """A Moog-style 4-pole (24 dB/octave) lowpass ladder with resonance and tanh saturation.

    Zero-delay-feedback TPT ladder (Zavalishin, The Art of VA Filter Design, ch. 5 and 6): four TPT
    one-poles (g = tan(pi fc / fs), G = g / (1 + g)) in series, the global feedback ``-k y4`` solved
    exactly each sample. Each stage's output is ``G u_i + s_i / (1 + g)``, so
    ``y4 = G^4 u + S`` with S = sum of G^(3-i) s_i / (1 + g), and the ladder's input is::

        u = tanh((drive x - k S) / (1 + k G^4))

    The saturation sits where the transistor ladder's input pair is, applied to the solved
    zero-delay-feedback input (the "cheap" nonlinear ZDF of Zavalishin 6.x: one tanh per sample, no
    Newton iterations). For small signals the filter is linear,
    H(z) = H1(z)^4 / (1 + k H1(z)^4) with H1 the prewarped bilinear one-pole, so at resonance 0
    the cutoff is exactly where the response is -12 dB (each stage -3 dB), the slope tends to
    -24 dB/octave, and the passband gain is 1 / (1 + k) (the classic ladder's bass loss with
    resonance). Large signals (drive) saturate, and the self-oscillation settles at a level set by
    the tanh.

    Endpoints:
        cutoff (value, Hz, default 1000), cutoff_mod (stream, Hz): their sum clamped to
            [0.01 Hz, 0.49 fs].
        resonance (value, default 0): 0 to 1 (clamped), k = 4.4 resonance; self-oscillates above 0.91.
        drive (value, default 1): input gain into the saturator (the output is not scaled back).
        input (stream), output (stream).
    """

    cutoff = ValueInput(1000.0, range=(20.0, 20000.0))
    resonance = ValueInput(0.0, range=(0.0, 1.0))
    drive = ValueInput(1.0)
    cutoff_mod = StreamInput()
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, cutoff: float = 1000.0, resonance: float = 0.0, drive: float = 1.0) -> None:
        self.cutoff = float(cutoff)
        self.resonance = float(resonance)
        self.drive = float(drive)
        self._s1 = 0.0
        self._s2 = 0.0
        self._s3 = 0.0
        self._s4 = 0.0
        self._g = 0.0  # G = g / (1 + g)
        self._h = 1.0  # 1 / (1 + g)
        self._last_fc = math.nan
        self._last_sample_rate = math.nan

    def __repr__(self) -> str:
        return f"LadderFilter({self.cutoff!r}, {self.resonance!r}, {self.drive!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        fc = min(max(self.cutoff + self.cutoff_mod, MIN_CUTOFF_HZ), MAX_CUTOFF_RATIO * sample_rate)
        if fc != self._last_fc or sample_rate != self._last_sample_rate:
            self._last_fc = fc
            self._last_sample_rate = sample_rate
            g = math.tan(math.pi * fc / sample_rate)
            self._g = g / (1.0 + g)
            self._h = 1.0 / (1.0 + g)
        big_g = self._g
        h = self._h
        k = LADDER_K_MAX * min(max(self.resonance, 0.0), 1.0)
        s1 = self._s1
        s2 = self._s2
        s3 = self._s3
        s4 = self._s4
        g2 = big_g * big_g
        feedback = (big_g * g2 * s1 + g2 * s2 + big_g * s3 + s4) * h
        u = math.tanh((self.drive * self.input - k * feedback) / (1.0 + k * g2 * g2))
        v = (u - s1) * big_g
        y1 = v + s1
        s1 = y1 + v
        v = (y1 - s2) * big_g
        y2 = v + s2
        s2 = y2 + v
        v = (y2 - s3) * big_g
        y3 = v + s3
        s3 = y3 + v
        v = (y3 - s4) * big_g
        y4 = v + s4
        s4 = y4 + v
        if abs(s1) < DENORMAL:
            s1 = 0.0
        if abs(s2) < DENORMAL:
            s2 = 0.0
        if abs(s3) < DENORMAL:
            s3 = 0.0
        if abs(s4) < DENORMAL:
            s4 = 0.0
        self._s1 = s1
        self._s2 = s2
        self._s3 = s3
        self._s4 = s4
        self.output = y4


MAX_LOOP_GAIN = 0.999
"""|gain| of the recursive comb and the allpass is clamped below 1: the loop must lose energy."""
COMB_MODES = {"feedforward": False, "feedback": True}


class DelayLineFilter(Node):
    """Base of the comb and allpass filters: a fractional delay line of ``max_delay`` seconds.

    ``_read(d)`` returns the value written ``d`` samples ago (before this sample's write), with the
    4-point Hermite (Catmull-Rom) interpolation of :class:`oscen.delay.Delay` (linear below 2
    samples, exact at integer delays); ``_write(x)`` stores this sample's value and advances.
    ``_samples(seconds, sample_rate)`` converts a delay and clamps it to [1 sample, capacity].
    """

    delay_time = ValueInput(0.01)
    gain = ValueInput(0.5)
    input = StreamInput()
    output = StreamOutput()

    def __init__(
        self, delay_time: float, gain: float, max_delay: float = 0.1, max_sample_rate: float = 96000.0
    ) -> None:
        size = delay_line_size(max_delay, max_sample_rate)
        self.delay_time = float(delay_time)
        self.gain = float(gain)
        self.max_delay = float(max_delay)
        self._buffer = np.zeros(size, dtype=np.float64)
        self._mask = size - 1
        self._max_samples = float(size - 4)
        self._write_at = 0

    # ---------------------------------------------------------------- compiled code
    def _samples(self, seconds: float, sample_rate: float) -> float:
        d = seconds * sample_rate
        if not d >= 1.0:  # also NaN
            d = 1.0
        return min(d, self._max_samples)

    def _read(self, d: float) -> float:
        mask = self._mask
        position = float(self._write_at + self._mask + 1) - d
        i = int(position)
        frac = position - float(i)
        x0 = float(self._buffer[i & mask])
        x1 = float(self._buffer[(i + 1) & mask])
        if d < 2.0:
            return x0 + frac * (x1 - x0)
        xm1 = float(self._buffer[(i - 1) & mask])
        x2 = float(self._buffer[(i + 2) & mask])
        c1 = 0.5 * (x1 - xm1)
        c2 = xm1 - 2.5 * x0 + 2.0 * x1 - 0.5 * x2
        c3 = 0.5 * (x2 - xm1) + 1.5 * (x0 - x1)
        return ((c3 * frac + c2) * frac + c1) * frac + x0

    def _write(self, x: float) -> None:
        if abs(x) < DENORMAL:
            x = 0.0
        w = self._write_at
        self._buffer[w] = x
        self._write_at = (w + 1) & self._mask


class CombFilter(DelayLineFilter):
    """Comb filter, feedforward or feedback, with a fractional delay D = ``delay_time`` fs.

    * ``mode="feedforward"``: ``y[n] = x[n] + g x[n - D]``, H(z) = 1 + g z^-D: notches (g > 0) at
      odd multiples of fs / 2D, ``|H| = |1 + g e^(-jwD)|``.
    * ``mode="feedback"`` (default): ``y[n] = x[n] + g y[n - D]``, H(z) = 1 / (1 - g z^-D): peaks at
      multiples of fs / D (g > 0) of height 1 / (1 - |g|); each echo is g times the previous one.
      |g| is clamped to 0.999.

    Endpoints:
        delay_time (value, seconds, default 0.01): clamped to [1 sample, ``max_delay``].
        gain (value, default 0.5): g.
        input (stream), output (stream).

    The line holds ``max_delay`` seconds (default 0.1) at up to ``max_sample_rate`` (96 kHz).
    """

    def __init__(
        self,
        delay_time: float = 0.01,
        gain: float = 0.5,
        mode: str = "feedback",
        max_delay: float = 0.1,
        max_sample_rate: float = 96000.0,
    ) -> None:
        if mode not in COMB_MODES:
            raise ValueError(f"CombFilter: unknown mode {mode!r}; choose one of {sorted(COMB_MODES)}")
        super().__init__(delay_time, gain, max_delay, max_sample_rate)
        self.mode = mode
        self._recursive = COMB_MODES[mode]

    def __repr__(self) -> str:
        return f"CombFilter({self.delay_time!r}, {self.gain!r}, mode={self.mode!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        delayed = self._read(self._samples(self.delay_time, sample_rate))
        x = self.input
        if self._recursive:
            y = x + min(max(self.gain, -MAX_LOOP_GAIN), MAX_LOOP_GAIN) * delayed
            self._write(y)
        else:
            y = x + self.gain * delayed
            self._write(x)
        self.output = y


class AllpassFilter(DelayLineFilter):
    """Schroeder allpass delay: a flat magnitude response, a dense frequency-dependent phase.

    ``v[n] = x[n] + g v[n - D];  y[n] = -g v[n] + v[n - D]``, i.e.
    H(z) = (-g + z^-D) / (1 - g z^-D), ``|H| = 1`` at every frequency; an impulse comes out as
    -g, then (1 - g^2) g^(m-1) every D samples. The diffuser of Schroeder and Freeverb reverbs.

    Endpoints:
        delay_time (value, seconds, default 0.005): D / fs, clamped to [1 sample, ``max_delay``].
        gain (value, default 0.5): g, clamped to +/-0.999.
        input (stream), output (stream).
    """

    def __init__(
        self,
        delay_time: float = 0.005,
        gain: float = 0.5,
        max_delay: float = 0.1,
        max_sample_rate: float = 96000.0,
    ) -> None:
        super().__init__(delay_time, gain, max_delay, max_sample_rate)

    def __repr__(self) -> str:
        return f"AllpassFilter({self.delay_time!r}, {self.gain!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        delayed = self._read(self._samples(self.delay_time, sample_rate))
        g = min(max(self.gain, -MAX_LOOP_GAIN), MAX_LOOP_GAIN)
        v = self.input + g * delayed
        self._write(v)
        self.output = delayed - g * v
