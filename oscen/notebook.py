"""Audio in notebooks: a rendered sound shows as a player with its waveform and spectrum.

``listen(graph, seconds)`` renders a graph and returns a :class:`Clip`; ``Clip(samples, rate)``
wraps samples you already have. Jupyter (and anything else that honours ``_repr_html_``) shows a
clip as an HTML ``<audio>`` player with the sound embedded as a 16-bit WAV, above a picture of the
waveform and the magnitude spectrum. Nothing here imports IPython: the HTML is self-contained, so
it also works in a static HTML export of the notebook.

Graphs draw themselves in a notebook too (``Graph._repr_svg_``, from ``oscen.graph.diagram``).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from .io.render import render

MAX_EMBED_SECONDS = 600.0  # a notebook cell holding more than 10 minutes of audio is a mistake


@dataclass
class Clip:
    """Samples with their sample rate: ``(n,)`` mono or ``(channels, n)``, as ``oscen.io.render`` gives."""

    samples: np.ndarray
    sample_rate: float

    def __post_init__(self) -> None:
        data = np.asarray(self.samples, dtype=np.float64)
        if data.ndim not in (1, 2) or data.shape[-1] == 0:
            raise ValueError(
                f"Clip: samples must be (n,) or (channels, n) with n > 0, got shape {data.shape}"
            )
        rate = float(self.sample_rate)
        if not np.isfinite(rate) or rate <= 0:
            raise ValueError(f"Clip: sample_rate must be a positive number, got {self.sample_rate!r}")
        if data.shape[-1] / rate > MAX_EMBED_SECONDS:
            raise ValueError(
                f"Clip: {data.shape[-1] / rate:.0f} s is too long to embed in a notebook "
                f"(at most {MAX_EMBED_SECONDS:.0f} s); write a file with oscen.io.write_wav instead"
            )
        self.samples = data
        self.sample_rate = rate

    @property
    def channels(self) -> np.ndarray:
        """Always ``(channels, n)``."""
        return self.samples if self.samples.ndim == 2 else self.samples[None, :]

    @property
    def seconds(self) -> float:
        return self.samples.shape[-1] / self.sample_rate

    def wav_bytes(self) -> bytes:
        """The clip as a 16-bit WAV file, peak-normalised if it would clip (browsers play 16-bit everywhere)."""
        import soundfile

        data = self.channels
        finite = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(np.max(np.abs(finite))) if finite.size else 0.0
        if peak > 1.0:
            finite = finite / peak
        buf = io.BytesIO()
        soundfile.write(buf, finite.T, int(round(self.sample_rate)), format="WAV", subtype="PCM_16")
        return buf.getvalue()

    def figure(self) -> Any:
        """A matplotlib figure: waveform (each channel) on top, magnitude spectrum in dBFS below."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 4.2), dpi=80, layout="constrained")
        wave, spec = fig.subplots(2, 1)
        t = np.arange(self.samples.shape[-1]) / self.sample_rate
        for i, channel in enumerate(self.channels):
            wave.plot(t, channel, linewidth=0.6, label=f"ch {i}")
        wave.set_xlabel("time (s)")
        wave.set_ylabel("amplitude")
        wave.set_xlim(0, t[-1] if len(t) > 1 else 1)
        if len(self.channels) > 1:
            wave.legend(loc="upper right", fontsize=8)
        freqs, db = spectrum_db(self.channels.mean(axis=0), self.sample_rate)
        spec.semilogx(freqs[1:], db[1:], linewidth=0.7)
        spec.set_xlabel("frequency (Hz)")
        spec.set_ylabel("dBFS")
        spec.set_ylim(max(-140.0, float(db.max()) - 120.0), float(db.max()) + 6.0)
        spec.set_xlim(max(freqs[1], 10.0), self.sample_rate / 2)
        return fig

    def png_bytes(self) -> bytes:
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png")
        return buf.getvalue()

    def _repr_html_(self) -> str:
        audio = base64.b64encode(self.wav_bytes()).decode("ascii")
        picture = base64.b64encode(self.png_bytes()).decode("ascii")
        n_ch = self.channels.shape[0]
        return (
            '<div class="oscen-clip">'
            f'<audio controls preload="auto" src="data:audio/wav;base64,{audio}"></audio>'
            f"<div><small>{self.seconds:.3f} s, {n_ch} channel{'s' if n_ch > 1 else ''}, "
            f"{self.sample_rate:g} Hz</small></div>"
            f'<img alt="waveform and spectrum" src="data:image/png;base64,{picture}"/>'
            "</div>"
        )


def spectrum_db(samples: np.ndarray, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude spectrum in dB re full scale of a sine (a full-scale sine reads 0 dB), Hann window."""
    x = np.asarray(samples, dtype=np.float64)
    window = np.hanning(len(x)) if len(x) > 1 else np.ones(1)
    mag = np.abs(np.fft.rfft(x * window)) * 2.0 / max(window.sum(), 1e-300)
    return np.fft.rfftfreq(len(x), 1.0 / sample_rate), 20.0 * np.log10(np.maximum(mag, 1e-12))


def listen(graph: Any, seconds: float = 2.0) -> Clip:
    """Render ``seconds`` of ``graph`` (a Graph, JitGraph, or anything ``oscen.io.render`` takes) as a Clip."""
    return Clip(render(graph, seconds, progress=False), graph.sample_rate)
