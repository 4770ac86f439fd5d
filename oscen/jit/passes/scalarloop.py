"""The fast sample loop for scalar segments: node code opened up so its rare ``if``\\ s leave the loop.

Why: :mod:`.fastpath` gives a sample loop a straight fast copy that leaves for the full body at
the first rare ``if`` that fires (a ramp, the oscillator's restart from the polynomial, a
biquad's coefficient update, the phase out of range), but only for ``if``\\ s that are statements
of the loop's body itself. In a scalar segment each node's step is an
:class:`~..kernel.Instance` of its variant's :class:`~..kernel.Code` whose body is one return
block (``block $v0_ret2 ...``, an inlined ``return``'s target): its ``if``\\ s sit inside it, and
the loop keeps the oscillator's five polynomials and the biquad's recomputation call inline.

So, before the split, each such Instance is *opened*: when its Code's body is one
:class:`~..kernel.Block` that nothing leaves early (no ``Exit`` or ``Next`` names its label, but
a last ``Exit`` of it), the block's statements become the loop's statements, as pieces that
keep the Instance's renames, state syncs and trap numbering:

* a run of plain statements: one Instance of a Code holding them (same locals, same sites);
* an ``if`` with no ``else`` whose condition is pure once short-circuit ``and``/``or`` of pure,
  trap-free sides are read as bit operations (both sides evaluated: same value, nothing can
  trap; a load on the right is allowed only at a local's or a constant address, where the
  left cannot be what keeps it in bounds): an ``If`` at the loop's level, its condition renamed,
  its arm an Instance of a Code;
* an ``if`` whose condition is an inlined predicate (a ``Seq``): the predicate's statements as a
  piece, then the ``if`` on its value;
* an ``if`` on a constant (``if self.pm != 0.0`` with pm unconnected): its taken arm, opened.

The pieces run the statements the block ran, in the same order, with the same names: the
segment computes the same bits. The split of a Code into pieces is made once per Code (kept in
``Code.derived``, as the printer keeps its text) and every node of the variant shares it.
"""

from __future__ import annotations

from typing import Any

from .. import kernel as k
from ..ops import Op
from .liveness import _TRAPPING, _Unknown, _uses
from .walk import walk

_KEY = "scalarloop.pieces"
_SYNCS = "scalarloop.syncs"
_STEPS = "scalarloop.steps"

# A piece: ("run", Code) statements as they were, or ("if", cond, Code) a rare if at loop level.
_Piece = tuple[str, Any] | tuple[str, k.Expr, k.Code]


def _references(label: str, stmts: list[k.Stmt]) -> bool:
    return any(type(x) in (k.Exit, k.Next) and x.label == label for x in walk(stmts))  # type: ignore[attr-defined]


def _pure(e: k.Expr) -> bool:
    try:
        return _uses(e, set())
    except _Unknown:
        return False


def _safe_right(e: k.Expr) -> bool:
    """Whether ``e`` may be evaluated where it would not have been (a short-circuit right side)."""
    for x in walk(e):
        if type(x) is k.Load and type(x.addr) not in (k.Const, k.Local):  # type: ignore[attr-defined]
            return False
    return True


def eager(e: k.Expr) -> k.Expr | None:
    """``e`` as a pure expression (``Logical`` as ``BOOL_AND``/``BOOL_OR`` of pure sides), or None."""
    if type(e) is k.Logical:
        left, right = eager(e.left), eager(e.right)  # type: ignore[attr-defined]
        if left is None or right is None or not _safe_right(right):
            return None
        op = Op.BOOL_AND if e.op == "and" else Op.BOOL_OR  # type: ignore[attr-defined]
        return k.Prim(k.T.BOOL, op, [left, right])
    if type(e) is k.Prim and any(type(a) is k.Logical for a in e.args):  # type: ignore[attr-defined]
        # ``not (a and b)``: the oscillator's guard of its rare floor, on the increment only
        args = [eager(a) for a in e.args]  # type: ignore[attr-defined]
        if any(a is None for a in args):
            return None
        e = k.Prim(e.type, e.op, args)  # type: ignore[attr-defined,arg-type]
    return e if _pure(e) else None


def _subst(e: k.Expr, env: dict[str, k.Expr]) -> k.Expr:
    """``e`` with the locals ``env`` names replaced by their expressions (pure expressions only)."""
    t = type(e)
    if t is k.Local:
        return env.get(e.name, e)  # type: ignore[attr-defined]
    if t is k.Prim:
        return k.Prim(e.type, e.op, [_subst(a, env) for a in e.args])  # type: ignore[attr-defined]
    if t is k.Logical:
        return k.Logical(e.type, e.op, _subst(e.left, env), _subst(e.right, env))  # type: ignore[attr-defined]
    if t is k.Choose:
        return k.Choose(e.type, _subst(e.cond, env), _subst(e.a, env), _subst(e.b, env))  # type: ignore[attr-defined]
    if t is k.Load:
        return k.Load(e.type, _subst(e.addr, env), e.offset)  # type: ignore[attr-defined]
    return e


def _inline(stmts: list[k.Stmt], env: dict[str, k.Expr]) -> bool:
    """Add to ``env`` what each local ``stmts`` set holds after them, as a pure expression of
    what they read; False when they are not only such sets and inlined helpers' return blocks."""
    for s in stmts:
        t = type(s)
        if t is k.SetLocal:
            value = eager(_subst(s.value, env))  # type: ignore[attr-defined]
            if value is None:
                return False
            env[s.name] = value  # type: ignore[attr-defined]
        elif t is k.Block:
            body = s.body  # type: ignore[attr-defined]
            if (
                not body
                or type(body[-1]) is not k.Exit
                or body[-1].label != s.label
                or body[-1].cond is not None
            ):  # type: ignore[attr-defined]
                return False
            if _references(s.label, body[:-1]) or not _inline(body[:-1], env):  # type: ignore[attr-defined]
                return False
        else:
            return False
    return True


