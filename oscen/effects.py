"""Modulated-delay effects with internal LFOs: :class:`Chorus`, :class:`Flanger`, :class:`Phaser`.

Each takes a mono ``input`` and gives ``left`` and ``right`` outputs whose LFOs run
``stereo_phase`` of a cycle apart (a quarter by default), and their mean as ``output``. ``mix``
crossfades linearly from the dry input (0) to the wet signal (1): at mix 0 the outputs are the
input exactly.

The LFOs are sines (:func:`oscen.sine.sin_cycles`, plain arithmetic, no ``math`` call); ``phase``
(cycles, in [0, 1)) is where the left LFO starts, and each sample uses the phase of that sample,
then advances it by ``rate / fs``. A rate of 0 freezes the sweep, which turns the chorus and
flanger into fixed (feedback) combs and the phaser into a fixed allpass chain.

``process`` and its helpers are compiled by the JIT: the delay lines are one fixed numpy float64
array (left line, then right line), indexed with a power-of-two mask, as in :mod:`oscen.delay`.
"""

from __future__ import annotations

import math

import numpy as np

from .filters import DENORMAL, MAX_CUTOFF_RATIO, MIN_CUTOFF_HZ, delay_line_size
from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node
from .sine import sin_cycles

__all__ = ["Chorus", "Flanger", "ModulatedDelay", "Phaser", "MAX_FEEDBACK"]

MAX_FEEDBACK = 0.95
"""|feedback| of the flanger, chorus and phaser loops is clamped to this: the loop must lose energy."""


class ModulatedDelay(Node):
    """Base of :class:`Chorus` and :class:`Flanger`: a stereo delay swept by a sine LFO, with feedback.

    The delay of each channel, in seconds, is
    ``delay_time + depth (1 + sin(2 pi (phase + c stereo_phase))) / 2`` (c = 0 left, 1 right), so it
    sweeps between ``delay_time`` and ``delay_time + depth``; it is clamped to [1 sample,
    ``max_delay``]. Each line holds ``input + feedback * wet``; ``wet`` is read from the line
    (4-point Hermite interpolation, linear below 2 samples) before this sample's write, and
    ``left = (1 - mix) input + mix wet_left`` (likewise right).

    Endpoints:
        rate (value, Hz), depth (value, seconds), delay_time (value, seconds), feedback (value,
            clamped to +/-0.95), mix (value, 0 dry to 1 wet), input (stream);
        left, right, output (streams; output = (left + right) / 2).
    """

    rate = ValueInput(0.5)
    depth = ValueInput(0.002)
    delay_time = ValueInput(0.01)
    feedback = ValueInput(0.0)
    mix = ValueInput(0.5)
    input = StreamInput()
    left = StreamOutput()
    right = StreamOutput()
    output = StreamOutput()

    def __init__(
        self,
        rate: float,
        depth: float,
        delay_time: float,
        feedback: float,
        mix: float,
        stereo_phase: float = 0.25,
        phase: float = 0.0,
        max_delay: float = 0.05,
        max_sample_rate: float = 96000.0,
    ) -> None:
        size = delay_line_size(max_delay, max_sample_rate)
        self.rate = float(rate)
        self.depth = float(depth)
        self.delay_time = float(delay_time)
        self.feedback = float(feedback)
        self.mix = float(mix)
        self.stereo_phase = float(stereo_phase)
        self.max_delay = float(max_delay)
        self._lines = np.zeros(2 * size, dtype=np.float64)  # left line, then right line
        self._size = size
        self._mask = size - 1
        self._max_samples = float(size - 4)
        self._write_at = 0
        self._phase = float(phase) % 1.0

    def __repr__(self) -> str:
        return (
            f"{type(self).__qualname__}(rate={self.rate!r}, depth={self.depth!r}, "
            f"delay_time={self.delay_time!r}, feedback={self.feedback!r}, mix={self.mix!r})"
        )

    # ---------------------------------------------------------------- compiled code
    _sin_cycles = staticmethod(sin_cycles)  # the LFO: sin(2 pi p) in plain arithmetic (oscen.sine)

    def process(self, sample_rate: float) -> None:
        x = self.input
        phase = self._phase
        base = self.delay_time
        depth = self.depth
        wet_left = self._read(0, self._delay_samples(base, depth, phase, sample_rate))
        wet_right = self._read(
            self._size, self._delay_samples(base, depth, phase + self.stereo_phase, sample_rate)
        )
        feedback = min(max(self.feedback, -MAX_FEEDBACK), MAX_FEEDBACK)
        w = self._write_at
        self._lines[w] = self._flush(x + feedback * wet_left)
        self._lines[self._size + w] = self._flush(x + feedback * wet_right)
        self._write_at = (w + 1) & self._mask
        phase = phase + self.rate / sample_rate
        self._phase = phase - math.floor(phase)
        mix = self.mix
        left = (1.0 - mix) * x + mix * wet_left
        right = (1.0 - mix) * x + mix * wet_right
        self.left = left
        self.right = right
        self.output = 0.5 * (left + right)

    def _delay_samples(self, base: float, depth: float, phase: float, sample_rate: float) -> float:
        d = (base + depth * 0.5 * (1.0 + self._sin_cycles(phase))) * sample_rate
        if not d >= 1.0:  # also NaN
            d = 1.0
        return min(d, self._max_samples)

    def _flush(self, x: float) -> float:
        if abs(x) < DENORMAL:
            return 0.0
        return x

    def _read(self, offset: int, d: float) -> float:
        # The sample written d samples ago into the line starting at offset.
        mask = self._mask
        position = float(self._write_at + self._mask + 1) - d
        i = int(position)
        frac = position - float(i)
        x0 = float(self._lines[offset + (i & mask)])
        x1 = float(self._lines[offset + ((i + 1) & mask)])
        if d < 2.0:
            return x0 + frac * (x1 - x0)
        xm1 = float(self._lines[offset + ((i - 1) & mask)])
        x2 = float(self._lines[offset + ((i + 2) & mask)])
        c1 = 0.5 * (x1 - xm1)
        c2 = xm1 - 2.5 * x0 + 2.0 * x1 - 0.5 * x2
        c3 = 0.5 * (x2 - xm1) + 1.5 * (x0 - x1)
        return ((c3 * frac + c2) * frac + c1) * frac + x0


