"""The math library's registry: error codes, the functions by name, and their WebAssembly text.

Every function is a kernel IR :class:`~oscen.jit.kernel.Function` (built by :mod:`.dsl`); its
WebAssembly text is that IR printed by the WebAssembly backend, once, when first asked for.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from .. import kernel as k
from ..kernel import T
from ..ops import Op
from .dsl import Fn, callees, can_trap

ERROR_GLOBAL = "math_error"
"""Name (without ``$``) of the ``(mut i32)`` global a module holding the library declares."""

ERR_DOMAIN = 1
ERR_RANGE = 2
ERR_MODULO = 3
ERR_FLOORDIV = 4
ERR_ZERO_POW = 5
ERR_COMPLEX_POW = 6
ERR_POW_OVERFLOW = 7

ERROR_MESSAGES: dict[int, tuple[type[Exception], str]] = {
    ERR_DOMAIN: (ValueError, "math domain error"),
    ERR_RANGE: (OverflowError, "math range error"),
    # CPython 3.13 renamed "float modulo" to "float modulo by zero"
    ERR_MODULO: (
        ZeroDivisionError,
        "float modulo" if sys.version_info < (3, 13) else "float modulo by zero",
    ),
    ERR_FLOORDIV: (ZeroDivisionError, "float floor division by zero"),
    ERR_ZERO_POW: (ZeroDivisionError, "0.0 cannot be raised to a negative power"),
    ERR_COMPLEX_POW: (
        ValueError,
        "negative number cannot be raised to a fractional power (the result would be complex)",
    ),
    # What CPython's float ``**`` raises on overflow (PyErr_SetFromErrno(ERANGE)).
    ERR_POW_OVERFLOW: (OverflowError, "(34, 'Numerical result out of range')"),
}
"""Math error code (a ``Trap``'s ``math_error``, stored in ``$math_error``) -> (exception class,
message)."""


def _wasm_type(t: T) -> str:
    return "i32" if t in (T.I32, T.BOOL) else t.value


@dataclass(frozen=True)
class MathFunction:
    """One library function: its IR, and what a code generator needs to emit and call it.

    ``params`` and ``result`` are WebAssembly type names (``"f64"``, ``"i32"``; a multi-value
    ``result`` lists them separated by spaces); ``function.params`` / ``function.results`` have
    the kernel types (the predicates return ``BOOL``)."""

    name: str
    wasm_name: str
    params: tuple[str, ...]
    result: str
    deps: tuple[str, ...]
    can_trap: bool
    function: k.Function = field(compare=False, hash=False, repr=False)

    @cached_property
    def wat(self) -> str:
        """The function's WebAssembly text (the IR, printed)."""
        return _print_function(self.function)


def _print_function(fn: k.Function) -> str:
    from ..backends import wasm

    return wasm.function_text(fn)


FUNCTIONS: dict[str, MathFunction] = {}
"""Public functions by Python name (``"sin"``, ``"pymod"``, ...)."""

HELPERS: dict[str, MathFunction] = {}
"""Internal helpers (argument reduction, pow core, ...) by wasm_name."""

BY_WASM: dict[str, MathFunction] = {}
"""Everything by wasm_name, in definition order (callees before callers)."""

VECTOR: dict[str, MathFunction] = {}
"""f64x2 forms of public functions, by the scalar function's Python name (``"sin"``): see
:func:`vector_form` and :mod:`.vector`. Not part of :func:`library_module` (the shared math module
and a web export's ``math.wasm`` stay free of SIMD): a kernel that uses one pastes it, with
:func:`functions_for`."""

VECTOR_MAIN: dict[str, MathFunction] = {}
"""The main-path halves of the f64x2 forms, by Python name (see :func:`vector_main`)."""

VECTOR_BY_WASM: dict[str, MathFunction] = {}
"""Every vector function (full forms, main halves) by wasm_name, in definition order."""


_VECTOR_LOCK = threading.Lock()
_vector_builders: list[Callable[[], None]] = []
"""What builds the f64x2 forms (the package sets it: :mod:`.vector` imports this module)."""


def defer_vector_forms(build: Callable[[], None]) -> None:
    """Let ``build`` make the f64x2 forms when :func:`vector_forms` is first called."""
    with _VECTOR_LOCK:
        _vector_builders.append(build)


