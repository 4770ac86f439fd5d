"""schedule() orders a graph without cycles by Kahn's algorithm alone (no strongly connected
components to find): the same order, back edges and components as the general path gives."""

from __future__ import annotations

import random

import pytest

from oscen.graph.topology import CycleError, schedule


def _random_dag(rng: random.Random, n: int) -> tuple[list[int], list[tuple[int, int]]]:
    nodes = rng.sample(range(1000), n)  # ids in any order, as a graph's insertion order
    rank = {v: i for i, v in enumerate(rng.sample(nodes, n))}  # a topological rank
    edges = []
    for _ in range(rng.randrange(0, 3 * n)):
        a, b = rng.sample(nodes, 2)
        if rank[a] > rank[b]:
            a, b = b, a
        edges.append((a, b))
    return nodes, edges


@pytest.mark.parametrize("seed", range(40))
def test_a_dag_is_ordered_as_the_general_path_orders_it(seed: int) -> None:
    rng = random.Random(seed)
    nodes, edges = _random_dag(rng, rng.randrange(2, 40))
    fast = schedule(nodes, edges, lambda v: False)
    # a breaker with a self-loop, last: the general path runs (components, back edges), and it
    # comes last in the order (the stack holds it under every other ready node)
    z = 5000
    general = schedule([*nodes, z], [*edges, (z, z)], lambda v: v == z)
    assert fast.order == general.order[:-1] and general.order[-1] == z
    assert fast.back_edges == frozenset() and general.back_edges == {(z, z)}
    assert fast.components == () and general.components == ((z,),)
    position = {v: i for i, v in enumerate(fast.order)}
    assert sorted(fast.order) == sorted(nodes)
    assert all(position[a] < position[b] for a, b in edges)


def test_a_cycle_without_a_breaker_is_still_refused() -> None:
    with pytest.raises(CycleError, match="b -> c -> b"):
        schedule([1, 2, 3], [(1, 2), (2, 3), (3, 2)], lambda v: False, {1: "a", 2: "b", 3: "c"}.get)
