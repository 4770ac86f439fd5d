"""The memory protocol as kernel IR: what a host does to a kernel's memory, done by the kernel.

Every compiled kernel exports these functions, so every host (GraphState from Python, the browser
worklet, the reference evaluator) shares one implementation of how parameters are set and events
queued, instead of each writing the layout's bytes itself. They take the addresses of the slots
they work on as arguments (a parameter's value slot, a queue's base), never a graph's layout, so
the same functions serve every graph:

* ``set_param(slot, value, seconds, rate)``: set a value input at once, or ramp to it linearly
  over ``round(seconds * rate)`` samples, exactly as :meth:`oscen.graph.Graph.set_value` computes
  the ramp (``(value - current) / steps`` in binary64; Python's ``round`` is ties-to-even, which is
  ``f64.nearest``). The host validates ``value`` and ``seconds`` first.
* ``queue_event(queue, capacity, frame, f0, f1, f2, f3) -> inserted``: insert an event in a queue
  sorted by frame, after the events of the same frame; 0 when the queue is full (the host keeps
  its own overflow, see :class:`oscen.jit.state.GraphState`).

``ramp`` (one step of a running ramp) and ``copy_words`` (a forward copy of 8-byte words) are the
skeleton's own helpers, used by the per-sample code and the block function.
"""

from __future__ import annotations

from . import kernel as k
from .kernel import T
from .layout import EVENT_BYTES, EVENT_FIELDS
from .ops import Op

I32, I64, F64 = T.I32, T.I64, T.F64

# Slots of a parameter, relative to its value slot (layout.ParamSlots: four 8-byte slots in a row).
TARGET, STEP, REMAINING = 8, 16, 24


def i32(v: int) -> k.Const:
    return k.Const(I32, v)


def i64(v: int) -> k.Const:
    return k.Const(I64, v)


def f64(v: float) -> k.Const:
    return k.Const(F64, float(v))


def local(t: T, name: str) -> k.Local:
    return k.Local(t, name)


def prim(op: Op, *args: k.Expr) -> k.Prim:
    return k.Prim(op.result, op, list(args))


def load(t: T, addr: k.Expr, offset: int = 0) -> k.Load:
    return k.Load(t, addr, offset)


def store(t: T, addr: k.Expr, value: k.Expr, offset: int = 0) -> k.Store:
    return k.Store(type=t, addr=addr, offset=offset, value=value)


def set_local(name: str, value: k.Expr) -> k.SetLocal:
    return k.SetLocal(name=name, value=value)


def if_(cond: k.Expr, then: list[k.Stmt], orelse: list[k.Stmt] | None = None) -> k.If:
    return k.If(k.NOSITE, cond, then, orelse or [])


def invoke(func: str, *args: k.Expr) -> k.Invoke:
    return k.Invoke(func=func, args=list(args))


def ramp_function() -> k.Function:
    """``ramp(nb, value)``: one step of the ramp whose value slot is at ``nb + value``; the last
    step lands on the target (as the interpreter's ``Graph._advance_ramps``)."""
    at = local(I32, "at")
    left = local(I64, "left")
    return k.Function(
        "ramp",
        [("nb", I32), ("value", I32)],
        (),
        {"left": I64, "at": I32},
        [
            set_local("at", prim(Op.I32_ADD, local(I32, "nb"), local(I32, "value"))),
            set_local("left", prim(Op.I64_SUB, load(I64, at, REMAINING), i64(1))),
            store(I64, at, left, REMAINING),
            if_(
                prim(Op.I64_EQZ, left),
                [store(F64, at, load(F64, at, TARGET))],
                [store(F64, at, prim(Op.F64_ADD, load(F64, at), load(F64, at, STEP)))],
            ),
        ],
    )


