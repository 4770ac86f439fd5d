"""The MidiParser node: raw MIDI events in, typed note / controller / bend events out.

It runs inside the graph (rather than decoding on the Python side before queueing) so that a MIDI
event queued at frame ``k`` is decoded *at* frame ``k`` and every downstream event -- the voice
allocator's gates, the envelopes -- happens at that same sample, in interpreted and compiled mode
alike. Its code stays inside the compilable subset: integer arithmetic instead of bit operations,
no strings, no exceptions (a malformed message is dropped; validation with readable errors happens
where MIDI enters the program, in :func:`oscen.midi.messages.midi_fields`).

"Malformed" means any field that is not a whole number in its byte range: NaN, inf, 1e20,
negatives, fractions, a status outside 0x80..0xEF. The range checks come before any ``int()``,
so such a message is dropped identically by the interpreter and by compiled code (where an
out-of-range conversion would otherwise trap and send JitGraph back to the interpreter).
"""

from __future__ import annotations

from oscen.graph import EventInput, EventOutput, Node

BEND_CENTRE = 8192
"""The 14-bit pitch-wheel value at rest."""


class MidiParser(Node):
    """Decode MIDI channel voice messages ``(status, data1, data2)`` into typed events.

    Outputs (each emitted at the sample the MIDI event arrives):

    - ``note_on``: (note 0..127, velocity 0..1, channel 0..15). A note-on with velocity 0 is a
      note-off (MIDI running-status convention) and comes out of ``note_off`` instead.
    - ``note_off``: (note, release velocity 0..1, channel).
    - ``control_change``: (controller 0..127, value 0..1, channel).
    - ``pitch_bend``: (value -1..1, channel); the 14-bit wheel maps -8192 -> -1, 8192 (centre) -> 0,
      16383 -> +1 (the two halves are scaled separately so both extremes are reached exactly).
    - ``aftertouch``: (pressure 0..1, channel) for channel pressure.
    - ``program_change``: (program 0..127, channel).

    ``channel`` selects one MIDI channel (0..15, i.e. MIDI channel 1 is 0); the default -1 listens
    to all of them (omni).
    """

    midi = EventInput()
    note_on = EventOutput()
    note_off = EventOutput()
    control_change = EventOutput()
    pitch_bend = EventOutput()
    aftertouch = EventOutput()
    program_change = EventOutput()

    def __init__(self, channel: int = -1) -> None:
        if not (isinstance(channel, int) and -1 <= channel <= 15):
            raise ValueError(f"MidiParser channel must be 0..15, or -1 for all channels; got {channel!r}")
        self.channel = channel

    def on_midi(self, status: float, data1: float, data2: float) -> None:
        # Range checks come before any int(): int() of NaN, inf or 1e20 raises in the interpreter
        # and traps in compiled code, and a malformed message must be dropped, not be a fault.
        # Comparisons with NaN are False, so NaN fails every check. A fractional field is not a
        # byte either (midi_fields refuses it): the integrality test runs once the range is safe.
        in_range = status >= 128.0 and status <= 239.0 and data1 >= 0.0 and data1 <= 127.0
        if in_range and data2 >= 0.0 and data2 <= 127.0:
            s = int(status)
            d1 = int(data1)
            d2 = int(data2)
            if float(s) == status and float(d1) == data1 and float(d2) == data2:
                kind = s // 16
                ch = s - kind * 16
                if self.channel < 0 or ch == self.channel:
                    self.dispatch(kind, d1, d2, float(ch))

    def dispatch(self, kind: int, d1: int, d2: int, ch: float) -> None:
        """Emit the typed event for one valid message (kind is the status high nibble)."""
        if kind == 9:
            if d2 > 0:
                self.note_on.emit(float(d1), d2 / 127.0, ch)
            else:
                self.note_off.emit(float(d1), 0.0, ch)
        elif kind == 8:
            self.note_off.emit(float(d1), d2 / 127.0, ch)
        elif kind == 11:
            self.control_change.emit(float(d1), d2 / 127.0, ch)
        elif kind == 14:
            raw = d2 * 128 + d1 - BEND_CENTRE
            if raw < 0:
                self.pitch_bend.emit(raw / 8192.0, ch)
            else:
                self.pitch_bend.emit(raw / 8191.0, ch)
        elif kind == 13:
            self.aftertouch.emit(d1 / 127.0, ch)
        elif kind == 12:
            self.program_change.emit(float(d1), ch)

    def process(self, sample_rate: float) -> None:
        # All the work happens in on_midi, at the event's sample; nothing flows per sample.
        pass
