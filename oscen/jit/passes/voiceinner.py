"""Voices as the inner loop: per sample, one loop over a group's lane pairs, each pair's state
in memory, the mix in a register.

Why: a voice pair's sample loop (:mod:`.fastpath`, two pairs with :mod:`.interleave`) keeps the
pair's state in registers but waits on its recurrences each sample (the oscillator's rotation,
the biquad's ``y -> s1 -> y``): 20-odd cycles of dependent operations, and four voices in one
loop already spill (16 xmm registers). With the voices as the inner loop the pairs of one sample
are independent of each other, so the CPU overlaps them and the recurrences stop mattering; the
state goes to and from memory each pair-sample, which costs loads and stores, not latency
(measured on the 64-voice patch, hand-edited WebAssembly first: 112x -> 139x real time,
process time best of 80, same run; no spill in the inner loop).

Built from the pair's *unswitched* fast loop (:mod:`.unswitch`): its invariant tests and the
countdowns' trip count say for how many samples the pair runs exactly its fast statements. The
pieces, all functions of the pair's addresses (the lane params), so one set serves every pair:

* ``gate(i, n, uniform..., lanes...) -> stop``: the pair's state loaded as the pair function's
  prologue does, the unswitched tests, and the sample its run must stop at (``i`` when a test
  holds: that sample needs the full body);
* ``pack(uniform..., lanes..., q)`` / ``unpack(...)``: the prologue, then the locals the fast
  statements read or carry stored to / loaded from the pair's record at ``q`` (then the
  epilogue: the state back in the nodes' memory);
* ``run(i, stop, q0, pairs, mix...)``: for each sample, for each pair's record, the fast
  statements once (each record local loaded just before its first use, stored after its last
  write, so few values are live at once), every mix store ``mix[i] += y`` an addition to a
  register started from ``mix[i]`` and stored once per sample;
* ``step(n, start, uniform..., lanes...)``: the pair function itself from sample ``start``: the
  sample a run stopped at (full body for the pair that needs it, fast loop for the others).

Every pair-sample runs the statements it ran before, in the same order; only samples of
different pairs interleave, and pairs share nothing but the mix, whose sum per sample still
adds the voices in voice order (lane 0 then lane 1, pair after pair): bit for bit the same.
The caller (:meth:`.SkeletonBuilder.group_segment`) falls back to the per-pair calls for a block
with a ramp or an event due (tests that are not invariant), and runs the rest of a block per
pair when runs keep stopping at once (a test that stays true, a NaN parameter).
"""

from __future__ import annotations

from typing import NamedTuple

from .. import kernel as k
from ..kernel import T
from ..ops import Op
from .fastpath import _statements
from .liveness import _Unknown, _uses

SLOT = 16
"""Bytes per local in a pair's record (a v128; narrower locals use the low bytes)."""

_WIDTH = {T.V128: 16, T.F64: 8, T.I64: 8, T.I32: 4, T.BOOL: 4}


class VoiceInner(NamedTuple):
    """The functions of one group's voice-inner form (see the module docstring)."""

    gate: k.Function
    pack: k.Function
    unpack: k.Function
    run: k.Function
    step: k.Function
    stride: int
    """Bytes of one pair's record."""


def _prim(op: Op, *args: k.Expr) -> k.Prim:
    return k.Prim(op.result, op, list(args))


def _loc(t: T, name: str) -> k.Local:
    return k.Local(t, name)


class _Shape(NamedTuple):
    prologue: list[k.Stmt]
    tests: list[k.Stmt]
    stop: k.Stmt
    middle: list[k.Stmt]
    epilogue: list[k.Stmt]


def _sample_loop_at(fn: k.Function) -> int | None:
    """Where ``fn``'s one top-level sample loop (block ``sample``) is, right after ``i = <const>``;
    None where the function is not of that shape."""
    at = [j for j, s in enumerate(fn.body) if type(s) is k.Block and s.label == "sample"]  # type: ignore[attr-defined]
    if len(at) != 1 or at[0] == 0:
        return None
    init = fn.body[at[0] - 1]
    if not (type(init) is k.SetLocal and init.name == "i" and type(init.value) is k.Const):  # type: ignore[attr-defined]
        return None
    return at[0]


