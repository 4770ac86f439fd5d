"""What the scalar fast loop's analysis costs per segment (passes.scalarloop), counted, not timed.

A 1,000-node chain has 250 scalar segments; when the analysis walked each statement of a segment
once per question (up to 9 walks of one statement), it took 5x the rest of the compile's
frontend. Here the walks are counted: each statement of a segment is walked at most twice
(once for its names, once for its control flow and data flow), and the shortcuts give the
answers of the walks they replace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from test_scalar_fastloop import modulated, seed

from benchmarks.oscen_engine import chain_graph
from oscen.graph import Graph
from oscen.jit import CraneliftJit, kernel
from oscen.jit import skeleton as skeleton_module
from oscen.jit.passes import scalarloop
from oscen.jit.passes.walk import walk


def segments(graph: Graph) -> list[kernel.Function]:
    """The scalar segments of ``graph`` as ``scalar_fast_loop`` receives them."""
    got: list[kernel.Function] = []
    real = skeleton_module.scalar_fast_loop

    def spy(fn: kernel.Function, *args, **kwargs):  # noqa: ANN202
        got.append(fn)
        return real(fn, *args, **kwargs)

    skeleton_module.scalar_fast_loop = spy  # type: ignore[assignment]
    try:
        CraneliftJit().program(graph.to_ir(), "optimized")
    finally:
        skeleton_module.scalar_fast_loop = real  # type: ignore[assignment]
    return got


def test_each_statement_of_a_segment_is_walked_at_most_twice(monkeypatch) -> None:
    fn = segments(chain_graph(12))[1]  # gain, lowpass, gain, lowpass: rare ifs, syncs, outlined
    statements = {id(x) for x in walk(fn.body) if isinstance(x, kernel.Stmt)}
    assert len(statements) > 50
    visits: Counter[int] = Counter()

    def counted(walker):  # noqa: ANN001, ANN202
        def walker_counted(obj: object) -> Iterator[object]:
            for x in walker(obj):
                visits[id(x)] += 1
                yield x

        return walker_counted

    monkeypatch.setattr(scalarloop, "_shallow", counted(scalarloop._shallow))
    monkeypatch.setattr(scalarloop, "walk", counted(scalarloop.walk))
    out = scalarloop.scalar_fast_loop(fn, globals_out=[])
    assert [f.name for f in out] == [fn.name, f"{fn.name}_fast"]  # it did split and outline
    most = max(visits[i] for i in statements)
    assert most <= 2, f"a statement of the segment was walked {most} times"


@pytest.mark.parametrize(
    "build", [seed, modulated, lambda: chain_graph(12)], ids=["seed", "modulated", "chain"]
)
def test_remembered_names_are_the_walked_names(build) -> None:
    for fn in segments(build()):
        names = scalarloop._Names()
        loop = scalarloop.open_loop(next(s for s in fn.body if isinstance(s, kernel.Loop)))
        for stmts in ([s] for s in [*fn.body, *loop.body]):
            for mode in ("reads", "writes", "all"):
                assert names(stmts, mode) == scalarloop._names(stmts, mode=mode)
        # a new statement around remembered ones: its children's names, looked up
        around = [kernel.Loop(label="_x", cond=None, body=loop.body)]
        walked = names.walked
        for mode in ("reads", "writes", "all"):
            assert names(around, mode) == scalarloop._names(around, mode=mode)
        assert names.walked == walked + 1


@pytest.mark.parametrize(
    "build", [seed, modulated, lambda: chain_graph(12)], ids=["seed", "modulated", "chain"]
)
def test_tails_in_one_walk_are_the_tails_one_by_one(build) -> None:
    for fn in segments(build()):
        loop = scalarloop.open_loop(next(s for s in fn.body if isinstance(s, kernel.Loop)))
        body = loop.body
        after = {"n0_output", "i"}
        for starts in ([], [0], [1, 3], list(range(len(body))), [len(body) // 2, len(body) - 1]):
            want = [scalarloop._exposed(body[j:], after) for j in starts]
            assert scalarloop._tails_exposed(body, starts, after) == want
