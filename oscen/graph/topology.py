"""Processing order: a topological sort in which cycles may only close through feedback breakers.

Edges into a breaker (a node with ``breaks_feedback = True``) from inside its own strongly connected
component are *back edges*: over them the breaker reads its source's previous sample. Every other
cycle is an error naming its nodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .validation import GraphError


class CycleError(GraphError):
    """A cycle in the graph does not pass through any node that breaks feedback (a GraphError, so
    one ``except GraphError`` catches every refused edit)."""


@dataclass(frozen=True)
class Schedule:
    order: tuple[int, ...]
    back_edges: frozenset[tuple[int, int]]  # (source node, breaker node)
    components: tuple[tuple[int, ...], ...]  # strongly connected components with a cycle, in order


def _strongly_connected(nodes: Sequence[int], succ: dict[int, list[int]]) -> list[list[int]]:
    """Tarjan's algorithm, iterative (graphs of thousands of nodes must not hit the recursion limit)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    comps: list[list[int]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[int, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            children = succ.get(v, [])
            if i < len(children):
                work.append((v, i + 1))
                w = children[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(comp)
    return comps


def _find_cycle(members: set[int], succ: dict[int, list[int]]) -> list[int]:
    """One cycle among ``members`` (which must contain one), as a node list."""
    start = next(iter(sorted(members)))
    path: list[int] = [start]
    seen = {start: 0}
    v = start
    while True:
        nxt = next(w for w in succ.get(v, []) if w in members)
        if nxt in seen:
            return path[seen[nxt] :]
        seen[nxt] = len(path)
        path.append(nxt)
        v = nxt


def _kahn(nodes: Sequence[int], succ: dict[int, list[int]]) -> tuple[int, ...]:
    """Kahn's algorithm with a stack: a node that became ready by the last emitted node goes next,
    so each chain follows its head whatever the insertion order. Nodes on a cycle of ``succ``
    (and those after one) are left out."""
    indegree = dict.fromkeys(nodes, 0)
    for a in nodes:
        for b in succ[a]:
            indegree[b] += 1
    ready = [n for n in reversed(nodes) if indegree[n] == 0]
    emitted: list[int] = []
    while ready:
        v = ready.pop()
        emitted.append(v)
        for w in reversed(succ[v]):
            indegree[w] -= 1
            if indegree[w] == 0:
                ready.append(w)
    return tuple(emitted)


def schedule(
    nodes: Sequence[int],
    edges: Iterable[tuple[int, int]],
    breaks_feedback: Callable[[int], bool],
    label: Callable[[int], str] = str,
) -> Schedule:
    """Order ``nodes`` so every node follows its sources, except over back edges into breakers.

    The order is depth-first: a node's consumers follow it as closely as possible, so chains (a
    voice's oscillator, filter, amplifier) stay together — the JIT fuses neighbours into one loop.
    """
    position = {n: i for i, n in enumerate(nodes)}
    edge_list = sorted(set(edges), key=lambda e: (position[e[0]], position[e[1]]))
    succ: dict[int, list[int]] = {n: [] for n in nodes}
    for a, b in edge_list:
        succ[a].append(b)
    order = _kahn(nodes, succ)
    if len(order) == len(nodes):  # no cycle at all (most patches): no components to find
        return Schedule(order=order, back_edges=frozenset(), components=())
    comp_of: dict[int, int] = {}
    comps = _strongly_connected(nodes, succ)
    for ci, comp in enumerate(comps):
        for v in comp:
            comp_of[v] = ci
    back: set[tuple[int, int]] = set()
    for a, b in edge_list:
        if comp_of[a] == comp_of[b] and breaks_feedback(b) and (len(comps[comp_of[a]]) > 1 or a == b):
            back.add((a, b))
    fwd: dict[int, list[int]] = {n: [] for n in nodes}
    for a, b in edge_list:
        if (a, b) not in back:
            fwd[a].append(b)
    # without back edges the forward graph is the whole graph: its components are known
    for comp in _strongly_connected(nodes, fwd) if back else comps:
        if len(comp) > 1 or comp[0] in fwd[comp[0]]:
            cycle = _find_cycle(set(comp), fwd)
            names = " -> ".join(label(v) for v in [*cycle, cycle[0]])
            raise CycleError(
                f"cycle without a feedback breaker: {names}; route it through a node that breaks "
                "feedback (such as oscen.delay.Delay)"
            )
    order = _kahn(nodes, fwd)
    cyclic = tuple(tuple(sorted(c, key=order.index)) for c in comps if len(c) > 1 or c[0] in succ[c[0]])
    return Schedule(order=order, back_edges=frozenset(back), components=cyclic)
