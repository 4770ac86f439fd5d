"""oscen.random: a node-owned seeded generator that both engines run bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from engines_support import both_engines

from oscen.graph import Graph, Node, StreamOutput, ValueInput
from oscen.random import RandomSource, seed_state

SR = 44100.0


class WhiteNoise(RandomSource, Node):
    """Uniform white noise in (-1, 1) from the node's own generator."""

    level = ValueInput(1.0)
    output = StreamOutput()

    def __init__(self, seed: int = 0) -> None:
        self.level = 1.0
        self.seed_random(seed)

    def process(self, sample_rate):
        self.output = self.level * self.bipolar()


class Dust(RandomSource, Node):
    """Impulses at random samples, ``density`` per second on average (uses uniform() and random())."""

    density = ValueInput(2000.0)
    output = StreamOutput()

    def __init__(self, seed: int = 0) -> None:
        self.density = 2000.0
        self.seed_random(seed)

    def process(self, sample_rate):
        if self.random() < self.density / sample_rate:
            self.output = self.uniform(0.5, 1.0)
        else:
            self.output = 0.0


def reference(seed: int, n: int) -> np.ndarray:
    """xorshift32 written independently with numpy uint32 arithmetic."""
    x = np.uint32(seed_state(seed))
    out = np.empty(n)
    with np.errstate(over="ignore"):
        for i in range(n):
            x ^= np.uint32(x << np.uint32(13))
            x ^= np.uint32(x >> np.uint32(17))
            x ^= np.uint32(x << np.uint32(5))
            out[i] = 2.0 * (int(x) / 4294967296.0) - 1.0
    return out


@pytest.mark.parametrize("seed", [0, 1, 12345, -7, 2**40])
def test_white_noise_is_bit_identical_in_both_engines_and_matches_xorshift32(seed: int) -> None:
    def build() -> Graph:
        graph = Graph(SR)
        graph.add_node(WhiteNoise(seed))
        return graph

    outs = both_engines(build, 4000, atol=0.0)
    assert np.array_equal(outs["interpreted"], outs["state"])
    assert np.array_equal(outs["interpreted"], reference(seed, 4000))


def test_the_generator_is_uniform_and_seeds_differ() -> None:
    node = WhiteNoise(3)
    draws = np.array([node.random() for _ in range(200_000)])
    assert draws.min() > 0.0 and draws.max() < 1.0
    counts, _ = np.histogram(draws, bins=20, range=(0.0, 1.0))
    expected = len(draws) / 20
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 43.8  # the 0.999 quantile of chi-square with 19 degrees of freedom
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < 0.01
    a, b = WhiteNoise(1), WhiteNoise(2)
    assert [a.random_u32() for _ in range(4)] != [b.random_u32() for _ in range(4)]


def test_dust_density_in_both_engines() -> None:
    def build() -> Graph:
        graph = Graph(SR)
        graph.add_node(Dust(seed=9))
        return graph

    outs = both_engines(build, int(SR), atol=0.0)
    for out in outs.values():
        hits = out[out > 0]
        assert abs(len(hits) - 2000) < 5 * np.sqrt(2000)  # Poisson-like count at 2000 per second
        assert hits.min() >= 0.5 and hits.max() <= 1.0


def test_seed_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="seed must be an int"):
        WhiteNoise(1.5)  # type: ignore[arg-type]