def vector_forms() -> None:
    """Build the f64x2 forms (:mod:`.vector`, after every scalar function: they call them) on
    first use rather than at import: only voice groups run as lanes need them, and building them
    took about 50 ms of ``import oscen.jit``. Once; a thread asking meanwhile waits for it."""
    if not _vector_builders:
        return
    with _VECTOR_LOCK:
        while _vector_builders:
            _vector_builders[0]()  # registers into VECTOR, VECTOR_MAIN, VECTOR_BY_WASM
            _vector_builders.pop()


def vector_form(name: str) -> MathFunction | None:
    """The f64x2 form of the public function ``name`` (``"sin"``), or None when there is none.

    ``m_<name>_f64x2(x: v128) -> v128`` (``pow``: two operands): each lane's result has the bits
    the scalar function gives for that lane, and raises what it raises (the scalar function is
    called for the lanes off the vector main path: lane 0 first, so when both lanes would raise,
    lane 0's error is the one raised)."""
    vector_forms()
    return VECTOR.get(name)


def vector_main(name: str) -> MathFunction | None:
    """The main path of ``name``'s f64x2 form alone: ``m_<name>_f64x2_main(x) -> (v128, i32)``,
    the lanes' results and a bitmask of the lanes it computed (bit L: lane L). A lane whose bit is
    clear holds garbage and must be computed by the scalar function: a caller that has to know
    which lane raises (the lanes pass stores ``LANE`` first) makes those calls itself. Never
    traps."""
    vector_forms()
    return VECTOR_MAIN.get(name)


def register_vector(name: str, f: Fn, body: Sequence[k.Stmt], *, main: bool) -> MathFunction:
    """Record the f64x2 form (``main``: its main-path half) of public function ``name``. Its deps
    are the functions it calls; it can trap exactly when a scalar function it calls can."""
    fn = f.build(body)
    deps = tuple(sorted(callees(fn) - {fn.name}))
    for d in deps:
        if d not in BY_WASM and d not in VECTOR_BY_WASM:
            raise AssertionError(f"{fn.name} calls undefined {d}")
    if can_trap(fn):
        raise AssertionError(f"{fn.name}: a vector form traps only in the scalar functions it calls")
    trapping = any((BY_WASM.get(d) or VECTOR_BY_WASM[d]).can_trap for d in deps)
    mf = _described(name, fn, deps, trapping)
    VECTOR_BY_WASM[mf.wasm_name] = mf
    (VECTOR_MAIN if main else VECTOR)[name] = mf
    return mf


def _described(name: str, fn: k.Function, deps: tuple[str, ...], trapping: bool) -> MathFunction:
    """The registry's record of built function ``fn`` (public name ``name``)."""
    return MathFunction(
        name=name,
        wasm_name=fn.name,
        params=tuple(_wasm_type(t) for _, t in fn.params),
        result=" ".join(_wasm_type(t) for t in fn.results),
        deps=deps,
        can_trap=trapping,
        function=fn,
    )


def register(
    name: str, f: Fn, body: Sequence[k.Stmt], trapping: bool, *, helper: bool = False
) -> MathFunction:
    """Build ``f`` and record it; deps are read off its calls. ``trapping`` says whether the
    function can raise (checked against the IR)."""
    fn = f.build(body)
    deps = tuple(sorted(callees(fn) - {fn.name}))
    for d in deps:
        if d not in BY_WASM:
            raise AssertionError(f"{fn.name} calls undefined {d}")
    if can_trap(fn) != trapping:
        raise AssertionError(f"{fn.name}: can_trap={trapping} but its IR says {not trapping}")
    mf = _described(name, fn, deps, trapping)
    BY_WASM[mf.wasm_name] = mf
    (HELPERS if helper else FUNCTIONS)[mf.wasm_name if helper else name] = mf
    return mf


def resolve(name: str) -> MathFunction:
    """Look a function up by Python name or wasm_name (with or without ``$``); a vector form by
    its wasm_name (``m_sin_f64x2``: the Python name ``sin`` is the scalar function)."""
    key = name.lstrip("$")
    if key in FUNCTIONS:
        return FUNCTIONS[key]
    if key in BY_WASM:
        return BY_WASM[key]
    vector_forms()
    if key in VECTOR_BY_WASM:
        return VECTOR_BY_WASM[key]
    raise KeyError(f"no WASM math function named {name!r}")


def closure(names: Iterable[str]) -> list[MathFunction]:
    """The named functions and all their dependencies, each once, in definition order (so the
    same set of names always gives the same list; vector forms after every scalar function)."""
    stack = [resolve(n).wasm_name for n in names]  # first: a vector name builds the vector forms
    everything = {**BY_WASM, **VECTOR_BY_WASM}
    needed: set[str] = set()
    while stack:
        wn = stack.pop()
        if wn in needed:
            continue
        needed.add(wn)
        stack.extend(everything[wn].deps)
    return [fn for wn, fn in everything.items() if wn in needed]


