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
from .fastpath import _rare, _statements
from .liveness import _Unknown, _uses

SLOT = 16
"""Bytes per local in a pair's record (a v128; narrower locals use the low bytes)."""

_WIDTH = {T.V128: 16, T.F64: 8, T.I64: 8, T.I32: 4, T.BOOL: 4}


class VoiceInner(NamedTuple):
    """The functions of one group's voice-inner form (see the module docstring)."""

    gate: k.Function | None
    """None for the inline form (every rare if in the run): a run stops only at the block's
    end or its first due event."""
    pack: k.Function
    unpack: k.Function
    run: k.Function
    step: k.Function
    stride: int
    """Bytes of one pair's record."""
    rests: tuple[k.Function, ...] = ()
    """The inline form's ways out of the run: for its ``K``-th rare if, ``_rest<K>`` runs the
    pair's sample from that if on (full body: arms, events), on the record."""


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


def _is_local(e: k.Expr, name: str) -> bool:
    return type(e) is k.Local and e.name == name  # type: ignore[attr-defined]


def _gated(s: k.Stmt, uniform: set[str]) -> bool:
    """Whether ``s`` is a group body's ``if ramps: ...`` (no ramp runs in a voice-inner block) or
    ``if i >= due: ...`` (the run ends at ``due``): statements a run never executes."""
    if type(s) is not k.If or s.orelse:  # type: ignore[attr-defined]
        return False
    c = s.cond  # type: ignore[attr-defined]
    if "ramps" in uniform and _is_local(c, "ramps"):
        return True
    return (
        "due" in uniform
        and type(c) is k.Prim
        and c.op is Op.I32_GE_U  # type: ignore[attr-defined]
        and _is_local(c.args[0], "i")  # type: ignore[attr-defined]
        and _is_local(c.args[1], "due")  # type: ignore[attr-defined]
    )


def _never(s: k.Stmt) -> bool:
    """An ``if`` on a constant false (an unconnected input's test the frontend left)."""
    return type(s) is k.If and type(s.cond) is k.Const and not s.cond.value and not s.orelse  # type: ignore[attr-defined]


def _plain_shape(fn: k.Function, uniform: set[str]) -> _Shape | None:
    """The parts of pair function ``fn`` before :mod:`.fastpath` split its sample loop: every
    rare ``if`` stays in the fast statements (the run holds them), without the ramps' and the
    due events' ifs (:func:`_gated`). None where ``fn`` is not of that shape."""
    at = [j for j, s in enumerate(fn.body) if type(s) is k.Loop and s.label == "sample"]  # type: ignore[attr-defined]
    if len(at) != 1 or at[0] == 0:
        return None
    j = at[0]
    init = fn.body[j - 1]
    if not (type(init) is k.SetLocal and init.name == "i" and type(init.value) is k.Const):  # type: ignore[attr-defined]
        return None
    loop = fn.body[j]
    body = loop.body  # type: ignore[attr-defined]
    if loop.cond is not None or len(body) < 3:  # type: ignore[attr-defined]
        return None
    top, i8, step = body[0], body[1], body[-1]
    if not (type(top) is k.Exit and top.label == "sample" and top.cond is not None):  # type: ignore[attr-defined]
        return None
    c = top.cond  # type: ignore[attr-defined]
    if not (type(c) is k.Prim and c.op is Op.I32_GE_U and _is_local(c.args[0], "i") and _is_local(c.args[1], "n")):
        return None
    if not (type(i8) is k.SetLocal and i8.name == "i8" and type(step) is k.SetLocal and step.name == "i"):  # type: ignore[attr-defined]
        return None
    middle = [s for s in body[2:-1] if not _gated(s, uniform) and not _never(s)]
    stop = k.SetLocal(name="_stop", value=_loc(T.I32, "n"))
    return _Shape(fn.body[: j - 1], [], stop, middle, fn.body[j + 1 :])


