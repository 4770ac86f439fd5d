"""WebAssembly SIMD (v128) in the kernel IR: every v128 op, V128 loads, stores, locals, constants
and calls, printed for wasmtime and run by the reference backend, bit for bit.

wasmtime's Python API passes no v128 values, so each op runs in a one-op function that loads its
v128 operands from memory (scalar operands are parameters) and stores a v128 result to memory.

What "bit for bit" means: every lane's bits are equal, except where WebAssembly itself leaves
the bits open. f64x2 arithmetic that makes a NaN (add, sub, mul, div, min, max, sqrt, rounding,
relaxed_madd) may give any NaN (the spec's nondeterministic NaN payload, as for the scalar
instructions): there a NaN lane must meet a NaN lane, whatever its payload. Bit moves (neg, abs,
pmin, pmax, splat, lanes, bitwise) keep payloads and are compared exactly.
"""

from __future__ import annotations

import itertools
import math
import random
import struct

import numpy as np
import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from oscen.jit import kernel as k
from oscen.jit.backends import reference as ref
from oscen.jit.backends import wasm
from oscen.jit.engine import engine
from oscen.jit.kernel import T
from oscen.jit.ops import Op
from oscen.jit.validate import KernelIRError, validate

V, F, L, W, B = T.V128, T.F64, T.I64, T.I32, T.BOOL
VECTOR_OPS = [op for op in Op if V in (*op.args, op.result)]
NAN_OPEN = {
    Op.F64X2_ADD, Op.F64X2_SUB, Op.F64X2_MUL, Op.F64X2_DIV, Op.F64X2_MIN, Op.F64X2_MAX,
    Op.F64X2_SQRT, Op.F64X2_FLOOR, Op.F64X2_CEIL, Op.F64X2_TRUNC, Op.F64X2_NEAREST,
    Op.F64X2_RELAXED_MADD,
}  # fmt: skip
"""Ops whose NaN results WebAssembly leaves nondeterministic (compared by NaN-ness per lane)."""
OUT = 128  # where a v128 result goes


def _fbits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


F_EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -1.5, 2.5, -2.5, 3.5, 0.49999999999999994, 2.0**52, 2.0**52 - 0.5]
F_EDGES += [2.0**31, -(2.0**31), -(2.0**31) - 1.0, 2.0**31 - 0.5, 2.0**63, 1.8446744073709552e19]
F_EDGES += [5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1e-310, -1e-310]
F_EDGES += [1.7976931348623157e308, -1.7976931348623157e308, math.pi, -math.e, 1e300, 1e-300]
F_EDGES += [math.inf, -math.inf, math.nan, -math.nan]
F_LANES = [_fbits(x) for x in F_EDGES] + [0x7FF0000000000001, 0xFFF4000000000000, 0x7FF8000000000123]
I_LANES = [0, 1, 2, 7, 63, 64, 65, 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**62, 2**63 - 1, 2**63]
I_LANES += [2**64 - 1, 2**64 - 2, 2**64 - 7, 2**64 - 2**31, 2**63 + 1, 0x5555555555555555, 0xFEDCBA9876543210]
SHIFTS = [0, 1, 7, 31, 32, 63, 64, 65, 127, -1, -63, 2**31 - 1, -(2**31)]


def v128(lane0: int, lane1: int) -> bytes:
    return ((lane0 % 2**64) | (lane1 % 2**64) << 64).to_bytes(16, "little")


def op_function(op: Op) -> k.Function:
    """``f(scalar args...)``: ``op`` on v128 operands loaded from 0, 16, 32 and scalar
    parameters; a v128 result stored at OUT, a scalar one returned."""
    params: list[tuple[str, T]] = []
    args: list[k.Expr] = []
    loaded = 0
    for i, t in enumerate(op.args):
        if t == V:
            args.append(k.Load(V, k.Const(W, 16 * loaded)))
            loaded += 1
        else:
            params.append((f"a{i}", t))
            args.append(k.Local(t, f"a{i}"))
    value = k.Prim(op.result, op, args)
    if op.result == V:
        body: list[k.Stmt] = [
            k.Store(type=V, addr=k.Const(W, OUT), offset=0, value=value),
            k.ReturnValues(values=[]),
        ]
        return k.Function("f", params, (), {}, body, export="f")
    return k.Function("f", params, (op.result,), {}, [k.ReturnValues(values=[value])], export="f")


