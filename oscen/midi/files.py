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

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import mido
import numpy as np

from .messages import MidiError, MidiFields, is_channel_message, midi_fields

DEFAULT_TEMPO = 500_000
"""Microseconds per beat before the first set_tempo (120 BPM), as the MIDI file spec says."""


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
    tail_seconds: float = 2.0,
    seconds: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Render a graph driven by a MIDI file; returns the audio, shape (n,) or (channels, n).

    Works block by block, the way a real-time host does: before each block it queues that block's
    events on ``midi_input`` (the graph's MidiParser ``midi`` input, see
    :func:`oscen.midi.find_midi_input`) with frame offsets relative to the block's start, then
    calls ``process_block``. Events therefore land on exactly the frame the file says, whatever
    the block size, and the same loop drives the interpreted Graph and the JIT's JitGraph.

    The length is the file's length plus ``tail_seconds`` (for release and reverb tails), or
    ``seconds`` when given (events after it are not played). Frames count from the graph's
    current position. ``progress`` is called with the number of frames done after each block.
    """
    rate = float(sample_rate if sample_rate is not None else graph_like.sample_rate)
    _check_rate(rate)
    graph_rate = getattr(graph_like, "sample_rate", None)
    if graph_rate is not None and float(graph_rate) != rate:
        raise MidiFileError(
            f"render_midi: sample_rate {rate} differs from the graph's {graph_rate}; events would land at the wrong samples"
        )
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise MidiFileError(f"render_midi: block_size must be a positive int, got {block_size!r}")
    messages = timed_messages(path)
    events = [(seconds_to_frame(t, rate), midi_fields(m)) for t, m in messages if is_channel_message(m)]
    if seconds is None:
        if tail_seconds < 0:
            raise MidiFileError(f"render_midi: tail_seconds must be >= 0, got {tail_seconds}")
        end = messages[-1][0] if messages else Fraction(0)
        total = seconds_to_frame(end + Fraction(tail_seconds), rate)
    else:
        if seconds < 0:
            raise MidiFileError(f"render_midi: seconds must be >= 0, got {seconds}")
        total = seconds_to_frame(seconds, rate)

    blocks: list[np.ndarray] = []
    i = 0
    start = 0
    while start < total:
        n = min(block_size, total - start)
        while i < len(events) and events[i][0] < start + n:
            frame, fields = events[i]
            graph_like.queue_event(midi_input, frame - start, fields)
            i += 1
        blocks.append(np.asarray(graph_like.process_block(n)))
        start += n
        if progress is not None:
            progress(start)
    if not blocks:
        return np.asarray(graph_like.process_block(0))
    return np.concatenate(blocks, axis=-1)


def _check_rate(sample_rate: float) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or not sample_rate > 0:
        raise MidiFileError(f"sample_rate must be a positive number, got {sample_rate!r}")
