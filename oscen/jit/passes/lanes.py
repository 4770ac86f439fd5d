"""Voices as lanes: a body written for one voice made into a body for ``W`` voices at once.

The skeleton builds a voice group's step as ONE list of primitive statements for one voice,
addressing everything of the voice from I32 lane inputs (the voice's base ``vb`` or its nodes'
bases, its index ``v``, addresses of voice-specific sources). Running it W times, one voice after
the other, each time with fresh locals (a function body), is the reference meaning. :func:`lanes`
makes one body that does the same for W voices whose inputs are ``vb__0..``, ``v__0..`` (the
caller sets them), so that the lanes' independent recurrences overlap in the CPU (the speed of
hand-written C that interleaves voices), and, packed, run two at a time in f64x2.

How:

1. **Expansion**: :class:`~..kernel.Instance`\\ s of variant Codes are pasted in (renames
   applied, ``SyncState`` marks replaced by the instance's flush/reload, trap sites numbered in
   the Code's own table, as the printer does), so the body is one tree.
2. **Straight lines**: statements inside values (inlined ``min``/``max`` and helpers, the site
   noted before a math call) move before their statement, ``a if c else b`` of trap-free sides
   becomes a select, math calls inside expressions go into temporaries: only where nothing
   evaluated earlier can tell (:func:`straighten`). An ``if``'s condition's statements (an
   inlined predicate: ``if self._stale(sr):``) move before the ``if``; an inlined helper's
   block whose ``return``\\ s end it or end an arm of one of its ``if``\\ s becomes its body,
   the statements after such an ``if`` in its other arm.
3. **Uniformity**: a local, an expression, a structure is *varying* if it depends, through data
   or control, on the lane inputs or on memory loaded from a varying address, or on memory the
   body itself writes at a fixed address (the loop budget in INTERRUPT: each lane counts it
   down); *uniform* otherwise (the sample counter ``i``, ``i8``, ``n``, constants, reads of
   uniform addresses). A structure is varying if its condition is, or if an ``Exit``/``Next``
   that leaves it sits under varying control.
4. **Small pure if/else to selects**: a varying ``if`` whose arms only set locals to trap-free
   values (at most SELECT_MAX_SETS of them, SELECT_MAX_NODES nodes each; loads only at a
   voice's base plus an offset: :func:`_safe_bases`) becomes ``Choose``\\ s of the two computed
   values (bit-exact, branch-free), provided each value reads the targets it reads as its arm
   run statement by statement would (``phase = phase - 1.0`` reads the old phase both ways).
4a. **Masked ifs** (packing, an even W): another varying ``if`` whose condition is a mask
   (f64 comparisons, and/or/not/select of masks, bool locals set to masks; a short-circuit
   right side only if it may run speculatively; any other effect-free bool, gathered lane by
   lane) sets a mask local ``_lane_maskN`` just before it and runs on it per pair of lanes
   (:meth:`_Emit.masked_if`). An arm is *pure* if it only sets f64 and bool locals to values
   that may run for a lane that did not take it (no trap, no call but a math call with an
   f64x2 form, loads only at a voice's base; nested ifs of the same kind): it runs packed for
   both lanes when ``v128.any_true`` of its mask (``not all_true`` for an else), and the
   locals it sets are blended with ``v128.bitselect`` (an if/else: both arms from the same old
   values, then one blend); a math call's scalar fallback runs only for a lane whose bits of
   the enclosing masks say it takes the arm, so no lane raises an error it would not raise
   alone. Any other arm (traps, calls, stores, loops) runs lane by lane under the mask's
   ``i64x2.bitmask`` (skipped when no lane takes it), its locals staying packed (an extract
   and a replace where the scalar code reads and sets them). The cost rule: tiny pure arms
   are selects (4., no branch); pure arms of any size run packed under a guard; other arms run
   lane by lane, masked only if the mask packs or a pure arm runs packed (an ``if`` on a bool
   gathered from scalar lanes with no packed arm stays one copy per lane, as in 5.).
5. **Emission** ("interleave"): uniform statements once; a varying statement once per lane,
   its varying locals renamed ``x__L``, the lanes' copies side by side statement by statement;
   varying control flow (masked ifs apart) as one copy per lane; uniform control flow around
   varying work (the sample loop) stays one structure with an interleaved body. Writes with a
   per-lane effect (the INTERRUPT count, calls of module functions) run once per lane, in lane
   order.
5a. **Outlined arms**: an arm that runs lane by lane (a masked ``if``'s other arm, an arm of a
   varying ``if`` copied per lane: trap paths, a call with its state flush and reload, a ramp
   step) becomes one module function ``_lane_arm_<hash of its text>`` that every lane (and
   every pair, every lane body with the same arm) calls in the arm's cold branch: parameters
   the locals the arm may read before it sets them (and the voice index, for ``LANE`` before
   what may trap inside), results the locals it sets that the body reads elsewhere or that the
   arm itself reads (a value its next run sees). The function is the arm as the voice runs it
   alone, so each lane computes, traps and names its voice as it did inline; it is used where
   the lane's copy of the call (extracts and replaces included) is at least
   OUTLINE_MIN_SAVING nodes smaller than its inline copy, and not for an arm that jumps out of
   itself or holds a trap numbered by the caller's site table. The hot path keeps its tests;
   what shrinks is the lane function Cranelift compiles (the arm once instead of W times).
6. **Packing** (an even W): a varying ``x = e`` the lanes run side by side, ``e`` an f64
   operation with an f64x2 form, a select, a copy, a constant, a mask (f64 comparisons and
   and/or/not/select of masks), or a math call with an f64x2 form (simd's ``vector_main``: the
   scalar function for a lane off its main path), becomes one f64x2 statement per pair of lanes; the locals it sets and the f64 locals
   it reads live in V128 locals ``x__v<pair>``, read by per-lane code with an extract and set
   with a replace. Kept only where it pays: a statement whose operands would mostly be gathered
   from scalar lanes (its f64x2 form costs more than the lanes' scalar copies with their
   extracts and replaces), a local that per-lane code in the loop uses more than packed code,
   stay scalar; the masks of masked ifs and what their pure arms set are always packed. Each
   lane of an f64x2 operation is the IEEE operation of the scalar code: bit-exact.
7. **Traps**: before anything that may trap in lane L (a ``Trap``, a call that may trap) the
   header slot LANE gets ``v__L``: a fault names the voice (a trap stores its lane's ``nb``
   in NODE too, its ``node``). Trap stores sit in the trap's own branch, off the hot path; a call that may trap gets its store just before the statement.

Where lanes of one statement run side by side, the relative order of the lanes' memory effects
changes; that is exact because the lanes touch disjoint memory (the group's contract) except
uniform reads and the header slots SEGMENT, LANE, TRAP_SITE/CODE (equal values), NODE (the
base of one member's node in each lane: a fault takes the voice from LANE) and INTERRUPT (a
count only summed). If several lanes would trap, the one reported is the first to
trap in the interleaved order (each lane's own trap is exact; which one comes first may differ
from the voice-by-voice order). Other fixed addresses a body writes run once per lane, reads of
them are varying; a store to a shared address that is not a constant is refused
(:class:`NotLaneable`), as are returns, jumps out of the body and Codes given as text.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha1

from .. import kernel as k
from ..backends.wasm import code_sites, function_text, keep_text
from ..kernel import T
from ..layout import LANE, NODE, SEGMENT, TRAP_CODE, TRAP_SITE
from ..mathlib.registry import BY_WASM, ERROR_GLOBAL, MathFunction, functions_for, vector_main
from ..ops import Op
from .walk import Rewriter, walk

I32 = T.I32
LANE_INPUTS = ("vb", "v")
"""The per-voice body's lane inputs: the voice's base address and its index."""
IDEMPOTENT_SLOTS = frozenset({NODE, SEGMENT, LANE, TRAP_SITE, TRAP_CODE})
"""Header slots the body may write with a uniform value once for all lanes (their last value
only attributes a fault)."""
TRAPPING_OPS = frozenset(
    {
        Op.I64_DIV_S,
        Op.I64_DIV_U,
        Op.I64_REM_S,
        Op.I64_REM_U,
        Op.I32_DIV_S,
        Op.I32_DIV_U,
        Op.I32_REM_S,
        Op.I32_REM_U,
        Op.I64_TRUNC_F64_S,
        Op.I32_TRUNC_F64_S,
    }
)
"""Primitive operations that trap on some operands (never evaluated speculatively)."""
SELECT_MAX_SETS = 4
"""An if/else with at most this many locals set per arm becomes selects."""
SELECT_MAX_NODES = 24
"""... and at most this many expression nodes per value."""


class NotLaneable(Exception):
    """The body cannot be run as lanes (``reason`` says why): run the voices one by one."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class LaneBody:
    """The body for W lanes and every local it uses (lane inputs ``vb__L``, ``v__L`` included).
    Shared by every compile of the process with the same voice body (:mod:`..session`) and its
    printing kept by identity (:func:`~..backends.wasm.keep_text`): never changed once made (a
    caller that needs another body builds a new list)."""

    body: list[k.Stmt]
    locals: dict[str, T]
    functions: list[k.Function] = field(default_factory=list)
    """Module functions the body calls that the caller must add (the math library's f64x2
    forms, which the shared math module does not hold; the outlined arms, named by content)."""


def lane_name(name: str, lane: int) -> str:
    """Lane ``lane``'s copy of varying local ``name``."""
    return f"{name}__{lane}"


# =========================================================================== 1. expansion
@dataclass
class _NumberedTrap(k.Stmt):
    """A trap from an Instance's Code, its site numbered in that Code's table (the printer numbers
    a Trap by the table of the Code it prints; pasted out of its Code, the number goes along)."""

    site: k.Site = field(default=k.NOSITE, kw_only=True)
    trap: k.Trap
    number: int


def _resolved(t: _NumberedTrap, node: k.Expr | None) -> list[k.Stmt]:
    """What the printer makes of the trap, as statements (the same memory and the same trap);
    ``node``: the lane's copy of the trap's ``node`` (the node's base: the voice's own node)."""
    tr = t.trap
    if tr.math_error:
        return [k.SetGlobal(name=ERROR_GLOBAL, value=k.Const(I32, tr.math_error)), k.Unreachable()]
    if tr.via:
        at = k.Const(I32, 0) if node is None else node
        return [k.Invoke(func=tr.via, args=[k.Const(I32, t.number), k.Const(I32, tr.code), at])]
    stores = [] if node is None else [k.Store(type=I32, addr=k.Const(I32, NODE), offset=0, value=node)]
    return [
        *stores,
        k.Store(type=I32, addr=k.Const(I32, TRAP_SITE), offset=0, value=k.Const(I32, t.number)),
        k.Store(type=I32, addr=k.Const(I32, TRAP_CODE), offset=0, value=k.Const(I32, tr.code)),
        k.Unreachable(),
    ]