class Both:
    """A module with a memory in wasmtime (oscen's engine: relaxed SIMD on, deterministic) and in
    the reference backend."""

    def __init__(self, module: k.Module) -> None:
        validate(module, level="primitive")
        self.store = wasmtime.Store(engine())
        text = wasm.module_text(module)
        self.exports = wasmtime.Instance(self.store, wasmtime.Module(engine(), text), []).exports(self.store)
        self.memory = self.exports["memory"]
        self.ref = ref.CompiledModule(module).instantiate()

    def run(self, name: str, vectors: list[bytes], scalars: tuple, out: int | None) -> tuple:
        data = b"".join(vectors)
        self.memory.write(self.store, data, 0)
        self.ref.memory[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        try:
            w = ("ok", self.exports[name](self.store, *scalars))
        except wasmtime.Trap as trap:
            w = ("trap", trap.trap_code.name)
        try:
            r = ("ok", self.ref.call(name, *scalars))
        except ref.WasmTrap as trap:
            r = ("trap", trap.trap_code)
        if out is not None:
            w += (bytes(self.memory.read(self.store, out, out + 16)),)
            r += (self.ref.memory[out : out + 16].tobytes(),)
        return w, r


_BOTH: dict[Op, Both] = {}


def both_for(op: Op) -> Both:
    if op not in _BOTH:
        _BOTH[op] = Both(k.Module([op_function(op)], memory_pages=1))
    return _BOTH[op]


def _lanes_same(op: Op, a: bytes, b: bytes) -> bool:
    if a == b:
        return True
    if op not in NAN_OPEN:
        return False
    for x, y in zip(struct.unpack("<2d", a), struct.unpack("<2d", b), strict=True):
        if not (x != x and y != y) and _fbits(x) != _fbits(y):
            return False
    return True


def _scalar_same(t: T, a, b) -> bool:
    if t == F:
        return _fbits(a) == _fbits(b)  # extract_lane moves bits: exact
    return (int(a) - int(b)) % 2**64 == 0 and not isinstance(b, float)


def check(op: Op, vectors: list[bytes], scalars: tuple = ()) -> None:
    w, r = both_for(op).run("f", vectors, scalars, OUT if op.result == V else None)
    assert w[0] == r[0] == "ok", f"{op.name}: wasmtime {w}, reference {r}"
    if op.result == V:
        assert _lanes_same(op, w[2], r[2]), (
            f"{op.name}{vectors, scalars}: wasmtime {w[2].hex()}, reference {r[2].hex()}"
        )
    else:
        assert _scalar_same(op.result, w[1], r[1]), (
            f"{op.name}{vectors, scalars}: wasmtime {w[1]!r}, reference {r[1]!r}"
        )


def _pool(op: Op) -> list[int]:
    return I_LANES if op.name.startswith(("I64X2", "V128")) else F_LANES


def _scalar_edges(t: T) -> list:
    return {F: F_EDGES, L: [x - 2**64 if x >= 2**63 else x for x in I_LANES], W: SHIFTS}[t]


def edge_cases(op: Op) -> list[tuple[list[bytes], tuple]]:
    """Every pair of lane values (both orders, in both lanes) for the v128 operands; each scalar
    operand over its edge values."""
    pool = _pool(op)
    nv = sum(t == V for t in op.args)
    scalar_types = [t for t in op.args if t != V]
    pairs = list(itertools.product(pool, pool))
    rng = random.Random(op.name)
    cases: list[tuple[list[bytes], tuple]] = []
    if nv == 1 and not scalar_types:
        cases = [([v128(a, b)], ()) for a, b in pairs]
    elif nv == 2:
        cases = [([v128(a, b), v128(b, a)], ()) for a, b in pairs]
    elif nv == 3:
        cases = [([v128(a, b), v128(b, a), v128(rng.choice(pool), rng.choice(pool))], ()) for a, b in pairs]
        if op == Op.F64X2_RELAXED_MADD:  # cancellation, overflow, underflow and signed zeros of a*b+c
            for _ in range(600):
                a, b = rng.uniform(-4, 4), rng.uniform(-4, 4)
                c = -(a * b) if rng.random() < 0.5 else rng.choice(F_EDGES)
                cases.append(
                    (
                        [v128(_fbits(a), _fbits(b)), v128(_fbits(b), _fbits(a)), v128(_fbits(c), _fbits(-c))],
                        (),
                    )
                )
    elif nv == 0:
        cases = [([], (s,)) for s in _scalar_edges(scalar_types[0])]
    else:  # a vector and a scalar (replace_lane, shifts)
        vectors = [v128(a, b) for a, b in rng.sample(pairs, 60)] + [v128(a, a) for a in pool]
        cases = [([v], (s,)) for v in vectors for s in _scalar_edges(scalar_types[0])]
    return cases


@pytest.mark.parametrize("op", VECTOR_OPS, ids=lambda o: o.name)
def test_every_vector_op_matches_wasmtime_on_edge_values(op: Op) -> None:
    for vectors, scalars in edge_cases(op):
        check(op, vectors, scalars)


def _scalar(t: T) -> st.SearchStrategy:
    if t == F:
        return st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(0, 2**64 - 1).map(lambda b: struct.unpack("<d", struct.pack("<Q", b))[0]),
        )
    if t == L:
        return st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-70, 70))
    return st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-130, 130))


