"""A graph draws itself: a small SVG diagram of nodes and connections, for notebooks and docs.

Nodes are placed in columns by their longest path from a source (what feeds what reads left to
right) and in rows by processing order inside a column. Feedback edges (those that go to an
earlier or the same column) are drawn dashed. Only the public ``Graph`` API is used, and no layout
library: a diagram of a patch should not need graphviz installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any, Protocol


class Drawable(Protocol):
    """What a diagram reads of a graph (:class:`~oscen.graph.Graph` is one): a protocol, so that this
    module needs nothing of graph.py, which imports it for ``Graph._repr_svg_``."""

    @property
    def connections(self) -> Sequence[Any]: ...

    @property
    def outputs(self) -> Sequence[Any]: ...

    def processing_order(self) -> Sequence[Any]: ...


BOX_W, BOX_H = 150, 44
COL_GAP, ROW_GAP = 70, 22
MARGIN = 16
KIND_COLOUR = {"stream": "#2b6cb0", "value": "#b7791f", "event": "#2f855a"}


def _columns(graph: Drawable) -> dict[int, int]:
    """Column of each node: the longest path to it from a node with no (forward) inputs."""
    order = [h.id for h in graph.processing_order()]
    position = {nid: i for i, nid in enumerate(order)}
    sources: dict[int, list[int]] = {nid: [] for nid in order}
    for conn in graph.connections:
        src, dst = conn.source.node_id, conn.target.node_id
        if position[src] < position[dst]:  # feedback edges don't push a node right
            sources[dst].append(src)
    column: dict[int, int] = {}
    for nid in order:  # processing order is topological once feedback edges are ignored
        column[nid] = max((column[s] + 1 for s in sources[nid]), default=0)
    return column


def diagram_svg(graph: Drawable) -> str:
    """The graph as an SVG document (a string): one box per node, one arrow per connection."""
    columns = _columns(graph)
    rows: dict[int, int] = {}
    per_column: dict[int, int] = {}
    for handle in graph.processing_order():
        col = columns[handle.id]
        rows[handle.id] = per_column.get(col, 0)
        per_column[col] = rows[handle.id] + 1
    n_cols = max(columns.values(), default=0) + 1
    n_rows = max(per_column.values(), default=1)
    width = 2 * MARGIN + n_cols * BOX_W + (n_cols - 1) * COL_GAP
    height = 2 * MARGIN + n_rows * BOX_H + (n_rows - 1) * ROW_GAP + 20

    def box(nid: int) -> tuple[float, float]:
        return (MARGIN + columns[nid] * (BOX_W + COL_GAP), MARGIN + rows[nid] * (BOX_H + ROW_GAP))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        "<defs>"
        + "".join(
            f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            for kind, colour in KIND_COLOUR.items()
        )
        + "</defs>",
    ]
    for conn in graph.connections:
        src, dst = conn.source.node_id, conn.target.node_id
        (x0, y0), (x1, y1) = box(src), box(dst)
        kind = conn.target.kind.value
        colour = KIND_COLOUR.get(kind, "#444")
        backward = columns[dst] <= columns[src]
        sx, sy = x0 + BOX_W, y0 + BOX_H / 2
        tx, ty = x1, y1 + BOX_H / 2
        bend = max(40.0, abs(tx - sx) / 2)
        dash = ' stroke-dasharray="5,4"' if backward else ""
        path = f"M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} {tx - bend:.1f},{ty:.1f} {tx:.1f},{ty:.1f}"
        label = escape(f"{conn.source.name} → {conn.target.name}")
        parts.append(
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"{dash} '
            f'marker-end="url(#arrow-{kind})"><title>{label}</title></path>'
        )
    outputs = {ep.node_id for ep in graph.outputs}
    for handle in graph.processing_order():
        x, y = box(handle.id)
        stroke = "#c53030" if handle.id in outputs else "#333"
        name = escape(type(handle.node).__name__)
        parts.append(
            f"<g><title>{escape(handle.label)}</title>"
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#f7fafc" '
            f'stroke="{stroke}" stroke-width="{2 if handle.id in outputs else 1}"/>'
            f'<text x="{x + BOX_W / 2}" y="{y + 18}" text-anchor="middle" font-weight="bold">{name}</text>'
            f'<text x="{x + BOX_W / 2}" y="{y + 34}" text-anchor="middle" fill="#555">'
            f"{escape(handle.label)[:24]}</text></g>"
        )
    legend_y = height - 8
    parts.append(
        f'<text x="{MARGIN}" y="{legend_y}" fill="#555">'
        + " ".join(f'<tspan fill="{c}">■ {k}</tspan>' for k, c in KIND_COLOUR.items())
        + ' <tspan fill="#c53030">□ output</tspan> (dashed: feedback)</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
