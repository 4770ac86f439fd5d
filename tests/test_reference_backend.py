"""The reference backend against wasmtime: every primitive op bit for bit on edge and random
values, every construct on the modules the printer's own tests run, traps where WebAssembly traps.

Each op is a one-op Function printed by the WebAssembly backend (``backends/wasm.py``) and run
by wasmtime, and the same Function run by the reference backend: results must have the same bits
(a NaN matches any NaN: payloads are not part of the contract), or both must trap with the same
trap code.
"""

from __future__ import annotations

import math
import struct
import time

import numpy as np
import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

import oscen.jit
from oscen.graph import Graph
from oscen.jit import CompiledGraph, CompileStats, GraphState, NodeFault, NodeTimeout, validate
from oscen.jit import kernel as k
from oscen.jit.backends import reference as ref
from oscen.jit.backends import wasm
from oscen.jit.backends.reference_graph import ReferenceGraph
from oscen.jit.engine import engine
from oscen.jit.frontend.typing import settled
from oscen.jit.kernel import T
from oscen.jit.layout import FRAME, INTERRUPT, NODE, TRAP_CODE, TRAP_SITE, Layout
from oscen.jit.ops import Op
from oscen.jit.protocol import copy_words_function, protocol_functions, ramp_function
from oscen.jit.skeleton import Program
from oscen.oscillators import Oscillator

F_EDGES = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    1.5,
    2.5,
    -2.5,
    3.5,
    0.49999999999999994,
    4503599627370497.0,
    2.0**52,
    2.0**52 - 0.5,
    9007199254740993.0,
    2.0**31,
    -(2.0**31),
    -(2.0**31) - 1.0,
    2.0**31 - 0.5,
    2.0**63,
    -(2.0**63),
    9223372036854774784.0,
    1.8446744073709552e19,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    1e-310,
    math.pi,
    -math.e,
    math.inf,
    -math.inf,
    math.nan,
    -math.nan,
]
I64_EDGES = [0, 1, -1, 2, -2, 7, -7, 63, 64, 65, -64, 2**32, 2**32 - 1, 2**31, -(2**31), 2**53 + 1]
I64_EDGES += [2**62, 2**63 - 1, -(2**63), -(2**63) + 1, 0x5555555555555555, -0x123456789ABCDEF]
I32_EDGES = [0, 1, -1, 2, -2, 7, -7, 31, 32, 33, -32, 2**31 - 1, -(2**31), -(2**31) + 1, 0x55555555, 65536]
BOOL_EDGES = [0, 1]
EDGES = {T.F64: F_EDGES, T.I64: I64_EDGES, T.I32: I32_EDGES, T.BOOL: BOOL_EDGES}
WASM_TYPE = {T.F64: wasmtime.ValType.f64(), T.I64: wasmtime.ValType.i64(), T.I32: wasmtime.ValType.i32()}


SCALAR_OPS = [op for op in Op if T.V128 not in (*op.args, op.result)]
"""The ops on scalars (the v128 ones: tests/test_simd.py, through memory: wasmtime's Python API
passes no v128 values)."""


def one_op_function(op: Op) -> k.Function:
    params = [(f"a{i}", t) for i, t in enumerate(op.args)]
    value = k.Prim(op.result, op, [k.Local(t, n) for n, t in params])
    return k.Function("f", params, (op.result,), {}, [k.ReturnValues(values=[value])], export="f")


class Both:
    """One module instantiated in wasmtime and in the reference backend."""

    def __init__(self, module: k.Module, wat: str | None = None) -> None:
        self.store = wasmtime.Store()
        text = wat or wasm.module_text(module)
        self.wasm = wasmtime.Instance(self.store, wasmtime.Module(self.store.engine, text), [])
        self.exports = self.wasm.exports(self.store)
        self.ref = ref.CompiledModule(module).instantiate()

    def wasm_call(self, name: str, *args):
        try:
            return ("ok", self.exports[name](self.store, *args))
        except wasmtime.Trap as trap:
            return ("trap", trap.trap_code.name)

    def ref_call(self, name: str, *args):
        export = {f.export: f.name for f in self.ref.compiled.module.functions if f.export}[name]
        try:
            return ("ok", self.ref.call(export, *args))
        except ref.WasmTrap as trap:
            return ("trap", trap.trap_code)


def _bits(t: T, v) -> object:
    if t == T.F64:
        v = float(v)
        return "nan" if v != v else struct.unpack("<q", struct.pack("<d", v))[0]
    bits = 64 if t == T.I64 else 32
    return int(v) & ((1 << bits) - 1)


