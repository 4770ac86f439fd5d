"""Loading user patch files: a plain Python file that builds a graph.

The convention
--------------
A patch file is an ordinary Python module. It either defines a function (preferred)::

    def patch(sample_rate: float) -> Graph:
        graph = Graph(sample_rate)
        ...
        return graph

or builds a module-level ``graph``. The function is preferred because the caller chooses the
sample rate (``oscen render --sample-rate 48000``) and because each call builds a fresh graph;
a module-level ``graph`` is fixed at whatever rate the file chose. The patch may queue events
(``graph.queue_event``) and set values before returning: they play from the first sample.

Patch files can define their own Node classes. The file is imported as a real module (registered in
``sys.modules`` with its ``__file__``) so ``inspect.getsource`` finds those classes, which is what
the JIT compiles from. The patch's own folder is importable while it loads, so a patch can import a
helper module that sits beside it.

Every failure raises :class:`PatchError` with one readable paragraph that points at the line of the
user's file, never at oscen's internals.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import linecache
import sys
import traceback
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from .graph import Graph

DEFAULT_SAMPLE_RATE = 44100.0


class PatchError(Exception):
    """A patch file that cannot be turned into a graph; ``str()`` is the message to show the user."""


def load_patch(path: str | Path, sample_rate: float | None = None) -> Graph:
    """Load the patch file at ``path`` and return its graph.

    ``sample_rate`` is passed to ``patch(sample_rate)``; None means 44100 Hz for a ``patch``
    function and "whatever the file chose" for a module-level ``graph``. Asking a module-level
    graph for a rate it was not built at is an error rather than a silent mismatch.
    """
    path = Path(path)
    if not path.exists():
        raise PatchError(f"patch file not found: {path}")
    if not path.is_file():
        raise PatchError(f"patch path is not a file: {path}")
    path = path.resolve()
    module = _import(path)

    builder = getattr(module, "patch", None)
    if builder is not None:
        if not callable(builder):
            raise PatchError(
                f"{path}: `patch` must be a function patch(sample_rate) -> Graph, got {_describe(builder)}"
            )
        _check_signature(path, builder)
        rate = DEFAULT_SAMPLE_RATE if sample_rate is None else sample_rate
        try:
            result = builder(rate)
        except Exception as exc:
            raise PatchError(describe_failure(path, "patch(sample_rate) raised", exc)) from exc
        if not isinstance(result, Graph):
            raise PatchError(
                f"{path}: patch(sample_rate) returned {_describe(result)}; it must return the oscen Graph it built "
                "(did you forget `return graph`?)"
            )
        return result

    graph = getattr(module, "graph", None)
    if graph is not None:
        if not isinstance(graph, Graph):
            raise PatchError(f"{path}: module-level `graph` is {_describe(graph)}; it must be an oscen Graph")
        if sample_rate is not None and float(sample_rate) != graph.sample_rate:
            raise PatchError(
                f"{path}: the module-level graph runs at {graph.sample_rate:g} Hz but {float(sample_rate):g} Hz "
                "was asked for; define `def patch(sample_rate): ...` to let the caller choose the rate"
            )
        return graph

    raise PatchError(
        f"{path} defines neither `def patch(sample_rate) -> Graph` (preferred) nor a module-level `graph`; "
        "add one of them so oscen knows what to play"
    )


def _import(path: Path) -> ModuleType:
    # A stable, unique module name per file: re-loading the same file replaces its old module.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"oscen_patch_{_identifier(path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PatchError(f"cannot load {path} as a Python module (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    linecache.checkcache(str(path))
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise PatchError(_syntax(path, exc)) from exc
    except Exception as exc:
        sys.modules.pop(name, None)
        raise PatchError(describe_failure(path, "loading the patch raised", exc)) from exc
    finally:
        if added:
            try:
                sys.path.remove(folder)
            except ValueError:
                pass
    return module


def _check_signature(path: Path, builder: Any) -> None:
    """Call patch(sample_rate) only if it can take one positional argument: a clearer error than TypeError."""
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(DEFAULT_SAMPLE_RATE)
    except TypeError:
        raise PatchError(
            f"{path}: `patch{signature}` cannot be called as patch(sample_rate); "
            "define it as `def patch(sample_rate: float) -> Graph`"
        ) from None


def _syntax(path: Path, exc: SyntaxError) -> str:
    filename = exc.filename or str(path)
    where = f"{filename}:{exc.lineno}" if exc.lineno else filename
    if exc.offset:
        where += f":{exc.offset}"
    message = f"{where}: syntax error: {exc.msg}"
    text = (exc.text or "").rstrip("\n")
    if text.strip():
        message += f"\n    {text.strip()}"
    return message


def describe_failure(path: str | Path, what: str, exc: BaseException) -> str:
    """One paragraph naming the deepest line of the user's file ``path`` in the traceback, and the exception.

    Also used for errors raised while a loaded patch runs (a custom node's ``process``).
    """
    path = Path(path).resolve()
    frames = _user_frames(path, exc.__traceback__)
    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if not frames:
        return f"{path}: {what} {error}"
    frame = frames[-1]
    location = f"{frame.filename}:{frame.lineno}"
    if frame.name != "<module>":
        location += f" in {frame.name}()"
    message = f"{location}: {what} {error}"
    if frame.line:
        message += f"\n    {frame.line.strip()}"
    return message


def _user_frames(path: Path, tb: TracebackType | None) -> list[traceback.FrameSummary]:
    frames = traceback.extract_tb(tb)
    mine = [f for f in frames if _same_file(f.filename, path)]
    if mine:
        return mine
    # An exception in a helper module beside the patch: still better than pointing into oscen.
    return [f for f in frames if _same_file(str(Path(f.filename).parent), path.parent)]


def _same_file(filename: str, path: Path) -> bool:
    try:
        return Path(filename).resolve() == path
    except OSError:
        return False


def _identifier(stem: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in stem) or "patch"


def _describe(value: Any) -> str:
    if value is None:
        return "None"
    return (
        f"a {type(value).__module__}.{type(value).__qualname__}"
        if type(value).__module__ != "builtins"
        else (f"a {type(value).__name__}")
    )
