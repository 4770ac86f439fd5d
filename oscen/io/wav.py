"""Sound files in and out, with oscen's array conventions.

oscen works in float64 with channels first: mono ``(n,)``, multichannel ``(channels, n)``, the
shape ``Graph.process_block`` returns. soundfile (libsndfile) wants ``(n, channels)`` and stores
float32 or integer PCM. The conversion happens here, at the edge, and nowhere else, so the rest of
the library never has to think about file layouts.

The file format follows the file name's extension (:data:`FORMATS`): ``.wav``, ``.flac``,
``.ogg``, ``.mp3``, ``.aiff``; any other extension is refused before anything is rendered rather
than written as a WAV under a misleading name. :class:`AudioWriter` writes block by block, so a
render of any length streams to disk in bounded memory. Formats that store integers or a lossy
code hold only -1..1: a louder signal is clipped (rather than left to wrap around) and a
:class:`ClippingWarning` says by how much, naming the peak.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audiofile import WavError as WavError
from ..audiofile import read_wav as read_wav

FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "FLOAT"),
    ".flac": ("FLAC", "PCM_24"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
    ".aiff": ("AIFF", "PCM_24"),
    ".aif": ("AIFF", "PCM_24"),
}
"""File name extension -> (libsndfile format, default subtype). WAV defaults to 32-bit float
(lossless for audio work, keeps overs above 0 dBFS); the others to what their players expect."""

FORMAT_SUBTYPES: dict[str, tuple[str, ...]] = {
    "WAV": ("FLOAT", "PCM_16", "PCM_24", "PCM_32", "DOUBLE"),
    "FLAC": ("PCM_16", "PCM_24"),
    "OGG": ("VORBIS",),
    "MP3": ("MPEG_LAYER_III",),
    "AIFF": ("PCM_16", "PCM_24", "FLOAT"),
}
"""The sample formats oscen offers per file format (a curated subset of libsndfile's)."""

SUBTYPES = FORMAT_SUBTYPES["WAV"]
"""WAV sample formats accepted by :func:`write_wav`."""

FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
"""Subtypes that store any float; every other one holds only -1..1 and clips."""

WRITE_BUFFER_FRAMES = 16384
"""Frames :class:`AudioWriter` gathers before each write to libsndfile (256 kB per channel)."""

MAX_CHANNELS = 64
"""A 2-D array with more rows than this is almost certainly ``(n, channels)`` by mistake."""


class ClippingWarning(UserWarning):
    """A signal louder than 0 dBFS was clipped to fit an integer or lossy file format."""


@dataclass(frozen=True)
class AudioFormat:
    """A libsndfile file format and sample format, already checked to be writable here."""

    format: str
    subtype: str

    @property
    def clips(self) -> bool:
        """True when the subtype holds only -1..1 (integer PCM, lossy codecs)."""
        return self.subtype not in FLOAT_SUBTYPES


def supported_extensions() -> str:
    return ", ".join(FORMATS)


def audio_format(
    path: str | Path, subtype: str | None = None, format: str | None = None, who: str = "write_audio"
) -> AudioFormat:
    """The format to write ``path`` in: from its extension (or ``format``), with ``subtype`` or the
    format's default; a :class:`WavError` naming the choices for anything else.

    Cheap and free of side effects, so callers check an output name before rendering.
    """
    if format is None:
        suffix = Path(path).suffix.lower()
        if suffix not in FORMATS:
            what = f"extension {suffix!r}" if suffix else "no extension"
            raise WavError(
                f"{who}: cannot write {path}: {what} is not a sound file format oscen writes; "
                f"use one of {supported_extensions()}"
            )
        format, default = FORMATS[suffix]
    else:
        format = format.upper()
        if format not in FORMAT_SUBTYPES:
            raise WavError(f"{who}: format must be one of {', '.join(FORMAT_SUBTYPES)}, got {format!r}")
        default = next((d for f, d in FORMATS.values() if f == format), FORMAT_SUBTYPES[format][0])
    if format not in sf.available_formats():
        raise WavError(
            f"{who}: cannot write {path}: this libsndfile ({sf.__libsndfile_version__}) has no {format} support"
        )
    chosen = default if subtype is None else str(subtype).upper()
    allowed = FORMAT_SUBTYPES[format]
    if chosen not in allowed or not sf.check_format(format, chosen):
        raise WavError(
            f"{who}: subtype must be one of {', '.join(allowed)} for a {format} file, got {subtype!r}"
        )
    return AudioFormat(format, chosen)


class AudioWriter:
    """Write a sound file block by block: ``(n,)`` or ``(channels, n)`` float arrays in, bounded memory.

    Blocks are gathered into a buffer of :data:`WRITE_BUFFER_FRAMES` frames and each full buffer
    goes to libsndfile (a write per engine block costs more than the engine's block itself), so
    memory is bounded by that buffer whatever the length. The file is opened at the first write,
    which fixes the channel count. Every buffer is checked for NaN and inf before it is written
    (the error says at which sample of the whole file). For clipping formats the peak and the
    number of clipped samples are counted; :meth:`close` warns once with both. As a context
    manager, an exception deletes the half-written file.
    """

    def __init__(
        self,
        path: str | Path,
        sample_rate: float,
        fmt: AudioFormat | None = None,
        channels: int | None = None,
        who: str = "write_audio",
        shown_as: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.who = who
        self.shown_as = Path(shown_as) if shown_as is not None else self.path
        """The name messages use (the final name, when ``path`` is a temporary one beside it)."""
        self.format = fmt if fmt is not None else audio_format(self.path, who=who)
        self.sample_rate = _integral_rate(sample_rate, who)
        _check_path(self.path, who)
        self.channels = channels
        self.frames = 0
        """Frames accepted so far."""
        self.peak = 0.0
        self.clipped = 0
        self._file: sf.SoundFile | None = None
        self._buffer: np.ndarray | None = None
        self._fill = 0
        self._written = 0
        self._closed = False

    def write(self, block: np.ndarray) -> None:
        data = _as_channels_first(block, self.who)
        if self.channels is None:
            self.channels = data.shape[0]
        elif data.shape[0] != self.channels:
            raise WavError(
                f"{self.who}: a block of {data.shape[0]} channels for {self.channels}-channel audio"
            )
        n = data.shape[1]
        size = WRITE_BUFFER_FRAMES
        if self._buffer is None:
            self._buffer = np.empty((self.channels, size), dtype=np.float64)
        if self._fill + n > size:
            self._flush()
        if n >= size:
            self._emit(data)
        else:
            self._buffer[:, self._fill : self._fill + n] = data
            self._fill += n
        self.frames += n

    def _flush(self) -> None:
        if self._fill and self._buffer is not None:
            fill, self._fill = self._fill, 0
            self._emit(self._buffer[:, :fill])

    def _emit(self, data: np.ndarray) -> None:
        """Check, clip and write one chunk; the checks take no copy unless something is wrong."""
        if data.size:
            high, low = float(data.max()), float(data.min())
            if not (math.isfinite(high) and math.isfinite(low)):  # NaN propagates through max
                _check_finite(data, self.sample_rate, self._written, self.who)
            peak = max(high, -low)
            self.peak = max(self.peak, peak)
            if self.format.clips and peak > 1.0:
                self.clipped += int(np.count_nonzero(np.abs(data) > 1.0))
                data = np.clip(data, -1.0, 1.0)
        self._open()
        assert self._file is not None
        # float64 -> float32 here and only here (DOUBLE files keep float64); soundfile wants frames as rows.
        dtype = np.float64 if self.format.subtype == "DOUBLE" else np.float32
        try:
            self._file.write(np.ascontiguousarray(data.T, dtype=dtype))
        except (sf.LibsndfileError, OSError, RuntimeError) as exc:
            raise WavError(f"{self.who}: cannot write {self.shown_as}: {exc}") from exc
        self._written += data.shape[1]

    def close(self) -> None:
        """Finish the file (an empty one if no block came) and warn once if anything clipped."""
        if self._closed:
            return
        try:
            self._flush()
            self._open()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        assert self._file is not None
        self._file.close()
        if self.clipped:
            warnings.warn(
                clipping_message(self.shown_as, self.format, self.peak, self.clipped), ClippingWarning, 2
            )

    def abort(self) -> None:
        """Close and delete the file: a failed render leaves nothing half-written behind."""
        self._closed = True
        if self._file is not None:
            self._file.close()
        self.path.unlink(missing_ok=True)

    def probe(self) -> None:
        """Open and delete the file at once: libsndfile's own refusals (MP3 at 1000 Hz, say) come
        before the render rather than after its first buffer."""
        if self._file is None:
            self._open(self.channels or 1)
            assert self._file is not None
            self._file.close()
            self._file = None
            self.path.unlink(missing_ok=True)

    def _open(self, channels: int | None = None) -> None:
        if self._file is not None:
            return
        try:
            self._file = sf.SoundFile(
                str(self.path),
                "w",
                samplerate=self.sample_rate,
                channels=channels or self.channels or 1,
                subtype=self.format.subtype,
                format=self.format.format,
            )
        except (sf.LibsndfileError, OSError, RuntimeError, ValueError) as exc:
            reason = str(exc).replace(f"Error opening {str(self.path)!r}: ", "")
            raise WavError(
                f"{self.who}: cannot write {self.shown_as} as {self.format.format} {self.format.subtype} at "
                f"{self.sample_rate} Hz: {reason}"
            ) from exc

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def clipping_message(path: Path, fmt: AudioFormat, peak: float, clipped: int) -> str:
    return (
        f"{path}: the signal peaks at {peak:.3g} ({20 * math.log10(peak):+.1f} dBFS) but {fmt.format} "
        f"{fmt.subtype} holds only -1..1: {clipped} sample{'s' if clipped != 1 else ''} clipped; "
        "normalize (oscen render --normalize) or write a float file (.wav, subtype FLOAT)"
    )


def write_audio(
    path: str | Path,
    samples: np.ndarray,
    sample_rate: float,
    subtype: str | None = None,
    normalize: bool = False,
    peak_db: float = -1.0,
    format: str | None = None,
) -> Path:
    """Write ``samples`` (``(n,)`` or ``(channels, n)``) in the format of ``path``'s extension.

    ``normalize=True`` scales the signal so its peak sits at ``peak_db`` dBFS (-1 dB leaves room
    for inter-sample peaks in lossy re-encodes). Clipping formats clip to [-1, 1] rather than
    letting libsndfile wrap around, with a :class:`ClippingWarning`; FLOAT keeps values as they are.
    """
    return _write(path, samples, sample_rate, subtype, normalize, peak_db, format, "write_audio")


def write_wav(
    path: str | Path,
    samples: np.ndarray,
    sample_rate: float,
    subtype: str = "FLOAT",
    normalize: bool = False,
    peak_db: float = -1.0,
) -> Path:
    """Write ``samples`` (``(n,)`` or ``(channels, n)``) to a WAV file; returns the path.

    :func:`write_audio` with the format fixed to WAV (subtype FLOAT, PCM_16, PCM_24, ...).
    A name ending in another format's extension (``.flac``, ``.mp3``) is refused: use
    :func:`write_audio`, which writes that format.
    """
    suffix = Path(path).suffix.lower()
    if suffix in FORMATS and FORMATS[suffix][0] != "WAV":
        raise WavError(f"write_wav: {path} names a {FORMATS[suffix][0]} file; write_audio writes that format")
    return _write(path, samples, sample_rate, subtype, normalize, peak_db, "WAV", "write_wav")


def _write(
    path: str | Path,
    samples: np.ndarray,
    sample_rate: float,
    subtype: str | None,
    normalize: bool,
    peak_db: float,
    format: str | None,
    who: str,
) -> Path:
    path = Path(path)
    fmt = audio_format(path, subtype, format, who)
    rate = _integral_rate(sample_rate, who)
    data = _as_channels_first(samples, who)
    _check_finite(data, rate, 0, who)
    _check_path(path, who)
    if normalize:
        data = data * normalize_gain(float(np.max(np.abs(data))) if data.size else 0.0, peak_db)
    with AudioWriter(path, rate, fmt, who=who) as writer:
        writer.write(data)
    return path


def normalize_gain(peak: float, peak_db: float) -> float:
    """The gain that puts ``peak`` at ``peak_db`` dBFS (1 for silence)."""
    if isinstance(peak_db, bool) or not isinstance(peak_db, (int, float)) or not math.isfinite(peak_db):
        raise WavError(f"peak_db must be a finite number of dB, got {peak_db!r}")
    return 10.0 ** (peak_db / 20.0) / peak if peak > 0.0 else 1.0


def _check_path(path: Path, who: str) -> None:
    if not path.parent.exists():
        raise WavError(f"{who}: cannot write {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise WavError(f"{who}: cannot write {path}: it is a directory")


def _integral_rate(sample_rate: float, who: str = "write_wav") -> int:
    """Sound file headers store an integer rate; refuse to round a fractional one silently."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
        raise WavError(f"{who}: sample_rate must be a number, got {sample_rate!r}")
    rate = float(sample_rate)
    if not math.isfinite(rate) or rate <= 0 or rate != round(rate):
        raise WavError(f"{who}: sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    return int(round(rate))


def _as_channels_first(samples: np.ndarray, who: str = "write_wav") -> np.ndarray:
    data = np.asarray(samples)
    if data.dtype.kind not in "fiu":
        raise WavError(f"{who}: samples must be a numeric array, got dtype {data.dtype}")
    data = data.astype(np.float64, copy=False)
    if data.ndim == 1:
        return data[np.newaxis, :]
    if data.ndim != 2:
        raise WavError(f"{who}: samples must be (n,) or (channels, n), got shape {data.shape}")
    if data.shape[0] > MAX_CHANNELS:
        raise WavError(
            f"{who}: samples of shape {data.shape} would be {data.shape[0]} channels; oscen arrays are "
            f"(channels, n) — if this is (n, channels), pass samples.T"
        )
    if data.shape[0] == 0:
        raise WavError(f"{who}: samples have no channels")
    return data


def _check_finite(data: np.ndarray, rate: int, offset: int = 0, who: str = "write_wav") -> None:
    """A NaN or inf would make a silent or deafening file; say where the first one is instead.

    ``offset`` is the frame of ``data``'s first column in the whole file (for block writes).
    """
    bad = ~np.isfinite(data)
    if not bad.any():
        return
    # The first bad sample in time order (then lowest channel), which is where to look for the cause.
    frame = int(np.argmax(bad.any(axis=0)))
    channel = int(np.argmax(bad[:, frame]))
    value = data[channel, frame]
    frame += offset
    where = f"sample {frame} ({frame / rate:.6f} s)"
    if data.shape[0] > 1:
        where += f", channel {channel}"
    counted = "" if offset == 0 else " in this block"
    raise WavError(
        f"{who}: samples contain {int(bad.sum())} non-finite values{counted}; the first is {value} at {where}. "
        "A node produced NaN or inf (an unstable filter, a division by zero?)"
    )
