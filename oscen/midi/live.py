"""Live MIDI input through mido: a port whose messages a real-time player drains once per block.

The MIDI backend calls us on its own thread whenever a message arrives; the audio thread must
never block on it. So the callback only converts the message and puts ``(arrival time, fields)``
on a :class:`queue.SimpleQueue` (lock-free for this use), and the player calls
:meth:`MidiInput.queue_block` before each ``process_block``, which drains what arrived and queues
it on the graph's MIDI input.

Placement within the block (``timing``):

- ``"immediate"`` (default): every message drained goes at offset 0 of the next block. Lowest
  latency; a note can be early or late by up to one block relative to when it was played (jitter).
- ``"smoothed"``: messages keep their relative timing, delayed by one block: a message that
  arrived ``dt`` seconds after the previous drain goes at offset ``round(dt * sample_rate)``
  (clamped into the block). Constant latency of one block, no jitter.

mido's default backend needs ``python-rtmidi`` (``pip install python-rtmidi`` or
``pip install 'oscen[realtime]'``), which needs the ALSA runtime library on Linux (Debian/Ubuntu:
``apt install libasound2``, named ``libasound2t64`` on Debian 13 / Ubuntu 24.04). Tests and other
hosts can pass any object with mido's backend interface (``get_input_names()``,
``open_input(name, callback=...)``) as ``backend``.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any, Protocol

from .messages import MidiError, MidiFields, is_channel_message, midi_fields

INSTALL_HINT = (
    "live MIDI input needs the python-rtmidi package: `pip install python-rtmidi` "
    "(or `pip install 'oscen[realtime]'`); on Linux it needs the ALSA library too: "
    "`apt install libasound2` (libasound2t64 on Debian 13 / Ubuntu 24.04; building python-rtmidi "
    "from source also needs libasound2-dev and a C++ compiler)"
)


class MidiBackendError(RuntimeError):
    """No usable MIDI backend (python-rtmidi missing or broken); the message says how to install it."""


class MidiPortError(RuntimeError):
    """No MIDI input port, or none matching the requested name; the message lists the ports found."""


class MidiBackend(Protocol):
    """The part of mido's backend interface we use (``mido`` itself and ``mido.Backend`` fit)."""

    def get_input_names(self) -> list[str]: ...

    def open_input(
        self, name: str | None = None, *, callback: Callable[[Any], None] | None = None
    ) -> Any: ...


class MidiInput:
    """An open MIDI input port feeding a thread-safe queue of ``(arrival time, fields)``.

    Only channel voice messages are kept (clock, sysex and other system messages are dropped,
    counted in ``dropped``). Use as a context manager or call :meth:`close`.
    """

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.dropped = 0
        self._clock = clock
        self._queue: queue.SimpleQueue[tuple[float, MidiFields]] = queue.SimpleQueue()
        self._port: Any = None
        self._last_drain = clock()

    def _attach(self, port: Any) -> None:
        self._port = port

    def receive(self, message: Any) -> None:
        """The backend's callback (runs on the backend's thread): convert and enqueue."""
        if not is_channel_message(message):
            self.dropped += 1
            return
        try:
            fields = midi_fields(message)
        except MidiError:
            self.dropped += 1
            return
        self._queue.put((self._clock(), fields))

    def drain(self) -> list[tuple[float, MidiFields]]:
        """All messages received since the last drain, oldest first; never blocks."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def queue_block(
        self,
        graph: Any,
        midi_input: Any,
        block_size: int,
        *,
        timing: str = "immediate",
        sample_rate: float | None = None,
    ) -> int:
        """Queue the messages received so far on ``midi_input`` for the next ``block_size`` frames.

        Call it just before ``graph.process_block(block_size)``. Returns how many were queued.
        """
        now = self._clock()
        items = self.drain()
        since = self._last_drain
        self._last_drain = now
        if timing not in ("immediate", "smoothed"):
            raise ValueError(f"timing must be 'immediate' or 'smoothed', got {timing!r}")
        rate = float(sample_rate if sample_rate is not None else graph.sample_rate)
        for arrived, fields in items:
            offset = 0
            if timing == "smoothed":
                offset = min(max(round((arrived - since) * rate), 0), max(block_size - 1, 0))
            graph.queue_event(midi_input, offset, fields)
        return len(items)

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    @property
    def closed(self) -> bool:
        return self._port is None

    def __enter__(self) -> MidiInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MidiInput {self.name!r}{' closed' if self.closed else ''}>"


def _default_backend() -> Any:
    import mido

    return mido


def list_midi_inputs(backend: MidiBackend | None = None) -> list[str]:
    """The names of the MIDI input ports the backend sees."""
    backend = backend if backend is not None else _default_backend()
    try:
        return list(backend.get_input_names())
    except ImportError as exc:
        raise MidiBackendError(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # rtmidi present but ALSA missing or refusing (rtmidi.SystemError, OSError)
        raise MidiBackendError(f"the MIDI backend failed to start: {exc}. {INSTALL_HINT}") from exc


def _choose(names: list[str], wanted: str | None) -> str:
    if not names:
        raise MidiPortError(
            "no MIDI input ports found (none listed by the MIDI backend). Connect a MIDI device, or "
            "create a virtual port (e.g. a DAW's or `aconnect`/VMPK's), then try again"
        )
    if wanted is None:
        return names[0]
    if wanted in names:
        return wanted
    matches = [n for n in names if wanted.lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    listing = "\n".join(f"  {n}" for n in names)
    why = "matches several" if matches else "matches none"
    raise MidiPortError(f"MIDI input {wanted!r} {why} of the ports found:\n{listing}")


def open_midi_input(
    port_name: str | None = None,
    *,
    backend: MidiBackend | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> MidiInput:
    """Open a MIDI input port: by exact name, by a unique case-insensitive part of it, or the first
    port when ``port_name`` is None. Raises MidiBackendError / MidiPortError with what to do."""
    backend = backend if backend is not None else _default_backend()
    name = _choose(list_midi_inputs(backend), port_name)
    midi_in = MidiInput(name, clock)
    try:
        port = backend.open_input(name, callback=midi_in.receive)
    except ImportError as exc:
        raise MidiBackendError(f"{INSTALL_HINT} ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # the port vanished, or the backend refused it
        raise MidiPortError(f"could not open MIDI input {name!r}: {exc}") from exc
    midi_in._attach(port)
    return midi_in
