"""The uniform interface every peer engine implements, so ``oscen bench`` can time them all alike.

Contract (what the bench runner may rely on):

* ``available()`` is cheap and never raises: ``None`` when the engine can be used, else a
  one-line reason (module not installed, no C compiler, ...). Optional engines are imported
  lazily, inside ``available``/``prepare``, so importing this package never needs them.
* ``prepare(patch, sample_rate, block_size)`` builds or compiles everything and returns that
  latency in seconds: the Faust LLVM JIT compile, numba's first-call compile, the ``cc`` run.
  Calling ``prepare`` again replaces the previous patch.
* ``render(seconds)`` does the rendering work only (nothing is compiled there) and returns a
  fresh mono float64 array of exactly ``int(seconds * sample_rate)`` samples; engines that
  compute whole blocks trim the surplus. Converting the engine's own output (often float32) to
  that array is part of ``render`` for every engine alike.
* The first ``render`` after ``prepare`` starts at t = 0 (all oscillators at phase 0, filters
  at rest), so it can be checked against :mod:`benchmarks.peers.reference`. Later calls may
  continue the stream or restart it, depending on the engine: only timing should use them.
* ``close()`` releases the engine's resources; it is safe to call more than once.
"""

from __future__ import annotations

import importlib.util
from typing import Protocol, runtime_checkable

import numpy as np

from .reference import PATCHES

BLOCK_SIZES: tuple[int, ...] = (64, 256)


@runtime_checkable
class PeerEngine(Protocol):
    """A non-oscen engine (or C baseline) that can render the benchmark patches offline."""

    name: str

    def available(self) -> str | None:
        """None if usable here, else why not."""
        ...

    def version(self) -> str:
        """Version string of the engine (or compiler) actually used."""
        ...

    def prepare(self, patch: str, sample_rate: float, block_size: int) -> float:
        """Build/compile ``patch``; return the build latency in seconds."""
        ...

    def render(self, seconds: float) -> np.ndarray:
        """Render ``seconds`` of audio offline; mono float64, ``int(seconds * sr)`` samples."""
        ...

    def close(self) -> None:
        """Release resources."""
        ...


def missing_module(module: str, pip_name: str | None = None) -> str | None:
    """Reason string if ``module`` cannot be imported, without importing it (cheap check)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # broken install, or blocked via sys.modules[name] = None
        found = False
    if not found:
        return f"python module {module!r} not installed (pip install {pip_name or module})"
    return None


def check_patch(patch: str) -> None:
    """Raise ValueError for an unknown patch name (uniform error across engines)."""
    if patch not in PATCHES:
        raise ValueError(f"unknown patch {patch!r}; expected one of {PATCHES}")


def check_block_size(block_size: int) -> None:
    """Raise ValueError for a block size that is not a positive integer."""
    if int(block_size) != block_size or block_size <= 0:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")


class NotPrepared(RuntimeError):
    """``render`` was called before ``prepare``."""