def node_ramps_function(name: str, values: tuple[int, ...]) -> k.Function:
    """``<name>(nb)``: one step of each running ramp of a node whose value slots are at ``nb + v``
    for each ``v`` in ``values`` (a variant's parameters, relative to its base). The quick tier's
    lanes bodies call it once per lane and sample while a ramp runs, instead of an ``if`` and a
    ``ramp`` call per parameter and lane: every ``if`` in the sample loop is two more blocks for
    Cranelift's single-pass register allocator, which moves each of the loop's ~70 live values
    to and from the stack at each block (64 voices: 24.9 -> 24.0 M instructions of Cranelift)."""
    nb = local(I32, "nb")
    return k.Function(
        name,
        [("nb", I32)],
        (),
        {},
        [
            if_(prim(Op.I64_NE, load(I64, nb, v + REMAINING), i64(0)), [invoke("ramp", nb, i32(v))])
            for v in values
        ],
    )


def copy_words_function() -> k.Function:
    """``copy_words(dst, src, nbytes)``: copy ``nbytes`` (a multiple of 8) forwards, 8 bytes at a
    time (so ``dst <= src`` may overlap: the queue compaction moves entries down)."""
    off = local(I32, "off")
    return k.Function(
        "copy_words",
        [("dst", I32), ("src", I32), ("nbytes", I32)],
        (),
        {"off": I32},
        [
            k.Loop(
                label="copy",
                cond=prim(Op.I32_LT_U, off, local(I32, "nbytes")),
                body=[
                    store(
                        I64,
                        prim(Op.I32_ADD, local(I32, "dst"), off),
                        load(I64, prim(Op.I32_ADD, local(I32, "src"), off)),
                    ),
                    set_local("off", prim(Op.I32_ADD, off, i32(8))),
                ],
            )
        ],
    )


def add_buffers_function() -> k.Function:
    """``add_buffers(n, dst, src)``: ``dst[i] = dst[i] + src[i]`` for the block's ``n`` samples,
    two at a time in f64x2 (each lane the same IEEE addition): a voice group's outputs summed into
    voice 0's buffer, one voice after the other, the order the consumer's input would add them."""
    i, n = local(I32, "i"), local(I32, "n")
    dst = prim(Op.I32_ADD, local(I32, "dst"), i)
    src = prim(Op.I32_ADD, local(I32, "src"), i)
    pairs = prim(Op.I32_SHL, prim(Op.I32_SHR_U, n, i32(1)), i32(4))  # bytes of the whole pairs
    return k.Function(
        "add_buffers",
        [("n", I32), ("dst", I32), ("src", I32)],
        (),
        {"i": I32},
        [
            k.Loop(
                label="pairs",
                cond=prim(Op.I32_LT_U, i, pairs),
                body=[
                    store(T.V128, dst, prim(Op.F64X2_ADD, load(T.V128, dst), load(T.V128, src))),
                    set_local("i", prim(Op.I32_ADD, i, i32(16))),
                ],
            ),
            if_(
                prim(Op.I32_NE, prim(Op.I32_AND, n, i32(1)), i32(0)),
                [store(F64, dst, prim(Op.F64_ADD, load(F64, dst), load(F64, src)))],
            ),
        ],
    )


def mix_start_function() -> k.Function:
    """``mix_start(n, dst)``: ``dst[i] = -0.0`` for the block's ``n`` samples, the start of a
    voices' mix that each voice then adds its output to (see :mod:`.passes.mix`): ``-0.0 + x``
    is ``x`` for every ``x`` (``+0.0 + -0.0`` would not be), so the first voice's addition gives
    its own output, and the sum is the interpreter's left-to-right sum bit for bit."""
    i = local(I32, "i")
    return k.Function(
        "mix_start",
        [("n", I32), ("dst", I32)],
        (),
        {"i": I32},
        [
            k.Loop(
                label="fill",
                cond=prim(Op.I32_LT_U, i, prim(Op.I32_SHL, local(I32, "n"), i32(3))),
                body=[
                    store(I64, prim(Op.I32_ADD, local(I32, "dst"), i), i64(-(2**63))),
                    set_local("i", prim(Op.I32_ADD, i, i32(8))),
                ],
            )
        ],
    )