_LANE = st.one_of(
    st.integers(0, 2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True).map(_fbits),
    st.floats(-1e6, 1e6).map(_fbits),
    st.integers(-(2**31), 2**31).map(lambda i: i % 2**64),
)


@st.composite
def _case(draw: st.DrawFn) -> tuple[Op, list[bytes], tuple]:
    op = draw(st.sampled_from(VECTOR_OPS))
    vectors = [v128(draw(_LANE), draw(_LANE)) for t in op.args if t == V]
    return op, vectors, tuple(draw(_scalar(t)) for t in op.args if t != V)


@settings(max_examples=800, deadline=None)
@given(_case())
def test_every_vector_op_matches_wasmtime_on_random_values(case: tuple[Op, list[bytes], tuple]) -> None:
    check(*case)


def test_relaxed_madd_is_fused_in_both_backends() -> None:
    """The engine's deterministic relaxed SIMD fuses: (1+2^-30)(1-2^-30) - 1 is -2^-60, not the
    0 of two roundings (so this must not translate a scalar ``a*b + c``)."""
    a, b = 1 + 2.0**-30, 1 - 2.0**-30
    vectors = [v128(_fbits(a), _fbits(a)), v128(_fbits(b), _fbits(b)), v128(_fbits(-1.0), _fbits(-1.0))]
    w, r = both_for(Op.F64X2_RELAXED_MADD).run("f", vectors, (), OUT)
    assert struct.unpack("<2d", w[2]) == struct.unpack("<2d", r[2]) == (-(2.0**-60), -(2.0**-60))
    assert a * b - 1.0 == 0.0


# ---------------------------------------------------------------------------------------- constructs
def _i32(v: int) -> k.Const:
    return k.Const(W, v)


def test_v128_loads_stores_locals_constants_selects_and_calls() -> None:
    """Unaligned loads and stores with offsets, a V128 local and parameter, a V128 constant (NaN
    payload and -0.0 kept), Choose and Select of V128, a call taking and giving V128, and a store
    past the end trapping in both."""
    x, y = k.Local(V, "x"), k.Local(V, "y")
    swap = k.Function(
        "swap",
        [("v", V)],
        (V,),
        {},
        [k.ReturnValues(values=[k.Prim(V, Op.F64X2_REPLACE_LANE1,
            [k.Prim(V, Op.F64X2_SPLAT, [k.Prim(F, Op.F64X2_EXTRACT_LANE1, [k.Local(V, "v")])]),
             k.Prim(F, Op.F64X2_EXTRACT_LANE0, [k.Local(V, "v")])])])],
    )  # fmt: skip
    nan_const = k.v128_f64x2(struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000ABC))[0], -0.0)
    main = k.Function(
        "main",
        [("p", W), ("c", B)],
        (),
        {"x": V, "y": V},
        [
            k.SetLocal(name="x", value=k.Load(V, k.Local(W, "p"), offset=3)),
            k.SetLocal(name="y", value=k.CallFn(V, "swap", [x])),
            k.Store(type=V, addr=k.Local(W, "p"), offset=101, value=y),
            k.Store(type=V, addr=_i32(200), offset=0, value=k.Choose(V, k.Local(B, "c"), x, nan_const)),
            k.Store(type=V, addr=_i32(217), offset=0, value=k.Select(V, k.Local(B, "c"), nan_const, y)),
            k.Store(type=V, addr=_i32(240), offset=0, value=k.v128_i64x2(-1, 2**63)),
            k.ReturnValues(values=[]),
        ],
        export="main",
    )
    both = Both(k.Module([swap, main], memory_pages=1))
    data = bytes(range(1, 40))
    for p, c in ((0, 1), (5, 0), (65536 - 120, 1), (65536 - 110, 0)):
        w, r = both.run("main", [data], (p, c), None)
        assert w == r, (p, c, w, r)
        if w[0] == "ok":
            wm = bytes(both.memory.read(both.store, 0, 65536))
            assert wm == both.ref.memory.tobytes()
    assert w == ("trap", "MEMORY_OUT_OF_BOUNDS")
    text = wasm.module_text(k.Module([swap, main], memory_pages=1))
    assert "(v128.const i64x2 9221120237041093308 -9223372036854775808)" in text
    assert "(f64x2.extract_lane 1 " in text and "v128.load offset=3" in text


