"""The VoiceAllocator node: assigns incoming notes to N voices.

``VoiceAllocator(16)`` returns an instance of the generated class ``VoiceAllocator16``, which has
one ``pitch{k}`` value output (Hz) and one ``gate{k}`` event output (velocity; 0 = release) per
voice. The number of endpoints depends on N, and the JIT compiles a node from the source text of
its methods, so the per-voice part of the class is *generated source*: it is ``exec``'d in a
synthetic module whose pseudo file is registered in :mod:`linecache`, which makes
``inspect.getsource`` work on the generated methods and class exactly as on hand-written ones.
The voice-independent logic (allocation, stealing, bend, sustain) is ordinary code in the base
class below and reaches voice ``k`` only through the two generated dispatch methods
``_set_pitch(k, hz)`` and ``_emit_gate(k, velocity)`` (balanced if/else trees over ``k``: about
log2(N) comparisons per call).

Gates are not emitted where a handler decides them: the handlers append (voice, velocity) to a
small queue and ``process``, which runs at the same sample right after them, emits the queue in
order. The voices see exactly the same events at the same sample (an event emitted by ``process``
reaches its receivers at that sample too), but ``_emit_gate`` has one call site instead of five:
the JIT pastes a method that emits into each caller (an emit cannot be compiled out of line), and
five copies of a 16-way dispatch of emits made the allocator's compiled code ~300 KB.

Allocation policy (see docs/midi.md):

- A note-on for a note that is already sounding (key held, or held by the sustain pedal) reuses
  its voice: new gate with the new velocity, no second voice for the same key.
- Otherwise a free voice is used: the one *released longest ago*, so a release tail rings as long
  as possible before its voice is reused. Initially voice 0 is "oldest", then 1, 2...
- With no free voice, the voice whose note *started* longest ago is stolen. It gets its new pitch
  and a new gate (the new velocity) at the same sample, with no release in between, so the
  envelope continues from its current level (no click to zero).
- A note-off releases the voice holding that note (gate 0). A note-off for a note that no longer
  has a voice (it was stolen) is ignored.
- Notes are keyed by (note, channel): the same note on two channels takes two voices.
- Sustain pedal (CC 64 >= 64), per MIDI channel: note-offs on that channel are deferred until the
  pedal is lifted. CC 120 (all sound off) and CC 123 (all notes off) release every voice of the
  channel.
- Pitch bend, per MIDI channel, applies to the voices playing that channel's notes, sounding or
  releasing: ``hz = 440 * 2 ** ((note - 69 + bend * bend_range) / 12)``, ``bend`` in -1..1 and the
  value input ``bend_range`` in semitones.
"""

from __future__ import annotations

import linecache
import math
import sys
import types

import numpy as np

from oscen.graph import EventInput, EventOutput, Node, ValueInput, ValueOutput

MAX_VOICES = 256
"""Upper bound on N: the generated dispatch code is linear in N (its depth is log2(N))."""

GATE_QUEUE = 1024
"""Gate events one allocator can decide at one sample (each note-on or note-off makes at most one,
an all-notes-off one per voice); more raise ``AssertionError`` in both engines. The graph admits
256 events per input and sample from outside (``MAX_EVENTS_PER_SAMPLE``), so only a node feeding
the allocator thousands of events at one sample can reach it."""

NO_NOTE = -1
SUSTAIN_CONTROLLER = 64
ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123
A4_HZ = 440.0
A4_NOTE = 69.0
CHANNELS = 16

_classes: dict[int, type[VoiceAllocator]] = {}