def assert_same(op: Op, args: tuple, wasm_result, ref_result) -> None:
    if wasm_result[0] == "ok" and ref_result[0] == "ok":
        assert _bits(op.result, wasm_result[1]) == _bits(op.result, ref_result[1]), (
            f"{op.name}{args}: wasmtime {wasm_result[1]!r}, reference {ref_result[1]!r}"
        )
        if op.result in (T.I64, T.I32, T.BOOL):
            assert isinstance(ref_result[1], int) and not isinstance(ref_result[1], float)
    else:
        assert wasm_result == ref_result, f"{op.name}{args}: wasmtime {wasm_result}, reference {ref_result}"


_BOTH: dict[Op, Both] = {}


def both_for(op: Op) -> Both:
    if op not in _BOTH:
        _BOTH[op] = Both(k.Module([one_op_function(op)]))
    return _BOTH[op]


def _edge_args(op: Op) -> list[tuple]:
    if op.arity == 1:
        return [(a,) for a in EDGES[op.args[0]]]
    return [(a, b) for a in EDGES[op.args[0]] for b in EDGES[op.args[1]]]


@pytest.mark.parametrize("op", SCALAR_OPS, ids=lambda o: o.name)
def test_every_op_matches_wasmtime_on_edge_values(op: Op) -> None:
    both = both_for(op)
    for args in _edge_args(op):
        assert_same(op, args, both.wasm_call("f", *args), both.ref_call("f", *args))


def _value(t: T) -> st.SearchStrategy:
    if t == T.F64:
        return st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(-1e20, 1e20),
            st.integers(-(2**64), 2**64).map(float),
            st.integers(0, 2**64 - 1).map(lambda b: struct.unpack("<d", struct.pack("<Q", b))[0]),
        )
    if t == T.I64:
        return st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-70, 70))
    if t == T.I32:
        return st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-40, 40))
    return st.integers(0, 1)


@st.composite
def _op_and_args(draw: st.DrawFn) -> tuple[Op, tuple]:
    op = draw(st.sampled_from(SCALAR_OPS))
    return op, tuple(draw(_value(t)) for t in op.args)


@settings(max_examples=600, deadline=None)
@given(_op_and_args())
def test_every_op_matches_wasmtime_on_random_values(case: tuple[Op, tuple]) -> None:
    op, args = case
    both = both_for(op)
    assert_same(op, args, both.wasm_call("f", *args), both.ref_call("f", *args))


# ---------------------------------------------------------------------------------------- constructs
def f64(v: float) -> k.Const:
    return k.Const(T.F64, v)


def i64(v: int) -> k.Const:
    return k.Const(T.I64, v)


def i32(v: int) -> k.Const:
    return k.Const(T.I32, v)


def loc(t: T, name: str) -> k.Local:
    return k.Local(t, name)


def lt(a: k.Expr, b: k.Expr) -> k.Prim:
    return k.Prim(T.BOOL, Op.I64_LT_S, [a, b])


def add(a: k.Expr, b: k.Expr) -> k.Prim:
    return k.Prim(T.I64, Op.I64_ADD, [a, b])


def eq(a: k.Expr, b: k.Expr) -> k.Prim:
    return k.Prim(T.BOOL, Op.I64_EQ, [a, b])


def test_nested_loops_blocks_exit_and_next_to_outer_labels() -> None:
    """Jumps out of several levels (Exit/Next of an outer loop from inside an inner loop and a
    block) as wasm's br does."""
    i, j, acc = loc(T.I64, "i"), loc(T.I64, "j"), loc(T.I64, "acc")
    body = [
        k.SetLocal(name="i", value=i64(0)),
        k.SetLocal(name="acc", value=i64(0)),
        k.Loop(
            label="outer",
            cond=lt(i, loc(T.I64, "n")),
            body=[
                k.SetLocal(name="i", value=add(i, i64(1))),
                k.SetLocal(name="j", value=i64(0)),
                k.Block(
                    label="blk",
                    body=[
                        k.Loop(
                            label="inner",
                            cond=None,
                            body=[
                                k.SetLocal(name="j", value=add(j, i64(1))),
                                k.ExprStmt(k.NOSITE, i64(0)),
                                k.If(k.NOSITE, eq(j, i64(3)), [k.Next(label="outer")], []),
                                k.If(k.NOSITE, eq(i, i64(5)), [k.Exit(label="blk")], []),
                                k.Exit(label="outer", cond=eq(i, i64(9))),
                                k.SetLocal(name="acc", value=add(acc, j)),
                                k.Exit(label="inner", cond=lt(i64(100), j)),
                            ],
                        ),
                    ],
                ),
                k.SetLocal(name="acc", value=add(acc, i64(1000))),
            ],
        ),
        k.ReturnValues(values=[add(k.Prim(T.I64, Op.I64_MUL, [acc, i64(100)]), i)]),
    ]
    fn = k.Function("g", [("n", T.I64)], (T.I64,), {"i": T.I64, "j": T.I64, "acc": T.I64}, body, export="g")
    both = Both(k.Module([fn]))
    for n in (0, 1, 4, 5, 6, 8, 9, 12):
        assert both.ref_call("g", n) == both.wasm_call("g", n), n


