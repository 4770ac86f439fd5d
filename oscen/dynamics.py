"""Dynamics: ``EnvelopeFollower``, ``Compressor`` and a look-ahead brickwall ``Limiter``.

Time constants follow one convention throughout: a one-pole smoother with time ``t`` seconds has
the coefficient ``a = exp(-1 / (t * sample_rate))`` and covers ``1 - 1/e`` (63.2 %) of a step in
``t`` seconds. Coefficients are recomputed only when a time parameter changes.

The compressor is the feed-forward, log-domain design of Giannoulis, Massberg and Reiss, "Digital
Dynamic Range Compressor Design: A Tutorial and Analysis" (JAES 60(6), 2012): a static gain
computer with a quadratic soft knee, then a "smooth branching" peak detector on the gain
reduction in dB (attack when the reduction grows, release when it shrinks). Working on the
reduction in dB keeps the attack and release times independent of the level.

The limiter delays the audio by its look-ahead and computes its gain from the samples still to
come, so that the gain is already down when a peak arrives: a sliding-window minimum of the gain
each sample needs (a monotone queue in two fixed arrays, O(1) per sample), smoothed by an
exponential release and then by a moving average over the look-ahead. Each averaged value is at
most the need of the delayed sample, so the average is too: the output never exceeds the ceiling.

``process`` and its helpers are compiled by the JIT (fixed numpy arrays, floats and ints).
"""

from __future__ import annotations

import math

import numpy as np

from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node

__all__ = ["Compressor", "EnvelopeFollower", "Limiter", "MODES", "static_curve_db"]

PEAK = 0
RMS = 1
MODES = {"peak": PEAK, "rms": RMS}

FLOOR_DB = -240.0
"""Levels are floored here before taking logarithms (silence is -240 dB, not -inf)."""
FLOOR = 1.0e-12
LOG10_TO_DB = 20.0
DB_TO_LN = math.log(10.0) / 20.0


def _coefficient(seconds: float, sample_rate: float) -> float:
    """exp(-1 / (seconds * sample_rate)); 0 (instant) for times of zero or less (Python only)."""
    if seconds <= 0.0:
        return 0.0
    return math.exp(-1.0 / (seconds * sample_rate))


class EnvelopeFollower(Node):
    """The amplitude envelope of its input: peak or RMS, with separate attack and release.

    Endpoints:
        attack (value, seconds, default 0.01), release (value, seconds, default 0.1): one-pole
            time constants (63 % of a step); 0 = instant.
        input (stream), output (stream): the envelope, >= 0.

    ``mode="peak"`` smooths ``|x|``; ``mode="rms"`` smooths ``x^2`` and outputs its square root
    (a sine of amplitude A settles at A / sqrt 2 with slow times). Attack applies while the
    level is above the envelope, release while below.
    """

    attack = ValueInput(0.01)
    release = ValueInput(0.1)
    input = StreamInput()
    output = StreamOutput()

    def __init__(self, attack: float = 0.01, release: float = 0.1, mode: int | str = PEAK) -> None:
        if isinstance(mode, str):
            if mode not in MODES:
                raise ValueError(f"EnvelopeFollower: unknown mode {mode!r}; choose one of {sorted(MODES)}")
            mode = MODES[mode]
        if mode not in MODES.values():
            raise ValueError(f"EnvelopeFollower: unknown mode {mode!r}; choose one of {sorted(MODES)}")
        self.attack = float(attack)
        self.release = float(release)
        self.mode = int(mode)
        self._envelope = 0.0
        self._attack_time = math.nan  # the times the coefficients were computed for
        self._release_time = math.nan
        self._attack_coef = 0.0
        self._release_coef = 0.0

    def __repr__(self) -> str:
        name = {v: k for k, v in MODES.items()}[self.mode]
        return f"EnvelopeFollower({self.attack!r}, {self.release!r}, {name!r})"

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        if self.attack != self._attack_time or self.release != self._release_time:
            self._attack_time = self.attack
            self._release_time = self.release
            self._attack_coef = self._coef(self.attack, sample_rate)
            self._release_coef = self._coef(self.release, sample_rate)
        x = self.input
        if self.mode == RMS:
            level = x * x
        else:
            level = abs(x)
        env = self._envelope
        if level > env:
            env = level + self._attack_coef * (env - level)
        else:
            env = level + self._release_coef * (env - level)
        self._envelope = env
        if self.mode == RMS:
            self.output = math.sqrt(env)
        else:
            self.output = env

    def _coef(self, seconds: float, sample_rate: float) -> float:
        if seconds <= 0.0:
            return 0.0
        return math.exp(-1.0 / (seconds * sample_rate))


def static_curve_db(level_db: float, threshold: float, ratio: float, knee: float) -> float:
    """The compressor's static output level in dB for an input level in dB (Giannoulis et al.,
    eq. 4): unity below the knee, ``threshold + (x - threshold) / ratio`` above it, and a quadratic
    joining the two over ``knee`` dB centred on the threshold. Python, for reference and plots."""
    over = level_db - threshold
    if 2.0 * over < -knee:
        return level_db
    if knee > 0.0 and 2.0 * abs(over) <= knee:
        return level_db + (1.0 / ratio - 1.0) * (over + knee / 2.0) ** 2 / (2.0 * knee)
    return threshold + over / ratio


