"""The kernel IR validator: each rule it enforces is broken once here and must be reported with
the function, the path to the node and the site; valid IR (hand-built modules, every node
variant the frontend lowers) passes."""

from __future__ import annotations

import os

import pytest

from oscen.graph import Graph
from oscen.jit import CraneliftJit, validate
from oscen.jit import kernel as k
from oscen.jit.kernel import T
from oscen.jit.ops import Op
from oscen.jit.validate import KernelIRError

SITE = k.Site("voice.py", 42, "Voice")


def f64(v: float) -> k.Const:
    return k.Const(T.F64, v)


def i64(v: int) -> k.Const:
    return k.Const(T.I64, v)


def i32(v: int) -> k.Const:
    return k.Const(T.I32, v)


def loc(t: T, name: str) -> k.Local:
    return k.Local(t, name)


def fn(body: list[k.Stmt], params=(("x", T.F64),), results=(T.F64,), locals_=None, name="f") -> k.Function:
    return k.Function(name, list(params), tuple(results), dict(locals_ or {}), body)


def ret(e: k.Expr) -> k.ReturnValues:
    return k.ReturnValues(values=[e])


def problems(x, **kw) -> list[tuple[str, str, str, str]]:
    with pytest.raises(KernelIRError) as info:
        validate.validate(x, **kw)
    return info.value.problems


def only(x, needle: str, **kw) -> tuple[str, str, str, str]:
    """The first problem reported (what follows from it may be reported too) says ``needle``."""
    found = problems(x, **kw)
    assert needle in found[0][3], found
    return found[0]


def test_a_valid_module_passes_at_both_levels() -> None:
    helper = fn([ret(k.Prim(T.F64, Op.F64_MUL, [loc(T.F64, "x"), f64(2.0)]))], name="twice")
    pair = fn(
        [k.ReturnValues(values=[loc(T.I64, "n"), k.Prim(T.BOOL, Op.I64_EQZ, [loc(T.I64, "n")])])],
        params=(("n", T.I64),),
        results=(T.I64, T.BOOL),
        name="pair",
    )
    body = [
        k.SetLocal(name="y", value=k.CallFn(T.F64, "twice", [loc(T.F64, "x")])),
        k.Invoke(func="pair", args=[i64(3)], targets=["m", "z"], results=(T.I64, T.BOOL)),
        k.Store(type=T.F64, addr=i32(64), offset=8, value=loc(T.F64, "y")),
        k.Store(type=T.I32, addr=i32(64), offset=0, value=loc(T.BOOL, "z")),  # a BOOL as an i32
        k.Block(
            label="b",
            body=[
                k.Loop(
                    label="l",
                    cond=k.Prim(T.BOOL, Op.I64_LT_S, [loc(T.I64, "m"), i64(10)]),
                    body=[
                        k.SetLocal(name="m", value=k.Prim(T.I64, Op.I64_ADD, [loc(T.I64, "m"), i64(1)])),
                        k.Exit(label="b", cond=k.Prim(T.BOOL, Op.I64_EQ, [loc(T.I64, "m"), i64(7)])),
                        k.Next(label="l"),
                    ],
                )
            ],
        ),
        k.SetGlobal(name="g", value=k.Prim(T.I32, Op.I32_ADD, [k.GetGlobal(T.I32, "g"), loc(T.BOOL, "z")])),
        ret(k.Choose(T.F64, loc(T.BOOL, "z"), loc(T.F64, "y"), k.Load(T.F64, i32(72)))),
    ]
    main = fn(body, locals_={"y": T.F64, "m": T.I64, "z": T.BOOL}, name="main")
    module = k.Module([helper, pair, main], globals=[k.Global("g", T.I32, 0)], memory_pages=1)
    validate.validate(module, level="primitive")
    validate.validate(module, level="high")