def test_memory_globals_traps_invoke_seq_let_select_and_evaluation_order() -> None:
    """Loads and stores (aligned and not, constant and computed addresses), globals, Seq/Let in
    operands (earlier operands are evaluated first), lazy Select and Logical, eager Choose, a
    multi-value Invoke and a Trap writing its site and code into the header."""
    a = loc(T.I32, "a")
    x = loc(T.F64, "x")
    divmod_fn = k.Function(
        "divmod",
        [("p", T.I64), ("q", T.I64)],
        (T.I64, T.I64),
        {},
        [
            k.ReturnValues(
                values=[
                    k.Prim(T.I64, Op.I64_DIV_S, [loc(T.I64, "p"), loc(T.I64, "q")]),
                    k.Prim(T.I64, Op.I64_REM_S, [loc(T.I64, "p"), loc(T.I64, "q")]),
                ]
            )
        ],
    )
    site = k.TrapSite(k.Site("user.py", 3), "x")
    body = [
        k.Store(type=T.F64, addr=a, offset=3, value=x),  # unaligned
        k.Store(type=T.I32, addr=i32(64), offset=0, value=k.Prim(T.BOOL, Op.F64_LT, [x, f64(0.0)])),
        k.Store(type=T.I64, addr=i32(72), offset=8, value=i64(-5)),
        k.SetGlobal(name="g", value=k.Prim(T.F64, Op.F64_ADD, [k.GetGlobal(T.F64, "g"), x])),
        k.Invoke(
            func="divmod",
            args=[k.Load(T.I64, i32(80)), k.Const(T.I64, 3)],
            targets=["q", "r"],
            results=(T.I64, T.I64),
        ),
        k.SetLocal(
            name="y",
            value=k.Prim(
                T.F64,
                Op.F64_SUB,
                [
                    x,  # read before the Seq below assigns x
                    k.Seq(
                        T.F64, [k.SetLocal(name="x", value=f64(100.0))], k.Let(T.F64, "z", x, loc(T.F64, "z"))
                    ),
                ],
            ),
        ),
        k.If(
            k.NOSITE,
            k.Logical(
                T.BOOL, "and", k.Prim(T.BOOL, Op.F64_GT, [x, f64(1000.0)]), k.Load(T.BOOL, i32(1 << 20))
            ),
            [k.SetLocal(name="y", value=f64(-1.0))],
            [],
        ),
        k.If(
            k.NOSITE, k.Prim(T.BOOL, Op.I64_EQ, [loc(T.I64, "r"), i64(-2)]), [k.Trap(code=7, where=site)], []
        ),
        k.ReturnValues(
            values=[
                k.Prim(
                    T.F64,
                    Op.F64_ADD,
                    [
                        loc(T.F64, "y"),
                        k.Select(
                            T.F64,
                            k.Prim(T.BOOL, Op.I64_LT_S, [loc(T.I64, "q"), i64(0)]),
                            f64(0.25),
                            k.Load(T.F64, a, 3),
                        ),
                    ],
                ),
                k.Choose(T.I64, k.Prim(T.BOOL, Op.F64_LT, [x, f64(50.0)]), loc(T.I64, "q"), loc(T.I64, "r")),
                k.Load(T.I32, i32(64)),
            ]
        ),
    ]
    fn = k.Function(
        "h",
        [("a", T.I32), ("x", T.F64)],
        (T.F64, T.I64, T.I32),
        {"q": T.I64, "r": T.I64, "y": T.F64, "z": T.F64},
        body,
        export="h",
    )
    module = k.Module([divmod_fn, fn], globals=[k.Global("g", T.F64, 0.5, export="g")], memory_pages=1)
    both = Both(module)
    wasm_memory = both.exports["memory"]
    for a_, x_ in [(200, 1.5), (1001, -3.25), (4000, math.inf), (333, math.nan)]:
        w = both.wasm_call("h", a_, x_)
        r = both.ref_call("h", a_, x_)
        assert _tuple_bits(w) == _tuple_bits(r), (a_, x_, w, r)
        mem = np.frombuffer(wasm_memory.read(both.store, 0, 65536), dtype=np.uint8)
        assert np.array_equal(mem, both.ref.memory)
        g = both.exports["g"].value(both.store)
        assert _bits(T.F64, g) == _bits(T.F64, both.ref.global_value("g"))
    # -5 // 3 in wasm: -1 rem -2: the trap, its site number (no table here: 0) and code in the header
    both.ref.memory[80:88] = np.frombuffer(struct.pack("<q", -5), np.uint8)
    both.exports["memory"].write(both.store, struct.pack("<q", -5), 80)
    assert both.wasm_call("h", 8, 2.0) == both.ref_call("h", 8, 2.0) == ("trap", "UNREACHABLE")
    header = both.ref.memory[TRAP_SITE : TRAP_CODE + 4].view(np.int32)
    assert list(header) == [0, 7]
    # an access past the memory traps
    assert (
        both.wasm_call("h", 65534, 1.0) == both.ref_call("h", 65534, 1.0) == ("trap", "MEMORY_OUT_OF_BOUNDS")
    )


