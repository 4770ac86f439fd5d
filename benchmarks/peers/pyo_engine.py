"""pyo peer: C DSP objects driven by pyo's offline server.

How it renders offline without touching a disk or a sound card:

* ``Server(audio="offline", duplex=0, nchnls=1)``: ``server.start()`` then computes
  ``ceil(dur * sr / block)`` blocks in a C loop on the calling thread and returns.
* The offline server insists on writing its output to a sound file; we point it at
  ``/dev/null`` as headerless float32 RAW, so the only cost is libsndfile copying one block.
  Nothing is sent to the server output anyway (no ``.out()``): the samples are captured in
  memory by a ``TableFill`` into a ``DataTable`` of exactly the rendered whole blocks, read
  through the buffer protocol (``table.getBuffer()``), trimmed and copied to float64.
  ``TableFill`` is a plain per-sample copy and measured as cheap as no capture at all;
  ``TableRec`` (the documented recorder) has fade logic and was a few % slower, and a file
  round trip through /tmp about 2x slower.
* The table holds whole blocks, so ``TableFill``'s write index wraps back to 0 exactly at the
  end of every render and the next render overwrites it from the start.

``import pyo`` is float32 (``MYFLT = float``); ``PyoEngine(double=True)`` uses ``pyo64`` instead.
pyo's ``Biquad`` (type 0) uses the RBJ cookbook lowpass coefficients; ``Sine`` reads a 512-point
table with linear interpolation, hence a tiny harmonic error vs ``sin()`` (see README).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from typing import Any

import numpy as np

from .base import NotPrepared, check_block_size, check_patch, missing_module
from .reference import CUTOFF, SEED_AMP, SEED_FREQ, SEED_GAIN, VOICE_AMP, Q, num_samples, voice_frequencies

_SINK = "/dev/null"


def _import_pyo(module: str) -> Any:
    # pyo prints a WxPython banner on import: keep benchmark output clean.
    with contextlib.redirect_stdout(io.StringIO()):
        return __import__(module)


class PyoEngine:
    """Peer engine backed by the ``pyo`` package (``pyo64`` with ``double=True``)."""

    def __init__(self, double: bool = False) -> None:
        self._module = "pyo64" if double else "pyo"
        self.name = "pyo64" if double else "pyo"
        self._pyo: Any = None
        self._server: Any = None
        self._output: Any = None
        self._nodes: list[Any] = []
        self._tables: dict[int, tuple[Any, Any]] = {}
        self._sample_rate = 44100.0
        self._block_size = 256

    def available(self) -> str | None:
        reason = missing_module(self._module, "pyo")
        if reason is None and not os.path.exists(_SINK):
            return f"{_SINK} missing (pyo's offline server must write its output somewhere)"
        return reason

    def version(self) -> str:
        from importlib.metadata import version

        return version("pyo") + (" (pyo64, double)" if self._module == "pyo64" else " (float32)")

    def prepare(self, patch: str, sample_rate: float, block_size: int) -> float:
        check_patch(patch)
        check_block_size(block_size)
        self.close()
        pyo = self._pyo = _import_pyo(self._module)
        t0 = time.perf_counter()
        server = pyo.Server(
            sr=int(sample_rate), nchnls=1, buffersize=int(block_size), duplex=0, audio="offline", verbosity=1
        )
        server.deactivateMidi()
        server.boot()
        if patch == "seed":
            sine = pyo.Sine(freq=SEED_FREQ, mul=SEED_AMP)
            out = pyo.Biquad(sine, freq=CUTOFF, q=Q, type=0, mul=SEED_GAIN)
            self._nodes = [sine, out]
        else:
            sines = [pyo.Sine(freq=float(f), mul=VOICE_AMP) for f in voice_frequencies()]
            filters = [pyo.Biquad(s, freq=CUTOFF, q=Q, type=0) for s in sines]
            out = pyo.Mix(filters, voices=1)
            self._nodes = [*sines, *filters, out]
        elapsed = time.perf_counter() - t0
        self._server, self._output = server, out
        self._sample_rate, self._block_size = float(sample_rate), int(block_size)
        return elapsed

    def _recorder(self, blocks: int) -> tuple[Any, Any]:
        rec = self._tables.get(blocks)
        if rec is None:
            table = self._pyo.DataTable(size=blocks * self._block_size, chnls=1)
            rec = self._tables[blocks] = (table, self._pyo.TableFill(self._output, table=table))
        return rec

    def render(self, seconds: float) -> np.ndarray:
        if self._server is None:
            raise NotPrepared("call prepare() first")
        n = num_samples(seconds, self._sample_rate)
        if n <= 0:
            return np.zeros(0)
        blocks = -(-n // self._block_size)
        table, fill = self._recorder(blocks)
        fill.play()
        # pyo computes ceil(dur * sr / block) blocks; half a sample less than the whole blocks
        # keeps float rounding from adding one more (which would wrap the table).
        dur = (blocks * self._block_size - 0.5) / self._sample_rate
        # The C server's recordOptions directly: the Python wrapper prints a warning about the
        # extension-less file name on every call (format 3 = RAW, sampletype 3 = float32).
        core = getattr(self._server, "_server", None)
        if core is not None:
            core.recordOptions(dur, _SINK, 3, 3, 0.4)
        else:  # pragma: no cover - other pyo versions
            self._server.recordOptions(dur=dur, filename=_SINK, fileformat=3, sampletype=3)
        self._server.start()  # offline: blocks until all blocks are computed
        fill.stop()
        return np.array(np.asarray(table.getBuffer())[:n], dtype=np.float64)

    def close(self) -> None:
        if self._server is not None:
            for _table, fill in self._tables.values():
                fill.stop()
            self._tables.clear()
            self._nodes.clear()
            self._output = None
            self._server.shutdown()
            self._server = None
