"""Noise sources: white (uniform or Gaussian) and pink, from a deterministic integer PRNG.

The generator is PCG "RXS M XS" with 32-bit state: a 32-bit LCG whose output goes through a
random-shift permutation. It needs no state wider than 32 bits and no product beyond 2^62, so
the compiled 64-bit integer arithmetic never overflows, and it is far better than a bare LCG or
xorshift for its size. Same seed, same noise: renders are reproducible.

``process`` and its helpers are compiled by the JIT: plain int/float arithmetic only.
"""

from __future__ import annotations

import math

from .graph.endpoints import StreamOutput, ValueInput
from .graph.node import Node

WHITE = 0
PINK = 1

COLORS = {"white": WHITE, "pink": PINK}

MASK32 = 0xFFFFFFFF
PCG_MULTIPLIER = 747796405
PCG_INCREMENT = 2891336453
PCG_OUTPUT_MULTIPLIER = 277803737
INV_2_31 = 1.0 / 2147483648.0
INV_2_32 = 1.0 / 4294967296.0
TWO_PI = 2.0 * math.pi

PINK_GAIN = 0.32759737130011274
"""1 / sqrt(sum h[n]^2) of Paul Kellet's filter: its output has the same RMS as the white noise
that drives it (computed from the filter's impulse response)."""


class Noise(Node):
    """White or pink noise.

    Endpoints:
        amplitude (value, default 1): scales the output. Uniform white noise lies in
            [-amplitude, amplitude) (RMS amplitude/sqrt(3)); Gaussian white noise has standard
            deviation ``amplitude``. Pink noise has the RMS of the white noise it filters.
        output (stream).

    Pink noise is white noise through Paul Kellet's "refined" filter (six one-pole sections plus
    a direct term, within +/-0.05 dB of -3 dB/octave from 9.2 Hz up at 44.1 kHz). Its poles are
    fixed, so at other sample rates the -3 dB/octave band scales with the rate (still pink over
    the audible range at 48 or 96 kHz, starting a little higher).

    Build with ``Noise.white(amplitude, seed, gaussian=False)`` or ``Noise.pink(amplitude, seed)``.
    """

    WHITE = WHITE
    PINK = PINK

    amplitude = ValueInput(1.0)
    output = StreamOutput()

    def __init__(
        self, amplitude: float = 1.0, color: int | str = WHITE, gaussian: bool = False, seed: int = 0
    ) -> None:
        if isinstance(color, str):
            if color not in COLORS:
                raise ValueError(f"unknown noise color {color!r}; choose one of {sorted(COLORS)}")
            color = COLORS[color]
        if color not in (WHITE, PINK):
            raise ValueError(f"unknown noise color {color!r}")
        self.amplitude = float(amplitude)
        self.color = int(color)
        self.gaussian = bool(gaussian)
        self.seed = int(seed)
        # Scramble the seed so nearby seeds start far apart in the LCG's sequence.
        self._state = (int(seed) * 2654435761 + 0x9E3779B9) & MASK32
        self._spare = 0.0  # Box-Muller makes two Gaussian numbers at a time
        self._has_spare = False
        self._b0 = 0.0
        self._b1 = 0.0
        self._b2 = 0.0
        self._b3 = 0.0
        self._b4 = 0.0
        self._b5 = 0.0
        self._b6 = 0.0

    @classmethod
    def white(cls, amplitude: float = 1.0, seed: int = 0, gaussian: bool = False) -> Noise:
        return cls(amplitude, WHITE, gaussian, seed)

    @classmethod
    def pink(cls, amplitude: float = 1.0, seed: int = 0, gaussian: bool = False) -> Noise:
        return cls(amplitude, PINK, gaussian, seed)

    def __repr__(self) -> str:
        color = "white" if self.color == WHITE else "pink"
        return f"Noise.{color}({self.amplitude!r}, seed={self.seed}, gaussian={self.gaussian})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        if self.gaussian:
            white = self._gaussian()
        else:
            white = self._uniform()
        if self.color == PINK:
            white = self._pink(white)
        self.output = self.amplitude * white

    def _next_u32(self) -> int:
        # PCG RXS M XS 32: LCG step, then a data-dependent shift, multiply and xorshift.
        state = (self._state * PCG_MULTIPLIER + PCG_INCREMENT) & MASK32
        self._state = state
        word = (((state >> ((state >> 28) + 4)) ^ state) * PCG_OUTPUT_MULTIPLIER) & MASK32
        return (word >> 22) ^ word

    def _uniform(self) -> float:
        # in [-1, 1)
        return float(self._next_u32()) * INV_2_31 - 1.0

    def _gaussian(self) -> float:
        # Box-Muller: standard normal; the second number of each pair is kept for the next call.
        if self._has_spare:
            self._has_spare = False
            return self._spare
        u1 = (float(self._next_u32()) + 1.0) * INV_2_32  # in (0, 1]: log is finite
        u2 = float(self._next_u32()) * INV_2_32
        radius = math.sqrt(-2.0 * math.log(u1))
        angle = TWO_PI * u2
        self._spare = radius * math.sin(angle)
        self._has_spare = True
        return radius * math.cos(angle)

    def _pink(self, white: float) -> float:
        # Paul Kellet's refined pink filter (music-dsp, 1999).
        self._b0 = 0.99886 * self._b0 + white * 0.0555179
        self._b1 = 0.99332 * self._b1 + white * 0.0750759
        self._b2 = 0.96900 * self._b2 + white * 0.1538520
        self._b3 = 0.86650 * self._b3 + white * 0.3104856
        self._b4 = 0.55000 * self._b4 + white * 0.5329522
        self._b5 = -0.7616 * self._b5 - white * 0.0168980
        pink = self._b0 + self._b1 + self._b2 + self._b3 + self._b4 + self._b5 + self._b6 + white * 0.5362
        self._b6 = white * 0.115926
        return pink * PINK_GAIN
