"""A compile worker process: JitGraph's background compiles of built-in nodes, away from the GIL.

Why: a live graph's recompile ran its Python stages (frontend, lanes pass, WAT printer) on a thread
of the playing process. They hold the GIL, and a background thread the OS preempts while holding
it keeps the audio thread from running (measured: stalls of 5-7 ms, with the audio thread at a
real-time priority that never waited for a CPU). Cranelift, running without the GIL, took both
cores for 15-20 ms. Here both run in a child process at a lower CPU priority (``NICE``); the
playing process only takes the IR (``to_ir``), pickles it, and gets the machine code back as
``wasmtime.Module.serialize()`` bytes, which ``Module.deserialize`` loads in ~0.1 ms.

One worker per process, shared by every JitGraph, started on first use and kept warm (its
compilers keep their variant caches). The compile thread that asks waits for the answer with the
GIL released. It never hangs: every wait is bounded, and anything that goes wrong (the worker is
still starting, busy with another graph, died, timed out, replied with an error) makes
:func:`compile` raise :class:`WorkerUnavailable`; JitGraph then compiles in its own process as
before, and says why in ``JitGraph.worker_error``. A worker that died is started again on a later
compile (at most ``MAX_STARTS`` times per process).

Only graphs whose node classes all come from the ``oscen`` package go to the worker, compiled with
a plain :class:`CraneliftJit`: the worker imports the classes by name, so a class defined in a
script, a test or a function, or changed since it was imported (a fingerprint of its methods'
code is compared), compiles in-process. The worker compiles what the frontend reads from the
node classes; module-level globals changed at run time are not seen by it.

Protocol: length-prefixed pickles over the child's stdin and stdout (the child runs
:func:`main`); the child exits when its stdin closes (its parent is gone) or on "stop".
"""

from __future__ import annotations

import atexit
import hashlib
import io
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..graph.ir import GraphIR, resolve_node_class

Quiet = Callable[[Callable[[], Any]], Any]
"""How a caller runs a step that holds the GIL: ``quiet(step)`` returns ``step()`` (JitGraph's
compiler thread starts it just after a live block ends, see ``jitgraph._Beat.quiet``)."""

NICE = 5
"""How much lower the worker's CPU priority is (``os.nice``, once it has imported oscen): the
processing thread, when it wakes, preempts the worker's compile (its Python and Cranelift's
threads) rather than wait for a CPU. Mild: on a loaded machine a worker at nice 10 was starved
for seconds."""

START_TIMEOUT = 60.0
"""Seconds a starting worker may take to import oscen before it counts as failed."""

COMPILE_TIMEOUT = 20.0
"""Seconds one compile may take in the worker; then it is stopped (it is stuck) and the compile
runs in-process. A cold 256-voice compile takes well under a second on a quiet machine; the
bound is for a worker that stopped, not for a slow one (redoing its work here is no faster)."""

MAX_FAILURES = 3
"""Worker processes that may fail (die, hang, garble) per process before the worker is given up on."""

_HEADER = struct.Struct("<Q")
_NOT_FAILURES = ("jit-error", "mismatch")
"""Replies that are not the worker's fault: node code it cannot compile (JitError, as in-process),
node classes that differ from the parent's."""


class _Mismatch(Exception):
    """A node class in the worker differs from the parent's (edited, or patched at run time)."""


class WorkerUnavailable(Exception):
    """The worker did not compile this graph (why: the message); compile it in-process.
    ``failed``: something went wrong (the worker died, timed out, erred), rather than the worker
    being busy, still starting, or not for this graph."""

    def __init__(self, message: str, failed: bool = True) -> None:
        super().__init__(message)
        self.failed = failed


@dataclass
class WorkerResult:
    """What the worker sends back: the machine code and the parts of the Program the running
    side needs (trap sites, segments, labels, imports, voices), the layout size to check."""

    module: bytes
    binary: bytes
    """The module's WebAssembly binary (not its text: printing that took the worker 1-5 ms per
    compile for 64 voices, and nothing on the running side needs it; ``Program.wat`` prints it
    there on demand)."""
    sites: dict[int, list[Any]]
    segments: list[list[int]]
    node_labels: dict[int, str]
    math_imports: list[str]
    voices: dict[int, list[int]]
    layout_size: int
    frontend_seconds: float
    wasm_seconds: float
    pid: int
    tier: str = "optimized"
    tier_independent: bool = False


