"""The WebAssembly printer: every primitive construct prints to text wasmtime accepts and runs as
the IR means; high-level nodes are refused."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import wasmtime

from oscen.jit import kernel as k
from oscen.jit.backends import wasm
from oscen.jit.kernel import T
from oscen.jit.layout import NODE, TRAP_CODE, TRAP_SITE
from oscen.jit.ops import Op


def f(v: float) -> k.Const:
    return k.Const(T.F64, v)


def i64(v: int) -> k.Const:
    return k.Const(T.I64, v)


def i32(v: int) -> k.Const:
    return k.Const(T.I32, v)


def loc(t: T, name: str) -> k.Local:
    return k.Local(t, name)


def run(module: k.Module, export: str, *args):
    text = wasm.module_text(module)
    store = wasmtime.Store()
    inst = wasmtime.Instance(store, wasmtime.Module(store.engine, text), [])
    ex = inst.exports(store)
    return ex[export](store, *args), ex, store


def test_constants_are_exact_including_nan_payloads_and_signed_zero():
    values = [
        0.1,
        -0.0,
        math.inf,
        -math.inf,
        5e-324,
        struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000123))[0],
    ]
    for v in values:
        fn = k.Function(
            "c",
            [],
            (T.I64,),
            {},
            [k.ReturnValues(values=[k.Prim(T.I64, Op.I64_REINTERPRET_F64, [f(v)])])],
            export="c",
        )
        got, _, _ = run(k.Module([fn]), "c")
        assert got & (2**64 - 1) == struct.unpack("<Q", struct.pack("<d", v))[0]
    fn = k.Function("c", [], (T.I64,), {}, [k.ReturnValues(values=[i64(2**63)])], export="c")
    assert run(k.Module([fn]), "c")[0] == -(2**63)  # wraps as the instruction would


def test_loop_next_exit_block_and_multi_value_invoke():
    # sum of odd i below n, skipping 7 via Next, stopping at 15 via Exit; then divmod by Invoke
    i, acc, q, r = loc(T.I64, "i"), loc(T.I64, "acc"), "q", "r"
    body = [
        k.SetLocal(name="i", value=i64(0)),
        k.SetLocal(name="acc", value=i64(0)),
        k.Loop(
            label="L",
            cond=k.Prim(T.BOOL, Op.I64_LT_S, [i, loc(T.I64, "n")]),
            body=[
                k.SetLocal(name="i", value=k.Prim(T.I64, Op.I64_ADD, [i, i64(1)])),
                k.Exit(label="L", cond=k.Prim(T.BOOL, Op.I64_EQ, [i, i64(15)])),
                k.If(k.NOSITE, k.Prim(T.BOOL, Op.I64_EQ, [i, i64(7)]), [k.Next(label="L")], []),
                k.If(
                    k.NOSITE,
                    k.Prim(T.BOOL, Op.I64_EQZ, [k.Prim(T.I64, Op.I64_AND, [i, i64(1)])]),
                    [],
                    [k.SetLocal(name="acc", value=k.Prim(T.I64, Op.I64_ADD, [acc, i]))],
                ),
            ],
        ),
        k.Block(label="B", body=[k.Exit(label="B"), k.SetLocal(name="acc", value=i64(-1))]),
        k.Invoke(func="divmod", args=[acc, i64(10)], targets=[q, r], results=(T.I64, T.I64)),
        k.ReturnValues(
            values=[
                k.Prim(
                    T.I64, Op.I64_ADD, [k.Prim(T.I64, Op.I64_MUL, [loc(T.I64, q), i64(100)]), loc(T.I64, r)]
                )
            ]
        ),
    ]
    main = k.Function(
        "main", [("n", T.I64)], (T.I64,), {"i": T.I64, "acc": T.I64, q: T.I64, r: T.I64}, body, export="main"
    )
    a, b = loc(T.I64, "a"), loc(T.I64, "b")
    dm = k.Function(
        "divmod",
        [("a", T.I64), ("b", T.I64)],
        (T.I64, T.I64),
        {},
        [k.ReturnValues(values=[k.Prim(T.I64, Op.I64_DIV_S, [a, b]), k.Prim(T.I64, Op.I64_REM_S, [a, b])])],
    )
    for n in (0, 5, 12, 30):
        acc_ = 0
        for j in range(1, n + 1):
            if j == 15:
                break
            if j == 7:
                continue
            if j % 2:
                acc_ += j
        assert run(k.Module([main, dm]), "main", n)[0] == (acc_ // 10) * 100 + acc_ % 10


def test_memory_select_let_seq_globals_and_traps():
    x = loc(T.F64, "x")
    body = [
        k.Store(type=T.F64, addr=i32(64), offset=8, value=k.Prim(T.F64, Op.F64_MUL, [x, f(2.0)])),
        k.Store(type=T.BOOL, addr=i32(80), offset=0, value=k.Prim(T.BOOL, Op.F64_GT, [x, f(0.0)])),
        k.SetGlobal(name="g", value=k.Prim(T.I32, Op.I32_ADD, [k.GetGlobal(T.I32, "g"), i32(1)])),
        k.If(k.NOSITE, k.Prim(T.BOOL, Op.F64_NE, [x, x]), [k.Trap(code=7, where=None)], []),
        k.ReturnValues(
            values=[
                k.Prim(
                    T.F64,
                    Op.F64_ADD,
                    [
                        k.Choose(T.F64, k.Prim(T.BOOL, Op.F64_LT, [x, f(0.0)]), f(-1.0), f(1.0)),
                        k.Let(
                            T.F64,
                            "t",
                            k.Load(T.F64, i32(64), 8),
                            k.Seq(
                                T.F64,
                                [
                                    k.SetLocal(
                                        name="t", value=k.Prim(T.F64, Op.F64_ADD, [loc(T.F64, "t"), f(0.5)])
                                    )
                                ],
                                loc(T.F64, "t"),
                            ),
                        ),
                    ],
                )
            ]
        ),
    ]
    fn = k.Function("m", [("x", T.F64)], (T.F64,), {"t": T.F64}, body, export="m")
    module = k.Module([fn], globals=[k.Global("g", T.I32, 0, export="g")], memory_pages=1)
    got, ex, store = run(module, "m", 3.0)
    assert got == 1.0 + 6.5
    mem = ex["memory"]
    assert mem.read(store, 72, 80) == struct.pack("<d", 6.0)
    assert mem.read(store, 80, 84) == b"\x01\x00\x00\x00"
    assert ex["g"].value(store) == 1
    with pytest.raises(wasmtime.Trap):
        ex["m"](store, math.nan)
    assert np.frombuffer(mem.read(store, TRAP_CODE, TRAP_CODE + 4), np.int32)[0] == 7


def test_instance_renames_locals_and_fills_the_state_sync_marks():
    site = k.TrapSite(k.Site("node.py", 12), "x")
    code = k.Code(
        body=[
            k.SyncState(direction="reload"),
            k.SetLocal(name="S_v", value=k.Prim(T.F64, Op.F64_ADD, [loc(T.F64, "S_v"), f(1.0)])),
            k.SyncState(direction="flush"),
            k.If(
                k.NOSITE,
                k.Prim(T.BOOL, Op.F64_GT, [loc(T.F64, "S_v"), f(2.5)]),
                [k.Trap(code=11, where=site)],
                [],
            ),
        ],
        locals={"S_v": T.F64},
        sites=[site],
    )
    inst = [
        k.Instance(
            code=code,
            renames={"S_v": f"n{n}_v"},
            flush=[k.Store(type=T.F64, addr=i32(0), offset=64 + 8 * n, value=loc(T.F64, f"n{n}_v"))],
            reload=[k.SetLocal(name=f"n{n}_v", value=k.Load(T.F64, i32(0), 64 + 8 * n))],
        )
        for n in (1, 2)
    ]
    fn = k.Function("step", [], (), {"n1_v": T.F64, "n2_v": T.F64}, inst, export="step")
    module = k.Module([fn], memory_pages=1)
    text = wasm.module_text(module)
    assert "S_v" not in text and "__FLUSH__" not in text
    _, ex, store = run(module, "step")
    ex["step"](store)
    mem = ex["memory"]
    assert struct.unpack("<dd", mem.read(store, 72, 88)) == (2.0, 2.0)
    with pytest.raises(wasmtime.Trap):
        ex["step"](store)  # 3.0 > 2.5: the first node traps
    assert struct.unpack("<ii", mem.read(store, TRAP_SITE, TRAP_SITE + 8)) == (1, 11)
    assert wasm.code_text(code) is wasm.code_text(code)  # printed once


def test_high_level_nodes_are_refused_by_name():
    fn = k.Function(
        "h", [], (T.F64,), {}, [k.ReturnValues(values=[k.Binary(T.F64, "+", f(1), f(2), k.NOSITE)])]
    )
    with pytest.raises(wasm.PrintError, match="Binary"):
        wasm.module_text(k.Module([fn]))
    fn = k.Function("h", [], (), {}, [k.Emit(k.NOSITE, "out", [])])
    with pytest.raises(wasm.PrintError, match="Emit"):
        wasm.module_text(k.Module([fn]))


def test_memcopy_and_a_shared_trap_function_built_from_unreachable():
    site, code, node = loc(T.I32, "site"), loc(T.I32, "code"), loc(T.I32, "node")
    trap = k.Function(
        "trap",
        [("site", T.I32), ("code", T.I32), ("node", T.I32)],
        (),
        {},
        [
            k.Store(type=T.I32, addr=i32(NODE), offset=0, value=node),
            k.Store(type=T.I32, addr=i32(TRAP_SITE), offset=0, value=site),
            k.Store(type=T.I32, addr=i32(TRAP_CODE), offset=0, value=code),
            k.Unreachable(),
        ],
    )
    main = k.Function(
        "main",
        [("n", T.I32)],
        (),
        {},
        [
            k.MemCopy(dst=i32(200), src=i32(100), nbytes=loc(T.I32, "n")),
            k.If(
                k.NOSITE,
                k.Prim(T.BOOL, Op.I32_GT_U, [loc(T.I32, "n"), i32(8)]),
                [k.Trap(code=9, where=None, via="trap", node=i32(72))],  # node: the base
                [],
            ),
        ],
        export="main",
    )
    module = k.Module([trap, main], memory_pages=1)
    _, ex, store = run(module, "main", 0)
    mem = ex["memory"]
    mem.write(store, b"abcdefgh", 100)
    ex["main"](store, 8)
    assert mem.read(store, 200, 208) == b"abcdefgh"
    with pytest.raises(wasmtime.Trap):
        ex["main"](store, 9)
    assert struct.unpack("<ii", mem.read(store, TRAP_SITE, TRAP_SITE + 8)) == (0, 9)
    assert struct.unpack("<i", mem.read(store, NODE, NODE + 4)) == (72,)
