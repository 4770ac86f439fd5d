"""Trap codes: what went wrong when compiled code stops, as the Python exception to raise.

A kernel that traps leaves the code in the TRAP_CODE slot of its memory header and the site (an
index into the program's site table) in TRAP_SITE; the node whose code ran is in NODE. Every
backend raises the same exception from them (:mod:`.compiler`, :mod:`.backends.reference`, the
browser worklet through the manifest).
"""

from __future__ import annotations

OVERFLOW, INT_ZERO_DIV, FLOAT_ZERO_DIV, NAN_TO_INT, INF_TO_INT, FLOAT_TOO_BIG = 1, 2, 3, 4, 5, 6
INDEX, NEG_SHIFT, RANGE_STEP, QUEUE_FULL, ASSERTION, MATH, TIMEOUT = 7, 8, 9, 10, 11, 12, 13
POW_OVERFLOW, INEXACT_INT = 14, 15
TRAP_MESSAGES: dict[int, tuple[type[Exception], str]] = {
    OVERFLOW: (OverflowError, "integer overflow: compiled ints are 64-bit"),
    INT_ZERO_DIV: (ZeroDivisionError, "integer division or modulo by zero"),
    FLOAT_ZERO_DIV: (ZeroDivisionError, "float division by zero"),
    NAN_TO_INT: (ValueError, "cannot convert float NaN to integer"),
    INF_TO_INT: (OverflowError, "cannot convert float infinity to integer"),
    FLOAT_TOO_BIG: (OverflowError, "float too large for a 64-bit int in compiled code"),
    INDEX: (IndexError, "index out of range"),
    NEG_SHIFT: (ValueError, "negative shift count"),
    RANGE_STEP: (ValueError, "range() arg 3 must not be zero"),
    QUEUE_FULL: (RuntimeError, "event queue overflow: too many events in one block"),
    TIMEOUT: (TimeoutError, "ran too long (an endless loop?)"),
    POW_OVERFLOW: (OverflowError, "(34, 'Numerical result out of range')"),
    INEXACT_INT: (
        OverflowError,
        "an int beyond 2**53 compared with or divided as a float (compiled code refuses it)",
    ),
    ASSERTION: (AssertionError, ""),
}