class Chorus(ModulatedDelay):
    """Stereo chorus: a copy of the input delayed 10 to 14 ms (by default), slowly swept, mixed in.

    Defaults: rate 0.8 Hz, depth 4 ms, delay_time 10 ms, feedback 0, mix 0.5, the right LFO a
    quarter cycle behind the left. The lines hold 50 ms (``max_delay``). See
    :class:`ModulatedDelay` for the endpoints and the exact delay law.
    """

    def __init__(
        self,
        rate: float = 0.8,
        depth: float = 0.004,
        delay_time: float = 0.01,
        mix: float = 0.5,
        feedback: float = 0.0,
        stereo_phase: float = 0.25,
        phase: float = 0.0,
        max_delay: float = 0.05,
        max_sample_rate: float = 96000.0,
    ) -> None:
        super().__init__(rate, depth, delay_time, feedback, mix, stereo_phase, phase, max_delay, max_sample_rate)


class Flanger(ModulatedDelay):
    """Stereo flanger: a short swept delay (0.5 to 5.5 ms by default) with feedback, mixed in.

    The comb's notches sweep; feedback sharpens them (negative feedback moves the peaks). Defaults:
    rate 0.25 Hz, depth 5 ms, delay_time 0.5 ms, feedback 0.5, mix 0.5. The lines hold 20 ms. See
    :class:`ModulatedDelay` for the endpoints and the exact delay law.
    """

    def __init__(
        self,
        rate: float = 0.25,
        depth: float = 0.005,
        delay_time: float = 0.0005,
        feedback: float = 0.5,
        mix: float = 0.5,
        stereo_phase: float = 0.25,
        phase: float = 0.0,
        max_delay: float = 0.02,
        max_sample_rate: float = 96000.0,
    ) -> None:
        super().__init__(rate, depth, delay_time, feedback, mix, stereo_phase, phase, max_delay, max_sample_rate)


