"""What the driver works out once, before any item renders: the patch, and where each parameter,
each noise source and the MIDI input live in it.

Parameter names
---------------
A parameter is named ``NODE.INPUT``: ``INPUT`` is a value input (``cutoff``, ``attack``...) and
``NODE`` is matched (shell-style, ``*`` and ``?`` allowed) against every node's label *and* its
class name. ``reverb.wet`` sets the node labelled ``reverb``; ``TptFilter.q`` sets the ``q`` of
every TptFilter (all 16 voices of the polysynth); ``AdsrEnvelope#12.attack`` one envelope. Only
value inputs that no connection drives can be set (a connected one follows its source), and only
value inputs at all: other attributes may be constants compiled into the kernel.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..graph import Graph
from .params import RESERVED, ParamError


@dataclass
class PatchSpec:
    """How a worker gets the patch's graph when it must interpret it (the JIT path needs only the
    compiled kernel): a patch file, a picklable ``patch(sample_rate)`` function, or a Graph."""

    path: str | None = None
    builder: Callable[[float], Graph] | None = None
    graph: Graph | None = None
    sample_rate: float = 44100.0

    @classmethod
    def of(cls, patch: Any, sample_rate: float | None) -> PatchSpec:
        if isinstance(patch, Graph):
            if sample_rate is not None and float(sample_rate) != patch.sample_rate:
                raise ParamError(
                    f"the graph runs at {patch.sample_rate:g} Hz but sample_rate={sample_rate:g} was asked for"
                )
            return cls(graph=patch, sample_rate=patch.sample_rate)
        rate = 44100.0 if sample_rate is None else float(sample_rate)
        if isinstance(patch, (str, Path)):
            return cls(path=str(Path(patch).resolve()), sample_rate=rate)
        if callable(patch):
            return cls(builder=patch, sample_rate=rate)
        raise ParamError(
            f"patch must be a patch file path, a function patch(sample_rate) -> Graph, or a Graph; "
            f"got {type(patch).__name__}"
        )

    def build(self) -> Graph:
        """A fresh graph (the given Graph is copied, never changed)."""
        if self.graph is not None:
            return copy.deepcopy(self.graph)
        if self.path is not None:
            from ..patch import load_patch

            return load_patch(self.path, self.sample_rate)
        assert self.builder is not None
        graph = self.builder(self.sample_rate)
        if not isinstance(graph, Graph):
            raise ParamError(f"patch(sample_rate) returned {type(graph).__name__}, not a Graph")
        return graph


@dataclass
class Targets:
    """Where items write: parameters, noise seeds and the MIDI input (node ids and names)."""

    params: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    noise: list[tuple[int, int]] = field(default_factory=list)  # (node id, the node's own seed)
    midi: tuple[int, str, str] | None = None  # (node id, event input, node label)


def resolve_targets(graph: Graph, names: Iterable[str]) -> Targets:
    """Find every parameter's value inputs, every Noise node and the MIDI input of ``graph``."""
    from ..midi import find_midi_input
    from ..noise import Noise

    targets = Targets()
    connected = {(c.target.node_id, c.target.name) for c in graph.connections}
    handles = graph.nodes
    for name in sorted(set(names)):
        if name in RESERVED:
            continue
        pattern, dot, endpoint = name.rpartition(".")
        if not dot or not pattern or not endpoint:
            raise ParamError(
                f"parameter {name!r}: name it NODE.INPUT, e.g. 'reverb.wet' or 'TptFilter.cutoff' "
                "(NODE is a node label or class name, '*' allowed)"
            )
        matched = [
            h
            for h in handles
            if fnmatch.fnmatchcase(h.label, pattern)
            or fnmatch.fnmatchcase(type(h.node).__qualname__, pattern)
        ]
        if not matched:
            labels = sorted({h.label for h in handles})
            classes = sorted({type(h.node).__qualname__ for h in handles})
            raise ParamError(
                f"parameter {name!r}: no node is labelled or of class {pattern!r} "
                f"(labels: {_short(labels)}; classes: {_short(classes)})"
            )
        found = []
        for h in matched:
            spec = type(h.node).endpoints().get(endpoint)
            if spec is None or spec.kind.value != "value" or spec.direction.value != "input":
                continue
            if (h.id, endpoint) in connected:
                raise ParamError(
                    f"parameter {name!r}: {h.label}.{endpoint} is driven by a connection, so a value "
                    "set on it would be ignored; set its source instead"
                )
            found.append((h.id, endpoint))
        if not found:
            inputs = sorted(
                {
                    e
                    for h in matched
                    for e, s in type(h.node).endpoints().items()
                    if s.kind.value == "value" and s.direction.value == "input"
                }
            )
            raise ParamError(
                f"parameter {name!r}: {pattern!r} has no value input {endpoint!r} "
                f"(its value inputs: {', '.join(inputs) or 'none'})"
            )
        targets.params[name] = found
    for h in handles:
        if isinstance(h.node, Noise):
            targets.noise.append((h.id, int(h.node.seed)))
    midi = find_midi_input(graph)
    if midi is not None:
        targets.midi = (midi.node_id, midi.name, midi.node_label)
    return targets


def _short(names: list[str], limit: int = 12) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... ({len(names)} in all)"
