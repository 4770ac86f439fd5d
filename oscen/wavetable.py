"""Wavetable oscillator: band-limited mip-mapped tables, morphing between tables.

At construction each single-cycle table goes through numpy's FFT and is rebuilt as a *mip-map*:
level 0 keeps the first ``max_harmonics`` partials, each next level half as many (down to one, a
sine). A level with ``H`` partials is stored with ``16 H`` samples, 8 times oversampled: its
highest partial is at 1/8 of the table's own Nyquist, where 6-point Lagrange interpolation
(:mod:`oscen.interpolation`) is accurate to better than -100 dB.

While playing at frequency ``f`` the node reads the level with the most partials whose highest
one stays below Nyquist, ``H f < sample_rate / 2``: nothing is generated above Nyquist, so
nothing aliases (the measured alias energy is below -100 dB, tests/test_nodes_wavetable.py). The
price of whole-octave levels: the highest partial played lies between half of Nyquist and
Nyquist, so just below a level boundary the spectrum reaches up to Nyquist and just above it only
to half of it (the usual compromise; crossfading neighbour levels would alias or blur).

Morphing: ``position`` scans the tables, 0 = first, 1 = last; between two tables the output is
their linear crossfade at the same phase. All levels of all tables live in one flat float64
array; int64 arrays give each level's offset and size, so compiled code only indexes arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .graph.endpoints import StreamInput, StreamOutput, ValueInput
from .graph.node import Node
from .interpolation import Lagrange6

__all__ = ["Wavetable", "basic_shapes", "harmonic_table"]

OVERSAMPLING = 8
"""Each level's table is this many times longer than twice its partial count."""
PAD_BEFORE = 2
PAD_AFTER = 3
"""Each stored level is wrapped by these many samples on each side, so the interpolator's six
points are contiguous (no index wrapping per read)."""


def harmonic_table(amplitudes: Sequence[float], size: int = 2048) -> np.ndarray:
    """One cycle of ``sum_k amplitudes[k-1] sin(2 pi k p)``, ``size`` samples (a table source)."""
    p = np.arange(size) / size
    out = np.zeros(size)
    for k, a in enumerate(amplitudes, start=1):
        if a:
            out += a * np.sin(2 * np.pi * k * p)
    return out


