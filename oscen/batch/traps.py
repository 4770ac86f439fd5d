"""Keep wasmtime's trap handlers installed across ``ray.init`` and ``ray.shutdown``.

Compiled node code reports its faults (a division by zero, an index out of range) through
wasmtime traps, which are hardware faults (SIGILL, SIGSEGV, SIGFPE) caught by signal handlers
that wasmtime installs once per process, when the first engine is made. ``ray.init`` in a
process replaces those handlers with Ray's crash reporter, and ``ray.shutdown`` resets them to
the default action: from then on the first fault in compiled code kills the whole process
(SIGILL) instead of raising ``ZeroDivisionError``. Measured with ray 2.60 / wasmtime 50.

So oscen.batch records wasmtime's handlers when it is imported (making the engine first, which
installs them) and puts them back after Ray starts or stops (:func:`restore`). If you call
``ray.init`` or ``ray.shutdown`` yourself in a process that also runs compiled oscen code, call
``oscen.batch.restore_trap_handlers()`` after it. Ray's worker processes are not affected: Ray
installs its handlers there before oscen makes its engine, and wasmtime's then come first and
hand every fault that is not a trap to Ray's.
"""

from __future__ import annotations

import ctypes
import signal
import sys

_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE") if hasattr(signal, name)
)
_SIZE = 512  # bytes: more than any platform's struct sigaction
_saved: dict[int, bytes] = {}
_libc: ctypes.CDLL | None = None


def _sigaction() -> ctypes.CDLL | None:
    global _libc
    if sys.platform == "win32":
        return None
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _read(libc: ctypes.CDLL, sig: int) -> bytes | None:
    buffer = ctypes.create_string_buffer(_SIZE)
    if libc.sigaction(int(sig), None, buffer) != 0:
        return None
    return buffer.raw


def snapshot() -> None:
    """Record the current (wasmtime's) handlers, once; makes the engine first so they exist."""
    if _saved:
        return
    libc = _sigaction()
    if libc is None:
        return
    from ..jit.engine import engine

    engine()
    for sig in _SIGNALS:
        raw = _read(libc, sig)
        if raw is not None:
            _saved[int(sig)] = raw


def restore() -> bool:
    """Put the recorded handlers back where something replaced them; True if any was."""
    libc = _sigaction()
    if libc is None or not _saved:
        return False
    changed = False
    for sig, raw in _saved.items():
        if _read(libc, sig) != raw:
            libc.sigaction(sig, ctypes.create_string_buffer(raw, _SIZE), None)
            changed = True
    return changed