class _Expand(Rewriter):
    """Pastes Instances in: renames (innermost first, as the printer renames pasted text), state
    syncs, trap numbering."""

    def __init__(self) -> None:
        self.chain: list[dict[str, str]] = []
        self.sites = None  # the numbering of the Code being pasted (None: the caller's)
        self.inst: k.Instance | None = None

    def rn(self, name: str) -> str:
        for renames in self.chain:
            name = renames.get(name, name)
        return name

    def s_Instance(self, s: k.Instance) -> list[k.Stmt]:
        if not s.code.body and s.code.derived.get("wat"):
            raise NotLaneable("an Instance of a Code given as WebAssembly text")
        saved = (self.chain, self.sites, self.inst)
        self.chain, self.sites, self.inst = [s.renames, *self.chain], code_sites(s.code), s
        try:
            return self.stmts(s.code.body)
        finally:
            self.chain, self.sites, self.inst = saved

    def s_SyncState(self, s: k.SyncState) -> list[k.Stmt]:
        inst = self.inst
        if inst is None:
            raise NotLaneable("a SyncState outside an Instance")
        body = inst.flush if s.direction == "flush" else inst.reload
        self.inst = None  # the syncs' own Instances nest; marks do not
        try:
            return self.stmts(body)
        finally:
            self.inst = inst

    def s_Trap(self, s: k.Trap) -> list[k.Stmt]:
        if self.sites is None:
            return [s]
        return [_NumberedTrap(site=s.site, trap=s, number=self.sites(s.where))]

    def x_Local(self, e: k.Local) -> k.Expr:
        return k.Local(e.type, self.rn(e.name)) if self.chain else e

    def x_Let(self, e: k.Let) -> k.Expr:
        return k.Let(e.type, self.rn(e.name), self.expr(e.value), self.expr(e.body))

    def x_CallFn(self, e: k.CallFn) -> k.Expr:
        return k.CallFn(e.type, self.rn(e.func), [self.expr(a) for a in e.args])

    def s_SetLocal(self, s: k.SetLocal) -> list[k.Stmt]:
        return [k.SetLocal(site=s.site, name=self.rn(s.name), value=self.expr(s.value))]

    def s_Invoke(self, s: k.Invoke) -> list[k.Stmt]:
        return [
            k.Invoke(
                site=s.site,
                func=self.rn(s.func),
                args=[self.expr(a) for a in s.args],
                targets=[self.rn(t) for t in s.targets],
                results=s.results,
            )
        ]

    def s_Block(self, s: k.Block) -> list[k.Stmt]:
        return [k.Block(site=s.site, label=self.rn(s.label), body=self.stmts(s.body))]

    def s_Loop(self, s: k.Loop) -> list[k.Stmt]:
        cond = None if s.cond is None else self.expr(s.cond)
        return [k.Loop(site=s.site, label=self.rn(s.label), cond=cond, body=self.stmts(s.body))]

    def s_Exit(self, s: k.Exit) -> list[k.Stmt]:
        cond = None if s.cond is None else self.expr(s.cond)
        return [k.Exit(site=s.site, label=self.rn(s.label), cond=cond)]

    def s_Next(self, s: k.Next) -> list[k.Stmt]:
        return [k.Next(site=s.site, label=self.rn(s.label))]


def expand(body: list[k.Stmt]) -> list[k.Stmt]:
    """``body`` with every Instance pasted in (a new tree; traps of Codes carry their number)."""
    return _Expand().stmts(body)


# =========================================================================== helpers
def _pure_function(name: str) -> bool:
    """A math library function: its result depends on its arguments alone (it may trap)."""
    return name in BY_WASM or name == "trap"


def _may_trap_call(name: str) -> bool:
    mf = BY_WASM.get(name)
    return mf is None or mf.can_trap


def _const_addr(e: k.Load | k.Store) -> int | None:
    return e.addr.value + e.offset if isinstance(e.addr, k.Const) else None  # type: ignore[operator]


def _width(t: T) -> int:
    return 8 if t in (T.F64, T.I64) else 4


# =========================================================================== 2. uniformity
class _Uniformity:
    """Which locals and structures are varying (a fixpoint over the whole body)."""

    def __init__(self, body: list[k.Stmt], inputs: tuple[str, ...]) -> None:
        self.varying: set[str] = set(inputs)
        self.vstructs: set[int] = set()  # ids of varying If/Loop/Block
        self.written: list[tuple[int, int]] = []  # fixed byte ranges the body writes (not idempotent)
        for x in walk(body):
            if isinstance(x, k.Store):
                at = _const_addr(x)
                if at is not None and at not in IDEMPOTENT_SLOTS:
                    self.written.append((at, at + _width(x.type)))
        self.changed = True
        while self.changed:
            self.changed = False
            self.stmts(body, False, [])

    def _mark(self, name: str) -> None:
        if name not in self.varying:
            self.varying.add(name)
            self.changed = True

    def _mark_struct(self, s: k.Stmt) -> None:
        if id(s) not in self.vstructs:
            self.vstructs.add(id(s))
            self.changed = True

    def shared(self, e: k.Load) -> bool:
        """Whether a load of a fixed address reads what the body writes there (lane by lane)."""
        at = _const_addr(e)
        if at is None:
            return False
        end = at + _width(e.type)
        return any(a < end and at < b for a, b in self.written)

    # ------------------------------------------------------------------ expressions
    def expr(self, e: k.Expr, ctx: bool, stack: list) -> bool:
        if isinstance(e, k.Const):
            return False
        if isinstance(e, k.Local):
            return e.name in self.varying
        if isinstance(e, k.Load):
            return self.expr(e.addr, ctx, stack) or self.shared(e)
        if isinstance(e, (k.Prim, k.CallFn)):
            v = False
            for a in e.args:
                v = self.expr(a, ctx, stack) or v
            return v or (isinstance(e, k.CallFn) and not _pure_function(e.func))
        if isinstance(e, k.Choose):
            a = self.expr(e.a, ctx, stack)
            b = self.expr(e.b, ctx, stack)
            return self.expr(e.cond, ctx, stack) or a or b
        if isinstance(e, k.Select):
            c = self.expr(e.cond, ctx, stack)
            a = self.expr(e.then, ctx or c, stack)
            return self.expr(e.orelse, ctx or c, stack) or a or c
        if isinstance(e, k.Logical):
            c = self.expr(e.left, ctx, stack)
            return self.expr(e.right, ctx or c, stack) or c
        if isinstance(e, k.Seq):
            self.stmts(e.body, ctx, stack)
            return self.expr(e.value, ctx, stack)
        if isinstance(e, k.Let):
            if self.expr(e.value, ctx, stack) or ctx:
                self._mark(e.name)
            return self.expr(e.body, ctx, stack)
        if isinstance(e, k.GetGlobal):
            return True
        raise NotLaneable(f"a {type(e).__name__} expression (not primitive-level)")

    # ------------------------------------------------------------------ statements
    def stmts(self, body: list[k.Stmt], ctx: bool, stack: list) -> None:
        for s in body:
            self.stmt(s, ctx, stack)

    def _leave(self, s: k.Exit | k.Next, varying: bool, stack: list) -> None:
        for label, target, outer_ctx in reversed(stack):
            if label == s.label:
                if varying and not outer_ctx:
                    self._mark_struct(target)
                return
        raise NotLaneable(f"a jump to label {s.label!r} outside the body")

    def stmt(self, s: k.Stmt, ctx: bool, stack: list) -> None:  # noqa: C901 - one dispatch
        if isinstance(s, k.SetLocal):
            if self.expr(s.value, ctx, stack) or ctx:
                self._mark(s.name)
        elif isinstance(s, k.Store):
            self.expr(s.addr, ctx, stack)
            self.expr(s.value, ctx, stack)
        elif isinstance(s, k.If):
            if self.expr(s.cond, ctx, stack):
                self._mark_struct(s)
            inner = ctx or id(s) in self.vstructs
            self.stmts(s.body, inner, stack)
            self.stmts(s.orelse, inner, stack)
        elif isinstance(s, (k.Loop, k.Block)):
            if isinstance(s, k.Loop) and s.cond is not None and self.expr(s.cond, ctx, stack):
                self._mark_struct(s)
            stack.append((s.label, s, ctx))
            self.stmts(s.body, ctx or id(s) in self.vstructs, stack)
            stack.pop()
        elif isinstance(s, k.Exit):
            c = s.cond is not None and self.expr(s.cond, ctx, stack)
            self._leave(s, ctx or c, stack)
        elif isinstance(s, k.Next):
            self._leave(s, ctx, stack)
        elif isinstance(s, k.Invoke):
            v = not _pure_function(s.func)
            for a in s.args:
                v = self.expr(a, ctx, stack) or v
            if v or ctx:
                for t in s.targets:
                    self._mark(t)
        elif isinstance(s, k.ExprStmt):
            self.expr(s.value, ctx, stack)
        elif isinstance(s, k.MemCopy):
            for e in (s.dst, s.src, s.nbytes):
                self.expr(e, ctx, stack)
        elif isinstance(s, k.SetGlobal):
            self.expr(s.value, ctx, stack)
        elif isinstance(s, (k.Trap, _NumberedTrap, k.Unreachable)):
            pass
        elif isinstance(s, k.ReturnValues):
            raise NotLaneable("a return from inside the body")
        else:
            raise NotLaneable(f"a {type(s).__name__} statement (not primitive-level)")


# =========================================================================== 3. selects
def _speculable(e: k.Expr, budget: list[int], safe: frozenset[str] | set[str] = frozenset()) -> bool:
    """Whether ``e`` may be evaluated when the original would not: no trap, no effect, no memory
    (a branch not taken may address what is out of bounds) but at a ``safe`` base (a voice's
    own memory: :func:`_safe_bases`), and small."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if isinstance(e, (k.Const, k.Local)):
        return True
    if isinstance(e, k.Prim):
        return e.op not in TRAPPING_OPS and all(_speculable(a, budget, safe) for a in e.args)
    if isinstance(e, k.Choose):
        return all(_speculable(a, budget, safe) for a in (e.cond, e.a, e.b))
    if isinstance(e, k.Load):
        return isinstance(e.addr, k.Local) and e.addr.name in safe
    return False


def _reads(e: k.Expr) -> set[str]:
    return {x.name for x in walk(e) if isinstance(x, k.Local)}


class _Selects:
    """Varying small pure if/else to ``Choose``\\ s (see the module docstring)."""

    def __init__(self, u: _Uniformity, locals_: dict[str, T], safe: set[str]) -> None:
        self.u = u
        self.locals = locals_
        self.safe = safe
        self.count = 0
        self.converted = 0  # if/else made selects

    def arms(self, s: k.If) -> tuple[dict[str, k.Expr], dict[str, k.Expr]] | None:
        got = []
        for arm in (s.body, s.orelse):
            if len(arm) > SELECT_MAX_SETS:
                return None
            sets: dict[str, k.Expr] = {}
            for x in arm:
                if not isinstance(x, k.SetLocal) or x.name in sets:
                    return None
                if not _speculable(x.value, [SELECT_MAX_NODES], self.safe):
                    return None
                sets[x.name] = x.value
            got.append(sets)
        then, orelse = got
        order = [*then, *(t for t in orelse if t not in then)]
        if not order:
            return None
        # The selects run in ``order``, each value read where its select stands: a value that
        # reads a target must see there what its arm, run statement by statement, shows it
        # (``phase = phase - 1.0`` reads the old phase both ways).
        for at, name in enumerate(order):
            for arm in (then, orelse):
                if name not in arm:
                    continue
                names = list(arm)
                before = set(names[: names.index(name)])  # set earlier in the arm
                for t in _reads(arm[name]) & set(order):
                    chosen = order.index(t) < at  # its select ran: the arm's value of it there
                    if chosen and t in arm and t not in before:
                        return None  # would see the arm's later value
                    if not chosen and t in before:
                        return None  # would see the old value, the arm the new one
        return then, orelse

    def stmts(self, body: list[k.Stmt]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for s in body:
            if isinstance(s, k.If) and id(s) in self.u.vstructs:
                got = self.arms(s)
                if got is not None:
                    self.converted += 1
                    out.extend(self.selects(s, *got))
                    continue
            if isinstance(s, k.If):
                s.body, s.orelse = self.stmts(s.body), self.stmts(s.orelse)
            elif isinstance(s, (k.Loop, k.Block)):
                s.body = self.stmts(s.body)
            out.append(s)
        return out

    def selects(self, s: k.If, then: dict[str, k.Expr], orelse: dict[str, k.Expr]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        cond = s.cond
        if not _speculable(cond, [SELECT_MAX_NODES]) or not isinstance(cond, (k.Local, k.Const)):
            name = f"_lane_sel{self.count}"
            self.count += 1
            self.locals[name] = I32  # planned as an i32 word; read with the condition's type
            out.append(k.SetLocal(site=s.site, name=name, value=cond))
            cond = k.Local(cond.type, name)
        for name in [*then, *(t for t in orelse if t not in then)]:
            values = [x for x in (then.get(name), orelse.get(name)) if x is not None]
            t = self.locals.get(name) or values[0].type
            if any(x.type == T.BOOL for x in values):
                t = T.BOOL  # an i32 word to the planning, read as the bool it is
            a = then.get(name, k.Local(t, name))
            b = orelse.get(name, k.Local(t, name))
            out.append(k.SetLocal(site=s.site, name=name, value=k.Choose(t, cond, a, b)))
        return out


# =========================================================================== 3b. masked ifs
@dataclass
class _Masked:
    """How a varying ``if`` runs on packed lanes: its condition is the mask local ``mask`` (set
    just before it); each arm either packed for both lanes of a pair and blended (``pure``) or
    lane by lane under the mask's bits."""

    mask: str
    pure: tuple[bool, bool]  # then, else


