"""MIDI bytes to graph events and back.

A graph event carries up to four floats, so a MIDI channel voice message travels through the graph
as the three floats ``(status, data1, data2)`` -- exactly its bytes. Keeping the raw bytes (rather
than decoding here) means a single event input can carry every kind of channel message, and the
decoding happens in :class:`oscen.midi.parser.MidiParser`, at the sample the event arrives, in code
the JIT compiles like any other node.

Only *channel voice* messages (status 0x80-0xEF) are events: system exclusive, clock, and other
system messages have no meaning for a synth graph and cannot be squeezed into four numbers. Use
:func:`is_channel_message` to filter a stream before converting it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from numbers import Integral, Real
from typing import Any

NOTE_OFF = 0x80
NOTE_ON = 0x90
POLY_AFTERTOUCH = 0xA0
CONTROL_CHANGE = 0xB0
PROGRAM_CHANGE = 0xC0
CHANNEL_AFTERTOUCH = 0xD0
PITCH_BEND = 0xE0

DATA_BYTES: dict[int, int] = {
    NOTE_OFF: 2,
    NOTE_ON: 2,
    POLY_AFTERTOUCH: 2,
    CONTROL_CHANGE: 2,
    PROGRAM_CHANGE: 1,
    CHANNEL_AFTERTOUCH: 1,
    PITCH_BEND: 2,
}
"""Data bytes following each channel voice status (high nibble)."""

_KIND_NAMES: dict[int, str] = {
    NOTE_OFF: "note_off",
    NOTE_ON: "note_on",
    POLY_AFTERTOUCH: "polytouch",
    CONTROL_CHANGE: "control_change",
    PROGRAM_CHANGE: "program_change",
    CHANNEL_AFTERTOUCH: "aftertouch",
    PITCH_BEND: "pitchwheel",
}

MidiFields = tuple[float, float, float]


class MidiError(ValueError):
    """Bytes that are not a MIDI channel voice message; the message says which byte is wrong and why."""


def _as_bytes(message: Any) -> list[int]:
    """The message's bytes as ints, from a mido.Message, bytes, bytearray, or a sequence of ints."""
    if hasattr(message, "bytes") and callable(message.bytes) and hasattr(message, "type"):
        if getattr(message, "is_meta", False):
            raise MidiError(f"{message.type!r} is a MIDI file meta message, not a MIDI event")
        return list(message.bytes())
    if isinstance(message, (bytes, bytearray, memoryview)):
        return list(bytes(message))
    if isinstance(message, (str, dict)) or not isinstance(message, (Sequence, Iterable)):
        raise MidiError(
            f"expected MIDI bytes (bytes, a list of ints, or a mido.Message), got {type(message).__name__}"
        )
    out = []
    for i, b in enumerate(message):
        if isinstance(b, bool) or not (isinstance(b, Integral) or isinstance(b, float) and b.is_integer()):
            raise MidiError(f"MIDI byte {i} must be an int 0..255, got {b!r}")
        out.append(int(b))
    return out


def is_channel_message(message: Any) -> bool:
    """True for a channel voice message (what :func:`midi_fields` converts); False for system/meta ones."""
    if getattr(message, "is_meta", False):
        return False
    try:
        data = _as_bytes(message)
    except MidiError:
        return False
    return bool(data) and 0x80 <= data[0] <= 0xEF


def midi_fields(message: Any) -> MidiFields:
    """Convert one MIDI channel voice message to the event fields ``(status, data1, data2)``.

    Accepts a ``mido.Message``, ``bytes``/``bytearray``, or a sequence of ints. Two-byte messages
    (program change, channel aftertouch) get ``data2 = 0``. A note-on with velocity 0 is kept as
    it is (the parser treats it as a note-off, as the MIDI spec says), so what reaches the graph
    is exactly what the instrument sent.

    Raises :class:`MidiError` with the reason for anything else: an empty message, a data byte
    where a status byte should be (running status is not resolved here; see
    :func:`split_messages`), system messages, wrong lengths, data bytes above 127.
    """
    data = _as_bytes(message)
    if not data:
        raise MidiError("empty MIDI message: expected a status byte 0x80..0xEF and its data bytes")
    status = data[0]
    if not 0 <= status <= 0xFF:
        raise MidiError(f"MIDI status byte must be 0..255, got {status}")
    if status < 0x80:
        raise MidiError(
            f"MIDI message starts with data byte {status:#04x}, not a status byte (0x80..0xEF); "
            "running status must be resolved first (oscen.midi.split_messages does this)"
        )
    if status >= 0xF0:
        raise MidiError(
            f"status {status:#04x} is a system message (sysex, clock, ...), not a channel voice message; "
            "only channel voice messages (0x80..0xEF) become graph events -- filter with is_channel_message"
        )
    kind = status & 0xF0
    expected = DATA_BYTES[kind]
    if len(data) != 1 + expected:
        raise MidiError(
            f"{_KIND_NAMES[kind]} (status {status:#04x}) takes {expected} data byte(s), got {len(data) - 1}: "
            f"{' '.join(f'{b:02x}' for b in data)}"
        )
    for i, b in enumerate(data[1:], start=1):
        if not 0 <= b <= 0x7F:
            raise MidiError(
                f"{_KIND_NAMES[kind]} data byte {i} must be 0..127, got {b}: "
                f"{' '.join(f'{x:02x}' for x in data)}"
            )
    d1 = data[1]
    d2 = data[2] if expected == 2 else 0
    return (float(status), float(d1), float(d2))


