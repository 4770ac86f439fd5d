"""Getting audio out of oscen: offline rendering, sound files and real-time playback."""

from .render import MAX_RENDER_SECONDS, RenderLimitError, RenderResult, render, render_to_file, render_to_wav
from .wav import ClippingWarning, WavError, read_wav, write_audio, write_wav

__all__ = [
    "MAX_RENDER_SECONDS",
    "ClippingWarning",
    "Player",
    "RenderLimitError",
    "RenderResult",
    "WavError",
    "play",
    "read_wav",
    "render",
    "render_to_file",
    "render_to_wav",
    "write_audio",
    "write_wav",
]


def __getattr__(name: str):
    # Real-time playback pulls in sounddevice (and PortAudio) only when it is used.
    if name in ("play", "Player"):
        from . import realtime

        return getattr(realtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
