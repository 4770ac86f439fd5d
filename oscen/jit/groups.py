"""Voice groups: copies of one sub-graph in a GraphIR, found structurally, compiled as one body.

A polyphonic patch holds the same voice many times: ``poly_voices`` / ``instantiate`` build them,
and hand-built patches repeat chains (64 sines, each into its own lowpass). Compiled one by one,
every copy is more code for Cranelift and its own pass over the block. A :class:`VoiceGroup` says
which nodes are copies of one *template*: the compiler then builds one function for a voice and
runs it for each voice in turn, or for two voices at once (:mod:`.passes.lanes`), so compile time
stops growing with the voice count.

What makes nodes copies, found without any hint from the user:

* the same variant (:func:`.session.variant_key`: class, attribute types, constants, endpoints),
  none in a feedback cycle;
* the connected components of such nodes (joined by their connections) with the same shape: the
  same variants in schedule order, the same connections between them, and on every input the same
  sequence of sources (a node of the copy, or one from outside);
* a source from outside may be one node shared by every voice (a global LFO) or differ per voice
  (the allocator's ``pitch3`` for voice 3, of the same kind);
* running the voices one after the other, once their outside sources have run and before anything
  that reads them, must respect the graph's order: groups that would need a cycle are dropped.

Each voice then computes exactly what the interpreter computes, sample by sample; only the order in
which independent voices are visited within a block changes.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..graph.ir import GraphIR
from .session import variant_key

MIN_VOICES = 2
"""Fewer copies than this are not a group."""
HUB_TRIES = 64
"""Nodes of a component tried (best-connected first) as the shared node its voices hang from."""


@dataclass(frozen=True)
class Source:
    """Where one term of a voice's input comes from: ``member`` (an index into the template) or,
    from outside the voice, ``node`` and ``port``."""

    member: int | None
    node: int
    port: str


@dataclass
class ExternalInput:
    """An input term fed from outside the voices: the template member and input, the term's place
    in that input's sum, and each voice's source ``(node, port)``. ``shared``: one source for all."""

    member: int
    endpoint: str
    term: int
    kind: str  # "stream" | "event"
    sources: list[tuple[int, str]]

    @property
    def shared(self) -> bool:
        return all(s == self.sources[0] for s in self.sources)


@dataclass
class VoiceGroup:
    """``voices[v][j]``: the node id of template member ``j`` in voice ``v`` (members in schedule
    order, voices in the order of their first member)."""

    voices: list[list[int]]
    externals: list[ExternalInput] = field(default_factory=list)

    @property
    def template(self) -> list[int]:
        """Voice 0's nodes: the body is built from them."""
        return self.voices[0]

    @property
    def members(self) -> list[int]:
        return [nid for voice in self.voices for nid in voice]


