"""Binding: the node's attributes, inputs, arrays and events to memory and locals; loops.

Everything a node's code touches is addressed relative to the local ``nb``, the base of the
node's region (the ``offset`` of each ``Load``/``Store``, from :class:`~..layout.NodeLayout`),
its connected inputs come in locals ``in_<name>`` (the skeleton sums them), and, when the
skeleton keeps node state in locals, its scalars are locals ``S_<name>`` and its unconnected
value inputs locals ``P_<name>`` (renamed per node by :class:`~..kernel.Instance`; the skeleton
loads them before the sample loop and again after a ramp step: node code cannot write inputs). So one variant's code serves every node of the variant.

Array indices get Python's negative indices and a bounds check; events go to the output's outbox
(a full one traps); ``while`` and ``for ... in range`` become ``Loop``\\ s that count down the
iterations node code may still run in this call (the INTERRUPT slot: the host's budget, or 1
from Python's watchdog), so an endless loop traps with TIMEOUT whichever host runs the kernel.
"""

from __future__ import annotations

from .. import kernel as k
from ..kernel import T
from ..layout import EVENT_BYTES, FRAME, INTERRUPT
from ..ops import Op
from ..traps import INDEX, QUEUE_FULL, RANGE_STEP, TIMEOUT
from .context import Unit, Variant
from .runtime import f64, i32, i64, if_, p, seq, setl
from .walk import Rewriter

F, L, W, B = T.F64, T.I64, T.I32, T.BOOL
IR_TYPES = {"f64": F, "i64": L, "bool": B}
NB = k.Local(W, "nb")


