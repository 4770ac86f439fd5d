"""A fractional delay line with feedback.

The node reads its output from the line *before* writing the current input, and its delay is at
least one sample, so this sample's output never depends on this sample's input: it may close a
feedback loop in a graph (``breaks_feedback``).

``process`` and its helpers are compiled by the JIT: the line is a fixed numpy float64 array,
indexed with a power-of-two mask.
"""

from __future__ import annotations

import math

import numpy as np

from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node

MAX_FEEDBACK = 0.999
"""|feedback| is clamped below 1: the loop must lose energy to stay bounded."""
DENORMAL = 1.0e-30
"""Values written to the line below this magnitude are flushed to zero (subnormals are slow on x86)."""


class Delay(Node):
    """Delays its input by ``delay_time`` seconds (fractional), with internal feedback.

    Endpoints:
        delay_time (value, seconds, default 0.5): clamped to [1 sample, capacity].
        feedback (value, default 0): the output is added back into the line with this factor,
            so each repeat is ``feedback`` times the previous one; clamped to +/-0.999.
        input (stream), output (stream): the output is the delayed signal only (no dry path).

    Interpolation: 4-point, 3rd-order Hermite (Catmull-Rom) between line samples; for delays
    under 2 samples, whose fourth point would be the not-yet-written current input, linear. At
    integer delays both are exact.

    The line is allocated at construction, when the sample rate is not known yet: it holds
    ``max_delay`` seconds at up to ``max_sample_rate`` (default 96 kHz); at higher rates the
    longest delay shrinks accordingly (delays are clamped to what the line holds).
    """

    breaks_feedback = True

    delay_time = ValueInput(0.5)
    feedback = ValueInput(0.0, range=(-0.99, 0.99))
    input = StreamInput()
    output = StreamOutput()

    def __init__(
        self,
        delay_time: float = 0.5,
        feedback: float = 0.0,
        max_delay: float = 2.0,
        max_sample_rate: float = 96000.0,
    ) -> None:
        if not (max_delay > 0 and max_sample_rate > 0):
            raise ValueError("max_delay and max_sample_rate must be positive")
        self.delay_time = float(delay_time)
        self.feedback = float(feedback)
        self.max_delay = float(max_delay)
        # Room for the longest delay plus the interpolator's 3 extra points, rounded up to a power
        # of two so the read and write positions wrap with a mask.
        needed = int(math.ceil(max_delay * max_sample_rate)) + 4
        size = 1 << max(needed - 1, 1).bit_length()
        self._buffer = np.zeros(size, dtype=np.float64)
        self._mask = size - 1
        self._max_samples = float(size - 4)  # longest delay, in samples
        self._write = 0  # where this sample's input goes

    def __repr__(self) -> str:
        return f"Delay({self.delay_time!r}, feedback={self.feedback!r}, max_delay={self.max_delay!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        d = self.delay_time * sample_rate
        if d < 1.0:
            d = 1.0
        if d > self._max_samples:
            d = self._max_samples
        y = self._read(d)
        feedback = min(max(self.feedback, -MAX_FEEDBACK), MAX_FEEDBACK)
        w = self._write
        x = self.input + feedback * y
        if abs(x) < DENORMAL:
            x = 0.0
        self._buffer[w] = x
        self._write = (w + 1) & self._mask
        self.output = y

    def _read(self, d: float) -> float:
        # The sample written d samples ago (fractional), before this sample's write.
        mask = self._mask
        position = float(self._write + self._mask + 1) - d  # positive: d <= size
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