class VoiceAllocator(Node):
    """N-voice polyphonic note allocator; ``VoiceAllocator(n)`` is an instance of ``VoiceAllocator{n}``.

    Inputs: ``note_on`` (note, velocity 0..1, channel) and ``note_off`` (note, velocity, channel)
    events, as MidiParser emits them; ``pitch_bend`` (value -1..1, channel) events;
    ``control_change`` (controller, value 0..1, channel) events for the sustain pedal and
    all-notes-off; the value input ``bend_range`` in semitones (default 2).

    Outputs per voice k: ``pitch{k}`` (Hz, equal temperament, A4 = 440 Hz, plus bend) and
    ``gate{k}`` (velocity 0..1 when a note starts, 0 when it is released). The pitch output is set
    in the same event handler that emits the gate, so a voice sees its new pitch at the very sample
    its gate opens.
    """

    note_on = EventInput()
    note_off = EventInput()
    pitch_bend = EventInput()
    control_change = EventInput()
    bend_range = ValueInput(2.0)

    voices: int = 0
    """Number of voices (a class constant of each generated class)."""

    def __new__(cls, voices: int | None = None, *args: object, **kwargs: object) -> VoiceAllocator:
        if cls is VoiceAllocator:
            if voices is None:
                raise TypeError("VoiceAllocator(voices): say how many voices, e.g. VoiceAllocator(16)")
            cls = voice_allocator_class(voices)
        return super().__new__(cls)

    def __init__(self, voices: int | None = None, bend_range: float = 2.0) -> None:
        if voices is not None and voices != type(self).voices:
            raise ValueError(f"{type(self).__name__} has {type(self).voices} voices, asked for {voices}")
        n = type(self).voices
        self.n = n
        self.bend_range = float(bend_range)
        # Per voice: the key (note + 128 * channel) it plays or NO_NOTE, its note number and
        # channel, whether its key is down (or held by the pedal), whether the pedal alone holds
        # it, and the time stamp of its last start (while sounding) or release (while free).
        self.key = np.full(n, NO_NOTE, dtype=np.int64)
        self.note = np.zeros(n, dtype=np.int64)
        self.channel = np.zeros(n, dtype=np.int64)
        self.sounding = np.zeros(n, dtype=np.int64)
        self.sustained = np.zeros(n, dtype=np.int64)
        # Voice 0 counts as released longest ago, so an idle allocator hands out 0, 1, 2, ...
        self.stamp = np.arange(n, dtype=np.int64) - n
        self.clock = 0
        self.applied_range = self.bend_range
        # Per MIDI channel: pitch-bend position (-1..1) and sustain pedal (1 = down).
        self.bend = np.zeros(CHANNELS, dtype=np.float64)
        self.pedal = np.zeros(CHANNELS, dtype=np.int64)
        # Gates decided by this sample's handlers, emitted in order by process (see the module doc).
        self.pending_voice = np.zeros(GATE_QUEUE, dtype=np.int64)
        self.pending_velocity = np.zeros(GATE_QUEUE, dtype=np.float64)
        self.pending = 0

    # ---------------------------------------------------------------- events
    # The handlers are thin: their work is in helpers called under an `if`, which the JIT compiles
    # once, out of line, instead of pasting it into every handler that needs it.
    def on_note_on(self, note: float, velocity: float, channel: float) -> None:
        if velocity <= 0.0:
            self.on_note_off(note, 0.0, channel)
        else:
            self.start_note(note, velocity, channel)

    def on_note_off(self, note: float, velocity: float, channel: float) -> None:
        ch = self.channel_of(channel)
        v = self.find_sounding(int(note) + 128 * ch)
        if v >= 0:
            self.end_note(v, ch)

    def on_pitch_bend(self, value: float, channel: float) -> None:
        ch = self.channel_of(channel)
        bend = max(-1.0, min(1.0, value))
        if bend != self.bend[ch]:  # unchanged: every pitch of the channel is already this one
            self.bend[ch] = bend
            self.retune_channel(ch)

    def on_control_change(self, controller: float, value: float, channel: float) -> None:
        c = int(controller)
        ch = self.channel_of(channel)
        if c == SUSTAIN_CONTROLLER:
            if value >= 0.5:
                self.pedal[ch] = 1
            else:
                self.pedal[ch] = 0
                self.release_channel(ch, 1)
        elif c == ALL_SOUND_OFF or c == ALL_NOTES_OFF:
            self.pedal[ch] = 0
            self.release_channel(ch, 0)

    def process(self, sample_rate: float) -> None:
        # bend_range may be set or ramped at any time: retune sounding and releasing voices then.
        if self.bend_range != self.applied_range:
            self.retune()
        if self.pending > 0:
            self.send_gates()

    # ---------------------------------------------------------------- helpers
    def start_note(self, note: float, velocity: float, channel: float) -> None:
        """A note-on (velocity > 0): pick its voice (see the module doc), set its pitch, queue its gate."""
        n = int(note)
        ch = self.channel_of(channel)
        key = n + 128 * ch
        v = self.find_voice(key)
        self.key[v] = key
        self.note[v] = n
        self.channel[v] = ch
        self.sounding[v] = 1
        self.sustained[v] = 0
        self.stamp[v] = self.tick()
        self._set_pitch(v, self.pitch_of(n, ch))
        self.queue_gate(v, velocity)

    def end_note(self, v: int, ch: int) -> None:
        """The key of voice ``v`` went up: release it, or leave it to the channel's sustain pedal."""
        if self.pedal[ch] == 1:
            self.sustained[v] = 1
        else:
            self.release(v)

    def release_channel(self, ch: int, sustained_only: int) -> None:
        """Release the sounding voices of channel ``ch`` (only those the pedal holds, if asked), in voice order."""
        for v in range(self.n):
            if (
                self.sounding[v] == 1
                and self.channel[v] == ch
                and (sustained_only == 0 or self.sustained[v] == 1)
            ):
                self.release(v)

    def retune_channel(self, ch: int) -> None:
        """New pitches for the voices playing channel ``ch`` (sounding or releasing), after a bend."""
        for v in range(self.n):
            if self.key[v] != NO_NOTE and self.channel[v] == ch:
                self._set_pitch(v, self.pitch_of(self.note[v], ch))

    def tick(self) -> int:
        """The next time stamp: allocation order, not samples (several events share a sample)."""
        self.clock += 1
        return self.clock

    def release(self, v: int) -> None:
        self.sounding[v] = 0
        self.sustained[v] = 0
        self.stamp[v] = self.tick()
        self.queue_gate(v, 0.0)

    def queue_gate(self, v: int, velocity: float) -> None:
        """Gate ``velocity`` for voice ``v``, emitted by this sample's ``process``."""
        assert self.pending < GATE_QUEUE, (
            "VoiceAllocator: more than GATE_QUEUE (1024) gate events at one sample"
        )
        self.pending_voice[self.pending] = v
        self.pending_velocity[self.pending] = velocity
        self.pending += 1

    def send_gates(self) -> None:
        """Emit the queued gates in the order the handlers decided them: the only ``_emit_gate`` call."""
        for i in range(self.pending):
            self._emit_gate(self.pending_voice[i], self.pending_velocity[i])
        self.pending = 0

    def find_sounding(self, key: int) -> int:
        """The voice whose key is down (or pedal-held) for ``key``, or -1."""
        found = -1
        for v in range(self.n):
            if found < 0 and self.sounding[v] == 1 and self.key[v] == key:
                found = v
        return found

    def find_voice(self, key: int) -> int:
        """The voice for a note-on of ``key``, in one pass over the voices: the one sounding that
        key; else the free voice released longest ago; else the one whose note started longest ago
        (stolen). Ties go to the lowest voice number."""
        sounding = -1
        free = -1
        free_stamp = 0
        oldest = 0
        for v in range(self.n):
            stamp = self.stamp[v]
            if self.sounding[v] == 1:
                if sounding < 0 and self.key[v] == key:
                    sounding = v
            elif free < 0 or stamp < free_stamp:
                free = v
                free_stamp = stamp
            if stamp < self.stamp[oldest]:
                oldest = v
        if sounding >= 0:
            return sounding
        if free >= 0:
            return free
        return oldest

    def channel_of(self, channel: float) -> int:
        """A MIDI channel number as an index 0..15 (out-of-range values are clamped)."""
        return max(0, min(CHANNELS - 1, int(channel)))

    def pitch_of(self, note: int, ch: int) -> float:
        return A4_HZ * math.pow(2.0, (note - A4_NOTE + self.bend[ch] * self.bend_range) / 12.0)

    def retune(self) -> None:
        self.applied_range = self.bend_range
        for v in range(self.n):
            if self.key[v] != NO_NOTE:
                self._set_pitch(v, self.pitch_of(self.note[v], self.channel[v]))

    # Generated per voice count (an if/else tree over the voice index); see voice_allocator_class.
    def _set_pitch(self, voice: int, hz: float) -> None:
        pass

    def _emit_gate(self, voice: int, velocity: float) -> None:
        pass


