"""Standard MIDI files: their events at sample frames, and offline rendering driven by them.

Timing
------
A message's time is the one mido's playback timing gives (``for msg in mido.MidiFile(path)``
yields each message's delta in seconds, honouring every tempo change from that point on). We
compute the same sum *exactly*, in rational arithmetic from the ticks, the tempo (microseconds
per beat) and the file's ticks per beat, and only then convert to a sample:

    frame = round(seconds * sample_rate)

with Python's ``round`` (halves to even, the convention oscen's envelopes use too) applied to the
exact rational product. Summing float deltas instead would drift by rounding errors over a long
file and could move an event that falls near a half-sample boundary by one sample; the exact form
cannot, and agrees with ``round(sum_of_mido_float_deltas * sample_rate)`` whenever the float sum
is within a rounding error of the truth (always, in practice).

Events that share a frame keep the file's order (mido merges tracks stably), and the graph
delivers events queued at one frame in queueing order.

Only channel voice messages become events; meta messages (tempo, names, end of track) only shape
the timing, and system exclusive messages are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import mido
import numpy as np

from oscen.io.render import (
    MAX_RENDER_SECONDS,
    Progress,
    RenderResult,
    check_block_size,
    check_length,
    collect,
    prepare_output,
    render_blocks,
    stream_to_file,
)

from .messages import MidiError, MidiFields, is_channel_message, midi_fields

DEFAULT_TEMPO = 500_000
"""Microseconds per beat before the first set_tempo (120 BPM), as the MIDI file spec says."""

TAIL_SECONDS = 2.0
"""What :func:`render_midi` renders after the file's last message by default (release, reverb)."""


class MidiFileError(MidiError):
    """A MIDI file that cannot be read or timed; the message names the file and the reason."""


class GraphLike(Protocol):
    """What :func:`render_midi` needs: the interpreted Graph and the JIT's JitGraph both fit."""

    sample_rate: float
    frame: int

    def process_block(self, n: int) -> np.ndarray: ...

    def queue_event(self, endpoint: Any, frame_offset: int, payload: Any = ...) -> None: ...


def _open(path: str | Path | mido.MidiFile) -> tuple[mido.MidiFile, str]:
    if isinstance(path, mido.MidiFile):
        return path, path.filename or "<MidiFile>"
    p = Path(path)
    if not p.exists():
        raise MidiFileError(f"MIDI file not found: {p}")
    try:
        return mido.MidiFile(p), str(p)
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise MidiFileError(f"{p}: not a readable standard MIDI file ({type(exc).__name__}: {exc})") from exc


def timed_messages(path: str | Path | mido.MidiFile) -> list[tuple[Fraction, mido.Message]]:
    """Every message of the file (meta ones included) with its exact time in seconds."""
    mid, name = _open(path)
    if mid.type == 2:
        raise MidiFileError(
            f"{name}: type 2 MIDI files hold independent sequences with no shared timeline; "
            "only types 0 and 1 can be played"
        )
    if mid.ticks_per_beat <= 0:
        raise MidiFileError(f"{name}: ticks per beat must be positive, got {mid.ticks_per_beat}")
    tempo = DEFAULT_TEMPO
    seconds = Fraction(0)
    out: list[tuple[Fraction, mido.Message]] = []
    for msg in mido.merge_tracks(mid.tracks):
        if msg.time > 0:
            seconds += Fraction(msg.time * tempo, 1_000_000 * mid.ticks_per_beat)
        out.append((seconds, msg))
        if msg.type == "set_tempo":
            tempo = msg.tempo
    return out


def seconds_to_frame(seconds: Fraction | float, sample_rate: float) -> int:
    """The sample an event at ``seconds`` lands on: ``round`` (halves to even) of the exact product."""
    return round(Fraction(seconds) * Fraction(sample_rate))


def midi_file_events(path: str | Path | mido.MidiFile, sample_rate: float) -> list[tuple[int, MidiFields]]:
    """The file's channel voice messages as ``(frame, (status, data1, data2))``, in playback order.

    Frames count from the file's start at ``sample_rate``; see the module docstring for the
    rounding rule.
    """
    _check_rate(sample_rate)
    return [
        (seconds_to_frame(t, sample_rate), midi_fields(msg))
        for t, msg in timed_messages(path)
        if is_channel_message(msg)
    ]


def midi_file_duration(path: str | Path | mido.MidiFile) -> float:
    """The file's length in seconds: the time of its last message (normally the end-of-track)."""
    messages = timed_messages(path)
    return float(messages[-1][0]) if messages else 0.0


