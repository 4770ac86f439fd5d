"""The frontend's error, and the recursion budget of its walk.

Every refusal is a :class:`JitError` naming the file:line, the node and the construct. Errors raised
without a site get one from the visitor (see :mod:`.visitor`): the innermost syntax node being
lowered when they were raised.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .. import kernel as k


class JitError(Exception):
    """Node code the JIT cannot compile. Names the node, the file:line and the construct."""

    def __init__(self, message: str, site: k.Site | None = None, node: str = "") -> None:
        self.reason = message
        self.site: k.Site | None = None
        self.node = node
        self.locate(site)

    def locate(self, site: k.Site | None) -> JitError:
        """Attach ``site`` (where the error was raised, if it had none yet); returns self."""
        self.site = site
        self.node = self.node or (site.node if site else "")
        where = f"{site.file}:{site.line}: " if site else ""
        who = f"{self.node}: " if self.node else ""
        self.args = (f"{where}{who}{self.reason}",)
        return self


COMPILE_RECURSION_LIMIT = 20000
"""Python frames the frontend and the renderer may use while they lower one graph. Lowering is a
recursive walk (a 1000-term sum nests 1000 deep, a chain of 200 helpers some 3000 frames); beyond
this, the compiler refuses with a JitError naming the line instead of a RecursionError."""

_DEPTH_LOCK = threading.Lock()
_DEPTH_USERS = 0
_DEPTH_SAVED = 0


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Raise the interpreter's recursion limit to COMPILE_RECURSION_LIMIT while compiling.

    The limit is process-wide, so nested and concurrent compiles are counted: the first raises
    it, the last puts the previous value back (never lowering a limit someone else raised)."""
    global _DEPTH_USERS, _DEPTH_SAVED
    with _DEPTH_LOCK:
        if _DEPTH_USERS == 0:
            _DEPTH_SAVED = sys.getrecursionlimit()
            if _DEPTH_SAVED < COMPILE_RECURSION_LIMIT:
                sys.setrecursionlimit(COMPILE_RECURSION_LIMIT)
        _DEPTH_USERS += 1
    try:
        yield
    finally:
        with _DEPTH_LOCK:
            _DEPTH_USERS -= 1
            if _DEPTH_USERS == 0 and sys.getrecursionlimit() == max(_DEPTH_SAVED, COMPILE_RECURSION_LIMIT):
                sys.setrecursionlimit(_DEPTH_SAVED)


def too_deep(site: k.Site | None, node: str = "") -> JitError:
    """The refusal for code whose nesting exceeds what the compiler's recursive walk can take."""
    return JitError(
        "code nested too deeply for the compiler (more than about "
        f"{COMPILE_RECURSION_LIMIT // 10} levels of expressions or helper calls); split the "
        "expression or the helper chain",
        site,
        node=node,
    )
