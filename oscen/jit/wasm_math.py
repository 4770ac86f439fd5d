"""Python ``math`` functions as WebAssembly text (WAT): the math library of :mod:`.mathlib`
(written in kernel IR) printed by the WebAssembly backend (:mod:`.backends.wasm`).

The interface the JIT and the tests use: :data:`FUNCTIONS` / :data:`HELPERS` (each a
:class:`MathFunction`, whose ``wat`` is its printed IR and ``function`` the IR itself),
:func:`wat_for` (a set of functions and their dependencies, in a fixed order), :func:`loop_wat`
(an exported loop applying one function over arrays in linear memory) and the error codes the
library leaves in :data:`ERROR_GLOBAL` when it traps (:data:`ERROR_MESSAGES`).
"""

from __future__ import annotations

from .mathlib import (
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
    TWO_OVER_PI_WORDS,
    MathFunction,
    loop_wat,
    resolve,
    wat_for,
)

__all__ = [
    "ERROR_GLOBAL",
    "ERROR_MESSAGES",
    "ERR_DOMAIN",
    "ERR_RANGE",
    "ERR_MODULO",
    "ERR_FLOORDIV",
    "ERR_ZERO_POW",
    "ERR_COMPLEX_POW",
    "ERR_POW_OVERFLOW",
    "FUNCTIONS",
    "HELPERS",
    "TWO_OVER_PI_WORDS",
    "MathFunction",
    "loop_wat",
    "resolve",
    "wat_for",
]
