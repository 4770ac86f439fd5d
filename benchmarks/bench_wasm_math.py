"""ns per call of the WAT math functions vs numpy's vectorised equivalents.

Each function runs inside a WASM loop (``apply_<f>`` from
:func:`oscen.jit.wasm_math.loop_wat`) over 2^14 audio-ish inputs in
linear memory, so host-call overhead is amortised away; the "copy" row is the
same loop with no function (load + store + loop counter), i.e. the floor.
A second table compares the scalar functions with their f64x2 forms
(:func:`oscen.jit.mathlib.vector_form`, two values per call, bit-identical results)
on the same inputs.

Usage: python benchmarks/bench_wasm_math.py [--n 16384] [--rounds 40]
"""

from __future__ import annotations

import argparse
import ctypes
import time
from collections.abc import Callable

import numpy as np
import wasmtime

from oscen.jit import mathlib
from oscen.jit import wasm_math as wm
from oscen.jit.backends import wasm as wasm_backend

mathlib.vector_forms()  # the f64x2 forms are built on first use

RNG = np.random.default_rng(1)

# name -> (input generator(s), numpy equivalent or None)
Gen = Callable[[int], np.ndarray]
CASES: dict[str, tuple[tuple[Gen, ...], Callable[..., np.ndarray] | None]] = {
    "sin": ((lambda n: RNG.uniform(-10, 10, n),), np.sin),
    "cos": ((lambda n: RNG.uniform(-10, 10, n),), np.cos),
    "tan": ((lambda n: RNG.uniform(-1.5, 1.5, n),), np.tan),
    "asin": ((lambda n: RNG.uniform(-1, 1, n),), np.arcsin),
    "acos": ((lambda n: RNG.uniform(-1, 1, n),), np.arccos),
    "atan": ((lambda n: RNG.uniform(-10, 10, n),), np.arctan),
    "atan2": ((lambda n: RNG.uniform(-1, 1, n), lambda n: RNG.uniform(-1, 1, n)), np.arctan2),
    "sinh": ((lambda n: RNG.uniform(-5, 5, n),), np.sinh),
    "cosh": ((lambda n: RNG.uniform(-5, 5, n),), np.cosh),
    "tanh": ((lambda n: RNG.uniform(-3, 3, n),), np.tanh),
    "asinh": ((lambda n: RNG.uniform(-10, 10, n),), np.arcsinh),
    "acosh": ((lambda n: RNG.uniform(1, 10, n),), np.arccosh),
    "atanh": ((lambda n: RNG.uniform(-0.99, 0.99, n),), np.arctanh),
    "exp": ((lambda n: RNG.uniform(-10, 10, n),), np.exp),
    "exp2": ((lambda n: RNG.uniform(-10, 10, n),), np.exp2),
    "expm1": ((lambda n: RNG.uniform(-2, 2, n),), np.expm1),
    "log": ((lambda n: RNG.uniform(1e-3, 10, n),), np.log),
    "log2": ((lambda n: RNG.uniform(1e-3, 10, n),), np.log2),
    "log10": ((lambda n: RNG.uniform(1e-3, 10, n),), np.log10),
    "log1p": ((lambda n: RNG.uniform(-0.5, 10, n),), np.log1p),
    "pow": ((lambda n: RNG.uniform(0.1, 10, n), lambda n: RNG.uniform(-4, 4, n)), np.power),
    "pypow": ((lambda n: RNG.uniform(0.1, 10, n), lambda n: RNG.uniform(-4, 4, n)), np.power),
    "sqrt": ((lambda n: RNG.uniform(0, 10, n),), np.sqrt),
    "cbrt": ((lambda n: RNG.uniform(-10, 10, n),), np.cbrt),
    "hypot": ((lambda n: RNG.uniform(-1, 1, n), lambda n: RNG.uniform(-1, 1, n)), np.hypot),
    "fmod": ((lambda n: RNG.uniform(-10, 10, n), lambda n: np.full(n, 1.0)), np.fmod),
    "pymod": ((lambda n: RNG.uniform(-10, 10, n), lambda n: np.full(n, 1.0)), np.mod),
    "pyfloordiv": ((lambda n: RNG.uniform(-10, 10, n), lambda n: np.full(n, 1.0)), np.floor_divide),
    "degrees": ((lambda n: RNG.uniform(-10, 10, n),), np.degrees),
    "radians": ((lambda n: RNG.uniform(-10, 10, n),), np.radians),
    "fabs": ((lambda n: RNG.uniform(-10, 10, n),), np.fabs),
    "copysign": ((lambda n: RNG.uniform(-1, 1, n), lambda n: RNG.uniform(-1, 1, n)), np.copysign),
    "isnan": ((lambda n: RNG.uniform(-1, 1, n),), np.isnan),
    "isinf": ((lambda n: RNG.uniform(-1, 1, n),), np.isinf),
    "isfinite": ((lambda n: RNG.uniform(-1, 1, n),), np.isfinite),
}

