"""Sample playback: ``Sampler`` (pitched, looped, velocity, key zones) and ``AudioFileInput``.

Sound is loaded once, at construction (``soundfile``, through :func:`oscen.io.read_wav`, which
reads WAV, FLAC, AIFF, OGG...), into one flat float64 array; per-zone int64/float64 arrays say
where each sample starts, how long it is, its loop and its key range. Nothing is read from disk
while playing.

Pitch is the playback rate: a zone recorded at ``root`` plays note ``n`` at
``2 ** ((n - root + transpose) / 12)`` times its speed, times ``file rate / graph rate``. Reading
at fractional positions uses 6-point, 5th-order Lagrange interpolation (see
:mod:`oscen.interpolation` for the choice: -113 dB RMS error on a sine at a tenth of Nyquist,
against -71 dB for 4-point Hermite; exact, bit for bit, at integer positions). Pitching *up* a
full-band recording moves its top octave past Nyquist, which no interpolator can prevent:
samples meant to be transposed far up should be recorded or pre-filtered with that headroom.

Loops are seamless by construction: after the first pass, the interpolator's points on either side
of the loop seam are read from the other end of the loop, as if the loop were repeated forever.

``process`` and the handlers are compiled by the JIT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .graph.endpoints import EventInput, StreamOutput, ValueInput
from .graph.node import Node
from .interpolation import Lagrange6

__all__ = ["AudioFileInput", "MODES", "Sampler", "Zone", "load_samples"]

ONESHOT = 0
GATE = 1
LOOP = 2
MODES = {"oneshot": ONESHOT, "gate": GATE, "loop": LOOP}

A4_HZ = 440.0
A4_NOTE = 69.0
MIDDLE_C_HZ = A4_HZ * 2.0 ** ((60.0 - A4_NOTE) / 12.0)

Source = np.ndarray | Sequence[float] | str | Path


def load_samples(
    source: Source, channel: int | None = None, what: str = "Sampler"
) -> tuple[np.ndarray, float]:
    """(channels, n) float64 samples and their rate (0.0 for an array: "the graph's rate")."""
    if isinstance(source, (str, Path)):
        from .audiofile import WavError, read_wav

        try:
            data, rate = read_wav(source)
        except WavError as exc:
            raise ValueError(f"{what}: cannot load the sound: {exc}") from exc
        data = np.atleast_2d(data)
    else:
        data = np.asarray(source, dtype=np.float64)
        if data.ndim == 1:
            data = data[np.newaxis, :]
        if data.ndim != 2:
            raise ValueError(f"{what}: samples must be (n,) or (channels, n), got shape {data.shape}")
        rate = 0.0
    if data.shape[1] == 0:
        raise ValueError(
            f"{what}: {source if isinstance(source, (str, Path)) else 'the array'} has no samples"
        )
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{what}: the samples contain NaN or infinite values")
    if channel is not None:
        if not 0 <= channel < data.shape[0]:
            raise ValueError(f"{what}: channel {channel} does not exist (the sound has {data.shape[0]})")
        data = data[channel : channel + 1]
    return np.ascontiguousarray(data, dtype=np.float64), float(rate)


@dataclass
class Zone:
    """One sample of a multi-sample instrument and the notes and velocities it answers.

    samples: a path (any format soundfile reads) or a 1-D array; several channels are mixed to
        mono unless ``channel`` picks one.
    root: the MIDI note at which it plays at its recorded pitch.
    low, high: the key range, inclusive (MIDI notes).
    velocity_low, velocity_high: the velocity range, inclusive (0..1).
    loop_start, loop_end: the loop, in samples of the file (end exclusive; default: all of it).
    sample_rate: the samples' rate, for arrays (default: the graph's rate); files know theirs.
    """

    samples: Source
    root: float = 60.0
    low: int = 0
    high: int = 127
    velocity_low: float = 0.0
    velocity_high: float = 1.0
    loop_start: int | None = None
    loop_end: int | None = None
    sample_rate: float | None = None
    channel: int | None = None


class Sampler(Lagrange6, Node):
    """A sample player: pitch by playback rate, loop points, one-shot or gated, velocity, key zones.

    Endpoints:
        note (event: note, velocity): velocity > 0 starts the zone that covers the note and
            velocity at that note's pitch (no zone: ignored); velocity 0 releases, if it is the
            sounding note.
        gate (event: velocity): starts at the pitch of ``frequency`` (velocity > 0) or releases
            (velocity 0): the voice interface of :func:`oscen.midi.poly_voices`, whose pitch
            goes to ``frequency``. The pitch then follows ``frequency`` (bends, glides).
        frequency (value, Hz, default middle C): the pitch for gates.
        transpose (value, semitones, default 0): added to the pitch.
        gain (value, default 1).
        release (value, seconds, default 0.01): the fade after a release (gate and loop modes).
        output (stream).

    Modes (``mode``): ``"oneshot"`` plays the sample to its end and ignores releases; ``"gate"``
    plays until released (then fades out over ``release``) or to the end; ``"loop"`` plays the
    attack, then repeats ``loop_start .. loop_end`` until released and faded out.

    Velocity: the level is ``gain * (1 - s + s * velocity)`` with ``velocity_sensitivity`` s
    (default 1: proportional to velocity; 0: velocity ignored). A new note restarts the sample
    from its start (monophonic; ``poly_voices`` makes it polyphonic).

    Build with ``Sampler(samples, root=60, ...)`` for one zone, or ``Sampler.zones([Zone(...),
    ...], ...)`` for a multi-sample (the first zone matching a note and velocity plays).
    """

    note = EventInput()
    gate = EventInput()
    frequency = ValueInput(MIDDLE_C_HZ)
    transpose = ValueInput(0.0)
    gain = ValueInput(1.0)
    release = ValueInput(0.01)
    output = StreamOutput()

    def __init__(
        self,
        samples: Source,
        root: float = 60.0,
        mode: int | str = ONESHOT,
        loop_start: int | None = None,
        loop_end: int | None = None,
        sample_rate: float | None = None,
        gain: float = 1.0,
        release: float = 0.01,
        velocity_sensitivity: float = 1.0,
        channel: int | None = None,
        _zones: Sequence[Zone] | None = None,
    ) -> None:
        if isinstance(mode, str):
            if mode not in MODES:
                raise ValueError(f"Sampler: unknown mode {mode!r}; choose one of {sorted(MODES)}")
            mode = MODES[mode]
        if mode not in MODES.values():
            raise ValueError(f"Sampler: unknown mode {mode!r}; choose one of {sorted(MODES)}")
        if not 0.0 <= velocity_sensitivity <= 1.0:
            raise ValueError(f"Sampler: velocity_sensitivity must be in 0..1, got {velocity_sensitivity!r}")
        zones = list(_zones) if _zones is not None else [
            Zone(samples, root, loop_start=loop_start, loop_end=loop_end, sample_rate=sample_rate, channel=channel)
        ]  # fmt: skip
        if not zones:
            raise ValueError("Sampler: needs at least one zone")
        self.mode = int(mode)
        self.gain = float(gain)
        self.release = float(release)
        self.velocity_sensitivity = float(velocity_sensitivity)
        self._layout(zones)
        self._zone = 0
        self._pos = 0.0  # position in the zone's samples
        self._playing = False
        self._looped = False  # past the loop's end at least once
        self._releasing = False
        self._release_count = 0  # samples since the release
        self._release_length = 0  # fade length in samples; -1: latch at the next process
        self._fade = 1.0
        self._level = 0.0  # gain from velocity
        self._sounding = -1.0  # the note held (for note-offs); -1: none
        self._pitch_note = 60.0  # the note playing, also while it fades
        self._by_frequency = False  # pitch from `frequency` (gate) or from the note (note event)
        self._transpose = math.nan  # the pitch inputs the step was computed for (NaN: recompute)
        self._frequency = math.nan
        self._step = 0.0  # position increment per sample

    @classmethod
    def zones(
        cls,
        zones: Sequence[Zone],
        mode: int | str = ONESHOT,
        gain: float = 1.0,
        release: float = 0.01,
        velocity_sensitivity: float = 1.0,
    ) -> Sampler:
        """A multi-sample instrument: each note plays the first zone whose key and velocity range
        hold it."""
        return cls(None, mode=mode, gain=gain, release=release, velocity_sensitivity=velocity_sensitivity,
                   _zones=zones)  # fmt: skip

    def _layout(self, zones: Sequence[Zone]) -> None:
        chunks, starts, lengths, loop_starts, loop_ends, rates = [], [], [], [], [], []
        offset = 0
        for k, zone in enumerate(zones):
            where = f"Sampler zone {k}"
            data, rate = load_samples(zone.samples, zone.channel, where)
            mono = data.mean(axis=0) if data.shape[0] > 1 else data[0]
            n = len(mono)
            ls = 0 if zone.loop_start is None else int(zone.loop_start)
            le = n if zone.loop_end is None else int(zone.loop_end)
            if not 0 <= ls < le <= n:
                raise ValueError(
                    f"{where}: loop points must satisfy 0 <= loop_start < loop_end <= {n}, got {ls}, {le}"
                )
            if not 0 <= zone.low <= zone.high <= 127:
                raise ValueError(
                    f"{where}: key range must satisfy 0 <= low <= high <= 127, got {zone.low}, {zone.high}"
                )
            if not 0.0 <= zone.velocity_low <= zone.velocity_high <= 1.0:
                raise ValueError(
                    f"{where}: velocity range must lie in 0..1, got {zone.velocity_low}, {zone.velocity_high}"
                )
            if zone.sample_rate is not None:
                if not zone.sample_rate > 0:
                    raise ValueError(f"{where}: sample_rate must be positive, got {zone.sample_rate!r}")
                rate = float(zone.sample_rate)
            chunks.append(mono)
            starts.append(offset)
            lengths.append(n)
            loop_starts.append(ls)
            loop_ends.append(le)
            rates.append(rate)
            offset += n
        self.zone_count = len(zones)
        self._data = np.concatenate(chunks).astype(np.float64)
        self._zone_start = np.array(starts, dtype=np.int64)
        self._zone_length = np.array(lengths, dtype=np.int64)
        self._zone_loop_start = np.array(loop_starts, dtype=np.int64)
        self._zone_loop_end = np.array(loop_ends, dtype=np.int64)
        self._zone_low = np.array([z.low for z in zones], dtype=np.int64)
        self._zone_high = np.array([z.high for z in zones], dtype=np.int64)
        self._zone_velocity_low = np.array([z.velocity_low for z in zones], dtype=np.float64)
        self._zone_velocity_high = np.array([z.velocity_high for z in zones], dtype=np.float64)
        self._zone_root = np.array([float(z.root) for z in zones], dtype=np.float64)
        self._zone_rate = np.array(rates, dtype=np.float64)  # 0: the graph's rate

    def __repr__(self) -> str:
        name = {v: k for k, v in MODES.items()}[self.mode]
        return f"Sampler(<{self.zone_count} zone(s), {len(self._data)} samples>, mode={name!r})"

    # ---------------------------------------------------------------- compiled code
    def on_note(self, note: float, velocity: float) -> None:
        if velocity > 0.0:
            self._by_frequency = False
            self._start(note, velocity)
        elif note == self._sounding:
            self._stop()

    def on_gate(self, velocity: float) -> None:
        if velocity > 0.0:
            self._by_frequency = True
            f = max(abs(self.frequency), 1.0e-3)
            self._start(A4_NOTE + 12.0 * math.log2(f / A4_HZ), velocity)
        else:
            self._stop()

    def _start(self, note: float, velocity: float) -> None:
        velocity = min(velocity, 1.0)  # velocities above 1 count as 1 (for the zones and the level)
        key = round(note)
        zone = -1
        for z in range(self.zone_count):
            keys = int(self._zone_low[z]) <= key and key <= int(self._zone_high[z])
            low = float(self._zone_velocity_low[z])
            high = float(self._zone_velocity_high[z])
            if zone < 0 and keys and low <= velocity and velocity <= high:
                zone = z
        if zone < 0:
            return
        self._zone = zone
        self._sounding = note
        self._pitch_note = note  # kept after the release: the sound goes on while it fades
        self._transpose = math.nan  # recompute the step for this note
        self._pos = 0.0
        self._playing = True
        self._looped = False
        self._releasing = False
        self._fade = 1.0
        s = self.velocity_sensitivity
        self._level = 1.0 - s + s * velocity

    def _stop(self) -> None:
        if self.mode != ONESHOT and self._playing and not self._releasing:
            self._releasing = True
            self._release_count = 0
            self._release_length = -1  # latched by the next process (handlers have no sample rate)
        self._sounding = -1.0

    def process(self, sample_rate: float) -> None:
        if self._playing and self._releasing:
            # a linear fade over R = round(release * rate) samples: 1 - k/R at the k-th sample
            # from the release (the release's own sample keeps the full level), silent at R
            if self._release_length < 0:
                self._release_length = round(max(self.release, 0.0) * sample_rate)
            if self._release_count >= self._release_length:
                self._playing = False
                self._releasing = False
            else:
                self._fade = 1.0 - float(self._release_count) / float(self._release_length)
                self._release_count = self._release_count + 1
        if not self._playing:
            self.output = 0.0
            return
        z = self._zone
        rate = float(self._zone_rate[z])
        if rate <= 0.0:
            rate = sample_rate
        if self.transpose != self._transpose or (self._by_frequency and self.frequency != self._frequency):
            # the playback ratio, recomputed only when the pitch changes (a note start resets the cache)
            self._transpose = self.transpose
            self._frequency = self.frequency
            if self._by_frequency:
                root_hz = A4_HZ * 2.0 ** ((float(self._zone_root[z]) - A4_NOTE) / 12.0)
                ratio = abs(self.frequency) / root_hz * 2.0 ** (self.transpose / 12.0)
            else:
                ratio = 2.0 ** ((self._pitch_note - float(self._zone_root[z]) + self.transpose) / 12.0)
            self._step = ratio * rate / sample_rate
        pos = self._pos
        i = math.floor(pos)
        t = pos - float(i)
        value = self._lagrange6(
            self._at(z, i - 2), self._at(z, i - 1), self._at(z, i), self._at(z, i + 1), self._at(z, i + 2),
            self._at(z, i + 3), t,
        )  # fmt: skip
        self.output = value * self.gain * self._level * self._fade
        pos = pos + self._step
        length = float(self._zone_length[z])
        if self.mode == LOOP:
            loop_end = float(self._zone_loop_end[z])
            span = loop_end - float(self._zone_loop_start[z])
            if pos >= loop_end:
                pos = pos - span * math.floor((pos - loop_end) / span + 1.0)
                self._looped = True
        elif pos >= length:
            self._playing = False
        self._pos = pos

    def _at(self, z: int, j: int) -> float:
        # sample j of zone z; in a loop that has wrapped, indices beyond either end of the loop
        # read the loop's other end (a seamless repeat); outside the sample: silence
        if self.mode == LOOP:
            loop_start = int(self._zone_loop_start[z])
            loop_end = int(self._zone_loop_end[z])
            if j >= loop_end:
                j = loop_start + (j - loop_start) % (loop_end - loop_start)
            elif self._looped and j < loop_start:
                j = loop_end - 1 - (loop_start - 1 - j) % (loop_end - loop_start)
        if j < 0 or j >= int(self._zone_length[z]):
            return 0.0
        return float(self._data[int(self._zone_start[z]) + j])


class AudioFileInput(Lagrange6, Node):
    """Audio input from a sound file (or an array): plays it into the graph, once or looped.

    Endpoints:
        gain (value, default 1).
        play (event, no fields): starts again from the beginning.
        stop (event, no fields): stops (silence until the next ``play``).
        left, right (streams): the first two channels (a mono sound gives the same on both).
        output (stream): the mono mix, the mean of all channels.

    It plays from the graph's first sample unless ``autoplay=False``; with ``loop`` it starts
    over at the end. If the sound's rate differs from the graph's, it is resampled with the
    6-point Lagrange interpolator (at equal rates the samples pass unchanged, bit for bit).
    ``sample_rate`` gives an array's rate (default: the graph's).
    """

    gain = ValueInput(1.0)
    play = EventInput()
    stop = EventInput()
    left = StreamOutput()
    right = StreamOutput()
    output = StreamOutput()

    def __init__(
        self,
        source: Source,
        loop: bool = False,
        gain: float = 1.0,
        autoplay: bool = True,
        sample_rate: float | None = None,
    ) -> None:
        data, rate = load_samples(source, None, "AudioFileInput")
        if sample_rate is not None:
            if not sample_rate > 0:
                raise ValueError(f"AudioFileInput: sample_rate must be positive, got {sample_rate!r}")
            rate = float(sample_rate)
        n = data.shape[1]
        left = data[0]
        right = data[1] if data.shape[0] > 1 else data[0]
        mix = data.mean(axis=0)
        self.frames = n
        self.loop = bool(loop)
        self.gain = float(gain)
        self.source_rate = rate  # 0: the graph's rate
        self._data = np.ascontiguousarray(np.concatenate([left, right, mix]), dtype=np.float64)
        self._pos = 0.0
        self._playing = bool(autoplay)

    def __repr__(self) -> str:
        return f"AudioFileInput(<{self.frames} frames>, loop={self.loop!r})"

    # ---------------------------------------------------------------- compiled code
    def on_play(self) -> None:
        self._pos = 0.0
        self._playing = True

    def on_stop(self) -> None:
        self._playing = False

    def process(self, sample_rate: float) -> None:
        if not self._playing:
            self.left = 0.0
            self.right = 0.0
            self.output = 0.0
            return
        rate = self.source_rate
        if rate <= 0.0:
            rate = sample_rate
        step = rate / sample_rate
        n = self.frames
        pos = self._pos
        g = self.gain
        if step == 1.0:
            i = int(pos)
            self.left = g * float(self._data[i])
            self.right = g * float(self._data[n + i])
            self.output = g * float(self._data[2 * n + i])
        else:
            self.left = g * self._channel(0, pos)
            self.right = g * self._channel(n, pos)
            self.output = g * self._channel(2 * n, pos)
        pos = pos + step
        if pos >= float(n):
            if self.loop:
                pos = pos - float(n) * math.floor(pos / float(n))
            else:
                self._playing = False
        self._pos = pos

    def _channel(self, base: int, pos: float) -> float:
        i = math.floor(pos)
        t = pos - float(i)
        return self._lagrange6(
            self._frame(base, i - 2), self._frame(base, i - 1), self._frame(base, i), self._frame(base, i + 1),
            self._frame(base, i + 2), self._frame(base, i + 3), t,
        )  # fmt: skip

    def _frame(self, base: int, j: int) -> float:
        n = self.frames
        if self.loop:
            j = j % n
        elif j < 0 or j >= n:
            return 0.0
        return float(self._data[base + j])