def test_prim_argument_and_result_types() -> None:
    f = fn([ret(k.Prim(T.F64, Op.F64_ADD, [loc(T.F64, "x"), i64(1)]))])
    fname, path, _, message = only(k.Module([f]), "argument 1 of F64_ADD is i64, expected f64")
    assert fname == "f" and path == "f.body.[0]ReturnValues.values[0]<F64_ADD>"
    only(
        k.Module([fn([ret(k.Prim(T.I64, Op.F64_ADD, [loc(T.F64, "x"), f64(1.0)]))], results=(T.I64,))]),
        "F64_ADD gives f64",
    )
    only(k.Module([fn([ret(k.Prim(T.F64, Op.F64_NEG, [loc(T.F64, "x"), f64(1.0)]))])]), "takes 1 arguments")
    # an I32 slot takes a BOOL, not the reverse
    cond = k.Prim(T.BOOL, Op.BOOL_NOT, [i32(1)])
    only(k.Module([fn([k.If(SITE, cond, [], []), ret(f64(0.0))])]), "argument 0 of BOOL_NOT is i32")


def test_assignments_stores_conditions_and_branches() -> None:
    only(k.Module([fn([k.SetLocal(name="x", value=i64(1)), ret(f64(0))])]), "value assigned to 'x' is i64")
    bad_store = k.Store(type=T.F64, addr=i32(0), offset=0, value=i64(1))
    only(k.Module([fn([bad_store, ret(f64(0))])]), "stored value is i64")
    bad_addr = k.Store(type=T.F64, addr=i64(0), offset=0, value=f64(1))
    only(k.Module([fn([bad_addr, ret(f64(0))])]), "address is i64")
    only(k.Module([fn([k.If(SITE, loc(T.F64, "x"), [], []), ret(f64(0))])]), "cond is f64, expected bool")
    loop = k.Loop(label="l", cond=i32(1), body=[])
    only(k.Module([fn([loop, ret(f64(0))])]), "cond is i32, expected bool")
    only(
        k.Module([fn([ret(k.Choose(T.F64, k.Const(T.BOOL, 1), f64(1), i64(2)))])]),
        "Choose's b is i64, expected f64",
    )
    only(
        k.Module([fn([ret(k.Select(T.F64, k.Const(T.BOOL, 1), i64(1), f64(2)))])]),
        "Select's then is i64, expected f64",
    )
    only(k.Module([fn([ret(k.Const(T.I32, 2**40))])], globals=[]), "out of range for i32")
    only(k.Module([fn([ret(i64(1))])]), "result 0 is i64, expected f64")


def test_calls_against_their_callee() -> None:
    callee = fn([ret(loc(T.F64, "x"))], name="g")
    call = k.CallFn(T.F64, "g", [loc(T.F64, "x"), f64(1)])
    only(k.Module([callee, fn([ret(call)])]), "g takes 1 arguments, called with 2")
    only(k.Module([callee, fn([ret(k.CallFn(T.F64, "g", [i64(1)]))])]), "argument 0 of g is i64")
    only(k.Module([callee, fn([ret(k.CallFn(T.I64, "g", [f64(1)]))])]), "result of g is f64, expected i64")
    only(k.Module([fn([ret(k.CallFn(T.F64, "nowhere", []))])]), "neither a function nor an import")
    imp = k.Import("math", "sin", (T.F64,), (T.F64,))
    validate.validate(k.Module([fn([ret(k.CallFn(T.F64, "sin", [f64(1)]))])], imports=[imp]))
    inv = k.Invoke(func="g", args=[f64(1)], targets=["a", "b"], results=(T.F64,))
    only(
        k.Module([callee, fn([inv, ret(f64(0))], locals_={"a": T.F64, "b": T.F64})]),
        "1 values into 2 targets",
    )
    inv = k.Invoke(func="g", args=[f64(1)], targets=["a"], results=(T.I64,))
    only(
        k.Module([callee, fn([inv, ret(loc(T.F64, "a"))], locals_={"a": T.F64})]), "says it returns ('i64',)"
    )


