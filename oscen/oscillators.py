"""Oscillators: one phase-accumulator node, four waveforms, naive or band-limited.

The phase runs in cycles, in [0, 1). Each sample outputs the waveform at the current phase, then
advances the phase by ``(frequency + fm) / sample_rate``. Phase modulation (``pm``, in cycles) is
added to the phase only when reading the waveform, so it shifts the waveform without
accumulating.

Naive waveforms alias badly at high pitches (their discontinuities carry energy far above
Nyquist). The band-limited variants correct the samples around each discontinuity with a
two-sample polynomial residual: PolyBLEP for the jumps of the saw and the square, PolyBLAMP (its
integral) for the corners of the triangle. This is cheap, stateless, and keeps the waveform's
amplitude and phase exactly those of the naive one away from the corrections.

``process`` and its helpers are compiled by the JIT: they stay within the compilable subset
(floats, ints, bools, ``math``, calls to the node's own methods), in plain float arithmetic, so
every waveform computes the same floats, bit for bit, interpreted and compiled. The code is
written for voices run as SIMD lanes: the per-sample path is straight-line arithmetic and selects
(``a if c else b``), statements of ``process`` itself rather than helpers returning a value; the
rare work (a resync, a BLEP residual, a floor for a far phase jump) sits under an ``if`` whose
condition is a few compares, which the lanes pass turns into one mask and a skipped branch.

The sine. The phase stays the truth (state, ``pm`` and waveform switches mean what they did);
the value comes from a rotation recurrence, ``(c, s) <- (c cw - s sw, s cw + c sw)`` with
``(cw, sw) = (cos, sin)(2 pi increment)``: four multiplies and two adds a sample instead of the
degree-17 polynomial :func:`oscen.sine.sin_cycles` (about 30 operations). The recurrence runs
only while it is exact enough and means the same thing as the phase: it is restarted from the
phase with ``sin_cycles``/``cos_cycles`` every :data:`RESYNC_SAMPLES` samples (its error grows
by at most ~2.5e-16 a sample: measured at most 2.7e-13 from ``sin_cycles`` of the phase, spurs
near -275 dBFS, far below the -140 dBFS the issue asks), and whenever the increment changes
(a new frequency: the polynomial for that sample, the restart on the next steady one). While the
increment changes every sample (FM, a ramp) or ``pm`` is non-zero, every sample takes the
polynomial of the phase, bit for bit what the oscillator computed before the recurrence.
"""

from __future__ import annotations

import math

from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node
from .sine import cos_cycles, sin_cycles

SINE = 0
SAW = 1
SQUARE = 2
TRIANGLE = 3

WAVEFORMS = {"sine": SINE, "saw": SAW, "square": SQUARE, "triangle": TRIANGLE}

MAX_BLEP_WIDTH = 0.5
"""The correction width (the phase increment, in cycles) is clamped here: above it (frequencies
beyond Nyquist) the two-sample residuals would overlap their own next discontinuity."""

RESYNC_SAMPLES = 1024.0
"""The sine's rotation recurrence runs at most this many samples before it is restarted from the
phase with the polynomial. Its error grows about linearly, by at most ~2.5e-16 a sample (the
rounding of the rotation's cosine and sine, and of the phase accumulator it must agree with):
measured at most 2.7e-13 from the polynomial of the phase over 49 frequencies
(``benchmarks/bench_sine.py``, section 4), while a restart costs four polynomials, 1/256 of one
a sample. A float: the countdown packs in f64 lanes."""