def _rw(s: k.Stmt, reads: set[str], writes: set[str]) -> set[str]:
    """Add what ``s`` reads before writing it and what it writes; return the locals it writes
    on every path. Raises :class:`_Unknown` for a statement the run may not hold (a way out, a
    loop)."""
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
        arms = []
        for arm in (s.body, s.orelse):  # type: ignore[attr-defined]
            killed: set[str] = set()  # written on every path of the arm so far: not read from before
            for x in arm:
                r: set[str] = set()
                always = _rw(x, r, writes)
                reads |= r - killed
                killed |= always
            arms.append(killed)
        return arms[0] & arms[1]
    if t is k.Invoke:  # a lanes arm or packed section, a math call: reads its args, sets its targets
        for a in s.args:  # type: ignore[attr-defined]
            _uses(a, reads)
        writes.update(s.targets)  # type: ignore[attr-defined]
        return set(s.targets)  # type: ignore[attr-defined]
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
    plain: k.Function | None = None,
) -> VoiceInner | None:
    """The voice-inner pieces of pair function ``fn`` (params ``n``, ``uniform``, then the lane
    params), read off ``unswitched`` (the same body, split with :mod:`.unswitch`); None where
    its fast loop keeps a test or holds a statement the run cannot (see :func:`_rw`), or the
    voices' mixes are used other than as :mod:`.mix` stores them."""
    got = _build(fn, unswitched, _shape(unswitched), False, uniform, mixes, width, lane_name)
    if got is None and plain is not None and plain.params == fn.params:
        shape = _plain_shape(plain, {p for p, _ in uniform})
        got = _build(fn, plain, shape, True, uniform, mixes, width, lane_name)
    return got


