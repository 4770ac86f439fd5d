"""Modulation sources and shapers: ``Lfo``, ``SampleAndHold``, ``Slew``.

These run at audio rate like every node (there is no separate control rate), so an LFO can drive
any value input by connection and its output is exact at every sample.

``Lfo``'s phase runs in cycles in [0, 1), like ``Oscillator``'s; its frequency is either ``rate``
in Hz or, when ``bpm`` is positive, one cycle per note value ``division`` (in whole notes) at that
tempo: ``frequency = bpm / (240 * division)``, so a quarter note (0.25) at 120 bpm is 2 Hz.

The random shape uses a node-owned 32-bit xorshift generator (Marsaglia 2003, shifts 13/17/5),
masked to 32 bits so the compiled code's 64-bit ints never overflow: both engines draw the same
sequence from the same seed.

``process`` and the handlers are compiled by the JIT: floats, ints, ``math`` and helpers only.
"""

from __future__ import annotations

import math

from .graph.endpoints import EventInput, StreamInput, StreamOutput, ValueInput
from .graph.node import Node
from .random import RandomSource
from .sine import sin_cycles

__all__ = ["Lfo", "SampleAndHold", "Slew", "SHAPES"]

MASK32 = 0xFFFFFFFF
INV_2_31 = 1.0 / 2147483648.0

SINE = 0
TRIANGLE = 1
SAW = 2
RAMP = 3
SQUARE = 4
RANDOM = 5

SHAPES = {"sine": SINE, "triangle": TRIANGLE, "saw": SAW, "ramp": RAMP, "square": SQUARE, "random": RANDOM}

MIN_DIVISION = 1.0e-6
"""``division`` is clamped to at least this many whole notes (a zero would be an infinite rate)."""


class Lfo(RandomSource, Node):
    """A low-frequency oscillator with six shapes, a phase offset and tempo sync.

    Endpoints:
        rate (value, Hz, default 1): the frequency, when ``bpm`` is 0 or less.
        bpm (value, beats per minute, default 0): if positive, the LFO is tempo-synced and
            ``rate`` is ignored: one cycle per ``division`` at this tempo.
        division (value, whole notes, default 0.25): the synced cycle length as a note value:
            1 = a bar of 4/4, 0.25 = a quarter note, 0.375 = a dotted quarter, 1/12 = an eighth
            triplet. Period in samples = ``240 * division * sample_rate / bpm``.
        phase (value, cycles, default 0): added to the phase when reading the shape (a constant
            offset; it does not accumulate).
        depth (value, default 1), offset (value, default 0): ``output = offset + depth * shape``,
            so ``depth=0.5, offset=0.5`` gives a unipolar 0..1 LFO.
        reset (event, no fields): restarts the cycle at phase 0 on that sample (key sync).
        output (stream).

    Shapes at phase ``p`` (after ``phase`` is added), all bipolar in [-1, 1]:
        sine ``sin 2 pi p``; triangle 0 at p = 0, +1 at 0.25, -1 at 0.75; saw ``2p - 1`` (rising);
        ramp ``1 - 2p`` (falling); square +1 for p < 0.5, else -1; random: a new uniform value in
        [-1, 1) at every cycle start (stepped), from a seeded xorshift32 generator.
    """

    SHAPES = SHAPES

    rate = ValueInput(1.0)
    bpm = ValueInput(0.0)
    division = ValueInput(0.25)
    phase = ValueInput(0.0)
    depth = ValueInput(1.0)
    offset = ValueInput(0.0)
    reset = EventInput()
    output = StreamOutput()

    def __init__(
        self,
        rate: float = 1.0,
        shape: int | str = SINE,
        depth: float = 1.0,
        offset: float = 0.0,
        phase: float = 0.0,
        bpm: float = 0.0,
        division: float = 0.25,
        seed: int = 1,
    ) -> None:
        if isinstance(shape, str):
            if shape not in SHAPES:
                raise ValueError(f"Lfo: unknown shape {shape!r}; choose one of {sorted(SHAPES)}")
            shape = SHAPES[shape]
        if shape not in SHAPES.values():
            raise ValueError(f"Lfo: unknown shape {shape!r}; choose one of {sorted(SHAPES)}")
        if division <= 0:
            raise ValueError(f"Lfo: division must be a positive note value in whole notes, got {division!r}")
        self.rate = float(rate)
        self.shape = int(shape)
        self.depth = float(depth)
        self.offset = float(offset)
        self.phase = float(phase)
        self.bpm = float(bpm)
        self.division = float(division)
        self._phase = 0.0
        # xorshift has one fixed point, 0: any seed maps to a non-zero state
        self.rng_state = (int(seed) & MASK32) or 0x9E3779B9
        self._held = float(self.random_u32()) * INV_2_31 - 1.0

    def __repr__(self) -> str:
        name = {v: k for k, v in SHAPES.items()}[self.shape]
        return f"Lfo({self.rate!r}, {name!r}, bpm={self.bpm!r}, division={self.division!r})"

    def frequency(self) -> float:
        """The current frequency in Hz (from ``rate``, or from ``bpm`` and ``division``); Python only."""
        if self.bpm > 0.0:
            return self.bpm / (240.0 * max(self.division, MIN_DIVISION))
        return self.rate

    # ---------------------------------------------------------------- compiled code
    _sin_cycles = staticmethod(sin_cycles)  # sin(2 pi p) in plain arithmetic: exact in both engines

    def on_reset(self) -> None:
        self._phase = 0.0
        if self.shape == RANDOM:
            self._draw()

    def process(self, sample_rate: float) -> None:
        if self.bpm > 0.0:
            increment = self.bpm / (240.0 * max(self.division, MIN_DIVISION) * sample_rate)
        else:
            increment = self.rate / sample_rate
        p = self._phase + self.phase
        if p >= 1.0 or p < 0.0:
            p = p - math.floor(p)
            if p >= 1.0:
                p = 0.0
        self.output = self.offset + self.depth * self._shape(p)
        phase = self._phase + increment
        if phase >= 1.0 or phase < 0.0:
            phase = phase - math.floor(phase)
            if phase >= 1.0:
                phase = 0.0
            if self.shape == RANDOM:
                self._draw()
        self._phase = phase

    def _shape(self, p: float) -> float:
        shape = self.shape
        if shape == SINE:
            return self._sin_cycles(p)
        if shape == TRIANGLE:
            q = p + 0.25
            q = q - math.floor(q)
            return 1.0 - 4.0 * abs(q - 0.5)
        if shape == SAW:
            return 2.0 * p - 1.0
        if shape == RAMP:
            return 1.0 - 2.0 * p
        if shape == SQUARE:
            if p < 0.5:
                return 1.0
            return -1.0
        return self._held

    def _draw(self) -> None:
        self._held = float(self.random_u32()) * INV_2_31 - 1.0