def _dispatch(body: str, lo: int, hi: int, indent: int) -> list[str]:
    """``body`` (formatted with ``k``) for ``voice == k``, k in lo..hi-1: a balanced if/else tree
    on ``voice < mid``, so a call makes about log2(N) comparisons. A voice outside 0..N-1 (never
    passed by the allocator) lands in the nearest end of the tree's range."""
    pad = " " * indent
    if hi - lo == 1:
        return [pad + body.format(k=lo)]
    mid = (lo + hi) // 2
    return [
        f"{pad}if voice < {mid}:",
        *_dispatch(body, lo, mid, indent + 4),
        f"{pad}else:",
        *_dispatch(body, mid, hi, indent + 4),
    ]


def generated_source(voices: int) -> str:
    """The Python source of ``VoiceAllocator{voices}``: endpoints and per-voice dispatch."""
    name = f"VoiceAllocator{voices}"
    lines = [
        f"class {name}(VoiceAllocator):",
        f'    """VoiceAllocator with {voices} voices (generated by oscen.midi.voices)."""',
        "",
        f"    voices = {voices}",
    ]
    for k in range(voices):
        lines.append(f"    gate{k} = EventOutput()")
        lines.append(f"    pitch{k} = ValueOutput({A4_HZ!r})")
    for method, args, body in (
        ("_set_pitch", "voice: int, hz: float", "self.pitch{k} = hz"),
        ("_emit_gate", "voice: int, velocity: float", "self.gate{k}.emit(velocity)"),
    ):
        lines += ["", f"    def {method}(self, {args}) -> None:", *_dispatch(body, 0, voices, 8)]
    return "\n".join(lines) + "\n"