# ------------------------------------------------------------------------------ framing
def _send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _recv(stream: BinaryIO) -> Any:
    """One message from a blocking stream (the worker's side), None at end of file."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def _read_exactly(fd: int, size: int, deadline: float) -> bytes:
    """``size`` bytes from a pipe by ``deadline`` (perf_counter), the GIL released while waiting."""
    chunks: list[bytes] = []
    left = size
    while left:
        wait = deadline - time.perf_counter()
        if wait <= 0:
            raise WorkerUnavailable("the compile worker did not answer in time")
        ready, _, _ = select.select([fd], [], [], min(wait, 0.25))
        if not ready:
            continue
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise WorkerUnavailable("the compile worker exited")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


CHUNK = 64
"""Connections pickled per call (nodes go one per call)."""


def encode_ir(ir: GraphIR) -> bytes:
    """The IR's fields pickled in many short calls sharing one memo, not one: a pickler call holds
    the GIL throughout (0.3 ms for 64 voices, ~1 ms with the IR's layout cache, which stays here),
    and the playing thread gets the GIL between calls, not inside one."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dump(
        (ir.sample_rate, len(ir.nodes), len(ir.connections), ir.order, ir.outputs, ir.cycles, ir.settled)
    )
    for node in ir.nodes:
        pickler.dump(node)
    for start in range(0, len(ir.connections), CHUNK):
        pickler.dump(ir.connections[start : start + CHUNK])
    return buf.getvalue()


def decode_ir(data: bytes) -> GraphIR:
    """The GraphIR :func:`encode_ir` wrote."""
    unpickler = pickle.Unpickler(io.BytesIO(data))
    sample_rate, nodes, connections, order, outputs, cycles, is_settled = unpickler.load()
    node_list = [unpickler.load() for _ in range(nodes)]
    connection_list: list[Any] = []
    while len(connection_list) < connections:
        connection_list.extend(unpickler.load())
    return GraphIR(sample_rate, node_list, connection_list, order, outputs, cycles, is_settled)


