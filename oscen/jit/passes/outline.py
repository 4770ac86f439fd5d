"""A fast loop with no way into the full body: the run in its own function, the full body in another.

Why: :mod:`.unswitch` takes every exit out of a voice body's fast loop (its tests go before each
run, its countdown becomes a trip count), but the full body still follows the run in the same
function, and Cranelift's register allocator then keeps the fast loop's values on the stack
(measured on the 64-voice pair body: 5-7 % slower than with the exits in). With the full body
unreachable from the loop's function the same loop runs from registers (101-112x against
87-105x). Values handed over as parameters, results or globals stayed in stack slots; memory does
not: every function here loads the node state from linear memory in its prologue and stores it
back in its epilogue, as each voice function always has, so the hand-over costs one round trip of
the state per run (a run ends at a block's end, a resynchronisation or a test that holds).

So a voice function ``f`` whose fast loop lost every exit becomes three::

    f_fast(params, i0) -> i    prologue; i = i0; the run (tests, then the fast loop to its stop);
                               epilogue; the sample it stopped at
    f_full(params, i0)         prologue; i = i0; the original sample loop up to n; epilogue
    f(params)                  i = 0; loop: i = f_fast(.., i); leave when i >= n;
                               e = min(i + FULL_RUN, n); f_full(e, .., i); i = e

Every sample runs either the fast loop's statements (when no rare ``if`` of it holds: the same
statements the full body runs then) or the full body: the interpreter's order, bit for bit. Calls
are made only from ``f``, whose loop carries two integers.
"""

from __future__ import annotations

from .. import kernel as k
from ..kernel import T
from ..ops import Op

FULL_RUN = 16
"""Samples the full body runs after a run of the fast loop stops (a ramp runs ``n / FULL_RUN``
pairs of calls a block, a resynchronisation one)."""

I0 = "_i0"
END = "_end"


def _is_start(s: k.Stmt, i: str) -> bool:
    return (
        type(s) is k.SetLocal
        and s.name == i  # type: ignore[attr-defined]
        and type(s.value) is k.Const  # type: ignore[attr-defined]
        and s.value.value == 0  # type: ignore[attr-defined]
    )


def _exits(stmts: list[k.Stmt], out: set[str]) -> bool:
    """Add the labels of the exits and nexts in ``stmts`` to ``out``; False where a statement
    holds one this cannot see (an expression's ``Seq``: the lane bodies have none)."""
    for s in stmts:
        t = type(s)
        if t is k.Exit or t is k.Next:
            out.add(s.label)  # type: ignore[attr-defined]
        elif t is k.If:
            if not (_exits(s.body, out) and _exits(s.orelse, out)):  # type: ignore[attr-defined]
                return False
        elif t is k.Block or t is k.Loop:
            if not _exits(s.body, out):  # type: ignore[attr-defined]
                return False
    return True


def _run(split: k.Stmt) -> k.Block | None:
    """The ``_enter`` block (the tests and the fast loop) of a split sample loop, or None when
    the split is not the unswitched shape or the run can still leave for the full body."""
    if type(split) is not k.Block or not split.body or type(split.body[0]) is not k.Loop:  # type: ignore[attr-defined]
        return None
    node: k.Stmt = split.body[0].body[0] if split.body[0].body else None  # type: ignore[attr-defined]
    while type(node) is k.Block and node.label.startswith("_slow"):  # type: ignore[attr-defined]
        node = node.body[0] if node.body else None  # type: ignore[attr-defined]
    if type(node) is not k.Block or node.label != "_enter":  # type: ignore[attr-defined]
        return None
    labels: set[str] = set()
    if not _exits(node.body, labels):  # type: ignore[attr-defined]
        return None
    inner = {"_enter", "_fast"}
    if labels - inner:
        return None  # an exit to the full body is left in the run
    return node  # type: ignore[return-value]


