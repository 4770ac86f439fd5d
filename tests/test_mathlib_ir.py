"""The math library as kernel IR (oscen.jit.mathlib): structure and typing of every function.

The accuracy tests (test_wasm_math.py) run the printed WebAssembly; these check the IR itself, as
any backend receives it: primitive nodes only, every local declared once with one type and used
with it, every operation given operands of its types, every ``Exit`` inside its loop, every
function ending in a return or a trap, calls matching their callee, and no memory or globals
(the library is pure, so it can be pasted or inlined anywhere).
"""

from __future__ import annotations

import pytest

from oscen.jit import kernel as k
from oscen.jit import mathlib, traps
from oscen.jit.kernel import T
from oscen.jit.mathlib import dsl
from oscen.jit.ops import Op, accepts

PURE_EXPRS = (k.Const, k.Local, k.Prim, k.Choose, k.CallFn)
PURE_STMTS = (k.SetLocal, k.If, k.Loop, k.Exit, k.Next, k.Invoke, k.ReturnValues, k.Trap)
COND_TYPES = (T.BOOL,)  # an integer condition is tested explicitly (dsl.truth)


class Checker:
    """Structural and type checks of one Function; ``problems`` lists what is wrong."""

    def __init__(self, fn: k.Function, *, memory: bool = False) -> None:
        self.fn = fn
        self.memory = memory
        self.problems: list[str] = []
        self.types: dict[str, T] = {}
        for name, t in [*fn.params, *fn.locals.items()]:
            if self.types.setdefault(name, t) != t or (name in fn.locals and name in dict(fn.params)):
                self.problems.append(f"{name} declared twice")
        self.block(fn.body, [])
        if not fn.body or not isinstance(fn.body[-1], (k.ReturnValues, k.Trap)):
            self.problems.append("the body does not end in a return or a trap")

    def bad(self, what: str) -> None:
        self.problems.append(what)

    def local(self, name: str, t: T, what: str) -> None:
        if name not in self.types:
            self.bad(f"{what}: undeclared local {name}")
        elif not accepts(self.types[name], t):
            self.bad(f"{what}: {name} is {self.types[name].value}, given {t.value}")

    def cond(self, e: k.Expr, what: str) -> None:
        if self.expr(e) not in COND_TYPES:
            self.bad(f"{what}: condition of type {e.type.value}")

    def block(self, body: list[k.Stmt], labels: list[str]) -> None:
        for s in body:
            self.stmt(s, labels)

    def stmt(self, s: k.Stmt, labels: list[str]) -> None:
        allowed = (*PURE_STMTS, k.Store) if self.memory else PURE_STMTS
        if not isinstance(s, allowed):
            self.bad(f"statement {type(s).__name__} is not allowed")
        elif isinstance(s, k.SetLocal):
            self.local(s.name, self.expr(s.value), "assignment")
        elif isinstance(s, k.Store):
            if self.expr(s.addr) != T.I32 or not accepts(s.type, self.expr(s.value)):
                self.bad("store of the wrong types")
        elif isinstance(s, k.If):
            self.cond(s.cond, "if")
            self.block(s.body, labels)
            self.block(s.orelse, labels)
        elif isinstance(s, k.Loop):
            if s.label in labels:
                self.bad(f"label {s.label} reused inside itself")
            if s.cond is not None:
                self.cond(s.cond, "loop")
            self.block(s.body, [*labels, s.label])
        elif isinstance(s, (k.Exit, k.Next)):
            if s.label not in labels:
                self.bad(f"{type(s).__name__}({s.label}) outside its loop")
            if isinstance(s, k.Exit) and s.cond is not None:
                self.cond(s.cond, "exit")
        elif isinstance(s, k.Invoke):
            callee = self.callee(s.func, s.args)
            if callee is not None and (
                tuple(s.results) != callee.results or len(s.targets) != len(callee.results)
            ):
                self.bad(f"invoke of {s.func}: results {s.results} for {callee.results}")
            for name, t in zip(s.targets, s.results, strict=False):
                self.local(name, t, f"invoke of {s.func}")
        elif isinstance(s, k.ReturnValues):
            got = tuple(self.expr(v) for v in s.values)
            if len(got) != len(self.fn.results) or not all(map(accepts, self.fn.results, got)):
                self.bad(f"return of {got} from a function of {self.fn.results}")
        elif isinstance(s, k.Trap):
            if s.code != traps.MATH or s.math_error not in mathlib.ERROR_MESSAGES:
                self.bad(f"trap code {s.code}, math error {s.math_error}")

    def callee(self, name: str, args: list[k.Expr]) -> k.Function | None:
        if name not in mathlib.BY_WASM:
            self.bad(f"call of unknown {name}")
            return None
        callee = mathlib.BY_WASM[name].function
        got = [self.expr(a) for a in args]
        if len(got) != len(callee.params) or not all(
            accepts(t, g) for (_, t), g in zip(callee.params, got, strict=False)
        ):
            self.bad(f"call of {name} with {got}")
        return callee

    def expr(self, e: k.Expr) -> T:
        allowed = (*PURE_EXPRS, k.Load) if self.memory else PURE_EXPRS
        if not isinstance(e, allowed):
            self.bad(f"expression {type(e).__name__} is not allowed")
        elif isinstance(e, k.Local):
            self.local(e.name, e.type, "read")
        elif isinstance(e, k.Const):
            if e.type == T.F64 and not isinstance(e.value, float):
                self.bad(f"f64 constant {e.value!r}")
            bits = {T.I64: 64, T.I32: 32, T.BOOL: 2}.get(e.type)
            if bits and not (isinstance(e.value, int) and -(1 << (bits - 1)) <= e.value < 1 << (bits - 1)):
                self.bad(f"{e.type.value} constant {e.value!r} out of range")
        elif isinstance(e, k.Prim):
            if not isinstance(e.op, Op) or e.type != e.op.result or len(e.args) != e.op.arity:
                self.bad(f"{e.op}: type {e.type.value}, {len(e.args)} operands")
            else:
                for want, a in zip(e.op.args, e.args, strict=True):
                    if not accepts(want, self.expr(a)):
                        self.bad(f"{e.op.name}: operand of type {a.type.value}, wants {want.value}")
        elif isinstance(e, k.Choose):
            self.cond(e.cond, "select")
            if not (self.expr(e.a) == self.expr(e.b) == e.type):
                self.bad(f"select of {e.a.type.value} and {e.b.type.value} as {e.type.value}")
        elif isinstance(e, k.CallFn):
            callee = self.callee(e.func, e.args)
            if callee is not None and callee.results != (e.type,):
                self.bad(f"call of {e.func} for {e.type.value}, it returns {callee.results}")
        elif isinstance(e, k.Load) and self.expr(e.addr) != T.I32:
            self.bad("load from a non-i32 address")
        return e.type