def test_names_declared_once_with_one_type_and_assigned_before_read() -> None:
    only(k.Module([fn([ret(loc(T.F64, "nope"))])]), "local 'nope' is not declared")
    only(k.Module([fn([ret(loc(T.I64, "x"))])]), "local 'x' read as i64, declared f64")
    only(k.Module([fn([ret(loc(T.F64, "y"))], locals_={"y": T.F64})]), "local 'y' is read but never assigned")
    only(k.Module([fn([ret(f64(0))], params=(("x", T.F64), ("x", T.F64)))]), "parameter 'x' declared twice")
    only(k.Module([fn([ret(f64(0))], locals_={"x": T.I64})]), "declared i64 but it is a parameter")
    only(k.Module([fn([ret(k.GetGlobal(T.F64, "g"))])]), "global 'g' is not defined")
    only(k.Module([fn([ret(f64(0))], name="a"), fn([ret(f64(0))], name="a")]), "function 'a' defined twice")


def test_labels_must_enclose_their_jumps() -> None:
    only(k.Module([fn([k.Exit(label="out"), ret(f64(0))])]), "Exit('out') is not inside")
    block_only = k.Block(label="b", body=[k.Next(label="b")])
    only(k.Module([fn([block_only, ret(f64(0))])]), "Next('b') is not inside a Loop")
    after = [k.Loop(label="l", cond=None, body=[k.Exit(label="l")]), k.Next(label="l"), ret(f64(0))]
    only(k.Module([fn(after)]), "Next('l') is not inside a Loop")


def test_traps_of_node_code_need_a_known_code_and_a_listed_site() -> None:
    NB = k.Local(T.I32, "nb")  # noqa: N806 - the node base, as node code has it
    where = k.TrapSite(SITE, "self.buf[i]")
    good = k.Code([k.Trap(site=SITE, code=7, where=where, node=NB)], {}, sites=[where])
    validate.validate(good, level="primitive", nb=T.I32)
    _, _, site, _ = only(k.Code([k.Trap(site=SITE, code=7, node=NB)], {}), "without a TrapSite")
    assert site == "voice.py:42"
    only(k.Code([k.Trap(code=7, where=k.TrapSite(None), node=NB)], {}), "TrapSite has no source site")
    only(
        k.Code([k.Trap(code=99, where=where, node=NB)], {}, sites=[where]),
        "trap code 99 is not one of traps.py's",
    )
    only(k.Code([k.Trap(code=12, where=where, math_error=77)], {}, sites=[where]), "math error code 77")
    # node code's traps name their node: its base goes into the NODE slot
    only(k.Code([k.Trap(code=7, where=where)], {}, sites=[where]), "does not name its node")
    only(k.Code([k.Trap(code=7, where=where, node=f64(1.0))], {}, sites=[where]), "a Trap's node")
    # in an Instance, the trap's site must be in its Code's table
    code = k.Code([k.Trap(code=7, where=where, node=NB)], {}, sites=[])
    only(k.Module([fn([k.Instance(code=code), ret(f64(0))])]), "missing from its Code's sites")
    # outside node code (the skeleton, the math library) a trap needs no site
    validate.validate(k.Module([fn([k.Trap(code=12, math_error=1), ret(f64(0))])]), level="primitive")
    only(k.Module([fn([k.Trap(code=7, via="fail"), ret(f64(0))])]), "Trap via 'fail'")


def test_instances_see_the_function_s_locals_through_their_renames() -> None:
    code = k.Code([k.SetLocal(name="v", value=f64(1.0)), k.SyncState(direction="flush")], {"v": T.F64})
    inst = k.Instance(
        code=code,
        renames={"v": "S_osc_v"},
        flush=[k.Store(type=T.F64, addr=i32(8), offset=0, value=loc(T.F64, "S_osc_v"))],
    )
    validate.validate(
        k.Module([fn([inst, ret(loc(T.F64, "S_osc_v"))], locals_={"S_osc_v": T.F64})], memory_pages=1)
    )
    problems_ = problems(k.Module([fn([inst, ret(f64(0))], locals_={"v": T.F64})]))
    assert any("'S_osc_v' (code's 'v') is not declared" in p[3] for p in problems_), problems_