def _write_all(fd: int, data: bytes, deadline: float) -> None:
    """Write ``data`` to a non-blocking pipe by ``deadline``: a worker that stopped reading (stuck,
    stopped) fills the pipe, and a blocking write would then wait forever."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view[: 1 << 20])
        except BlockingIOError:
            written = 0
        view = view[written:]
        if view and not written:
            wait = deadline - time.perf_counter()
            if wait <= 0:
                raise WorkerUnavailable("the compile worker did not take the request in time")
            select.select([], [fd], [], min(wait, 0.25))


# ------------------------------------------------------------------------------ eligibility
_prints: dict[type, tuple[tuple[int, ...], str]] = {}
"""Per class: (ids of its attributes, their fingerprint); made again when an attribute changes."""


def class_fingerprint(cls: type) -> str:
    """A digest of the code of every function of ``cls`` and its bases (what the frontend
    compiles), stable across processes: equal in the worker only if it imported the same code."""
    ids = tuple(id(v) for k in cls.__mro__ for v in vars(k).values())
    cached = _prints.get(cls)
    if cached is not None and cached[0] == ids:
        return cached[1]
    digest = hashlib.blake2b(digest_size=16)
    for klass in cls.__mro__:
        if klass is object:
            continue
        digest.update(f"{klass.__module__}:{klass.__qualname__}\0".encode())
        for name, value in sorted(vars(klass).items(), key=lambda kv: kv[0]):
            func = getattr(value, "__func__", value)
            code = getattr(func, "__code__", None)
            if code is not None:
                digest.update(name.encode() + b"\0")
                _digest_code(digest, code)
    fingerprint = digest.hexdigest()
    if len(_prints) > 1024:
        _prints.clear()
    _prints[cls] = (ids, fingerprint)
    return fingerprint


def _digest_code(digest: Any, code: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    digest.update(f"{code.co_filename}:{code.co_firstlineno}".encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _digest_code(digest, const)
        else:
            digest.update(repr(const).encode())


def fingerprints(ir: GraphIR) -> dict[str, str]:
    """The fingerprint of each node class of ``ir``, by class path; raises WorkerUnavailable for a
    class the worker could not import as it is here."""
    prints: dict[str, str] = {}
    for node in ir.nodes:
        if node.cls in prints:
            continue
        module = node.cls.partition(":")[0]
        if (module != "oscen" and not module.startswith("oscen.")) or "<" in node.cls:
            raise WorkerUnavailable(f"{node.label}'s class {node.cls} is not a built-in node", failed=False)
        spec = getattr(sys.modules.get(module), "__spec__", None)
        origin = getattr(spec, "origin", None)
        if not origin or not os.path.isfile(origin):  # made at run time (oscen.midi._generated...)
            raise WorkerUnavailable(f"{node.cls} comes from no module file", failed=False)
        cls = node.resolve_class()
        try:
            named = resolve_node_class(node.cls)
        except Exception as exc:  # noqa: BLE001 - gone or renamed: compile it here
            raise WorkerUnavailable(f"{node.cls} cannot be imported by name ({exc})", failed=False) from None
        if named is not cls:
            raise WorkerUnavailable(f"{node.cls} was redefined since it was imported", failed=False)
        prints[node.cls] = class_fingerprint(cls)
    return prints


# ------------------------------------------------------------------------------ the parent's side
class CompileWorker:
    """One worker process and its pipe; ``compile`` is safe from any thread (one at a time)."""

    def __init__(self, nice: int = NICE, compile_timeout: float = COMPILE_TIMEOUT) -> None:
        self.nice = nice
        self.compile_timeout = compile_timeout
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._started_at = 0.0
        self._failures = 0
        self._next_id = 0
        self.pid: int | None = None
        self.compiles = 0
        """Compiles the worker did (for tests and benchmarks)."""

    # -- life cycle
    def _start(self) -> None:
        if self._failures >= MAX_FAILURES:
            raise WorkerUnavailable(f"the compile worker failed {self._failures} times; compiling in-process")
        env = dict(os.environ)
        # the worker imports this very oscen (a checkout on the path, say), and only oscen's nodes
        home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH", "")) if p)
        try:
            proc = subprocess.Popen(
                # not ``-m``: the worker's classes must pickle as oscen.jit.worker's, not __main__'s
                [
                    sys.executable,
                    "-c",
                    "import sys; from oscen.jit.worker import main; sys.exit(main())",
                    str(int(self.nice)),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self._failures += 1
            raise WorkerUnavailable(f"the compile worker could not be started ({exc})") from None
        assert proc.stdin is not None
        os.set_blocking(proc.stdin.fileno(), False)  # writes wait in select(), bounded (_write_all)
        self._proc = proc
        self._ready = False
        self._started_at = time.perf_counter()
        self.pid = self._proc.pid

    def _check_ready(self) -> None:
        """Take the worker's "ready" message if it came (never waits), else raise."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], 0)
        if not ready:
            if time.perf_counter() - self._started_at > START_TIMEOUT:
                self._kill()
                raise WorkerUnavailable("the compile worker did not start in time")
            raise WorkerUnavailable("the compile worker is still starting", failed=False)
        message = self._read(fd, time.perf_counter() + START_TIMEOUT)
        if message[0] != "ready":
            self._kill()
            raise WorkerUnavailable(f"the compile worker did not start: {message[-1]}")
        self._ready = True

    def _kill(self, failed: bool = True) -> None:
        proc, self._proc, self._ready = self._proc, None, False
        if proc is not None and failed:
            self._failures += 1
        if proc is None:
            return
        try:
            proc.kill()
            proc.wait(timeout=2.0)
        except Exception:  # noqa: BLE001 - already gone, or unkillable: nothing more to do
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except Exception:  # noqa: BLE001 - a broken pipe on close
                pass

    def close(self, timeout: float = 2.0) -> None:
        """Stop the worker process (it is started again by a later compile). A compile under way
        on another thread is waited for ``timeout`` seconds at most, then the worker is killed
        (that compile then runs in-process)."""
        locked = self._lock.acquire(timeout=timeout)
        try:
            proc = self._proc
            if proc is None:
                return
            if locked:
                try:
                    assert proc.stdin is not None
                    proc.stdin.close()  # the worker exits at end of file
                    proc.wait(timeout=timeout)
                except Exception:  # noqa: BLE001 - did not exit in time: kill it
                    pass
            self._kill(failed=False)
        finally:
            if locked:
                self._lock.release()

    @property
    def alive(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    def start(self) -> None:
        """Start the worker process now if it is not running (it is ready a while later)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._kill(failed=self._proc is not None)
                self._start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> bool:
        """Start the worker if needed and wait (at most ``timeout`` seconds) until it is ready to
        compile; for tests and benchmarks (JitGraph never waits for it)."""
        deadline = time.perf_counter() + timeout
        self.start()
        while time.perf_counter() < deadline:
            with self._lock:
                if self._proc is None:
                    return False
                if self._ready:
                    return True
                try:
                    self._check_ready()
                    return True
                except WorkerUnavailable as exc:
                    if exc.failed:
                        return False
            time.sleep(0.01)
        return False

    # -- compiling
    def compile(
        self, ir: GraphIR, jit: Any, tier: str | None = None, quiet: Quiet | None = None
    ) -> tuple[Any, WorkerResult]:
        """(CompiledGraph, what the worker sent) for a settled ``ir``, compiled by the worker with
        ``jit``'s options (for ``tier``: the compiler's by default); raises WorkerUnavailable if
        the worker cannot do it now. ``quiet``: how to run the steps here that hold the GIL for
        a millisecond or more (unpickling the reply, loading its machine code and program), as
        ``quiet(step)``: JitGraph's compiler thread passes ``_Beat.quiet``, which starts each
        just after a live block ends."""
        run = quiet if quiet is not None else _at_once
        from .compiler import CompiledGraph, CompileStats, CraneliftJit

        if type(jit) is not CraneliftJit:
            raise WorkerUnavailable(f"a {type(jit).__name__} compiles in-process", failed=False)
        # The classes' fingerprints (raising WorkerUnavailable, not a failure of the worker, for a
        # class it cannot import) and the IR pickled in short calls (~1.5 ms for 64 voices): at
        # once, in the quiet moment the to_ir step started in (as a quiet step of its own, after
        # to_ir's ~4 ms, it waited for the next block end: 31 ms from edit to ready, not 19).
        prints, encoded = fingerprints(ir), encode_ir(ir)
        if not self._lock.acquire(blocking=False):
            raise WorkerUnavailable("the compile worker is busy with another graph", failed=False)
        try:
            if self._proc is None or self._proc.poll() is not None:
                dead = self._proc
                self._kill(failed=dead is not None)
                self._start()
                if dead is not None:  # found dead between compiles: as much a failure as mid-compile
                    raise WorkerUnavailable(
                        f"the compile worker died (exit status {dead.returncode}); a new one is starting"
                    )
            if not self._ready:
                self._check_ready()
            result = self._request(encoded, prints, jit, jit.tier if tier is None else tier, run)
        finally:
            self._lock.release()

        def load() -> Any:
            module = _deserialize(result.module)
            made_as = result.tier  # (the text's source keeps only this of the reply alive)
            program = _program(ir, jit.max_block, result, lambda: jit.program(ir, made_as).wat)
            stats = CompileStats(
                result.frontend_seconds, result.wasm_seconds, lambda: len(program.wat), len(result.segments)
            )
            return CompiledGraph(
                ir, program, module, stats, jit.timeout, result.tier, result.tier_independent
            )

        compiled = run(load)
        self.compiles += 1
        return compiled, result

    def _request(
        self, encoded: bytes, prints: dict[str, str], jit: Any, tier: str, run: Quiet
    ) -> WorkerResult:
        """Send the compile request (``encoded``: :func:`encode_ir`'s bytes) and wait for the
        reply, the GIL released while waiting; ``run`` runs the reply's unpickling."""
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        self._next_id += 1
        rid = self._next_id
        options = {**jit.options(), "tier": tier}
        deadline = time.perf_counter() + self.compile_timeout
        try:
            data = pickle.dumps(("compile", rid, encoded, options, prints), protocol=pickle.HIGHEST_PROTOCOL)
            _write_all(proc.stdin.fileno(), _HEADER.pack(len(data)) + data, deadline)
            reply = self._read(proc.stdout.fileno(), deadline, run)
        except WorkerUnavailable:
            self._kill()  # stuck, or gone: a later compile starts a new one
            raise
        except (OSError, ValueError, pickle.PickleError) as exc:
            self._kill()
            raise WorkerUnavailable(
                f"the compile worker's pipe failed ({type(exc).__name__}: {exc})"
            ) from None
        kind, got = reply[0], reply[1]
        if got != rid:
            self._kill()
            raise WorkerUnavailable(f"the compile worker answered request {got}, not {rid}")
        if kind in _NOT_FAILURES:  # the in-process compile gives the error (or the code) itself
            raise WorkerUnavailable(
                f"the compile worker did not compile this graph: {reply[2]}", failed=False
            )
        if kind != "ok":
            raise WorkerUnavailable(f"the compile worker failed: {reply[2]}")
        return reply[2]

    def _read(self, fd: int, deadline: float, run: Quiet | None = None) -> Any:
        """The next reply: read without the GIL, unpickled by ``run`` (the reply load, the
        machine code and the WebAssembly text: a millisecond or more with the GIL held)."""
        (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size, deadline))
        data = _read_exactly(fd, size, deadline)
        try:
            return (run or _at_once)(lambda: pickle.loads(data))
        except Exception as exc:  # noqa: BLE001 - a garbled reply: the worker is not to be trusted
            self._kill()
            raise WorkerUnavailable(f"the compile worker sent a garbled reply ({exc})") from None


