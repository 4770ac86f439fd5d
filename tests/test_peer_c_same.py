"""The C peer "with the same math" (``CEngine(osc="same")``, ``benchmarks/c/seed_same.c``) renders
oscen's seed patch bit for bit: what makes it the honest peer for the seed's speed.

Bit identity is the proof that it performs oscen's operations in oscen's order (the rotation sine
with its polynomial resync every 1024 samples and its phase, the biquad's parameter test and its
denormal flush, no FMA contraction): one operation changed, reordered or fused changes bits
(built with FMA contraction, 132,275 of the 132,300 samples of 3 s differ).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_peers import _has_patch  # noqa: E402
from benchmarks.oscen_engine import OscenEngine  # noqa: E402
from benchmarks.peers import reference as R  # noqa: E402
from benchmarks.peers.c_engine import NO_CONTRACT, CEngine, compiler  # noqa: E402

SR = 44100.0
needs_cc = pytest.mark.skipif(compiler() is None, reason="no C compiler ($CC or cc)")


def _render(engine: CEngine | OscenEngine, block: int, seconds: float) -> np.ndarray:
    try:
        engine.prepare("seed", SR, block)
        return engine.render(seconds)
    finally:
        engine.close()


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float64).view(np.int64)


@needs_cc
@pytest.mark.parametrize("block", [256, 37])
def test_c_same_is_bit_identical_to_oscens_compiled_seed(block: int) -> None:
    # 1.5 s: the recurrence is restarted 64 times (every 1024 samples), the phase wraps 660 times
    seconds = 1.5 + 11 / SR
    c = _render(CEngine(osc="same"), block, seconds)
    oscen = _render(OscenEngine(compiled=True), block, seconds)
    assert c.shape == oscen.shape == (R.num_samples(seconds, SR),)
    different = np.flatnonzero(_bits(c) != _bits(oscen))
    assert different.size == 0, f"{different.size} samples differ, the first at {different[:5]}"
    np.testing.assert_allclose(c, R.reference("seed", seconds, SR), atol=1e-9)  # and it is the seed


@needs_cc
def test_c_same_is_bit_identical_to_the_interpreter() -> None:
    # the interpreter is the reference semantics: the C peer is its arithmetic, not the JIT's
    seconds = 2100 / SR  # past the first restarts (samples 1 and 1025) and one more
    c = _render(CEngine(osc="same"), 64, seconds)
    interpreted = OscenEngine(compiled=False)
    try:
        interpreted.prepare("seed", SR, 64)
        ref = interpreted.render(seconds)
    finally:
        interpreted.close()
    assert np.array_equal(_bits(c), _bits(ref))


def test_c_same_is_built_without_contraction_and_has_only_the_seed() -> None:
    engine = CEngine(osc="same")
    assert NO_CONTRACT in engine.flags and "oscen's math" in engine.name
    assert NO_CONTRACT in CEngine(osc="same", flags="native-nocontract").flags
    assert _has_patch(engine, "seed") and not _has_patch(engine, "voices64")
    assert _has_patch(CEngine(), "voices64")
    with pytest.raises(ValueError, match="only the seed patch"):
        engine.prepare("voices64", SR, 64)
