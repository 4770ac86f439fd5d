"""The frontend: node methods, read from their source, lowered to the typed kernel IR.

Modelled on Triton's code generator: a visitor over the syntax tree (:mod:`.visitor`) that
resolves only allowed globals (numeric constants, ``math``, a few builtins), attaches the file:line
to every error raised beneath it, and refuses everything outside the subset with a
:class:`JitError`. Nothing outside the subset is guessed at.

- :mod:`.typing`: the typing pass (locals, returns and attribute types, to a fixed point), and
  :func:`settled`, the GraphIR with the attribute types the JIT compiles.
- :mod:`.lowering`: :class:`NodeLowering`, which lowers each method once, with those types.
- :mod:`.semantics`: Python's semantics decided at lowering time (exact folding, int ranges,
  exact int/float comparisons, the refused constructs and their wording).
- :mod:`.builtins`: the math functions, predicates, constants and builtins, and how each lowers.
- :mod:`.sources`: the parsed-source cache; :mod:`.attributes`: what ``self`` holds;
  :mod:`.errors`: JitError and the recursion budget.
"""

from .attributes import ArrayAttr, AttrInfo, EndpointAttr, ScalarAttr, attribute_infos
from .builtins import BUILTINS, MATH_CONSTANTS, MATH_F64, MATH_PREDICATES, MATH_TO_INT
from .errors import COMPILE_RECURSION_LIMIT, JitError, deep_recursion, too_deep
from .lowering import FunctionLowering, NodeLowering
from .semantics import MAX_TABLE
from .sources import fingerprint, source_of
from .typing import FunctionTypes, NodeTyping, settle_attribute_types, settled, widened_state_types

__all__ = [
    "BUILTINS",
    "COMPILE_RECURSION_LIMIT",
    "MATH_CONSTANTS",
    "MATH_F64",
    "MATH_PREDICATES",
    "MATH_TO_INT",
    "MAX_TABLE",
    "ArrayAttr",
    "AttrInfo",
    "EndpointAttr",
    "FunctionLowering",
    "FunctionTypes",
    "JitError",
    "NodeLowering",
    "NodeTyping",
    "ScalarAttr",
    "attribute_infos",
    "deep_recursion",
    "fingerprint",
    "settle_attribute_types",
    "settled",
    "source_of",
    "too_deep",
    "widened_state_types",
]