def fields_to_bytes(fields: Sequence[float]) -> bytes:
    """The inverse of :func:`midi_fields`: event fields back to MIDI bytes (2 or 3 of them)."""
    if len(fields) < 2:
        raise MidiError(f"MIDI event fields are (status, data1, data2), got {tuple(fields)!r}")
    ints = []
    for i, f in enumerate(fields):
        if isinstance(f, bool) or not isinstance(f, Real) or not math.isfinite(f) or f != int(f):
            raise MidiError(f"MIDI event field {i} must be a whole number, got {f!r} in {tuple(fields)!r}")
        ints.append(int(f))
    status = ints[0]
    if not 0x80 <= status <= 0xEF:
        raise MidiError(f"status {fields[0]!r} is not a channel voice status (0x80..0xEF)")
    n = DATA_BYTES[status & 0xF0]
    data = [status] + ints[1 : 1 + n] + [0] * max(0, n - len(fields) + 1)
    midi_fields(data)  # validates
    return bytes(data)


def split_messages(data: Iterable[int] | bytes) -> Iterator[MidiFields]:
    """Split a raw MIDI byte stream (as read from a serial port or a wire dump) into event fields.

    Resolves running status (data bytes continuing the last channel status), skips system
    real-time bytes (0xF8-0xFF, which may appear anywhere) and system exclusive / common messages,
    and raises :class:`MidiError` for data bytes with no status to run on.
    """
    running: int | None = None
    pending: list[int] = []
    in_system = False
    for i, raw in enumerate(bytes(data) if isinstance(data, (bytes, bytearray)) else data):
        b = int(raw)
        if not 0 <= b <= 0xFF:
            raise MidiError(f"byte {i} of the MIDI stream is {b}, not 0..255")
        if b >= 0xF8:  # real-time: clock, start, stop, active sensing... interleave freely
            continue
        if b >= 0xF0:  # sysex start/end or system common: cancels running status
            running = None
            pending = []
            in_system = b != 0xF7
            continue
        if b >= 0x80:
            running = b
            pending = []
            in_system = False
            continue
        if in_system:
            continue
        if running is None:
            raise MidiError(
                f"byte {i} of the MIDI stream ({b:#04x}) is a data byte with no status byte before it"
            )
        pending.append(b)
        if len(pending) == DATA_BYTES[running & 0xF0]:
            yield midi_fields([running, *pending])
            pending = []


# ------------------------------------------------------------------------------ builders
# Two families, so that units are never guessed from a value's type:
#
# * note_on / note_off / control_change / pitch_bend take MIDI's own integer units (note,
#   velocity, controller and value 0..127; wheel -8192..8191), exactly what goes on the wire.
# * the *_normalized builders take the units MidiParser emits (velocity and controller values
#   0..1, bend -1..1) and convert with the inverse of the parser's scaling, so the parser's
#   outputs round-trip exactly.
#
# A float given to an integer argument (note_on(60, 1.0): velocity 1/127, or full scale?) is
# refused with a message naming the argument, its range and the other family.


def note_on(note: int, velocity: int = 100, channel: int = 0) -> MidiFields:
    """Event fields of a note-on: note 0..127, velocity 0..127 (MIDI units; 0 means note-off in
    MIDI), channel 0..15. For a velocity 0..1 use :func:`note_on_normalized`."""
    return _build(
        "note_on", NOTE_ON, channel, _data("note_on", "note", note), _velocity("note_on", velocity, "note_on")
    )


def note_off(note: int, velocity: int = 0, channel: int = 0) -> MidiFields:
    """Event fields of a note-off: note and release velocity 0..127 (MIDI units), channel 0..15."""
    return _build(
        "note_off",
        NOTE_OFF,
        channel,
        _data("note_off", "note", note),
        _velocity("note_off", velocity, "note_off"),
    )


def control_change(controller: int, value: int, channel: int = 0) -> MidiFields:
    """Event fields of a control change: controller and value 0..127 (MIDI units), channel 0..15.
    For a value 0..1 use :func:`control_change_normalized`."""
    return _build(
        "control_change",
        CONTROL_CHANGE,
        channel,
        _data("control_change", "controller", controller),
        _data("control_change", "value", value, "control_change_normalized(controller, 0.5)"),
    )


