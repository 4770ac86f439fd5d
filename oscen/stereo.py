"""Stereo placement: ``Panner`` (equal-power) and ``StereoWidth`` (mid/side).

Both have two stream outputs, ``left`` and ``right``; ``graph.set_output(p.left, p.right)`` makes a
stereo graph (blocks of shape ``(2, n)``).

``process`` is compiled by the JIT. The panner keeps its two gains as state and recomputes them
only when ``pan`` changes, so a fixed pan costs no trigonometry per sample.
"""

from __future__ import annotations

import math

from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node

__all__ = ["Panner", "StereoWidth"]

QUARTER_PI = 0.25 * math.pi


class Panner(Node):
    """Places a mono input in the stereo field with the equal-power (sine/cosine) law.

    Endpoints:
        pan (value, -1..1, default 0): -1 hard left, 0 centre, +1 hard right; clamped.
        input (stream).
        left, right (streams): ``input * cos(theta)`` and ``input * sin(theta)`` with
            ``theta = (pan + 1) * pi / 4``.

    ``cos^2 + sin^2 = 1``: the summed power ``left^2 + right^2`` equals ``input^2`` at every pan
    position, so a source moving across the field keeps its loudness; at the centre each side is
    ``1/sqrt(2)``, -3.01 dB.
    """

    pan = ValueInput(0.0)
    input = StreamInput()
    left = StreamOutput()
    right = StreamOutput()

    def __init__(self, pan: float = 0.0) -> None:
        self.pan = float(pan)
        self._pan = math.nan  # the pan the gains were computed for (NaN: not yet)
        self._gain_left = 0.0
        self._gain_right = 0.0

    def __repr__(self) -> str:
        return f"Panner({self.pan!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        pan = self.pan
        if pan != self._pan:  # also true for the NaN initial value
            self._pan = pan
            theta = (min(max(pan, -1.0), 1.0) + 1.0) * QUARTER_PI
            self._gain_left = math.cos(theta)
            self._gain_right = math.sin(theta)
        x = self.input
        self.left = x * self._gain_left
        self.right = x * self._gain_right


class StereoWidth(Node):
    """Narrows or widens a stereo signal by scaling its side (L - R) component.

    Endpoints:
        width (value, default 1, >= 0): 0 = mono (both outputs the mid), 1 = unchanged,
            2 = side doubled; negative values are clamped to 0.
        input (stream): the left input.  input_right (stream): the right input.
        left, right (streams).

    ``mid = (L + R) / 2``, ``side = width * (L - R) / 2``, ``left = mid + side``,
    ``right = mid - side``: the mid (the mono sum) is never changed, only the side.
    """

    width = ValueInput(1.0)
    input = StreamInput()
    input_right = StreamInput()
    left = StreamOutput()
    right = StreamOutput()

    def __init__(self, width: float = 1.0) -> None:
        self.width = float(width)

    def __repr__(self) -> str:
        return f"StereoWidth({self.width!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        # mid + side and mid - side, regrouped per input so that width 1 is exactly the identity
        # (left * 1 + right * 0) and width 0 exactly the same mono sum on both sides
        half_width = 0.5 * max(self.width, 0.0)
        direct = 0.5 + half_width
        cross = 0.5 - half_width
        left = self.input
        right = self.input_right
        self.left = direct * left + cross * right
        self.right = cross * left + direct * right