class Phaser(Node):
    """Stereo phaser: a chain of first-order allpass stages whose break frequency an LFO sweeps.

    Each stage is the TPT allpass ``H(s) = (1 - s) / (1 + s)`` (s normalized to the break
    frequency fc), bilinear-transformed with prewarping at fc: with g = tan(pi fc / fs),
    ``H(z) = ((g - 1) + (g + 1) z^-1) / ((g + 1) + (g - 1) z^-1)``. The break frequency sweeps
    exponentially: ``fc = min_frequency (max_frequency / min_frequency)^((1 + sin(2 pi phase)) / 2)``.

    ``wet = A(z)^stages (input + feedback wet[n-1])`` and ``left = (1 - mix) input + mix wet``. At
    mix 0.5 and feedback 0 the outputs have notches where the chain's phase is an odd multiple of
    pi, at ``f_m = (fs / pi) atan(g tan((2m + 1) pi / (2 stages)))``, m = 0 .. stages/2 - 1: for 4
    stages at 0.414 and 2.414 fc (below fs / 2); they sweep with fc between the values for
    min_frequency and max_frequency.

    Endpoints:
        rate (value, Hz, default 0.5), min_frequency and max_frequency (values, Hz, defaults 200
            and 4000; clamped to [0.01 Hz, 0.49 fs]), feedback (value, default 0, clamped to +/-0.95),
        mix (value, default 0.5), input (stream); left, right, output (streams).
    Construction: ``stages`` (even, 2 to 12, default 4), ``stereo_phase`` (default 0.25 cycle),
    ``phase`` (the left LFO's starting phase, cycles).
    """

    rate = ValueInput(0.5)
    min_frequency = ValueInput(200.0)
    max_frequency = ValueInput(4000.0)
    feedback = ValueInput(0.0)
    mix = ValueInput(0.5)
    input = StreamInput()
    left = StreamOutput()
    right = StreamOutput()
    output = StreamOutput()

    def __init__(
        self,
        stages: int = 4,
        rate: float = 0.5,
        min_frequency: float = 200.0,
        max_frequency: float = 4000.0,
        feedback: float = 0.0,
        mix: float = 0.5,
        stereo_phase: float = 0.25,
        phase: float = 0.0,
    ) -> None:
        if stages not in range(2, 13, 2):
            raise ValueError(f"Phaser: stages must be an even number from 2 to 12, got {stages!r}")
        self.stages = int(stages)
        self.rate = float(rate)
        self.min_frequency = float(min_frequency)
        self.max_frequency = float(max_frequency)
        self.feedback = float(feedback)
        self.mix = float(mix)
        self.stereo_phase = float(stereo_phase)
        self._states = np.zeros(2 * self.stages, dtype=np.float64)  # left stages, then right stages
        self._phase = float(phase) % 1.0
        self._wet_left = 0.0
        self._wet_right = 0.0

    def __repr__(self) -> str:
        return (
            f"Phaser({self.stages}, rate={self.rate!r}, min_frequency={self.min_frequency!r}, "
            f"max_frequency={self.max_frequency!r}, feedback={self.feedback!r}, mix={self.mix!r})"
        )

    # ---------------------------------------------------------------- compiled code
    _sin_cycles = staticmethod(sin_cycles)  # the LFO: sin(2 pi p) in plain arithmetic (oscen.sine)

    def process(self, sample_rate: float) -> None:
        x = self.input
        phase = self._phase
        feedback = min(max(self.feedback, -MAX_FEEDBACK), MAX_FEEDBACK)
        top = MAX_CUTOFF_RATIO * sample_rate
        low = min(max(self.min_frequency, MIN_CUTOFF_HZ), top)
        span = math.log(min(max(self.max_frequency, MIN_CUTOFF_HZ), top) / low)
        g_left = self._stage_gain(low, span, phase, sample_rate)
        g_right = self._stage_gain(low, span, phase + self.stereo_phase, sample_rate)
        wet_left = self._chain(0, x + feedback * self._wet_left, g_left)
        wet_right = self._chain(self.stages, x + feedback * self._wet_right, g_right)
        self._wet_left = wet_left
        self._wet_right = wet_right
        phase = phase + self.rate / sample_rate
        self._phase = phase - math.floor(phase)
        mix = self.mix
        left = (1.0 - mix) * x + mix * wet_left
        right = (1.0 - mix) * x + mix * wet_right
        self.left = left
        self.right = right
        self.output = 0.5 * (left + right)

    def _stage_gain(self, low: float, span: float, phase: float, sample_rate: float) -> float:
        # G = g / (1 + g) of the TPT one-pole at this sample's break frequency; span = ln(high / low)
        # (exp of a product: math.pow costs six times as much in compiled code)
        fc = low * math.exp(span * 0.5 * (1.0 + self._sin_cycles(phase)))
        g = math.tan(math.pi * fc / sample_rate)
        return g / (1.0 + g)

    def _chain(self, offset: int, u: float, big_g: float) -> float:
        for i in range(self.stages):
            s = float(self._states[offset + i])
            v = (u - s) * big_g
            lp = v + s
            s = lp + v
            if abs(s) < DENORMAL:
                s = 0.0
            self._states[offset + i] = s
            u = 2.0 * lp - u  # allpass = lowpass - highpass
        return u
