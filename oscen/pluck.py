"""A plucked string: Karplus-Strong with a tuned fractional loop, a decay time and a brightness.

``process`` and its helpers are compiled by the JIT: the string is a fixed numpy float64 array
indexed with a power-of-two mask, the excitation noise comes from the node's own 32-bit PCG
generator (the one of :mod:`oscen.noise`), so both engines produce the same pluck bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .filters import DENORMAL, delay_line_size
from .graph.endpoints import EventInput, StreamOutput, ValueInput
from .graph.node import Node
from .noise import INV_2_31, MASK32, PCG_INCREMENT, PCG_MULTIPLIER, PCG_OUTPUT_MULTIPLIER

__all__ = ["Pluck", "MAX_LOOP_GAIN"]

MAX_LOOP_GAIN = 0.999999
"""The per-period loop gain is clamped below 1 (the loop's DC gain): a decay longer than the loop
filter allows is shortened to what it allows, never turned into growth."""
DC_CUTOFF_HZ = 5.0
"""Corner of the DC blocker on the output (as :class:`oscen.filters.DcBlocker`): the loop keeps
whatever offset the burst leaves for as long as it keeps the fundamental, and the output drops it."""
MIN_PERIOD = 4.0
"""Shortest loop, in samples (highest pitch fs / 4): the 4-point interpolator needs room."""


class Pluck(Node):
    """Karplus-Strong plucked string, tuned to a fraction of a sample.

    A ``trigger`` event with a velocity > 0 fills one period of the string with a burst of noise,
    lowpassed (one-pole, ``a = 0.05 + 0.95 brightness``), its mean removed and its peak scaled to the
    velocity. Then, per sample::

        r = line[n - (P - 1)]                     (4-point Hermite, P = fs / frequency)
        y = rho (c r[n] + (1 - 2c) r[n-1] + c r[n-2])      line[n] = y, output = y

    The 3-tap loop filter is symmetric, so it delays every frequency by exactly one sample and the
    loop is exactly P samples long: the pitch is ``frequency`` (to the interpolator's tiny phase
    error). It is a lowpass, ``|L(w)| = 1 - 2c (1 - cos w)``, with ``c = 0.25 (1 - brightness)``:
    harmonics die faster than the fundamental, less so the brighter the string. The loop gain
    ``rho = 10^(-3 / (decay f0)) / |L(w0)|`` makes the fundamental fall 60 dB in ``decay``
    seconds; it is clamped to 0.999999 (the loop's gain at DC), which bounds the decay of high,
    dark notes.

    The output is ``y`` through a 5 Hz DC blocker (``c (y - y1) + R out1``, as
    :class:`oscen.filters.DcBlocker`): the loop's DC gain is nearly 1, so an offset left by the
    burst would otherwise outlast the note.

    A ``trigger`` with velocity 0 (a note off) damps the string: the loop gain is computed from
    ``release`` instead of ``decay`` until the next pluck.

    Endpoints:
        frequency (value, Hz, default 220): clamped to [min_frequency, fs / 4]; may be modulated
            (vibrato, glide) while the string rings.
        decay (value, seconds, default 2): T60 of the fundamental.
        brightness (value, 0 to 1, default 0.5): excitation colour and loop damping.
        release (value, seconds, default 0.1): T60 after a note off.
        trigger (event: velocity): > 0 plucks (peak = velocity), 0 damps.
        output (stream).
    Construction: ``seed`` of the noise, ``min_frequency`` (default 20 Hz: the string's length,
    at up to ``max_sample_rate``).
    """

    frequency = ValueInput(220.0)
    decay = ValueInput(2.0)
    brightness = ValueInput(0.5)
    release = ValueInput(0.1)
    trigger = EventInput()
    output = StreamOutput()

    def __init__(
        self,
        frequency: float = 220.0,
        decay: float = 2.0,
        brightness: float = 0.5,
        release: float = 0.1,
        seed: int = 0,
        min_frequency: float = 20.0,
        max_sample_rate: float = 96000.0,
    ) -> None:
        if not min_frequency > 0:
            raise ValueError(f"Pluck: min_frequency must be positive, got {min_frequency!r}")
        size = delay_line_size(1.0 / min_frequency, max_sample_rate)
        self.frequency = float(frequency)
        self.decay = float(decay)
        self.brightness = float(brightness)
        self.release = float(release)
        self.seed = int(seed)
        self.min_frequency = float(min_frequency)
        self._line = np.zeros(size, dtype=np.float64)
        self._mask = size - 1
        self._max_period = float(size - 4)
        self._write_at = 0
        self._state = (int(seed) * 2654435761 + 0x9E3779B9) & MASK32
        self._pending = -1.0  # velocity of a pluck to start at the next process; < 0: none
        self._damped = False
        self._r1 = 0.0
        self._r2 = 0.0
        self._c = 0.0
        self._rho = 0.0
        self._dc_r = 0.0  # pole of the output's DC blocker
        self._dc_x1 = 0.0
        self._dc_y1 = 0.0
        self._last_f = math.nan
        self._last_t60 = math.nan
        self._last_brightness = math.nan

    def __repr__(self) -> str:
        return (
            f"Pluck({self.frequency!r}, decay={self.decay!r}, brightness={self.brightness!r}, "
            f"release={self.release!r}, seed={self.seed})"
        )

    # ---------------------------------------------------------------- compiled code
    def on_trigger(self, velocity: float) -> None:
        if velocity > 0.0:
            self._pending = velocity  # the burst needs the sample rate: process does it
            self._damped = False
        else:
            self._damped = True

    def process(self, sample_rate: float) -> None:
        frequency = self.frequency
        if not frequency >= self.min_frequency:  # also NaN
            frequency = self.min_frequency
        period = min(max(sample_rate / frequency, MIN_PERIOD), self._max_period)
        brightness = min(max(self.brightness, 0.0), 1.0)
        if self._pending >= 0.0:
            self._excite(period, brightness, self._pending)
            self._pending = -1.0
        t60 = self.decay
        if self._damped:
            t60 = self.release
        f0 = sample_rate / period
        if f0 != self._last_f or t60 != self._last_t60 or brightness != self._last_brightness:
            self._last_f = f0
            self._last_t60 = t60
            self._last_brightness = brightness
            self._loop_coefficients(f0, t60, brightness, sample_rate)
        r = self._read(period - 1.0)
        c = self._c
        y = self._rho * (c * r + (1.0 - 2.0 * c) * self._r1 + c * self._r2)
        if abs(y) < DENORMAL:
            y = 0.0
        self._r2 = self._r1
        self._r1 = r
        w = self._write_at
        self._line[w] = y
        self._write_at = (w + 1) & self._mask
        out = 0.5 * (1.0 + self._dc_r) * (y - self._dc_x1) + self._dc_r * self._dc_y1
        if abs(out) < DENORMAL:
            out = 0.0
        self._dc_x1 = y
        self._dc_y1 = out
        self.output = out

    def _loop_coefficients(self, f0: float, t60: float, brightness: float, sample_rate: float) -> None:
        c = 0.25 * (1.0 - brightness)
        loss = 1.0 - 2.0 * c * (1.0 - math.cos(2.0 * math.pi * f0 / sample_rate))
        rho = 0.0  # a decay of 0 silences the string at once
        if t60 > 0.0:
            rho = min(math.pow(10.0, -3.0 / (t60 * f0)) / loss, MAX_LOOP_GAIN)
        self._c = c
        self._rho = rho
        self._dc_r = math.exp(-2.0 * math.pi * DC_CUTOFF_HZ / sample_rate)

    def _excite(self, period: float, brightness: float, velocity: float) -> None:
        # One period (and the interpolator's extra points) of lowpassed noise, mean removed, peak
        # scaled to the velocity, written behind the write position: the next reads play it.
        count = int(period) + 3
        mask = self._mask
        a = 0.05 + 0.95 * brightness
        level = 0.0
        total = 0.0
        for j in range(count):
            level = level + a * (self._uniform() - level)
            self._line[(self._write_at - 1 - j) & mask] = level
            total = total + level
        mean = total / float(count)
        peak = 0.0
        for j in range(count):
            i = (self._write_at - 1 - j) & mask
            v = self._line[i] - mean
            self._line[i] = v
            peak = max(peak, abs(v))
        scale = 0.0
        if peak > 0.0:
            scale = velocity / peak
        for j in range(count):
            i = (self._write_at - 1 - j) & mask
            self._line[i] = self._line[i] * scale
        self._r1 = 0.0
        self._r2 = 0.0

    def _uniform(self) -> float:
        # PCG RXS M XS 32 (as oscen.noise), in [-1, 1)
        state = (self._state * PCG_MULTIPLIER + PCG_INCREMENT) & MASK32
        self._state = state
        word = (((state >> ((state >> 28) + 4)) ^ state) * PCG_OUTPUT_MULTIPLIER) & MASK32
        return float((word >> 22) ^ word) * INV_2_31 - 1.0

    def _read(self, d: float) -> float:
        mask = self._mask
        position = float(self._write_at + self._mask + 1) - d
        i = int(position)
        frac = position - float(i)
        x0 = float(self._line[i & mask])
        x1 = float(self._line[(i + 1) & mask])
        xm1 = float(self._line[(i - 1) & mask])
        x2 = float(self._line[(i + 2) & mask])
        c1 = 0.5 * (x1 - xm1)
        c2 = xm1 - 2.5 * x0 + 2.0 * x1 - 0.5 * x2
        c3 = 0.5 * (x2 - xm1) + 1.5 * (x0 - x1)
        return ((c3 * frac + c2) * frac + c1) * frac + x0