def _shape(fn: k.Function) -> _Shape | None:
    """The parts of an unswitched pair function (:func:`.fastpath.split_loop` with
    ``unswitch``): None where it is not of that shape or its fast loop kept an exit."""
    j = _sample_loop_at(fn)
    if j is None:
        return None
    enter = [s for s in _statements(fn.body[j].body) if type(s) is k.Block and s.label == "_enter"]  # type: ignore[attr-defined]
    if len(enter) != 1 or not enter[0].body:  # type: ignore[attr-defined]
        return None
    *pre, fast = enter[0].body  # type: ignore[attr-defined]
    if type(fast) is not k.Loop or fast.label != "_fast" or fast.cond is not None or not pre:
        return None
    *tests, stop = pre
    if not (type(stop) is k.SetLocal and stop.name == "_stop"):
        return None
    if not all(type(t) is k.Exit and t.label == "_enter" and t.cond is not None for t in tests):  # type: ignore[attr-defined]
        return None
    fb = fast.body
    if len(fb) < 4 or type(fb[0]) is not k.Exit or fb[0].label != "_enter":  # type: ignore[attr-defined]
        return None
    if not (type(fb[1]) is k.SetLocal and fb[1].name == "i8"):  # type: ignore[attr-defined]
        return None
    if not (type(fb[-1]) is k.SetLocal and fb[-1].name == "i"):  # type: ignore[attr-defined]
        return None
    return _Shape(fn.body[: j - 1], tests, stop, fb[2:-1], fn.body[j + 1 :])


def _rw(s: k.Stmt, reads: set[str], writes: set[str]) -> set[str]:
    """Add what ``s`` reads and writes; return the locals it writes on every path. Raises
    :class:`_Unknown` for a statement the run may not hold (a way out, a loop, a call)."""
    t = type(s)
    if t is k.SetLocal:
        _uses(s.value, reads)  # type: ignore[attr-defined]
        writes.add(s.name)  # type: ignore[attr-defined]
        return {s.name}  # type: ignore[attr-defined]
    if t is k.Store:
        _uses(s.addr, reads)  # type: ignore[attr-defined]
        _uses(s.value, reads)  # type: ignore[attr-defined]
        return set()
    if t is k.If:
        _uses(s.cond, reads)  # type: ignore[attr-defined]
        for x in (*s.body, *s.orelse):  # type: ignore[attr-defined]
            _rw(x, reads, writes)
        return set()
    if t is k.Trap:
        if s.node is not None:  # type: ignore[attr-defined]
            _uses(s.node, reads)  # type: ignore[attr-defined]
        return set()
    raise _Unknown(t.__name__)


def _mix_store(s: k.Stmt, mixes: dict[str, int]) -> tuple[int, k.Expr] | None:
    """``(m, y)`` for :mod:`.mix`'s ``store(i8 + o, load(i8 + o) + y)`` into mix ``m``."""
    if type(s) is not k.Store or s.type is not T.F64 or s.offset != 0:  # type: ignore[attr-defined]
        return None
    a, v = s.addr, s.value  # type: ignore[attr-defined]
    if not (type(a) is k.Prim and a.op is Op.I32_ADD and len(a.args) == 2):
        return None
    i8, o = a.args
    if not (type(i8) is k.Local and i8.name == "i8" and type(o) is k.Local and o.name in mixes):
        return None
    if not (type(v) is k.Prim and v.op is Op.F64_ADD and len(v.args) == 2):
        return None
    old, y = v.args
    if not (type(old) is k.Load and old.offset == 0 and old.addr == a):
        return None
    return mixes[o.name], y


