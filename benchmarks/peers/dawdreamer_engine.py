"""Faust peer, through DawDreamer: Faust source JIT-compiled by libfaust's LLVM backend.

``prepare`` builds a ``RenderEngine(sr, block_size)``, hands the Faust source to a
``FaustProcessor`` (``set_dsp_string``) and compiles it: that compile is the latency reported.
``render`` is ``engine.render(seconds)`` (which restarts the processor from t = 0 on every call)
followed by ``engine.get_audio()``; DawDreamer trims to ``int(seconds * sr)`` samples itself.

Faust's own ``fi.lowpass`` is a Butterworth built from a different structure, so the filter is
written as ``fi.tf2`` (direct form II biquad) with the RBJ cookbook coefficients, computed from
``ma.SR`` once per instance. The oscillator is the idiomatic ``os.osc`` (``osc="table"``): a
65536-point sine table read without interpolation, with a float32 phase. ``osc="sin"`` uses
``sin(2 pi os.phasor(1, f))`` instead, one ``sinf`` per sample like SignalFlow and the C
baseline: that is the apples-to-apples variant for voices64, where the oscillator dominates.

Precision: DawDreamer runs Faust in single precision with float32 buffers. Compiling with
``-double`` is accepted but DawDreamer 0.9 then passes float buffers to a double DSP and the
output is garbage, so it is not offered.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .base import NotPrepared, check_block_size, check_patch, missing_module
from .reference import (
    CUTOFF,
    SEED_AMP,
    SEED_FREQ,
    SEED_GAIN,
    VOICE_AMP,
    VOICE_BASE_FREQ,
    VOICES,
    Q,
    num_samples,
)

_RBJ_LOWPASS = f"""
w0 = 2.0 * ma.PI * {CUTOFF!r} / ma.SR;
alpha = sin(w0) / (2.0 * {Q!r});
norm = 1.0 + alpha;
lp = fi.tf2((1.0 - cos(w0)) / (2.0 * norm), (1.0 - cos(w0)) / norm, (1.0 - cos(w0)) / (2.0 * norm),
            -2.0 * cos(w0) / norm, (1.0 - alpha) / norm);
"""


OSCILLATORS: dict[str, str] = {
    "table": "osc(f) = os.osc(f);\n",
    "sin": "osc(f) = sin(2.0 * ma.PI * os.phasor(1.0, f));\n",
}


def faust_source(patch: str, osc: str = "table") -> str:
    """Faust program for ``patch`` (exposed so the README and tests can show it)."""
    check_patch(patch)
    head = 'import("stdfaust.lib");\n' + _RBJ_LOWPASS + OSCILLATORS[osc]
    if patch == "seed":
        return head + f"process = osc({SEED_FREQ!r}) * {SEED_AMP!r} : lp : *({SEED_GAIN!r});\n"
    return head + (
        f"process = par(k, {VOICES}, osc({VOICE_BASE_FREQ!r} * pow(2.0, k / 12.0)) * {VOICE_AMP!r} : lp)"
        " :> _;\n"
    )


class DawDreamerEngine:
    """Peer engine backed by the ``dawdreamer`` package (Faust via LLVM JIT)."""

    def __init__(self, osc: str = "table") -> None:
        if osc not in OSCILLATORS:
            raise ValueError(f"osc must be one of {tuple(OSCILLATORS)}, got {osc!r}")
        self.osc = osc
        self.name = "faust (dawdreamer)" if osc == "table" else "faust (dawdreamer, sin osc)"
        self._engine: Any = None
        self._processor: Any = None
        self._sample_rate = 44100.0

    def available(self) -> str | None:
        return missing_module("dawdreamer")

    def version(self) -> str:
        from importlib.metadata import version

        return f"dawdreamer {version('dawdreamer')} (float32)"

    def prepare(self, patch: str, sample_rate: float, block_size: int) -> float:
        source = faust_source(patch, self.osc)
        check_block_size(block_size)
        self.close()
        import dawdreamer as dd

        t0 = time.perf_counter()
        engine = dd.RenderEngine(float(sample_rate), int(block_size))
        processor = engine.make_faust_processor("peer")
        processor.set_dsp_string(source)
        if not processor.compile():
            raise RuntimeError(f"Faust compile failed for patch {patch!r}")
        engine.load_graph([(processor, [])])
        elapsed = time.perf_counter() - t0
        self._engine, self._processor, self._sample_rate = engine, processor, float(sample_rate)
        return elapsed

    def render(self, seconds: float) -> np.ndarray:
        if self._engine is None:
            raise NotPrepared("call prepare() first")
        n = num_samples(seconds, self._sample_rate)
        if n <= 0:
            return np.zeros(0)
        self._engine.render(n / self._sample_rate)
        audio = self._engine.get_audio()  # (channels, samples) float32
        if audio.shape[-1] != n:  # pragma: no cover - DawDreamer trims itself today
            audio = audio[..., :n]
        return np.array(audio[0], dtype=np.float64)

    def close(self) -> None:
        self._engine = self._processor = None