class Bind(Rewriter):
    in_place = True  # it runs on the inliner's output, which no one else holds

    def __init__(self, v: Variant, unit: Unit) -> None:
        self.v = v
        self.unit = unit
        self.nl = v.layout
        self.loops: list[tuple[str, k.Stmt]] = []  # (label to leave, how to continue)

    def stmt(self, s: k.Stmt) -> list[k.Stmt]:
        self.v.last_site = s.site
        return super().stmt(s)

    def rel(self, addr: int) -> int:
        return self.nl.rel(addr)

    def in_locals(self) -> bool:
        return self.v.state_in_locals and not self.unit.in_function

    # ------------------------------------------------------------------ node state
    def x_Attr(self, e: k.Attr) -> k.Expr:
        addr, ty = self.nl.scalars[e.name]
        t = IR_TYPES[ty]
        if self.in_locals():
            self.v.state_used[e.name] = t
            return k.Local(t, f"S_{e.name}")
        return k.Load(t, NB, self.rel(addr))

    def s_Assign(self, s: k.Assign) -> list[k.Stmt]:
        value = self.expr(s.value)
        target = s.target
        if isinstance(target, k.Local):
            self.unit.locals.setdefault(target.name, target.type)
            return [k.SetLocal(site=s.site, name=target.name, value=value)]
        addr, ty = self.nl.scalars[target.name]
        t = IR_TYPES[ty]
        if self.in_locals():
            self.v.state_used[target.name] = t
            return [k.SetLocal(site=s.site, name=f"S_{target.name}", value=value)]
        return [k.Store(site=s.site, type=t, addr=NB, offset=self.rel(addr), value=value)]

    def x_Input(self, e: k.Input) -> k.Expr:
        if e.name in self.v.connected:
            return k.Local(F, f"in_{e.name}")
        ep = self.v.node.endpoint(e.name)
        if ep.kind == "value":
            if self.in_locals():  # block-constant but for a ramp: the skeleton keeps it in a local
                self.v.params_used.add(e.name)
                return k.Local(F, f"P_{e.name}")
            return k.Load(F, NB, self.rel(self.nl.params[e.name].value))
        return f64(ep.default)

    # ------------------------------------------------------------------ arrays
    def address(self, array: str, index: k.Expr, site: k.Site) -> k.Expr:
        """``nb`` plus the byte offset of ``array[index]``, with Python's negative indices and a
        bounds check (the array's own offset goes in the load's ``offset``)."""
        length = self.nl.arrays[array][2]
        ts = self.v.site(site, f"self.{array}[...] (length {length})")
        if isinstance(index, k.Const):
            i = int(index.value)
            if i < 0:
                i += length
            if not 0 <= i < length:
                return seq([self.v.trap(INDEX, ts)], i32(0))
            return p(Op.I32_ADD, NB, i32(8 * i))
        ix = self.unit.local(self.v.fresh("_ix"), L)
        # One unsigned compare on the usual path (an index in [0, length)); a negative index is
        # a large unsigned one, so it is wrapped, and checked again, only under that test.
        return seq(
            [
                setl(ix, self.expr(index)),
                if_(
                    p(Op.I64_GE_U, ix, i64(length)),
                    [
                        if_(p(Op.I64_LT_S, ix, i64(0)), [setl(ix, p(Op.I64_ADD, ix, i64(length)))]),
                        if_(p(Op.I64_GE_U, ix, i64(length)), [self.v.trap(INDEX, ts)]),
                    ],
                ),
            ],
            p(Op.I32_ADD, NB, p(Op.I32_WRAP_I64, p(Op.I64_SHL, ix, i64(3)))),
        )

    def x_ArrayLoad(self, e: k.ArrayLoad) -> k.Expr:
        addr, ty, _ = self.nl.arrays[e.array]
        return k.Load(IR_TYPES[ty], self.address(e.array, e.index, e.site), self.rel(addr))

    def s_ArrayStore(self, s: k.ArrayStore) -> list[k.Stmt]:
        addr, ty, _ = self.nl.arrays[s.array]
        at = self.address(s.array, s.index, s.site)
        return [
            k.Store(site=s.site, type=IR_TYPES[ty], addr=at, offset=self.rel(addr), value=self.expr(s.value))
        ]

    # ------------------------------------------------------------------ events
    def s_Emit(self, s: k.Emit) -> list[k.Stmt]:
        """Append the event to this output's outbox; connected inputs read it from there."""
        q = self.nl.outboxes[s.port]
        out: list[k.Stmt] = []
        temps = []
        for a in s.args:
            t = self.unit.local(self.v.fresh("_emit"), F)
            out.append(setl(t, self.expr(a)))
            temps.append(t)
        ts = self.v.site(s.site, f"self.{s.port}.emit")
        cnt = self.unit.local("emit_n", W)
        at = self.unit.local("emit_at", W)
        base = self.rel(q.base)
        entry = self.rel(q.entries)
        frame = p(Op.I64_ADD, k.Load(L, i32(FRAME), 0), p(Op.I64_EXTEND_I32_U, k.Local(W, "i")))
        out += [
            setl(cnt, k.Load(W, NB, base)),
            if_(p(Op.I32_GE_U, cnt, i32(q.capacity)), [self.v.trap(QUEUE_FULL, ts)]),
            setl(at, p(Op.I32_ADD, NB, p(Op.I32_MUL, cnt, i32(EVENT_BYTES)))),
            k.Store(type=L, addr=at, offset=entry, value=frame),
        ]
        for j in range(4):
            value = temps[j] if j < len(temps) else f64(0.0)
            out.append(k.Store(type=F, addr=at, offset=entry + 8 + 8 * j, value=value))
        out.append(k.Store(type=W, addr=NB, offset=base, value=p(Op.I32_ADD, cnt, i32(1))))
        return out

    # ------------------------------------------------------------------ loops
    def budget(self, site: k.Site) -> list[k.Stmt]:
        """One iteration off the loop budget in the INTERRUPT slot; TIMEOUT at 0."""
        ts = self.v.site(site, "a loop")
        left = k.Load(W, i32(INTERRUPT), 0)
        return [
            k.Store(type=W, addr=i32(INTERRUPT), offset=0, value=p(Op.I32_SUB, left, i32(1))),
            if_(p(Op.I32_LE_S, k.Load(W, i32(INTERRUPT), 0), i32(0)), [self.v.trap(TIMEOUT, ts)]),
        ]

    def s_While(self, s: k.While) -> list[k.Stmt]:
        label = self.v.fresh("_while")
        cond = self.expr(s.cond)
        check = self.budget(s.site)
        self.loops.append((label, k.Next(label=label)))
        body = self.stmts(s.body)
        self.loops.pop()
        return [k.Loop(site=s.site, label=label, cond=cond, body=[*check, *body])]

    def s_ForRange(self, s: k.ForRange) -> list[k.Stmt]:
        cnt = self.unit.local(s.counter, L)
        lim = self.unit.local(s.limit, L)
        stp = self.unit.local(s.stride, L)
        var = self.unit.local(s.var.name, L)
        out: list[k.Stmt] = [
            setl(cnt, self.expr(s.start)),
            setl(lim, self.expr(s.stop)),
            setl(stp, self.expr(s.step)),
        ]
        if isinstance(s.step, k.Const):
            cond: k.Expr = p(Op.I64_LT_S if s.step.value > 0 else Op.I64_GT_S, cnt, lim)
        else:
            out.append(if_(p(Op.I64_EQZ, stp), [self.v.trap(RANGE_STEP, self.v.site(s.site))]))
            cond = k.Select(
                B, p(Op.I64_GT_S, stp, i64(0)), p(Op.I64_LT_S, cnt, lim), p(Op.I64_GT_S, cnt, lim)
            )
        top, cont = self.v.fresh("_for"), self.v.fresh("_cont")
        nxt = self.unit.local(self.v.fresh("_next"), L)
        check = self.budget(s.site)
        self.loops.append((top, k.Exit(label=cont)))
        body = self.stmts(s.body)
        self.loops.pop()
        # the next value, unless it would pass the int range (Python's range simply ends)
        wraps = p(Op.I64_LT_S, p(Op.I64_AND, p(Op.I64_XOR, cnt, nxt), p(Op.I64_XOR, stp, nxt)), i64(0))
        out.append(
            k.Loop(
                site=s.site,
                label=top,
                cond=cond,
                body=[
                    *check,
                    setl(var, cnt),
                    k.Block(label=cont, body=body),
                    setl(nxt, p(Op.I64_ADD, cnt, stp)),
                    k.Exit(label=top, cond=wraps),
                    setl(cnt, nxt),
                ],
            )
        )
        return out

    def s_Break(self, s: k.Break) -> list[k.Stmt]:
        return [k.Exit(site=s.site, label=self.loops[-1][0])]

    def s_Continue(self, s: k.Continue) -> list[k.Stmt]:
        how = self.loops[-1][1]
        return [type(how)(site=s.site, label=how.label)]  # type: ignore[attr-defined]


def lower(v: Variant, unit: Unit, body: list[k.Stmt]) -> list[k.Stmt]:
    return Bind(v, unit).stmts(body)