def test_the_validator_checks_v128_types() -> None:
    good = k.Function("g", [("a", V)], (V,), {}, [k.ReturnValues(values=[
        k.Prim(V, Op.I64X2_SHL, [k.Local(V, "a"), _i32(3)])])])  # fmt: skip
    validate(good, level="primitive")
    bad = [
        k.Prim(V, Op.F64X2_ADD, [k.Local(V, "a"), k.Const(F, 1.0)]),  # an f64 where a v128 goes
        k.Prim(F, Op.F64X2_MUL, [k.Local(V, "a"), k.Local(V, "a")]),  # result typed f64
        k.Prim(V, Op.I64X2_SHR_U, [k.Local(V, "a"), k.Const(L, 1)]),  # shift count i64
        k.Const(V, b"\0" * 15),  # 15 bytes
        k.Const(V, 0),
        k.Choose(V, k.Local(V, "a"), k.Local(V, "a"), k.Local(V, "a")),  # a v128 condition
    ]
    for e in bad:
        fn = k.Function("b", [("a", V)], (V,), {}, [k.ReturnValues(values=[e])])
        with pytest.raises(KernelIRError):
            validate(fn, level="primitive")
    cond = k.Function(
        "c", [("a", V)], (), {}, [k.If(k.NOSITE, k.Local(V, "a"), [], []), k.ReturnValues(values=[])]
    )
    with pytest.raises(KernelIRError, match="expected bool"):
        validate(cond, level="primitive")
    with pytest.raises(KernelIRError, match="starts from 16 bytes"):
        validate(k.Module([], globals=[k.Global("g", V, 0)]))
    with pytest.raises(KernelIRError, match="the module keeps"):
        validate(k.Module([], globals=[k.Global("g", V, bytes(16), export="g")]))


def test_a_v128_global_keeps_its_value_in_both_backends() -> None:
    """A mutable v128 global (passes.invariants keeps a voice pair's read-only vectors in them):
    set from memory by one call, stored back by the next, in wasmtime and the reference."""
    V, W = T.V128, T.I32
    g = k.Global("keep", V, v128(7, -3))
    put = k.Function(
        "put", [], (), {}, [k.SetGlobal(name="keep", value=k.Load(V, k.Const(W, 0))), k.ReturnValues(values=[])],
        export="put",
    )  # fmt: skip
    get = k.Function(
        "get", [], (), {}, [k.Store(type=V, addr=k.Const(W, OUT), offset=0, value=k.GetGlobal(V, "keep")),
                            k.ReturnValues(values=[])],
        export="get",
    )  # fmt: skip
    both = Both(k.Module([put, get], globals=[g], memory_pages=1))
    assert both.run("get", [], (), OUT) == (("ok", None, v128(7, -3)), ("ok", None, v128(7, -3)))
    w, r = both.run("put", [v128(2**62, 5)], (), None)
    assert w[0] == r[0] == "ok"
    w, r = both.run("get", [v128(2**62, 5)], (), OUT)
    assert w[2] == r[2] == v128(2**62, 5)
