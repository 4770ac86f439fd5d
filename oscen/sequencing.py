"""Timing: a :class:`Clock` that emits tick events at a tempo, and a step :class:`Sequencer` they drive.

Both work in whole samples, the only time a graph has: an event is emitted from ``process`` and
reaches every connected event input at that same sample, in both engines. Their rules are exact
(stated in each class) so that a patch's timing can be computed in advance, and the tests do.

``process`` and the handlers are compiled by the JIT: the steps are fixed numpy float64 arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .graph.endpoints import EventInput, EventOutput, StreamOutput, ValueInput
from .graph.node import Node

__all__ = ["Clock", "Sequencer", "MIN_BPM", "midi_to_hz"]

MIN_BPM = 1.0
"""Tempos are clamped to at least this (and to at most one tick per sample)."""


def midi_to_hz(note: float) -> float:
    """12-tone equal temperament, A4 (note 69) = 440 Hz: the frequency the Sequencer outputs."""
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


class Clock(Node):
    """Emits ``tick`` events at ``bpm`` beats per minute, ``division`` ticks per beat.

    Timing rule: a tick lasts ``P = 60 fs / (bpm division)`` samples (not rounded). At a steady
    tempo, tick k (counted from 0 at the clock's first sample, or at the last ``reset``) is emitted
    at frame ``ceil(k P)`` after it: the first sample at or after its exact time, so the ticks never
    drift, whatever the block sizes. When the tempo changes, the next tick is due one new period
    after the exact time of the last tick, and the ticks after it follow at the new period; if
    that time has already passed, the tick is emitted at once and the following ones count from
    that sample. A ramp on ``bpm`` applies this rule at every sample.

    Endpoints:
        bpm (value, default 120): clamped to [1, 60 fs / division] (one tick per sample at most).
        reset (event): restart the count: tick 0 is emitted at this sample.
        tick (event output): fields (k, k mod division): the tick's index and its place in the
            beat (0 on the beat).
    Construction: ``division`` (ticks per beat, int >= 1, default 4: sixteenth notes in 4/4).
    """

    bpm = ValueInput(120.0)
    reset = EventInput()
    tick = EventOutput()

    def __init__(self, bpm: float = 120.0, division: int = 4) -> None:
        if isinstance(division, bool) or not isinstance(division, int) or division < 1:
            raise ValueError(f"Clock: division must be an int >= 1 (ticks per beat), got {division!r}")
        self.bpm = float(bpm)
        self.division = division
        self._frame = 0  # samples since the start (or the last reset)
        self._tick = 0  # index of the next tick
        self._anchor = 0.0  # exact time, in samples since the start, of tick _anchor_tick
        self._anchor_tick = 0
        self._period = math.nan  # samples per tick in use; NaN: not yet known

    def __repr__(self) -> str:
        return f"Clock({self.bpm!r}, division={self.division})"

    # ---------------------------------------------------------------- compiled code
    def on_reset(self) -> None:
        self._frame = 0
        self._tick = 0
        self._anchor = 0.0
        self._anchor_tick = 0

    def process(self, sample_rate: float) -> None:
        division = float(self.division)
        bpm = self.bpm
        if not bpm >= MIN_BPM:  # also NaN: a NaN period would poison the anchor for good
            bpm = MIN_BPM
        bpm = min(bpm, 60.0 * sample_rate / division)
        period = 60.0 * sample_rate / (bpm * division)
        if period != self._period:
            if self._tick > 0 and self._period == self._period:
                # re-anchor at the exact time of the last tick, measured with the old period
                last = self._tick - 1
                self._anchor = self._anchor + float(last - self._anchor_tick) * self._period
                self._anchor_tick = last
            self._period = period
        due = self._anchor + float(self._tick - self._anchor_tick) * period
        now = float(self._frame)
        if now >= due:
            k = self._tick
            self.tick.emit(float(k), float(k % self.division))
            self._tick = k + 1
            if now - due >= 1.0:  # late (the tempo rose past it): the next ticks count from now
                self._anchor = now
                self._anchor_tick = k
        self._frame = self._frame + 1


class Sequencer(Node):
    """A step sequencer: each ``clock`` event plays the next step of a looping pattern.

    Steps are MIDI note numbers (``None`` for a rest) with velocities (0 is a rest too). When a
    ``clock`` event arrives at frame n, the sequencer moves to the next step (the first clock plays
    step 0) and, at frame n:

    * if a note is still sounding, it is ended first (so a gate longer than a step retriggers);
    * a note step emits ``gate(velocity)`` and ``note(number, velocity)`` (number = step note +
      ``transpose``), sets ``frequency`` to the note's pitch (A4 = 440 Hz, 12-TET), and ends the
      note at frame ``n + max(1, round(gate_time fs))`` with ``gate(0)`` and ``note(number, 0)``.

    ``frequency`` holds the last note's pitch through rests (it starts at the first note's), so it
    can drive an oscillator's or a Pluck's frequency directly; ``step`` is the index of the step
    playing (-1 before the first clock). A ``reset`` event makes the next clock play step 0 (also
    a clock at the same sample, whichever comes first). Several clocks at one sample advance
    several steps and play the last.

    Endpoints:
        clock (event), reset (event); gate_time (value, seconds, default 0.1), transpose (value,
            semitones, default 0); gate (event output: velocity, 0 = note off), note (event output:
            note number, velocity); frequency (stream, Hz), step (stream).
    """

    clock = EventInput()
    reset = EventInput()
    gate_time = ValueInput(0.1)
    transpose = ValueInput(0.0)
    gate = EventOutput()
    note = EventOutput()
    frequency = StreamOutput()
    step = StreamOutput()

    def __init__(
        self,
        notes: Sequence[float | None],
        velocities: Sequence[float] | float = 1.0,
        gate_time: float = 0.1,
        transpose: float = 0.0,
    ) -> None:
        notes = list(notes)
        if not notes:
            raise ValueError("Sequencer: the pattern needs at least one step")
        if isinstance(velocities, (int, float)):
            velocities = [float(velocities)] * len(notes)
        try:
            velocities = [float(v) for v in velocities]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Sequencer: velocities must be numbers, one per step ({exc})") from None
        if len(velocities) != len(notes):
            raise ValueError(
                f"Sequencer: {len(notes)} notes but {len(velocities)} velocities (give one per step)"
            )
        for i, (n, v) in enumerate(zip(notes, velocities, strict=True)):
            if n is not None and not (isinstance(n, (int, float)) and math.isfinite(n)):
                raise ValueError(f"Sequencer: step {i}: note {n!r} is not a number or None")
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"Sequencer: step {i}: velocity {v!r} must be >= 0")
        self.gate_time = float(gate_time)
        self.transpose = float(transpose)
        self._notes = np.array([0.0 if n is None else float(n) for n in notes], dtype=np.float64)
        self._velocities = np.array(
            [0.0 if n is None else v for n, v in zip(notes, velocities, strict=True)], dtype=np.float64
        )
        sounding = [float(n) for n, v in zip(notes, velocities, strict=True) if n is not None and v > 0]
        self._frequency = midi_to_hz(sounding[0] if sounding else 69.0)
        self._clocks = 0  # clock events at this sample, not yet played
        self._next = 0  # the step the next clock plays
        self._current = -1
        self._open = False  # a note is sounding
        self._playing = 0.0  # its note number
        self._left = 0  # samples until its note off

    def __repr__(self) -> str:
        return f"Sequencer({len(self._notes)} steps, gate_time={self.gate_time!r})"

    # ---------------------------------------------------------------- compiled code
    def on_clock(self) -> None:
        self._clocks = self._clocks + 1

    def on_reset(self) -> None:
        self._next = 0
        if self._clocks > 0:
            self._clocks = 1

    def process(self, sample_rate: float) -> None:
        if self._clocks > 0:
            steps = len(self._notes)
            current = (self._next + self._clocks - 1) % steps
            self._next = (current + 1) % steps
            self._clocks = 0
            self._current = current
            if self._open:
                self._note_off()
            velocity = float(self._velocities[current])
            if velocity > 0.0:
                number = float(self._notes[current]) + self.transpose
                self.gate.emit(velocity)
                self.note.emit(number, velocity)
                self._open = True
                self._playing = number
                self._left = max(1, round(self.gate_time * sample_rate))
                self._frequency = 440.0 * math.pow(2.0, (number - 69.0) / 12.0)
        elif self._open:
            self._left = self._left - 1
            if self._left <= 0:
                self._note_off()
        self.frequency = self._frequency
        self.step = float(self._current)

    def _note_off(self) -> None:
        self.gate.emit(0.0)
        self.note.emit(self._playing, 0.0)
        self._open = False