def _tuple_bits(result):
    if result[0] != "ok":
        return result
    f, q, b = result[1]
    return (_bits(T.F64, f), _bits(T.I64, q), _bits(T.I32, b))


def test_instances_rename_and_fill_state_sync_marks_and_number_code_sites() -> None:
    """An Instance's Code runs with its locals renamed and its SyncState marks replaced; a Trap
    in it numbers its site in the Code's table (position + 1), as the printer does."""
    s1, s2 = k.TrapSite(k.Site("n.py", 1)), k.TrapSite(k.Site("n.py", 2))
    code = k.Code(
        body=[
            k.SetLocal(name="v", value=k.Prim(T.F64, Op.F64_MUL, [loc(T.F64, "v"), f64(2.0)])),
            k.SyncState(direction="flush"),
            k.If(
                k.NOSITE,
                k.Prim(T.BOOL, Op.F64_GT, [loc(T.F64, "v"), f64(100.0)]),
                [k.Trap(code=1, where=s2)],
                [],
            ),
            k.SyncState(direction="reload"),
        ],
        locals={"v": T.F64},
        sites=[s1, s2],
    )

    def instance(name: str, addr: int) -> k.Instance:
        return k.Instance(
            code=code,
            renames={"v": name},
            flush=[k.Store(type=T.F64, addr=i32(addr), offset=0, value=loc(T.F64, name))],
            reload=[
                k.SetLocal(name=name, value=k.Prim(T.F64, Op.F64_ADD, [k.Load(T.F64, i32(addr)), f64(1.0)]))
            ],
        )

    body = [
        k.SetLocal(name="a", value=loc(T.F64, "x")),
        k.SetLocal(name="b", value=f64(3.0)),
        instance("a", 128),
        instance("b", 136),
        k.ReturnValues(values=[k.Prim(T.F64, Op.F64_ADD, [loc(T.F64, "a"), loc(T.F64, "b")])]),
    ]
    fn = k.Function("p", [("x", T.F64)], (T.F64,), {"a": T.F64, "b": T.F64}, body, export="p")
    both = Both(k.Module([fn], memory_pages=1))
    assert both.ref_call("p", 5.0) == both.wasm_call("p", 5.0) == ("ok", 18.0)
    assert both.ref_call("p", 60.0) == both.wasm_call("p", 60.0) == ("trap", "UNREACHABLE")
    assert list(both.ref.memory[TRAP_SITE : TRAP_CODE + 4].view(np.int32)) == [2, 1]


TRAP_WAT = f"""(func $trap (param $site i32) (param $code i32) (param $node i32)
  (i32.store (i32.const {NODE}) (local.get $node))
  (i32.store (i32.const {TRAP_SITE}) (local.get $site))
  (i32.store (i32.const {TRAP_CODE}) (local.get $code))
  unreachable)"""
"""The shared trap function a ``Trap(via=...)`` calls, as the passes spell it (WAT only)."""


