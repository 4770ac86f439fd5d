"""Getting audio out of oscen: offline rendering, WAV files and real-time playback."""

from .render import render, render_to_wav
from .wav import WavError, read_wav, write_wav

__all__ = ["Player", "WavError", "play", "read_wav", "render", "render_to_wav", "write_wav"]


def __getattr__(name: str):
    # Real-time playback pulls in sounddevice (and PortAudio) only when it is used.
    if name in ("play", "Player"):
        from . import realtime

        return getattr(realtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
