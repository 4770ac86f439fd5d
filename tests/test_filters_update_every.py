"""Biquads with ``update_every=k``: coefficients recomputed at most every k samples while the
parameters change, checked against a Python reference of the rule built on the cookbook formulas
of test_filters (independent of oscen), and compiled against interpreted, as lanes too."""

from __future__ import annotations

import math

import numpy as np
import pytest
from node_harness import SR, assert_jit_matches, run, run1
from test_filters import cookbook

from oscen.filters import (
    MAX_CUTOFF_RATIO,
    MIN_CUTOFF_HZ,
    IirBandpass,
    IirHighpass,
    IirHighShelf,
    IirLowpass,
    IirLowShelf,
    IirNotch,
    IirPeak,
)
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.modulation import Lfo
from oscen.oscillators import Oscillator


def reference(x: np.ndarray, cutoff: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, list[int]]:
    """The rule, written out: at a sample where (cutoff, q) differs from the pair the coefficients
    were computed for and at least k samples have passed since the last computation, compute
    them (the cookbook lowpass, a0-normalised) before filtering that sample (transposed DF-II).
    Returns the output and the samples at which coefficients were computed."""
    y = np.empty(len(x))
    computed: list[int] = []
    last: tuple[float, float] | None = None
    since = k
    b = a = np.zeros(3)
    s1 = s2 = 0.0
    for t in range(len(x)):
        params = (float(cutoff[t]), float(q[t]))
        if params != last and since >= k:
            f0 = min(max(params[0], MIN_CUTOFF_HZ), MAX_CUTOFF_RATIO * SR)
            bb, aa = cookbook("lowpass", f0, params[1])
            b, a = np.array(bb) / aa[0], np.array(aa) / aa[0]
            last, since = params, 0
            computed.append(t)
        y[t] = b[0] * x[t] + s1
        s1 = b[1] * x[t] - a[1] * y[t] + s2
        s2 = b[2] * x[t] - a[2] * y[t]
        since += 1
    return y, computed


@pytest.mark.parametrize("k", [1, 3, 8])
def test_update_every_follows_the_rule(k: int) -> None:
    n = 3000
    rng = np.random.default_rng(4)
    x = rng.normal(size=n)
    cutoff = np.concatenate(
        [np.linspace(300.0, 3000.0, 1000), np.full(1000, 3000.0), np.linspace(3000.0, 800.0, 1000)]
    )
    cutoff[1500] = 5000.0  # one sample's change in the quiet stretch: applied at once, then back k later
    q = np.full(n, 2.0)
    q[2200:] = 0.9
    got = run(IirLowpass(300.0, 2.0, update_every=k), n, inputs={"input": x, "cutoff": cutoff, "q": q})[
        "output"
    ]
    expected, computed = reference(x, cutoff, q, k)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)
    assert 1500 in computed and 1500 + k in computed  # a change after a quiet stretch is not delayed
    sweep = [t for t in computed if t < 1000]
    assert sweep == list(range(0, 1000, k))  # while the cutoff moves, every k-th sample


def test_update_every_one_is_every_change() -> None:
    n = 800
    rng = np.random.default_rng(5)
    inputs = {"input": rng.normal(size=n), "cutoff": np.linspace(200.0, 4000.0, n)}
    every = run(IirLowpass(200.0, 1.5, update_every=1), n, inputs=inputs)["output"]
    default = run(IirLowpass(200.0, 1.5), n, inputs=inputs)["output"]
    np.testing.assert_array_equal(every, default)
    eight = run(IirLowpass(200.0, 1.5, update_every=8), n, inputs=inputs)["output"]
    assert np.max(np.abs(eight - every)) > 1e-4  # the option really changes something


def test_a_static_filter_is_the_same_whatever_update_every() -> None:
    x = np.random.default_rng(6).normal(size=500)
    plain = run1(IirPeak(1000.0, 1.0, 6.0), 500, input=x)
    np.testing.assert_array_equal(run1(IirPeak(1000.0, 1.0, 6.0, update_every=16), 500, input=x), plain)