def pitch_bend(value: int, channel: int = 0) -> MidiFields:
    """Event fields of a pitch bend; ``value`` is the 14-bit wheel position -8192..8191 (0 = centre).
    For a bend -1..1 (what MidiParser emits) use :func:`pitch_bend_normalized`."""
    raw = _integer("pitch_bend", "value", value, -8192, 8191, "pitch_bend_normalized(0.5)") + 8192
    return _build("pitch_bend", PITCH_BEND, channel, raw & 0x7F, raw >> 7)


def note_on_normalized(note: int, velocity: float = 0.8, channel: int = 0) -> MidiFields:
    """A note-on with the velocity in MidiParser's units, 0..1 (> 0: a note-on always sounds).

    The MIDI velocity is ``round(velocity * 127)``, but at least 1 for any velocity above 0 (MIDI
    velocity 0 would be a note-off); 0.0 itself gives velocity 0, which the parser treats as a
    note-off. ``note_on_normalized(n, v / 127)`` equals ``note_on(n, v)`` for every v.
    """
    level = _unit("note_on_normalized", "velocity", velocity, 0.0, 1.0)
    midi_velocity = max(1, round(level * 127)) if level > 0 else 0
    return _build(
        "note_on_normalized", NOTE_ON, channel, _data("note_on_normalized", "note", note), midi_velocity
    )


def note_off_normalized(note: int, velocity: float = 0.0, channel: int = 0) -> MidiFields:
    """A note-off with the release velocity in MidiParser's units, 0..1 (``round(velocity * 127)``)."""
    level = _unit("note_off_normalized", "velocity", velocity, 0.0, 1.0)
    return _build(
        "note_off_normalized",
        NOTE_OFF,
        channel,
        _data("note_off_normalized", "note", note),
        round(level * 127),
    )


def control_change_normalized(controller: int, value: float, channel: int = 0) -> MidiFields:
    """A control change with the value in MidiParser's units, 0..1 (``round(value * 127)``)."""
    level = _unit("control_change_normalized", "value", value, 0.0, 1.0)
    return _build(
        "control_change_normalized",
        CONTROL_CHANGE,
        channel,
        _data("control_change_normalized", "controller", controller),
        round(level * 127),
    )


def pitch_bend_normalized(bend: float, channel: int = 0) -> MidiFields:
    """A pitch bend in MidiParser's units, -1..1 (0 = centre).

    The inverse of the parser's scaling, each half on its own: ``round(bend * 8192)`` below the
    centre, ``round(bend * 8191)`` above, so -1, 0 and +1 are the wheel's -8192, 0 and 8191 and a
    parser output fed back gives the same wheel position.
    """
    level = _unit("pitch_bend_normalized", "bend", bend, -1.0, 1.0)
    raw = (round(level * 8192) if level < 0 else round(level * 8191)) + 8192
    return _build("pitch_bend_normalized", PITCH_BEND, channel, raw & 0x7F, raw >> 7)


def _build(func: str, kind: int, channel: Any, d1: int, d2: int) -> MidiFields:
    return (float(kind | _channel(channel, func)), float(d1), float(d2))


def _velocity(func: str, velocity: Any, base: str) -> int:
    return _data(func, "velocity", velocity, f"{base}_normalized(note, 0.8)")


def _data(func: str, name: str, value: Any, alternative: str | None = None) -> int:
    return _integer(func, name, value, 0, 127, alternative)


def _integer(func: str, name: str, value: Any, low: int, high: int, alternative: str | None = None) -> int:
    """``value`` as an int in low..high, or a MidiError naming the function, the argument and the range."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        hint = ""
        if alternative is not None and isinstance(value, float):
            hint = f"; for a value in MidiParser's units (0..1, or -1..1 for a bend) use {alternative}"
        raise MidiError(
            f"{func}: {name} must be an int {low}..{high} (MIDI units), got {value!r} "
            f"({type(value).__name__}){hint}"
        )
    if not low <= value <= high:
        raise MidiError(f"{func}: {name} must be {low}..{high}, got {value}")
    return int(value)


def _unit(func: str, name: str, value: Any, low: float, high: float) -> float:
    """``value`` as a float in low..high (NaN and inf refused), or a MidiError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise MidiError(
            f"{func}: {name} must be a number {low:g}..{high:g}, got {value!r} ({type(value).__name__})"
        )
    level = float(value)
    if not low <= level <= high:  # also False for NaN
        raise MidiError(f"{func}: {name} must be {low:g}..{high:g}, got {value!r}")
    return level


def _channel(channel: Any, func: str = "MIDI") -> int:
    if isinstance(channel, bool) or not isinstance(channel, Integral) or not 0 <= channel <= 15:
        raise MidiError(f"{func}: channel must be an int 0..15 (MIDI channel 1 is 0), got {channel!r}")
    return int(channel)