# Extra rows: label -> (function, inputs).  A 440 Hz phase sweep at 48 kHz is
# the oscillator case `math.sin(2*math.pi*phase)`, where branches predict well.
SWEEP = 2 * np.pi * ((np.arange(1 << 20) * 440.0 / 48000.0) % 1.0)
EXTRA: dict[str, tuple[str, tuple[Gen, ...]]] = {
    "sin@440Hz": ("sin", (lambda n: SWEEP[:n],)),
    "cos@440Hz": ("cos", (lambda n: SWEEP[:n],)),
    "tanh@sine": ("tanh", (lambda n: 3 * np.sin(SWEEP[:n]),)),
}

COPY_LOOP = """(func (export "apply_copy") (param $p0 i32) (param $out i32) (param $n i32)
  (local $off i32) (local $end i32)
  (local.set $end (i32.shl (local.get $n) (i32.const 3)))
  (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $off) (local.get $end)))
    (f64.store (i32.add (local.get $out) (local.get $off))
      (f64.load (i32.add (local.get $p0) (local.get $off))))
    (local.set $off (i32.add (local.get $off) (i32.const 8)))
    (br $next))))"""


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 14, help="points per timed call")
    ap.add_argument("--rounds", type=int, default=40, help="timing rounds (min is kept)")
    args = ap.parse_args()
    n = args.n

    # Every function gets its own input/output region so that rounds can
    # interleave all functions: on a shared machine the best-of-rounds then
    # sees the same (quiet) slices for every row.
    names = ["copy", *CASES, *EXTRA]
    layout: dict[str, tuple[list[int], int]] = {}
    inputs: dict[str, list[np.ndarray]] = {"copy": [RNG.uniform(-1, 1, n)]}
    for name, (gens, _) in CASES.items():
        inputs[name] = [g(n) for g in gens]
    for label, (_, gens) in EXTRA.items():
        inputs[label] = [g(n) for g in gens]
    cursor = 0
    for name in names:
        ptrs = []
        for _ in inputs[name]:
            ptrs.append(cursor)
            cursor += n * 8
        layout[name] = (ptrs, cursor)
        cursor += n * 8
    pages = cursor // 65536 + 1

    wat = "\n".join(
        [
            f'(module (memory (export "mem") {pages})',
            f"(global ${wm.ERROR_GLOBAL} (mut i32) (i32.const 0))",
            wm.wat_for(CASES),
            *(wm.loop_wat(name) for name in CASES),
            *(wm.loop_wat(fn, export=f"apply_{label}") for label, (fn, _) in EXTRA.items()),
            COPY_LOOP,
            wasm_backend.module_text(_vector_module()).removeprefix("(module").removesuffix(")"),
            ")",
        ]
    )
    store = wasmtime.Store(wasmtime.Engine())
    exports = wasmtime.Instance(store, wasmtime.Module(store.engine, wat), []).exports(store)
    mem = exports["mem"]
    assert isinstance(mem, wasmtime.Memory)
    raw = (ctypes.c_ubyte * mem.data_len(store)).from_address(ctypes.addressof(mem.data_ptr(store).contents))
    heap = np.frombuffer(raw, dtype=np.float64)
    for name in names:
        for ptr, a in zip(layout[name][0], inputs[name], strict=True):
            heap[ptr // 8 : ptr // 8 + n] = a

    vector_names = [name for name in [*CASES, *EXTRA] if _vector_of(name) in mathlib.VECTOR]
    vector_best = dict.fromkeys(vector_names, float("inf"))
    wasm_best = dict.fromkeys(names, float("inf"))
    numpy_best = dict.fromkeys(names, float("inf"))
    for _ in range(args.rounds):
        for name in names:
            loop = exports[f"apply_{name}"]
            ptrs, out = layout[name]
            t0 = time.perf_counter()
            loop(store, *ptrs, out, n)  # type: ignore[operator]
            wasm_best[name] = min(wasm_best[name], time.perf_counter() - t0)
            if name in vector_best:
                t0 = time.perf_counter()
                exports[f"apply_{name}_f64x2"](store, *ptrs, out, n)  # type: ignore[operator]
                vector_best[name] = min(vector_best[name], time.perf_counter() - t0)
            np_fn = CASES[name][1] if name in CASES else CASES[EXTRA[name][0]][1] if name in EXTRA else None
            if np_fn is not None:
                res = np.empty(n, dtype=bool if name.startswith("is") else np.float64)
                t0 = time.perf_counter()
                np_fn(*inputs[name], out=res)
                numpy_best[name] = min(numpy_best[name], time.perf_counter() - t0)

    def ns(t: float) -> float:
        return t / n * 1e9

    copy_ns = ns(wasm_best["copy"])
    print(f"{n} points per call, best of {args.rounds} interleaved rounds")
    print(f"'copy' loop (load + store + loop, no math) = {copy_ns:.2f} ns/point\n")
    print(
        f"| {'function':<10} | {'wasm ns':>7} | {'minus copy':>10} | {'numpy ns':>8} | {'wasm/numpy':>10} |"
    )
    print(f"|{'-' * 12}|{'-' * 9}|{'-' * 12}|{'-' * 10}|{'-' * 12}|")
    for name in [*CASES, *EXTRA]:
        w = ns(wasm_best[name])
        npn = ns(numpy_best[name])
        print(f"| {name:<10} | {w:7.2f} | {w - copy_ns:10.2f} | {npn:8.2f} | {w / npn:10.2f} |")
    print("\nscalar vs f64x2 form (ns per value; the same bits)\n")
    print(f"| {'function':<10} | {'scalar ns':>9} | {'f64x2 ns':>8} | {'speed-up':>8} |")
    print(f"|{'-' * 12}|{'-' * 11}|{'-' * 10}|{'-' * 10}|")
    for name in vector_names:
        s, v = ns(wasm_best[name]), ns(vector_best[name])
        print(f"| {name:<10} | {s:9.2f} | {v:8.2f} | {s / v:8.2f} |")


def _vector_of(name: str) -> str:
    return EXTRA[name][0] if name in EXTRA else name


def _vector_module() -> object:
    """The f64x2 forms (and their loops) as a module fragment: functions only (the scalar
    functions they call are in the text above)."""
    from oscen.jit import kernel as k

    names = [name for name in [*CASES, *EXTRA] if _vector_of(name) in mathlib.VECTOR]
    wasm_names = {mathlib.VECTOR[_vector_of(name)].wasm_name for name in names}
    functions = [mf.function for mf in mathlib.VECTOR_BY_WASM.values() if mf.wasm_name in wasm_names]
    loops = [mathlib.vector_loop_function(_vector_of(name), export=f"apply_{name}_f64x2") for name in names]
    return k.Module([*functions, *loops])


if __name__ == "__main__":
    main()