def _safe_bases(tree: list[k.Stmt], inputs: tuple[str, ...]) -> set[str]:
    """Locals that only ever hold a lane input plus constants (a node's base ``nb``): loads at
    them plus an offset read the voice's own memory, whichever branch a lane takes."""
    sets: dict[str, list[k.Expr]] = {}
    for x in walk(tree):
        if isinstance(x, (k.SetLocal, k.Let)):
            sets.setdefault(x.name, []).append(x.value)
        elif isinstance(x, k.Invoke):
            for t in x.targets:
                sets.setdefault(t, []).append(k.GetGlobal(I32, "?"))  # unknown
    safe = {n for n in inputs if n not in sets}
    changed = True
    while changed:
        changed = False
        for name, values in sets.items():
            if name not in safe and all(_base_value(v, safe) for v in values):
                safe.add(name)
                changed = True
    return safe


def _base_value(e: k.Expr, safe: set[str]) -> bool:
    if isinstance(e, k.Local):
        return e.name in safe
    return (
        isinstance(e, k.Prim)
        and e.op == Op.I32_ADD
        and any(isinstance(a, k.Local) and a.name in safe for a in e.args)
        and all(isinstance(a, k.Const) or (isinstance(a, k.Local) and a.name in safe) for a in e.args)
    )


def _spec_packed(e: k.Expr, safe: set[str]) -> bool:
    """Whether ``e`` may run for a lane that did not take its branch, packed: no trap, no
    effect, no call, loads only at a safe base plus an offset."""
    for x in walk(e):
        if isinstance(x, k.Load):
            a = x.addr
            if not (isinstance(a, k.Const) or (isinstance(a, k.Local) and a.name in safe)):
                return False
        elif isinstance(x, k.Prim):
            if x.op in TRAPPING_OPS:
                return False
        elif not isinstance(x, (k.Const, k.Local, k.Choose, k.Logical)):
            return False
    return True


def _maskable(e: k.Expr, safe: set[str]) -> bool:
    """A boolean the lanes of a pair can compute as one mask: comparisons and and/or/not of
    them (a short-circuit right side only if it may run speculatively), bool locals, and any
    other effect-free boolean (each lane computes it, then it is gathered)."""
    if isinstance(e, k.Logical):
        return _maskable(e.left, safe) and _maskable(e.right, safe) and _spec_packed(e.right, safe)
    if isinstance(e, k.Prim) and e.op in (Op.BOOL_AND, Op.BOOL_OR, Op.BOOL_XOR, Op.BOOL_NOT):
        return all(_maskable(a, safe) for a in e.args)
    return e.type == T.BOOL and _clean(e)


def _vector_mask(e: k.Expr, safe: set[str], names: set[str]) -> bool:
    """A boolean whose mask for a pair is computed packed (not gathered from the lanes' scalar
    values): f64 comparisons, and/or/not/select of such, constants, locals set to such
    (``names``)."""
    if isinstance(e, k.Const):
        return e.type == T.BOOL
    if isinstance(e, k.Local):
        return e.name in names
    if isinstance(e, k.Prim):
        if e.op in F64X2_COMPARE:
            return _clean(e)
        return e.op in (Op.BOOL_AND, Op.BOOL_OR, Op.BOOL_XOR, Op.BOOL_NOT) and all(
            _vector_mask(a, safe, names) for a in e.args
        )
    if isinstance(e, k.Logical):
        return (
            _vector_mask(e.left, safe, names)
            and _vector_mask(e.right, safe, names)
            and _spec_packed(e.right, safe)
        )
    if isinstance(e, k.Choose):
        return e.type == T.BOOL and all(_vector_mask(x, safe, names) for x in (e.cond, e.a, e.b))
    return False


def _mask_names(tree: list[k.Stmt], safe: set[str]) -> set[str]:
    """Bool locals every set of which is a packed mask (:func:`_vector_mask`): a fixpoint."""
    sets: dict[str, list[k.Expr]] = {}
    for x in walk(tree):
        if isinstance(x, (k.SetLocal, k.Let)):
            sets.setdefault(x.name, []).append(x.value)
        elif isinstance(x, k.Invoke):
            for t in x.targets:
                sets.setdefault(t, []).append(k.GetGlobal(I32, "?"))
    names = {n for n, vs in sets.items() if all(v.type == T.BOOL for v in vs)}
    while True:
        keep = {n for n in names if all(_vector_mask(v, safe, names) for v in sets[n])}
        if keep == names:
            return names
        names = keep