def problems(fn: k.Function, *, memory: bool = False) -> list[str]:
    return Checker(fn, memory=memory).problems


ALL = list(mathlib.BY_WASM.values())


@pytest.mark.parametrize("mf", ALL, ids=[f.wasm_name for f in ALL])
def test_function_ir_is_well_formed(mf: mathlib.MathFunction) -> None:
    fn = mf.function
    assert fn.name == mf.wasm_name and fn.export is None
    assert problems(fn) == []
    assert mf.deps == tuple(sorted(dsl.callees(fn) - {fn.name}))
    assert mf.can_trap == dsl.can_trap(fn)


@pytest.mark.parametrize("name", ["sin", "atan2", "isnan"])
def test_loop_function_is_well_formed(name: str) -> None:
    fn = mathlib.loop_function(name)
    assert fn.export == f"apply_{name}"
    assert problems(fn, memory=True) == []


def test_the_checker_finds_faults() -> None:
    """Each broken function is reported (the checks above can fail)."""
    x = k.Local(T.F64, "x")

    def fn(body: list[k.Stmt], locals_: dict[str, T] | None = None) -> k.Function:
        return k.Function("m_bad", [("x", T.F64)], (T.F64,), locals_ or {}, body)

    ret = k.ReturnValues(values=[x])
    cases = {
        "undeclared local y": [k.SetLocal(name="y", value=x), ret],
        "outside its loop": [k.Exit(label="nowhere"), ret],
        "does not end": [k.If(k.NOSITE, k.Prim(T.BOOL, Op.F64_LT, [x, x]), [ret], [ret])],
        "operand of type f64": [k.ReturnValues(values=[k.Prim(T.I64, Op.I64_ADD, [x, x])])],
        "call of unknown": [k.ReturnValues(values=[k.CallFn(T.F64, "m_gamma", [x])])],
        "is not allowed": [k.Store(type=T.F64, addr=k.Const(T.I32, 0), offset=0, value=x), ret],
        "trap code": [k.Trap(code=traps.OVERFLOW)],
        "condition of type i32": [k.If(k.NOSITE, k.Const(T.I32, 1), [ret], []), ret],
    }
    for expected, body in cases.items():
        found = problems(fn(body))
        assert any(expected in p for p in found), (expected, found)
    assert problems(fn([ret])) == []


