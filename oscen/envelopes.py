"""Envelope generators.

Timing convention (all stages): a stage is a straight line from its start level to its target
over ``N = round(time * sample_rate)`` samples (Python's ``round``: halves go to even). If the
stage starts at sample ``t`` its output is ``start + slope * k`` at sample ``t + k``, with
``slope = (target - start) / N`` computed once when the stage starts, for k = 0 .. N - 1; at
k = N the next stage starts on exactly ``target``: the first sample of a stage outputs its *start*
level and the target is reached exactly N samples later. That last sample is also the first of
the next stage, and the later stage owns it (so a zero-length decay makes the attack end directly
on the sustain level).

``process`` and the ``on_``/``_`` methods are compiled by the JIT: int/float state only.
"""

from __future__ import annotations

import math

from .graph.endpoints import EventInput, StreamOutput, ValueInput
from .graph.node import Node

# The stage is a float (whole numbers) like the rest of the state: comparing it is an f64 compare,
# so the per-sample select on it packs across voice lanes with the ramp it picks from.
IDLE = 0.0
ATTACK = 1.0
DECAY = 2.0
SUSTAIN = 3.0
RELEASE = 4.0

FOREVER = 2.0**62
"""The length of the untimed stages (sustain, idle): a count never reaches it (a float count stops
growing at 2**53), and dividing by it keeps the ramp finite."""

STAGE_NAMES = {IDLE: "idle", ATTACK: "attack", DECAY: "decay", SUSTAIN: "sustain", RELEASE: "release"}


