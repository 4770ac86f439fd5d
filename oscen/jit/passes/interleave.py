"""Two copies of a lanes body in one sample loop: twice the voices per call, their recurrences
overlapping in the CPU.

Why: a voice's recurrences (a biquad's state, an oscillator's rotation) are chains of dependent
operations, 20-odd cycles per sample for a biquad; one voice pair per loop waits on them. A body
small enough for its values to stay in the CPU's registers runs two pairs in the time of one and
a half (measured on the 64-voice body, with the rare ifs out of the loop: 78x -> 85-92x real time;
a polysynth voice, three times larger, does not gain). The lanes pass can build a four-lane body
itself (``CraneliftJit(lanes=4)``), at the cost of a second pass over the voice; this instead
renames a copy of the pair's function: lanes ``0, 1`` of the copy become ``2, 3`` (the caller
passes each lane input for the four lanes in turn, as for a four-lane body), its other locals get a
suffix, and the copy's statements follow the original's in each sample (the counter ``i`` and
``i8`` shared). Each voice computes what it computed alone; within a sample the first pair's
statements come first, so the voices' mix still adds the voices in voice order.
"""

from __future__ import annotations

from .. import kernel as k
from .walk import Rewriter

SHARED = frozenset({"i", "i8"})
"""Locals both copies use as one: the sample counter and its byte offset."""


class _Rename(Rewriter):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def x_Local(self, e: k.Local) -> k.Expr:
        new = self.names.get(e.name)
        return e if new is None else k.Local(e.type, new)

    def s_SetLocal(self, s: k.SetLocal) -> list[k.Stmt]:
        return [k.SetLocal(site=s.site, name=self.names.get(s.name, s.name), value=self.expr(s.value))]

    def s_Invoke(self, s: k.Invoke) -> list[k.Stmt]:
        new = self.children(s)
        new.targets = [self.names.get(t, t) for t in s.targets]
        return [new]


def _is_step(s: k.Stmt, name: str) -> bool:
    return type(s) is k.SetLocal and s.name == name  # type: ignore[attr-defined]


def interleave(
    fn: k.Function, inputs: list[str], width: int, lane_name, label: str = "sample"
) -> k.Function | None:
    """``fn`` (a lanes body for ``width`` voices, params: the uniform ones, then each of ``inputs``
    for every lane in turn) made a body for ``2 * width`` voices; None where its shape is not
    the one :func:`.lanes.lanes` gives a sample loop (prologue, ``i = 0``, one loop
    ``[Exit, i8 = ..., ..., i = i + 1]``, epilogue)."""
    at = [j for j, s in enumerate(fn.body) if type(s) is k.Loop and s.label == label]  # type: ignore[attr-defined]
    if len(at) != 1:
        return None
    j = at[0]
    loop = fn.body[j]
    assert isinstance(loop, k.Loop)
    body = loop.body
    if loop.cond is not None or len(body) < 3 or type(body[0]) is not k.Exit:
        return None
    if not (_is_step(body[1], "i8") and _is_step(body[-1], "i")):
        return None
    lane_params = {lane_name(p, lane) for p in inputs for lane in range(width)}
    uniform = [(p, t) for p, t in fn.params if p not in lane_params]
    names: dict[str, str] = {}
    for p in inputs:
        for lane in range(width):
            names[lane_name(p, lane)] = lane_name(p, lane + width)
    for name in fn.locals:
        if name not in SHARED:
            names[name] = f"{name}__q1"
    if any(new in fn.locals or new in dict(fn.params) for new in names.values()):
        return None
    rename = _Rename(names)
    copy_pre = rename.stmts(fn.body[:j])
    copy_body = rename.stmts(body[2:-1])
    copy_post = rename.stmts(fn.body[j + 1 :])
    merged = k.Loop(site=loop.site, label=loop.label, cond=None, body=[*body[:-1], *copy_body, body[-1]])
    params = [*uniform, *((lane_name(p, lane), k.T.I32) for p in inputs for lane in range(2 * width))]
    types = dict(fn.params)
    if [types[lane_name(p, lane)] for p in inputs for lane in range(width)] != [k.T.I32] * (
        len(inputs) * width
    ):
        return None
    locals_ = {**fn.locals, **{names[n]: t for n, t in fn.locals.items() if n in names}}
    return k.Function(
        fn.name,
        params,
        fn.results,
        locals_,
        [*fn.body[:j], *copy_pre, merged, *fn.body[j + 1 :], *copy_post],
        fn.export,
    )


def loop_size(fn: k.Function) -> int:
    """IR nodes in ``fn``'s fast sample loop (``_fast``, see :mod:`.fastpath`) or, without one, in
    its whole body: what decides whether two copies of it fit in the CPU's registers."""
    from .walk import walk

    fast = [x for x in walk(fn.body) if type(x) is k.Loop and x.label == "_fast"]  # type: ignore[attr-defined]
    return sum(1 for _ in walk(fast[0].body if fast else fn.body))