def basic_shapes(size: int = 2048, harmonics: int = 512) -> list[np.ndarray]:
    """Sine, triangle, saw and square tables (Fourier series), for ``Wavetable.basic()``."""
    k = np.arange(1, harmonics + 1)
    sine = np.zeros(harmonics)
    sine[0] = 1.0
    odd = (k % 2 == 1).astype(float)
    triangle = odd * (8 / np.pi**2) * (-1.0) ** ((k - 1) // 2) / k.astype(float) ** 2
    saw = (2 / np.pi) * (-1.0) ** (k + 1) / k
    square = odd * 4 / (np.pi * k)
    return [harmonic_table(a, size) for a in (sine, triangle, saw, square)]


class Wavetable(Lagrange6, Node):
    """A wavetable oscillator over one or more single-cycle tables, band-limited, morphable.

    Endpoints:
        frequency (value, Hz, default 440): negative runs backwards.
        amplitude (value, default 1).
        position (value, 0..1, default 0): which table, scanning all of them (0 = the first,
            1 = the last, linear crossfades between neighbours); clamped.
        fm (stream, Hz): added to ``frequency``.
        output (stream).

    ``tables``: one cycle per table, as a 2-D array ``(count, samples)`` or a sequence of 1-D
    arrays (lengths may differ; at least 4 samples). Partials beyond ``max_harmonics`` (a power
    of two) or the table's own Nyquist are dropped, and so is any DC offset. With ``normalize`` each table is scaled so its
    level-0 peak is 1. ``phase`` is the starting phase in cycles. ``Wavetable.basic()`` morphs
    sine -> triangle -> saw -> square.
    """

    frequency = ValueInput(440.0)
    amplitude = ValueInput(1.0)
    position = ValueInput(0.0)
    fm = StreamInput()
    output = StreamOutput()

    def __init__(
        self,
        tables: np.ndarray | Sequence[np.ndarray],
        frequency: float = 440.0,
        amplitude: float = 1.0,
        position: float = 0.0,
        phase: float = 0.0,
        normalize: bool = True,
        max_harmonics: int = 512,
    ) -> None:
        sources = _as_tables(tables)
        if max_harmonics < 1 or max_harmonics & (max_harmonics - 1):
            raise ValueError(f"Wavetable: max_harmonics must be a power of two >= 1, got {max_harmonics!r}")
        self.frequency = float(frequency)
        self.amplitude = float(amplitude)
        self.position = float(position)
        levels = max_harmonics.bit_length()  # max_harmonics, /2, ..., 1
        harmonics = [max_harmonics >> level for level in range(levels)]
        sizes = [2 * OVERSAMPLING * h for h in harmonics]
        offsets = np.cumsum([0] + [s + PAD_BEFORE + PAD_AFTER for s in sizes])
        stride = int(offsets[-1])
        data = np.zeros(stride * len(sources))
        for t, source in enumerate(sources):
            spectrum = np.fft.rfft(source) / len(source)
            usable = (len(source) - 1) // 2  # below the source's own Nyquist
            scale = 1.0
            for level, (h, size) in enumerate(zip(harmonics, sizes, strict=True)):
                keep = min(h, usable)
                bins = np.zeros(size // 2 + 1, dtype=complex)
                bins[1 : keep + 1] = spectrum[1 : keep + 1]  # no DC: drawn tables often have an offset
                cycle = np.fft.irfft(bins, size) * size
                if level == 0 and normalize:
                    peak = float(np.max(np.abs(cycle)))
                    scale = 1.0 / peak if peak > 0 else 1.0
                cycle = cycle * scale
                start = t * stride + int(offsets[level])
                data[start : start + PAD_BEFORE] = cycle[-PAD_BEFORE:]
                data[start + PAD_BEFORE : start + PAD_BEFORE + size] = cycle
                data[start + PAD_BEFORE + size : start + PAD_BEFORE + size + PAD_AFTER] = cycle[:PAD_AFTER]
        self.tables = len(sources)
        self.levels = levels
        self._stride = stride
        self._data = data
        self._level_offset = np.asarray(offsets[:-1], dtype=np.int64)
        self._level_size = np.asarray(sizes, dtype=np.int64)
        self._level_harmonics = np.asarray(harmonics, dtype=np.int64)
        self._phase = float(phase) % 1.0
        self._level = 0  # the level in use, for _frequency
        self._frequency = math.nan

    @classmethod
    def basic(cls, frequency: float = 440.0, amplitude: float = 1.0, position: float = 0.0) -> Wavetable:
        """Four tables: sine, triangle, saw, square (``position`` 0, 1/3, 2/3, 1)."""
        return cls(basic_shapes(), frequency, amplitude, position)

    def __repr__(self) -> str:
        return f"Wavetable(<{self.tables} tables>, {self.frequency!r}, {self.amplitude!r})"

    def level_for(self, frequency: float, sample_rate: float) -> int:
        """The mip level played at ``frequency`` (Python; the compiled code does the same)."""
        level = 0
        nyquist = 0.5 * sample_rate
        while level < self.levels - 1 and float(self._level_harmonics[level]) * abs(frequency) >= nyquist:
            level += 1
        return level

    # ---------------------------------------------------------------- compiled code
    def process(self, sample_rate: float) -> None:
        frequency = self.frequency + self.fm
        if frequency != self._frequency:
            self._frequency = frequency
            self._level = self._choose_level(abs(frequency), 0.5 * sample_rate)
        level = self._level
        # one partial at or above Nyquist even at the sine level: output silence, never aliases
        if float(self._level_harmonics[level]) * abs(frequency) >= 0.5 * sample_rate:
            value = 0.0
        else:
            value = self._morph(level)
        self.output = self.amplitude * value
        phase = self._phase + frequency * (1.0 / sample_rate)
        if phase >= 1.0:
            phase = phase - 1.0
        if phase >= 1.0 or phase < 0.0:
            phase = phase - math.floor(phase)
            if phase >= 1.0:
                phase = 0.0
        self._phase = phase

    def _choose_level(self, frequency: float, nyquist: float) -> int:
        level = 0
        while level < self.levels - 1 and float(self._level_harmonics[level]) * frequency >= nyquist:
            level = level + 1
        return level

    def _morph(self, level: int) -> float:
        last = self.tables - 1
        if last == 0:
            return self._read(0, level)
        s = min(max(self.position, 0.0), 1.0) * float(last)
        i = int(s)
        if i >= last:
            return self._read(last, level)
        a = s - float(i)
        first = self._read(i, level)
        if a == 0.0:
            return first
        return first + a * (self._read(i + 1, level) - first)

    def _read(self, table: int, level: int) -> float:
        size = int(self._level_size[level])
        position = self._phase * float(size)
        i = int(position)
        if i >= size:  # the phase is below 1, but its product with size may round up to size
            i = size - 1
        t = position - float(i)
        base = table * self._stride + int(self._level_offset[level]) + i
        return self._lagrange6(
            float(self._data[base]),
            float(self._data[base + 1]),
            float(self._data[base + 2]),
            float(self._data[base + 3]),
            float(self._data[base + 4]),
            float(self._data[base + 5]),
            t,
        )


def _as_tables(tables: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    if isinstance(tables, np.ndarray) and tables.ndim == 1:
        tables = [tables]
    elif isinstance(tables, np.ndarray) and tables.ndim == 2:
        tables = list(tables)
    elif isinstance(tables, np.ndarray):
        raise ValueError(f"Wavetable: tables must be 1-D or 2-D, got an array of shape {tables.shape}")
    out = []
    for k, table in enumerate(tables):
        a = np.asarray(table, dtype=np.float64)
        if a.ndim != 1 or len(a) < 4:
            raise ValueError(
                f"Wavetable: table {k} must be one cycle of at least 4 samples, got shape {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"Wavetable: table {k} has non-finite samples")
        out.append(a)
    if not out:
        raise ValueError("Wavetable: needs at least one table")
    return out
