"""Real-time output: play a graph on the sound card while you edit it.

``play(graph_like, seconds=5)`` plays and returns; :class:`Player` starts and stops around your own
code (a live-coding session edits a :class:`~oscen.jit.JitGraph` while it plays)::

    jit = JitGraph(graph)
    jit.wait_compiled()
    with Player(jit, block_size=256) as player:
        jit.set_value(osc.frequency, 330.0, ramp=0.05)
        ...
    print(player.stats.summary())

The audio callback
------------------
The device's callback runs on PortAudio's thread once per block and must return in well under a
block period (5.8 ms for 256 samples at 44.1 kHz) or the device runs dry: an *xrun*, heard as a
click. So the callback does only this: ``graph_like.process_into(buffer)`` into a float64
``(channels, block)`` buffer allocated once, and a copy into the device's float32 ``outdata``
(transposed: PortAudio interleaves frames). It never compiles (JitGraph compiles on its own thread
and swaps at block boundaries), never allocates anything block-sized, and takes no lock (JitGraph's
processing path only ever *tries* its edit lock; adding a lock here would let an editing thread
stall the audio). Any work that must happen per block before processing (draining live MIDI) goes
in the ``before_block`` hook, which must follow the same rules.

Xruns are counted two ways and reported at the end (:class:`PlayStats`): those the device reports
(``output_underflow``: it really ran dry, whatever the cause) and our *late blocks*, where the
callback itself took longer than the block's duration (our graph is too heavy for real time).

No hardware
-----------
``sounddevice`` (and the PortAudio library under it) is imported only when a real device is used,
so the rest of oscen works without it. :class:`FakeOutputStream` has ``sounddevice.OutputStream``'s
constructor and calls the callback from a timer thread at the device's pace: tests use it, and so
can anyone without a sound card. Setting the environment variable ``OSCEN_FAKE_AUDIO=1`` (or
``fast``: as fast as possible) makes :func:`play`, :class:`Player` and ``oscen play`` use it
instead of a device.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any, Protocol

import numpy as np

FAKE_AUDIO_ENV = "OSCEN_FAKE_AUDIO"
"""Environment variable: ``1`` plays into :class:`FakeOutputStream` at real-time pace, ``fast`` as
fast as the graph computes; unset, empty or ``0`` uses the sound card."""

INSTALL_SOUNDDEVICE = (
    "real-time audio needs the sounddevice package: `pip install sounddevice` "
    "(or `pip install 'oscen[realtime]'`)"
)
INSTALL_PORTAUDIO = (
    "sounddevice is installed but cannot load the PortAudio library it plays through: install it "
    "with `apt-get install libportaudio2` (Debian/Ubuntu), `dnf install portaudio` (Fedora) or "
    "`brew install portaudio` (macOS)"
)
NO_DEVICE_HINT = (
    f"set {FAKE_AUDIO_ENV}=1 to run without a sound card (the audio goes nowhere, the timing is real)"
)


class AudioError(RuntimeError):
    """Real-time audio cannot start; the message says what to do."""


class AudioBackendError(AudioError):
    """sounddevice or the PortAudio library is missing."""


class AudioDeviceError(AudioError):
    """No usable output device (none at all, not the one asked for, or unsupported settings)."""


class OutputStream(Protocol):
    """What :class:`Player` needs of a stream: ``sounddevice.OutputStream`` and FakeOutputStream fit."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


StreamFactory = Callable[..., OutputStream]
"""Called as ``factory(samplerate=, blocksize=, channels=, dtype=, callback=, device=)``, the
keywords ``sounddevice.OutputStream`` takes."""

Callback = Callable[[np.ndarray, int, Any, Any], None]


# ------------------------------------------------------------------------------ sounddevice
def import_sounddevice() -> ModuleType:
    """Import sounddevice, turning its two failure modes into one clear :class:`AudioBackendError`:
    the package is missing (ImportError) or PortAudio is (sounddevice raises OSError on import)."""
    try:
        import sounddevice
    except ImportError as exc:
        raise AudioBackendError(f"{INSTALL_SOUNDDEVICE} ({type(exc).__name__}: {exc})") from exc
    except OSError as exc:
        raise AudioBackendError(f"{INSTALL_PORTAUDIO} ({exc})") from exc
    return sounddevice


def fake_audio_speed() -> float | None:
    """The FakeOutputStream speed ``OSCEN_FAKE_AUDIO`` asks for, or None for the real device."""
    value = os.environ.get(FAKE_AUDIO_ENV, "").strip().lower()
    if value in ("", "0", "no", "false", "off"):
        return None
    if value == "fast":
        return math.inf
    return 1.0


def default_stream_factory() -> StreamFactory:
    """FakeOutputStream when ``OSCEN_FAKE_AUDIO`` says so, else ``sounddevice.OutputStream``."""
    speed = fake_audio_speed()
    if speed is not None:
        return functools.partial(FakeOutputStream, speed=speed)
    return import_sounddevice().OutputStream