class Compressor(Node):
    """A feed-forward compressor with soft knee, attack, release, make-up gain and a sidechain.

    Endpoints:
        threshold (value, dB, default -20), ratio (value, default 4; >= 1, 1 = no compression),
        knee (value, dB, default 6; 0 = hard knee), attack (value, seconds, default 0.005),
        release (value, seconds, default 0.1), makeup (value, dB, default 0).
        input (stream): the signal compressed.
        sidechain (stream): the detector's input when built with ``external_sidechain=True``
            (ducking under a kick drum, de-essing with a filtered copy); otherwise unused and the
            detector listens to ``input``.
        output (stream).
        gain_reduction (stream, dB >= 0): the smoothed reduction applied (for metering).

    Per sample: ``x_dB = 20 log10 |detector|`` (floored at -240 dB), the static curve
    ``y_dB`` (:func:`static_curve_db`), reduction ``c = x_dB - y_dB``, smoothed with the attack
    coefficient when it grows and the release one when it shrinks, then
    ``output = input * 10^((makeup - c_smoothed) / 20)``. For a steady level the output level is
    exactly the static curve plus make-up.
    """

    threshold = ValueInput(-20.0)
    ratio = ValueInput(4.0)
    knee = ValueInput(6.0)
    attack = ValueInput(0.005)
    release = ValueInput(0.1)
    makeup = ValueInput(0.0)
    input = StreamInput()
    sidechain = StreamInput()
    output = StreamOutput()
    gain_reduction = StreamOutput()

    def __init__(
        self,
        threshold: float = -20.0,
        ratio: float = 4.0,
        attack: float = 0.005,
        release: float = 0.1,
        knee: float = 6.0,
        makeup: float = 0.0,
        external_sidechain: bool = False,
    ) -> None:
        self.threshold = float(threshold)
        self.ratio = float(ratio)
        self.attack = float(attack)
        self.release = float(release)
        self.knee = float(knee)
        self.makeup = float(makeup)
        self.external_sidechain = bool(external_sidechain)
        self._reduction = 0.0  # smoothed gain reduction, dB
        self._attack_time = math.nan
        self._release_time = math.nan
        self._attack_coef = 0.0
        self._release_coef = 0.0

    def __repr__(self) -> str:
        return (
            f"Compressor(threshold={self.threshold!r}, ratio={self.ratio!r}, attack={self.attack!r}, "
            f"release={self.release!r}, knee={self.knee!r})"
        )

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        if self.attack != self._attack_time or self.release != self._release_time:
            self._attack_time = self.attack
            self._release_time = self.release
            self._attack_coef = self._coef(self.attack, sample_rate)
            self._release_coef = self._coef(self.release, sample_rate)
        x = self.input
        if self.external_sidechain:
            detector = self.sidechain
        else:
            detector = x
        level_db = LOG10_TO_DB * math.log10(max(abs(detector), FLOOR))
        target = level_db - self._curve(level_db)
        c = self._reduction
        if target > c:
            c = target + self._attack_coef * (c - target)
        else:
            c = target + self._release_coef * (c - target)
        self._reduction = c
        self.gain_reduction = c
        self.output = x * math.exp((self.makeup - c) * DB_TO_LN)

    def _curve(self, level_db: float) -> float:
        threshold = self.threshold
        ratio = max(self.ratio, 1.0)
        knee = max(self.knee, 0.0)
        over = level_db - threshold
        if 2.0 * over < -knee:
            return level_db
        if knee > 0.0 and 2.0 * abs(over) <= knee:
            k = over + 0.5 * knee
            return level_db + (1.0 / ratio - 1.0) * k * k / (2.0 * knee)
        return threshold + over / ratio

    def _coef(self, seconds: float, sample_rate: float) -> float:
        if seconds <= 0.0:
            return 0.0
        return math.exp(-1.0 / (seconds * sample_rate))