def render_midi(
    graph_like: GraphLike,
    midi_input: Any,
    path: str | Path | mido.MidiFile,
    sample_rate: float | None = None,
    block_size: int = 256,
    tail_seconds: float = TAIL_SECONDS,
    seconds: float | None = None,
    progress: Progress = None,
    max_seconds: float | None = MAX_RENDER_SECONDS,
) -> np.ndarray:
    """Render a graph driven by a MIDI file; returns the audio, shape (n,) or (channels, n).

    Works block by block, the way a real-time host does: before each block it queues that block's
    events on ``midi_input`` (the graph's MidiParser ``midi`` input, see
    :func:`oscen.midi.find_midi_input`) with frame offsets relative to the block's start, then
    calls ``process_block``. Events therefore land on exactly the frame the file says, whatever
    the block size, and the same loop drives the interpreted Graph and the JIT's JitGraph.

    The length is the file's length plus ``tail_seconds`` (for release and reverb tails), or
    ``seconds`` when given (events after it are not played). A length beyond ``max_seconds``
    (:data:`oscen.io.render.MAX_RENDER_SECONDS`, one hour; None lifts it) raises
    :class:`~oscen.io.render.RenderLimitError` before any work: a valid file whose last event lies
    years in is refused at once instead of filling memory. :func:`render_midi_to_file` streams to
    a sound file in bounded memory instead of returning the signal. Frames count from the graph's
    current position. ``progress``: as for :func:`oscen.io.render` (None: a bar when on a
    terminal and slow), or a callable given the number of frames done after each block.
    """
    total, feed = _plan(
        graph_like, midi_input, path, sample_rate, block_size, tail_seconds, seconds, max_seconds
    )
    blocks = render_blocks(graph_like, total, block_size, progress, feed, who="render_midi")
    if total == 0:
        return np.asarray(graph_like.process_block(0))
    return collect(graph_like, blocks, total)


def render_midi_to_file(
    graph_like: GraphLike,
    midi_input: Any,
    path: str | Path | mido.MidiFile,
    out: str | Path,
    sample_rate: float | None = None,
    block_size: int = 256,
    tail_seconds: float = TAIL_SECONDS,
    seconds: float | None = None,
    progress: Progress = None,
    subtype: str | None = None,
    normalize: bool = False,
    peak_db: float = -1.0,
    max_seconds: float | None = MAX_RENDER_SECONDS,
) -> RenderResult:
    """:func:`render_midi` streamed into the sound file ``out``, in bounded memory (about one buffer).

    The format follows ``out``'s extension, as for :func:`oscen.io.render_to_file`, which also
    describes ``subtype``, ``normalize`` and the clipping warning. The output name, the MIDI file
    and the length are all checked before the first sample is rendered.
    """
    fmt = prepare_output(out, subtype, "render_midi_to_file")
    total, feed = _plan(
        graph_like, midi_input, path, sample_rate, block_size, tail_seconds, seconds, max_seconds
    )
    blocks = render_blocks(graph_like, total, block_size, progress, feed, who="render_midi_to_file")
    return stream_to_file(graph_like, blocks, out, fmt, normalize, peak_db, "render_midi_to_file")


def _plan(
    graph_like: GraphLike,
    midi_input: Any,
    path: str | Path | mido.MidiFile,
    sample_rate: float | None,
    block_size: int,
    tail_seconds: float,
    seconds: float | None,
    max_seconds: float | None,
) -> tuple[int, Callable[[int, int], None]]:
    """Check everything and time the file: (frames to render, the callback queueing each block's events)."""
    rate = float(sample_rate if sample_rate is not None else graph_like.sample_rate)
    _check_rate(rate)
    graph_rate = getattr(graph_like, "sample_rate", None)
    if graph_rate is not None and float(graph_rate) != rate:
        raise MidiFileError(
            f"render_midi: sample_rate {rate} differs from the graph's {graph_rate}; events would land at the wrong samples"
        )
    check_block_size(block_size, "render_midi", MidiFileError)
    messages = timed_messages(path)
    if seconds is None:
        if (
            not isinstance(tail_seconds, (int, float))
            or not tail_seconds >= 0
            or not math.isfinite(tail_seconds)
        ):
            raise MidiFileError(f"render_midi: tail_seconds must be a finite number >= 0, got {tail_seconds}")
        end = messages[-1][0] if messages else Fraction(0)
        length = end + Fraction(tail_seconds)
        why = f" (the file's last message is at {float(end):.6g} s, plus a {tail_seconds:g} s tail)"
    else:
        if not isinstance(seconds, (int, float)) or not seconds >= 0 or not math.isfinite(seconds):
            raise MidiFileError(f"render_midi: seconds must be a finite number >= 0, got {seconds}")
        length = Fraction(seconds)
        why = ""
    check_length(float(length), max_seconds, "render_midi", why)
    total = seconds_to_frame(length, rate)
    events = [(seconds_to_frame(t, rate), midi_fields(m)) for t, m in messages if is_channel_message(m)]
    i = 0

    def feed(start: int, n: int) -> None:
        # Each event from the block holding it, offset from that block's start.
        nonlocal i
        while i < len(events) and events[i][0] < start + n:
            frame, fields = events[i]
            graph_like.queue_event(midi_input, frame - start, fields)
            i += 1

    return total, feed


def _check_rate(sample_rate: float) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or not sample_rate > 0:
        raise MidiFileError(f"sample_rate must be a positive number, got {sample_rate!r}")
