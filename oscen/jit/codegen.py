"""Node variants' code, cached: the frontend's lowering and today's rendered text of each variant.

Transitional: the program itself is built as kernel IR by :mod:`.skeleton`; node code still comes
from :class:`~.render.BodyRenderer` as text (wrapped into Codes by the skeleton) until the passes
(``oscen.jit.passes``) produce a variant's :class:`~.kernel.Code` directly. Then this module goes.
"""

from __future__ import annotations

import threading
from typing import Any

from ..graph.ir import NodeIR
from .frontend import JitError, NodeLowering, attribute_infos, fingerprint
from .layout import Layout
from .render import BodyRenderer, Template

INLINE_MATH_NODES = 300
"""Graphs up to this many nodes get math functions expanded in their per-sample code (~5% faster
per node); larger ones call them, keeping compile time within ~0.25 ms per node."""

FUSE_NODES = 4
"""Nodes per segment loop: neighbours in one loop hand values over without a buffer and let the CPU
overlap independent recurrences (two voices' filters)."""

_LOWERINGS: dict[tuple, NodeLowering] = {}
_TEMPLATES: dict[tuple, Template] = {}
VARIANT_CACHE = 64
"""Node variants whose lowering and rendered template are kept (least recently used go first): a
re-patch recompiles only what changed, and a live session that meets thousands of variants (every
distinct constant is one) keeps its memory flat. A patch has a handful of variants (the 16-voice
polysynth 8, the demo 9); an entry (lowered methods, rendered
text) is tens of KB, and bench_soak's random patches (a new variant nearly every edit) grew 2 KB
per edit with 256 entries, 0.75 KB with 16."""


_CACHE_LOCK = threading.Lock()  # compiles run on several threads (JitGraphs, batch drivers)


def _recall(cache: dict[tuple, Any], key: tuple) -> Any:
    """The cached entry for ``key``, marked as used most recently (dicts keep insertion order)."""
    with _CACHE_LOCK:
        entry = cache.pop(key, None)
        if entry is not None:
            cache[key] = entry
        return entry


def _remember(cache: dict[tuple, Any], key: tuple, entry: Any) -> None:
    with _CACHE_LOCK:
        cache[key] = entry
        while len(cache) > VARIANT_CACHE:
            cache.pop(next(iter(cache)))


def _variant_key(node: NodeIR, sample_rate: float) -> tuple:
    return (
        node.resolve_class(),
        tuple((s.name, s.type, s.length, s.cols) for s in node.state),
        tuple(sorted((name, fingerprint(v)) for name, v in node.constants.items())),  # -0.0, -nan differ
        tuple((e.name, e.kind, e.direction, e.default, e.arity) for e in node.endpoints),
        sample_rate,
    )


def lowering_for(node: NodeIR, sample_rate: float) -> NodeLowering:
    """The frontend for a node; nodes of one variant share the lowered methods."""
    key = _variant_key(node, sample_rate)
    low = _recall(_LOWERINGS, key)
    if low is not None and not low.still_valid():  # a global it folded in has changed
        low = None
    if low is None:
        attrs = attribute_infos(
            ((s.name, s.type, s.length, s.cols) for s in node.state),
            ((e.name, e.kind, e.direction) for e in node.endpoints),
        )
        low = NodeLowering(
            node.resolve_class(), attrs, sample_rate, node.label, node.unsupported, node.constants
        )
        _remember(_LOWERINGS, key, low)
    return low


def template(
    node: NodeIR,
    layout: Layout,
    connected: frozenset[str],
    inline_math: bool,
    state_in_locals: bool,
    sample_rate: float,
) -> Template:
    """The rendered code of ``node``'s variant (its connected inputs included), cached."""
    # max_block too: outbox capacities and buffer offsets in the node's region depend on it
    key = (_variant_key(node, sample_rate), connected, inline_math, layout.max_block, state_in_locals)
    tpl = _recall(_TEMPLATES, key)
    if tpl is not None and not tpl.still_valid():
        tpl = None
    if tpl is None:
        low = lowering_for(node, sample_rate)
        low.name = node.label
        try:
            tpl = BodyRenderer(
                node, layout.nodes[node.id], low, connected, inline_math, state_in_locals
            ).render()
        except JitError as err:
            if not err.node:
                err.node = node.label
            raise
        _remember(_TEMPLATES, key, tpl)
    return tpl
