"""A seeded random generator for node code, the same in the interpreter and in compiled code.

Python's :mod:`random` and numpy's generators cannot run inside compiled node code, and a node that
draws from them would sound different in the two engines. :class:`RandomSource` is a mixin that
gives a node its own generator, xorshift32 (Marsaglia 2003, shifts 13/17/5, period 2**32 - 1),
written in the plain integer Python the JIT compiles, so ``process`` may call ``self.random()``
and both engines produce the same numbers, bit for bit, from the same seed::

    class Dust(RandomSource, Node):
        density = ValueInput(10.0)
        output = StreamOutput()

        def __init__(self, density=10.0, seed=0):
            self.density = float(density)
            self.seed_random(seed)

        def process(self, sample_rate):
            self.output = 1.0 if self.random() < self.density / sample_rate else 0.0

Every value stays below 2**45, so the compiled 64-bit integers never overflow. The state is the
node attribute ``rng_state``: it is carried through hot swaps like any other state.
"""

from __future__ import annotations

MASK32 = 0xFFFFFFFF
TWO_32 = 4294967296.0


def seed_state(seed: int) -> int:
    """A non-zero 32-bit state from any int seed (splitmix-style scrambling, so that nearby seeds
    start far apart; xorshift's one fixed point, 0, is avoided)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    z = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z = (z ^ (z >> 31)) & MASK32
    return z if z != 0 else 0x6D2B79F5


class RandomSource:
    """Mixin: a node-owned xorshift32 generator. Call :meth:`seed_random` in ``__init__``.

    In node code: ``self.random()`` is uniform in (0, 1), never exactly 0 or 1;
    ``self.uniform(low, high)`` in (low, high); ``self.bipolar()`` in (-1, 1) (white noise);
    ``self.random_u32()`` the raw 32-bit value, 1 .. 2**32 - 1.
    """

    rng_state: int = 0x6D2B79F5

    def seed_random(self, seed: int = 0) -> None:
        """Start the generator from ``seed`` (at construction; not compiled)."""
        self.rng_state = seed_state(seed)

    # The methods below are compiled with the node: plain statements, no docstrings (the node
    # checks of tests/node_harness.py hold built-in nodes to that).
    def random_u32(self) -> int:
        # the next 32-bit value, 1 .. 2**32 - 1
        x = self.rng_state
        x = x ^ ((x << 13) & 0xFFFFFFFF)
        x = x ^ (x >> 17)
        x = x ^ ((x << 5) & 0xFFFFFFFF)
        self.rng_state = x
        return x

    def random(self) -> float:
        # uniform in (0, 1): never exactly 0 or 1
        return self.random_u32() / 4294967296.0

    def uniform(self, low: float, high: float) -> float:
        # uniform in (low, high)
        return low + (high - low) * self.random()

    def bipolar(self) -> float:
        # uniform in (-1, 1): white noise
        return 2.0 * self.random() - 1.0
