"""Freeverb: Jezar at Dreampoint's public-domain Schroeder-Moorer reverb.

Per channel, eight lowpass-feedback comb filters in parallel feed four Schroeder allpasses in
series; the right channel's delays are 23 samples longer (the stereo spread), which decorrelates
the two outputs. Tunings are Jezar's (for 44.1 kHz), scaled by ``sample_rate / 44100``.

All 24 delay lines live in one float64 array, addressed through int64 arrays of start, end and
current indices, so the compiled code only indexes arrays. The lines are laid out when the node
first sees a sample rate (and again if it changes, clearing them).

``process`` and its helpers are compiled by the JIT.
"""

from __future__ import annotations

import numpy as np

from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node

COMB_TUNINGS = (1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617)
ALLPASS_TUNINGS = (556, 441, 341, 225)
STEREO_SPREAD = 23
TUNING_SAMPLE_RATE = 44100.0
NUM_COMBS = 8  # per channel
NUM_ALLPASSES = 4  # per channel

FIXED_GAIN = 0.015
SCALE_WET = 3.0
SCALE_DAMP = 0.4
SCALE_ROOM = 0.28
OFFSET_ROOM = 0.7
ALLPASS_FEEDBACK = 0.5
DENORMAL = 1.0e-30
"""Comb filter states and line values below this are flushed to zero, as Freeverb's undenormalise."""

MAX_SAMPLE_RATE = 192000.0
"""The lines are allocated for rates up to this; above it the tunings stop scaling."""