def functions_for(names: Iterable[str]) -> list[k.Function]:
    """The IR of the named functions and all their dependencies (see :func:`closure`)."""
    return [fn.function for fn in closure(names)]


def wat_for(names: Iterable[str]) -> str:
    """WAT for the named functions and all their dependencies, each once, in the (fixed)
    definition order: the same set of names always gives byte-identical text (good for caching)."""
    return "\n".join(fn.wat for fn in closure(names))


def library_module() -> k.Module:
    """The whole library as one module: every function exported under its wasm_name, with the
    exported error global. What the JIT compiles once per process and kernels import from, and
    what a web export ships as ``math.wasm``."""
    return k.Module(
        functions=[replace(fn.function, export=fn.wasm_name) for fn in BY_WASM.values()],
        globals=[k.Global(ERROR_GLOBAL, T.I32, 0, mutable=True, export=ERROR_GLOBAL)],
    )


def loop_function(name: str, export: str | None = None) -> k.Function:
    """An exported loop applying one function over f64 arrays in linear memory.

    ``apply_<name>(in_ptr, out_ptr, n)`` for unary functions and
    ``apply_<name>(a_ptr, b_ptr, out_ptr, n)`` for binary ones (predicate results are converted
    to 0.0/1.0). Used by the tests and benchmarks to run 10^5 points per host call; the module
    must declare a memory.
    """
    fn = resolve(name)
    ptrs = [f"p{i}" for i in range(len(fn.params))]

    def value(off: k.Expr) -> k.Expr:
        args: list[k.Expr] = [k.Load(T.F64, _add(k.Local(T.I32, p), off)) for p in ptrs]
        got: k.Expr = k.CallFn(fn.function.results[0], fn.wasm_name, args)
        if fn.result == "i32":
            got = k.Prim(T.F64, Op.F64_CONVERT_I32_S, [got])
        return got

    return _apply_loop(export or f"apply_{fn.name}", ptrs, T.F64, value)


def _add(a: k.Expr, b: k.Expr) -> k.Expr:
    return k.Prim(T.I32, Op.I32_ADD, [a, b])


def _apply_loop(export: str, ptrs: list[str], t: T, value: Callable[[k.Expr], k.Expr]) -> k.Function:
    """``export(p0, [p1,] out, n)``: ``out[i] = value(i)`` over ``n`` f64s, a value of type ``t``
    (F64, or V128: two at a time) per step."""
    I32 = T.I32
    off = k.Local(I32, "off")
    step = 16 if t == T.V128 else 8
    body: list[k.Stmt] = [
        k.SetLocal(name="end", value=k.Prim(I32, Op.I32_SHL, [k.Local(I32, "n"), k.Const(I32, 3)])),
        k.Loop(
            label="done",
            cond=None,
            body=[
                k.Exit(label="done", cond=k.Prim(T.BOOL, Op.I32_GE_U, [off, k.Local(I32, "end")])),
                k.Store(type=t, addr=_add(k.Local(I32, "out"), off), offset=0, value=value(off)),
                k.SetLocal(name="off", value=_add(off, k.Const(I32, step))),
            ],
        ),
        k.ReturnValues(values=[]),
    ]
    return k.Function(
        name=export,
        params=[*((p, I32) for p in ptrs), ("out", I32), ("n", I32)],
        results=(),
        locals={"off": I32, "end": I32},
        body=body,
        export=export,
    )


def vector_loop_function(name: str, export: str | None = None) -> k.Function:
    """:func:`loop_function` for the f64x2 form of ``name``: ``apply_<name>_f64x2(p0, [p1,] out,
    n)``, two values per call (``n`` even), for benchmarks and tests."""
    vector_forms()
    fn = VECTOR[name]
    ptrs = [f"p{i}" for i in range(len(fn.params))]

    def value(off: k.Expr) -> k.Expr:
        return k.CallFn(T.V128, fn.wasm_name, [k.Load(T.V128, _add(k.Local(T.I32, p), off)) for p in ptrs])

    return _apply_loop(export or f"apply_{name}_f64x2", ptrs, T.V128, value)


def loop_wat(name: str, export: str | None = None) -> str:
    """The text of :func:`loop_function` (the IR, printed)."""
    return _print_function(loop_function(name, export))