def test_math_error_trap_sets_the_error_global_and_trap_via_does_the_shared_function_s_work() -> None:
    placeholder = k.Function("trap", [("site", T.I32), ("code", T.I32), ("node", T.I32)], (), {}, [])
    where = k.TrapSite(k.Site("m.py", 9))
    trap_via = k.Trap(code=3, where=where, via="trap", node=i32(40))  # node: the faulting node's base
    body = [
        k.If(
            k.NOSITE,
            k.Prim(T.BOOL, Op.F64_LT, [loc(T.F64, "x"), f64(0.0)]),
            [k.Trap(code=12, math_error=1)],
            [],
        ),
        k.If(k.NOSITE, k.Prim(T.BOOL, Op.F64_GT, [loc(T.F64, "x"), f64(10.0)]), [trap_via], []),
        k.ReturnValues(values=[k.Prim(T.F64, Op.F64_SQRT, [loc(T.F64, "x")])]),
    ]
    fn = k.Function("s", [("x", T.F64)], (T.F64,), {}, body, export="s")
    module = k.Module(
        [placeholder, fn], globals=[k.Global("math_error", T.I32, 0, export="math_error")], memory_pages=1
    )
    validate.validate(module, level="primitive")
    both = Both(module, wat=wasm.module_text(module).replace(wasm.function_text(placeholder), TRAP_WAT))
    assert both.ref_call("s", 4.0) == both.wasm_call("s", 4.0) == ("ok", 2.0)
    assert both.ref_call("s", -1.0) == both.wasm_call("s", -1.0) == ("trap", "UNREACHABLE")
    assert both.ref.global_value("math_error") == both.exports["math_error"].value(both.store) == 1
    assert both.ref_call("s", 11.0) == both.wasm_call("s", 11.0) == ("trap", "UNREACHABLE")
    wasm_header = both.exports["memory"].read(both.store, TRAP_SITE, TRAP_CODE + 4)
    assert bytes(both.ref.memory[TRAP_SITE : TRAP_CODE + 4]) == bytes(wasm_header)
    assert list(both.ref.memory[TRAP_SITE : TRAP_CODE + 4].view(np.int32)) == [0, 3]
    wasm_node = both.exports["memory"].read(both.store, NODE, NODE + 4)
    assert bytes(both.ref.memory[NODE : NODE + 4]) == bytes(wasm_node) == (40).to_bytes(4, "little")


def test_high_level_nodes_are_refused() -> None:
    fn = k.Function(
        "bad",
        [],
        (T.F64,),
        {},
        [k.ReturnValues(values=[k.Attr(T.F64, "phase")])],
    )
    with pytest.raises(ref.ReferenceError_, match="Attr is not primitive-level"):
        ref.CompiledModule(k.Module([fn]))


# ---------------------------------------------------------------------------------------- runtime
def _hand_program(ir, layout, body_code: k.Code, sites: list) -> Program:
    """A program of a one-node graph written by hand, as the skeleton lays programs out (with the
    skeleton's memory-protocol functions, which a bound state calls):
    ``process(n)`` runs the node's Code once per sample (``i``: the sample, ``nb``: the node's
    base), the node's output buffer takes local ``out``, the frame advances; ``render``
    calls ``process`` per block and copies the output to the render area."""
    nid = ir.nodes[0].id
    nl = layout.nodes[nid]
    buf = nl.buffers["output"]
    W, F = T.I32, T.F64
    i, n = loc(W, "i"), loc(W, "n")
    inc = k.Prim(W, Op.I32_ADD, [i, i32(1)])
    process = k.Function(
        "block",
        [("n", W)],
        (),
        {"i": W, "nb": W, "out": F},
        [
            k.SetLocal(name="nb", value=i32(nl.base)),  # what the node's traps store in NODE
            k.SetLocal(name="i", value=i32(0)),
            k.Loop(
                label="samples",
                cond=k.Prim(T.BOOL, Op.I32_LT_U, [i, n]),
                body=[
                    k.Instance(code=body_code),
                    k.Store(type=F, addr=k.Prim(W, Op.I32_MUL, [i, i32(8)]), offset=buf, value=loc(F, "out")),
                    k.SetLocal(name="i", value=inc),
                ],
            ),
            k.Store(
                type=T.I64,
                addr=i32(FRAME),
                offset=0,
                value=k.Prim(
                    T.I64, Op.I64_ADD, [k.Load(T.I64, i32(FRAME)), k.Prim(T.I64, Op.I64_EXTEND_I32_U, [n])]
                ),
            ),
        ],
    )
    exported = k.Function("process", [("n", W)], (), {}, [k.Invoke(func="block", args=[n])], export="process")
    b, j = loc(W, "b"), loc(W, "j")
    size = loc(W, "size")
    render = k.Function(
        "render",
        [("blocks", W), ("size", W)],
        (),
        {"b": W, "j": W},
        [
            k.SetLocal(name="b", value=i32(0)),
            k.Loop(
                label="blocks",
                cond=k.Prim(T.BOOL, Op.I32_LT_U, [b, loc(W, "blocks")]),
                body=[
                    k.Invoke(func="block", args=[size]),
                    k.SetLocal(name="j", value=i32(0)),
                    k.Loop(
                        label="copy",
                        cond=k.Prim(T.BOOL, Op.I32_LT_U, [j, size]),
                        body=[
                            k.Store(
                                type=F,
                                addr=k.Prim(
                                    W,
                                    Op.I32_MUL,
                                    [k.Prim(W, Op.I32_ADD, [k.Prim(W, Op.I32_MUL, [b, size]), j]), i32(8)],
                                ),
                                offset=layout.render_area,
                                value=k.Load(F, k.Prim(W, Op.I32_MUL, [j, i32(8)]), buf),
                            ),
                            k.SetLocal(name="j", value=k.Prim(W, Op.I32_ADD, [j, i32(1)])),
                        ],
                    ),
                    k.SetLocal(name="b", value=k.Prim(W, Op.I32_ADD, [b, i32(1)])),
                ],
            ),
        ],
        export="render",
    )
    module = k.Module(
        [ramp_function(), copy_words_function(), *protocol_functions(), process, exported, render],
        globals=[k.Global("math_error", W, 0, export="math_error")],
        memory_pages=(layout.size + 65535) // 65536,
    )
    validate.validate(module, level="primitive")
    return Program(
        wasm.module_text(module),
        layout,
        {nid: [None, *sites]},
        [[nid]],
        {nid: ir.nodes[0].label},
        [],
        module,
    )