def _at_once(step: Callable[[], Any]) -> Any:
    """Run ``step`` now (a :data:`Quiet` for callers with no blocks to keep out of)."""
    return step()


def _deserialize(data: bytes) -> Any:
    import wasmtime

    from .engine import engine

    try:
        return wasmtime.Module.deserialize(engine(), data)
    except Exception as exc:  # noqa: BLE001 - another engine configuration, say
        raise WorkerUnavailable(f"the worker's machine code does not load here ({exc})") from None


def _program(ir: GraphIR, max_block: int, result: WorkerResult, text: Callable[[], str]) -> Any:
    """The running side's Program for the worker's ``result``; ``text`` prints its WebAssembly
    text when someone reads ``wat`` (the same compile again, here: a deterministic frontend)."""
    from .layout import Layout
    from .skeleton import Program

    layout = Layout.of(ir, max_block)
    if layout.size != result.layout_size:
        raise WorkerUnavailable(
            f"the worker laid the graph out differently ({result.layout_size} bytes, here {layout.size})"
        )
    return Program(
        None,
        layout,
        result.sites,
        result.segments,
        result.node_labels,
        result.math_imports,
        voices=result.voices,
        binary=result.binary,
        text_source=text,
    )


_shared: CompileWorker | None = None
_shared_lock = threading.Lock()


