"""A voice body that adds its output into the voices' mix instead of storing it in a buffer.

Why: a voice group whose outputs all feed one input (the mix of a polyphonic patch) used to
store each voice's output in a buffer of its own and then add the buffers up, one pass per voice
(``add_buffers``): 64 voices wrote and read back 128 KB per block, beyond the L1 cache, and ran
63 extra loops. Here the voice body's store of that output, ``store(i8 + o, y)`` with ``o`` a
parameter naming the mix's buffer, becomes ``store(i8 + o, load(i8 + o) + y)``: each sample of
the one buffer (2 KB) gets the voices' outputs added in the order the voices run, which is the
voice order (the group's segment starts the buffer at -0.0, :func:`~..protocol.mix_start_function`),
so each sample is the interpreter's left-to-right sum of the voices, bit for bit.

In a lanes body (:mod:`.lanes`) the store is one per lane, lane 0 first (a per-lane store in
lane order), so lane 1's load sees lane 0's addition. Anything else that reads the parameter
(the pass never packs it: it is only an address) means the body is not one this rewrite
understands: :func:`accumulate` returns None and the caller keeps the buffers.
"""

from __future__ import annotations

from .. import kernel as k
from ..ops import Op
from .walk import Rewriter


class _Accumulate(Rewriter):
    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.rewritten = 0
        self.foreign = False  # a use of a mix parameter that is not such a store

    def s_Store(self, s: k.Store) -> list[k.Stmt]:
        a = s.addr
        if (
            s.type is k.T.F64
            and type(a) is k.Prim
            and a.op is Op.I32_ADD
            and len(a.args) == 2
            and all(type(x) is k.Local for x in a.args)
            and a.args[1].name in self.names  # type: ignore[attr-defined]
            and a.args[0].name not in self.names  # type: ignore[attr-defined]
        ):
            self.rewritten += 1
            value = self.expr(s.value)
            total = k.Prim(k.T.F64, Op.F64_ADD, [k.Load(k.T.F64, a, s.offset), value])
            return [k.Store(site=s.site, type=s.type, addr=a, offset=s.offset, value=total)]
        return [self.children(s)]

    def x_Local(self, e: k.Local) -> k.Expr:
        if e.name in self.names:
            self.foreign = True
        return e


def accumulate(fn: k.Function, names: set[str] | frozenset[str]) -> k.Function | None:
    """``fn`` with every f64 store to ``i8 + <name>`` (``name`` in ``names``) made an addition
    to what the address holds; None where a name is used any other way, or never stored to."""
    if not names:
        return fn
    rw = _Accumulate(frozenset(names))
    body = rw.stmts(fn.body)
    if rw.foreign or rw.rewritten < len(names):
        return None
    return k.Function(fn.name, fn.params, fn.results, fn.locals, body, fn.export)
