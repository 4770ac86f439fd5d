"""A sample loop whose rare ``if``\\ s leave it: a straight fast loop, and the full body beside it.

Why: a voice body's sample loop holds a few ifs that almost never run (a parameter ramp, the
oscillator's resynchronisation every 1024 samples, a biquad's coefficient update, a phase out of
range). Measured on the 64-voice body, any one of them left in the loop costs about a third of the
voice's speed: its arm (calls, packed polynomials) sits inside the loop, so Cranelift's register
allocator keeps the loop's values on the stack around it; without any, the loop runs from
registers (74x -> 120x real time with every if removed).

So the loop ``L`` (``Exit`` at its top, the body, the counter's step at its end) becomes::

    block sample            ; what the body's Exit(sample) leaves, as before
      loop outer
        block slow_K ... block slow_1
          loop fast         ; the body with each rare if replaced by Exit(slow_k, its cond)
        end slow_1: if_1 and the statements after it up to if_2 (the body from if_1 on) ...
        end slow_K: if_K and the rest of the body (the counter's step included)
      ; back to outer: the next sample runs in the fast loop again

The fast loop runs exactly the statements the body runs while no rare if's condition holds; at
the first one that holds, the sample continues in the full body at that if (its condition is
evaluated again there: it is pure, and nothing ran in between), so every sample runs the
statements it ran before, in the same order. An ``if`` qualifies when it is a statement of the
loop's body itself, has no ``else`` and a pure condition; every other statement stays in both.
"""

from __future__ import annotations

from .. import kernel as k
from ..kernel import T
from . import unswitch
from .liveness import _Unknown, _uses


def _pure(e: k.Expr) -> bool:
    try:
        return _uses(e, set())
    except _Unknown:
        return False


def _rare(s: k.Stmt) -> bool:
    return type(s) is k.If and not s.orelse and _pure(s.cond)  # type: ignore[attr-defined]


def split_loop(loop: k.Loop, unswitch: bool = False) -> list[k.Stmt] | None:
    """The statements replacing ``loop`` (see the module docstring), or None when its body has no
    rare if or the loop is not of the shape the sample loops have (no ``cond``, no ``Next`` of its
    own label). ``unswitch``: exits the fast loop never needs to test inside leave it
    (:mod:`.unswitch`; the caller has the local :data:`.unswitch.STOP` and the label ``_enter``
    free)."""
    if loop.cond is not None or any(
        type(x) is k.Next and x.label == loop.label for x in _statements(loop.body)
    ):
        return None  # a Next of the loop would have no loop to go to
    ifs = [j for j, s in enumerate(loop.body) if _rare(s)]
    if not ifs:
        return None
    fast: list[k.Stmt] = []
    for j, s in enumerate(loop.body):
        if j in ifs:
            fast.append(k.Exit(label=f"_slow{ifs.index(j)}", cond=s.cond))  # type: ignore[attr-defined]
        else:
            fast.append(s)
    inner: list[k.Stmt] = [k.Loop(label="_fast", cond=None, body=fast)]
    if unswitch:
        inner = _unswitched(fast, loop.label, loop.body[: ifs[0]]) or inner
    for n, j in enumerate(ifs):
        end = ifs[n + 1] if n + 1 < len(ifs) else len(loop.body)
        inner = [k.Block(label=f"_slow{n}", body=inner), *loop.body[j:end]]
    return [k.Block(label=loop.label, body=[k.Loop(label="_outer", cond=None, body=inner)])]


def _unswitched(fast: list[k.Stmt], label: str, head: list[k.Stmt]) -> list[k.Stmt] | None:
    """The fast loop without the exits it never needs to test inside, run after their tests
    (any holds: the sample runs the full body, whose first statements ``head`` follow), cut at
    the countdowns' trip count (:mod:`.unswitch`); None when no exit goes."""
    exits = [j for j, s in enumerate(fast) if type(s) is k.Exit and s.label.startswith("_slow")]  # type: ignore[attr-defined]
    count = unswitch.counter(fast, label)
    plan = unswitch.plan(fast, exits, count is not None)
    if not plan.removed:
        return None
    body = [s for j, s in enumerate(fast) if j not in plan.removed]
    pre: list[k.Stmt] = [k.Exit(label="_enter", cond=t) for t in plan.tests]
    if plan.countdowns:
        assert count is not None
        i, n, op = count
        pre.append(unswitch.stop(i, n, plan.countdowns))
        body[0] = k.Exit(
            label="_enter", cond=k.Prim(op.result, op, [k.Local(T.I32, i), k.Local(T.I32, unswitch.STOP)])
        )
    return [k.Block(label="_enter", body=[*pre, k.Loop(label="_fast", cond=None, body=body)]), *head]


def _statements(stmts: list[k.Stmt]):
    """Every statement in ``stmts``, nested ones included (not expressions' ``Seq``: the lanes
    bodies this runs on have none)."""
    for s in stmts:
        yield s
        t = type(s)
        if t is k.If:
            yield from _statements(s.body)  # type: ignore[attr-defined]
            yield from _statements(s.orelse)  # type: ignore[attr-defined]
        elif t is k.Block or t is k.Loop:
            yield from _statements(s.body)  # type: ignore[attr-defined]


def _labels(stmts: list[k.Stmt], out: set[str]) -> None:
    for s in stmts:
        if type(s) in (k.Block, k.Loop):
            out.add(s.label)  # type: ignore[attr-defined]
            _labels(s.body, out)  # type: ignore[attr-defined]
        elif type(s) is k.If:
            _labels(s.body, out)  # type: ignore[attr-defined]
            _labels(s.orelse, out)  # type: ignore[attr-defined]


def fast_sample_loop(fn: k.Function, label: str = "sample", unswitched: bool = False) -> k.Function:
    """``fn`` with its top-level loop ``label`` split (:func:`split_loop`); ``fn`` itself when
    there is no such loop, nothing to split, or the new labels are taken. ``unswitched``: with
    the exits :mod:`.unswitch` takes out of the fast loop."""
    at = [j for j, s in enumerate(fn.body) if type(s) is k.Loop and s.label == label]  # type: ignore[attr-defined]
    if len(at) != 1:
        return fn
    taken: set[str] = set()
    _labels(fn.body, taken)
    if any(t == "_fast" or t == "_outer" or t.startswith("_slow") for t in taken):
        return fn
    free = (
        unswitched
        and "_enter" not in taken
        and unswitch.STOP not in fn.locals
        and unswitch.STOP not in dict(fn.params)
    )
    j = at[0]
    split = split_loop(fn.body[j], unswitch=free)  # type: ignore[arg-type]
    if split is None:
        return fn
    body = [*fn.body[:j], *split, *fn.body[j + 1 :]]
    locals_ = {**fn.locals, unswitch.STOP: T.I32} if free else fn.locals
    return k.Function(fn.name, fn.params, fn.results, locals_, body, fn.export)