def shared() -> CompileWorker:
    """The process's compile worker (made, not started, on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = CompileWorker()
        return _shared


def _forget_after_fork() -> None:
    """In a forked child: the parent's worker (its pipes, its lock) is not this process's to use;
    the child starts its own when it needs one."""
    global _shared, _shared_lock
    _shared = None
    _shared_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def shutdown() -> None:
    """Stop the process's compile worker, if one runs (at exit, and for tests)."""
    worker = _shared
    if worker is not None:
        worker.close()


atexit.register(shutdown)


def enabled() -> bool:
    """Whether JitGraphs compile in the worker by default (``OSCEN_COMPILE_WORKER=0``: never).
    POSIX only: the bounded waits ``select`` on the child's pipes, which Windows does not allow."""
    if os.name != "posix":
        return False
    return os.environ.get("OSCEN_COMPILE_WORKER", "1").strip().lower() not in ("0", "false", "no", "off")


# ------------------------------------------------------------------------------ the worker's side
def _serve(inp: BinaryIO, out: BinaryIO) -> None:
    from .compiler import CraneliftJit
    from .frontend import JitError

    compilers: dict[tuple[Any, ...], CraneliftJit] = {}
    _send(out, ("ready", os.getpid()))
    while True:
        try:
            message = _recv(inp)
        except Exception as exc:  # noqa: BLE001 - a request it cannot read: say so, keep serving
            _send(out, ("error", -1, f"unreadable request ({type(exc).__name__}: {exc})"))
            continue
        if message is None or message[0] == "stop":
            return
        rid = message[1]
        try:
            _send(out, ("ok", rid, _compile(compilers, *message[2:])))
        except (SystemExit, KeyboardInterrupt):
            raise
        except _Mismatch as exc:
            _send(out, ("mismatch", rid, str(exc)))
        except JitError as exc:
            _send(out, ("jit-error", rid, str(exc)))
        except BaseException as exc:  # noqa: BLE001 - report it; the parent compiles in-process
            _send(out, ("error", rid, f"{type(exc).__name__}: {exc}"))


