"""Getting audio out of oscen: offline rendering and WAV files."""

from .render import render, render_to_wav
from .wav import WavError, read_wav, write_wav

__all__ = ["WavError", "read_wav", "render", "render_to_wav", "write_wav"]