def check_output_device(
    sd: ModuleType, device: int | str | None, channels: int, sample_rate: float
) -> dict[str, Any]:
    """Make sure ``device`` (None: the default) can play ``channels`` at ``sample_rate``; raise
    :class:`AudioDeviceError` saying what is there otherwise. Returns the device's info."""
    outputs = _output_devices(sd)
    try:
        info = dict(sd.query_devices(device, "output"))
    except (ValueError, sd.PortAudioError) as exc:
        if not outputs:
            raise AudioDeviceError(
                f"no audio output device found (PortAudio lists none: {exc}). Connect or enable a sound "
                f"card (on Linux: is ALSA/PulseAudio/PipeWire running and are you in the audio group?), "
                f"or {NO_DEVICE_HINT}"
            ) from exc
        what = "the default output device" if device is None else f"audio output device {device!r}"
        raise AudioDeviceError(
            f"{what} is not available ({exc}); output devices:\n{_listing(outputs)}"
        ) from exc
    if channels > int(info.get("max_output_channels", 0)):
        raise AudioDeviceError(
            f"{info.get('name', device)!r} has {info.get('max_output_channels')} output channels, "
            f"the graph needs {channels}; choose another device:\n{_listing(outputs)}"
        )
    try:
        sd.check_output_settings(device=device, channels=channels, dtype="float32", samplerate=sample_rate)
    except (ValueError, sd.PortAudioError) as exc:
        raise AudioDeviceError(
            f"{info.get('name', device)!r} cannot play {channels} channel(s) at {sample_rate:g} Hz ({exc}); "
            f"its default rate is {info.get('default_samplerate', 0):g} Hz: build the graph at that rate"
        ) from exc
    return info


def _output_devices(sd: ModuleType) -> list[tuple[int, str, int]]:
    try:
        devices = sd.query_devices()
    except Exception:  # noqa: BLE001 - only used to enrich an error message
        return []
    return [
        (i, d["name"], int(d["max_output_channels"]))
        for i, d in enumerate(devices)
        if d["max_output_channels"] > 0
    ]


def _listing(outputs: list[tuple[int, str, int]]) -> str:
    if not outputs:
        return f"  (none; {NO_DEVICE_HINT})"
    return "\n".join(f"  {i}: {name} ({ch} channels)" for i, name, ch in outputs)


# ------------------------------------------------------------------------------ statistics
@dataclass
class PlayStats:
    """What happened while playing; ``summary()`` is the line ``oscen play`` prints at the end."""

    sample_rate: float
    block_size: int
    channels: int
    blocks: int = 0
    frames: int = 0
    xruns: int = 0
    """Underflows the stream reported: the device ran out of audio (a click)."""
    late_blocks: int = 0
    """Callbacks that took longer than their audio's duration: the graph is too slow for real time."""
    max_callback_seconds: float = 0.0
    error: BaseException | None = field(default=None, repr=False)

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    @property
    def block_seconds(self) -> float:
        return self.block_size / self.sample_rate

    def summary(self) -> str:
        # Xruns (the device ran dry) and late blocks (a callback overran its budget) are reported
        # apart: a late block that the device's buffer absorbed is not an xrun.
        if self.xruns:
            health = f"{self.xruns} xrun{'s' if self.xruns != 1 else ''} (device underflows)"
        else:
            health = "no xruns"
        if self.late_blocks:
            health += f", {self.late_blocks} late block{'s' if self.late_blocks != 1 else ''}"
        return (
            f"played {self.seconds:.2f} s in {self.blocks} blocks of {self.block_size} at {self.sample_rate:g} Hz: "
            f"{health}; slowest callback {self.max_callback_seconds * 1e3:.2f} ms of {self.block_seconds * 1e3:.2f} ms"
        )


