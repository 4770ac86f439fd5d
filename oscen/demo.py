"""The built-in demo: a small arpeggiated synth line with bass, echo and reverb.

Signal flow (every box is a node in one graph)::

    lead_pitch ─┬─ x2^(+7c) ─ saw_up ───┐
                └─ x2^(-7c) ─ saw_down ─┴─ svf (lowpass) ─ lead_vca ─┬───────────── bus ─ reverb ─ left/right
    filter_env ─ x2400 Hz ─┐    ↑ cutoff_mod                ↑ amp_env │              ↑
    lfo (0.15 Hz) ─────────┴────┘                                      └─ echo (delay) ┘
    bass_pitch ─ sub (sine) ─ bass_vca ─ bus                    ↑ bass_env

Pitch is not an event in oscen (parameters are values), so each voice has a small
:class:`Portamento` node: its ``note`` event carries a frequency, and its ``frequency`` output
drives the oscillators through ordinary connections. Gate events go to the ADSR envelopes at the
same frames. The music is data (:data:`DEMO_NOTES`), turned into frame-exact events by
:func:`demo_events`; because the events are queued through the public ``queue_event`` API before
rendering, the interpreter and the JIT render the same samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Absolute imports: `oscen render oscen/demo.py` loads this file as a patch, outside the package.
from oscen.delay import Delay
from oscen.envelopes import AdsrEnvelope
from oscen.filters import TptFilter
from oscen.gain import Mixer, Multiply
from oscen.graph import EventInput, Graph, Node, ValueInput, ValueOutput
from oscen.oscillators import Oscillator
from oscen.reverb import Reverb

BPM = 120.0
DETUNE_CENTS = 7.0
DEMO_SECONDS = 10.0
"""Four bars at 120 BPM (8 s) and two seconds for the echoes and the reverb tail to ring out."""


class Portamento(Node):
    """Holds the frequency of the last ``note`` event and glides to each new one.

    ``glide`` is a time constant in seconds (0: jump). The first note jumps, so the voice does not
    sweep up from 0 Hz at the start.
    """

    note = EventInput()
    glide = ValueInput(0.0)
    frequency = ValueOutput()

    def __init__(self, glide: float = 0.0) -> None:
        self.glide = float(glide)
        self._target = 0.0
        self._current = 0.0

    def on_note(self, frequency: float) -> None:
        self._target = frequency
        if self._current <= 0.0:
            self._current = frequency

    def process(self, sample_rate: float) -> None:
        if self.glide > 0.0:
            coefficient = 1.0 - math.exp(-1.0 / (self.glide * sample_rate))
            self._current = self._current + (self._target - self._current) * coefficient
        else:
            self._current = self._target
        self.frequency = self._current


@dataclass(frozen=True)
class Note:
    """One note of a voice: times in beats, pitch as a MIDI note number, velocity 0..1."""

    voice: str  # "lead" or "bass"
    start: float
    length: float
    pitch: int
    velocity: float = 1.0


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def _compose() -> tuple[Note, ...]:
    """i - VI - VII - i in A minor: an eighth-note arpeggio over a held bass root, one chord a bar."""
    chords = [  # (bass root, chord tones for the arpeggio)
        (45, (57, 60, 64, 69)),  # Am
        (41, (57, 60, 65, 69)),  # F
        (43, (59, 62, 67, 71)),  # G
        (45, (57, 60, 64, 69)),  # Am
    ]
    shape = (0, 1, 2, 3, 2, 3, 1, 2)  # up, then a turn: index into the chord tones
    notes: list[Note] = []
    for bar, (root, tones) in enumerate(chords):
        start = 4.0 * bar
        notes.append(Note("bass", start, 3.75, root, 0.9))
        last_bar = bar == len(chords) - 1
        steps = shape[:4] if last_bar else shape
        for i, index in enumerate(steps):
            accent = 1.0 if i % 4 == 0 else 0.7
            notes.append(Note("lead", start + 0.5 * i, 0.3, tones[index], accent))
        if last_bar:  # end on the tonic, an octave up, held
            notes.append(Note("lead", start + 2.0, 1.75, tones[0] + 12, 1.0))
    return tuple(notes)


DEMO_NOTES: tuple[Note, ...] = _compose()

VOICES = {
    # voice: (pitch node label, envelope labels gated by its notes)
    "lead": ("lead_pitch", ("amp_env", "filter_env")),
    "bass": ("bass_pitch", ("bass_env",)),
}


def demo_patch(sample_rate: float = 44100.0, events: bool = True) -> Graph:
    """Build the demo graph (stereo output). ``events=True`` also queues the song on it.

    Pass ``events=False`` to wrap the graph in another engine first and queue the song there with
    :func:`demo_events`: ``engine = JitGraph(g); demo_events(engine, g)``.
    """
    graph = Graph(sample_rate)
    add = graph.add_node
    connect = graph.connect

    # Lead: two detuned band-limited saws into a state-variable lowpass with an envelope on the cutoff.
    lead_pitch = add(Portamento(glide=0.012), "lead_pitch")
    ratio = 2.0 ** (DETUNE_CENTS / 1200.0)
    saw_up = add(Oscillator.saw(220.0, 0.3, band_limited=True), "saw_up")
    saw_down = add(Oscillator.saw(220.0, 0.3, band_limited=True, phase=0.37), "saw_down")
    connect(lead_pitch.frequency * ratio, saw_up.frequency)
    connect(lead_pitch.frequency * (1.0 / ratio), saw_down.frequency)

    svf = add(TptFilter(cutoff=350.0, q=2.2), "svf")
    connect(saw_up.output, svf.input)
    connect(saw_down.output, svf.input)
    filter_env = add(AdsrEnvelope(attack=0.004, decay=0.22, sustain=0.12, release=0.2), "filter_env")
    connect(filter_env.output * 2400.0, svf.cutoff_mod)  # Hz added to the cutoff
    lfo = add(Oscillator.sine(0.15, 250.0, phase=0.75), "lfo")  # a slow drift of the base cutoff
    connect(lfo.output, svf.cutoff_mod)

    amp_env = add(AdsrEnvelope(attack=0.004, decay=0.3, sustain=0.45, release=0.18), "amp_env")
    lead_vca = add(Multiply(), "lead_vca")
    connect(svf.lowpass, lead_vca.a)
    connect(amp_env.output, lead_vca.b)

    # Bass: a sub sine on the chord root.
    bass_pitch = add(Portamento(), "bass_pitch")
    sub = add(Oscillator.sine(110.0, 0.35), "sub")
    connect(bass_pitch.frequency, sub.frequency)
    bass_env = add(AdsrEnvelope(attack=0.05, decay=0.4, sustain=0.8, release=0.4), "bass_env")
    bass_vca = add(Multiply(), "bass_vca")
    connect(sub.output, bass_vca.a)
    connect(bass_env.output, bass_vca.b)

    # A dotted-eighth echo on the lead, then everything into the reverb.
    echo = add(Delay(delay_time=0.75 * 60.0 / BPM, feedback=0.38, max_delay=1.0), "echo")
    connect(lead_vca.output, echo.input)
    bus = add(Mixer(2, levels=[1.0, 0.45]), "bus")
    connect(lead_vca.output, bus.input0)
    connect(bass_vca.output, bus.input0)
    connect(echo.output, bus.input1)
    reverb = add(Reverb(room_size=0.72, damping=0.45, wet=0.16, dry=0.6, width=0.9), "reverb")
    connect(bus.output, reverb.input)
    graph.set_output(reverb.left, reverb.right)

    if events:
        demo_events(graph)
    return graph


def demo_events(target: Any, graph: Graph | None = None, notes: tuple[Note, ...] = DEMO_NOTES) -> int:
    """Queue ``notes`` as frame-exact events on ``target`` (a Graph, or an engine wrapping ``graph``).

    Frames count from the target's next sample, so call this before rendering. Returns the number
    of events queued.
    """
    graph = graph if graph is not None else target
    handles = {h.label: h for h in graph.nodes}
    events = sorted(note_events(notes, float(target.sample_rate)), key=lambda e: e[0])
    for frame, label, endpoint, payload in events:
        target.queue_event(getattr(handles[label], endpoint), frame, payload)
    return len(events)


def note_events(notes: tuple[Note, ...], sample_rate: float) -> list[tuple[int, str, str, float]]:
    """(frame, node label, event input, payload) for each note's pitch, gate-on and gate-off.

    Frames are rounded once from beats, so every engine and every run sees identical timing.
    """
    samples_per_beat = 60.0 / BPM * sample_rate
    events: list[tuple[int, str, str, float]] = []
    for note in notes:
        pitch_label, envelopes = VOICES[note.voice]
        on = int(round(note.start * samples_per_beat))
        off = int(round((note.start + note.length) * samples_per_beat))
        events.append((on, pitch_label, "note", midi_to_hz(note.pitch)))
        for env in envelopes:
            events.append((on, env, "gate", note.velocity))
            events.append((off, env, "gate", 0.0))
    return events


def patch(sample_rate: float) -> Graph:
    """So that ``oscen render oscen/demo.py`` works like any patch file."""
    return demo_patch(sample_rate)