class AdsrEnvelope(Node):
    """A linear ADSR envelope, retriggerable without clicks.

    Endpoints:
        attack, decay, release (values, seconds, defaults 0.01, 0.1, 0.3; negative = 0).
        sustain (value, level 0..1 relative to the peak, default 0.7).
        gate (event, one field ``velocity``): velocity > 0 starts a note, velocity <= 0 ends it.
        output (stream).

    Exact timings, for a gate-on event at sample t0 with sample rate sr
    (A = round(attack sr), D = round(decay sr), R = round(release sr)):

    * Note on: peak = min(velocity, 1) (velocities above 1 are clipped). The attack runs from the
      level the envelope had (0 for a fresh note, the current level for a retrigger: no click)
      to the peak. Output at t0 is that start level; at t0 + A it is the peak.
    * Decay: from the peak to ``sustain * peak``, reached at t0 + A + D.
    * Sustain: holds ``sustain * peak`` (following later changes of ``sustain``) while the note is on.
    * Note off at sample t1, from any stage: release from the level the envelope had at t1 - 1
      (output at t1 is that level) to 0, reached at t1 + R; then idle (output 0).

    Stage lengths are latched when a stage starts; changing ``attack`` during an attack affects
    the next one. Retriggering keeps the attack time (the slope adapts to the start level).
    """

    attack = ValueInput(0.01, range=(0.001, 10.0))
    decay = ValueInput(0.1, range=(0.001, 10.0))
    sustain = ValueInput(0.7, range=(0.0, 1.0))
    release = ValueInput(0.3, range=(0.001, 10.0))
    gate = EventInput()
    output = StreamOutput()

    def __init__(
        self, attack: float = 0.01, decay: float = 0.1, sustain: float = 0.7, release: float = 0.3
    ) -> None:
        self.attack = float(attack)
        self.decay = float(decay)
        self.sustain = float(sustain)
        self.release = float(release)
        self._stage = IDLE
        # Samples since the stage started, and the stage's length in samples (-1: to be latched by
        # the next process; FOREVER in sustain and idle). Floats holding whole numbers (exact up to
        # 2**53), so the per-sample ramp is all f64 arithmetic, which packs across voice lanes.
        self._count = 0.0
        self._length = FOREVER
        self._start = 0.0  # level at the stage's start
        self._target = 0.0  # level at the stage's end (idle: start = target = 0)
        self._slope = 0.0  # (target - start) / length: the level's step per sample
        self._peak = 0.0
        self._level = 0.0  # the level the last gate started from (see on_gate)
        self._sustain_seen = math.nan  # the sustain value the held level was computed for

    def __repr__(self) -> str:
        return f"AdsrEnvelope({self.attack!r}, {self.decay!r}, {self.sustain!r}, {self.release!r})"

    @property
    def stage(self) -> str:
        """The current stage's name (idle, attack, decay, sustain, release); for inspection."""
        return STAGE_NAMES[self._stage]

    # ---------------------------------------------------------------- compiled code
    # The per-sample path is straight-line f64 arithmetic, so voices run packed across SIMD
    # lanes; stage changes (a gate, the end of a timed stage) and a change of ``sustain`` are the
    # rare `if` in process. Every stage is a ramp: in idle start = slope = 0 gives 0.0, in sustain
    # start is the held level ``sustain * peak`` (recomputed when ``sustain`` changes) and slope 0,
    # so no per-stage branch or select is needed.
    def on_gate(self, velocity: float) -> None:
        if velocity > 0.0:
            self._peak = min(velocity, 1.0)
            self._stage = ATTACK
            self._target = self._peak
        else:
            if self._stage == IDLE:
                return
            self._stage = RELEASE
            self._target = 0.0
        # The handler has no sample rate: the stage length is latched by the next process call,
        # which comes at this same sample. The level it starts from is the last output: process
        # keeps no copy of it (a store per sample, and in voice lanes a value to carry), so it is
        # recomputed here from the ramp the last sample used, the same operations on the same
        # values (bit for bit); at count 0 (before any sample, or a second gate at one sample)
        # it is the level a previous gate or the initial state left.
        if self._count > 0.0:
            self._level = self._start + self._slope * (self._count - 1.0)
        self._start = self._level
        self._count = 0.0
        self._length = -1.0

    def process(self, sample_rate: float) -> None:
        # Rare: a stage ends at this sample, a gate started one, or the sustain level moved
        # (sustain is a ramp of slope 0 from the held level, updated when ``sustain`` changes).
        if self._count >= self._length or self.sustain != self._sustain_seen:
            self._change_stage(sample_rate)
        level = self._start + self._slope * self._count
        self._count = self._count + 1.0
        self.output = level

    def _change_stage(self, sample_rate: float) -> None:
        self._sustain_seen = self.sustain
        if self._stage == SUSTAIN:  # holds the live sustain level
            self._start = self._sustain_level()
            self._target = self._start
        if self._length < 0.0:
            self._length = self._stage_length(self._stage, sample_rate)
        # Leave every timed stage whose end falls on this sample (several if some have length 0);
        # sustain and idle last FOREVER, so the loop stops there.
        while self._count >= self._length:
            self._next_stage(sample_rate)
        self._slope = (self._target - self._start) / self._length

    def _stage_length(self, stage: float, sample_rate: float) -> float:
        if stage == ATTACK:
            seconds = self.attack
        elif stage == DECAY:
            seconds = self.decay
        elif stage == RELEASE:
            seconds = self.release
        else:
            seconds = 0.0
        return float(round(max(seconds, 0.0) * sample_rate))

    def _sustain_level(self) -> float:
        return min(max(self.sustain, 0.0), 1.0) * self._peak

    def _next_stage(self, sample_rate: float) -> None:
        stage = self._stage
        self._start = self._target
        self._count = 0.0
        if stage == ATTACK:
            self._stage = DECAY
            self._target = self._sustain_level()
            self._length = self._stage_length(DECAY, sample_rate)
        elif stage == DECAY:
            self._stage = SUSTAIN
            self._start = self._sustain_level()  # the live level (the decay's target was latched)
            self._target = self._start
            self._length = FOREVER
        else:
            self._stage = IDLE
            self._target = 0.0
            self._length = FOREVER