_last_quick: dict[str, Any] = {}
"""The worker's newest quick-tier compile, by IR key (see _compile)."""


def _compile(
    compilers: dict[tuple[Any, ...], Any], data: bytes, options: dict[str, Any], prints: dict[str, str]
) -> WorkerResult:
    """One compile in the worker, with the compiler for these options (kept: its caches)."""
    from .compiler import CraneliftJit

    ir = decode_ir(data)
    checked: set[str] = set()  # once per class, not per node (1 ms of a 64-voice compile)
    for node in ir.nodes:
        if node.cls in checked:
            continue
        if prints.get(node.cls) != class_fingerprint(node.resolve_class()):
            raise _Mismatch(f"{node.cls} differs in the worker from the parent's")
        checked.add(node.cls)
    options = dict(options)
    tier = options.pop("tier", "optimized")
    key = tuple(sorted(options.items()))  # one compiler (one session's caches) for both tiers
    jit = compilers.get(key)
    if jit is None:
        jit = compilers[key] = CraneliftJit(**options)
    quick = _last_quick.pop(ir.key(), None) if tier == "optimized" else None
    if quick is not None and quick.tier_independent:  # only Cranelift again (CraneliftJit.optimize)
        compiled = jit.optimize(quick)
    elif tier == "first":  # JitGraph's first code for a topology (CraneliftJit.compile_first)
        compiled = jit.compile_first(ir)
    else:
        compiled = jit.compile(ir, tier)
    if compiled.tier == "quick":
        _last_quick.clear()  # JitGraph asks for the optimized tier of the quick one it just got
        _last_quick[ir.key()] = compiled
    program = compiled.program
    return WorkerResult(
        module=compiled.module.serialize(),
        binary=program.binary if program.binary is not None else _assembled(program.wat),
        sites={nid: list(s) for nid, s in program.sites.items()},
        segments=[list(s) for s in program.segments],
        node_labels=dict(program.node_labels),
        math_imports=list(program.math_imports),
        voices={nid: list(v) for nid, v in program.voices.items()},
        layout_size=program.layout.size,
        frontend_seconds=compiled.stats.frontend_seconds,
        wasm_seconds=compiled.stats.wasm_seconds,
        pid=os.getpid(),
        tier=compiled.tier,
        tier_independent=compiled.tier_independent,
    )


def _assembled(text: str) -> bytes:
    """The binary of a program known only as text (none of CraneliftJit's are)."""
    import wasmtime

    return bytes(wasmtime.wat2wasm(text))


def batch(pid: int) -> bool:
    """Put process ``pid`` (0: this one, and the threads it starts later) under ``SCHED_BATCH``
    where the OS has it (Linux): at the same share of the CPU as its nice value gives, but a
    thread that wakes (the audio thread, after its sleep until the next block) preempts it at
    once rather than at the end of its time slice. False where that is not possible."""
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(pid, policy, os.sched_param(0))
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """The worker process (``python -c "...worker import main; main()" [nice]``)."""
    args = sys.argv[1:] if argv is None else argv
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol
    from . import compiler, engine  # noqa: F401 - imported at the parent's priority: a quick start

    engine.PARALLEL_COMPILATION = False  # one core for Cranelift here: the other plays
    try:
        os.nice(int(args[0]) if args else NICE)
    except (OSError, ValueError):
        pass  # at the parent's priority, then
    batch(0)
    try:
        _serve(inp, out)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    return 0
