"""SignalFlow peer: C++ node graph, rendered offline through a dummy output device.

SignalFlow's AudioGraph is a process-wide singleton, so ``prepare`` destroys any previous graph
before building a new one. The graph is created with ``AudioOut_Dummy`` (no sound card needed)
and ``start=False``: nothing runs on an audio thread, ``render_to_buffer`` pulls the blocks
synchronously on the calling thread.

SignalFlow computes in float32; ``BiquadFilter`` is Nigel Redmon's (earlevel) transposed
direct form II with ``K = tan(pi fc / fs)`` coefficients, which are algebraically the RBJ
cookbook lowpass (same bilinear transform, same prewarping), with ``resonance`` playing Q.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .base import NotPrepared, check_block_size, check_patch, missing_module
from .reference import CUTOFF, SEED_AMP, SEED_FREQ, SEED_GAIN, VOICE_AMP, Q, num_samples, voice_frequencies


class SignalFlowEngine:
    """Peer engine backed by the ``signalflow`` package."""

    name = "signalflow"

    def __init__(self) -> None:
        self._sf: Any = None
        self._graph: Any = None
        self._out: Any = None
        self._buffers: dict[int, Any] = {}
        self._sample_rate = 44100.0

    def available(self) -> str | None:
        return missing_module("signalflow")

    def version(self) -> str:
        from importlib.metadata import version

        return version("signalflow")

    def prepare(self, patch: str, sample_rate: float, block_size: int) -> float:
        check_patch(patch)
        check_block_size(block_size)
        self.close()
        import signalflow as sf

        self._sf = sf
        t0 = time.perf_counter()
        config = sf.AudioGraphConfig()
        config.sample_rate = int(sample_rate)
        config.output_buffer_size = int(block_size)
        config.num_output_channels = 1
        device = sf.AudioOut_Dummy(num_channels=1, sample_rate=int(sample_rate), buffer_size=int(block_size))
        graph = sf.AudioGraph(config=config, output_device=device, start=False)
        if graph.output_buffer_size != block_size or graph.sample_rate != int(sample_rate):
            raise RuntimeError(
                f"signalflow ignored the settings: block {graph.output_buffer_size}, sr {graph.sample_rate}"
            )
        if patch == "seed":
            sine = sf.SineOscillator(SEED_FREQ) * SEED_AMP
            out = sf.BiquadFilter(sine, "low_pass", cutoff=CUTOFF, resonance=Q) * SEED_GAIN
        else:
            voices = [
                sf.BiquadFilter(
                    sf.SineOscillator(float(f)) * VOICE_AMP, "low_pass", cutoff=CUTOFF, resonance=Q
                )
                for f in voice_frequencies()
            ]
            out = sf.Sum(voices)
        graph.play(out)
        elapsed = time.perf_counter() - t0
        self._graph, self._out, self._sample_rate = graph, out, float(sample_rate)
        return elapsed

    def render(self, seconds: float) -> np.ndarray:
        if self._graph is None:
            raise NotPrepared("call prepare() first")
        n = num_samples(seconds, self._sample_rate)
        if n <= 0:
            return np.zeros(0)
        buf = self._buffers.get(n)
        if buf is None:
            # Allocated once per length: a Buffer is storage, not rendering work.
            buf = self._buffers[n] = self._sf.Buffer(1, n)
        self._graph.render_to_buffer(buf)
        # buf.data is a float32 view into the Buffer's memory: copy while buf is alive.
        return np.array(buf.data[0], dtype=np.float64)

    def close(self) -> None:
        if self._graph is not None:
            self._graph.destroy()
        self._graph = self._out = None
        self._buffers.clear()
