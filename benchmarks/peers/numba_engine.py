"""numba peer: the same per-sample loops as the C baseline, JIT-compiled by numba/LLVM.

The kernels mirror ``benchmarks/c/seed.c`` and ``voices.c`` (default variants): a phase
accumulator into ``math.sin``, a float64 transposed direct form II biquad, state loaded into
local variables for the length of a block, voices processed one after another per block.

Block loop: by default the loop over blocks runs *inside* numba (a jitted ``render`` calls the
jitted ``process_block`` once per block, like ``*_render`` in C), so a render is one call from
Python. ``NumbaEngine(python_loop=True)`` instead calls the jitted block function from a Python
``for`` loop, which shows the per-call dispatch cost an interpreter-driven engine pays
(~6900 calls for 10 s at 64-sample blocks).

Compile latency: ``prepare`` wraps the plain Python kernels in fresh ``numba.njit``
dispatchers and calls them once on one block, so the number is a real type-inference + LLVM
compile every time, not a hit in numba's in-process cache (``cache=False``: no on-disk cache).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .base import NotPrepared, check_block_size, check_patch, missing_module
from .reference import (
    CUTOFF,
    SEED_AMP,
    SEED_FREQ,
    SEED_GAIN,
    VOICE_AMP,
    Q,
    num_samples,
    rbj_lowpass,
    voice_frequencies,
)

TWO_PI = 2.0 * math.pi


# Plain-Python kernels; numba compiles them in prepare(). Coefficients: c = [b0, b1, b2, a1, a2].


def _seed_block(
    out: np.ndarray, start: int, n: int, state: np.ndarray, c: np.ndarray, inc: float, amp: float, gain: float
) -> None:
    b0, b1, b2, a1, a2 = c[0], c[1], c[2], c[3], c[4]
    phase, z1, z2 = state[0], state[1], state[2]
    for i in range(start, start + n):
        x = amp * math.sin(TWO_PI * phase)
        phase += inc
        if phase >= 1.0:
            phase -= 1.0
        y = b0 * x + z1
        z1 = b1 * x - a1 * y + z2
        z2 = b2 * x - a2 * y
        out[i] = gain * y
    state[0], state[1], state[2] = phase, z1, z2


def _voices_block(
    out: np.ndarray,
    start: int,
    n: int,
    state: np.ndarray,
    c: np.ndarray,
    inc: np.ndarray,
    amp: float,
    gain: float,
) -> None:
    # state: (voices, 3) rows of [phase, z1, z2]; gain unused (kept for a uniform signature).
    b0, b1, b2, a1, a2 = c[0], c[1], c[2], c[3], c[4]
    for i in range(start, start + n):
        out[i] = 0.0
    for k in range(inc.shape[0]):
        dk = inc[k]
        phase, z1, z2 = state[k, 0], state[k, 1], state[k, 2]
        for i in range(start, start + n):
            x = amp * math.sin(TWO_PI * phase)
            phase += dk
            if phase >= 1.0:
                phase -= 1.0
            y = b0 * x + z1
            z1 = b1 * x - a1 * y + z2
            z2 = b2 * x - a2 * y
            out[i] += y
        state[k, 0], state[k, 1], state[k, 2] = phase, z1, z2


def _make_render(block_fn: Callable[..., None]) -> Callable[..., None]:
    def render(
        out: np.ndarray, block: int, state: np.ndarray, c: np.ndarray, inc: Any, amp: float, gain: float
    ) -> None:
        state[...] = 0.0
        n = out.shape[0]
        for start in range(0, n, block):
            block_fn(out, start, min(block, n - start), state, c, inc, amp, gain)

    return render


class NumbaEngine:
    """Peer engine running numba-compiled per-sample loops."""

    def __init__(self, python_loop: bool = False) -> None:
        self.python_loop = python_loop
        self.name = "numba (python block loop)" if python_loop else "numba"
        self._block_fn: Callable[..., None] | None = None
        self._render_fn: Callable[..., None] | None = None
        self._args: tuple[Any, ...] = ()
        self._state: np.ndarray | None = None
        self._sample_rate = 44100.0
        self._block_size = 256

    def available(self) -> str | None:
        return missing_module("numba")

    def version(self) -> str:
        from importlib.metadata import version

        return f"numba {version('numba')} (llvmlite {version('llvmlite')})"

    def prepare(self, patch: str, sample_rate: float, block_size: int) -> float:
        check_patch(patch)
        check_block_size(block_size)
        self.close()
        import numba

        b, a = rbj_lowpass(CUTOFF, Q, sample_rate)
        coefs = np.array([b[0], b[1], b[2], a[1], a[2]])
        if patch == "seed":
            kernel: Callable[..., None] = _seed_block
            state = np.zeros(3)
            inc: Any = SEED_FREQ / sample_rate
            amp, gain = SEED_AMP, SEED_GAIN
        else:
            kernel = _voices_block
            freqs = voice_frequencies()
            state = np.zeros((freqs.size, 3))
            inc = freqs / sample_rate
            amp, gain = VOICE_AMP, 1.0

        t0 = time.perf_counter()
        block_fn = numba.njit(cache=False)(kernel)
        render_fn = numba.njit(cache=False)(_make_render(block_fn))
        warm = np.empty(int(block_size))
        if self.python_loop:
            block_fn(warm, 0, warm.size, state, coefs, inc, amp, gain)
        else:
            render_fn(warm, int(block_size), state, coefs, inc, amp, gain)
        elapsed = time.perf_counter() - t0

        self._block_fn, self._render_fn = block_fn, render_fn
        self._state = state
        self._args = (coefs, inc, amp, gain)
        self._sample_rate, self._block_size = float(sample_rate), int(block_size)
        return elapsed

    def render(self, seconds: float) -> np.ndarray:
        if self._render_fn is None or self._block_fn is None or self._state is None:
            raise NotPrepared("call prepare() first")
        n = num_samples(seconds, self._sample_rate)
        out = np.empty(n)
        if not self.python_loop:
            self._render_fn(out, self._block_size, self._state, *self._args)
            return out
        block_fn, state, bs = self._block_fn, self._state, self._block_size
        state[...] = 0.0
        for start in range(0, n, bs):
            block_fn(out, start, min(bs, n - start), state, *self._args)
        return out

    def close(self) -> None:
        self._block_fn = self._render_fn = None
        self._state = None
        self._args = ()
