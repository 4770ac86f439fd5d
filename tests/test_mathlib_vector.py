"""The f64x2 forms of the math library (oscen/jit/mathlib/vector.py) against the scalar library,
bit for bit: every lane's result has the scalar function's bits, on 2^17 points per function
(audio-range and random-bit arguments, thresholds and their neighbours, NaN payloads, infinities,
denormals) run through wasmtime, and on a smaller sample through the reference backend.

The main-path form is checked on its own too: its lanes must be the scalar results wherever its
mask says it computed them, and the mask must cover the arguments audio meets (else the complete
form would pass by falling back to the scalar function everywhere).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

import numpy as np
import pytest
import wasmtime

from oscen.jit import kernel as k
from oscen.jit import mathlib
from oscen.jit.backends import reference as ref
from oscen.jit.backends import wasm
from oscen.jit.engine import engine
from oscen.jit.kernel import T
from oscen.jit.mathlib import dsl
from oscen.jit.ops import Op
from oscen.jit.validate import validate

V, I32, F = T.V128, T.I32, T.F64
N = 1 << 17
mathlib.vector_forms()  # built on first use, not at import
NAMES = sorted(mathlib.VECTOR)
IN, OUT_V, OUT_S, OUT_M, IN_Y, MASKS = (i * N * 8 for i in range(6))
PAGES = (MASKS + N * 4) // 65536 + 1
BINARY = {"pow", "pypow"}


def _add(a: k.Expr, b: k.Expr) -> k.Expr:
    return k.Prim(I32, Op.I32_ADD, [a, b])


def _vector_loop(name: str, main: bool) -> k.Function:
    """``apply(n)``: IN -> OUT_V (complete form) or OUT_M plus lane masks at MASKS (main form),
    two values per call."""
    mf = (mathlib.vector_main if main else mathlib.vector_form)(name)
    assert mf is not None
    off, i = k.Local(I32, "off"), k.Local(I32, "i")
    args: list[k.Expr] = [k.Load(V, _add(k.Const(I32, IN), off))]
    if name in BINARY:
        args.append(k.Load(V, _add(k.Const(I32, IN_Y), off)))
    if main:
        store = [
            k.Invoke(func=mf.wasm_name, args=args, targets=["r", "m"], results=(V, I32)),
            k.Store(type=V, addr=_add(k.Const(I32, OUT_M), off), offset=0, value=k.Local(V, "r")),
            k.Store(type=I32, addr=_add(k.Const(I32, MASKS), i), offset=0, value=k.Local(I32, "m")),
        ]
    else:
        store = [
            k.Store(
                type=V, addr=_add(k.Const(I32, OUT_V), off), offset=0, value=k.CallFn(V, mf.wasm_name, args)
            )
        ]
    body: list[k.Stmt] = [
        k.Loop(
            label="done",
            cond=None,
            body=[
                k.Exit(label="done", cond=k.Prim(T.BOOL, Op.I32_GE_U, [off, k.Local(I32, "end")])),
                *store,
                k.SetLocal(name="off", value=_add(off, k.Const(I32, 16))),
                k.SetLocal(name="i", value=_add(i, k.Const(I32, 4))),
            ],
        ),
        k.ReturnValues(values=[]),
    ]
    export = f"apply_{'main' if main else 'v'}"
    return k.Function(
        export,
        [("end", I32)],
        (),
        {"off": I32, "i": I32, "r": V, "m": I32},
        body,
        export=export,
    )


def _scalar_loop(name: str) -> k.Function:
    mf = mathlib.FUNCTIONS[name]
    args: list[k.Expr] = [k.Load(F, _add(k.Const(I32, IN), k.Local(I32, "off")))]
    if name in BINARY:
        args.append(k.Load(F, _add(k.Const(I32, IN_Y), k.Local(I32, "off"))))
    value = k.CallFn(F, mf.wasm_name, args)
    body: list[k.Stmt] = [
        k.Loop(
            label="done",
            cond=None,
            body=[
                k.Exit(
                    label="done", cond=k.Prim(T.BOOL, Op.I32_GE_U, [k.Local(I32, "off"), k.Local(I32, "end")])
                ),
                k.Store(type=F, addr=_add(k.Const(I32, OUT_S), k.Local(I32, "off")), offset=0, value=value),
                k.SetLocal(name="off", value=_add(k.Local(I32, "off"), k.Const(I32, 8))),
            ],
        ),
        k.ReturnValues(values=[]),
    ]
    return k.Function("apply_s", [("end", I32)], (), {"off": I32}, body, export="apply_s")


def module_for(name: str) -> k.Module:
    wasm_names = [mathlib.vector_form(name).wasm_name, mathlib.vector_main(name).wasm_name]
    functions = mathlib.functions_for([*wasm_names, mathlib.FUNCTIONS[name].wasm_name])
    loops = [_vector_loop(name, False), _vector_loop(name, True), _scalar_loop(name)]
    module = k.Module(
        [*functions, *loops],
        globals=[k.Global(mathlib.ERROR_GLOBAL, I32, 0, mutable=True, export=mathlib.ERROR_GLOBAL)],
        memory_pages=PAGES,
    )
    validate(module, level="primitive")
    return module


def _f(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def python(name: str, *args: float) -> object:
    """What Python computes (``pypow``: float ``**``)."""
    if name == "pypow":
        return args[0] ** args[1]
    return getattr(math, name)(*args)


def _raises(name: str, *args: float) -> bool:
    try:
        return isinstance(python(name, *args), complex)  # oscen refuses a complex power
    except (ValueError, OverflowError, ZeroDivisionError):
        return True


THRESHOLDS = {  # where a function's scalar code changes path (high words, or values)
    "sin": [_f(0x3E500000 << 32), dsl.from_words(0x413921FB), math.pi / 4, math.pi / 2],
    "cos": [_f(0x3E500000 << 32), dsl.from_words(0x413921FB), math.pi / 4, math.pi / 2],
    "tan": [_f(0x3E400000 << 32), dsl.from_words(0x413921FB), dsl.from_words(0x3FE59428), 0.75, math.pi / 2],
    "exp": [dsl.from_words(0x4086232B), 709.782712893384, -745.1332191019412, 0.5 * math.log(2)],
    "exp2": [1022.0, 1024.0, -1080.0, 0.5],
    "expm1": [dsl.from_words(0x3FD62E43), dsl.from_words(0x3FF0A2B2), dsl.from_words(0x4043687A), 2.0**-54],
    "log": [2.2250738585072014e-308, math.sqrt(2), math.sqrt(0.5), 1.0],
    "log2": [2.2250738585072014e-308, math.sqrt(2), 1.0, 2.0],
    "log10": [2.2250738585072014e-308, 10.0, 1.0, 0.1],
    "tanh": [1.0, 22.0, 2.0**-55, 19.4],
    "sinh": [1.0, 22.0, 2.0**-28, 709.0],
    "cosh": [dsl.from_words(0x3FD62E43), 22.0, 2.0**-54, 709.0],
    "atan": [2.0**-27, 0.4375, 0.6875, 1.1875, 2.4375, 2.0**66],
    "pow": [1.0, 2.2250738585072014e-308, math.sqrt(1.5), math.sqrt(3.0), 2.0],
    "pypow": [1.0, 2.2250738585072014e-308, math.sqrt(1.5), math.sqrt(3.0), 2.0],
}
Y_THRESHOLDS = [0.0, 0.5, 1.0, 2.0, 2.0**31, 2.0**31 + 1, 2.0**64, 3.0, -2.0, -0.5]
Y_AUDIO = (-4.0, 4.0)
AUDIO = {  # the arguments audio meets: the main path must cover these
    "sin": (-1e4, 1e4),
    "cos": (-1e4, 1e4),
    "tan": (-1.55, 1.55),  # prewarping (TPT filters): pi fc / fs up to 0.49 pi
    "exp": (-700.0, 700.0),
    "exp2": (-1000.0, 1000.0),
    "expm1": (-30.0, 30.0),
    "log": (1e-300, 1e300),
    "log2": (1e-300, 1e300),
    "log10": (1e-300, 1e300),
    "tanh": (-30.0, 30.0),
    "sinh": (-21.0, 21.0),
    "cosh": (-21.0, 21.0),
    "atan": (-20.0, 20.0),
    "pow": (1e-3, 1e3),  # with y in Y_AUDIO
    "pypow": (1e-3, 1e3),
}


def arguments(name: str, n: int, seed: int) -> np.ndarray:
    """``n`` arguments: audio-range values (uniform and log-uniform magnitudes), random bit
    patterns, edge values, each threshold and its 20 neighbours on either side, multiples of
    pi/2 for sin/cos; none where Python's function raises (those are tested one by one)."""
    rng = np.random.default_rng(seed)
    lo, hi = AUDIO[name]
    edges = [0.0, -0.0, 5e-324, -5e-324, 1e-310, 2.2250738585072014e-308, 1.7976931348623157e308, -1.0]
    edges += [math.nan, -math.nan, _f(0x7FF8000000000ABC), _f(0xFFF0000000000001), math.inf, -math.inf]
    edges += [1e-20, -1e-20, 2.0**-1022 * 3, 1e22, 2.0**60, -(2.0**60), 0.5, 2.0, 3.0]
    for t in THRESHOLDS[name]:
        b = struct.unpack("<Q", struct.pack("<d", t))[0]
        for d in range(-20, 21):
            edges += [_f(b + d), -_f(b + d)]
    if name in ("sin", "cos", "tan"):
        for m in [*range(1, 400), *rng.integers(1, 600000, 400).tolist()]:
            b = struct.unpack("<Q", struct.pack("<d", m * math.pi / 2))[0]
            edges += [_f(b + d) for d in range(-3, 4)]
    parts = [
        np.array(edges),
        rng.uniform(lo, hi, n // 3),
        np.sign(rng.uniform(-1, 1, n // 3))
        * np.exp(rng.uniform(math.log(1e-12), math.log(max(abs(lo), hi)), n // 3)),
        rng.integers(0, 2**64, n // 6, dtype=np.uint64).view(np.float64),
    ]
    x = np.concatenate(parts)[:n]
    if len(x) < n:
        x = np.concatenate([x, rng.uniform(lo, hi, n - len(x))])
    rng.shuffle(x)
    if name in BINARY:
        return _pow_arguments(name, x, rng)
    bad = np.array([_raises(name, float(v)) for v in x])
    x[bad] = rng.uniform(lo, hi, int(bad.sum()))
    return x


def _pow_arguments(name: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(x, y)`` pairs as a (2, n) array: x as for a unary function, y audio-range, small
    integers, thresholds and their neighbours, random bits; none that Python refuses."""
    n = len(x)
    ys = [*Y_THRESHOLDS, *(-t for t in Y_THRESHOLDS), math.inf, -math.inf, math.nan, 1e300, -1e300]
    for t in Y_THRESHOLDS:
        b = struct.unpack("<Q", struct.pack("<d", t))[0]
        ys += [_f((b + d) % 2**64) for d in (-2, -1, 1, 2)]
    parts = [
        rng.uniform(*Y_AUDIO, n // 2),
        rng.integers(-40, 40, n // 8).astype(float),
        rng.choice(np.array(ys), n // 8),
        rng.integers(0, 2**64, n // 8, dtype=np.uint64).view(np.float64),
    ]
    y = np.concatenate(parts)
    y = np.concatenate([y, rng.uniform(*Y_AUDIO, n - len(y))])
    rng.shuffle(y)
    # y*log2(x) near a half-integer: where the scalar code's n = [z + 1/2] changes
    near = [(b, (m + 0.5) / math.log2(b) + j * 2.0**-24) for b in (2.0, math.e, 10.0, 0.3) for m in range(-60, 60)
            for j in range(-4, 5)]  # fmt: skip
    near = [near[i] for i in rng.permutation(len(near))[: n // 4]]
    x[: len(near)], y[: len(near)] = zip(*near, strict=True)
    bad = np.array([_raises(name, float(a), float(b)) for a, b in zip(x, y, strict=True)])
    x[bad] = rng.uniform(0.5, 2.0, int(bad.sum()))
    y[bad] = rng.uniform(*Y_AUDIO, int(bad.sum()))
    return np.stack([x, y])


def _write_args(write: Callable[[int, np.ndarray], None], x: np.ndarray) -> np.ndarray:
    """Arguments into memory (IN, and IN_Y for a binary function); returns x (the first)."""
    if x.ndim == 2:
        write(IN_Y, x[1])
        x = x[0]
    write(IN, x)
    return x


class Wasm:
    def __init__(self, module: k.Module) -> None:
        self.store = wasmtime.Store(engine())
        self.exports = wasmtime.Instance(
            self.store, wasmtime.Module(engine(), wasm.module_text(module)), []
        ).exports(self.store)
        self.memory = self.exports["memory"]

    def write(self, at: int, data: np.ndarray) -> None:
        self.memory.write(self.store, data.tobytes(), at)

    def read(self, at: int, n: int, dtype: type = np.uint64) -> np.ndarray:
        return np.frombuffer(bytes(self.memory.read(self.store, at, at + n * 8)), dtype=dtype)


def _mismatch(x: np.ndarray, want: np.ndarray, got: np.ndarray) -> str:
    bad = np.nonzero(want != got)[0][:5]
    return ", ".join(f"x={x[i]!r}: scalar {_f(int(want[i]))!r} vector {_f(int(got[i]))!r}" for i in bad)


@pytest.mark.parametrize("name", NAMES)
def test_vector_form_is_the_scalar_function_bit_for_bit(name: str) -> None:
    w = Wasm(module_for(name))
    x = _write_args(w.write, arguments(name, N, seed=sum(map(ord, name))))
    for fn in ("apply_v", "apply_main", "apply_s"):
        w.exports[fn](w.store, N * 8)
    scalar, vector, main = w.read(OUT_S, N), w.read(OUT_V, N), w.read(OUT_M, N)
    assert np.array_equal(scalar, vector), f"{name}: {_mismatch(x, scalar, vector)}"
    masks = np.frombuffer(bytes(w.memory.read(w.store, MASKS, MASKS + N * 2)), dtype=np.int32)
    on_main = np.stack([masks & 1, masks & 2], axis=1).reshape(-1).astype(bool)
    assert np.array_equal(scalar[on_main], main[on_main]), (
        f"{name}: {_mismatch(x[on_main], scalar[on_main], main[on_main])}"
    )
    # arguments audio meets (uniform over the range): on the main path, all but a few
    lo, hi = AUDIO[name]
    rng = np.random.default_rng(1)
    x = rng.uniform(lo, hi, N)
    if name in BINARY:  # x log-uniform
        x = np.stack([np.exp(rng.uniform(math.log(lo), math.log(hi), N)), rng.uniform(*Y_AUDIO, N)])
    x = _write_args(w.write, x)
    for fn in ("apply_main", "apply_s"):
        w.exports[fn](w.store, N * 8)
    masks = np.frombuffer(bytes(w.memory.read(w.store, MASKS, MASKS + N * 2)), dtype=np.int32)
    on_main = np.stack([masks & 1, masks & 2], axis=1).reshape(-1).astype(bool)
    assert on_main.mean() > 0.999, f"{name}: the main path covers {on_main.mean():.5f} of audio arguments"
    scalar, main = w.read(OUT_S, N), w.read(OUT_M, N)
    assert np.array_equal(scalar[on_main], main[on_main]), (
        f"{name}: {_mismatch(x[on_main], scalar[on_main], main[on_main])}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_reference_backend_runs_the_vector_forms_as_wasmtime(name: str) -> None:
    n = 512
    module = module_for(name)
    w = Wasm(module)
    inst = ref.CompiledModule(module).instantiate()
    args = arguments(name, n, seed=7)
    x = _write_args(w.write, args)

    def ref_write(at: int, data: np.ndarray) -> None:
        inst.memory[at : at + data.nbytes] = np.frombuffer(data.tobytes(), dtype=np.uint8)

    _write_args(ref_write, args)
    for fn in ("apply_v", "apply_main"):
        w.exports[fn](w.store, n * 8)
        inst.call(fn, n * 8)
    for at in (OUT_V, OUT_M):
        got = np.frombuffer(inst.memory[at : at + n * 8].tobytes(), dtype=np.uint64)
        assert np.array_equal(w.read(at, n), got), f"{name}: {_mismatch(x, w.read(at, n), got)}"


TRAPS = [
    ("sin", math.inf),
    ("cos", -math.inf),
    ("tan", math.inf),
    ("exp", 1000.0),
    ("exp2", 2000.0),
    ("expm1", 800.0),
    ("log", -1.0),
    ("log", 0.0),
    ("log2", -0.0),
    ("log10", -math.inf),
    ("sinh", 1000.0),
    ("cosh", -1000.0),
    ("pow", (-2.0, 0.5)),
    ("pow", (0.0, -1.0)),
    ("pow", (10.0, 400.0)),
    ("pypow", (0.0, -2.0)),
    ("pypow", (-8.0, 1.0 / 3.0)),
    ("pypow", (10.0, 400.0)),
]


@pytest.mark.parametrize(("name", "bad"), TRAPS)
@pytest.mark.parametrize("lane", [0, 1])
def test_a_lane_the_scalar_function_refuses_raises_its_error(
    name: str, bad: float | tuple, lane: int
) -> None:
    """The scalar function's math error, from either lane, in both backends; the main form
    never traps and leaves the lane's bit clear."""
    module = module_for(name)
    w = Wasm(module)
    inst = ref.CompiledModule(module).instantiate()
    bad_args = bad if isinstance(bad, tuple) else (bad,)
    args = np.full((len(bad_args), 2), 0.75)
    args[:, lane] = bad_args

    def ref_write(at: int, data: np.ndarray) -> None:
        inst.memory[at : at + data.nbytes] = np.frombuffer(data.tobytes(), dtype=np.uint8)

    for write in (w.write, ref_write):
        _write_args(write, args if len(bad_args) == 2 else args[0])
    with pytest.raises(wasmtime.Trap):
        w.exports["apply_v"](w.store, 16)
    with pytest.raises(ref.WasmTrap):
        inst.call("apply_v", 16)
    code = w.exports[mathlib.ERROR_GLOBAL].value(w.store)
    assert code == inst.global_value(mathlib.ERROR_GLOBAL) != 0
    if name == "pypow" and bad_args[0] < 0:
        assert isinstance(python(name, *bad_args), complex) and code == mathlib.ERR_COMPLEX_POW
    else:
        with pytest.raises((ValueError, OverflowError, ZeroDivisionError)) as exc:
            python(name, *bad_args)
        assert mathlib.ERROR_MESSAGES[code][0] is exc.type
    w.exports["apply_main"](w.store, 16)
    mask = int(np.frombuffer(bytes(w.memory.read(w.store, MASKS, MASKS + 4)), dtype=np.int32)[0])
    assert not mask & (1 << lane) and mask & (1 << (1 - lane))


def test_the_registry_says_which_functions_have_vector_forms() -> None:
    for name in ("sin", "cos", "exp", "log", "tanh"):
        mf = mathlib.vector_form(name)
        assert mf is not None and mf.params == ("v128",) and mf.result == "v128"
        assert mathlib.FUNCTIONS[name].wasm_name in mf.deps
        assert mf.can_trap == mathlib.FUNCTIONS[name].can_trap
        main = mathlib.vector_main(name)
        assert main is not None and main.result == "v128 i32" and not main.can_trap
    assert mathlib.vector_form("atan2") is None and mathlib.vector_form("nonsense") is None
    library = wasm.module_text(mathlib.library_module())
    assert "v128" not in library  # the shared math module (and a web export's math.wasm) stay scalar
    assert mathlib.resolve("m_sin_f64x2") is mathlib.vector_form("sin")


def test_a_kernel_pastes_a_vector_form_and_imports_the_scalar_function_it_falls_back_to() -> None:
    """As a compiled kernel would use it: the f64x2 form pasted into the module, the scalar
    function imported from the shared math module (oscen's engine); a lane off the main path
    (Payne-Hanek, a NaN) gets the import's result, and its math error lands in the math module's
    error global."""
    from oscen.jit.engine import math_module

    vsin = mathlib.vector_form("sin")
    scalar = mathlib.FUNCTIONS["sin"]
    module = k.Module(
        [vsin.function, mathlib.vector_loop_function("sin")],
        imports=[k.Import("math", scalar.wasm_name, (F,), (F,))],
        memory_pages=1,
    )
    validate(module, level="primitive")
    store = wasmtime.Store(engine())
    lib = wasmtime.Instance(store, math_module(), []).exports(store)
    kernel = wasmtime.Instance(
        store, wasmtime.Module(engine(), wasm.module_text(module)), [lib[scalar.wasm_name]]
    ).exports(store)
    x = np.array([0.5, 1e10, math.nan, -3.0, 1e300, 2.0**-40])
    kernel["memory"].write(store, x.tobytes(), 0)
    kernel["apply_sin_f64x2"](store, 0, 64, len(x))
    got = np.frombuffer(bytes(kernel["memory"].read(store, 64, 64 + 8 * len(x))), dtype=np.uint64)
    want = np.array([lib[scalar.wasm_name](store, float(v)) for v in x]).view(np.uint64)
    assert np.array_equal(got, want)
    kernel["memory"].write(store, np.array([1.0, math.inf]).tobytes(), 0)
    with pytest.raises(wasmtime.Trap):
        kernel["apply_sin_f64x2"](store, 0, 64, 2)
    assert lib[mathlib.ERROR_GLOBAL].value(store) == mathlib.ERR_DOMAIN