def _engines(program, ir, timeout: float = 2.0):
    stats = CompileStats(0.0, 0.0, len(program.wat), 1)
    wasm_graph = CompiledGraph(ir, program, wasmtime.Module(engine(), program.wat), stats, timeout)
    ref_graph = ReferenceGraph(ir, program, stats, timeout)
    return wasm_graph, ref_graph


def _one_node_graph():
    g = Graph(48000)
    osc = g.add_node(Oscillator.saw(440.0, 0.5), "osc")
    g.set_output(osc.output)
    return g


def _counter_code(trap_at: float, site: k.TrapSite) -> k.Code:
    """out = the node's first scalar slot, advanced by 0.25 a sample; IndexError at ``trap_at``."""
    F = T.F64
    x = k.Load(F, loc(T.I32, "nb"), 0)
    return k.Code(
        body=[
            k.SetLocal(name="out", value=k.Prim(F, Op.F64_ADD, [x, k.Const(F, 0.25)])),
            k.Store(type=F, addr=loc(T.I32, "nb"), offset=0, value=loc(F, "out")),
            k.If(
                k.NOSITE,
                k.Prim(T.BOOL, Op.F64_EQ, [loc(F, "out"), k.Const(F, trap_at)]),
                [k.Trap(code=7, where=site, node=loc(T.I32, "nb"))],
                [],
            ),
        ],
        locals={},
        sites=[site],
    )


def test_reference_graph_runs_a_program_as_the_wasm_kernel_does() -> None:
    """process_block / process_into (one block, and whole blocks through render) on GraphStates:
    the same samples and the same memory as the wasm kernel of the same program."""
    g = _one_node_graph()
    ir = settled(g.to_ir())  # as the compiler takes it
    layout = Layout.of(ir, 64)
    site = k.TrapSite(k.Site("osc.py", 12), "self.table[...] (length 4)")
    program = _hand_program(ir, layout, _counter_code(1e9, site), [site])
    wasm_graph, ref_graph = _engines(program, ir)
    states = [GraphState.from_graph(g, max_block=64, ir=ir) for _ in range(2)]
    outs = []
    for compiled, state in zip((wasm_graph, ref_graph), states, strict=True):
        compiled.bind(state)
        parts = [compiled.process_block(state, 5), compiled.process_block(state, 64)]
        out = np.empty((1, 64 * 3 + 7))
        compiled.process_into(state, out)  # three blocks through render, then 7 samples
        outs.append(np.concatenate([*parts, out[0]]))
        assert state.frame == 5 + 64 + 64 * 3 + 7
    assert np.array_equal(outs[0], outs[1])
    assert outs[0][0] != 0.0 and np.all(np.diff(outs[0]) == 0.25)
    assert np.array_equal(states[0].bytes[: layout.size], states[1].bytes[: layout.size])
    # a state moves between the two kernels and carries on
    a = wasm_graph.process_block(states[1], 3)
    b = ref_graph.process_block(states[1], 3)
    assert b[0] - a[-1] == 0.25


def test_reference_graph_raises_the_wasm_kernel_s_node_faults() -> None:
    g = _one_node_graph()
    ir = settled(g.to_ir())  # as the compiler takes it
    layout = Layout.of(ir, 64)
    site = k.TrapSite(k.Site("osc.py", 12), "self.table[...] (length 4)")
    program = _hand_program(ir, layout, _counter_code(0.25 * 70, site), [site])
    faults = []
    for compiled in _engines(program, ir):
        state = GraphState.from_graph(g, max_block=64, ir=ir)
        state.scalar(ir.nodes[0].id, next(iter(layout.nodes[ir.nodes[0].id].scalars)))[0] = 0.0
        compiled.process_block(state, 64)
        with pytest.raises(NodeFault) as info:
            compiled.process_block(state, 64)
        faults.append(info.value)
    w, r = faults
    assert type(w) is type(r) and isinstance(r, IndexError)
    assert (
        str(w) == str(r) == "IndexError in osc at osc.py:12: index out of range (self.table[...] (length 4))"
    )
    assert (w.node, w.location) == (r.node, r.location) == ("osc", "osc.py:12")