# ------------------------------------------------------------------------------ the player
class Player:
    """Plays ``graph_like`` on an output stream; start/stop it around live edits, or use ``with``.

    ``graph_like`` needs ``sample_rate`` and ``process_into(out)`` filling a ``(channels, n)``
    float64 array (JitGraph), or ``process_block(n)`` (the interpreted Graph). A mono graph plays on
    every channel; a graph with k outputs needs ``channels`` k (the default).

    ``frames``: stop producing after this many frames (the rest of that block is silence) and set
    :attr:`finished`; None plays until :meth:`stop`. ``before_block(n)`` runs in the callback just
    before each block is processed (live MIDI queues its events there).
    """

    def __init__(
        self,
        graph_like: Any,
        block_size: int = 256,
        *,
        device: int | str | None = None,
        channels: int | None = None,
        stream_factory: StreamFactory | None = None,
        frames: int | None = None,
        before_block: Callable[[int], Any] | None = None,
    ) -> None:
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
        if frames is not None and frames < 0:
            raise ValueError(f"frames must be >= 0, got {frames!r}")
        self.graph = graph_like
        self.sample_rate = float(graph_like.sample_rate)
        self.block_size = block_size
        self.device = device
        graph_channels = _output_channels(graph_like)
        if channels is None:
            channels = graph_channels
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an int >= 1, got {channels!r}")
        if graph_channels not in (1, channels):
            raise ValueError(
                f"the graph outputs {graph_channels} channels; play it on {graph_channels} "
                f"(channels={graph_channels}), not {channels}"
            )
        self.channels = channels
        self.stats = PlayStats(self.sample_rate, block_size, channels)
        self.stream: OutputStream | None = None
        self._factory = stream_factory
        self._remaining = frames
        self._before_block = before_block
        self._process_into = _process_into(graph_like)
        # Everything the callback touches is made here, once.
        self._buffer = np.zeros((channels, block_size))
        self._views = {block_size: self._buffer}
        self._finished = threading.Event()
        self._block_period = block_size / self.sample_rate

    # -------------------------------------------------------------- control (any thread but the callback's)
    def start(self) -> Player:
        """Open the stream and start playing (returns at once)."""
        if self.stream is not None:
            raise RuntimeError("this Player is already playing")
        factory = self._factory or default_stream_factory()
        real = self._factory is None and fake_audio_speed() is None
        if real:
            check_output_device(import_sounddevice(), self.device, self.channels, self.sample_rate)
        try:
            stream = factory(
                samplerate=self.sample_rate,
                blocksize=self.block_size,
                channels=self.channels,
                dtype="float32",
                callback=self._callback,
                device=self.device,
            )
        except Exception as exc:
            if real:
                raise AudioDeviceError(
                    f"could not open the audio output ({type(exc).__name__}: {exc})"
                ) from exc
            raise
        self.stream = stream
        stream.start()
        return self

    def stop(self) -> PlayStats:
        """Stop and close the stream (idempotent); returns the statistics."""
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()
        return self.stats

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until ``frames`` were played or the callback failed; True if so, False on timeout or
        when the stream stopped by itself (a device that went away). Ctrl-C interrupts."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished.is_set():
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                return False
            self._finished.wait(left)
            stream = self.stream
            if stream is not None and not getattr(stream, "active", True) and not self._finished.is_set():
                return False
        return True

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def error(self) -> BaseException | None:
        """The exception the graph raised in the callback (playback stopped producing sound)."""
        return self.stats.error

    def __enter__(self) -> Player:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- the audio thread
    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's callback. Runs on the audio thread: no compiling, no big allocations, no locks."""
        started = time.perf_counter()
        stats = self.stats
        if status and status.output_underflow:
            stats.xruns += 1
        if self._finished.is_set():
            outdata.fill(0.0)
            return
        try:
            pos = 0
            while pos < frames:
                n = min(self.block_size, frames - pos)
                if self._remaining is not None:
                    n = min(n, self._remaining)
                    if n == 0:
                        outdata[pos:].fill(0.0)
                        self._finished.set()
                        break
                buffer = self._views.get(n)
                if buffer is None:  # a short block: a view, made once per size
                    buffer = self._views[n] = self._buffer[:, :n]
                if self._before_block is not None:
                    self._before_block(n)
                self._process_into(buffer)
                outdata[pos : pos + n] = buffer.T
                pos += n
                stats.frames += n
                if self._remaining is not None:
                    self._remaining -= n
            if self._remaining == 0:
                outdata[pos:].fill(0.0)
                self._finished.set()
        except BaseException as exc:  # noqa: BLE001 - the audio thread must not die with it
            outdata.fill(0.0)
            stats.error = exc
            self._finished.set()
            return
        stats.blocks += 1
        elapsed = time.perf_counter() - started
        if elapsed > stats.max_callback_seconds:
            stats.max_callback_seconds = elapsed
        if elapsed > self._block_period * frames / self.block_size:
            stats.late_blocks += 1


def _output_channels(graph_like: Any) -> int:
    """How many channels the graph outputs, asked by processing zero samples (no audio, no clock)."""
    block = np.asarray(graph_like.process_block(0))
    return 1 if block.ndim == 1 else int(block.shape[0])


def _process_into(graph_like: Any) -> Callable[[np.ndarray], None]:
    """The graph's ``process_into``, or one made from ``process_block`` (the interpreted Graph)."""
    method = getattr(graph_like, "process_into", None)
    if method is not None:
        return method  # type: ignore[no-any-return]

    def process_into(out: np.ndarray) -> None:
        out[...] = graph_like.process_block(out.shape[-1])

    return process_into