def voice_inner(
    fn: k.Function,
    unswitched: k.Function,
    uniform: list[tuple[str, T]],
    mixes: list[str],
    width: int,
    lane_name,
) -> VoiceInner | None:
    """The voice-inner pieces of pair function ``fn`` (params ``n``, ``uniform``, then the lane
    params), read off ``unswitched`` (the same body, split with :mod:`.unswitch`); None where
    its fast loop keeps a test or holds a statement the run cannot (see :func:`_rw`), or the
    voices' mixes are used other than as :mod:`.mix` stores them."""
    shape = _shape(unswitched)
    step = _from_start(fn)
    if shape is None or step is None:
        return None
    head = ["n", *(p for p, _ in uniform)]
    if [p for p, _ in fn.params[: len(head)]] != head or fn.params != unswitched.params:
        return None
    lane_params = fn.params[len(head) :]
    types: dict[str, T] = {**dict(fn.params), **unswitched.locals}
    mix_lanes = {lane_name(o, lane): m for m, o in enumerate(mixes) for lane in range(width)}
    accs = [f"_vi_acc{m}" for m in range(len(mixes))]
    taken = set(types)
    if taken & {
        "start",
        "q",
        "q0",
        "pairs",
        "stop",
        "_vi_p",
        *accs,
        *(f"_vi_mix{m}" for m in range(len(mixes))),
    }:
        return None
    # the fast statements, each mix store an addition to its register
    middle: list[k.Stmt] = []
    for s in shape.middle:
        got = _mix_store(s, mix_lanes)
        if got is None:
            middle.append(s)
        else:
            m, y = got
            middle.append(
                k.SetLocal(site=s.site, name=accs[m], value=_prim(Op.F64_ADD, _loc(T.F64, accs[m]), y))
            )
    try:
        per: list[tuple[set[str], set[str], set[str]]] = []
        for s in middle:
            r: set[str] = set()
            w: set[str] = set()
            per.append((r, w, _rw(s, r, w)))
        tail: set[str] = set()
        for s in shape.epilogue:
            _rw(s, tail, set())
        pro_reads: set[str] = set()
        pro_writes: set[str] = set()
        for s in shape.prologue:
            _rw(s, pro_reads, pro_writes)
    except _Unknown:
        return None
    shared = {"i", "i8", *accs}
    if pro_reads & {"i", "i8", "n", "_stop"} or tail & {"i", "i8", "n", "_stop"}:
        return None
    middle, per, hoisted = _hoist(middle, per, shared)
    loaded: list[str] = []  # read before any write in the sample: carried, or the same every sample
    killed: set[str] = set()
    for r, _, always in per:
        for name in sorted(r - killed - shared):
            if name not in loaded:
                loaded.append(name)
        killed |= always
    if any(name in mix_lanes or name in head or name == "_stop" or name not in types for name in loaded):
        return None  # a mix read otherwise, the block's length, or a test's local: not for a run
    params_of = {p for p, _ in fn.params}
    made = {h.name for h in hoisted}  # type: ignore[attr-defined]
    if any(name not in params_of and name not in pro_writes and name not in made for name in loaded):
        return None  # carried from sample to sample but not state: a pair run in pieces would differ
    written = [name for _, w, _ in per for name in sorted(w)]
    if any(x in loaded and x not in tail for x in written):
        return None  # carried, and not stored back at the block's end: as above
    stored = list(dict.fromkeys(x for x in written if x not in shared and (x in loaded or x in tail)))
    slots = list(dict.fromkeys([*loaded, *stored, *(h.name for h in hoisted)]))  # type: ignore[attr-defined]
    offset = {name: SLOT * j for j, name in enumerate(slots)}
    stride = SLOT * max(1, len(slots))
    if any(types[name] not in _WIDTH for name in slots):
        return None

    def load(name: str, base: str) -> k.Stmt:
        t = types[name]
        return k.SetLocal(name=name, value=k.Load(t, _loc(T.I32, base), offset[name]))

    def store(name: str, base: str) -> k.Stmt:
        t = types[name]
        return k.Store(type=t, addr=_loc(T.I32, base), offset=offset[name], value=_loc(t, name))

    own = {n: t for n, t in unswitched.locals.items() if n not in params_of}
    i32 = T.I32
    gate = k.Function(
        f"{fn.name}_gate",
        [("i", i32), *((p, t) for p, t in fn.params)],
        (i32,),
        {n: t for n, t in own.items() if n != "i"},
        [
            *shape.prologue,
            k.Block(
                label="_enter", body=[*shape.tests, shape.stop, k.ReturnValues(values=[_loc(i32, "_stop")])]
            ),
            k.ReturnValues(values=[_loc(i32, "i")]),
        ],
    )
    rest = [*uniform, *lane_params, ("q", i32)]
    pack = k.Function(
        f"{fn.name}_pack", rest, (), own, [*shape.prologue, *hoisted, *(store(s, "q") for s in slots)]
    )
    unpack = k.Function(
        f"{fn.name}_unpack",
        rest,
        (),
        own,
        [*shape.prologue, *(load(s, "q") for s in slots if s not in params_of), *shape.epilogue],
    )
    # the run: loads sunk to their first use, stores right after their last write
    first_read: dict[str, int] = {}
    last_write: dict[str, int] = {}
    for j, (r, w, _) in enumerate(per):
        for name in r:
            first_read.setdefault(name, j)
        for name in w:
            last_write[name] = j
    # A local written on every path of each sample and never read before (a node's output) is
    # in the record only for the block's end (unpack's epilogue): stored in the run's last
    # sample only, the samples before it without those stores.
    sure: set[str] = set()
    for _, _, always in per:
        sure |= always
    last_only = {name for name in stored if name not in loaded and name in sure}

    def pair_body(skip: set[str]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for j, s in enumerate(middle):
            out += [load(name, "q") for name in loaded if first_read[name] == j]
            out.append(s)
            out += [store(name, "q") for name in stored if last_write[name] == j and name not in skip]
        return out

    i, i8, p, q = _loc(i32, "i"), _loc(i32, "i8"), _loc(i32, "_vi_p"), _loc(i32, "q")
    mixp = [f"_vi_mix{m}" for m in range(len(mixes))]
    at = [_prim(Op.I32_ADD, i8, _loc(i32, mp)) for mp in mixp]

    def one_sample(inner: list[k.Stmt]) -> list[k.Stmt]:
        return [
            k.SetLocal(name="i8", value=_prim(Op.I32_SHL, i, k.Const(i32, 3))),
            *(k.SetLocal(name=acc, value=k.Load(T.F64, a, 0)) for acc, a in zip(accs, at, strict=True)),
            k.SetLocal(name="q", value=_loc(i32, "q0")),
            k.SetLocal(name="_vi_p", value=_loc(i32, "pairs")),
            k.Loop(
                label="_vi_pair",
                cond=None,
                body=[
                    *inner,
                    k.SetLocal(name="q", value=_prim(Op.I32_ADD, q, k.Const(i32, stride))),
                    k.SetLocal(name="_vi_p", value=_prim(Op.I32_SUB, p, k.Const(i32, 1))),
                    k.Exit(label="_vi_pair", cond=_prim(Op.I32_EQZ, p)),
                ],
            ),
            *(
                k.Store(type=T.F64, addr=a, offset=0, value=_loc(T.F64, acc))
                for acc, a in zip(accs, at, strict=True)
            ),
            k.SetLocal(name="i", value=_prim(Op.I32_ADD, i, k.Const(i32, 1))),
        ]

    # with outputs stored in the last sample only, the loop runs the samples before it
    end = _prim(Op.I32_SUB, _loc(i32, "stop"), k.Const(i32, 1)) if last_only else _loc(i32, "stop")
    sample = [k.Exit(label="_vi_sample", cond=_prim(Op.I32_GE_U, i, end)), *one_sample(pair_body(last_only))]
    run_body: list[k.Stmt] = [k.Loop(label="_vi_sample", cond=None, body=sample)]
    if last_only:  # the run's last sample (it has one at least: stop > i), with those stores
        run_body += one_sample(pair_body(set()))
    run_locals = {n: t for n, t in own.items() if n not in ("i",)}
    run_locals.update({name: types[name] for name in slots if name in params_of})
    run_locals.update({acc: T.F64 for acc in accs})
    run_locals.update({"q": i32, "_vi_p": i32})
    run = k.Function(
        f"{fn.name}_run",
        [("i", i32), ("stop", i32), ("q0", i32), ("pairs", i32), *((mp, i32) for mp in mixp)],
        (),
        run_locals,
        run_body,
    )
    return VoiceInner(gate, pack, unpack, run, step, stride)


def _hoist(
    middle: list[k.Stmt], per: list[tuple[set[str], set[str], set[str]]], shared: set[str]
) -> tuple[list[k.Stmt], list[tuple[set[str], set[str], set[str]]], list[k.Stmt]]:
    """The fast statements without those whose value is the same at every sample (``x = e``, ``e``
    pure and reading only locals no fast statement writes, ``x`` written nowhere else and read
    by no statement before it: an oscillator's increment from its frequency), and those, which
    ``pack`` runs once per run: the record carries ``x``."""
    writes: dict[str, int] = {}
    for _, w, _ in per:
        for name in w:
            writes[name] = writes.get(name, 0) + 1
    keep: list[k.Stmt] = []
    kept: list[tuple[set[str], set[str], set[str]]] = []
    hoisted: list[k.Stmt] = []
    seen: set[str] = set()  # read by the statements before
    for s, rw in zip(middle, per, strict=True):
        r = rw[0]
        if (
            type(s) is k.SetLocal
            and writes.get(s.name) == 1  # type: ignore[attr-defined]
            and s.name not in seen  # type: ignore[attr-defined]
            and s.name not in shared  # type: ignore[attr-defined]
            and not r & (set(writes) | shared)
            and _uses(s.value, set())  # type: ignore[attr-defined]
        ):
            hoisted.append(s)
            continue
        seen |= r
        keep.append(s)
        kept.append(rw)
    return keep, kept, hoisted


def _from_start(fn: k.Function) -> k.Function | None:
    """``fn`` with a param ``start`` after ``n``: its sample loop begins there, not at 0."""
    j = _sample_loop_at(fn)
    if j is None:
        return None
    init = fn.body[j - 1]
    body = [*fn.body[: j - 1], k.SetLocal(site=init.site, name="i", value=_loc(T.I32, "start")), *fn.body[j:]]
    params = [fn.params[0], ("start", T.I32), *fn.params[1:]]
    return k.Function(f"{fn.name}_step", params, fn.results, fn.locals, body, fn.export)