def test_an_endless_loop_ends_with_node_timeout_through_the_loop_budget() -> None:
    """Node code that counts the INTERRUPT slot down (as loops in node code do) stops with
    NodeTimeout when the watchdog lowers the budget after the timeout."""
    g = _one_node_graph()
    ir = settled(g.to_ir())  # as the compiler takes it
    layout = Layout.of(ir, 64)
    site = k.TrapSite(k.Site("osc.py", 30), "a loop")
    W = T.I32
    budget = k.Load(W, i32(INTERRUPT))
    code = k.Code(
        body=[
            k.SetLocal(name="out", value=k.Const(T.F64, 0.0)),
            k.Loop(
                label="forever",
                cond=None,
                body=[
                    k.Store(
                        type=W, addr=i32(INTERRUPT), offset=0, value=k.Prim(W, Op.I32_SUB, [budget, i32(1)])
                    ),
                    k.If(
                        k.NOSITE,
                        k.Prim(T.BOOL, Op.I32_LE_S, [budget, i32(0)]),
                        [k.Trap(code=13, where=site, node=loc(T.I32, "nb"))],
                        [],
                    ),
                ],
            ),
        ],
        locals={},
        sites=[site],
    )
    program = _hand_program(ir, layout, code, [site])
    _, ref_graph = _engines(program, ir, timeout=0.2)
    state = GraphState.from_graph(g, max_block=64, ir=ir)
    t0 = time.perf_counter()
    with pytest.raises(NodeTimeout, match=r"osc at osc.py:30: compiled node code ran longer than 0.2 s"):
        ref_graph.process_block(state, 16)
    assert time.perf_counter() - t0 < 30.0


def test_compile_picks_the_backend_and_refuses_unknown_ones() -> None:
    g = _one_node_graph()
    assert isinstance(oscen.jit.compile(g.to_ir()), CompiledGraph)
    with pytest.raises(ValueError, match="backend must be one of"):
        oscen.jit.compile(g.to_ir(), backend="native")


def test_computed_addresses_wrap_modulo_2_to_the_32_as_wasm_s() -> None:
    """An address computed by i32 arithmetic that wraps (a product past 2**32, a negative sum)
    lands where WebAssembly's does, or traps as it does."""
    a = loc(T.I32, "a")
    body = [
        k.Store(type=T.I64, addr=k.Prim(T.I32, Op.I32_MUL, [a, i32(2)]), offset=16, value=i64(77)),
        k.ReturnValues(
            values=[
                k.Prim(
                    T.I64,
                    Op.I64_ADD,
                    [
                        k.Load(T.I64, k.Prim(T.I32, Op.I32_SUB, [a, a]), 16),
                        k.Load(T.I64, k.Prim(T.I32, Op.I32_SHL, [a, i32(33)]), 24),
                    ],
                )
            ]
        ),
    ]
    fn = k.Function("w", [("a", T.I32)], (T.I64,), {}, body, export="w")
    both = Both(k.Module([fn], memory_pages=1))
    for a_ in (0, 4, -(2**31), 2**31 - 1, -4, 1 << 20):
        assert both.ref_call("w", a_) == both.wasm_call("w", a_), a_


# ---------------------------------------------------------------------------------------- the math library
MATH_POINTS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 10.0, -7.25, 1e-300, 1e300, math.inf, -math.inf, math.nan]
MATH_POINTS += [math.pi, 710.0, -745.0, 1e22, 2.0**60, 0.7853981633974483, 3.0e-8, 123456.789]


def test_the_math_library_s_ir_runs_as_wasmtime_runs_it() -> None:
    """Every public function of the math library (the IR the wasm backend prints into the shared
    math module), evaluated by the reference backend: the same bits, or the same math error."""
    from oscen.jit import wasm_math
    from oscen.jit.backends.reference_graph import library_module
    from oscen.jit.engine import math_module

    inst = ref.CompiledModule(library_module()).instantiate()
    store = wasmtime.Store(engine())
    exports = wasmtime.Instance(store, math_module(), []).exports(store)
    error = exports[wasm_math.ERROR_GLOBAL]
    checked = 0
    for mf in wasm_math.FUNCTIONS.values():
        params = [t for _, t in mf.function.params]
        if any(t != T.F64 for t in params):
            continue
        pool = MATH_POINTS if len(params) == 1 else MATH_POINTS[:14]
        cases = [(a,) for a in pool] if len(params) == 1 else [(a, b) for a in pool for b in pool]
        for args in cases:
            try:
                w = ("ok", exports[mf.wasm_name](store, *args))
            except wasmtime.Trap:
                w = ("error", error.value(store))
                error.set_value(store, 0)
            try:
                r = ("ok", inst.call(mf.wasm_name, *args))
            except ref.WasmTrap:
                r = ("error", inst.global_value(wasm_math.ERROR_GLOBAL))
                inst.set_global(wasm_math.ERROR_GLOBAL, 0)
            assert _result_bits(w) == _result_bits(r), f"{mf.name}{args}: wasmtime {w}, reference {r}"
            checked += 1
    assert checked > 2000