class _Masks:
    """Varying ifs (in uniform context, or in an arm that runs packed) whose condition is a
    mask: the condition goes into a mask local just before the ``if``; each arm is marked pure
    (f64 and bool locals set from speculable values, math calls with f64x2 forms, nested ifs of
    the same kind) or per lane (anything else)."""

    def __init__(
        self, u: _Uniformity, types: dict[str, T], tree: list[k.Stmt], inputs: tuple[str, ...]
    ) -> None:
        self.u = u
        self.types = types
        self.inputs = inputs
        self.safe = _safe_bases(tree, inputs)
        self.lets = {x.name for x in walk(tree) if isinstance(x, k.Let)}
        self.ifs: dict[int, _Masked] = {}
        self.mask_names = _mask_names(tree, self.safe)
        self.forced: set[int] = set()  # ids of the SetLocals that must run packed
        self.count = 0

    def stmts(self, body: list[k.Stmt]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for s in body:
            if isinstance(s, k.If) and id(s) in self.u.vstructs:
                out.extend(self.convert(s))
                continue
            if isinstance(s, k.If):
                s.body, s.orelse = self.stmts(s.body), self.stmts(s.orelse)
            elif isinstance(s, (k.Loop, k.Block)) and id(s) not in self.u.vstructs:
                s.body = self.stmts(s.body)
            out.append(s)
        return out

    def convert(self, s: k.If) -> list[k.Stmt]:
        if not _maskable(s.cond, self.safe):
            return [s]
        pure = (self.pure(s.body), self.pure(s.orelse))
        worth = (pure[0] and s.body) or (pure[1] and s.orelse)  # an arm that would run packed
        if not worth and not _vector_mask(s.cond, self.safe, self.mask_names):
            return [s]  # lane by lane as it is: a gathered mask buys nothing
        name = f"_lane_mask{self.count}"
        self.count += 1
        self.types[name] = I32
        cond = k.SetLocal(site=s.site, name=name, value=s.cond)
        self.forced.add(id(cond))
        s.cond = k.Local(T.BOOL, name)
        for arm, p in ((s.body, pure[0]), (s.orelse, pure[1])):
            if p:
                arm[:] = self.forced_arm(arm)
        self.ifs[id(s)] = _Masked(name, pure)
        return [cond, s]

    def pure(self, arm: list[k.Stmt]) -> bool:
        for s in arm:
            if _header_note(s):
                continue
            if isinstance(s, k.If):
                if id(s) not in self.u.vstructs or not _maskable(s.cond, self.safe):
                    return False
                if not (_spec_packed(s.cond, self.safe) and self.pure(s.body) and self.pure(s.orelse)):
                    return False
                continue
            if not isinstance(s, k.SetLocal) or s.name in self.lets or s.name in self.inputs:
                return False
            t, v = self.types.get(s.name), s.value
            if t == T.F64 and v.type == T.F64:
                main = _vector_call(v)
                if main is not None:
                    if not all(_spec_packed(a, self.safe) for a in v.args):  # type: ignore[attr-defined]
                        return False
                elif not _spec_packed(v, self.safe):
                    return False
            elif not (t == I32 and v.type == T.BOOL and _spec_packed(v, self.safe)):
                return False
        return True

    def forced_arm(self, arm: list[k.Stmt]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for s in arm:
            if isinstance(s, k.If):
                out.extend(self.convert(s))
                continue
            if isinstance(s, k.SetLocal):
                self.forced.add(id(s))
            out.append(s)
        return out


# =========================================================================== 3a. straight lines
def _reads_only(e: k.Expr) -> bool:
    """No trap and no effect (memory reads allowed: node code reads only what it owns)."""
    for x in walk(e):
        if not isinstance(x, (k.Const, k.Local, k.Prim, k.Choose, k.Load)):
            return False
        if isinstance(x, k.Prim) and x.op in TRAPPING_OPS:
            return False
    return True


def _header_note(s: k.Stmt) -> bool:
    """A constant (or, for NODE, the node's base ``nb``) into a header slot whose value only
    attributes a fault (the site noted before a math call): moved earlier past trap-free work,
    nothing can tell."""
    if not (isinstance(s, k.Store) and isinstance(s.addr, k.Const)):
        return False
    slot = s.addr.value + s.offset
    if isinstance(s.value, k.Local):
        return slot == NODE and s.value.name == "nb"
    return isinstance(s.value, k.Const) and slot in IDEMPOTENT_SLOTS


class _Straighten:
    """See :func:`straighten`."""

    def __init__(self) -> None:
        self.temps = 0

    def hoist(self, e: k.Expr, pre: list[k.Stmt], before: list[k.Expr], top: bool = False) -> k.Expr:
        """``e`` with the statements of its ``Seq``\\ s moved into ``pre`` where that keeps the
        meaning (what the statement evaluates before them has no effect and does not read what
        they set), a math call with an f64x2 form into a temporary likewise (so that it can be
        packed), and ``a if c else b`` of trap-free ``a``, ``b`` as a select of both."""
        if isinstance(e, k.Seq) and all(isinstance(x, k.SetLocal) or _header_note(x) for x in e.body):
            written = {x.name for x in e.body if isinstance(x, k.SetLocal)}
            if all(_reads_only(b) and not (_reads(b) & written) for b in before):
                pre.extend(e.body)
                return self.hoist(e.value, pre, before, top)
            return e
        if isinstance(e, k.Seq):
            # its statements must stay where they are (control flow: an inlined helper's
            # return), but they are straightened themselves, and so is its value after them
            inner: list[k.Stmt] = []
            value = self.hoist(e.value, inner, [])
            seq = k.Seq(e.type, [*self.stmts(e.body), *self.stmts(inner)], value)
            if all(isinstance(x, k.SetLocal) or _header_note(x) for x in seq.body):
                return self.hoist(seq, pre, before, top)  # straight now: moved out as above
            return seq
        if isinstance(e, k.Select):
            cond = self.hoist(e.cond, pre, before)
            # a select evaluates both sides, then the condition: only a condition left without
            # effects may come last
            sides = _speculable(e.then, [SELECT_MAX_NODES]) and _speculable(e.orelse, [SELECT_MAX_NODES])
            if sides and _reads_only(cond):
                return k.Choose(e.type, cond, e.then, e.orelse)
            return k.Select(e.type, cond, e.then, e.orelse)
        if isinstance(e, (k.Prim, k.CallFn)):
            args: list[k.Expr] = []
            for a in e.args:
                args.append(self.hoist(a, pre, before + args))
            if isinstance(e, k.Prim):
                return k.Prim(e.type, e.op, args)
            call = k.CallFn(e.type, e.func, args)
            if not top and _vector_call(call) is not None and all(_reads_only(b) for b in before):
                name = f"_lane_call{self.temps}"
                self.temps += 1
                pre.append(k.SetLocal(name=name, value=call))
                return k.Local(e.type, name)
            return call
        if isinstance(e, k.Choose):
            a = self.hoist(e.a, pre, before)
            b = self.hoist(e.b, pre, [*before, a])
            return k.Choose(e.type, self.hoist(e.cond, pre, [*before, a, b]), a, b)
        return e

    def stmts(self, body: list[k.Stmt]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for s in body:
            if isinstance(s, k.SetLocal):
                pre: list[k.Stmt] = []
                value = self.hoist(s.value, pre, [], top=True)
                out.extend(self.stmts(pre))
                out.append(k.SetLocal(site=s.site, name=s.name, value=value))
                continue
            if isinstance(s, k.Store):
                pre = []
                addr = self.hoist(s.addr, pre, [])
                value = self.hoist(s.value, pre, [addr])
                out.extend(self.stmts(pre))
                out.append(k.Store(site=s.site, type=s.type, addr=addr, offset=s.offset, value=value))
                continue
            if isinstance(s, k.If):
                if isinstance(s.cond, k.Seq):
                    # the condition's statements run first anyway: before the ``if`` (an
                    # inlined predicate: ``if self._stale(sr):``)
                    out.extend(self.stmts(s.cond.body))
                    s.cond = s.cond.value
                s.body, s.orelse = self.stmts(s.body), self.stmts(s.orelse)
            elif isinstance(s, k.Block):
                flat = _without_exits(s.body, s.label)
                if flat is not None:
                    # an inlined helper's ``return``s (at its end, or ending an ``if`` arm): the
                    # block is its body with the rest of it in the other arm
                    out.extend(self.stmts(flat))
                    continue
                s.body = self.stmts(s.body)
            elif isinstance(s, k.Loop):
                s.body = self.stmts(s.body)
            out.append(s)
        return out


def _jumps_to(stmts: list[k.Stmt], label: str) -> bool:
    return any(isinstance(x, (k.Exit, k.Next)) and x.label == label for x in walk(stmts))


def _without_exits(body: list[k.Stmt], label: str) -> list[k.Stmt] | None:
    """``body`` of block ``label`` without its jumps out, where each is an unconditional ``Exit``
    ending the body or ending one arm of an ``if`` of the body (then the statements after the
    ``if`` go into its other arm): the same meaning without the block. None if another jump
    leaves it."""
    for j, s in enumerate(body):
        if isinstance(s, k.Exit) and s.label == label and s.cond is None:
            return body[:j]  # what follows is never reached
        if isinstance(s, k.If) and _jumps_to([s], label):
            for arm, other in ((s.body, s.orelse), (s.orelse, s.body)):
                last = arm[-1] if arm else None
                if isinstance(last, k.Exit) and last.label == label and last.cond is None:
                    if _jumps_to(arm[:-1], label):
                        return None
                    rest = _without_exits([*other, *body[j + 1 :]], label)
                    if rest is None:
                        return None
                    arms = (arm[:-1], rest) if arm is s.body else (rest, arm[:-1])
                    return [*body[:j], k.If(s.site, s.cond, *arms)]
            return None
        if _jumps_to([s], label):
            return None
    return body


def straighten(body: list[k.Stmt]) -> list[k.Stmt]:
    """Statements whose values hold statements (inlined helpers: ``min``, ``max``, a method's
    result; math calls inside expressions) made into straight lines where that keeps the
    meaning, so that they can be lanes side by side and packed. Modifies the (expanded,
    private) tree's structures in place."""
    return _Straighten().stmts(body)


# =========================================================================== packing helpers
VEC = "__v"
"""Suffix of a packed local: lane L of ``x`` is lane L % 2 of the V128 ``x__v<L // 2>``."""
F64X2 = {
    Op.F64_ADD: Op.F64X2_ADD,
    Op.F64_SUB: Op.F64X2_SUB,
    Op.F64_MUL: Op.F64X2_MUL,
    Op.F64_DIV: Op.F64X2_DIV,
    Op.F64_MIN: Op.F64X2_MIN,
    Op.F64_MAX: Op.F64X2_MAX,
    Op.F64_NEG: Op.F64X2_NEG,
    Op.F64_ABS: Op.F64X2_ABS,
    Op.F64_SQRT: Op.F64X2_SQRT,
    Op.F64_FLOOR: Op.F64X2_FLOOR,
    Op.F64_CEIL: Op.F64X2_CEIL,
    Op.F64_TRUNC: Op.F64X2_TRUNC,
    Op.F64_NEAREST: Op.F64X2_NEAREST,
}
"""f64 operations and their f64x2 forms (the same IEEE operation in each lane, bit for bit)."""
F64X2_COMPARE = {
    Op.F64_EQ: Op.F64X2_EQ,
    Op.F64_NE: Op.F64X2_NE,
    Op.F64_LT: Op.F64X2_LT,
    Op.F64_LE: Op.F64X2_LE,
    Op.F64_GT: Op.F64X2_GT,
    Op.F64_GE: Op.F64X2_GE,
}
"""f64 comparisons and their f64x2 forms (a lane all ones where it holds)."""
MASK_LOGIC = {Op.BOOL_AND: Op.V128_AND, Op.BOOL_OR: Op.V128_OR, Op.BOOL_XOR: Op.V128_XOR}


def _prim(op: Op, *args: k.Expr) -> k.Prim:
    return k.Prim(op.result, op, list(args))


def _lane_op(prefix: str, lane: int | None) -> Op:
    """The op of ``lane``'s place in its pair (lanes 2g and 2g + 1 share vector g)."""
    return Op[f"{prefix}{(lane or 0) % 2}"]


def _vec_name(name: str, group: int = 0) -> str:
    return f"{name}{VEC}{group}"


def _vec(name: str, group: int = 0) -> k.Local:
    return k.Local(T.V128, _vec_name(name, group))


def _all_ones(b: k.Expr) -> k.Expr:
    """A boolean as an i64 lane: all ones if it holds, else 0."""
    return _prim(Op.I64_SUB, k.Const(T.I64, 0), _prim(Op.I64_EXTEND_I32_U, b))


def _vector_call(e: k.Expr) -> MathFunction | None:
    """The f64x2 main path of the math function ``e`` calls with clean f64 operands, if any."""
    if not isinstance(e, k.CallFn) or e.type != T.F64:
        return None
    mf = BY_WASM.get(e.func)
    main = vector_main(mf.name) if mf is not None else None
    if main is None or len(main.params) != len(e.args) or mf.result != "f64":  # type: ignore[union-attr]
        return None
    if not all(a.type == T.F64 and _clean(a) for a in e.args):
        return None
    return main


def _ops(e: k.Expr) -> int:
    """Operations one lane's copy of ``e`` runs (a local or a constant is free)."""
    return sum(isinstance(x, (k.Prim, k.Choose, k.Load)) for x in walk(e))


def _clean(e: k.Expr) -> bool:
    """An expression a packed statement may hold: no statements, no lazy parts, no calls, no
    operation that traps (its lanes are evaluated side by side, neither one alone)."""
    for x in walk(e):
        if isinstance(x, (k.Seq, k.Select, k.Logical, k.Let, k.CallFn, k.GetGlobal)):
            return False
        if isinstance(x, k.Prim) and x.op in TRAPPING_OPS:
            return False
    return True


# =========================================================================== 4-5. emission
class _Lane(Rewriter):
    """One lane's copy of a statement: varying locals renamed, LANE stored before its traps.
    ``lane`` None: a uniform statement emitted once (names kept; a trap is lane 0's). Locals held
    packed (``packed``: f64 values, ``masks``: booleans as all-ones lanes) are read with an
    extract and written with a replace of this lane."""

    def __init__(
        self,
        varying: set[str],
        lane: int | None,
        index: str,
        packed: frozenset[str] = frozenset(),
        masks: frozenset[str] = frozenset(),
    ) -> None:
        self.varying = varying
        self.lane = lane
        self.packed = packed if lane is not None else frozenset()
        self.masks = masks if lane is not None else frozenset()
        self.group = (lane or 0) // 2  # the vector holding this lane when packed
        self.index = lane_name(index, lane or 0)

    @property
    def lane_store(self) -> k.Store:
        """``LANE = <index>__L`` (a new node each time: no node is shared in the tree)."""
        return k.Store(type=I32, addr=k.Const(I32, LANE), offset=0, value=k.Local(I32, self.index))

    def rn(self, name: str) -> str:
        if self.lane is not None and name in self.varying:
            return lane_name(name, self.lane)
        return name

    def x_Local(self, e: k.Local) -> k.Expr:
        if e.name in self.packed:
            return _prim(_lane_op("F64X2_EXTRACT_LANE", self.lane), _vec(e.name, self.group))
        if e.name in self.masks:
            lane = _prim(_lane_op("I64X2_EXTRACT_LANE", self.lane), _vec(e.name, self.group))
            return _prim(Op.I64_NE, lane, k.Const(T.I64, 0))
        return k.Local(e.type, self.rn(e.name))

    def x_Let(self, e: k.Let) -> k.Expr:
        return k.Let(e.type, self.rn(e.name), self.expr(e.value), self.expr(e.body))

    def put(self, name: str, value: k.Expr, site: k.Site = k.NOSITE) -> k.SetLocal:
        """``name = value`` in this lane (into its lane of the packed local if it is one)."""
        if name in self.packed:
            value = _prim(_lane_op("F64X2_REPLACE_LANE", self.lane), _vec(name, self.group), value)
            return k.SetLocal(site=site, name=_vec_name(name, self.group), value=value)
        if name in self.masks:
            value = _prim(_lane_op("I64X2_REPLACE_LANE", self.lane), _vec(name, self.group), _all_ones(value))
            return k.SetLocal(site=site, name=_vec_name(name, self.group), value=value)
        return k.SetLocal(site=site, name=self.rn(name), value=value)

    def s_SetLocal(self, s: k.SetLocal) -> list[k.Stmt]:
        return [self.put(s.name, self.expr(s.value), s.site)]

    def s_Invoke(self, s: k.Invoke) -> list[k.Stmt]:
        new = k.Invoke(
            site=s.site,
            func=s.func,
            args=[self.expr(a) for a in s.args],
            targets=[self.rn(t) for t in s.targets],
            results=s.results,
        )
        after = [
            self.put(t, k.Local(rt, self.rn(t)))
            for t, rt in zip(s.targets, s.results, strict=False)
            if t in self.packed or t in self.masks
        ]
        return [self.lane_store, new, *after] if s.func == "trap" else [new, *after]

    def s_Trap(self, s: k.Trap) -> list[k.Stmt]:
        return [self.lane_store, self.children(s)]

    def s__NumberedTrap(self, s: _NumberedTrap) -> list[k.Stmt]:
        node = None if s.trap.node is None else self.expr(s.trap.node)
        return [self.lane_store, *_resolved(s, node)]

    def s_Unreachable(self, s: k.Unreachable) -> list[k.Stmt]:
        return [self.lane_store, k.Unreachable(site=s.site)]

    def stmt(self, s: k.Stmt) -> list[k.Stmt]:
        out = super().stmt(s)
        if _calls_that_may_trap(s):  # its own calls: the store goes right before it
            out.insert(0, self.lane_store)
        return out

    def copy(self, s: k.Stmt) -> list[k.Stmt]:
        return self.stmt(s)


def _copies(lane: _Lane, arm: list[k.Stmt]) -> list[k.Stmt]:
    return [x for s in arm for x in lane.copy(s)]


def _calls_in(e: k.Expr) -> bool:
    """Whether evaluating ``e`` itself calls what may trap (a Seq's statements are their own)."""
    if isinstance(e, k.CallFn) and _may_trap_call(e.func):
        return True
    if isinstance(e, k.Seq):
        return _calls_in(e.value)
    for v in e.__dict__.values():
        if isinstance(v, k.Expr) and _calls_in(v):
            return True
        if type(v) is list and v and isinstance(v[0], k.Expr) and any(_calls_in(x) for x in v):
            return True
    return False


def _calls_that_may_trap(s: k.Stmt) -> bool:
    """Whether statement ``s`` itself (not the statements nested in it) calls what may trap."""
    if isinstance(s, k.Invoke) and s.func != "trap" and _may_trap_call(s.func):
        return True
    return any(isinstance(v, k.Expr) and _calls_in(v) for v in s.__dict__.values()) or any(
        type(v) is list and v and isinstance(v[0], k.Expr) and any(_calls_in(x) for x in v)
        for v in s.__dict__.values()
    )


# =========================================================================== 5a. outlined arms
OUTLINE_MIN_SAVING = 8
"""An arm run lane by lane moves into a module function when its copy is at least this many
expression nodes larger than the call that replaces it (see :class:`_Outline`)."""


def _live_in(stmts: list[k.Stmt], defined: set[str], reads: set[str]) -> set[str]:
    """Add to ``reads`` the locals ``stmts`` may read before setting them, ``defined`` set
    before; returns the locals set on every path through them (a superset of the true live-in
    is safe: a parameter whose value is never read)."""
    for s in stmts:
        defined = _live_stmt(s, defined, reads)
    return defined


def _live_expr(e: object, defined: set[str], reads: set[str]) -> set[str]:
    if isinstance(e, k.Local):
        if e.name not in defined:
            reads.add(e.name)
        return defined
    if isinstance(e, k.Let):
        defined = _live_expr(e.value, defined, reads)
        return _live_expr(e.body, defined | {e.name}, reads)
    if isinstance(e, k.Seq):
        return _live_expr(e.value, _live_in(e.body, defined, reads), reads)
    if isinstance(e, (k.Select, k.Logical)):  # the sides after the condition may not run
        first, rest = (e.cond, (e.then, e.orelse)) if isinstance(e, k.Select) else (e.left, (e.right,))
        defined = _live_expr(first, defined, reads)
        for x in rest:
            _live_expr(x, defined, reads)
        return defined
    if isinstance(e, k.Expr):
        return _live_fields(e, defined, reads)
    return defined


def _live_stmt(s: k.Stmt, defined: set[str], reads: set[str]) -> set[str]:
    if isinstance(s, k.SetLocal):
        return _live_expr(s.value, defined, reads) | {s.name}
    if isinstance(s, k.Invoke):
        for a in s.args:
            defined = _live_expr(a, defined, reads)
        return defined | set(s.targets)
    if isinstance(s, k.If):
        defined = _live_expr(s.cond, defined, reads)
        return _live_in(s.body, defined, reads) & _live_in(s.orelse, defined, reads)
    if isinstance(s, _NumberedTrap):  # its node (the base ``nb``) is stored on the trap path
        return defined if s.trap.node is None else _live_expr(s.trap.node, defined, reads)
    if isinstance(s, (k.Loop, k.Block)):
        if isinstance(s, k.Loop) and s.cond is not None:
            defined = _live_expr(s.cond, defined, reads)
        _live_in(s.body, defined, reads)  # it may leave early: nothing it sets counts after
        return defined
    return _live_fields(s, defined, reads)


def _live_fields(x: k.Expr | k.Stmt, defined: set[str], reads: set[str]) -> set[str]:
    """The expressions among ``x``'s fields (lists of them too), in field order."""
    for v in x.__dict__.values():
        if isinstance(v, k.Expr):
            defined = _live_expr(v, defined, reads)
        elif type(v) is list:
            for y in v:
                if isinstance(y, k.Expr):
                    defined = _live_expr(y, defined, reads)
    return defined


def _sets(stmts: list[k.Stmt]) -> set[str]:
    out: set[str] = set()
    for x in walk(stmts):
        if isinstance(x, (k.SetLocal, k.Let)):
            out.add(x.name)
        elif isinstance(x, k.Invoke):
            out.update(x.targets)
    return out


def _outlinable(arm: list[k.Stmt]) -> bool:
    """Whether ``arm`` can run as a function of its own: no jump out of it, no trap numbered by
    the caller's site table (a Code's own traps carry their number), nothing but local state."""
    labels = {x.label for x in walk(arm) if isinstance(x, (k.Loop, k.Block))}
    numbered = {id(x.trap) for x in walk(arm) if isinstance(x, _NumberedTrap)}
    for x in walk(arm):
        if isinstance(x, (k.Exit, k.Next)) and x.label not in labels:
            return False
        if isinstance(x, k.ReturnValues) or (isinstance(x, k.Trap) and id(x) not in numbered):
            return False
    return True


class _Outline:
    """Rare arms run lane by lane (a masked ``if``'s trap path, the biquad's coefficient
    recompute with its state flush and reload, a ramp step) as ONE module function for every
    lane: each lane's copy is a call in the arm's cold branch, its arguments the locals the arm
    reads (extracted from their packed lane where held packed), its results the locals it sets
    that the body uses elsewhere (replaced into their lane). The function is the arm as the
    voice runs it alone, ``LANE`` stored from its ``v`` parameter before what may trap: so a
    fault names the lane's voice, and every lane computes what it computed inline. The lane
    function shrinks by the arm's size times the lanes, which is what Cranelift's compile time
    follows; the hot path is unchanged (the call sits where the inline arm sat)."""

    def __init__(
        self, tree: list[k.Stmt], types: dict[str, T], index: str, lane: _Lane, names: dict[str, int]
    ) -> None:
        self.tree = tree
        self.names = names  # how often the tree names each local (_name_counts)
        self.lane = lane  # a lane's copier: what an arm costs in the lane function
        # locals read as BOOL anywhere: declared bool in the lane body, so in the function too
        self.bools = {x.name for x in walk(tree) if isinstance(x, k.Local) and x.type == T.BOOL}
        self.types = types
        self.index = index
        self.functions: dict[str, k.Function] = {}
        self.done: dict[int, list[k.Stmt]] = {}

    def arm(self, arm: list[k.Stmt]) -> list[k.Stmt]:
        """``arm`` or the call of its function, whichever is smaller (the same for every lane)."""
        got = self.done.get(id(arm))
        if got is None:
            got = self.done[id(arm)] = self._make(arm)
        return got

    def _make(self, arm: list[k.Stmt]) -> list[k.Stmt]:
        if not arm or not _outlinable(arm):
            return arm
        reads: set[str] = set()
        defined = _live_in(arm, set(), reads)
        inside = _name_counts(arm)
        outside = {n for n in _sets(arm) if self.names.get(n, 0) > inside.get(n, 0)}  # named elsewhere
        results = sorted(_sets(arm) & (outside | reads))  # reads: a value the next run may see
        params = sorted((reads | (set(results) - defined) | {self.index}) & set(self.types) | {self.index})
        scalar = _Lane(set(), None, self.index)
        scalar.index = self.index  # LANE from the function's own parameter
        body = _copies(scalar, arm)
        bools = self.bools | {x.name for x in walk(body) if isinstance(x, k.Local) and x.type == T.BOOL}
        kind = {
            n: (T.BOOL if n in bools and self.types.get(n, I32) == I32 else self.types.get(n, I32))
            for n in params
        }
        names = _sets(body) | {x.name for x in walk(body) if isinstance(x, k.Local)}
        locals_ = {
            n: (T.BOOL if n in bools and self.types.get(n) == I32 else self.types[n])
            for n in sorted(names - set(params))
            if n in self.types
        }
        rtypes = tuple(T.BOOL if r in bools and self.types[r] == I32 else self.types[r] for r in results)
        body.append(k.ReturnValues(values=[k.Local(t, r) for r, t in zip(results, rtypes, strict=True)]))
        fn = k.Function("_lane_arm", [(p, kind[p]) for p in params], rtypes, locals_, body)
        keep_text(body)  # printed here for its name, again in every module that holds it
        fn.name = "_lane_arm_" + sha1(function_text(fn).encode()).hexdigest()[:12]
        call = k.Invoke(
            func=fn.name,
            args=[k.Local(kind[p], p) for p in params],
            targets=list(results),
            results=rtypes,
        )
        inline, called = (sum(1 for _ in walk(_copies(self.lane, x))) for x in (arm, [call]))
        if inline < called + OUTLINE_MIN_SAVING:  # the call and its extracts cost about as much
            return arm
        self.functions.setdefault(fn.name, fn)
        return [call]


PACKED_OUTLINE_MIN = 400
"""A masked ``if``'s packed section (its pure arms run for a pair of lanes, with their saves and
blends) of at least this many nodes becomes a module function called under its guard (see
:func:`_outline_packed`): the oscillator's rotation restart, five polynomials, made the lane
function four times larger, and Cranelift's time follows the size of its largest function."""
PACKED_MARK = "_lane_packed"
"""The label of the block marking a packed section for :func:`_outline_packed`."""
SCRATCH = ("_lane_ok", "_lane_arg", "_lane_bits")
"""Locals the emitted code sets just before it reads them, each time (a math call's results
and arguments, a mask's bits): never live across statements of the source."""


def _size(stmts: list[k.Stmt]) -> int:
    return sum(1 for _ in walk(stmts))


def _name_counts(tree: object) -> dict[str, int]:
    """How often each local is named (read or set) in ``tree`` (the statements and expressions
    in it, not the bodies of functions it calls): one pass, so that what a part of the tree
    names elsewhere is a subtraction (the count in the whole minus the count in the part)."""
    out: dict[str, int] = {}
    stack = [tree]
    node = (k.Expr, k.Stmt)
    while stack:
        x = stack.pop()
        if type(x) is list:
            stack.extend(x)
            continue
        if not isinstance(x, node):  # an Invoke's targets, a Loop's label list ...
            continue
        if isinstance(x, (k.Local, k.SetLocal, k.Let)):
            out[x.name] = out.get(x.name, 0) + 1
        elif isinstance(x, k.Invoke):
            for t in x.targets:
                out[t] = out.get(t, 0) + 1
        for v in x.__dict__.values():
            if type(v) is list or isinstance(v, node):
                stack.append(v)
    return out


def _outline_packed(
    body: list[k.Stmt], declared: dict[str, T], functions: dict[str, k.Function]
) -> list[k.Stmt]:
    """``body`` (an emitted lane body) with each block marked :data:`PACKED_MARK` replaced by the
    call of a module function holding its statements (added to ``functions``, named by the hash
    of its text): parameters the locals it may read before setting them, results those it sets
    that the body names elsewhere or that it reads itself (a value its next run sees), all of
    the types the lane body declares. The function runs the very statements the block held, so
    each lane computes, traps and names its voice (LANE, NODE from the parameters) as inline;
    what shrinks is the lane function Cranelift compiles. Other marked blocks (none are nested)
    are unwrapped."""
    total = _name_counts(body)

    def rewrite(stmts: list[k.Stmt]) -> list[k.Stmt]:
        out: list[k.Stmt] = []
        for s in stmts:
            if isinstance(s, k.Block) and s.label == PACKED_MARK:
                out.extend(call(s.body))
                continue
            if isinstance(s, k.If):
                s.body, s.orelse = rewrite(s.body), rewrite(s.orelse)
            elif isinstance(s, (k.Loop, k.Block)):
                s.body = rewrite(s.body)
            out.append(s)
        return out

    def call(section: list[k.Stmt]) -> list[k.Stmt]:
        inside = _name_counts(section)
        reads: set[str] = set()
        defined = _live_in(section, set(), reads)
        outside = {n for n, c in inside.items() if total.get(n, 0) > c and not n.startswith(SCRATCH)}
        results = sorted(_sets(section) & (outside | reads))
        params = sorted((reads | (set(results) - defined)) & set(declared))
        if any(n not in declared for n in inside):
            return section  # a name the lane body does not declare (its caller's): keep it inline
        locals_ = {n: declared[n] for n in sorted(set(inside) - set(params))}
        rtypes = tuple(declared[r] for r in results)
        fbody = [*section, k.ReturnValues(values=[k.Local(declared[r], r) for r in results])]
        fn = k.Function("_lane_packed", [(p, declared[p]) for p in params], rtypes, locals_, fbody)
        keep_text(fbody)
        fn.name = "_lane_packed_" + sha1(function_text(fn).encode()).hexdigest()[:12]
        functions.setdefault(fn.name, fn)
        return [
            k.Invoke(
                func=fn.name, args=[k.Local(declared[p], p) for p in params], targets=results, results=rtypes
            )
        ]

    return rewrite(body)


class _Emit:
    def __init__(self, u: _Uniformity, width: int, index: str, inputs: tuple[str, ...]) -> None:
        self.u = u
        self.width = width
        self.index = index
        self.inputs = inputs
        self.once = _Lane(u.varying, None, index)
        self._per_lane: dict[int, bool] = {}
        self.packed: frozenset[str] = frozenset()
        self.masks: frozenset[str] = frozenset()
        self.packable: set[int] = set()  # ids of the SetLocals emitted as one f64x2 statement
        self.calls: dict[int, MathFunction] = {}  # those calling a math function: its f64x2 main path
        self.extra: dict[str, T] = {}  # locals the packed code adds
        self.lanes = [_Lane(u.varying, lane, index) for lane in range(width)]
        self.ifs: dict[int, _Masked] = {}  # varying ifs run on masks (see _Masks)
        self.forced: set[int] = set()  # SetLocals that run packed whatever the cost
        self.active: list[tuple[str, bool]] = []  # the masks (and arms) packed code runs under
        self.saves = 0
        self.safe: set[str] = set()  # locals holding a voice's base (see _safe_bases)
        self.outline: _Outline | None = None  # rare per-lane arms as module functions
        self.names: dict[str, int] | None = None  # how often the tree names each local
        self._uniform: tuple[_Uniformity, dict[int, tuple[k.Expr, bool]]] = (u, {})

    # ------------------------------------------------------------------ packing (f64x2)
    def plan(self, tree: list[k.Stmt], types: dict[str, T], everything: bool = False) -> None:
        """Choose the statements to pack and the locals to hold packed: a varying ``x = e`` that
        the lanes run side by side (not in per-lane control flow), whose ``e`` is clean and an
        f64 operation with an f64x2 form (or a select, or a copy), or an f64 comparison (a
        mask); the locals they set and the f64 locals they read live in V128 locals."""
        lets = {x.name for x in walk(tree) if isinstance(x, k.Let)}
        varying = self.u.varying
        chosen: list[k.SetLocal] = []
        mask_names = _mask_names(tree, self.safe)

        def visit(stmts: list[k.Stmt]) -> None:
            for s in stmts:
                if id(s) in self.forced:  # a mask, or a statement of an arm run packed
                    main = _vector_call(s.value)  # type: ignore[attr-defined]
                    if main is not None:
                        self.calls[id(s)] = main
                    chosen.append(s)  # type: ignore[arg-type]
                    continue
                if id(s) in self.ifs:
                    for arm, pure in zip((s.body, s.orelse), self.ifs[id(s)].pure, strict=True):  # type: ignore[attr-defined]
                        if pure:
                            visit(arm)
                    continue
                if not self.per_lane(s):
                    continue
                if isinstance(s, (k.If, k.Loop, k.Block)) and id(s) not in self.u.vstructs:
                    visit(s.body)
                    if isinstance(s, k.If):
                        visit(s.orelse)
                    continue
                if not isinstance(s, k.SetLocal) or s.name not in varying or s.name in lets:
                    continue
                if s.name in self.inputs:
                    continue
                main = _vector_call(s.value)
                if main is not None and types.get(s.name) == T.F64:
                    self.calls[id(s)] = main
                    chosen.append(s)
                    continue
                t, v = types.get(s.name), s.value
                if t == I32 and v.type == T.BOOL and _vector_mask(v, self.safe, mask_names):
                    chosen.append(s)
                    continue
                if not _clean(s.value):
                    continue
                vector = (isinstance(v, k.Prim) and v.op in F64X2) or isinstance(
                    v, (k.Choose, k.Local, k.Const)
                )
                if t == T.F64 and v.type == T.F64 and vector:
                    chosen.append(s)

        visit(tree)
        # Keep what pays: a statement whose f64x2 form costs more than its two scalar copies
        # (operands gathered from scalar lanes) stays scalar; a local that per-lane code in the
        # loop uses more often than packed statements do (each use an extract or a replace)
        # stays scalar. Each round only drops; the loop ends.
        outside, inside = self._scalar_uses(tree, {id(s) for s in chosen})
        pinned = {s.name for s in chosen if id(s) in self.forced}  # masks, locals blended
        while True:
            packed, masks = self._packed_locals(chosen, types, lets)
            if everything:
                break
            scalar_uses = dict(outside)  # and the candidates that stay scalar now
            kept_ids = {id(s) for s in chosen}
            for sid, uses in inside.items():
                if sid not in kept_ids:
                    for name, w in uses.items():
                        scalar_uses[name] = scalar_uses.get(name, 0.0) + w
            packed_uses: dict[str, float] = {}
            for s in chosen:
                for name in [s.name, *(x.name for x in walk(s.value) if isinstance(x, k.Local))]:
                    packed_uses[name] = packed_uses.get(name, 0) + 1
            drop = {x for x in packed | masks if scalar_uses.get(x, 0) > packed_uses.get(x, 0)} - pinned
            packed -= drop
            masks -= drop
            kept = [
                s
                for s in chosen
                if id(s) in self.forced
                or s.name not in drop
                and (
                    id(s) in self.calls
                    or self._cost(s.value, s.name in masks, packed, masks)
                    <= self._scalar_cost(s, packed, masks)
                )
            ]
            if len(kept) == len(chosen):
                break
            chosen = kept
        self.packed = frozenset(packed)
        self.masks = frozenset(masks)
        self.packable = {id(s) for s in chosen}
        self.lanes = [_Lane(varying, lane, self.index, self.packed, self.masks) for lane in range(self.width)]

    def _packed_locals(
        self, chosen: list[k.SetLocal], types: dict[str, T], lets: set[str]
    ) -> tuple[set[str], set[str]]:
        """The locals chosen statements set (f64 values, masks) and the f64 locals they read."""
        packed = {s.name for s in chosen if types[s.name] == T.F64}
        masks = {s.name for s in chosen if types[s.name] == I32}
        for s in chosen:
            for x in walk(s.value):
                if isinstance(x, k.Local) and x.name in self.u.varying and types.get(x.name) == T.F64:
                    if x.name not in lets and x.name not in self.inputs:
                        packed.add(x.name)
        return packed, masks

    def _scalar_uses(
        self, tree: list[k.Stmt], candidates: set[int]
    ) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
        """How often per-lane code in loops reads or sets each local: a use counts 1 in a loop's
        straight line, a quarter per enclosing if/else branch (taken now and then: a coefficient
        update, a phase wrap), nothing outside loops (once a block). Outside the candidate
        statements, and in each of them (what it adds when it stays scalar): one walk."""
        outside: dict[str, float] = {}
        inside: dict[int, dict[str, float]] = {}

        def visit(x: object, weight: float, uses: dict[str, float]) -> None:
            if isinstance(x, list):
                for y in x:
                    visit(y, weight, uses)
                return
            if not isinstance(x, (k.Expr, k.Stmt)):
                return
            if id(x) in candidates:
                uses = inside.setdefault(id(x), {})
            if isinstance(x, (k.Local, k.SetLocal)):
                uses[x.name] = uses.get(x.name, 0.0) + weight
            elif isinstance(x, k.Invoke):
                for t in x.targets:
                    uses[t] = uses.get(t, 0.0) + weight
            if isinstance(x, k.Loop):  # the sample loop; a loop under an if (events) keeps its weight
                weight = 1.0 if weight == 0.0 else weight
            if isinstance(x, k.If):
                if id(x) not in self.ifs:
                    visit(x.cond, weight, uses)
                visit(x.body, weight / 4, uses)
                visit(x.orelse, weight / 4, uses)
                return
            for v in x.__dict__.values():
                if isinstance(v, (list, k.Expr, k.Stmt)):
                    visit(v, weight, uses)

        visit(tree, 0.0, outside)
        return outside, inside

    def _scalar_cost(self, s: k.SetLocal, packed: set[str], masks: set[str]) -> int:
        """Operations of two lanes' scalar copies of ``s``: its operations, an extract for each
        read of a packed local, a replace if it sets one."""
        reads = sum(isinstance(x, k.Local) and (x.name in packed or x.name in masks) for x in walk(s.value))
        return 2 * (_ops(s.value) + reads + (s.name in packed or s.name in masks))

    def _cost(self, e: k.Expr, mask: bool, packed: set[str], masks: set[str]) -> int:
        """Operations of ``e``'s f64x2 form (or mask form) with these locals packed."""
        if isinstance(e, k.Local) and e.name in (masks if mask else packed):
            return 0
        if isinstance(e, k.Const):
            return 0
        if self.uniform(e):
            return 2 if mask else 1
        if isinstance(e, k.Prim):
            table = (F64X2_COMPARE if mask else F64X2) if not (mask and e.op in MASK_LOGIC) else MASK_LOGIC
            if e.op in table:
                args_mask = mask and e.op in MASK_LOGIC
                return 1 + sum(self._cost(a, args_mask, packed, masks) for a in e.args)
            if mask and e.op == Op.BOOL_NOT:
                return 1 + self._cost(e.args[0], True, packed, masks)
        if mask and isinstance(e, k.Logical):
            return 1 + self._cost(e.left, True, packed, masks) + self._cost(e.right, True, packed, masks)
        if mask and isinstance(e, k.Choose):
            return 1 + sum(self._cost(x, True, packed, masks) for x in (e.cond, e.a, e.b))
        if isinstance(e, k.Choose) and not mask and e.type == T.F64:
            return (
                1
                + sum(self._cost(x, False, packed, masks) for x in (e.a, e.b))
                + self._cost(e.cond, True, packed, masks)
            )
        return 2 * _ops(e) + (6 if mask else 2)  # both lanes scalar, then combined

    def uniform(self, e: k.Expr) -> bool:
        """Whether ``e`` is the same in every lane (asked of each operand at each level of a
        packed expression: kept per node, with the uniformity it was asked of)."""
        if self._uniform[0] is not self.u:
            self._uniform = (self.u, {})
        seen = self._uniform[1]
        got = seen.get(id(e))
        if got is None or got[0] is not e:
            got = seen[id(e)] = (e, not self.u.expr(e, False, []))
        return got[1]

    def gather(self, e: k.Expr, g: int, splat: Op, replace: Op, convert=lambda x: x) -> k.Expr:
        a, b = (convert(lane.expr(e)) for lane in self.lanes[2 * g : 2 * g + 2])
        return _prim(replace, _prim(splat, a), b)

    def pack(self, e: k.Expr, g: int) -> k.Expr:
        """Lanes 2g and 2g + 1's values of the f64 expression ``e`` as one f64x2."""
        if isinstance(e, k.Const):
            return k.v128_f64x2(float(e.value), float(e.value))
        if isinstance(e, k.Local) and e.name in self.packed:
            return _vec(e.name, g)
        if self.uniform(e):
            return _prim(Op.F64X2_SPLAT, self.once.expr(e))
        if isinstance(e, k.Prim) and e.op in F64X2:
            return _prim(F64X2[e.op], *(self.pack(a, g) for a in e.args))
        if isinstance(e, k.Choose) and e.type == T.F64:
            return _prim(Op.V128_BITSELECT, self.pack(e.a, g), self.pack(e.b, g), self.mask(e.cond, g))
        return self.gather(e, g, Op.F64X2_SPLAT, Op.F64X2_REPLACE_LANE1)

    def mask(self, e: k.Expr, g: int) -> k.Expr:
        """Lanes 2g and 2g + 1's values of the boolean ``e`` as a mask (all ones where it holds)."""
        if isinstance(e, k.Local) and e.name in self.masks:
            return _vec(e.name, g)
        if self.uniform(e):
            return _prim(Op.I64X2_SPLAT, _all_ones(self.once.expr(e)))
        if isinstance(e, k.Prim) and e.op in F64X2_COMPARE:
            return _prim(F64X2_COMPARE[e.op], *(self.pack(a, g) for a in e.args))
        if isinstance(e, k.Prim) and e.op in MASK_LOGIC:
            return _prim(MASK_LOGIC[e.op], *(self.mask(a, g) for a in e.args))
        if isinstance(e, k.Prim) and e.op == Op.BOOL_NOT:
            return _prim(Op.V128_NOT, self.mask(e.args[0], g))
        if isinstance(e, k.Logical) and _spec_packed(e.right, self.safe):
            op = Op.V128_AND if e.op == "and" else Op.V128_OR
            return _prim(op, self.mask(e.left, g), self.mask(e.right, g))
        if isinstance(e, k.Choose) and e.type == T.BOOL:
            return _prim(Op.V128_BITSELECT, self.mask(e.a, g), self.mask(e.b, g), self.mask(e.cond, g))
        return self.gather(e, g, Op.I64X2_SPLAT, Op.I64X2_REPLACE_LANE1, _all_ones)

    def packed_stmts(self, s: k.SetLocal, groups: Sequence[int] | None = None) -> list[k.Stmt]:
        """One f64x2 statement per pair of lanes (of ``groups``: all), side by side."""
        groups = range(self.width // 2) if groups is None else groups
        if id(s) in self.calls:
            return self.packed_call(s, self.calls[id(s)], groups)
        out: list[k.Stmt] = []
        for g in groups:
            value = self.mask(s.value, g) if s.name in self.masks else self.pack(s.value, g)
            out.append(k.SetLocal(site=s.site, name=_vec_name(s.name, g), value=value))
        return out

    def packed_call(self, s: k.SetLocal, main: MathFunction, groups: Sequence[int]) -> list[k.Stmt]:
        """``x = f(args)`` for a pair of lanes: the f64x2 main path of ``f``, then, for each lane
        it did not compute (its bit clear), the scalar ``f`` after storing LANE: lane 0 first, as
        the voices one by one would call it (the same bits, the same error from the same lane).
        Under masks (an arm run packed), only for a lane that takes the arm."""
        call: k.CallFn = s.value  # type: ignore[assignment]
        ok = "_lane_ok"
        self.extra[ok] = I32
        out: list[k.Stmt] = []
        for g in groups:
            args: list[k.Expr] = []
            for j, a in enumerate(call.args):
                name = f"_lane_arg{j}"
                self.extra[_vec_name(name, g)] = T.V128
                out.append(k.SetLocal(site=s.site, name=_vec_name(name, g), value=self.pack(a, g)))
                args.append(_vec(name, g))
            target = _vec_name(s.name, g)
            out.append(
                k.Invoke(
                    site=s.site, func=main.wasm_name, args=args, targets=[target, ok], results=(T.V128, I32)
                )
            )
            for sub in range(2):
                lane = self.lanes[2 * g + sub]
                scalar = k.CallFn(
                    T.F64,
                    call.func,
                    [
                        _prim(_lane_op("F64X2_EXTRACT_LANE", sub), _vec(f"_lane_arg{j}", g))
                        for j in range(len(args))
                    ],
                )
                missed: k.Expr = _prim(
                    Op.I32_EQZ, _prim(Op.I32_AND, k.Local(I32, ok), k.Const(I32, 1 << sub))
                )
                for name, taken in self.active:
                    missed = _prim(Op.BOOL_AND, missed, self.lane_bit(name, g, sub, taken))
                out.append(k.If(s.site, missed, [lane.lane_store, lane.put(s.name, scalar, s.site)], []))
        return out

    def per_lane(self, s: k.Stmt) -> bool:
        """Whether ``s`` does anything that differs between lanes or must happen once per lane."""
        got = self._per_lane.get(id(s))
        if got is None:
            got = self._per_lane[id(s)] = self._differs(s)
        return got

    def _differs(self, s: k.Stmt) -> bool:  # noqa: C901 - one dispatch
        u = self.u
        for x in walk(s):
            if isinstance(x, k.Local) and x.name in u.varying:
                return True
            if isinstance(x, (k.SetLocal, k.Let)) and x.name in u.varying:
                return True
            if isinstance(x, (k.If, k.Loop, k.Block)) and id(x) in u.vstructs:
                return True
            if isinstance(x, k.Load) and u.shared(x):
                return True
            if isinstance(x, k.Store):
                at = _const_addr(x)
                if at is None:
                    if self.u.expr(x.addr, False, []):
                        return True
                    raise NotLaneable("a store to a shared address that is not a constant")
                if at not in IDEMPOTENT_SLOTS:
                    return True
            if isinstance(x, k.Invoke) and (
                not _pure_function(x.func) or any(t in u.varying for t in x.targets)
            ):
                return True
            if isinstance(x, k.CallFn) and not _pure_function(x.func):
                return True
            if isinstance(x, (k.MemCopy, k.SetGlobal, k.GetGlobal)):
                return True
        return False

    def body(self, stmts: list[k.Stmt]) -> list[k.Stmt]:
        """Statements in a uniform context: uniform ones once, varying ones per lane side by side,
        uniform structures around varying work kept as one."""
        out: list[k.Stmt] = []
        for s in stmts:
            if not self.per_lane(s):
                out.extend(self.once.copy(s))
            elif isinstance(s, (k.If, k.Loop, k.Block)) and id(s) not in self.u.vstructs:
                out.extend(self.structure(s))
            elif id(s) in self.packable:
                out.extend(self.packed_stmts(s))  # type: ignore[arg-type]
            elif id(s) in self.ifs:
                for g in range(self.width // 2):
                    out.extend(self.masked_if(s, g))  # type: ignore[arg-type]
            else:
                s = self.outlined(s)
                for lane in self.lanes:
                    out.extend(lane.copy(s))
        return out

    def outlined(self, s: k.Stmt) -> k.Stmt:
        """A varying ``if`` run lane by lane with its arms outlined (its test stays inline)."""
        if self.outline is None or not isinstance(s, k.If):
            return s
        return k.If(s.site, s.cond, self.outline.arm(s.body), self.outline.arm(s.orelse))

    def arm(self, arm: list[k.Stmt]) -> list[k.Stmt]:
        return arm if self.outline is None else self.outline.arm(arm)

    # ------------------------------------------------------------------ masked ifs
    def lane_bit(self, mask: str, g: int, sub: int, taken: bool = True) -> k.Expr:
        """Whether lane ``2g + sub`` is set in the mask local ``mask`` (``taken`` False: clear)."""
        lane = _prim(_lane_op("I64X2_EXTRACT_LANE", sub), _vec(mask, g))
        return _prim(Op.I64_NE if taken else Op.I64_EQ, lane, k.Const(T.I64, 0))

    def packed_arm(self, arm: list[k.Stmt], g: int) -> list[k.Stmt]:
        """An arm of pure statements for both lanes of pair ``g`` (see :class:`_Masks`)."""
        out: list[k.Stmt] = []
        for s in arm:
            if id(s) in self.ifs:
                out.extend(self.masked_if(s, g))  # type: ignore[arg-type]
            elif isinstance(s, k.SetLocal):
                out.extend(self.packed_stmts(s, [g]))
            elif isinstance(s, k.Store) and isinstance(s.value, k.Local):
                # NODE = nb (a math call's note): the pair's first lane's base; the node's
                # voice comes from LANE, which the per-lane fallback stores (see fault_node)
                out.extend(self.lanes[2 * g].copy(s))
            else:  # a header note of constants
                out.extend(self.once.copy(s))
        return out

    def masked_if(self, s: k.If, g: int) -> list[k.Stmt]:
        """A varying ``if`` on its mask, for pair ``g``. A pure arm runs packed for both lanes
        when a lane takes it (``any_true``) and the locals it sets that are seen afterwards are
        blended with the mask (``bitselect``, :meth:`blended`): the lane that did not take it
        keeps its values. A large packed section (a rare restart with several polynomials) is
        marked for a module function of its own (:func:`_outline_packed`). The other arms run
        lane by lane under the mask's bits, their locals staying packed (an extract and a
        replace where the scalar code reads and sets them); no lane taking them: skipped."""
        info = self.ifs[id(s)]
        arms = [
            (arm, taken, pure)
            for arm, taken, pure in ((s.body, True, info.pure[0]), (s.orelse, False, info.pure[1]))
            if arm
        ]
        packed = [(arm, taken) for arm, taken, pure in arms if pure]
        scalar = [(arm, taken) for arm, taken, pure in arms if not pure]
        out: list[k.Stmt] = []
        if packed:
            section = self.packed_section(s, info, packed, g)
            if not self.active and self.outline is not None and _size(section) >= PACKED_OUTLINE_MIN:
                if len(packed) == 1:  # the call under the guard: nothing per sample but the test
                    (guarded,) = section
                    guarded.body = [k.Block(site=s.site, label=PACKED_MARK, body=guarded.body)]  # type: ignore[attr-defined]
                else:  # an if/else: one of the arms runs for some lane anyway
                    section = [k.Block(site=s.site, label=PACKED_MARK, body=section)]
            out.extend(section)
        if scalar:
            bits = "_lane_bits"
            self.extra[bits] = I32
            out.append(k.SetLocal(site=s.site, name=bits, value=_prim(Op.I64X2_BITMASK, _vec(info.mask, g))))
            lanes = self.lanes[2 * g : 2 * g + 2]
            if len(scalar) == 2:  # each lane runs one of the arms
                for sub, lane in enumerate(lanes):
                    bit = _prim(
                        Op.I32_NE,
                        _prim(Op.I32_AND, k.Local(I32, bits), k.Const(I32, 1 << sub)),
                        k.Const(I32, 0),
                    )
                    out.append(
                        k.If(s.site, bit, _copies(lane, self.arm(s.body)), _copies(lane, self.arm(s.orelse)))
                    )
            else:
                ((arm, taken),) = scalar
                inner: list[k.Stmt] = []
                for sub, lane in enumerate(lanes):
                    bit = _prim(Op.I32_AND, k.Local(I32, bits), k.Const(I32, 1 << sub))
                    bit = _prim(Op.I32_NE if taken else Op.I32_EQ, bit, k.Const(I32, 0))
                    inner.append(k.If(s.site, bit, _copies(lane, self.arm(arm)), []))
                none = _prim(Op.I32_NE, k.Local(I32, bits), k.Const(I32, 0 if taken else 3))
                out.append(k.If(s.site, none, inner, []))
        return out

    def blended(self, s: k.If, arms: list[list[k.Stmt]]) -> list[str]:
        """The locals the packed ``arms`` of ``s`` set that are saved and blended: those the body
        names outside ``s`` (seen after it, or again at the next sample) and those an arm may
        read before it sets them (a value from before the ``if``: for the lane that did not take
        it, for the other arm, for the arm's next run). An arm's own temporaries (the terms of
        an inlined polynomial) are set before they are read and named nowhere else: what a lane
        that did not take the arm computed in them is never seen."""
        sets = sorted({x.name for arm in arms for x in walk(arm) if isinstance(x, k.SetLocal)})
        if self.names is None:  # no counts of the body: all of them
            return sets
        reads: set[str] = set()
        for arm in (s.body, s.orelse):  # a per-lane other arm reads what the packed one left
            _live_in(arm, set(), reads)
        inside = _name_counts([s])
        return [x for x in sets if x in reads or self.names.get(x, 0) > inside.get(x, 0)]

    def packed_section(
        self, s: k.If, info: _Masked, packed: list[tuple[list[k.Stmt], bool]], g: int
    ) -> list[k.Stmt]:
        """The pure arms of the masked ``if`` ``s`` run packed for pair ``g``, each under its
        guard, what they set blended with the mask (see :meth:`masked_if`)."""
        out: list[k.Stmt] = []
        targets = self.blended(s, [arm for arm, _ in packed])
        self.saves += 1
        old = {x: f"_lane_old{self.saves}_{x}" for x in targets}
        then = {x: f"_lane_then{self.saves}_{x}" for x in targets}
        saves: list[k.Stmt] = []
        for x in targets:
            self.extra[_vec_name(old[x], g)] = T.V128
            saves.append(k.SetLocal(site=s.site, name=_vec_name(old[x], g), value=_vec(x, g)))
        if len(packed) == 2:  # both arms run from the old values: saved before either
            out += saves
        for arm, taken in packed:
            self.active.append((info.mask, taken))
            try:
                run = self.packed_arm(arm, g)
            finally:
                self.active.pop()
            guard = (
                _prim(Op.V128_ANY_TRUE, _vec(info.mask, g))
                if taken
                else _prim(Op.I32_EQZ, _prim(Op.I64X2_ALL_TRUE, _vec(info.mask, g)))
            )
            if len(packed) == 2 and taken:  # both arms: keep the then values, restore for else
                for x in targets:
                    self.extra[_vec_name(then[x], g)] = T.V128
                    out.append(k.SetLocal(site=s.site, name=_vec_name(then[x], g), value=_vec(x, g)))
                run += [
                    k.SetLocal(site=s.site, name=_vec_name(then[x], g), value=_vec(x, g)) for x in targets
                ]
                run += [k.SetLocal(site=s.site, name=_vec_name(x, g), value=_vec(old[x], g)) for x in targets]
            elif len(packed) == 1:  # saved only when the arm runs, blended after it
                run[:0] = saves
                for x in targets:
                    a, b = (x, old[x]) if taken else (old[x], x)
                    blend = _prim(Op.V128_BITSELECT, _vec(a, g), _vec(b, g), _vec(info.mask, g))
                    run.append(k.SetLocal(site=s.site, name=_vec_name(x, g), value=blend))
            out.append(k.If(s.site, guard, run, []))
        if len(packed) == 2:
            out += [
                k.SetLocal(
                    site=s.site,
                    name=_vec_name(x, g),
                    value=_prim(Op.V128_BITSELECT, _vec(then[x], g), _vec(x, g), _vec(info.mask, g)),
                )
                for x in targets
            ]
        return out

    def structure(self, s: k.If | k.Loop | k.Block) -> list[k.Stmt]:
        """A uniform structure around varying work: one structure, its body interleaved."""
        if isinstance(s, k.If):
            new = k.If(s.site, self.once.expr(s.cond), self.body(s.body), self.body(s.orelse))
            if _calls_that_may_trap(k.ExprStmt(k.NOSITE, s.cond)):  # lane 0 meets it first
                return [self.once.lane_store, new]
            return [new]
        if isinstance(s, k.Loop):
            if s.cond is not None and _calls_that_may_trap(k.ExprStmt(k.NOSITE, s.cond)):
                raise NotLaneable("a loop around varying work whose condition calls what may trap")
            cond = None if s.cond is None else self.once.expr(s.cond)
            return [k.Loop(site=s.site, label=s.label, cond=cond, body=self.body(s.body))]
        return [k.Block(site=s.site, label=s.label, body=self.body(s.body))]


# =========================================================================== the pass
def _local_types(body: list[k.Stmt], locals_: dict[str, T], inputs: tuple[str, ...]) -> dict[str, T]:
    types = dict(locals_)
    for x in walk(body):
        if isinstance(x, k.Local):
            types.setdefault(x.name, x.type)
        elif isinstance(x, k.SetLocal):
            types.setdefault(x.name, x.value.type)
        elif isinstance(x, k.Let):
            types.setdefault(x.name, x.value.type)
        elif isinstance(x, k.Invoke):
            for t, rt in zip(x.targets, x.results, strict=False):
                types.setdefault(t, rt)
    for name in inputs:
        types.setdefault(name, I32)
    return {n: (I32 if t == T.BOOL else t) for n, t in types.items()}


def lanes(
    body: list[k.Stmt],
    locals_: dict[str, T],
    width: int = 2,
    **options: object,
) -> LaneBody:
    """``body`` (primitive level, written for one voice) for ``width`` voices at once; see the
    module docstring and :func:`_lanes` for the options. Raises :class:`NotLaneable`.

    Python's cyclic collector is paused while the pass runs (if it was on): the pass allocates
    some 10^5 nodes and nearly all of them die when it ends (trees, copies, acyclic), but their
    number starts a full collection halfway, which scans the whole heap (measured 50-90 ms of
    a 150 ms first compile of voices64 in a fresh process, the pass itself about 60 ms). What
    survives (the lane body) is counted as usual afterwards."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _lanes(body, locals_, width, **options)  # type: ignore[arg-type]
    finally:
        if paused:
            gc.enable()


def _lanes(
    body: list[k.Stmt],
    locals_: dict[str, T],
    width: int = 2,
    *,
    lane_inputs: Sequence[str] = LANE_INPUTS,
    index: str = "v",
    selects: bool = True,
    pack: bool | str = True,
    outline: bool = True,
) -> LaneBody:
    """``body`` (primitive level, written for one voice) for ``width`` voices at once; see the
    module docstring. ``lane_inputs``: the I32 locals or parameters that differ between voices
    (the voice's base address or its nodes' bases, its index ``index``, addresses of
    voice-specific sources); the lane body reads ``<name>__<L>`` for each instead, which the
    caller sets. ``selects``: small pure if/else to selects; ``pack``: two lanes' straight-line
    f64 work as f64x2 (lanes in pairs: an even ``width``) where it pays; ``"all"``: wherever it can (for tests: every
    border between packed and per-lane code). Raises :class:`NotLaneable`."""
    if width < 1:
        raise ValueError(f"lanes: width must be at least 1, got {width}")
    inputs = tuple(lane_inputs)
    if index not in inputs:
        raise ValueError(f"lanes: the voice index {index!r} is not among the lane inputs {inputs}")
    tree = expand(body)
    if selects or pack:
        tree = straighten(tree)
    types = _local_types(tree, locals_, inputs)
    u = _Uniformity(tree, inputs)
    if selects:
        sel = _Selects(u, types, _safe_bases(tree, inputs))
        tree = sel.stmts(tree)
        if sel.converted:
            u = _Uniformity(tree, inputs)  # the selects' conditions are new locals
    emit = _Emit(u, width, index, inputs)
    if pack and width % 2 == 0:
        masks = _Masks(u, types, tree, inputs)
        tree = masks.stmts(tree)
        if masks.ifs:
            u = emit.u = _Uniformity(tree, inputs)  # the mask locals are new
            emit.once = _Lane(u.varying, None, index)
            emit.lanes = [_Lane(u.varying, lane, index) for lane in range(width)]
        emit.ifs, emit.forced, emit.safe = masks.ifs, masks.forced, masks.safe
        emit.plan(tree, types, everything=pack == "all")
    emit.names = _name_counts(tree)
    if outline:
        emit.outline = _Outline(tree, types, index, emit.lanes[0], emit.names)
    out = emit.body(tree)
    new_locals: dict[str, T] = {}
    for name, t in types.items():
        if name in u.varying:
            for lane in range(width):
                new_locals[lane_name(name, lane)] = t
            if name in emit.packed or name in emit.masks:
                for g in range(width // 2):
                    new_locals[_vec_name(name, g)] = T.V128
        elif name in locals_ or name.startswith("_lane_"):  # others are the caller's (``n``)
            new_locals[name] = t
    new_locals.update(emit.extra)
    # BOOL is an i32 word to the planning above; declared as the body reads it (the validator
    # tells the two apart, WebAssembly does not)
    for x in walk(out):
        if isinstance(x, k.Local) and x.type == T.BOOL and new_locals.get(x.name) == I32:
            new_locals[x.name] = T.BOOL
    packed_arms: dict[str, k.Function] = {}
    out = _outline_packed(out, {**locals_, **new_locals}, packed_arms)
    used = _sets(out) | {x.name for x in walk(out) if isinstance(x, k.Local)}
    used |= {lane_name(name, lane) for name in inputs for lane in range(width)}  # the caller sets them
    new_locals = {n: t for n, t in new_locals.items() if n in used}  # outlined arms took some
    mains = sorted({m.wasm_name for sid, m in emit.calls.items() if sid in emit.packable})
    functions = functions_for(mains) if mains else []
    if emit.outline is not None:
        functions += emit.outline.functions.values()
    functions += packed_arms.values()
    keep_text(out)  # the lane function's body: printed once for every module that holds it
    return LaneBody(out, new_locals, functions)
