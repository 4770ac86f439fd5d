"""EnvelopeFollower, Compressor, Limiter: the static curve with its knee, measured attack and release
time constants, and the limiter's ceiling, in both engines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from engines_support import both_engines, example_renders, one_node
from hypothesis import given, settings
from hypothesis import strategies as st
from jit_support import set_value
from node_harness import assert_compilable, run

from oscen.dynamics import Compressor, EnvelopeFollower, Limiter, static_curve_db

SR = 8000.0


def crossing(y: np.ndarray, level: float) -> float:
    """The fractional sample index where a monotone ``y`` first reaches ``level`` (linear interpolation)."""
    i = int(np.flatnonzero(y >= level)[0]) if y[-1] > y[0] else int(np.flatnonzero(y <= level)[0])
    return i - 1 + (level - y[i - 1]) / (y[i] - y[i - 1])


def reference_curve(x_db: float, threshold: float, ratio: float, knee: float) -> float:
    """Giannoulis, Massberg & Reiss 2012, eq. (4), written out here independently of the node."""
    if 2 * (x_db - threshold) < -knee:
        return x_db
    if knee > 0 and 2 * abs(x_db - threshold) <= knee:
        return x_db + (1 / ratio - 1) * (x_db - threshold + knee / 2) ** 2 / (2 * knee)
    return threshold + (x_db - threshold) / ratio


# ---------------------------------------------------------------------------------- follower
@pytest.mark.parametrize(("attack", "release"), [(0.01, 0.05), (0.002, 0.2)])
def test_follower_time_constants(attack: float, release: float) -> None:
    on = int(8 * attack * SR)
    n = on + int(8 * release * SR)
    x = np.zeros(n)
    x[:on] = 1.0
    outs = both_engines(one_node(lambda: EnvelopeFollower(attack, release), {"input": x}, sample_rate=SR), n)
    for y in outs.values():
        # a one-pole step response: 1 - 1/e after `attack` seconds (sample k holds k + 1 updates)
        assert crossing(y[:on], 1 - 1 / math.e) + 1 == pytest.approx(attack * SR, abs=0.05)
        fall = y[on - 1 :] / y[on - 1]
        assert crossing(fall, 1 / math.e) == pytest.approx(release * SR, abs=0.05)


def test_follower_rms_of_a_sine() -> None:
    n = 8000
    x = 0.8 * np.sin(2 * np.pi * 200 * np.arange(n) / SR)
    for mode, want in (("rms", 0.8 / math.sqrt(2)), ("peak", None)):
        outs = both_engines(one_node(lambda mode=mode: EnvelopeFollower(0.05, 0.05, mode), {"input": x},
                                     sample_rate=SR), n)  # fmt: skip
        for y in outs.values():
            settled = y[4000:]
            if want is not None:
                assert settled.mean() == pytest.approx(want, rel=0.01)
            else:  # |sin| averages 2/pi with equal attack and release
                assert settled.mean() == pytest.approx(0.8 * 2 / math.pi, rel=0.02)


# ---------------------------------------------------------------------------------- compressor
@pytest.mark.parametrize("knee", [0.0, 10.0])
def test_compressor_static_curve_matches_the_formula(knee: float) -> None:
    threshold, ratio, makeup = -20.0, 4.0, 3.0
    levels = [-60.0, -30.0, -26.0, -22.0, -20.0, -17.0, -14.0, -6.0, 0.0]
    per = 400
    x = np.concatenate([np.full(per, 10 ** (db / 20)) for db in levels])
    make = lambda: Compressor(threshold, ratio, attack=0.0005, release=0.002, knee=knee, makeup=makeup)  # noqa: E731
    outs = both_engines(one_node(make, {"input": x}, sample_rate=SR), len(x))
    for y in outs.values():
        for k, db in enumerate(levels):
            out_db = 20 * np.log10(y[(k + 1) * per - 1])
            assert out_db == pytest.approx(reference_curve(db, threshold, ratio, knee) + makeup, abs=1e-6), db
    for db in levels:
        assert static_curve_db(db, threshold, ratio, knee) == pytest.approx(
            reference_curve(db, threshold, ratio, knee)
        )


def test_compressor_attack_and_release_time_constants() -> None:
    attack, release = 0.01, 0.08
    quiet, loud = 10 ** (-40 / 20), 1.0  # below the threshold, then 20 dB above it
    on, off = 400, 400 + int(10 * attack * SR)
    n = off + int(8 * release * SR)
    x = np.full(n, quiet)
    x[on:off] = loud
    build = one_node(lambda: Compressor(-20.0, 4.0, attack, release, knee=0.0), {"input": x},
                     outputs=("output", "gain_reduction"), sample_rate=SR)  # fmt: skip
    target = 20.0 - 20.0 / 4.0  # 15 dB of reduction at 0 dBFS
    for y, reduction in both_engines(build, n).values():
        measured = -20 * np.log10(y[on:off] / x[on:off])  # the reduction, from the audio itself
        np.testing.assert_allclose(measured, reduction[on:off], atol=1e-9)
        assert crossing(measured, target * (1 - 1 / math.e)) + 1 == pytest.approx(attack * SR, abs=0.05)
        assert measured[-1] == pytest.approx(target, abs=1e-3)
        after = -20 * np.log10(y[off - 1 :] / x[off - 1 :]) / target
        assert crossing(after, 1 / math.e) == pytest.approx(release * SR, abs=0.05)


def test_compressor_sidechain_ducks_the_input() -> None:
    n = 3000
    tone = 0.1 * np.sin(2 * np.pi * 300 * np.arange(n) / SR)
    key = np.zeros(n)
    key[1000:2000] = 1.0
    build = one_node(lambda: Compressor(-30.0, 10.0, 0.001, 0.01, knee=0.0, external_sidechain=True),
                     {"input": tone, "sidechain": key}, outputs=("output", "gain_reduction"), sample_rate=SR)  # fmt: skip
    for y, reduction in both_engines(build, n).values():
        np.testing.assert_allclose(y[:1000], tone[:1000], atol=1e-12)  # key silent: no reduction
        assert reduction[1900] == pytest.approx(
            30 - 30 / 10, abs=1e-3
        )  # from the key's level, not the tone's
        np.testing.assert_allclose(y[1900:2000], tone[1900:2000] * 10 ** (-27 / 20), rtol=1e-3)


# ---------------------------------------------------------------------------------- limiter
def test_limiter_never_exceeds_the_ceiling() -> None:
    n = 6000
    rng = np.random.default_rng(9)
    t = np.arange(n)
    x = 0.3 * np.sin(2 * np.pi * 220 * t / SR) + rng.normal(0, 0.05, n)
    bursts = (t // 700) % 3 == 1
    x[bursts] *= 12.0  # peaks near 5x the ceiling
    x[3333] = 9.0  # a lone spike
    ceiling = -3.0
    limit = 10 ** (ceiling / 20)
    lookahead = 0.002
    build = one_node(lambda: Limiter(ceiling, 0.02, lookahead), {"input": x}, sample_rate=SR)
    latency = Limiter(ceiling, 0.02, lookahead).latency(SR)
    assert latency == 16
    for y in outs_values(build, n):
        assert np.max(np.abs(y)) <= np.nextafter(limit, 2.0)  # 10 ** x in the kernel: within an ulp
        assert np.max(np.abs(y)) == pytest.approx(limit, abs=1e-9)  # and it does limit to it
        assert y[3333 + latency] == pytest.approx(limit)  # the spike comes out exactly at the ceiling
        # far from any loud part the output is the input, delayed
        quiet = slice(latency + 10, 650)
        np.testing.assert_allclose(y[quiet], x[quiet.start - latency : quiet.stop - latency], atol=1e-12)


def outs_values(build, n):
    return list(both_engines(build, n).values())


def test_limiter_gain_falls_smoothly_before_a_peak_and_recovers_with_release() -> None:
    n = 2000
    x = np.full(n, 0.5)
    x[500] = 4.0
    release = 0.01
    build = one_node(lambda: Limiter(0.0, release, 0.004), {"input": x}, outputs=("output", "gain_reduction"),
                     sample_rate=SR)  # fmt: skip
    ahead = 32
    for y, reduction in both_engines(build, n).values():
        gain = 10 ** (-reduction / 20)
        # the gain starts falling `ahead` samples before the peak reaches the output, linearly
        assert np.all(gain[:500] == 1.0)
        down = gain[500 : 500 + ahead + 1]
        np.testing.assert_allclose(np.diff(down), (0.25 - 1.0) / (ahead + 1), atol=1e-12)
        assert y[500 + ahead] == pytest.approx(1.0)
        # the released gain recovers as 1 - (1 - g) a^k, then the average trails it by ahead samples
        tail = gain[500 + 2 * ahead + 200 : 500 + 2 * ahead + 600]
        k = np.arange(len(tail))
        a = math.exp(-1 / (release * SR))
        ratio = (1 - tail[1:]) / (1 - tail[:-1])
        np.testing.assert_allclose(ratio, a, rtol=1e-6)
        assert np.all(np.diff(tail) > 0) and len(k) == 400


def test_limiter_without_lookahead_clamps_at_once() -> None:
    x = np.array([0.1, 2.0, -3.0, 0.5, 0.2] * 40)
    outs = both_engines(one_node(lambda: Limiter(0.0, 0.0, 0.0), {"input": x}), len(x))
    for y in outs.values():
        np.testing.assert_allclose(y, np.clip(x, -1, 1), atol=1e-15)


def test_limiter_refuses_bad_lookahead() -> None:
    with pytest.raises(ValueError, match="lookahead must be between 0 and 1 second"):
        Limiter(lookahead=-0.1)


def test_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode 'loud'"):
        EnvelopeFollower(mode="loud")


@pytest.mark.parametrize("make", [EnvelopeFollower, lambda: EnvelopeFollower(mode="rms"), Compressor,
                                  lambda: Compressor(external_sidechain=True), Limiter])  # fmt: skip
def test_compilable_subset(make) -> None:
    assert_compilable(make(), inputs={"input": np.linspace(-2, 2, 300)})


def test_example_patch_renders_in_both_engines() -> None:
    out = example_renders("dynamics_patch.py", seconds=0.3)
    assert np.max(np.abs(out)) > 0.05


def test_limiter_follows_a_lowered_ceiling() -> None:
    n = 4000
    x = 0.9 * np.sin(2 * np.pi * 150 * np.arange(n) / SR)
    build = one_node(lambda: Limiter(0.0, 0.01, 0.002), {"input": x}, sample_rate=SR)
    for y in both_engines(build, n, [set_value(2000, "node.ceiling", -12.0)]).values():
        assert np.max(np.abs(y[:2000])) == pytest.approx(0.9, abs=1e-9)  # under 0 dB: untouched
        assert np.max(np.abs(y[2000:])) <= np.nextafter(10 ** (-12 / 20), 2.0)
        assert np.max(np.abs(y[3000:])) == pytest.approx(10 ** (-12 / 20), rel=1e-6)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    ceiling=st.floats(-24.0, 0.0),
    release=st.floats(0.0, 0.05),
    ahead=st.integers(0, 24),
    seed=st.integers(0, 2**16),
    loudness=st.floats(0.5, 20.0),
)
def test_limiter_gain_alone_keeps_the_ceiling(
    ceiling: float, release: float, ahead: int, seed: int, loudness: float
) -> None:
    # the algorithm itself, not the final clamp: the gain it computes (from gain_reduction) times
    # the delayed input stays under the ceiling up to rounding, for any signal and settings
    n = 600
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n) * np.repeat(rng.uniform(0, loudness, n // 50), 50)
    x[rng.integers(0, n)] = loudness * 3  # and a spike
    y = run(Limiter(ceiling, release, ahead / SR), n, SR, {"input": x}, ("output", "gain_reduction"))
    limit = 10 ** (ceiling / 20)
    gain = 10 ** (-y["gain_reduction"] / 20)
    delayed = np.concatenate([np.zeros(ahead), x[: n - ahead]])
    assert np.all(np.abs(delayed) * gain <= limit * (1 + 1e-9))
    assert np.all(np.abs(y["output"]) <= np.nextafter(limit, 2.0))
    np.testing.assert_allclose(y["output"], delayed * gain, atol=limit * 1e-9)
