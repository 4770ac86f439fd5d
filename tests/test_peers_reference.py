"""Tests of the peer-benchmark reference signals and of the hand-written C baseline.

The other peers (signalflow, pyo, dawdreamer, numba) are optional extras: their smoke test at
the bottom skips cleanly when the package is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import freqz, lfilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.peers import reference as R  # noqa: E402
from benchmarks.peers.base import NotPrepared, PeerEngine  # noqa: E402
from benchmarks.peers.c_engine import CEngine, compiler  # noqa: E402

SR = 44100.0


def _gain_at(freq: float) -> float:
    b, a = R.rbj_lowpass(R.CUTOFF, R.Q, SR)
    _, h = freqz(b, a, worN=[freq], fs=SR)
    return float(abs(h[0]))


def test_rbj_lowpass_is_the_cookbook_filter() -> None:
    b, a = R.rbj_lowpass(R.CUTOFF, R.Q, SR)
    assert a[0] == 1.0
    assert b.sum() / a.sum() == pytest.approx(1.0, rel=1e-12)  # unity gain at DC
    assert _gain_at(R.CUTOFF) == pytest.approx(R.Q, rel=1e-9)  # RBJ lowpass: |H(f0)| = Q
    assert _gain_at(0.99 * SR / 2) < 1e-3  # zero at Nyquist


def test_seed_reference_level_and_shape() -> None:
    y = R.seed(1.0, SR)
    assert y.shape == (44100,) and y.dtype == np.float64
    assert y[0] == 0.0
    steady = y[int(0.1 * SR) :]
    expected_rms = R.SEED_GAIN * R.SEED_AMP * _gain_at(R.SEED_FREQ) / np.sqrt(2.0)
    assert np.sqrt(np.mean(steady**2)) == pytest.approx(expected_rms, rel=2e-3)


def test_voice_frequencies() -> None:
    f = R.voice_frequencies()
    assert f.size == 64 and f[0] == 110.0
    assert f[12] == pytest.approx(220.0) and f[-1] == pytest.approx(4186.009, rel=1e-6)
    assert f.max() < SR / 2  # no capping or wrapping needed at 44.1 kHz


def test_voices64_reference_equals_sum_of_filtered_voices() -> None:
    seconds = 0.1
    n = R.num_samples(seconds, SR)
    b, a = R.rbj_lowpass(R.CUTOFF, R.Q, SR)
    t = np.arange(n) / SR
    explicit = sum(lfilter(b, a, R.VOICE_AMP * np.sin(2 * np.pi * f * t)) for f in R.voice_frequencies())
    np.testing.assert_allclose(R.voices64(seconds, SR), explicit, atol=1e-12)


def test_num_samples_truncates() -> None:
    assert R.num_samples(10.0, SR) == 441000
    assert R.reference("seed", 0.0123, SR).size == int(0.0123 * SR)
    with pytest.raises(ValueError):
        R.reference("nope", 1.0)


def test_compare_tolerances() -> None:
    ref = R.seed(0.5, SR)
    same = R.compare(ref.copy(), ref, SR)
    assert same.ok() and same.rms_ratio == pytest.approx(1.0) and same.correlation == pytest.approx(1.0)
    assert R.compare(ref * 1.005, ref, SR).ok()
    assert not R.compare(ref * 1.02, ref, SR).ok()
    assert not R.compare(ref[:-1], ref, SR).ok()  # wrong length
    assert not R.compare(np.roll(ref, 25), ref, SR).ok()  # right level, wrong phase
    assert R.compare(np.roll(ref, 25), ref, SR).ok(min_correlation=None)
    # float32 round trip (what most peers deliver) is well inside the tolerances
    assert R.check("seed", ref.astype(np.float32), 0.5, SR).ok()


needs_cc = pytest.mark.skipif(compiler() is None, reason="no C compiler")


@needs_cc
@pytest.mark.parametrize("patch", R.PATCHES)
@pytest.mark.parametrize("block", [64, 256])
def test_c_engine_matches_reference(patch: str, block: int) -> None:
    engine = CEngine()
    assert isinstance(engine, PeerEngine) and engine.available() is None
    try:
        latency = engine.prepare(patch, SR, block)
        assert latency > 0
        seconds = 0.25 + 17 / SR  # not a whole number of blocks
        out = engine.render(seconds)
        assert out.dtype == np.float64 and out.shape == (R.num_samples(seconds, SR),)
        ref = R.reference(patch, seconds, SR)
        np.testing.assert_allclose(out, ref, atol=1e-9)  # float64 all the way: near-exact
        assert np.array_equal(engine.render(seconds), out)  # every render restarts at t = 0
    finally:
        engine.close()
        engine.close()


@needs_cc
def test_c_engine_block_size_does_not_change_the_sound() -> None:
    engine = CEngine()
    try:
        engine.prepare("voices64", SR, 64)
        a = engine.render(0.1)
        engine.prepare("voices64", SR, 256)
        b = engine.render(0.1)
    finally:
        engine.close()
    np.testing.assert_array_equal(a, b)


@needs_cc
@pytest.mark.parametrize(
    "kwargs", [{"flags": "generic"}, {"osc": "rotation"}, {"osc": "rotation", "layout": "interleaved"}]
)
def test_c_engine_variants_match_reference(kwargs: dict[str, str]) -> None:
    engine = CEngine(**kwargs)
    try:
        for patch in R.PATCHES:
            engine.prepare(patch, SR, 64)
            out = engine.render(0.2)
            np.testing.assert_allclose(out, R.reference(patch, 0.2, SR), atol=1e-9)
    finally:
        engine.close()


def test_c_engine_errors() -> None:
    engine = CEngine()
    with pytest.raises(NotPrepared):
        engine.render(0.1)
    with pytest.raises(ValueError):
        engine.prepare("nope", SR, 64)
    with pytest.raises(ValueError):
        CEngine(osc="table")


def _optional_engines() -> list[PeerEngine]:
    from benchmarks.peers import default_engines

    return [e for e in default_engines() if not isinstance(e, CEngine)]


@pytest.mark.parametrize("engine", _optional_engines(), ids=lambda e: e.name)
def test_optional_peer_renders_the_same_sound(engine: PeerEngine) -> None:
    reason = engine.available()
    if reason is not None:
        pytest.skip(reason)
    try:
        for patch in R.PATCHES:
            engine.prepare(patch, SR, 256)
            seconds = 0.5
            out = engine.render(seconds)
            assert out.dtype == np.float64 and out.shape == (R.num_samples(seconds, SR),)
            cmp = R.check(patch, out, seconds, SR)
            assert cmp.ok(), (patch, cmp)
    finally:
        engine.close()