def test_raw_wat_became_ir() -> None:
    """The constructs once pasted as WAT text: the 2/pi table, the multi-value return and call,
    and fmod's loop exit."""
    large = mathlib.HELPERS["m_rem_pio2_large"].function
    assert large.results == (T.I32, T.F64, T.F64)
    assert isinstance(large.body[-1], k.ReturnValues) and len(large.body[-1].values) == 3
    sin = mathlib.FUNCTIONS["sin"].function
    (invoke,) = [n for n in dsl.walk(sin.body) if isinstance(n, k.Invoke)]
    assert invoke.func == "m_rem_pio2_large" and invoke.targets == ["n", "y0", "y1"]
    fmod = mathlib.HELPERS["m_fmod_raw"].function
    (loop,) = [n for n in dsl.walk(fmod.body) if isinstance(n, k.Loop)]
    assert loop.cond is None and isinstance(loop.body[-1], k.Exit) and loop.body[-1].label == loop.label
    # the table: every word of 2/pi is a constant of m_2opi_word, found by an unsigned search
    word = mathlib.HELPERS["m_2opi_word"].function
    consts = {n.value for n in dsl.walk(word.body) if isinstance(n, k.Const) and n.type == T.I64}
    assert {dsl.const(v, T.I64).node.value for v in mathlib.TWO_OVER_PI_WORDS} <= consts


def test_dsl_types() -> None:
    """Comparisons are BOOL; logic of two BOOLs stays BOOL, with an I32 it is I32; constants wrap
    to their type's width; a type mismatch is refused."""
    f = dsl.Fn("m_t", [("x", T.F64), ("i", T.I32)])
    x, i = f.param("x"), f.param("i")
    both = (x < 1.0) & x.ne(x)
    assert isinstance(both.node, k.Prim) and both.node.op is Op.BOOL_AND and both.ty == T.BOOL
    mixed = (x < 1.0) & i
    assert isinstance(mixed.node, k.Prim) and mixed.node.op is Op.I32_AND and mixed.ty == T.I32
    assert dsl.const(0xFFFFFFFF00000000, T.I64).node.value == -(1 << 32)
    assert dsl.const(0xFFFFFFFF, T.I32).node.value == -1
    with pytest.raises(TypeError, match="expected f64, got i32"):
        x + i
    with pytest.raises(TypeError, match="not defined for f64"):
        x >> 1
    # an integer condition is tested for non-zero explicitly: the IR's conditions are BOOLs
    test = dsl.if_(i & 1, [dsl.ret(x)])
    assert isinstance(test, k.If) and isinstance(test.cond, k.Prim) and test.cond.op is Op.I32_NE
    assert dsl.select(x, 0.0, i).node.cond.type == T.BOOL
    with pytest.raises(TypeError, match="not a condition"):
        dsl.if_(x, [])
    with pytest.raises(ValueError, match="end in a return or a trap"):
        f.build([dsl.if_(x < 0.0, [dsl.ret(x)])])


def test_library_module() -> None:
    """The shared math module (what kernels import from, and math.wasm): every function exported
    under its wasm_name, the error global exported, and wasmtime accepts the printed module."""
    import wasmtime

    from oscen.jit.backends import wasm

    module = mathlib.library_module()
    assert [f.export for f in module.functions] == list(mathlib.BY_WASM)
    assert [(g.name, g.type, g.export) for g in module.globals] == [("math_error", T.I32, "math_error")]
    assert all(problems(f) == [] for f in module.functions)
    compiled = wasmtime.Module(wasmtime.Engine(), wasm.module_text(module))
    assert {e.name for e in compiled.exports} == {*mathlib.BY_WASM, "math_error"}


def test_library_passes_the_validator() -> None:
    """The IR contract's own validator (oscen.jit.validate, from the reference-backend branch)
    accepts the library at the primitive level."""
    validate = pytest.importorskip("oscen.jit.validate")
    validate.validate(mathlib.library_module(), level="primitive")
