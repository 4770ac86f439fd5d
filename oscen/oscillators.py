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
(floats, ints, bools, ``math``, calls to the node's own methods). The sine is
:func:`oscen.sine.sin_cycles`, a polynomial in plain float arithmetic rather than ``math.sin``, so
every waveform computes the same floats, bit for bit, interpreted and compiled.
"""

from __future__ import annotations

import math

from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node
from .sine import sin_cycles

SINE = 0
SAW = 1
SQUARE = 2
TRIANGLE = 3

WAVEFORMS = {"sine": SINE, "saw": SAW, "square": SQUARE, "triangle": TRIANGLE}

MAX_BLEP_WIDTH = 0.5
"""The correction width (the phase increment, in cycles) is clamped here: above it (frequencies
beyond Nyquist) the two-sample residuals would overlap their own next discontinuity."""


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

    def process(self, sample_rate: float) -> None:
        increment = (self.frequency + self.fm) * (1.0 / sample_rate)
        p = self._phase + self.pm
        if p >= 1.0 or p < 0.0:  # only with phase modulation: the phase itself stays in [0, 1)
            p = p - math.floor(p)
            if p >= 1.0:
                # p was a tiny negative number: p - floor(p) rounded up to exactly 1.0
                p = 0.0
        waveform = self.waveform
        if waveform == SINE:
            value = self._sin_cycles(p)
        elif waveform == SAW:
            value = self._saw(p, increment)
        elif waveform == SQUARE:
            value = self._square(p, increment)
        else:
            value = self._triangle(p, increment)
        self.output = self.amplitude * value
        phase = self._phase + increment
        # Wrap with one subtraction in the usual case (a short dependency chain from sample to
        # sample); floor only when a large or negative increment (FM) jumps further.
        if phase >= 1.0:
            phase = phase - 1.0
        if phase >= 1.0 or phase < 0.0:
            phase = phase - math.floor(phase)
            if phase >= 1.0:
                phase = 0.0
        self._phase = phase

    def _blep_width(self, increment: float) -> float:
        # The residuals span one phase increment on each side of a discontinuity; the direction of
        # travel does not matter (they are symmetric smoothings of the step), only its size.
        dt = abs(increment)
        if dt > MAX_BLEP_WIDTH:
            dt = MAX_BLEP_WIDTH
        return dt

    def _polyblep(self, t: float, dt: float) -> float:
        # Two-sample PolyBLEP residual of a downward unit-2 jump at phase 0 (the saw's wrap),
        # evaluated at phase t in [0, 1): the band-limited step minus the naive one.
        if dt <= 0.0:
            return 0.0
        if t < dt:
            x = t / dt
            return x + x - x * x - 1.0
        if t > 1.0 - dt:
            x = (t - 1.0) / dt
            return x * x + x + x + 1.0
        return 0.0

    def _polyblamp(self, distance: float, dt: float) -> float:
        # Two-sample PolyBLAMP residual (the integral of the PolyBLEP one) for a unit change of
        # slope per sample, at `distance` cycles from the corner: (1 - |x|)^3 / 6 with x in samples.
        if dt <= 0.0:
            return 0.0
        x = abs(distance) / dt
        if x >= 1.0:
            return 0.0
        y = 1.0 - x
        return y * y * y / 6.0

    def _saw(self, p: float, increment: float) -> float:
        value = 2.0 * p - 1.0
        if self.band_limited:
            value = value - self._polyblep(p, self._blep_width(increment))
        return value

    def _square(self, p: float, increment: float) -> float:
        width = min(max(self.pulse_width, 0.0), 1.0)
        value = 1.0 if p < width else -1.0
        if self.band_limited:
            dt = self._blep_width(increment)
            # rising jump at phase 0, falling jump at phase `width`
            fall = p - width
            fall = fall - math.floor(fall)
            value = value + self._polyblep(p, dt) - self._polyblep(fall, dt)
        return value

    def _triangle(self, p: float, increment: float) -> float:
        q = p + 0.25
        q = q - math.floor(q)
        value = 1.0 - 4.0 * abs(q - 0.5)
        if self.band_limited:
            dt = self._blep_width(increment)
            # corners at phase 0.25 (slope +4 -> -4 per cycle) and 0.75 (-4 -> +4); the slope
            # change per sample is 8 * dt. Distances are wrapped into [-0.5, 0.5) cycles.
            d1 = p - 0.25
            d1 = d1 - math.floor(d1 + 0.5)
            d2 = p - 0.75
            d2 = d2 - math.floor(d2 + 0.5)
            value = value + 8.0 * dt * (self._polyblamp(d2, dt) - self._polyblamp(d1, dt))
        return value