def _read_elsewhere(names: set[str], seq: k.Seq, body: list[k.Stmt]) -> bool:
    """Whether a local in ``names`` may be read outside ``seq``: read in ``body`` outside it, or
    a node's state or parameter local (``S_``/``P_``: stored after the loop, read by the next
    sample and by the node's other code)."""
    if any(n.startswith(("S_", "P_")) for n in names):
        return True
    inside = {id(x) for x in walk(seq) if type(x) is k.Local}
    return any(type(x) is k.Local and x.name in names and id(x) not in inside for x in walk(body))  # type: ignore[attr-defined]


def _split(code: k.Code) -> list[_Piece] | None:
    """``code``'s body as pieces (see the module docstring), or None when it is not one block
    nothing leaves early."""
    body = code.body
    if len(body) != 1 or type(body[0]) is not k.Block:
        return None
    block = body[0]
    stmts = list(block.body)  # type: ignore[attr-defined]
    last = stmts[-1] if stmts else None
    if type(last) is k.Exit and last.label == block.label and last.cond is None:  # type: ignore[attr-defined]
        stmts.pop()
    if _references(block.label, stmts):  # type: ignore[attr-defined]
        return None
    pieces: list[_Piece] = []
    run: list[k.Stmt] = []

    def flush() -> None:
        if run:
            pieces.append(("run", k.Code(list(run), {}, code.sites)))
            run.clear()

    def add(s: k.Stmt) -> None:
        if type(s) is not k.If:
            run.append(s)
            return
        cond = s.cond  # type: ignore[attr-defined]
        if type(cond) is k.Const:
            for x in s.body if cond.value else s.orelse:  # type: ignore[attr-defined]
                add(x)
            return
        if type(cond) is k.Seq and not s.orelse:  # type: ignore[attr-defined]
            # an inlined predicate: its statements, then the if on its value; the value as one
            # expression of what the statements read where it can be (so that the if can be
            # seen to be invariant), the statements dropped when nothing else reads what they set
            env: dict[str, k.Expr] = {}
            value = _subst(cond.value, env) if _inline(cond.body, env) else None  # type: ignore[attr-defined]
            pure = None if value is None else eager(value)
            if pure is None or _read_elsewhere(set(env), cond, code.body):
                for x in cond.body:  # type: ignore[attr-defined]
                    add(x)
                # the if then runs after them: its condition may read only what they leave
                # (a predicate that counts, ``self.count += 1; return self.count > 4``, would
                # otherwise count twice), so the value itself unless they set nothing it reads
                reads = None if pure is None else _reads(pure)
                if reads is None or reads & env.keys():
                    pure = eager(cond.value)  # type: ignore[attr-defined]
            if pure is None:
                add(k.If(site=s.site, cond=cond.value, body=s.body, orelse=[]))  # type: ignore[attr-defined]
            else:
                flush()
                pieces.append(("if", pure, k.Code(s.body, {}, code.sites)))  # type: ignore[attr-defined]
            return
        pure = None if s.orelse else eager(cond)  # type: ignore[attr-defined]
        if pure is None:
            run.append(s)
            return
        flush()
        pieces.append(("if", pure, k.Code(s.body, {}, code.sites)))  # type: ignore[attr-defined]

    for s in stmts:
        add(s)
    flush()
    return pieces


def _pieces(code: k.Code) -> list[_Piece] | None:
    if _KEY not in code.derived:
        code.derived[_KEY] = _split(code)
    return code.derived[_KEY]


class _Rename:
    """Local names of a pure expression renamed as the printer renames an Instance's text."""

    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames

    def expr(self, e: k.Expr) -> k.Expr:
        t = type(e)
        if t is k.Local:
            return k.Local(e.type, self.renames.get(e.name, e.name))  # type: ignore[attr-defined]
        if t is k.Prim:
            return k.Prim(e.type, e.op, [self.expr(a) for a in e.args])  # type: ignore[attr-defined]
        if t is k.Choose:
            return k.Choose(e.type, self.expr(e.cond), self.expr(e.a), self.expr(e.b))  # type: ignore[attr-defined]
        if t is k.Load:
            return k.Load(e.type, self.expr(e.addr), e.offset)  # type: ignore[attr-defined]
        return e  # Const, GetGlobal


def open_instance(inst: k.Instance) -> list[k.Stmt] | None:
    """The statements replacing ``inst`` in the loop (see the module docstring), or None."""
    pieces = _pieces(inst.code)
    if pieces is None:
        return None

    def like(code: k.Code) -> k.Instance:
        if not _has_syncs(code):  # no marks: the piece prints no state syncs
            return k.Instance(site=inst.site, code=code, renames=inst.renames)
        return k.Instance(
            site=inst.site, code=code, renames=inst.renames, flush=inst.flush, reload=inst.reload
        )

    out: list[k.Stmt] = []
    rename = _Rename(inst.renames)
    for piece in pieces:
        if piece[0] == "run":
            out.append(like(piece[1]))
        else:
            _, cond, arm = piece
            out.append(k.If(site=inst.site, cond=rename.expr(cond), body=[like(arm)], orelse=[]))  # type: ignore[arg-type]
    return out


def open_loop(loop: k.Loop) -> k.Loop:
    """``loop`` with its body's Instances opened where they can be."""
    body: list[k.Stmt] = []
    for s in loop.body:
        got = open_instance(s) if type(s) is k.Instance else None
        body.extend([s] if got is None else got)
    return k.Loop(site=loop.site, label=loop.label, cond=loop.cond, body=body)


