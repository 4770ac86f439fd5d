"""What node code may find on ``self``: typed scalars, arrays and endpoints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..kernel import T


@dataclass(frozen=True)
class ScalarAttr:
    type: T


@dataclass(frozen=True)
class ArrayAttr:
    type: T
    length: int
    cols: int | None = None  # 2-D: the row length (row-major, length = rows * cols)


@dataclass(frozen=True)
class EndpointAttr:
    kind: str  # "stream_in", "value_in", "out", "event_in", "event_out"


AttrInfo = ScalarAttr | ArrayAttr | EndpointAttr

ENDPOINT_KINDS = {
    ("input", "stream"): "stream_in",
    ("input", "value"): "value_in",
    ("output", "stream"): "out",
    ("output", "value"): "out",
    ("input", "event"): "event_in",
    ("output", "event"): "event_out",
}
STATE_TYPES = {"f64": T.F64, "i64": T.I64, "bool": T.BOOL}


def attribute_infos(
    state: Iterable[tuple[str, str, int | None, int | None]], endpoints: Iterable[tuple[str, str, str]]
) -> dict[str, AttrInfo]:
    """What node code may find on ``self``: state attributes ``(name, IR type, length, cols)`` (a
    length for arrays) and endpoints ``(name, kind, direction)``, as the frontend types them."""
    attrs: dict[str, AttrInfo] = {}
    for name, t, length, cols in state:
        attrs[name] = (
            ScalarAttr(STATE_TYPES[t]) if length is None else ArrayAttr(STATE_TYPES[t], length, cols)
        )
    for name, kind, direction in endpoints:
        attrs[name] = EndpointAttr(ENDPOINT_KINDS[(direction, kind)])
    return attrs
