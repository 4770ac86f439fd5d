"""Dead local stores (oscen.jit.passes.liveness): what is dropped, what must stay.

The pass runs on every lanes body (the blends of arm-local temporaries); the differential tests
(test_lanes*, test_voice_groups, test_voice_mix) check that those bodies still compute the same
bits. Here: the analysis itself, on small bodies, including the loop-carried cases where dropping
a store would be wrong.
"""

from __future__ import annotations

from oscen.jit import kernel as k
from oscen.jit.ops import Op
from oscen.jit.passes.liveness import drop_dead_stores

F, W = k.T.F64, k.T.I32


def loc(name: str, t: k.T = F) -> k.Local:
    return k.Local(t, name)


def setl(name: str, value: k.Expr) -> k.SetLocal:
    return k.SetLocal(name=name, value=value)


def add(a: k.Expr, b: k.Expr) -> k.Prim:
    return k.Prim(F, Op.F64_ADD, [a, b])


def one() -> k.Const:
    return k.Const(F, 1.0)


def fn(body: list[k.Stmt], locals_: dict[str, k.T]) -> k.Function:
    return k.Function("f", [("n", W), ("out", W)], (), locals_, body)


def names(body: list[k.Stmt]) -> list[str]:
    return [s.name for s in body if isinstance(s, k.SetLocal)]


def sample_loop(body: list[k.Stmt]) -> k.Loop:
    i = loc("i", W)
    return k.Loop(
        label="sample",
        cond=None,
        body=[
            k.Exit(label="sample", cond=k.Prim(W, Op.I32_GE_U, [i, loc("n", W)])),
            *body,
            setl("i", k.Prim(W, Op.I32_ADD, [i, k.Const(W, 1)])),
        ],
    )


def test_a_store_nothing_reads_goes_and_its_local_with_it() -> None:
    body = [
        setl("a", one()),
        setl("dead", add(loc("a"), one())),
        k.Store(type=F, addr=loc("out", W), offset=0, value=loc("a")),
    ]
    out = drop_dead_stores(fn(body, {"a": F, "dead": F}))
    assert names(out.body) == ["a"] and "dead" not in out.locals


def test_a_save_and_blend_of_a_temporary_dead_after_the_arm_go_in_a_loop() -> None:
    """The lanes pass's shape: old = t; if any lane: t = ...; t = select(t, old); t unused after."""
    mask = k.Prim(W, Op.I32_NE, [loc("i", W), k.Const(W, 3)])
    arm = [setl("t", add(loc("x"), one())), setl("x", loc("t")),
           setl("t", k.Choose(F, mask, loc("t"), loc("old")))]  # fmt: skip
    loop = sample_loop([setl("old", loc("t")), k.If(k.NOSITE, mask, arm, [])])
    body = [setl("i", k.Const(W, 0)), loop, k.Store(type=F, addr=loc("out", W), offset=0, value=loc("x"))]
    out = drop_dead_stores(fn(body, {"i": W, "x": F, "t": F, "old": F}))
    (new_loop,) = [s for s in out.body if isinstance(s, k.Loop)]
    assert "old" not in out.locals
    (kept_if,) = [s for s in new_loop.body if isinstance(s, k.If)]
    assert names(kept_if.body) == ["t", "x"]


def test_a_value_carried_around_the_loop_stays() -> None:
    """``acc`` is read at the top of the next sample: live at the loop's head, its store stays."""
    loop = sample_loop(
        [k.Store(type=F, addr=loc("out", W), offset=0, value=loc("acc")), setl("acc", add(loc("acc"), one()))]
    )
    out = drop_dead_stores(fn([setl("i", k.Const(W, 0)), setl("acc", one()), loop], {"i": W, "acc": F}))
    (new_loop,) = [s for s in out.body if isinstance(s, k.Loop)]
    assert "acc" in names(new_loop.body) and names(out.body) == ["i", "acc"]


def test_a_value_read_after_an_exit_or_next_stays() -> None:
    inner = k.Block(
        label="b",
        body=[
            setl("x", one()),
            k.Exit(label="b", cond=k.Prim(W, Op.I32_EQZ, [loc("n", W)])),
            setl("x", add(loc("x"), one())),
        ],
    )
    out = drop_dead_stores(
        fn([inner, k.Store(type=F, addr=loc("out", W), offset=0, value=loc("x"))], {"x": F})
    )
    assert names(out.body[0].body) == ["x", "x"]
    # Next: the loop's head reads y (stored just before the Next)
    loop = k.Loop(label="l", cond=k.Prim(W, Op.I32_NE, [loc("n", W), k.Const(W, 0)]),
                  body=[k.Store(type=F, addr=loc("out", W), offset=0, value=loc("y")), setl("y", one()), k.Next(label="l")])  # fmt: skip
    out = drop_dead_stores(fn([loop], {"y": F}))
    assert names(out.body[0].body) == ["y"]


def test_what_may_trap_or_call_stays_and_unknown_statements_leave_the_body_alone() -> None:
    div = k.Prim(W, Op.I32_DIV_S, [loc("n", W), loc("n", W)])
    call = k.CallFn(F, "m_sin", [one()])
    out = drop_dead_stores(fn([setl("q", div), setl("s", call)], {"q": W, "s": F}))
    assert names(out.body) == ["q", "s"]
    unknown = fn([setl("dead", one()), k.Assign(k.NOSITE, loc("z"), one())], {"dead": F, "z": F})
    assert drop_dead_stores(unknown) is unknown