def test_primitive_level_refuses_high_level_nodes() -> None:
    high = [
        ret(k.Binary(T.F64, "+", loc(T.F64, "x"), f64(1), SITE)),
        ret(k.Attr(T.F64, "phase")),
        ret(k.Input(T.F64, "freq")),
        ret(k.MathCall(T.F64, "sin", [loc(T.F64, "x")], SITE)),
        ret(k.Convert(T.F64, i64(1), SITE)),
    ]
    for stmt in high:
        module = k.Module([fn([stmt])])
        validate.validate(module, level="high")
        name = type(stmt.values[0]).__name__
        _, path, site, message = only(module, f"high-level expression {name}", level="primitive")
        assert path.startswith("f.body.[0]ReturnValues.values[0]")
    only(
        k.Module([fn([k.Emit(SITE, "gate", []), ret(f64(0))])]),
        "high-level statement Emit",
        level="primitive",
    )
    with pytest.raises(ValueError, match="level must be"):
        validate.validate(k.Module([]), level="low")


def test_the_error_names_function_path_and_site() -> None:
    bad = k.If(SITE, loc(T.F64, "x"), [k.SetLocal(site=SITE, name="x", value=i64(3))], [])
    with pytest.raises(KernelIRError) as info:
        validate.validate(k.Module([fn([bad, ret(f64(0))], name="seg0")]))
    text = str(info.value)
    assert "seg0: seg0.body.[0]If: cond is f64, expected bool (at voice.py:42)" in text
    assert "seg0: seg0.body.[0]If.body.[0]SetLocal: value assigned to 'x' is i64" in text
    assert info.value.function == "seg0" and info.value.site == "voice.py:42"


def _every_lowered_function(graph: Graph) -> list[k.KFunction]:
    ir = graph.to_ir()
    jit = CraneliftJit()
    jit.compile(ir)
    session = jit.session
    found = []
    for node in ir.nodes:
        found.extend(session.lowering_for(node, ir.sample_rate)._cache.values())
    return found


def test_every_kfunction_of_the_polysynth_is_valid_high_level_ir() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "polysynth.py"
    spec = importlib.util.spec_from_file_location("oscen_example_polysynth_v", path)
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = module  # the frontend reads node source through the module
    spec.loader.exec_module(module)
    functions = _every_lowered_function(module.patch(48000.0, voices=2))
    assert len(functions) >= 8
    for f in functions:
        validate.validate(f, level="high")
    # a broken copy of one is caught: a local read under another type than declared
    f = next(f for f in functions if f.locals)
    name, t = next(iter(f.locals.items()))
    wrong = T.BOOL if t != T.BOOL else T.F64
    body = [k.ExprStmt(SITE, k.Local(wrong, name)), *f.body]
    broken = k.KFunction(
        f.name, f.qualname, f.params, f.locals, body, f.returns, f.site, [], None, f.tuple_returns
    )
    assert any(f"local {name!r} read as {wrong.value}" in p[3] for p in problems(broken))


def test_the_switch_is_on_in_the_test_suite() -> None:
    assert os.environ.get(validate.ENV) == "1"
    assert validate.ENABLED


def test_ir_deeper_than_the_recursion_limit() -> None:
    """Validated under the frontend's raised limit; the compile-time hooks (deep=False) leave it
    rather than raise the process-wide limit beside another thread's parsing."""
    import sys

    e: k.Expr = loc(T.F64, "x")
    for _ in range(sys.getrecursionlimit()):
        e = k.Prim(T.F64, Op.F64_ADD, [e, f64(1.0)])
    module = k.Module([fn([ret(e)])])
    assert validate.validate(module, level="primitive") is True
    assert validate.validate(module, level="primitive", deep=False) is False
    bad = k.Module(
        [fn([ret(k.Prim(T.I64, Op.I64_ADD, [k.Prim(T.I64, Op.I64_TRUNC_SAT_F64_S, [e]), f64(2.0)]))])]
    )
    with pytest.raises(KernelIRError, match="argument 1 of I64_ADD is f64"):
        validate.validate(bad, level="primitive")