def voice_allocator_class(voices: int) -> type[VoiceAllocator]:
    """The (cached) generated VoiceAllocator subclass with ``voices`` voices.

    The class lives in its own synthetic module ``oscen.midi._generated.VoiceAllocator{N}`` whose
    ``__file__`` is a pseudo filename held in :mod:`linecache`, so both ``inspect.getsource(cls)``
    and ``inspect.getsource(cls._emit_gate)`` return the generated text.
    """
    if isinstance(voices, bool) or not isinstance(voices, (int, np.integer)) or not 1 <= voices <= MAX_VOICES:
        raise ValueError(f"VoiceAllocator needs 1..{MAX_VOICES} voices, got {voices!r}")
    voices = int(voices)
    cls = _classes.get(voices)
    if cls is not None:
        return cls
    name = f"VoiceAllocator{voices}"
    source = generated_source(voices)
    filename = f"<oscen.midi.voices generated {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    module_name = f"oscen.midi._generated.{name}"
    module = types.ModuleType(module_name, f"Generated {name} (see oscen.midi.voices).")
    module.__file__ = filename
    module.__dict__.update(
        math=math, EventOutput=EventOutput, ValueOutput=ValueOutput, VoiceAllocator=VoiceAllocator
    )
    sys.modules[module_name] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    cls = module.__dict__[name]
    _classes[voices] = cls
    return cls