class Oscillator(Node):
    """A periodic oscillator: sine, saw, square (pulse) or triangle, optionally band-limited.

    Endpoints:
        frequency (value, Hz, default 440): may be negative (the phase runs backwards).
        amplitude (value, default 1): the output's peak value.
        pulse_width (value, 0..1, default 0.5): fraction of the period the square is high.
        fm (stream, Hz): added to ``frequency`` each sample (linear through-zero FM).
        pm (stream, cycles): added to the phase when reading the waveform.
        output (stream).

    Waveforms, at phase ``p`` (all start their cycle like a sine, rising through or from zero):
        sine      ``sin(2 pi p)``
        saw       ``2 p - 1`` (rising ramp, jumps down at the cycle's end)
        square    ``+1`` for ``p < pulse_width``, else ``-1``
        triangle  ``0`` at ``p = 0``, ``+1`` at 0.25, ``0`` at 0.5, ``-1`` at 0.75

    Build with the classmethods: ``Oscillator.sine(440.0, 0.5)``,
    ``Oscillator.saw(110.0, band_limited=True)``, ``Oscillator.square(220.0, pulse_width=0.25)``,
    ``Oscillator.triangle(...)``. ``band_limited`` has no effect on the sine.
    """

    SINE = SINE
    SAW = SAW
    SQUARE = SQUARE
    TRIANGLE = TRIANGLE

    frequency = ValueInput(440.0, range=(0.1, 20000.0))
    amplitude = ValueInput(1.0, range=(0.0, 1.0))
    pulse_width = ValueInput(0.5, range=(0.01, 0.99))
    fm = StreamInput()
    pm = StreamInput()
    output = StreamOutput()

    def __init__(
        self,
        frequency: float = 440.0,
        amplitude: float = 1.0,
        waveform: int | str = SINE,
        pulse_width: float = 0.5,
        band_limited: bool = False,
        phase: float = 0.0,
    ) -> None:
        if isinstance(waveform, str):
            if waveform not in WAVEFORMS:
                raise ValueError(f"unknown waveform {waveform!r}; choose one of {sorted(WAVEFORMS)}")
            waveform = WAVEFORMS[waveform]
        if waveform not in (SINE, SAW, SQUARE, TRIANGLE):
            raise ValueError(f"unknown waveform {waveform!r}")
        self.frequency = float(frequency)
        self.amplitude = float(amplitude)
        self.pulse_width = float(pulse_width)
        self.waveform = int(waveform)
        self.band_limited = bool(band_limited)
        self._phase = float(phase) % 1.0
        if self._phase >= 1.0:  # a tiny negative phase: % rounded up to 1.0; process needs [0, 1)
            self._phase = 0.0
        # The sine's rotation recurrence: (_c, _s) = (cos, sin)(2 pi _phase) and (_cw, _sw) =
        # (cos, sin)(2 pi _increment) while _left > 0; _increment is the previous sample's. The
        # first sample takes the polynomial, the second restarts the recurrence (see process).
        self._c = 1.0
        self._s = 0.0
        self._cw = 1.0
        self._sw = 0.0
        self._increment = math.nan
        self._left = 0.0

    # ---------------------------------------------------------------- construction helpers
    @classmethod
    def sine(cls, frequency: float = 440.0, amplitude: float = 1.0, phase: float = 0.0) -> Oscillator:
        return cls(frequency, amplitude, SINE, phase=phase)

    @classmethod
    def saw(
        cls, frequency: float = 440.0, amplitude: float = 1.0, band_limited: bool = False, phase: float = 0.0
    ) -> Oscillator:
        return cls(frequency, amplitude, SAW, band_limited=band_limited, phase=phase)

    @classmethod
    def square(
        cls,
        frequency: float = 440.0,
        amplitude: float = 1.0,
        pulse_width: float = 0.5,
        band_limited: bool = False,
        phase: float = 0.0,
    ) -> Oscillator:
        return cls(frequency, amplitude, SQUARE, pulse_width, band_limited, phase)

    @classmethod
    def triangle(
        cls, frequency: float = 440.0, amplitude: float = 1.0, band_limited: bool = False, phase: float = 0.0
    ) -> Oscillator:
        return cls(frequency, amplitude, TRIANGLE, band_limited=band_limited, phase=phase)

    @classmethod
    def polyblep_saw(cls, frequency: float = 440.0, amplitude: float = 1.0) -> Oscillator:
        """Shorthand for ``saw(frequency, amplitude, band_limited=True)``."""
        return cls(frequency, amplitude, SAW, band_limited=True)

    @classmethod
    def polyblep_square(
        cls, frequency: float = 440.0, amplitude: float = 1.0, pulse_width: float = 0.5
    ) -> Oscillator:
        """Shorthand for ``square(frequency, amplitude, pulse_width, band_limited=True)``."""
        return cls(frequency, amplitude, SQUARE, pulse_width, True)

    @classmethod
    def polyblamp_triangle(cls, frequency: float = 440.0, amplitude: float = 1.0) -> Oscillator:
        """Shorthand for ``triangle(frequency, amplitude, band_limited=True)``."""
        return cls(frequency, amplitude, TRIANGLE, band_limited=True)

    def __repr__(self) -> str:
        name = {v: k for k, v in WAVEFORMS.items()}[self.waveform]
        bl = ", band_limited=True" if self.band_limited else ""
        return f"Oscillator.{name}({self.frequency!r}, {self.amplitude!r}{bl})"

    # ---------------------------------------------------------------- compiled code
    _sin_cycles = staticmethod(sin_cycles)  # sin(2 pi p) in plain arithmetic: exact in both engines
    _cos_cycles = staticmethod(cos_cycles)

    def process(self, sample_rate: float) -> None:
        increment = (self.frequency + self.fm) * (1.0 / sample_rate)
        p = self._phase
        if self.pm != 0.0:  # compiled away when pm is unconnected (a constant 0)
            p = p + self.pm
            if p >= 1.0 or p < 0.0:  # the phase itself is in [0, 1)
                p = p - math.floor(p)
                if p >= 1.0:
                    # p was a tiny negative number: p - floor(p) rounded up to exactly 1.0
                    p = 0.0
        waveform = self.waveform
        if waveform == SINE:
            # sin(2 pi p) by the rotation recurrence (see the module docstring): (_c, _s) is
            # (cos, sin)(2 pi phase), advanced each sample by the rotation (_cw, _sw) of 2 pi
            # increment. Common path: a countdown, two compares, six multiply-adds, straight
            # line; the polynomial only under a rare `if`. Written here rather than in
            # a helper returning the value, so that it stays statements the lanes pass can pack.
            if self.pm != 0.0:  # compiled away when pm is unconnected
                self._left = 0.0  # phase modulation: the polynomial of p, no recurrence
            if self._left <= 0.0 or increment != self._increment:
                # Rare: the polynomial's sine of the phase for this sample, and the recurrence
                # restarted from it when this sample's increment repeats the last one's and there
                # is no phase modulation (a steady sample after a change, or RESYNC_SAMPLES samples
                # since the last restart); otherwise (FM, a ramp, a new frequency, PM) the
                # polynomial again next sample, until the increment repeats. The helpers return
                # tuples, which the JIT always inlines: no call, so the node's state stays in
                # locals (a fault later in the block replays from the block's start).
                if increment == self._increment and self.pm == 0.0:
                    s, c, cw, sw = self._restart(p, increment)
                    self._cw = cw
                    self._sw = sw
                    self._left = RESYNC_SAMPLES
                else:
                    s, c = self._polynomial(p)
                    self._increment = increment
                    self._left = 0.0
                self._s = s
                self._c = c
            c = self._c
            value = self._s
            self._c = c * self._cw - value * self._sw
            self._s = value * self._cw + c * self._sw
            self._left = self._left - 1.0
        else:
            self._left = 0.0  # the sine's recurrence no longer follows the phase (waveform switches)
            # The other waveforms, as statements too. Band-limited, the residuals are zero except
            # within one increment of a discontinuity (2 samples of each a period): their test is
            # a rare `if`, the residual itself (a division) under it. The wraps are `x - floor(x)`
            # for an x within one cycle of [0, 1) (p is in [0, 1), the width in [0, 1]), written
            # as a select of `x + 1.0`, `x - 1.0` or `x`: the IEEE operation of subtracting
            # floor's -1, 1 or 0, so the same floats, without a float-to-int floor (which traps
            # on NaN) per sample. A NaN phase now gives NaN, as for the saw and the sine, where
            # `math.floor` raised.
            if waveform == SAW:
                value = 2.0 * p - 1.0
                if self.band_limited:
                    dt = self._blep_width(increment)
                    if p < dt or p > 1.0 - dt:  # near the wrap (never when dt is 0)
                        value = value - self._polyblep(p, dt)
            elif waveform == SQUARE:
                width = min(max(self.pulse_width, 0.0), 1.0)
                value = 1.0 if p < width else -1.0
                if self.band_limited:
                    dt = self._blep_width(increment)
                    # rising jump at phase 0, falling jump at phase `width`
                    fall = p - width  # in (-1, 1)
                    fall = fall + 1.0 if fall < 0.0 else fall
                    # one rare test for both jumps (a branch less per sample), then each jump's
                    rise_near = p < dt or p > 1.0 - dt
                    fall_near = fall < dt or fall > 1.0 - dt
                    if rise_near or fall_near:
                        if rise_near:
                            value = value + self._polyblep(p, dt)
                        if fall_near:
                            value = value - self._polyblep(fall, dt)
            else:
                q = p + 0.25  # in [0.25, 1.25)
                q = q - 1.0 if q >= 1.0 else q
                value = 1.0 - 4.0 * abs(q - 0.5)
                if self.band_limited:
                    dt = self._blep_width(increment)
                    # corners at phase 0.25 (slope +4 -> -4 per cycle) and 0.75 (-4 -> +4); the
                    # slope change per sample is 8 * dt. Distances wrapped into [-0.5, 0.5) cycles.
                    d1 = p - 0.25  # in [-0.25, 0.75)
                    d1 = d1 - 1.0 if d1 + 0.5 >= 1.0 else d1
                    d2 = p - 0.75  # in [-0.75, 0.25)
                    d2 = d2 + 1.0 if d2 + 0.5 < 0.0 else d2
                    if not (abs(d1) >= dt and abs(d2) >= dt):  # near a corner (or dt is NaN)
                        value = value + 8.0 * dt * (self._polyblamp(d2, dt) - self._polyblamp(d1, dt))
        self.output = self.amplitude * value
        phase = self._phase + increment
        # The usual wrap, for an increment of less than a cycle either way: with _phase in
        # [0, 1), phase is in (-1, 2), and two selects (branch-free, a short dependency chain
        # from sample to sample) bring it into [0, 1): the IEEE additions of floor's 1 or -1, so
        # the same floats as `phase - floor(phase)` (a tiny negative phase + 1.0 rounds to 1.0,
        # then 0.0, as below). floor only for a jump of a cycle or more (FM, a frequency beyond
        # the sample rate, NaN): a rare branch whose test reads only the increment, so the JIT's
        # sample loop tests it once for a run of samples with the same increment
        # (passes.fastpath), not every sample.
        phase = phase + 1.0 if phase < 0.0 else phase
        phase = phase - 1.0 if phase >= 1.0 else phase
        if not (increment > -1.0 and increment < 1.0):  # NaN too
            if phase >= 1.0 or phase < 0.0:
                phase = phase - math.floor(phase)
                if phase >= 1.0:
                    phase = 0.0
        self._phase = phase

    def _restart(self, p: float, increment: float) -> tuple[float, float, float, float]:
        # (sin, cos)(2 pi p) and (cos, sin)(2 pi increment): the recurrence afresh
        return (
            self._sin_cycles(p),
            self._cos_cycles(p),
            self._cos_cycles(increment),
            self._sin_cycles(increment),
        )

    def _polynomial(self, p: float) -> tuple[float, float]:
        # sin(2 pi p), and 0.0 for the cosine the recurrence will not use (keeps it bounded)
        return self._sin_cycles(p), 0.0

    def _blep_width(self, increment: float) -> float:
        # The residuals span one phase increment on each side of a discontinuity; the direction of
        # travel does not matter (they are symmetric smoothings of the step), only its size.
        return min(abs(increment), MAX_BLEP_WIDTH)

    def _polyblep(self, t: float, dt: float) -> float:
        # Two-sample PolyBLEP residual of a downward unit-2 jump at phase 0 (the saw's wrap), at
        # phase t in [0, 1] within one increment of the jump (t < dt or t > 1 - dt, so dt > 0):
        # the band-limited step minus the naive one.
        if t < dt:
            x = t / dt
            r = x + x - x * x - 1.0
        else:
            x = (t - 1.0) / dt
            r = x * x + x + x + 1.0
        return r

    def _polyblamp(self, distance: float, dt: float) -> float:
        # Two-sample PolyBLAMP residual (the integral of the PolyBLEP one) for a unit change of
        # slope per sample, at `distance` cycles from the corner: (1 - |x|)^3 / 6 with x in samples,
        # zero from one increment away on.
        r = 0.0
        if not dt <= 0.0:
            x = abs(distance) / dt
            if not x >= 1.0:
                y = 1.0 - x
                r = y * y * y / 6.0
        return r
