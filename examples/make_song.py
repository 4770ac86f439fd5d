"""Write ``examples/song.mid``: a short A-minor piece to play through ``examples/polysynth.py``.

Eight bars, about 19 seconds: four bars of Am - F - C - G at 100 BPM, the tempo picks up to 120
BPM for Dm - Am - E, and the last bar (Am) slows to 72 BPM as a ritardando. Chords and bass on
MIDI channel 1, melody on channel 2 (the synth listens to all channels), with a pitch-bend scoop
into the last melody note and the sustain pedal over the final chord.

Run ``python examples/make_song.py`` to regenerate it; the result is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import mido

TICKS_PER_BEAT = 480
BEATS_PER_BAR = 4

# (bar, BPM) tempo changes, applied at the bar's start.
TEMPI = [(0, 100), (4, 120), (7, 72)]

# Per bar: chord tones (MIDI notes) and a bass note.
HARMONY = [
    ([57, 60, 64], 45),  # Am
    ([57, 60, 65], 41),  # F
    ([55, 60, 64], 48),  # C
    ([55, 59, 62], 43),  # G
    ([57, 62, 65], 50),  # Dm
    ([57, 60, 64], 45),  # Am
    ([56, 59, 64], 40),  # E
    ([57, 60, 64, 69], 33),  # Am, with the octave
]

# Melody: (bar, beat, length in beats, note, velocity).
MELODY = [
    (0, 0.0, 1.5, 76, 90),
    (0, 1.5, 0.5, 74, 70),
    (0, 2.0, 1.0, 72, 80),
    (0, 3.0, 1.0, 69, 75),
    (1, 0.0, 1.0, 72, 85),
    (1, 1.0, 0.5, 74, 70),
    (1, 1.5, 0.5, 72, 65),
    (1, 2.0, 2.0, 69, 80),
    (2, 0.0, 1.0, 67, 85),
    (2, 1.0, 1.0, 72, 80),
    (2, 2.0, 1.0, 76, 90),
    (2, 3.0, 1.0, 79, 95),
    (3, 0.0, 2.5, 81, 100),
    (3, 2.5, 0.5, 79, 70),
    (3, 3.0, 1.0, 74, 75),
    (4, 0.0, 0.5, 77, 95),
    (4, 0.5, 0.5, 76, 70),
    (4, 1.0, 0.5, 74, 75),
    (4, 1.5, 0.5, 72, 70),
    (4, 2.0, 1.0, 74, 85),
    (4, 3.0, 1.0, 77, 90),
    (5, 0.0, 1.0, 76, 95),
    (5, 1.0, 1.0, 72, 80),
    (5, 2.0, 2.0, 69, 85),
    (6, 0.0, 1.0, 71, 90),
    (6, 1.0, 1.0, 68, 80),
    (6, 2.0, 1.0, 71, 85),
    (6, 3.0, 1.0, 74, 95),
    (7, 0.0, 4.0, 76, 100),  # scooped up into with the pitch wheel
]


def _tick(bar: int, beat: float) -> int:
    return round((bar * BEATS_PER_BAR + beat) * TICKS_PER_BEAT)


def _track(name: str, events: list[tuple[int, int, mido.Message]]) -> mido.MidiTrack:
    """A track from (absolute tick, order, message): sorted, then turned into delta times."""
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def build_song() -> mido.MidiFile:
    song = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    tempo_events = [
        (_tick(bar, 0), 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))) for bar, bpm in TEMPI
    ]
    tempo_events.append((_tick(0, 0), 1, mido.MetaMessage("time_signature", numerator=4, denominator=4)))
    song.tracks.append(_track("tempo", tempo_events))

    chords: list[tuple[int, int, mido.Message]] = []
    last = len(HARMONY) - 1
    for bar, (tones, bass) in enumerate(HARMONY):
        chords.append((_tick(bar, 0), 1, mido.Message("note_on", channel=0, note=bass, velocity=80)))
        chords.append(
            (_tick(bar + 1, 0) - 10, 0, mido.Message("note_off", channel=0, note=bass, velocity=40))
        )
        # Two strokes per bar (beats 1 and 3), a little softer on the off stroke; the last chord rings.
        strokes = [(0.0, 4.0)] if bar == last else [(0.0, 1.9), (2.0, 1.9)]
        for i, (start, length) in enumerate(strokes):
            for j, note in enumerate(tones):
                vel = (72 if i == 0 else 60) - 3 * j
                chords.append(
                    (_tick(bar, start), 1, mido.Message("note_on", channel=0, note=note, velocity=vel))
                )
                chords.append((_tick(bar, start + length), 0, mido.Message("note_off", channel=0, note=note)))
    # Sustain pedal down over the final chord, up at the very end.
    chords.append((_tick(last, 0) + 5, 2, mido.Message("control_change", channel=0, control=64, value=127)))
    chords.append((_tick(last + 1, 0), 2, mido.Message("control_change", channel=0, control=64, value=0)))
    song.tracks.append(_track("chords", chords))

    melody: list[tuple[int, int, mido.Message]] = []
    for bar, beat, length, note, vel in MELODY:
        melody.append((_tick(bar, beat), 1, mido.Message("note_on", channel=1, note=note, velocity=vel)))
        end = _tick(bar, beat + length) - (0 if bar == last else 20)
        melody.append((end, 0, mido.Message("note_off", channel=1, note=note, velocity=50)))
    # A scoop into the last note: start a whole tone flat and glide up to pitch over one beat.
    start = _tick(last, 0)
    steps = 16
    for s in range(steps + 1):
        value = round(-8191 * (1.0 - s / steps))
        melody.append(
            (start + s * TICKS_PER_BEAT // steps, 0, mido.Message("pitchwheel", channel=1, pitch=value))
        )
    song.tracks.append(_track("melody", melody))
    return song


def main() -> None:
    path = Path(__file__).with_name("song.mid")
    song = build_song()
    song.save(path)
    print(f"wrote {path} ({song.length:.1f} s, {sum(len(t) for t in song.tracks)} events)")


if __name__ == "__main__":
    main()
