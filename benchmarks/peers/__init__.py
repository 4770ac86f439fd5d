"""Peer engines for ``oscen bench``: other synthesis engines and hand-written C baselines.

Each engine renders the same patches (:mod:`.reference` defines them and computes the
reference output) behind the :class:`.base.PeerEngine` interface. The optional engines
(signalflow, pyo, dawdreamer, numba: ``pip install 'oscen[peers]'``) are imported lazily, so
importing this package needs only numpy and scipy; ``engine.available()`` says why one can't run.
"""

from __future__ import annotations

from .base import BLOCK_SIZES, NotPrepared, PeerEngine
from .c_engine import CEngine
from .dawdreamer_engine import DawDreamerEngine
from .numba_engine import NumbaEngine
from .pyo_engine import PyoEngine
from .reference import PATCHES
from .signalflow_engine import SignalFlowEngine

__all__ = [
    "BLOCK_SIZES",
    "PATCHES",
    "CEngine",
    "DawDreamerEngine",
    "NotPrepared",
    "NumbaEngine",
    "PeerEngine",
    "PyoEngine",
    "SignalFlowEngine",
    "default_engines",
    "variant_engines",
]


def default_engines() -> list[PeerEngine]:
    """One instance of each peer in its idiomatic configuration (the headline comparison)."""
    return [SignalFlowEngine(), PyoEngine(), DawDreamerEngine(), NumbaEngine(), CEngine()]


def variant_engines() -> list[PeerEngine]:
    """Variants that explain the headline numbers (precision, oscillator, flags, layout)."""
    return [
        PyoEngine(double=True),
        DawDreamerEngine(osc="sin"),
        NumbaEngine(python_loop=True),
        CEngine(flags="generic"),
        CEngine(flags="native-nocontract"),
        CEngine(osc="rotation"),
        CEngine(osc="rotation", layout="interleaved"),
    ]