def play(
    graph_like: Any,
    block_size: int = 256,
    seconds: float | None = None,
    device: int | str | None = None,
    channels: int | None = None,
    stream_factory: StreamFactory | None = None,
    *,
    before_block: Callable[[int], Any] | None = None,
) -> PlayStats:
    """Play ``graph_like`` for ``seconds`` (None: until Ctrl-C, which ends playback normally).

    Returns the :class:`PlayStats` (``print(stats.summary())`` for xruns and timing). If the graph
    raises while playing, playback stops and the exception is raised here. ``device`` is a
    sounddevice device index or a unique part of its name (None: the system default).
    """
    if seconds is not None and (not math.isfinite(seconds) or seconds < 0):
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    frames = None if seconds is None else int(round(seconds * float(graph_like.sample_rate)))
    player = Player(
        graph_like,
        block_size,
        device=device,
        channels=channels,
        stream_factory=stream_factory,
        frames=frames,
        before_block=before_block,
    )
    player.start()
    try:
        player.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stats = player.stop()
    if stats.error is not None:
        raise stats.error
    return stats


# ------------------------------------------------------------------------------ no hardware
@dataclass
class FakeCallbackFlags:
    """Stands in for ``sounddevice.CallbackFlags`` (true when any flag is set)."""

    output_underflow: bool = False
    output_overflow: bool = False
    priming_output: bool = False

    def __bool__(self) -> bool:
        return self.output_underflow or self.output_overflow or self.priming_output


class FakeOutputStream:
    """``sounddevice.OutputStream`` without a sound card: a timer thread calls the callback at the
    pace of a device that buffers ``buffers`` blocks.

    Block k is due to play at ``t0 + k * period`` (period = blocksize / samplerate / ``speed``); the
    callback for it is called as soon as the buffer has room, ``buffers`` periods earlier. A block
    finished after its due time is an underflow, flagged to the next callback as a real device
    would (``output_underflow``), and the clock restarts from then. ``speed=math.inf`` runs as fast
    as the callback allows (never underflows). ``record=True`` keeps a copy of every block in
    :attr:`recorded` (float32, ``(blocksize, channels)``); ``max_blocks`` stops the stream after
    that many callbacks.
    """

    def __init__(
        self,
        samplerate: float,
        blocksize: int,
        channels: int,
        dtype: str = "float32",
        callback: Callback | None = None,
        device: int | str | None = None,
        *,
        speed: float = 1.0,
        buffers: int = 2,
        record: bool = False,
        max_blocks: int | None = None,
    ) -> None:
        if callback is None:
            raise ValueError("FakeOutputStream needs a callback (it has no blocking write mode)")
        if not blocksize or blocksize < 1:
            raise ValueError("FakeOutputStream needs a fixed blocksize >= 1")
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.samplerate = float(samplerate)
        self.blocksize = int(blocksize)
        self.channels = int(channels)
        self.dtype = dtype
        self.device = device
        self.callback = callback
        self.speed = float(speed)
        self.buffers = max(1, int(buffers))
        self.record = record
        self.max_blocks = max_blocks
        self.recorded: list[np.ndarray] = []
        self.blocks = 0
        self.underflows = 0
        self.error: BaseException | None = None
        self._outdata = np.zeros((self.blocksize, self.channels), dtype=dtype)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.closed = False

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def latency(self) -> float:
        return self.buffers * self.blocksize / self.samplerate

    def start(self) -> None:
        if self.closed:
            raise RuntimeError("FakeOutputStream is closed")
        if self.active:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="oscen-fake-audio", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    abort = stop

    def close(self) -> None:
        self.stop()
        self.closed = True

    def __enter__(self) -> FakeOutputStream:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        period = self.blocksize / self.samplerate / self.speed
        t0 = time.perf_counter() + self.buffers * period  # the first block plays once the buffer is primed
        k = 0  # blocks since t0
        underflow = False
        while not self._stop.is_set():
            if self.max_blocks is not None and self.blocks >= self.max_blocks:
                return
            now = time.perf_counter()
            info = SimpleNamespace(currentTime=now, outputBufferDacTime=t0 + k * period)
            flags = FakeCallbackFlags(output_underflow=underflow)
            try:
                self.callback(self._outdata, self.blocksize, info, flags)
            except Exception as exc:  # noqa: BLE001 - sounddevice's CallbackStop/Abort end the stream too
                if type(exc).__name__ not in ("CallbackStop", "CallbackAbort"):
                    self.error = exc
                return
            if self.record:
                self.recorded.append(self._outdata.copy())
            self.blocks += 1
            done = time.perf_counter()
            due = t0 + k * period
            underflow = period != 0.0 and done > due
            if underflow:
                self.underflows += 1
                t0, k = done + self.buffers * period, 0  # the device restarts after running dry
            else:
                k += 1
            wake = t0 + (k - self.buffers) * period  # room for block k in the buffer
            delay = wake - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