class Reverb(Node):
    """Stereo Freeverb.

    Endpoints:
        room_size (value, 0..1, default 0.5): comb feedback ``0.7 + 0.28 room_size`` (longer tail).
        damping (value, 0..1, default 0.5): high-frequency damping in the combs' feedback
            (one-pole lowpass coefficient ``0.4 damping``).
        wet (value, default 0.33): reverb level in Freeverb's units (scaled by 3, so 1/3 is the
            original's unity wet gain).
        dry (value, default 0): level of the input passed straight to the outputs, plain linear
            gain (Freeverb's x2 dry scaling is dropped so ``dry = 1`` passes the input unchanged).
        width (value, 0..1, default 1): stereo width; 0 sends the mono sum of both tails to both sides.
        input (stream): the mono input, or the left one if ``stereo_input``.
        input_right (stream): the right input; used only if the node was built with
            ``stereo_input=True`` (otherwise ``input`` feeds both channels).
        left, right (streams).

    As in Freeverb, the reverb is fed ``(in_left + in_right) * 0.015`` (a mono input counts twice,
    as if on both channels), and ``left = wet1 L + wet2 R + dry in_left``, ``right = wet1 R + wet2 L
    + dry in_right`` with ``wet1 = 3 wet (1 + width)/2``, ``wet2 = 3 wet (1 - width)/2``.
    """

    room_size = ValueInput(0.5, range=(0.0, 1.0))
    damping = ValueInput(0.5, range=(0.0, 1.0))
    wet = ValueInput(0.33, range=(0.0, 1.0))
    dry = ValueInput(0.0, range=(0.0, 1.0))
    width = ValueInput(1.0, range=(0.0, 1.0))
    input = StreamInput()
    input_right = StreamInput()
    left = StreamOutput()
    right = StreamOutput()

    def __init__(
        self,
        room_size: float = 0.5,
        damping: float = 0.5,
        wet: float = 0.33,
        dry: float = 0.0,
        width: float = 1.0,
        stereo_input: bool = False,
    ) -> None:
        self.room_size = float(room_size)
        self.damping = float(damping)
        self.wet = float(wet)
        self.dry = float(dry)
        self.width = float(width)
        self.stereo_input = bool(stereo_input)
        # Delay lengths in samples at 44.1 kHz: combs 0-7 left, 8-15 right; allpasses 0-3 left, 4-7 right.
        comb = list(COMB_TUNINGS) + [t + STEREO_SPREAD for t in COMB_TUNINGS]
        allpass = list(ALLPASS_TUNINGS) + [t + STEREO_SPREAD for t in ALLPASS_TUNINGS]
        self._comb_tuning = np.array(comb, dtype=np.int64)
        self._allpass_tuning = np.array(allpass, dtype=np.int64)
        self._max_scale = MAX_SAMPLE_RATE / TUNING_SAMPLE_RATE
        capacity = sum(int(t * self._max_scale) for t in comb + allpass) + len(comb) + len(allpass)
        self._buffer = np.zeros(capacity, dtype=np.float64)
        # Each line occupies buffer[start:end]; index is its read/write position (absolute, so the
        # per-sample code does no offset arithmetic). Laid out by _layout at the first sample.
        self._comb_start = np.zeros(2 * NUM_COMBS, dtype=np.int64)
        self._comb_end = np.ones(2 * NUM_COMBS, dtype=np.int64)
        self._comb_index = np.zeros(2 * NUM_COMBS, dtype=np.int64)
        self._comb_store = np.zeros(2 * NUM_COMBS, dtype=np.float64)  # each comb's lowpass state
        self._allpass_start = np.zeros(2 * NUM_ALLPASSES, dtype=np.int64)
        self._allpass_end = np.ones(2 * NUM_ALLPASSES, dtype=np.int64)
        self._allpass_index = np.zeros(2 * NUM_ALLPASSES, dtype=np.int64)
        self._sample_rate = 0.0  # the rate the lines are laid out for; 0: not yet

    def __repr__(self) -> str:
        return (
            f"Reverb(room_size={self.room_size!r}, damping={self.damping!r}, wet={self.wet!r}, "
            f"dry={self.dry!r}, width={self.width!r})"
        )

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        if sample_rate != self._sample_rate:
            self._layout(sample_rate)
        feedback = min(max(self.room_size, 0.0), 1.0) * SCALE_ROOM + OFFSET_ROOM
        damp1 = min(max(self.damping, 0.0), 1.0) * SCALE_DAMP
        damp2 = 1.0 - damp1
        in_left = self.input
        in_right = self.input_right if self.stereo_input else self.input
        x = (in_left + in_right) * FIXED_GAIN
        out_left = 0.0
        out_right = 0.0
        # Written out rather than looped: constant indices let the compiled code drop the index
        # checks and loop counters (about a quarter faster).
        out_left = out_left + self._comb(0, x, feedback, damp1, damp2)
        out_right = out_right + self._comb(8, x, feedback, damp1, damp2)
        out_left = out_left + self._comb(1, x, feedback, damp1, damp2)
        out_right = out_right + self._comb(9, x, feedback, damp1, damp2)
        out_left = out_left + self._comb(2, x, feedback, damp1, damp2)
        out_right = out_right + self._comb(10, x, feedback, damp1, damp2)
        out_left = out_left + self._comb(3, x, feedback, damp1, damp2)
        out_right = out_right + self._comb(11, x, feedback, damp1, damp2)
        out_left = out_left + self._comb(4, x, feedback, damp1, damp2)
        out_right = out_right + self._comb(12, x, feedback, damp1, damp2)
        out_left = out_left + self._comb(5, x, feedback, damp1, damp2)
        out_right = out_right + self._comb(13, x, feedback, damp1, damp2)
        out_left = out_left + self._comb(6, x, feedback, damp1, damp2)
        out_right = out_right + self._comb(14, x, feedback, damp1, damp2)
        out_left = out_left + self._comb(7, x, feedback, damp1, damp2)
        out_right = out_right + self._comb(15, x, feedback, damp1, damp2)
        out_left = self._allpass(0, out_left)
        out_right = self._allpass(4, out_right)
        out_left = self._allpass(1, out_left)
        out_right = self._allpass(5, out_right)
        out_left = self._allpass(2, out_left)
        out_right = self._allpass(6, out_right)
        out_left = self._allpass(3, out_left)
        out_right = self._allpass(7, out_right)
        width = min(max(self.width, 0.0), 1.0)
        wet = self.wet * SCALE_WET
        wet1 = wet * (0.5 * width + 0.5)
        wet2 = wet * (0.5 - 0.5 * width)
        self.left = out_left * wet1 + out_right * wet2 + in_left * self.dry
        self.right = out_right * wet1 + out_left * wet2 + in_right * self.dry

    def _comb(self, c: int, x: float, feedback: float, damp1: float, damp2: float) -> float:
        # Freeverb's comb: output the line's oldest sample; write back the input plus the
        # lowpassed output times the feedback. `_comb_index` is the absolute buffer index.
        index = int(self._comb_index[c])
        out = float(self._buffer[index])
        store = out * damp2 + float(self._comb_store[c]) * damp1
        if abs(store) < DENORMAL:
            store = 0.0
        self._comb_store[c] = store
        self._buffer[index] = x + store * feedback
        index = index + 1
        if index >= int(self._comb_end[c]):
            index = int(self._comb_start[c])
        self._comb_index[c] = index
        return out

    def _allpass(self, a: int, x: float) -> float:
        # Freeverb's (Schroeder) allpass with feedback 0.5: out = line - x, line <- x + 0.5 line.
        index = int(self._allpass_index[a])
        delayed = float(self._buffer[index])
        stored = x + delayed * ALLPASS_FEEDBACK
        if abs(stored) < DENORMAL:
            stored = 0.0
        self._buffer[index] = stored
        index = index + 1
        if index >= int(self._allpass_end[a]):
            index = int(self._allpass_start[a])
        self._allpass_index[a] = index
        return delayed - x

    def _layout(self, sample_rate: float) -> None:
        # Lay the lines out back to back for this sample rate and clear them.
        scale = sample_rate / TUNING_SAMPLE_RATE
        if scale > self._max_scale:
            scale = self._max_scale
        offset = 0
        for c in range(2 * NUM_COMBS):
            length = int(float(self._comb_tuning[c]) * scale)
            if length < 1:
                length = 1
            self._comb_start[c] = offset
            self._comb_index[c] = offset
            offset = offset + length
            self._comb_end[c] = offset
            self._comb_store[c] = 0.0
        for a in range(2 * NUM_ALLPASSES):
            length = int(float(self._allpass_tuning[a]) * scale)
            if length < 1:
                length = 1
            self._allpass_start[a] = offset
            self._allpass_index[a] = offset
            offset = offset + length
            self._allpass_end[a] = offset
        for i in range(offset):
            self._buffer[i] = 0.0
        self._sample_rate = sample_rate