def _components(candidates: set[int] | frozenset[int], edges: list[tuple[int, int]]) -> list[frozenset[int]]:
    """The connected components of ``candidates`` joined by ``edges``, as frozensets (a frozenset
    keeps its hash: components are looked up by themselves, several times each)."""
    parent = {n: n for n in candidates}

    def find(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    comps: dict[int, set[int]] = defaultdict(set)
    for n in candidates:
        comps[find(n)].add(n)
    return [frozenset(c) for c in comps.values()]


def find_groups(ir: GraphIR, min_voices: int = MIN_VOICES) -> list[VoiceGroup]:
    """The voice groups of ``ir`` (see the module docstring), in schedule order of their first
    voice. Nodes of no group keep being compiled one by one."""
    pos = {nid: i for i, nid in enumerate(ir.order)}
    nodes = {n.id: n for n in ir.nodes}
    in_cycle = {nid for cyc in ir.cycles for nid in cyc}
    back = {nid for c in ir.connections if c.back_edge for nid in (c.source, c.target)}
    # Each variant as a small int (the same relation as the keys' equality): shapes are compared
    # and hashed often, and a tuple's hash is not kept, so nested variant keys in them cost
    # a walk of the whole key each time.
    variants: dict[tuple, int] = {}
    # The same, by the ids of what makes the key: voices share their class, state, constants
    # and endpoint objects (build_ir), so the key is asked for once per distinct set (the IR
    # keeps the objects alive: their ids are not reused here). Only templates are lowered, so
    # the other voices' nodes need no key of their own.
    by_parts: dict[tuple[int, int, int, int], int] = {}
    keys: dict[int, int] = {}
    for n in ir.nodes:
        if n.id in in_cycle or n.id in back or n.unsupported:
            continue
        parts = (id(n.node_class or n.resolve_class()), id(n.state), id(n.constants), id(n.endpoints))
        v = by_parts.get(parts)
        if v is None:
            v = by_parts[parts] = variants.setdefault(variant_key(n, ir.sample_rate), len(variants))
        keys[n.id] = v
    count: dict[int, int] = defaultdict(int)
    for key in keys.values():
        count[key] += 1
    candidates = {nid for nid, key in keys.items() if count[key] >= min_voices}
    if not candidates:
        return []
    # per target node, its inputs' connections in order (node ids and endpoint names only)
    inputs: dict[int, dict[str, list[tuple[int, str, str]]]] = {}
    edges = []
    for c in ir.connections:
        source, target = c.source, c.target
        by_input = inputs.get(target)
        if by_input is None:
            by_input = inputs[target] = {}
        terms = by_input.get(c.target_endpoint)
        if terms is None:
            by_input[c.target_endpoint] = [(source, c.source_endpoint, c.kind)]
        else:
            terms.append((source, c.source_endpoint, c.kind))
        if source in candidates and target in candidates:
            edges.append((source, target))
    # per endpoints list (shared by a class's nodes, build_ir): its inputs' declaration order
    input_order: dict[int, dict[str, int]] = {}
    # Shapes as small ints (equal shapes, equal ints): a shape is a nested tuple whose hash is
    # not kept, and components are counted and sorted by shape several times.
    shape_ids: dict[tuple, int] = {}
    shapes: dict[frozenset[int], tuple[int, list[int], list]] = {}

    def shape_of(comp: frozenset[int]) -> tuple[int, list[int], list]:
        got = shapes.get(comp)
        if got is None:
            got = shapes[comp] = _shape(comp)
        return got

    def _shape(comp: frozenset[int]) -> tuple[int, list[int], list]:
        # Per member its variant and, for each connected input in declaration order, its name
        # and then its terms in order, each a tuple: (member, port, kind) from the copy, (None,
        # kind) from outside. Unconnected inputs are left out: the variant fixes the endpoints.
        members = sorted(comp, key=pos.__getitem__)
        index = {nid: j for j, nid in enumerate(members)}
        shape: list = []
        externals: list = []  # (member, endpoint, term, kind, (node, port))
        for j, nid in enumerate(members):
            by_input = inputs.get(nid)
            if by_input is None:
                shape.append(keys[nid])
                continue
            if len(by_input) == 1:
                names: Iterable[str] = by_input
            else:
                endpoints = nodes[nid].endpoints
                order = input_order.get(id(endpoints))
                if order is None:
                    order = input_order[id(endpoints)] = {e.name: i for i, e in enumerate(endpoints)}
                names = sorted(by_input, key=order.__getitem__)
            entry = [keys[nid]]
            for name in names:
                entry.append(name)
                for t, (source, port, kind) in enumerate(by_input[name]):
                    member = index.get(source)
                    if member is not None:
                        entry.append((member, port, kind))
                    else:
                        entry.append((None, kind))
                        externals.append((j, name, t, kind, (source, port)))
            shape.append(tuple(entry))
        return shape_ids.setdefault(tuple(shape), len(shape_ids)), members, externals

    comps = _split_at_hubs(_components(candidates, edges), edges, shape_of)
    by_shape: dict[int, list[tuple[list[int], list]]] = defaultdict(list)
    for comp in comps:
        shape, members, externals = shape_of(comp)
        by_shape[shape].append((members, externals))
    groups: list[VoiceGroup] = []
    for copies in by_shape.values():
        if len(copies) < min_voices:
            continue
        copies.sort(key=lambda mc: pos[mc[0][0]])
        voices = [members for members, _ in copies]
        externals = [
            ExternalInput(j, name, t, kind, [ext[i][4] for _, ext in copies])
            for i, (j, name, t, kind, _) in enumerate(copies[0][1])
        ]
        groups.append(VoiceGroup(voices, externals))
    groups = _schedulable(ir, groups)
    groups.sort(key=lambda g: pos[g.template[0]])
    return groups


def _split_at_hubs(
    comps: list[frozenset[int]], edges: list[tuple[int, int]], shape_of
) -> list[frozenset[int]]:
    """Components split at a shared source or sink of their own variant (a sine LFO modulating
    sine voices joins them all into one component): when one without its best-connected node
    falls into at least two parts of one shape, those parts are voices and the node is outside
    (tried best-connected first: the shared node has at least as many neighbours as there are
    voices, and a voice's own nodes may have as many)."""
    counts: dict[int, int] = defaultdict(int)
    for comp in comps:
        counts[shape_of(comp)[0]] += 1
    out: list[frozenset[int]] = []
    todo = list(comps)
    while todo:
        comp = todo.pop()
        if len(comp) < 3 or counts[shape_of(comp)[0]] > 1:
            out.append(comp)
            continue
        degree: dict[int, set[int]] = defaultdict(set)
        feeds: set[int] = set()  # nodes of the component that feed another one of it
        fed: set[int] = set()
        for a, b in edges:
            if a in comp and b in comp and a != b:
                degree[a].add(b)
                degree[b].add(a)
                feeds.add(a)
                fed.add(b)
        # A shared node feeds the voices (an LFO), is fed by them (a mix), or both with more
        # neighbours than a chain's link has (a mix feeding a gain of its own variant): a
        # chain's links are no hubs, so that a long chain is not tried node by node.
        hubs = [
            n
            for n in comp
            if len(degree[n]) >= MIN_VOICES and (len(degree[n]) > 2 or not (n in feeds and n in fed))
        ]
        for hub in sorted(hubs, key=lambda n: -len(degree[n]))[:HUB_TRIES]:
            rest = comp - {hub}
            parts = _components(rest, [(a, b) for a, b in edges if a in rest and b in rest])
            shapes: dict[int, int] = defaultdict(int)
            for part in parts:
                shapes[shape_of(part)[0]] += 1
            if len(parts) >= 2 and max(shapes.values()) >= 2:
                out.append(frozenset((hub,)))
                todo.extend(parts)
                break
        else:
            out.append(comp)
    return out


def _schedulable(ir: GraphIR, groups: list[VoiceGroup]) -> list[VoiceGroup]:
    """The groups that can each run as one unit: drops, one at a time, any group whose voices
    would have to wait for something that waits for them."""
    groups = list(groups)
    while groups:
        if unit_order(ir, groups) is not None:
            return groups
        # Drop the group that reaches a cycle first; the rest is tried again.
        for g in groups:
            if unit_order(ir, [g]) is None:
                groups.remove(g)
                break
        else:
            groups.pop()
    return groups


def unit_order(ir: GraphIR, groups: list[VoiceGroup]) -> list[int | VoiceGroup] | None:
    """The graph's schedule with each group as one unit (placed where its first voice was, moved
    later only as far as its outside sources need), or None when the groups make a cycle. Back
    edges (into feedback breakers) don't order anything, as in the graph's own schedule.

    The last answer is kept on the IR (which is not changed after it is built) with the groups it
    was for: find_groups checks the order its groups make, then the skeleton builder asks for it
    again (0.2-0.3 ms for 256 voices). The answer does not depend on the order of ``groups``
    (units are ranked by their distinct schedule positions)."""
    asked = frozenset(map(id, groups))
    kept = ir.__dict__.get("_unit_order")
    if kept is not None and kept[0] == asked:
        return kept[2]
    order = _unit_order(ir, groups)
    ir.__dict__["_unit_order"] = (asked, list(groups), order)  # (the groups kept: their ids stay theirs)
    return order


def _unit_order(ir: GraphIR, groups: list[VoiceGroup]) -> list[int | VoiceGroup] | None:
    pos = {nid: i for i, nid in enumerate(ir.order)}
    unit_of: dict[int, int] = {nid: nid for nid in ir.order}
    for gi, g in enumerate(groups):
        for nid in g.members:
            unit_of[nid] = -1 - gi
    voice_of = {nid: v for g in groups for v, voice in enumerate(g.voices) for nid in voice}
    units = {unit_of[nid] for nid in ir.order}
    rank = {u: (pos[u] if u >= 0 else min(pos[n] for n in groups[-1 - u].members)) for u in units}
    succ: dict[int, set[int]] = defaultdict(set)
    indeg = dict.fromkeys(units, 0)
    for c in ir.connections:
        if c.back_edge:
            continue
        a, b = unit_of[c.source], unit_of[c.target]
        if a == b < 0 and voice_of[c.source] != voice_of[c.target]:
            return None  # one voice feeds another: they cannot run one after the other's block
        if a != b and b not in succ[a]:
            succ[a].add(b)
            indeg[b] += 1
    ready = [(rank[u], u) for u in units if indeg[u] == 0]
    heapq.heapify(ready)
    out: list[int | VoiceGroup] = []
    while ready:
        _, u = heapq.heappop(ready)
        out.append(u if u >= 0 else groups[-1 - u])
        for w in succ[u]:
            indeg[w] -= 1
            if indeg[w] == 0:
                heapq.heappush(ready, (rank[w], w))
    if len(out) != len(units):
        return None
    # A cycle's nodes run in one sample-major loop with everything between them: no group in there.
    where = {u: i for i, u in enumerate(out) if isinstance(u, int)}
    for cyc in ir.cycles:
        lo, hi = min(where[n] for n in cyc), max(where[n] for n in cyc)
        if any(not isinstance(u, int) for u in out[lo : hi + 1]):
            return None
    return out