class _Control:
    """What one walk of a sample loop's (opened) body finds of its control flow: the labels of
    its blocks and loops, whether a ``Next`` to the loop's own label is in it, and which of its
    statements hold an ``Exit`` or ``Next`` to that label below their top (an outlined fast
    loop can only answer the loop's exits at its top level). One walk: the analysis asked these
    in three walks of the same statements."""

    def __init__(self, body: list[k.Stmt], label: str) -> None:
        self.labels: set[str] = set()
        self.next = False
        self.deep: set[int] = set()
        for j, s in enumerate(body):
            for x in _shallow(s):  # not into an Instance's syncs: stores and loads only
                t = type(x)
                if t is k.Block or t is k.Loop:
                    self.labels.add(x.label)  # type: ignore[attr-defined]
                elif (t is k.Exit or t is k.Next) and x.label == label:  # type: ignore[attr-defined]
                    if t is k.Next:
                        self.next = True
                    if t is k.Next or x is not s:
                        self.deep.add(j)


class _Opaque(Exception):
    """Code the analysis cannot see into (a Code given as WebAssembly text)."""


def _shallow(obj: object):
    """As :func:`.walk.walk`, but not into an Instance's syncs (its own names, renamed by it)."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, list):
            stack.extend(x)
        elif isinstance(x, (k.Expr, k.Stmt)):
            yield x
            if type(x) is k.Instance:
                continue
            for v in x.__dict__.values():
                if isinstance(v, (list, k.Expr, k.Stmt)):
                    stack.append(v)


def _names(
    stmts: list[k.Stmt],
    renames: dict[str, str] | None = None,
    out: set[str] | None = None,
    mode: str = "writes",
) -> set[str]:
    """The locals ``stmts`` may set (``mode`` "writes"), read ("reads") or either ("all"),
    Instances' names renamed as printed, their state syncs included where their Code has the
    marks. Raises :class:`_Opaque` for a Code given as text."""
    out = set() if out is None else out
    writes, reads = mode != "reads", mode != "writes"

    def rn(name: str) -> str:
        return renames.get(name, name) if renames else name

    for x in _shallow(stmts):
        t = type(x)
        if t is k.Local:
            if reads:
                out.add(rn(x.name))  # type: ignore[attr-defined]
        elif t is k.SetLocal or t is k.Let:
            if writes:
                out.add(rn(x.name))  # type: ignore[attr-defined]
        elif t is k.Invoke:
            if writes:
                out.update(rn(n) for n in x.targets)  # type: ignore[attr-defined]
        elif t is k.Instance:
            code = x.code  # type: ignore[attr-defined]
            names, syncs = _code_names(code, mode)
            inner = set(names)
            if syncs:  # its marks print its syncs
                _names([*x.flush, *x.reload], None, inner, mode)  # type: ignore[attr-defined]
            out.update(rn(x.renames.get(n, n)) for n in inner)  # type: ignore[attr-defined]
    return out


_MODES = ("reads", "writes", "all")


class _Names:
    """:func:`_names` of statements, remembered per statement (by identity) for one segment's
    analysis, the three modes from one walk.

    Why: the split asks what the same statements read or set many times (what the fast loop
    writes, the invariant definitions, the outlined function's parameters, results and locals,
    the reloads, what follows the loop), each over statement lists rebuilt around the same
    statements (the converted exits, the new fast loop); walked for each question, every segment
    of a 1,000-node chain cost 2-3 ms here. A compound statement (``If``, ``Block``, ``Loop``) is
    its condition's names and its children's, so a new loop around remembered statements costs
    their lookups. The statements are kept, so that no id is reused while the memo lives."""

    def __init__(self) -> None:
        self.memo: dict[int, tuple[k.Stmt, tuple[frozenset[str], frozenset[str], frozenset[str]]]] = {}
        self.walked = 0  # statements summarised (not looked up): what the tests bound

    def __call__(self, stmts: list[k.Stmt], mode: str = "writes") -> set[str]:
        at = _MODES.index(mode)
        out: set[str] = set()
        for s in stmts:
            out |= self.summary(s)[at]
        return out

    def stmt(self, s: k.Stmt, mode: str) -> frozenset[str]:
        return self.summary(s)[_MODES.index(mode)]

    def summary(self, s: k.Stmt) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        """What ``s`` reads, what it sets, and both with the locals its node code declares."""
        got = self.memo.get(id(s))
        if got is not None:
            return got[1]
        self.walked += 1
        reads: set[str] = set()
        writes: set[str] = set()
        declared: set[str] = set()
        t = type(s)
        if t is k.If or t is k.Block or t is k.Loop:
            cond = getattr(s, "cond", None)
            if cond is not None:
                self._walk(cond, reads, writes, declared)
            for part in (s.body, s.orelse) if t is k.If else (s.body,):  # type: ignore[attr-defined]
                for x in part:
                    r, w, a = self.summary(x)
                    reads |= r
                    writes |= w
                    declared |= a
        elif t is k.Store and type(s.value) is k.Local and type(s.addr) in (k.Const, k.Local):  # type: ignore[attr-defined]
            reads.add(s.value.name)  # type: ignore[attr-defined]  # the epilogue's stores
            if type(s.addr) is k.Local:  # type: ignore[attr-defined]
                reads.add(s.addr.name)  # type: ignore[attr-defined]
        else:
            self._walk(s, reads, writes, declared)
        value = (frozenset(reads), frozenset(writes), frozenset(reads | writes | declared))
        self.memo[id(s)] = (s, value)
        return value

    def _walk(self, obj: object, reads: set[str], writes: set[str], declared: set[str]) -> None:
        for x in _shallow(obj):
            t = type(x)
            if t is k.Local:
                reads.add(x.name)  # type: ignore[attr-defined]
            elif t is k.SetLocal or t is k.Let:
                writes.add(x.name)  # type: ignore[attr-defined]
            elif t is k.Invoke:
                writes.update(x.targets)  # type: ignore[attr-defined]
            elif t is k.Instance:
                r, w, a = self._instance(x)  # type: ignore[arg-type]
                reads |= r
                writes |= w
                declared |= a

    def _instance(self, x: k.Instance) -> tuple[set[str], set[str], set[str]]:
        code = x.code
        got = []
        for mode in _MODES:
            names, syncs = _code_names(code, mode)
            if syncs:  # its marks print its syncs, renamed with it
                names = set(names) | self([*x.flush, *x.reload], mode)
            got.append(names)
        ren = x.renames
        return tuple({ren.get(n, n) for n in names} for names in got)  # type: ignore[return-value]


def _code_names(code: k.Code, mode: str) -> tuple[frozenset[str], bool]:
    """:func:`_names` of a Code's body (its own names; with "all" its declared locals too) and
    whether it has state-sync marks: kept on the Code (shared and never changed), so that the
    nodes of a variant and the compiles of a session do the walk once."""
    key = f"scalarloop.names.{mode}"
    got = code.derived.get(key)
    if got is None:
        if not code.body and code.derived.get("wat"):
            raise _Opaque()
        names = _names(code.body, None, None, mode)
        if mode == "all":  # what the function must declare: the Code's locals too
            names.update(code.locals)
        got = code.derived[key] = (frozenset(names), _has_syncs(code))
    return got


def _has_syncs(code: k.Code) -> bool:
    got = code.derived.get(_SYNCS)
    if got is None:
        got = code.derived[_SYNCS] = any(type(x) is k.SyncState for x in walk(code.body))
    return got


def _steps(code: k.Code) -> list[tuple[frozenset[str], frozenset[str], str | None, frozenset[str] | None]]:
    """Per top-level statement of a Code: the locals it reads, those it sets, the local it sets
    if it is a ``SetLocal``, and then the locals its value reads if that is pure and load-free
    (None otherwise) (the Code's own names; kept on the Code)."""
    got = code.derived.get(_STEPS)
    if got is None:
        got = []
        for x in code.body:
            setlocal = type(x) is k.SetLocal
            value = _reads(x.value) if setlocal else None  # type: ignore[attr-defined]
            got.append(
                (
                    frozenset(_names([x], None, None, "reads")),
                    frozenset(_names([x], None, None, "writes")),
                    x.name if setlocal else None,  # type: ignore[attr-defined]
                    None if value is None else frozenset(value),
                )
            )
        code.derived[_STEPS] = got
    return got


def _must(s: k.Stmt) -> set[str]:
    """Locals statement ``s`` sets whenever it completes (a subset: unconditional sets only)."""
    t = type(s)
    if t is k.SetLocal:
        return {s.name}  # type: ignore[attr-defined]
    if t is k.Invoke:
        return set(s.targets)  # type: ignore[attr-defined]
    if t is k.Instance:
        got = {x.name for x in s.code.body if type(x) is k.SetLocal}  # type: ignore[attr-defined]
        return {s.renames.get(n, n) for n in got}  # type: ignore[attr-defined]
    return set()


_FLOW = "scalarloop.flow"


class _Flow:
    """Forward over statements in execution order: the locals read before every path to the
    read has set them (``out``), given the locals set on every path so far (``written``, which
    each step updates). Structured: an ``if``'s arms and a lazy expression's sides each start
    from what is set before them, and after them only what both (or every path out of a block)
    set counts as set. Node code (an :class:`~..kernel.Instance`) is summarised once per Code
    (what its body reads before setting, what it sets on every path) and renamed; with state
    syncs, the syncs are walked where its marks put them. Anything else is read whole."""

    def __init__(self, after: set[str], leave: str | None) -> None:
        self.out: set[str] = set()
        self.after = after
        self.leave = leave
        self.exits: dict[str, list[set[str]]] = {}  # enclosing block label -> what is set at its exits

    def read(self, name: str, written: set[str]) -> None:
        if name not in written:
            self.out.add(name)

    def expr(self, e: k.Expr, rn: dict[str, str], written: set[str]) -> None:
        t = type(e)
        if t is k.Local:
            self.read(rn.get(e.name, e.name), written)  # type: ignore[attr-defined]
        elif t is k.Const or t is k.GetGlobal:
            return
        elif t is k.Prim or t is k.CallFn:
            for a in e.args:  # type: ignore[attr-defined]
                self.expr(a, rn, written)
        elif t is k.Load:
            self.expr(e.addr, rn, written)  # type: ignore[attr-defined]
        elif t is k.Choose:  # eager: a, b, then the condition
            for a in (e.a, e.b, e.cond):  # type: ignore[attr-defined]
                self.expr(a, rn, written)
        elif t is k.Seq:
            self.stmts(e.body, rn, written)  # type: ignore[attr-defined]
            self.expr(e.value, rn, written)  # type: ignore[attr-defined]
        elif t is k.Select:
            self.expr(e.cond, rn, written)  # type: ignore[attr-defined]
            a, b = set(written), set(written)
            self.expr(e.then, rn, a)  # type: ignore[attr-defined]
            self.expr(e.orelse, rn, b)  # type: ignore[attr-defined]
            written |= a & b
        elif t is k.Logical:
            self.expr(e.left, rn, written)  # type: ignore[attr-defined]
            self.expr(e.right, rn, set(written))  # type: ignore[attr-defined]
        elif t is k.Let:
            self.expr(e.value, rn, written)  # type: ignore[attr-defined]
            written.add(rn.get(e.name, e.name))  # type: ignore[attr-defined]
            self.expr(e.body, rn, written)  # type: ignore[attr-defined]
        else:  # not modelled: everything it reads, nothing it sets
            for x in walk(e):
                if type(x) is k.Local:
                    self.read(rn.get(x.name, x.name), written)  # type: ignore[attr-defined]

    def stmts(self, stmts: list[k.Stmt], rn: dict[str, str], written: set[str]) -> None:
        for s in stmts:
            self.stmt(s, rn, written)

    def stmt(self, s: k.Stmt, rn: dict[str, str], written: set[str]) -> None:  # noqa: C901
        t = type(s)
        if t is k.SetLocal:
            self.expr(s.value, rn, written)  # type: ignore[attr-defined]
            written.add(rn.get(s.name, s.name))  # type: ignore[attr-defined]
        elif t is k.Store:
            self.expr(s.addr, rn, written)  # type: ignore[attr-defined]
            self.expr(s.value, rn, written)  # type: ignore[attr-defined]
        elif t is k.If:
            self.expr(s.cond, rn, written)  # type: ignore[attr-defined]
            a, b = set(written), set(written)
            self.stmts(s.body, rn, a)  # type: ignore[attr-defined]
            self.stmts(s.orelse, rn, b)  # type: ignore[attr-defined]
            written |= a & b
        elif t is k.Block or t is k.Loop:
            label = s.label  # type: ignore[attr-defined]
            saved = self.exits.get(label)
            self.exits[label] = []
            inner = set(written)
            if t is k.Loop and s.cond is not None:  # type: ignore[attr-defined]
                self.expr(s.cond, rn, inner)  # type: ignore[attr-defined]
            self.stmts(s.body, rn, inner)  # type: ignore[attr-defined]
            exits = self.exits.pop(label)
            if saved is not None:
                self.exits[label] = saved
            if t is k.Block:  # set on every way out: the end of its body and each exit
                for e in exits:
                    inner &= e
                written |= inner
        elif t is k.Exit:
            if s.cond is not None:  # type: ignore[attr-defined]
                self.expr(s.cond, rn, written)  # type: ignore[attr-defined]
            label = s.label  # type: ignore[attr-defined]
            if label in self.exits:
                self.exits[label].append(set(written))
            elif label == self.leave:
                self.out |= self.after - written
            else:  # out of what is analysed, somewhere unknown: as conservative as can be
                raise _Opaque()
        elif t is k.Next:
            if s.label not in self.exits:  # type: ignore[attr-defined]
                raise _Opaque()
        elif t is k.Invoke:
            for a in s.args:  # type: ignore[attr-defined]
                self.expr(a, rn, written)
            written.update(rn.get(n, n) for n in s.targets)  # type: ignore[attr-defined]
        elif t is k.Instance:
            self.instance(s, rn, written)  # type: ignore[arg-type]
        elif t is k.ReturnValues:
            for a in s.values:  # type: ignore[attr-defined]
                self.expr(a, rn, written)
        elif t is k.SetGlobal or t is k.ExprStmt:
            self.expr(s.value, rn, written)  # type: ignore[attr-defined]
        elif t is k.MemCopy:
            for a in (s.dst, s.src, s.nbytes):  # type: ignore[attr-defined]
                self.expr(a, rn, written)
        elif t is k.Trap:
            if s.node is not None:  # type: ignore[attr-defined]
                self.expr(s.node, rn, written)  # type: ignore[attr-defined]
        elif t is not k.Unreachable:  # not modelled: everything it reads, nothing it sets
            for x in walk([s]):
                if type(x) is k.Local:
                    self.read(rn.get(x.name, x.name), written)  # type: ignore[attr-defined]

    def instance(self, s: k.Instance, rn: dict[str, str], written: set[str]) -> None:
        inner = s.renames
        if rn:  # nested: its names renamed by it, then by the enclosing Instance
            inner = {**rn, **{n: rn.get(m, m) for n, m in s.renames.items()}}
        code = s.code
        if not code.body and code.derived.get("wat"):
            raise _Opaque()
        if _has_syncs(code):  # its syncs where its marks are: walked with it
            _Synced(self, s).stmts(code.body, inner, written)
            return
        summary = code.derived.get(_FLOW)
        if summary is None:
            flow = _Flow(set(), None)
            sets: set[str] = set()
            flow.stmts(code.body, {}, sets)
            summary = code.derived[_FLOW] = (frozenset(flow.out), frozenset(sets))
        reads, sets = summary
        for n in reads:
            self.read(inner.get(n, n), written)
        written.update(inner.get(n, n) for n in sets)


class _Synced(_Flow):
    """:class:`_Flow` inside an Instance with state syncs: its marks read and set what its
    flush and reload statements do (printed there, renamed with it)."""

    def __init__(self, outer: _Flow, inst: k.Instance) -> None:
        self.__dict__.update(outer.__dict__)
        self.inst = inst

    def stmt(self, s: k.Stmt, rn: dict[str, str], written: set[str]) -> None:
        if type(s) is k.SyncState:
            self.stmts(self.inst.flush if s.direction == "flush" else self.inst.reload, rn, written)  # type: ignore[attr-defined]
        else:
            super().stmt(s, rn, written)


def _exposed(stmts: list[k.Stmt], after: set[str], leave: str = "sample") -> set[str]:
    """The locals whose values on entry ``stmts`` (then whatever reads ``after``, also where an
    ``Exit(leave)`` among them goes there) may read: read before every path to the read has
    set them (a superset of what is live there). Raises :class:`_Opaque` where it cannot see."""
    flow = _Flow(after, leave)
    written: set[str] = set()
    flow.stmts(stmts, {}, written)
    return flow.out | (after - written)


def _tails_exposed(
    body: list[k.Stmt], starts: list[int], after: set[str], leave: str = "sample"
) -> list[set[str]]:
    """``[_exposed(body[j:], after, leave) for j in starts]`` (``starts`` increasing), each
    statement walked once: from the last tail back, a tail's exposed locals are what its first
    piece (up to the next start) reads before setting, and those of the next tail that the
    piece does not set on every path (the forward analysis starts from what is set before a
    piece and only ever adds to it, so a piece's walk does not depend on it)."""
    out: list[set[str]] = []
    exposed = set(after)
    ends = [*starts[1:], len(body)] if starts else []
    for start, end in zip(reversed(starts), reversed(ends), strict=True):
        flow = _Flow(after, leave)
        written: set[str] = set()
        flow.stmts(body[start:end], {}, written)
        exposed = flow.out | (exposed - written)
        out.append(exposed)
    return out[::-1]


def _writes(stmts: list[k.Stmt], names: _Names) -> set[str] | None:
    try:
        return names(stmts)
    except _Opaque:
        return None


def _rare(s: k.Stmt) -> bool:
    return type(s) is k.If and not s.orelse and _pure(s.cond)  # type: ignore[attr-defined]


def _reads(e: k.Expr) -> set[str] | None:
    """The locals a pure, load-free expression reads (None: it loads or is not pure)."""
    out: set[str] = set()
    return out if _pure_reads(e, out) else None


def _pure_reads(e: k.Expr, out: set[str]) -> bool:
    t = type(e)
    if t is k.Local:
        out.add(e.name)  # type: ignore[attr-defined]
        return True
    if t is k.Const or t is k.GetGlobal:
        return True
    if t is k.Prim:
        return e.op not in _TRAPPING and all(_pure_reads(a, out) for a in e.args)  # type: ignore[attr-defined]
    if t is k.Choose:
        return _pure_reads(e.cond, out) and _pure_reads(e.a, out) and _pure_reads(e.b, out)  # type: ignore[attr-defined]
    return False  # a load, a call, anything not modelled


def _disjuncts(e: k.Expr) -> list[k.Expr]:
    if type(e) is k.Prim and e.op is Op.BOOL_OR:  # type: ignore[attr-defined]
        return [*_disjuncts(e.args[0]), *_disjuncts(e.args[1])]  # type: ignore[attr-defined]
    return [e]


def _any(parts: list[k.Expr]) -> k.Expr:
    out = parts[0]
    for p in parts[1:]:
        out = k.Prim(k.T.BOOL, Op.BOOL_OR, [out, p])
    return out


_Def = tuple[k.Expr, dict[str, str]]
"""A local's defining expression in its Code's names, with the Instance's renames (renamed
only when a hoisted test uses it: most are not)."""


def _invariant_defs(
    body: list[k.Stmt], at: list[int], written: set[str], names: _Names
) -> dict[int, dict[str, _Def]]:
    """For each index ``j`` in ``at`` (the rare ifs): the locals that ``body[:j]`` sets once, at
    its top level, to a pure expression of locals the fast loop never sets, and that nothing
    else in the fast loop sets: each holds the same value in every sample of the fast loop,
    that expression (see :data:`_Def`; :func:`_defined` renames it as printed), which a test
    hoisted before the loop can use."""
    out: dict[int, dict[str, _Def]] = {}
    defs: dict[str, _Def] = {}
    seen: dict[str, int] = {}
    marks = set(at)
    try:
        for j, s in enumerate(body):
            if j in marks:
                out[j] = {n: e for n, e in defs.items() if seen.get(n) == 1}
            if type(s) is k.Instance:
                renames = s.renames  # type: ignore[attr-defined]
                code = s.code  # type: ignore[attr-defined]
                steps = _steps(code) if not _has_syncs(code) else None
                if steps is None:
                    for n in names.stmt(s, "writes"):
                        seen[n] = seen.get(n, 0) + 1
                    continue
                for x, (_, writes, sets, value) in zip(code.body, steps, strict=True):
                    for n in writes:
                        n = renames.get(n, n)
                        seen[n] = seen.get(n, 0) + 1
                    if value is not None and not {renames.get(n, n) for n in value} & written:
                        defs[renames.get(sets, sets)] = (x.value, renames)  # type: ignore[arg-type,attr-defined]
                continue
            for n in names.stmt(s, "writes"):
                seen[n] = seen.get(n, 0) + 1
            if type(s) is k.SetLocal:
                value = _reads(s.value)  # type: ignore[attr-defined]
                if value is not None and not value & written:
                    defs[s.name] = (s.value, {})  # type: ignore[attr-defined]
    except _Opaque:
        return {j: {} for j in at}
    return out


def _defined(defs: dict[str, _Def], e: k.Expr) -> dict[str, k.Expr]:
    """The definitions in ``defs`` of the locals ``e`` reads, renamed as printed."""
    names = {x.name for x in walk(e) if type(x) is k.Local}  # type: ignore[attr-defined]
    return {n: _Rename(defs[n][1]).expr(defs[n][0]) for n in names & defs.keys()}


MAX_RARE = 6
"""Rare ifs of one loop split out at most (the first ones; later ones stay ifs of the fast
loop): each is a block around the fast loop and a cut of the full body, and nesting deeper
than this stops paying (and the reference backend's Python cannot nest 20 blocks)."""

MAX_VALUES = 200
"""A fast loop with more parameters or results than this stays in its segment: WebAssembly
engines bound a function's values (wasmtime: 1,000), and past a few dozen they go through
memory anyway."""

EXIT = "_fast_exit"
"""The local a segment keeps its fast loop's answer in: 0 the block is done, k > 0 the rare if
``k`` fired (see :func:`_outlined`)."""


REGISTER_VALUES = 12
"""With ``globals_out``, a fast loop that takes more f64 values than this (the state it carries
and the locals it only reads) reads the latter from module globals (see :func:`_reload`); with
fewer, they fit x86-64's 16 xmm registers next to the loop's temporaries, and stay parameters."""


def _reload(loop: list[k.Stmt], globals_: dict[str, str], names: _Names) -> list[k.Stmt]:
    """``loop`` (a fast loop's body) with each local of ``globals_`` set from its global just
    before the first statement that may read it.

    Why: a parameter the loop only reads is a value Cranelift keeps for the whole loop, across
    its back edge; with the oscillator's and the filter's coefficients (ten of them for the
    seed) and the state the loop carries, that is more f64 values than x86 has registers, and
    the register allocator then spills the carried state too (a store and a load in the filter's
    recurrence each sample). Read from its global in each sample, a coefficient is a load near
    its use, live only within the sample: the carried state keeps its registers. The caller
    sets the globals from the same locals right before the call: the same values."""
    out: list[k.Stmt] = []
    pending = dict(globals_)
    for s in loop:
        if pending:
            reads = names.stmt(s, "reads")
            for n in [n for n in pending if n in reads]:
                out.append(k.SetLocal(name=n, value=k.GetGlobal(k.T.F64, pending.pop(n))))
        out.append(s)
    return out


def _zero(t: k.T) -> k.Const:
    return k.Const(t, 0.0 if t is k.T.F64 else False if t is k.T.BOOL else 0)


def _outlined(
    fast: list[k.Stmt],
    body: list[k.Stmt],
    cuts: list[int],
    name: str,
    types: dict[str, k.T],
    after: set[str],
    globals_out: list[k.Global] | None = None,
    names: _Names | None = None,
) -> tuple[list[k.Stmt], k.Function] | None:
    """The fast loop (its statements ``fast``) as module function ``name``, and its call.

    Why: in one function with the full body, Cranelift's register allocator keeps the values
    the fast loop carries (oscillator and filter state) in stack slots, as the slow path's
    polynomials need the registers: every sample loads and stores them again, and a filter's
    state then waits on a store and a load each sample. Alone in a function, the fast loop has
    the registers to itself.

    The function takes the locals the loop may read before setting them and returns the ones
    it sets, its answer first: 0 at the loop's ``Exit(sample)`` (the block is done), ``k`` at
    ``Exit(_slow<k>)``; the caller goes on from there with the same locals. Each answer returns
    the values only of the locals the code after it may read (``body`` from its cut on, then
    the next samples, then ``after``, what follows the loop), zeros for the others: a local
    returned at an exit it is dead at would be a value carried around the loop. ``body``: the
    loop's full body; ``cuts[k]`` where tail ``k`` starts. None when the loop leaves for its
    labels from deeper inside, or uses what the analysis cannot see."""
    exits = len(cuts) - 1
    label = "sample"
    slow = {f"_slow{j}" for j in range(1, exits + 1)}
    targets = slow | {label}
    names = _Names() if names is None else names
    try:
        written = names(fast)
        full = _exposed(body, after)
        live = [after, *_tails_exposed(body, cuts[1:], full)]
    except _Opaque:
        return None
    results = sorted(written & set().union(*live))
    if not set(results) <= types.keys():
        return None

    def answer(code: int) -> k.Stmt:
        values: list[k.Expr] = [k.Const(k.T.I32, code)]
        values += [k.Local(types[n], n) if n in live[code] else _zero(types[n]) for n in results]
        return k.ReturnValues(values=values)

    def convert(s: k.Stmt) -> k.Stmt:
        if type(s) is k.Exit and s.label in targets:  # type: ignore[attr-defined]
            code = 0 if s.label == label else int(s.label[len("_slow") :])  # type: ignore[attr-defined]
            cond = s.cond  # type: ignore[attr-defined]
            if cond is None:
                return answer(code)
            return k.If(site=s.site, cond=cond, body=[answer(code)], orelse=[])
        return s

    loop = [convert(s) for s in fast]
    head: list[k.Stmt] = []
    first = fast[0] if fast else None
    if type(first) is k.Exit and first.label == label and first.cond is not None:  # type: ignore[attr-defined]
        # rotated: the block's end tested after each sample (and once before the first), so
        # that what the answer returns there (the nodes' outputs) is not also carried around
        # the loop's back edge to a test at its top: the same tests in the same order
        head = [loop[0]]
        loop = [*loop[1:], convert(first)]
    try:
        written_all = names([*head, *loop])
        params = sorted(_exposed([*head, k.Loop(label="_fast", cond=None, body=loop)], set()))
    except _Opaque:
        return None
    hoisted: list[str] = []
    if globals_out is not None:
        if sum(types.get(n) is k.T.F64 for n in params) > REGISTER_VALUES:
            hoisted = [n for n in params if n not in written_all and types.get(n) is k.T.F64]
    if hoisted:
        loop = _reload(loop, {n: f"{name}.{n}" for n in hoisted}, names)
    fbody: list[k.Stmt] = [*head, k.Loop(label="_fast", cond=None, body=loop)]
    try:
        used = names(fbody, mode="all")
    except _Opaque:
        return None
    params = [n for n in params if n not in hoisted]
    if not used <= types.keys() or len(params) > MAX_VALUES or len(results) > MAX_VALUES:
        return None
    result_types = (k.T.I32, *(types[n] for n in results))
    function = k.Function(
        name,
        [(n, types[n]) for n in params],
        result_types,
        {n: types[n] for n in sorted(used - set(params))},
        fbody,
    )
    if globals_out is not None:
        globals_out.extend(k.Global(f"{name}.{n}", k.T.F64, 0.0) for n in hoisted)
    got = k.Local(k.T.I32, EXIT)
    call: list[k.Stmt] = [
        *(k.SetGlobal(name=f"{name}.{n}", value=k.Local(k.T.F64, n)) for n in hoisted),
        k.Invoke(
            func=name,
            args=[k.Local(types[n], n) for n in params],
            targets=[EXIT, *results],
            results=result_types,
        ),
    ]
    for code in range(exits):
        to = label if code == 0 else f"_slow{code}"
        call.append(k.Exit(label=to, cond=k.Prim(k.T.BOOL, Op.I32_EQ, [got, k.Const(k.T.I32, code)])))
    call.append(k.Exit(label=label if exits == 0 else f"_slow{exits}"))
    return call, function


def split_scalar_loop(
    loop: k.Loop,
    outline: tuple[str, dict[str, k.T], set[str]] | None = None,
    outlined: list[k.Function] | None = None,
    globals_out: list[k.Global] | None = None,
    names: _Names | None = None,
    control: _Control | None = None,
) -> list[k.Stmt] | None:
    """The statements replacing ``loop`` (its body opened already, see :func:`open_loop`), or
    None when there is no rare if.

    As :func:`.fastpath.split_loop`, with one more kind of rare if: an *invariant* one, whose
    condition reads only locals no statement of the fast loop sets (and no memory): the
    ``ramps`` flag, a biquad's parameters against those its coefficients were computed for. It
    cannot change while the fast loop runs, so it is tested once before the fast loop is
    entered instead of every sample: when it holds, the sample runs the full body from its top
    (the block ``_slow0``, whose tail is the body up to the first other rare if, the other tails
    following), and the test is made again at the next sample::

        block sample
          loop outer
            block slow_K ... block slow_1
              block slow_0
                br_if slow_0 (invariant conditions)
                loop fast ...           ; without the invariant ifs, exits for the others
              end slow_0: body[0 : if_1]
            end slow_1: body[if_1 : if_2] ...
            end slow_K: body[if_K :]
    """
    control = _Control(loop.body, loop.label) if control is None else control
    if loop.cond is not None or control.next:
        return None
    body = loop.body
    rare = [j for j, s in enumerate(body) if _rare(s)][:MAX_RARE]
    if not rare:
        return None
    # What the fast loop sets: every statement but the rare ifs (their arms run only in the tails).
    names = _Names() if names is None else names
    written = _writes([s for j, s in enumerate(body) if j not in rare], names)
    entry_parts: list[k.Expr] = []  # the invariant parts of the rare ifs' conditions
    exit_conds: dict[int, k.Expr] = {}  # rare if -> what the fast loop tests for it
    defs_at = {} if written is None else _invariant_defs(body, rare, written, names)
    for j in rare:
        cond = body[j].cond  # type: ignore[attr-defined]
        if written is None:
            exit_conds[j] = cond
            continue
        defs = defs_at[j]
        variant: list[k.Expr] = []
        for part in _disjuncts(cond):
            hoisted = _subst(part, _defined(defs, part))
            reads = _reads(hoisted)
            if reads is not None and not reads & written:
                entry_parts.append(hoisted)
            else:
                variant.append(part)
        if variant:
            exit_conds[j] = _any(variant)
    exits = sorted(exit_conds)
    fast: list[k.Stmt] = []
    for j, s in enumerate(body):
        if j in exit_conds:  # one exit per disjunct: a compare and a branch each
            fast.extend(k.Exit(label=f"_slow{exits.index(j) + 1}", cond=d) for d in _disjuncts(exit_conds[j]))
        elif j not in rare:
            fast.append(s)
    entry: list[k.Stmt] = [k.Exit(label="_slow0", cond=_any(entry_parts))] if entry_parts else []
    inner: list[k.Stmt] = [*entry, k.Loop(label="_fast", cond=None, body=fast)]
    cuts = [0, *exits, len(body)]
    deep = any(j not in rare for j in control.deep)  # an exit the outlined loop cannot answer
    if outline is not None and loop.label == "sample" and not deep:
        got = _outlined(fast, body, cuts[:-1], *outline, globals_out=globals_out, names=names)
        if got is not None:
            call, function = got
            inner = [*entry, *call]
            outlined.append(function)
    for n in range(len(cuts) - 1):
        inner = [k.Block(label=f"_slow{n}", body=inner), *body[cuts[n] : cuts[n + 1]]]
    return [k.Block(label=loop.label, body=[k.Loop(label="_outer", cond=None, body=inner)])]


def scalar_fast_loop(
    fn: k.Function,
    label: str = "sample",
    outline: bool = True,
    globals_out: list[k.Global] | None = None,
) -> list[k.Function]:
    """``fn`` (a scalar segment) with its sample loop's node steps opened and the loop split
    (:func:`split_scalar_loop`), and with ``outline`` its fast loop as a function of its own,
    named ``<fn>_fast`` (listed after ``fn``); ``[fn]`` itself when there is nothing to split
    or the split's labels are taken. With ``globals_out``, the outlined loop reads the f64
    locals it never sets from module globals, appended there (see :func:`_reload`)."""
    at = [j for j, s in enumerate(fn.body) if type(s) is k.Loop and s.label == label]  # type: ignore[attr-defined]
    if len(at) != 1:
        return [fn]
    j = at[0]
    loop = open_loop(fn.body[j])  # type: ignore[arg-type]
    control = _Control(loop.body, loop.label)
    taken = control.labels  # opening adds none: its ifs have no label, its Codes are printed apart
    ours = ("_slow", "_ret")
    if "_fast" in taken or "_outer" in taken or any(t.startswith(ours) for t in taken) or EXIT in fn.locals:
        return [fn]
    types = {**fn.locals, **dict(fn.params)}
    outlined: list[k.Function] = []
    names = _Names()
    try:
        after = names(fn.body[j + 1 :], mode="reads")
    except _Opaque:
        outline = False
    plan = (f"{fn.name}_fast", types, after) if outline else None
    replaced = split_scalar_loop(loop, plan, outlined, globals_out, names, control)
    if replaced is None:
        return [fn]
    body = [*fn.body[:j], *replaced, *fn.body[j + 1 :]]
    locals_ = {**fn.locals, EXIT: k.T.I32} if outlined else fn.locals
    return [k.Function(fn.name, fn.params, fn.results, locals_, body, fn.export), *outlined]
