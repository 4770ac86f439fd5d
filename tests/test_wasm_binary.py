"""The binary printer (oscen/jit/backends/wasm_binary.py) writes the module wat2wasm assembles
from the text printer's output: compared section by section (the custom name sections aside),
on graphs of every shape the compiler makes, and on constructs the graphs may not reach."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from random_graphs import graph_specs

from benchmarks.oscen_engine import chain_graph, parallel_graph, voices_graph
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.jit import CraneliftJit, GraphState, validate
from oscen.jit import kernel as k
from oscen.jit.backends import wasm, wasm_binary
from oscen.jit.compiler import same_module, settled
from oscen.jit.kernel import T
from oscen.jit.ops import Op
from oscen.jit.protocol import if_, prim
from oscen.oscillators import Oscillator


def _no_names(binary: bytes) -> list[tuple[int, bytes]]:
    return [s for s in wasm_binary.sections(binary) if s[0] != 0]


def assert_same(module: k.Module) -> None:
    ours = _no_names(wasm_binary.module_binary(module))
    theirs = _no_names(bytes(wasmtime.wat2wasm(wasm.module_text(module))))
    assert [s[0] for s in ours] == [s[0] for s in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a[1] == b[1], f"section {a[0]} differs"


def test_leb128_encodings() -> None:
    assert wasm_binary.uleb(0) == b"\x00"
    assert wasm_binary.uleb(127) == b"\x7f"
    assert wasm_binary.uleb(128) == b"\x80\x01"
    assert wasm_binary.uleb(624485) == b"\xe5\x8e\x26"
    assert wasm_binary.sleb(-1) == b"\x7f"
    assert wasm_binary.sleb(63) == b"\x3f"
    assert wasm_binary.sleb(64) == b"\xc0\x00"
    assert wasm_binary.sleb(-64) == b"\x40"
    assert wasm_binary.sleb(-65) == b"\xbf\x7f"
    assert wasm_binary.sleb(-123456) == b"\xc0\xbb\x78"


GRAPHS = {
    "voices1": lambda: voices_graph(1),
    "voices7": lambda: voices_graph(7),
    "voices64": lambda: voices_graph(64),
    "chain30": lambda: chain_graph(30),
    "parallel20": lambda: parallel_graph(20),
}


@pytest.mark.parametrize("tier", ["quick", "optimized"])
@pytest.mark.parametrize("name", sorted(GRAPHS))
@pytest.mark.parametrize(
    "options", [{}, {"lanes": 1}, {"lanes": 4}, {"state_in_locals": False}, {"voice_groups": False}]
)
def test_the_programs_binary_is_its_texts_assembly(name: str, tier: str, options: dict) -> None:
    program = CraneliftJit(**options).program(settled(GRAPHS[name]().to_ir()), tier)
    same_module(program)  # raises if they differ
    assert_same(program.module)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(graph_specs())
def test_random_graphs_binary_is_its_texts_assembly(spec) -> None:
    for tier in ("quick", "optimized"):
        same_module(CraneliftJit().program(settled(spec.build().to_ir()), tier))


def _function(body: list[k.Stmt], locals_: dict[str, T], results: tuple[T, ...] = (T.F64,)) -> k.Module:
    fn = k.Function("f", [("a", T.F64), ("i", T.I32)], results, locals_, body, export="f")
    return k.Module(
        [fn], globals=[k.Global("math_error", T.I32, 0, mutable=True, export="math_error")], memory_pages=1
    )


def _f64(v: float) -> k.Const:
    return k.Const(T.F64, v)


def test_constants_keep_their_bits_and_memory_ops_their_offsets() -> None:
    nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8_0000_0000_1234))[0]
    values = [-0.0, 0.0, math.inf, -math.inf, nan, 1e-310, 2.5]
    body: list[k.Stmt] = [k.Store(T.F64, k.Const(T.I32, 64), 8 * j, _f64(v)) for j, v in enumerate(values)]
    body += [
        k.Store(T.I64, k.Const(T.I32, 0), 200, k.Const(T.I64, -(2**63))),
        k.Store(T.I32, k.Const(T.I32, 0), 300, k.Const(T.I32, 2**31 + 5)),
        k.Store(T.V128, k.Const(T.I32, 0), 400, k.Const(T.V128, bytes(range(16)))),
        k.SetLocal("x", k.Load(T.F64, k.Local(T.I32, "i"), 70000)),
        k.ReturnValues([k.Local(T.F64, "x")]),
    ]
    assert_same(_function(body, {"x": T.F64}))


def test_control_flow_labels_selects_and_traps() -> None:
    a, i = k.Local(T.F64, "a"), k.Local(T.I32, "i")
    lt = prim(Op.F64_LT, a, _f64(1.0))
    body: list[k.Stmt] = [
        k.Block(
            "out",
            [
                k.Loop(
                    "l",
                    prim(Op.I32_LT_S, i, k.Const(T.I32, 10)),
                    [
                        k.SetLocal("i", prim(Op.I32_ADD, i, k.Const(T.I32, 1))),
                        if_(lt, [k.Next("l")], [k.Exit("out", prim(Op.F64_GT, a, _f64(5.0)))]),
                        k.SetLocal(
                            "a",
                            k.Select(
                                T.F64,
                                k.Logical(T.BOOL, "and", lt, prim(Op.I32_EQZ, i)),
                                k.Let(T.F64, "t", _f64(2.0), prim(Op.F64_MUL, k.Local(T.F64, "t"), a)),
                                k.Choose(T.F64, k.Logical(T.BOOL, "or", lt, lt), a, _f64(3.0)),
                            ),
                        ),
                    ],
                )
            ],
        ),
        if_(prim(Op.F64_NE, a, a), [k.Trap(code=3, node=k.Const(T.I32, 1024))]),
        if_(prim(Op.F64_GT, a, _f64(1e300)), [k.Trap(code=1, math_error=2)]),
        k.ReturnValues([a]),
    ]
    assert_same(_function(body, {"t": T.F64}))


def test_an_instances_renames_and_sync_marks() -> None:
    code = k.Code(
        [
            k.SetLocal("S_x", prim(Op.F64_ADD, k.Local(T.F64, "S_x"), _f64(1.0))),
            k.SyncState(direction="flush"),
            k.Block("b", [k.Exit("b", prim(Op.F64_GT, k.Local(T.F64, "S_x"), _f64(2.0)))]),
            k.SyncState(direction="reload"),
        ],
        {},
    )
    inst = k.Instance(
        code=code,
        renames={"S_x": "n1_x", "b": "n1_b"},
        flush=[k.Store(T.F64, k.Const(T.I32, 0), 0, k.Local(T.F64, "S_x"))],
        reload=[k.SetLocal("S_x", k.Load(T.F64, k.Const(T.I32, 0), 8))],
    )
    body: list[k.Stmt] = [inst, inst, k.ReturnValues([k.Local(T.F64, "n1_x")])]
    assert_same(_function(body, {"n1_x": T.F64}))


def test_a_kept_body_in_a_module_of_other_indices() -> None:
    """A lane body's bytes are kept between compiles with its calls' indices as names: a graph
    with one more function before them (another node variant's helper) still assembles alike,
    and still plays as the interpreter does."""
    plain = voices_graph(8)
    jit = CraneliftJit()
    same_module(jit.program(settled(plain.to_ir()), "quick"))
    more = voices_graph(8)
    extra = more.add_node(Oscillator.sine(330.0, 0.1), "extra")
    gain = more.add_node(Gain(0.5), "g")
    more.connect(extra.output, gain.input)
    program = jit.program(settled(more.to_ir()), "quick")
    same_module(program)
    compiled = jit.compile_first(more.to_ir())
    state = GraphState.from_graph(more)
    got = compiled.process_block(state, 256)
    want = more.process_block(256)
    np.testing.assert_array_equal(got, want)


def test_the_text_is_printed_when_asked_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "ENABLED", False)  # the tests' checks print every text
    graph = Graph(8000.0)
    graph.add_node(Gain(0.5), "g")
    compiled = CraneliftJit().compile(graph.to_ir())
    assert compiled.program.text is None
    text = compiled.wat
    assert text.startswith("(module") and compiled.program.text is text
    assert compiled.stats.wat_bytes == len(text)


def test_kept_bytes_name_their_callees_in_each_module() -> None:
    """A helper's bytes are kept with its call as a name: in a module where the callee sits at
    another index the call follows it; in one without the callee the printer says so."""
    helper = k.Function("h", [], (), {}, [k.Instance(code=k.Code([k.Invoke("g", [])], {}))])
    g = k.Function("g", [], (), {}, [])
    other = k.Function("other", [], (), {}, [])
    first = k.Module([g, helper])
    second = k.Module([other, g, helper])
    assert_same(first)
    assert_same(second)  # the kept bytes, with g's index 1 now
    with pytest.raises(wasm.PrintError, match="'g'"):
        wasm_binary.module_binary(k.Module([other, helper]))


def test_the_math_library_module() -> None:
    """Every math function (the ops the graphs call out of line, globals, exports)."""
    from oscen.jit import mathlib

    assert_same(mathlib.library_module())
