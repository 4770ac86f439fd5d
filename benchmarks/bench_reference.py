"""How the reference backend should evaluate kernel IR: generated Python source or closures?

Both run the same primitive Function, a sample loop as the skeleton makes it (a phase
accumulator with a wrap, a sawtooth stored to an output buffer in linear memory, the frame
advanced), with the same op semantics (the closures are built from the reference backend's op
table). Prints ns per sample for each and checks that both wrote the same memory.

    .venv/bin/python benchmarks/bench_reference.py
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from oscen.jit import kernel as k
from oscen.jit.backends import reference as ref
from oscen.jit.kernel import T
from oscen.jit.ops import Op

W, F, L, B = T.I32, T.F64, T.I64, T.BOOL
BUF = 1024
N = 1024


def sample_loop() -> k.Module:
    i, n, ph = k.Local(W, "i"), k.Local(W, "n"), k.Local(F, "ph")
    one = k.Const(F, 1.0)
    body = [
        k.SetLocal(name="ph", value=k.Load(F, k.Const(W, 64))),
        k.SetLocal(name="i", value=k.Const(W, 0)),
        k.Loop(
            label="samples",
            cond=k.Prim(B, Op.I32_LT_U, [i, n]),
            body=[
                k.SetLocal(name="ph", value=k.Prim(F, Op.F64_ADD, [ph, k.Const(F, 440.0 / 48000.0)])),
                k.If(
                    k.NOSITE,
                    k.Prim(B, Op.F64_GE, [ph, one]),
                    [k.SetLocal(name="ph", value=k.Prim(F, Op.F64_SUB, [ph, one]))],
                    [],
                ),
                k.Store(
                    type=F,
                    addr=k.Prim(W, Op.I32_MUL, [i, k.Const(W, 8)]),
                    offset=BUF,
                    value=k.Prim(F, Op.F64_SUB, [k.Prim(F, Op.F64_MUL, [ph, k.Const(F, 2.0)]), one]),
                ),
                k.SetLocal(name="i", value=k.Prim(W, Op.I32_ADD, [i, k.Const(W, 1)])),
            ],
        ),
        k.Store(type=F, addr=k.Const(W, 64), offset=0, value=ph),
        k.Store(
            type=L,
            addr=k.Const(W, 0),
            offset=0,
            value=k.Prim(L, Op.I64_ADD, [k.Load(L, k.Const(W, 0)), k.Prim(L, Op.I64_EXTEND_I32_U, [n])]),
        ),
    ]
    fn = k.Function("process", [("n", W)], (), {"i": W, "ph": F}, body, export="process")
    return k.Module([fn], memory_pages=1)


# ---------------------------------------------------------------------------------------- closures
def closure_function(fn: k.Function, memory: np.ndarray) -> Callable[..., None]:
    """The same Function as a tree of closures over a frame (a list of local values)."""
    slots = {name: j for j, (name, _) in enumerate([*fn.params, *fn.locals.items()])}
    formats = {F: struct.Struct("<d"), L: struct.Struct("<q"), W: struct.Struct("<i"), B: struct.Struct("<i")}
    op_funcs: dict[Op, Callable[..., Any]] = {}
    for op, template in ref.OPS.items():
        names = [f"a{j}" for j in range(op.arity)]
        op_funcs[op] = eval(f"lambda {', '.join(names)}: {template(names)}", dict(ref.RUNTIME))  # noqa: S307

    def expr(e: k.Expr) -> Callable[[list[Any]], Any]:
        if isinstance(e, k.Const):
            v = e.value
            return lambda fr: v
        if isinstance(e, k.Local):
            j = slots[e.name]
            return lambda fr: fr[j]
        if isinstance(e, k.Prim):
            f = op_funcs[e.op]
            args = [expr(a) for a in e.args]
            if len(args) == 1:
                (a,) = args
                return lambda fr: f(a(fr))
            a, b = args
            return lambda fr: f(a(fr), b(fr))
        if isinstance(e, k.Load):
            unpack, addr, off = formats[e.type].unpack_from, expr(e.addr), e.offset
            return lambda fr: unpack(memory, (addr(fr) & 0xFFFFFFFF) + off)[0]
        raise NotImplementedError(type(e).__name__)

    def stmts(body: list[k.Stmt]) -> Callable[[list[Any]], None]:
        run = [stmt(s) for s in body]

        def seq(fr: list[Any]) -> None:
            for r in run:
                r(fr)

        return seq

    def stmt(s: k.Stmt) -> Callable[[list[Any]], None]:
        if isinstance(s, k.SetLocal):
            j, v = slots[s.name], expr(s.value)

            def set_local(fr: list[Any]) -> None:
                fr[j] = v(fr)

            return set_local
        if isinstance(s, k.Store):
            pack, addr, off, v = formats[s.type].pack_into, expr(s.addr), s.offset, expr(s.value)
            return lambda fr: pack(memory, (addr(fr) & 0xFFFFFFFF) + off, v(fr))
        if isinstance(s, k.If):
            c, then, orelse = expr(s.cond), stmts(s.body), stmts(s.orelse)
            return lambda fr: then(fr) if c(fr) else orelse(fr)
        if isinstance(s, k.Loop):
            c, body = expr(s.cond), stmts(s.body)

            def loop(fr: list[Any]) -> None:
                while c(fr):
                    body(fr)

            return loop
        raise NotImplementedError(type(s).__name__)

    run = stmts(fn.body)
    zeros = [0.0 if t == F else 0 for _, t in [*fn.params, *fn.locals.items()]]

    def call(*args: Any) -> None:
        fr = list(zeros)
        fr[: len(args)] = args
        run(fr)

    return call


def best_of(f: Callable[[], None], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    module = sample_loop()
    mem_a = np.zeros(65536, dtype=np.uint8)
    mem_b = np.zeros(65536, dtype=np.uint8)
    t0 = time.perf_counter()
    source = ref.CompiledModule(module).instantiate(mem_a).exports["process"]
    t_source = time.perf_counter() - t0
    t0 = time.perf_counter()
    closures = closure_function(module.functions[0], mem_b)
    t_closures = time.perf_counter() - t0
    rows = []
    for name, f, build in (("generated source", source, t_source), ("closures", closures, t_closures)):
        per = best_of(lambda f=f: f(N)) / N
        rows.append((name, per * 1e9, build * 1e3))
    assert np.array_equal(mem_a, mem_b), "the two evaluations wrote different memory"
    print(f"{'evaluation':<18} {'ns/sample':>10} {'build ms':>9}")
    for name, ns, ms in rows:
        print(f"{name:<18} {ns:>10.0f} {ms:>9.2f}")
    print(f"closures / source: {rows[1][1] / rows[0][1]:.1f}x")


if __name__ == "__main__":
    main()