class Limiter(Node):
    """A look-ahead brickwall limiter: the output never exceeds ``ceiling``.

    A brickwall limiter is a compressor with an infinite ratio and a hard knee, so it has neither
    parameter; its attack is the look-ahead. For gentler limiting use :class:`Compressor` with a
    high ratio (then peaks shorter than its attack get through).

    Endpoints:
        ceiling (value, dB, default -1): the largest output magnitude, ``10^(ceiling/20)``.
        release (value, seconds, default 0.05): time constant of the gain's recovery.
        input (stream), output (stream): the input delayed by the look-ahead, limited.
        sidechain (stream): the detector's input with ``external_sidechain=True`` (then the
            ceiling holds for the sidechain's level, not the input's).
        gain_reduction (stream, dB >= 0).

    ``lookahead`` (seconds, construction only, default 5 ms) is both the attack time and the
    latency: ``round(lookahead * sample_rate)`` samples, see :meth:`latency`. The gain falls
    smoothly over the look-ahead before a peak (a moving average, so no click) and recovers with
    ``release``. Arrays are allocated for ``lookahead`` at up to ``max_sample_rate`` (192 kHz).
    Lowering ``ceiling`` takes effect at once: for one look-ahead the gains already queued were
    computed for the old ceiling, and the output is clipped to the new one meanwhile.
    """

    ceiling = ValueInput(-1.0)
    release = ValueInput(0.05)
    input = StreamInput()
    sidechain = StreamInput()
    output = StreamOutput()
    gain_reduction = StreamOutput()

    def __init__(
        self,
        ceiling: float = -1.0,
        release: float = 0.05,
        lookahead: float = 0.005,
        external_sidechain: bool = False,
        max_sample_rate: float = 192000.0,
    ) -> None:
        if not 0.0 <= lookahead <= 1.0:
            raise ValueError(f"Limiter: lookahead must be between 0 and 1 second, got {lookahead!r}")
        self.ceiling = float(ceiling)
        self.release = float(release)
        self.lookahead = float(lookahead)
        self.external_sidechain = bool(external_sidechain)
        size = 1 << (int(math.ceil(lookahead * max_sample_rate)) + 2).bit_length()
        self._mask = size - 1
        self._max_lookahead = size - 2  # samples
        self._delay = np.zeros(size)  # the audio, delayed by the look-ahead
        self._smoothed = np.ones(size)  # the released gains, for the moving average
        self._queue_gain = np.zeros(size)  # monotone queue: increasing gains ...
        self._queue_time = np.zeros(size, dtype=np.int64)  # ... and the samples they were needed at
        self._queue_head = 0
        self._queue_count = 0
        self._sum = 0.0  # running sum of the last L + 1 smoothed gains (initially all 1)
        self._sum_ready = False
        self._released = 1.0
        self._time = 0  # samples processed
        self._write = 0
        self._release_time = math.nan
        self._release_coef = 0.0
        self._ceiling = math.nan  # the ceiling _limit was computed for
        self._limit = 1.0

    def __repr__(self) -> str:
        return f"Limiter(ceiling={self.ceiling!r}, release={self.release!r}, lookahead={self.lookahead!r})"

    def latency(self, sample_rate: float) -> int:
        """The delay of the output behind the input, in samples, at ``sample_rate`` (Python only)."""
        return min(round(self.lookahead * sample_rate), self._max_lookahead)

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        if self.release != self._release_time:
            self._release_time = self.release
            if self.release > 0.0:
                self._release_coef = math.exp(-1.0 / (self.release * sample_rate))
            else:
                self._release_coef = 0.0
        ahead = min(round(self.lookahead * sample_rate), self._max_lookahead)
        mask = self._mask
        if not self._sum_ready:
            self._sum = float(ahead + 1)
            self._sum_ready = True
        if self.ceiling != self._ceiling:
            self._ceiling = self.ceiling
            self._limit = 10.0 ** (self.ceiling / 20.0)
        limit = self._limit
        x = self.input
        if self.external_sidechain:
            level = abs(self.sidechain)
        else:
            level = abs(x)
        need = 1.0
        if level > limit:
            need = limit / level
        now = self._time
        lowest = self._window_min(need, now, ahead)
        # exponential release towards 1, never above what the window needs
        released = 1.0 - self._release_coef * (1.0 - self._released)
        if lowest < released:
            released = lowest
        self._released = released
        # moving average of the last ahead + 1 released gains
        w = self._write
        oldest = (w - ahead - 1) & mask
        self._sum = self._sum + released - float(self._smoothed[oldest])
        self._smoothed[w] = released
        gain = self._sum / float(ahead + 1)
        self._delay[w] = x
        delayed = float(self._delay[(w - ahead) & mask])  # written before read: ahead = 0 passes x through
        self._write = (w + 1) & mask
        self._time = now + 1
        if gain > 1.0:
            gain = 1.0
        out = delayed * gain
        if not self.external_sidechain and abs(out) > limit:
            # the running sum's rounding (a few ulps), or the look-ahead just after the ceiling
            # was lowered (the queued gains were for the old one): |output| <= limit exactly
            out = math.copysign(limit, out)
        if gain < 1.0:
            self.gain_reduction = -LOG10_TO_DB * math.log10(max(gain, FLOOR))
        else:
            self.gain_reduction = 0.0
        self.output = out

    def _window_min(self, need: float, now: int, ahead: int) -> float:
        # Sliding minimum over the needs of samples now - ahead .. now: a queue of (gain, time)
        # with increasing gains; a new need drops every queued gain that is not smaller.
        mask = self._mask
        head = self._queue_head
        count = self._queue_count
        while count > 0 and self._queue_gain[(head + count - 1) & mask] >= need:
            count = count - 1
        tail = (head + count) & mask
        self._queue_gain[tail] = need
        self._queue_time[tail] = now
        count = count + 1
        while self._queue_time[head] < now - ahead:
            head = (head + 1) & mask
            count = count - 1
        self._queue_head = head
        self._queue_count = count
        return float(self._queue_gain[head])
