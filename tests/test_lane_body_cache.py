"""Lane bodies kept for the whole process (oscen.jit.session.CompileSession.lane_body) and the
printer's kept texts (oscen.jit.backends.wasm.keep_text).

A new compiler (``CraneliftJit()``: bench_peers' ``prepare``, the next graph of a batch) with a
graph of the same voices reuses the lane body another compiler made, and the graph it compiles
is still exact (the interpreter's output, a fault naming the right voice's node). A body whose
printing is kept prints as it did; one whose printing numbers trap sites by the caller's table
is never kept."""

from __future__ import annotations

import pytest
from jit_support import assert_engines_match, run_both
from test_voice_groups import Divider, sines_into_lowpasses

from oscen.gain import Gain
from oscen.graph import Graph
from oscen.jit import CraneliftJit, GraphState, NodeFault, session, skeleton
from oscen.jit import kernel as k
from oscen.jit.backends import wasm
from oscen.jit.kernel import T
from oscen.oscillators import Oscillator

SR = 48000.0


@pytest.fixture
def made(monkeypatch) -> list[int]:
    """The lanes pass's runs (one entry each), with the process's lane bodies emptied first."""
    monkeypatch.setattr(session, "_LANE_BODIES", {})
    runs: list[int] = []
    real = skeleton.lane_body

    def counted(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(skeleton, "lane_body", counted)
    return runs


def test_a_new_compiler_reuses_the_lane_body_of_the_same_voices(made: list[int]) -> None:
    first = CraneliftJit().compile(sines_into_lowpasses(8, SR).to_ir())
    assert len(made) == 1
    other = sines_into_lowpasses(8, SR)  # other nodes, the same voices
    second = CraneliftJit().compile(other.to_ir())
    assert len(made) == 1  # not made again
    assert second.program.wat == first.program.wat
    interp, compiled = run_both(
        lambda: sines_into_lowpasses(8, SR), 3000, jit=CraneliftJit(), blocks=[256, 97]
    )
    assert len(made) == 1
    assert_engines_match(interp, compiled)


def test_other_voices_make_their_own_lane_body(made: list[int]) -> None:
    CraneliftJit().compile(sines_into_lowpasses(8, SR).to_ir())
    CraneliftJit(lanes=4).compile(sines_into_lowpasses(8, SR).to_ir())  # another width
    assert len(made) == 2
    g = Graph(SR)  # other voices: saws
    mix = g.add_node(Gain(0.25))
    for v in range(4):
        osc = g.add_node(Oscillator.saw(100.0 + v, 0.5))
        g.connect(osc.output, mix.input)
    g.set_output(mix.output)
    CraneliftJit().compile(g.to_ir())
    assert len(made) == 3


def dividers(n: int) -> tuple[Graph, list]:
    graph = Graph(SR)
    mix = graph.add_node(Gain(0.5), "mix")
    handles = []
    for v in range(n):
        osc = graph.add_node(Oscillator.sine(100.0 + v, 0.5), f"osc{v}")
        div = graph.add_node(Divider(1.0), f"divider{v}")
        graph.connect(osc.output, div.input)
        graph.connect(div.output, mix.input)
        handles.append(div)
    graph.set_output(mix.output)
    return graph, handles


def test_a_fault_in_a_reused_lane_body_names_that_voices_node(made: list[int]) -> None:
    CraneliftJit().compile(dividers(6)[0].to_ir())
    graph, handles = dividers(6)
    ir = graph.to_ir()
    compiled = CraneliftJit().compile(ir)
    assert len(made) == 1
    state = GraphState.from_graph(graph, ir=ir)
    compiled.bind(state)
    compiled.process_block(state, 64)
    state.set_value(handles[4].divisor, 0.0)
    with pytest.raises(NodeFault) as info:
        compiled.process_block(state, 64)
    assert isinstance(info.value, ZeroDivisionError)
    assert info.value.node == "divider4"


def _trap_body(where: str) -> list[k.Stmt]:
    site = k.TrapSite(None, where)
    return [k.If(k.NOSITE, k.Local(T.BOOL, "c"), [k.Trap(code=1, where=site)], [])]


def test_a_kept_body_prints_as_it_did_and_once() -> None:
    body = [
        k.SetLocal(name="x", value=k.Const(T.F64, 1.5)),
        k.Store(type=T.F64, addr=k.Const(T.I32, 64), offset=8, value=k.Local(T.F64, "x")),
    ]
    fn = k.Function("f", [], (), {"x": T.F64}, body)
    fresh = wasm.function_text(fn)
    wasm.keep_text(body)
    assert wasm.function_text(fn) == fresh
    assert wasm._kept[id(body)][1] is not None  # kept now
    assert wasm.function_text(k.Function("g", [], (), {"x": T.F64}, body)) == fresh.replace("$f", "$g", 1)


def test_a_body_numbering_trap_sites_by_the_callers_table_is_never_kept() -> None:
    body = _trap_body("here")
    fn = k.Function("f", [], (), {"c": T.BOOL}, body)
    wasm.keep_text(body)
    one = wasm.function_text(fn, lambda where: 7)
    two = wasm.function_text(fn, lambda where: 9)
    assert "(i32.const 7)" in one and "(i32.const 9)" in two
    assert wasm._kept[id(body)][1] is None