def _build(
    fn: k.Function,
    unswitched: k.Function,
    shape: _Shape | None,
    inline: bool,
    uniform: list[tuple[str, T]],
    mixes: list[str],
    width: int,
    lane_name,
) -> VoiceInner | None:
    """The pieces from ``shape``, the parts of ``unswitched`` (or of the unsplit pair function
    for the ``inline`` form)."""
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
    middle, per, hoisted = _hoist(middle, per, shared, consts=not inline)
    # read before any write in the sample: carried, or the same every sample
    loaded, load_at = _loads(per, shared)
    if any(name in mix_lanes or name in head or name == "_stop" or name not in types for name in loaded):
        return None  # a mix read otherwise, the block's length, or a test's local: not for a run
    params_of = {p for p, _ in fn.params}
    made = {h.name for h in hoisted}  # type: ignore[attr-defined]
    # A local carried from sample to sample that is not state (an arm's old value passed to a
    # lanes call for its blend) starts at 0 in the pair function at each call: a run in pieces
    # would differ. The inline form's run is the block up to its first due event, from sample
    # 0 with it 0 in the record (pack does not set it): as the pair function on a block cut there.
    if not inline and any(
        name not in params_of and name not in pro_writes and name not in made for name in loaded
    ):
        return None
    written = [name for _, w, _ in per for name in sorted(w)]
    if not inline and any(x in loaded and x not in tail for x in written):
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
    gate = None if inline else k.Function(
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
    run_locals = {n: t for n, t in own.items() if n not in ("i",)}
    run_locals.update({name: types[name] for name in slots if name in params_of})
    run_locals.update({acc: T.F64 for acc in accs})
    run_locals.update({"q": i32, "_vi_p": i32})
    slow: list[k.Function] = []
    full = per
    if inline:  # each rare if's arm a call, its loads and stores in the arm
        per = [((_reads(x.cond), set(), set()) if _rare(x) else rw) for x, rw in zip(middle, per, strict=True)]  # type: ignore[attr-defined]
        fast_loaded, load_at = _loads(per, shared)
        if not set(fast_loaded) <= set(loaded):
            return None
        loaded = fast_loaded
    # the run: loads sunk to their first use, stores right after their last write
    last_write: dict[str, int] = {}
    writers: dict[str, int] = {}
    for j, (_, w, _) in enumerate(full):
        for name in w:
            last_write[name] = j
            writers[name] = writers.get(name, 0) + 1
    inner: list[k.Stmt | None] = []
    arms: list[tuple[int, int]] = []  # (position in inner, statement)
    held: set[str] = set()  # the locals the run holds in registers at each statement
    held_at: dict[int, set[str]] = {}
    for j, s in enumerate(middle):
        here = [name for name in loaded if load_at[name] == j]
        inner += [load(name, "q") for name in here]
        held |= set(here)
        if inline and _rare(s):
            held_at[j] = set(held)
            arms.append((len(inner), j))
            inner.append(None)
            after = [x for x in stored if last_write.get(x) == j and x in held]
        else:
            inner.append(s)
            held |= per[j][1]
            after = [x for x in stored if last_write.get(x) == j]
        inner += [store(name, "q") for name in after]
    slow: list[k.Function] = []
    if arms:
        types.update({acc: T.F64 for acc in accs})  # kept around an arm's call like the rest
        got = _arm_calls(fn.name, middle, full, inner, arms, held_at, set(slots), stored, shared, accs, mix_lanes, types, own, offset, load, store)
        if got is None:
            return None
        slow, stride = got
    i, i8, p, q = _loc(i32, "i"), _loc(i32, "i8"), _loc(i32, "_vi_p"), _loc(i32, "q")
    i, i8, p, q = _loc(i32, "i"), _loc(i32, "i8"), _loc(i32, "_vi_p"), _loc(i32, "q")
    mixp = [f"_vi_mix{m}" for m in range(len(mixes))]
    at = [_prim(Op.I32_ADD, i8, _loc(i32, mp)) for mp in mixp]
    sample = [
        k.Exit(label="_vi_sample", cond=_prim(Op.I32_GE_U, i, _loc(i32, "stop"))),
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
    run = k.Function(
        f"{fn.name}_run",
        [("i", i32), ("stop", i32), ("q0", i32), ("pairs", i32), *((mp, i32) for mp in mixp)],
        (),
        run_locals,
        [k.Loop(label="_vi_sample", cond=None, body=sample)],
    )
    return VoiceInner(gate, pack, unpack, run, step, stride, tuple(slow))


def _reads(e: k.Expr) -> set[str]:
    out: set[str] = set()
    _uses(e, out)
    return out


def _loads(per: list[tuple[set[str], set[str], set[str]]], shared: set[str]) -> tuple[list[str], dict[str, int]]:
    """The locals statements ``per`` (reads before writes, writes, sure writes) read before the
    sample writes them, in order, and the statement each must be loaded before: its first read,
    or an earlier statement that may write it (an ``if``'s arm; the value read after it is that
    arm's or the one before the sample)."""
    loaded: list[str] = []
    at: dict[str, int] = {}
    maybe: dict[str, int] = {}
    killed: set[str] = set()
    for j, (r, w, always) in enumerate(per):
        for name in sorted(r - killed - shared):
            if name not in at:
                loaded.append(name)
                at[name] = maybe.get(name, j)
        for name in w - always - killed:
            maybe.setdefault(name, j)
        killed |= always
    return loaded, at


def _dbg(n, loc):
    import os
    if os.environ.get("VI_DEBUG"):
        print("ARM none", n, {k_: loc.get(k_) for k_ in ("j",)}, loc.get("reads", set()) - loc.get("held", set()) - loc.get("slots", set()) if n == 3 else "", set(loc.get("keep", [])) - loc.get("held", set()) if n == 4 else "")


def _arm_calls(
    name: str,
    middle: list[k.Stmt],
    full: list[tuple[set[str], set[str], set[str]]],
    inner: list[k.Stmt | None],
    arms: list[tuple[int, int]],
    held_at: dict[int, set[str]],
    slots: set[str],
    stored: list[str],
    shared: set[str],
    accs: list[str],
    mix_lanes: dict[str, int],
    types: dict[str, T],
    own: dict[str, T],
    offset: dict[str, int],
    load,
    store,
) -> tuple[list[k.Function], int] | None:
    """The inline form's rare ifs, in place in ``inner`` (the run's statements; ``None`` where
    ``middle[j]`` goes, for each ``(position, j)`` of ``arms``): each becomes ``if cond: ...``
    calling ``<name>_arm<j>``, a function holding the if itself (its params what the if reads
    or may set, its results what it may set). Around the call, in the arm only, the values the
    run holds and reads afterwards go to the record and come back (a call clobbers every
    vector register: without this, Cranelift keeps them on the stack on the common path too),
    what the if reads that the run does not hold comes from the record, and what it sets that
    the run does not hold goes back to it. Returns the arm functions and the record's new
    stride (scratch slots for the values kept around a call that are not in it); None where an
    if reads a local the run has nowhere, or touches the mix."""
    i32 = T.I32
    loop_vars = {"i", "i8", "q", "_vi_p"}
    # liveness after each position of inner, backwards; the mix registers are live throughout
    live_after: dict[int, set[str]] = {}
    live: set[str] = set(accs)
    arm_at = dict(arms)
    try:
        for t in range(len(inner) - 1, -1, -1):
            live_after[t] = set(live)
            x = inner[t]
            r: set[str] = set()
            if x is None:  # the test, and what the arm is passed from the registers
                j = arm_at[t]
                _uses(middle[j].cond, r)  # type: ignore[attr-defined]
                r |= (full[j][0] | full[j][1]) & held_at[j]
                always = set()
            else:
                always = _rw(x, r, set())
            live = (live - always) | r
    except _Unknown:
        _dbg(1, locals()); return None
    functions: list[k.Function] = []
    next_off = SLOT * len(offset)
    for t, j in arms:
        s = middle[j]
        reads, writes, _ = full[j]
        if (reads | writes) & (set(accs) | set(mix_lanes)):
            _dbg(2, locals()); return None
        held = held_at[j]
        fetch = sorted((reads | writes) & slots - held - shared)
        if reads - held - slots - shared:
            _dbg(3, locals()); return None  # read, and neither held nor in the record
        keep = sorted(live_after[t] - writes - loop_vars)
        if set(keep) - held - set(accs):
            _dbg(4, locals()); return None
        for x in keep:
            if x not in offset:
                offset[x] = next_off
                next_off += SLOT
        put = [x for x in stored if x in writes and x not in held]
        args = sorted(reads | writes)
        results = sorted(writes)
        f = f"{name}_arm{j}"
        body: list[k.Stmt] = [s, k.ReturnValues(values=[_loc(types[x], x) for x in results])]
        fparams = [(x, types[x]) for x in args]
        flocals = {x: tt for x, tt in own.items() if x not in set(args)}
        functions.append(k.Function(f, fparams, tuple(types[x] for x in results), flocals, body))
        call = k.Invoke(
            func=f,
            args=[_loc(types[x], x) for x in args],
            targets=results,
            results=tuple(types[x] for x in results),
        )
        arm: list[k.Stmt] = [
            *(load(x, "q") for x in fetch),
            *(store(x, "q") for x in keep),
            call,
            *(load(x, "q") for x in keep),
            *(store(x, "q") for x in put),
        ]
        inner[t] = k.If(s.site, s.cond, arm, [])  # type: ignore[attr-defined]
    return functions, max(SLOT, next_off)

def _hoist(
    middle: list[k.Stmt], per: list[tuple[set[str], set[str], set[str]]], shared: set[str], consts: bool = True
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
            and (consts or type(s.value) is not k.Const)  # type: ignore[attr-defined]
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
