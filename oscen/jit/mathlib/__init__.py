"""Python's ``math`` functions (and float ``%``, ``//``, ``**``) as kernel IR.

WebAssembly has no libm: beyond ``sqrt``, ``abs``, ``copysign``, ``floor``, ``ceil``, ``trunc``,
``nearest``, ``min`` and ``max`` every transcendental has to be shipped as code. This package
writes that code once, as kernel IR :class:`~oscen.jit.kernel.Function`\\ s that every backend
runs (the WebAssembly printer makes the text the JIT ships; the reference evaluator runs it in
Python).

Design choices, and why:

* **Algorithms are fdlibm's** (the FreeBSD msun / musl / glibc ports), plus CPython's own code for
  hypot, ``%``, ``//`` and the ``pow``/``**`` special cases. They are < 1 ulp (mostly), small and
  table-free: tables would need linear memory, and these functions must be pure (no memory, no
  imports, no globals except the error global) so the JIT can paste -- or inline -- them into any
  module.
* **Python semantics, not C semantics.** Where ``math`` raises, the function executes a
  ``Trap(code=MATH, math_error=ERR_...)``: the WebAssembly backend stores the code in
  ``$math_error`` and traps, and the host turns it back into the Python exception of
  :data:`ERROR_MESSAGES`. Where ``math`` returns inf/nan silently, so do we.
* **The IR is built by a small DSL** (:mod:`.dsl`: ``Expr``, ``Fn``, ``if_``, ``while_``, ...)
  with operator overloading, so each port reads like the C it comes from, one primitive per C
  operation, and constants are exact doubles.
* **sin/cos are branch-light**: Cody-Waite reduction with a 3-part pi/2 covers
  ``|x| < 2^20*pi/2`` (the extra parts only run when cancellation needs them), one polynomial
  kernel is picked by the quadrant's parity (a branch that is well predicted for a sweeping
  phase), and a 192-bit integer Payne-Hanek reduction (slow, but correct for every finite double)
  handles larger arguments.

The functions are defined family by family (:mod:`.misc`, :mod:`.trig`, :mod:`.exp_log`,
:mod:`.hyperbolic`, :mod:`.fmod`, :mod:`.pow`), callees before callers, in a fixed order: the
registry lists them in that order, so the same set of names always gives the same text.
:mod:`.vector` then adds f64x2 forms of sin, cos, exp, log and others (two lanes at once, each
bit-identical to the scalar function: :func:`vector_form`), kept out of :func:`library_module`.
"""

from __future__ import annotations

from . import exp_log, fmod, hyperbolic, misc, pow, registry, trig
from .registry import (
    BY_WASM,
    ERR_COMPLEX_POW,
    ERR_DOMAIN,
    ERR_FLOORDIV,
    ERR_MODULO,
    ERR_POW_OVERFLOW,
    ERR_RANGE,
    ERR_ZERO_POW,
    ERROR_GLOBAL,
    ERROR_MESSAGES,
    FUNCTIONS,
    HELPERS,
    VECTOR,
    VECTOR_BY_WASM,
    VECTOR_MAIN,
    MathFunction,
    closure,
    functions_for,
    library_module,
    loop_function,
    loop_wat,
    resolve,
    vector_form,
    vector_forms,
    vector_loop_function,
    vector_main,
    wat_for,
)
from .trig import TWO_OVER_PI_WORDS

__all__ = [
    "BY_WASM",
    "ERROR_GLOBAL",
    "ERROR_MESSAGES",
    "ERR_COMPLEX_POW",
    "ERR_DOMAIN",
    "ERR_FLOORDIV",
    "ERR_MODULO",
    "ERR_POW_OVERFLOW",
    "ERR_RANGE",
    "ERR_ZERO_POW",
    "FUNCTIONS",
    "HELPERS",
    "TWO_OVER_PI_WORDS",
    "VECTOR",
    "VECTOR_BY_WASM",
    "VECTOR_MAIN",
    "MathFunction",
    "closure",
    "functions_for",
    "library_module",
    "loop_function",
    "loop_wat",
    "resolve",
    "vector_form",
    "vector_forms",
    "vector_loop_function",
    "vector_main",
    "wat_for",
]

misc.define_trivial()
trig.define_reduction_helpers()
trig.define_trig()
trig.define_inverse_trig()
exp_log.define_exp()
exp_log.define_log()
hyperbolic.define_hyperbolic()
misc.define_cbrt_hypot()
fmod.define_fmod()
pow.define_pow()


def _define_vector() -> None:
    from . import vector  # its module-level work too waits for the first use

    vector.define_vector()


registry.defer_vector_forms(_define_vector)  # after every scalar function: the vector forms call them
