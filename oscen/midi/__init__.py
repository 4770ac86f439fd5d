"""MIDI for oscen: MIDI messages as graph events, note-to-voice allocation, polyphonic sub-graphs,
MIDI files and live MIDI input.

The pieces, in signal order::

    MIDI bytes --midi_fields--> (status, data1, data2) event
        -> MidiParser (node): note_on / note_off / control_change / pitch_bend events
        -> VoiceAllocator (node): per voice k, pitch{k} (Hz, value) and gate{k} (velocity, event)
        -> N voice sub-graphs (built once by a function, instantiated N times) -> mixer

:func:`poly_voices` builds that whole chain; :func:`render_midi` plays a MIDI file through it and
:func:`open_midi_input` opens a live port. Everything here is timing-exact: a MIDI event queued for
frame k changes the sound from sample k, in interpreted and compiled graphs alike. docs/midi.md
has the details.
"""

from __future__ import annotations

from oscen.graph import Endpoint, Graph

from .files import (
    TAIL_SECONDS,
    MidiFileError,
    midi_file_duration,
    midi_file_events,
    render_midi,
    render_midi_to_file,
    timed_messages,
)
from .live import MidiBackendError, MidiInput, MidiPortError, list_midi_inputs, open_midi_input
from .messages import (
    MidiError,
    control_change,
    control_change_normalized,
    fields_to_bytes,
    is_channel_message,
    midi_fields,
    note_off,
    note_off_normalized,
    note_on,
    note_on_normalized,
    pitch_bend,
    pitch_bend_normalized,
    split_messages,
)
from .parser import MidiParser
from .subgraph import (
    EventRelay,
    Polyphony,
    StreamRelay,
    SubGraph,
    SubGraphError,
    ValueRelay,
    instantiate,
    poly_voices,
)
from .voices import VoiceAllocator, voice_allocator_class


def find_midi_input(graph: Graph) -> Endpoint | None:
    """The graph's MIDI input by convention: the ``midi`` input of its first MidiParser node.

    "First" is the order the nodes were added. Returns None when the graph has no MidiParser (the
    patch does not take MIDI). This is how ``oscen render --midi`` finds where to send a file.
    """
    for handle in graph.nodes:
        if isinstance(handle.node, MidiParser):
            return handle.midi
    return None


__all__ = [
    "TAIL_SECONDS",
    "EventRelay",
    "MidiBackendError",
    "MidiError",
    "MidiFileError",
    "MidiInput",
    "MidiParser",
    "MidiPortError",
    "Polyphony",
    "StreamRelay",
    "SubGraph",
    "SubGraphError",
    "ValueRelay",
    "VoiceAllocator",
    "control_change",
    "control_change_normalized",
    "fields_to_bytes",
    "find_midi_input",
    "instantiate",
    "is_channel_message",
    "list_midi_inputs",
    "midi_fields",
    "midi_file_duration",
    "midi_file_events",
    "note_off",
    "note_off_normalized",
    "note_on",
    "note_on_normalized",
    "open_midi_input",
    "pitch_bend",
    "pitch_bend_normalized",
    "poly_voices",
    "render_midi",
    "render_midi_to_file",
    "split_messages",
    "timed_messages",
    "voice_allocator_class",
]