def set_param_function() -> k.Function:
    """``set_param(slot, value, seconds, rate)`` (see the module docstring), exported."""
    slot, value, steps = local(I32, "slot"), local(F64, "value"), local(I64, "steps")
    rounded = prim(Op.F64_NEAREST, prim(Op.F64_MUL, local(F64, "seconds"), local(F64, "rate")))
    return k.Function(
        "set_param",
        [("slot", I32), ("value", F64), ("seconds", F64), ("rate", F64)],
        (),
        {"steps": I64},
        [
            set_local("steps", prim(Op.I64_TRUNC_SAT_F64_S, rounded)),
            if_(
                prim(Op.I64_LE_S, steps, i64(0)),
                [store(F64, slot, value), store(I64, slot, i64(0), REMAINING)],
                [
                    store(F64, slot, value, TARGET),
                    store(
                        F64,
                        slot,
                        prim(
                            Op.F64_DIV,
                            prim(Op.F64_SUB, value, load(F64, slot)),
                            prim(Op.F64_CONVERT_I64_S, steps),
                        ),
                        STEP,
                    ),
                    store(I64, slot, steps, REMAINING),
                ],
            ),
        ],
        export="set_param",
    )


def queue_event_function() -> k.Function:
    """``queue_event(queue, capacity, frame, f0..f3) -> inserted`` (see the module docstring),
    exported. A queue: i32 count at ``queue``, i32 head at ``queue + 4``, entries from ``queue + 8``
    (layout.QueueSlots); the live events are those from the head to the count."""
    q, count, head, pos = local(I32, "queue"), local(I32, "count"), local(I32, "head"), local(I32, "pos")
    at = local(I32, "at")
    fields = [f"f{j}" for j in range(EVENT_FIELDS)]
    return k.Function(
        "queue_event",
        [("queue", I32), ("capacity", I32), ("frame", I64), *((f, F64) for f in fields)],
        (I32,),
        {"count": I32, "head": I32, "pos": I32, "at": I32},
        [
            set_local("count", load(I32, q)),
            if_(prim(Op.I32_GE_U, count, local(I32, "capacity")), [k.ReturnValues(values=[i32(0)])]),
            set_local("head", load(I32, q, 4)),
            set_local("pos", count),
            k.Loop(
                label="find",
                cond=prim(Op.I32_GT_U, pos, head),
                body=[
                    set_local(
                        "at",
                        prim(
                            Op.I32_ADD,
                            q,
                            prim(Op.I32_MUL, prim(Op.I32_SUB, pos, i32(1)), i32(EVENT_BYTES)),
                        ),
                    ),
                    k.Exit(label="find", cond=prim(Op.I64_LE_S, load(I64, at, 8), local(I64, "frame"))),
                    *(  # entry pos - 1 (at) one place up
                        store(I64, at, load(I64, at, 8 + 8 * w), 8 + EVENT_BYTES + 8 * w)
                        for w in range(EVENT_BYTES // 8)
                    ),
                    set_local("pos", prim(Op.I32_SUB, pos, i32(1))),
                ],
            ),
            set_local("at", prim(Op.I32_ADD, q, prim(Op.I32_MUL, pos, i32(EVENT_BYTES)))),
            store(I64, at, local(I64, "frame"), 8),
            *(store(F64, at, local(F64, f), 16 + 8 * j) for j, f in enumerate(fields)),
            store(I32, q, prim(Op.I32_ADD, count, i32(1))),
            k.ReturnValues(values=[i32(1)]),
        ],
        export="queue_event",
    )


def protocol_functions() -> list[k.Function]:
    """The exported memory-protocol functions every kernel carries."""
    return [set_param_function(), queue_event_function()]