def outline_run(
    split: k.Function, plain: k.Function, stem: str, index: str = "i", label: str = "sample"
) -> tuple[k.Function, list[k.Function]] | None:
    """``(f, [f_fast, f_full])`` as the module docstring says, from ``split`` (``plain`` after
    :func:`.fastpath.fast_sample_loop` with ``unswitched``) and ``plain``; None when ``split``'s
    run can leave for the full body, or either is not of the sample-loop shape. ``stem``: the
    two new functions' names start with it (one per body in a module)."""
    if split.results or plain.results or (I0 in split.locals) or (END in split.locals):
        return None
    params = dict(split.params)
    if "n" not in params or I0 in params or END in params or index not in split.locals:
        return None
    at = [j for j, s in enumerate(split.body) if type(s) is k.Block and s.label == label]  # type: ignore[attr-defined]
    lp = [j for j, s in enumerate(plain.body) if type(s) is k.Loop and s.label == label]  # type: ignore[attr-defined]
    if len(at) != 1 or len(lp) != 1:
        return None
    j, jp = at[0], lp[0]
    if j == 0 or jp == 0 or not _is_start(split.body[j - 1], index) or not _is_start(plain.body[jp - 1], index):
        return None
    run = _run(split.body[j])
    if run is None:
        return None
    i = k.Local(T.I32, index)
    start = k.SetLocal(name=index, value=k.Local(T.I32, I0))
    fast = k.Function(
        f"{stem}_fast",
        [*split.params, (I0, T.I32)],
        (T.I32,),
        dict(split.locals),
        [*split.body[: j - 1], start, run, *split.body[j + 1 :], k.ReturnValues(values=[i])],
    )
    full = k.Function(
        f"{stem}_full",
        [*plain.params, (I0, T.I32)],
        (),
        dict(plain.locals),
        [*plain.body[: jp - 1], start, *plain.body[jp:]],
    )
    n = k.Local(T.I32, "n")
    args = [k.Local(t, p) for p, t in split.params]
    end = k.Local(T.I32, END)
    more = k.Prim(Op.I32_ADD.result, Op.I32_ADD, [i, k.Const(T.I32, FULL_RUN)])
    drive = k.Loop(
        label="_drive",
        cond=None,
        body=[
            k.Invoke(func=fast.name, args=[*args, i], targets=[index], results=(T.I32,)),
            k.Exit(label="_drive", cond=k.Prim(Op.I32_GE_U.result, Op.I32_GE_U, [i, n])),
            k.SetLocal(
                name=END, value=k.Choose(T.I32, k.Prim(Op.I32_LT_U.result, Op.I32_LT_U, [more, n]), more, n)
            ),
            k.Invoke(func=full.name, args=[end if p == "n" else a for (p, _), a in zip(split.params, args, strict=True)] + [i]),
            k.SetLocal(name=index, value=end),
        ],
    )
    driver = k.Function(
        split.name, split.params, (), {index: T.I32, END: T.I32}, [k.SetLocal(name=index, value=k.Const(T.I32, 0)), drive]
    )
    return driver, [fast, full]


def halves(wide_full: k.Function, pair_full: k.Function, inputs: list[str], width: int, lane_name) -> k.Function:
    """``wide_full`` (the full body of :func:`.interleave.interleave`'s two pairs per loop) as two
    calls of ``pair_full``, one per pair over the same samples: the same code Cranelift compiles
    once. Each voice is on its own, and every sample of a mix still gets the first pair's voices
    before the second's, so the sums are the same floats."""
    per_half: list[list[k.Expr]] = [[], []]
    wide = dict(wide_full.params)
    lanes = {lane_name(p, lane): (p, lane) for p in inputs for lane in range(width)}
    for name, t in pair_full.params:
        for h in (0, 1):
            if name in lanes:
                p, lane = lanes[name]
                name_h = lane_name(p, lane + h * width)
            else:
                name_h = name
            assert name_h in wide, f"{name_h}: not a parameter of {wide_full.name}"
            per_half[h].append(k.Local(t, name_h))
    body: list[k.Stmt] = [k.Invoke(func=pair_full.name, args=args) for args in per_half]
    return k.Function(wide_full.name, wide_full.params, (), {}, body)