class SampleAndHold(Node):
    """Samples ``input`` on a trigger and holds it until the next one.

    Endpoints:
        input (stream): the signal sampled.
        trigger (event, no fields): samples ``input`` at the event's sample.
        clock (stream): also samples when it rises through ``threshold`` (previous sample
            <= threshold < this sample), so a square LFO or a pulse can clock it.
        threshold (value, default 0).
        output (stream): the held value (0 before the first trigger). The sample taken at a
            trigger is output from that same sample on.
    """

    input = StreamInput()
    clock = StreamInput()
    threshold = ValueInput(0.0)
    trigger = EventInput()
    output = StreamOutput()

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = float(threshold)
        self._held = 0.0
        self._last_clock = 0.0

    def __repr__(self) -> str:
        return f"SampleAndHold(threshold={self.threshold!r})"

    # ---------------------------------------------------------------- compiled code
    def on_trigger(self) -> None:
        self._held = self.input  # a handler sees this sample's inputs

    def process(self, sample_rate: float) -> None:
        clock = self.clock
        if self._last_clock <= self.threshold and clock > self.threshold:
            self._held = self.input
        self._last_clock = clock
        self.output = self._held


class Slew(Node):
    """A slew limiter: the output follows the input at a bounded rate (portamento, smoothing).

    Endpoints:
        rise (value, seconds per unit, default 0.01): the time the output takes to rise by 1.0;
            the output rises by at most ``1 / (rise * sample_rate)`` per sample. 0 = instant.
        fall (value, seconds per unit, default 0.01): the same, falling.
        input (stream), output (stream).

    Linear (constant-rate) slewing: a step of height h is crossed in ``h * rise`` seconds, the
    classic analog slew limiter; it never overshoots.
    """

    rise = ValueInput(0.01)
    fall = ValueInput(0.01)
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, rise: float = 0.01, fall: float | None = None, initial: float = 0.0) -> None:
        self.rise = float(rise)
        self.fall = float(rise if fall is None else fall)
        self._value = float(initial)
        self._rise_time = math.nan  # the times the steps were computed for
        self._fall_time = math.nan
        self._up = 0.0  # largest step per sample; inf: instant
        self._down = 0.0

    def __repr__(self) -> str:
        return f"Slew(rise={self.rise!r}, fall={self.fall!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        if self.rise != self._rise_time or self.fall != self._fall_time:
            self._rise_time = self.rise
            self._fall_time = self.fall
            self._up = self._step(self.rise, sample_rate)
            self._down = self._step(self.fall, sample_rate)
        x = self.input
        y = self._value
        if x > y:
            y = min(x, y + self._up)
        elif x < y:
            y = max(x, y - self._down)
        self._value = y
        self.output = y

    def _step(self, seconds: float, sample_rate: float) -> float:
        if seconds > 0.0:
            return 1.0 / (seconds * sample_rate)
        return math.inf