def _result_bits(result):
    kind, value = result
    if kind != "ok":
        return result
    values = value if isinstance(value, tuple) else (value,)
    return tuple(_bits(T.F64, v) if isinstance(v, float) else int(v) for v in values)


def test_deeply_nested_expressions_and_loops() -> None:
    """A chain of 250 wrapping adds (CPython's parser takes 200 nested parentheses) and a
    nest of 30 loops (it takes 20 nested blocks... for loops it runs, not for the ifs it nests)."""
    x = loc(T.I64, "x")
    e: k.Expr = x
    for j in range(250):
        e = k.Prim(T.I64, Op.I64_ADD if j % 2 else Op.I64_MUL, [e, i64(j % 7 + 1)])
    deep_if: list[k.Stmt] = [k.SetLocal(name="x", value=e)]
    for j in range(60):
        deep_if = [k.If(k.NOSITE, k.Prim(T.BOOL, Op.I64_NE, [x, i64(-j)]), deep_if, [])]
    fn = k.Function("d", [("x", T.I64)], (T.I64,), {}, [*deep_if, k.ReturnValues(values=[x])], export="d")
    from oscen.jit.frontend import deep_recursion

    with deep_recursion():  # the printer's walk nests as deep as the IR
        both = Both(k.Module([fn]))
    for a in (0, 1, -5, 2**40):
        assert both.ref_call("d", a) == both.wasm_call("d", a)


def test_unreachable_and_memcopy_as_wasm() -> None:
    """memory.copy with overlapping regions both ways and out-of-bounds traps; Unreachable."""
    d, sr, n = loc(T.I32, "d"), loc(T.I32, "s"), loc(T.I32, "n")
    body = [
        k.If(k.NOSITE, k.Prim(T.BOOL, Op.I32_EQ, [n, i32(12345)]), [k.Unreachable()], []),
        k.MemCopy(dst=d, src=sr, nbytes=n),
        k.ReturnValues(values=[k.Load(T.I64, d)]),
    ]
    fn = k.Function("c", [("d", T.I32), ("s", T.I32), ("n", T.I32)], (T.I64,), {}, body, export="c")
    init = [k.Store(type=T.I64, addr=i32(8 * j), offset=0, value=i64(j * 0x0101010101)) for j in range(16)]
    setup = k.Function("init", [], (), {}, init, export="init")
    module = k.Module([setup, fn], memory_pages=1)
    validate.validate(module, level="primitive")
    both = Both(module)
    cases = [(0, 8, 40), (12, 3, 50), (3, 12, 50), (100, 100, 0), (65536, 0, 0), (65530, 0, 8), (0, 65535, 2)]
    cases += [(0, 0, 12345), (-8, 0, 4)]
    for args in cases:
        both.wasm_call("init")
        both.ref_call("init")
        assert both.ref_call("c", *args) == both.wasm_call("c", *args), args
        wasm_memory = np.frombuffer(both.exports["memory"].read(both.store, 0, 65536), np.uint8)
        assert np.array_equal(wasm_memory, both.ref.memory), args


def test_an_instance_inside_a_flush_is_renamed_by_both_instances() -> None:
    """A variant's write-back Code (written with the variant's names) pasted into a node's
    Instance flush: renamed by its own Instance, then by the node's (as the printer does)."""
    writeback = k.Code([k.Store(type=T.F64, addr=i32(256), offset=0, value=loc(T.F64, "S_v"))], {})
    code = k.Code(
        [
            k.SetLocal(name="S_v", value=k.Prim(T.F64, Op.F64_ADD, [loc(T.F64, "S_v"), f64(1.5)])),
            k.SyncState(direction="flush"),
        ],
        {"S_v": T.F64},
    )
    node = k.Instance(code=code, renames={"S_v": "S_osc_v"}, flush=[k.Instance(code=writeback)])
    body = [
        k.SetLocal(name="S_osc_v", value=loc(T.F64, "x")),
        node,
        k.ReturnValues(values=[k.Load(T.F64, i32(256))]),
    ]
    fn = k.Function("p", [("x", T.F64)], (T.F64,), {"S_osc_v": T.F64}, body, export="p")
    module = k.Module([fn], memory_pages=1)
    validate.validate(module, level="primitive")
    both = Both(module)
    assert both.ref_call("p", 2.0) == both.wasm_call("p", 2.0) == ("ok", 3.5)