def test_gain_changes_count_as_parameter_changes() -> None:
    n = 400
    x = np.random.default_rng(7).normal(size=n)
    gain = np.where(np.arange(n) < 200, 0.0, 9.0)
    node = IirPeak(1000.0, 1.0, 0.0, update_every=4)
    y = run(node, n, inputs={"input": x, "gain_db": gain})["output"]
    np.testing.assert_allclose(y[:200], x[:200], atol=1e-12)  # 0 dB: the identity
    assert node._last_gain_db == 9.0
    assert np.max(np.abs(y[200:] - x[200:])) > 0.1


@pytest.mark.parametrize("bad", [0, -3, 1.5, True, "8"])
def test_update_every_must_be_a_positive_int(bad) -> None:
    with pytest.raises(ValueError, match=r"IirLowpass: update_every must be an int >= 1"):
        IirLowpass(1000.0, 0.7, update_every=bad)
    with pytest.raises(ValueError, match=r"IirPeak: update_every"):
        IirPeak(1000.0, 0.7, 3.0, update_every=bad)


def test_repr_shows_update_every() -> None:
    assert repr(IirLowpass(500.0, 2.0, update_every=8)) == "IirLowpass(500.0, 2.0, update_every=8)"
    assert repr(IirLowpass(500.0, 2.0)) == "IirLowpass(500.0, 2.0)"
    assert (
        repr(IirHighShelf(500.0, 0.7, 3.0, update_every=2)) == "IirHighShelf(500.0, 0.7, 3.0, update_every=2)"
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: IirLowpass(800.0, 3.0, update_every=5),
        lambda: IirHighpass(800.0, 0.7, update_every=2),
        lambda: IirBandpass(2000.0, 2.0, update_every=8),
        lambda: IirNotch(1000.0, 1.0, update_every=3),
        lambda: IirPeak(1000.0, 1.0, 6.0, update_every=8),
        lambda: IirLowShelf(300.0, 0.7, -6.0, update_every=8),
        lambda: IirHighShelf(3000.0, 0.7, 6.0, update_every=7),
    ],
)
def test_jit_matches_interpreter_with_a_modulated_cutoff(make) -> None:
    # noise into the cutoff: a change every sample, so the countdown decides every recomputation
    assert_jit_matches(make, noise_into=("input", "cutoff"))


def saws_into_swept_lowpasses(voices: int) -> Graph:
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0 / voices), "mix")
    lfo = graph.add_node(Lfo(3.0, "sine", depth=600.0, offset=1200.0), "lfo")
    for k in range(voices):
        saw = graph.add_node(Oscillator.saw(110.0 * 1.5**k, band_limited=True), f"saw{k}")
        lp = graph.add_node(IirLowpass(1000.0, 2.0, update_every=8), f"lp{k}")
        graph.connect(saw.output, lp.input)
        graph.connect(lfo.output, lp.cutoff)
        graph.connect(lp.output, mix.input)
    graph.set_output(mix.output)
    return graph


@pytest.mark.parametrize("lanes", [1, 2])
def test_swept_voices_compiled_equal_the_interpreter(lanes: int) -> None:
    from jit_support import assert_jit_same

    from oscen.jit import CraneliftJit

    assert_jit_same(
        lambda: saws_into_swept_lowpasses(4), 3000, blocks=[256, 77], jit=CraneliftJit(lanes=lanes)
    )


def test_the_reference_is_the_cookbook() -> None:
    # the reference itself, static: scipy's lfilter of the same coefficients
    from scipy import signal

    x = np.random.default_rng(8).normal(size=300)
    y, computed = reference(x, np.full(300, 700.0), np.full(300, 1.1), 8)
    b, a = cookbook("lowpass", 700.0, 1.1)
    np.testing.assert_allclose(y, signal.lfilter(b, a, x), atol=1e-12)
    assert computed == [0]
    assert math.isfinite(float(np.sum(y)))
