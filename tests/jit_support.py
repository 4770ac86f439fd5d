"""Helpers for the JIT tests: one graph, run interpreted and compiled, compared sample by sample.

``run_both(build, n, actions=...)`` calls ``build()`` once per engine (it must build the same graph
each time: same nodes added in the same order), runs ``n`` samples through the interpreter and
through compiled code with the same block schedule, the same parameter changes and the same events
at the same block boundaries, and returns both outputs.

``assert_engines_match(expected, got, ...)`` is the comparison every differential test uses: it
applies the tolerance policy of docs/jit.md ("How closely compiled output follows the
interpreter"), and when the outputs differ it says where and shows the samples around the first
difference. Its name and arguments are stable (other tests and the stress suite call it):

* ``exact=True``: bit for bit (integer and logic results, and float code without math library
  calls: + - * /, sqrt, comparisons and conversions are the same IEEE operations in both engines);
* otherwise each sample within ``atol + rtol * |expected|`` (both 1e-9 by default), NaNs and
  infinities in the same places;
* ``perturbed=``: for ill-conditioned or chaotic graphs, the reference re-run with its free
  parameters nudged by one ulp (``perturbed_reference``): the allowed difference grows by
  SPREAD_FACTOR times the largest divergence of that re-run so far, the amount by which the graph
  itself amplifies a rounding difference.

``assert_same(expected, got, atol)`` is the older absolute-tolerance comparison (kept for callers).

Engines:

* ``"interpreted"``: ``Graph.process_block``, the reference.
* ``"state"``: ``CraneliftJit(...).compile(graph.to_ir())`` run on ``GraphState.from_graph(graph)``.
* ``"jitgraph"``: ``JitGraph(graph, background=False)`` after ``wait_compiled()``; it must really run
  compiled code (a fallback to the interpreter fails the test, with the reason).
* ``"reference"``: ``oscen.jit.compile(ir, backend="reference")`` on a ``GraphState``: the same program
  evaluated in Python (slow). Unless ``OSCEN_REFERENCE_ENGINE=0`` (``pytest --no-reference-engine``),
  every run that includes ``"state"`` also runs it, on the first ``OSCEN_REFERENCE_SAMPLES``
  samples (default 2048), and requires its output to be the wasm kernel's bit for bit.

Actions name endpoints either by an :class:`Endpoint` of *any* build (resolved again in each graph by
node id and endpoint name) or by a string ``"label.endpoint"``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import oscen.jit
from oscen.graph import Endpoint, Graph
from oscen.jit import CraneliftJit, GraphState, JitFallbackWarning, JitGraph
from oscen.jit.backends.reference import ReferenceNestingError

TOLERANCE = 1e-9
SPREAD_FACTOR = 8.0
"""How much more than the graph's own divergence under a one-ulp nudge the engines may differ by."""
REFERENCE_ENV = "OSCEN_REFERENCE_ENGINE"
REFERENCE_SAMPLES_ENV = "OSCEN_REFERENCE_SAMPLES"
EndpointRef = Endpoint | str
Build = Callable[[], Graph]


# ---------------------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class SetValue:
    """``set_value(endpoint, value, ramp)`` before the sample ``at`` (a block boundary)."""

    at: int
    endpoint: EndpointRef
    value: float
    ramp: float = 0.0


@dataclass(frozen=True)
class QueueEvent:
    """``queue_event(endpoint, offset, payload)`` before the sample ``at``: the event lands on
    sample ``at + offset``."""

    at: int
    endpoint: EndpointRef
    payload: float | tuple[float, ...] = 1.0
    offset: int = 0


Action = SetValue | QueueEvent


def set_value(at: int, endpoint: EndpointRef, value: float, ramp: float = 0.0) -> SetValue:
    return SetValue(at, endpoint, value, ramp)


def event(
    at: int, endpoint: EndpointRef, payload: float | tuple[float, ...] = 1.0, offset: int = 0
) -> QueueEvent:
    return QueueEvent(at, endpoint, payload, offset)


def resolve(graph: Graph, ref: EndpointRef) -> Endpoint:
    """The endpoint of ``graph`` that ``ref`` names (an Endpoint of another build, or "label.name")."""
    if isinstance(ref, str):
        label, _, name = ref.rpartition(".")
        for handle in graph.nodes:
            if handle.label == label:
                return getattr(handle, name)
        raise KeyError(f"no node labelled {label!r} in the graph (labels: {[h.label for h in graph.nodes]})")
    return getattr(graph.handle(ref.node_id), ref.name)


def block_schedule(n: int, blocks: int | Sequence[int], cuts: Iterable[int] = ()) -> list[int]:
    """Block sizes covering ``n`` samples: ``blocks`` (a size, or sizes used in turn), also cut at
    every position in ``cuts`` so that actions fall on block boundaries."""
    sizes = [blocks] if isinstance(blocks, (int, np.integer)) else list(blocks)
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"block sizes must be >= 1, got {blocks!r}")
    stops = sorted({c for c in cuts if 0 < c < n})
    out: list[int] = []
    pos = 0
    k = 0
    while pos < n:
        end = min(pos + int(sizes[k % len(sizes)]), n)
        k += 1
        while stops and stops[0] <= pos:
            stops.pop(0)
        if stops and stops[0] < end:
            end = stops[0]
        out.append(end - pos)
        pos = end
    return out


# ---------------------------------------------------------------------------------------- engines
class Engine:
    """A graph and a way of running it; ``run`` applies the actions due before each block."""

    name = ""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def apply(self, action: Action) -> None:
        ep = resolve(self.graph, action.endpoint)
        if isinstance(action, SetValue):
            self.target().set_value(ep, action.value, action.ramp)
        else:
            self.target().queue_event(ep, action.offset, action.payload)

    def target(self) -> Any:
        return self.graph

    def block(self, m: int) -> np.ndarray:
        return self.graph.process_block(m)

    def run(self, n: int, actions: Sequence[Action], blocks: int | Sequence[int]) -> np.ndarray:
        due: dict[int, list[Action]] = {}
        for a in actions:
            if not 0 <= a.at < max(n, 1):
                raise ValueError(f"action {a} is outside the {n} samples run")
            due.setdefault(a.at, []).append(a)
        outs = []
        pos = 0
        for m in block_schedule(n, blocks, due):
            for a in due.get(pos, ()):
                self.apply(a)
            outs.append(self.block(m))
            pos += m
        if not outs:
            for a in due.get(0, ()):
                self.apply(a)
            return self.block(0)
        return np.concatenate(outs, axis=-1)


class Interpreted(Engine):
    name = "interpreted"


class StateEngine(Engine):
    """``CraneliftJit().compile(graph.to_ir())`` on a ``GraphState`` made from the same graph."""

    name = "state"

    def __init__(self, graph: Graph, jit: CraneliftJit) -> None:
        super().__init__(graph)
        self.ir = graph.to_ir()
        self.compiled = jit.compile(self.ir)
        self.state = GraphState.from_graph(graph, max_block=jit.max_block, ir=self.ir)

    def target(self) -> Any:
        return self.state

    def block(self, m: int) -> np.ndarray:
        return self.compiled.process_block(self.state, m)


class ReferenceEngine(StateEngine):
    """``oscen.jit.compile(ir, backend="reference")``: the wasm kernel's program run in Python."""

    name = "reference"

    def __init__(self, graph: Graph, jit: CraneliftJit) -> None:
        Engine.__init__(self, graph)
        self.ir = graph.to_ir()
        # The same program as the wasm kernel's (voice groups and lanes included). The loop
        # budget's clock is generous: Python runs the program ~100x slower than wasm, and only
        # code the wasm engines already ran to its end gets here (a 4x oversampling waveshaper
        # met the 2 s of a loaded CI machine).
        options = dict(
            max_block=jit.max_block,
            fuse=jit.fuse,
            timeout=max(30 * jit.timeout, 60.0),
            voice_groups=jit.voice_groups,
            lanes=jit.lanes,
        )
        self.compiled = oscen.jit.compile(
            self.ir, backend="reference", state_in_locals=jit.state_in_locals, **options
        )
        self.state = GraphState.from_graph(graph, max_block=jit.max_block, ir=self.ir)


def reference_engine_on() -> bool:
    """Whether every differential run also runs the reference backend (on unless ``--no-reference-engine``)."""
    return os.environ.get(REFERENCE_ENV, "") not in ("", "0")


def reference_samples(n: int) -> int:
    """How many of ``n`` samples the reference engine runs when it is switched on."""
    return min(n, int(os.environ.get(REFERENCE_SAMPLES_ENV, "2048")))


class JitGraphEngine(Engine):
    """``JitGraph(graph, background=False)``, which must really run compiled code."""

    name = "jitgraph"

    def __init__(self, graph: Graph, jit: CraneliftJit) -> None:
        super().__init__(graph)
        self.jit = JitGraph(graph, jit=jit, background=False)
        if not self.jit.wait_compiled(timeout=60.0):
            raise AssertionError(f"JitGraph did not compile the graph: {self.jit.last_error!r}")

    def target(self) -> Any:
        return self.jit

    def block(self, m: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("error", JitFallbackWarning)
            out = self.jit.process_block(m)
        assert self.jit.mode == "compiled", f"JitGraph fell back to the interpreter: {self.jit.last_error!r}"
        return out


def make_engine(name: str, graph: Graph, jit: CraneliftJit) -> Engine:
    if name == "interpreted":
        return Interpreted(graph)
    if name == "state":
        return StateEngine(graph, jit)
    if name == "jitgraph":
        return JitGraphEngine(graph, jit)
    if name == "reference":
        return ReferenceEngine(graph, jit)
    raise ValueError(f"unknown engine {name!r}")


# ---------------------------------------------------------------------------------------- running
def run_engines(
    build: Build,
    n: int,
    actions: Sequence[Action] = (),
    *,
    engines: Sequence[str] = ("interpreted", "state", "jitgraph"),
    blocks: int | Sequence[int] = 512,
    jit: CraneliftJit | None = None,
    check_state: bool = True,
    atol: float = TOLERANCE,
) -> dict[str, np.ndarray]:
    """Run ``n`` samples of a fresh ``build()`` on each engine; returns {engine name: output}.

    With ``check_state`` (and both "interpreted" and "state" run), the final attributes, outputs and
    parameters of every node are compared too: the compiled state must end where the interpreter's
    does, not only sound the same.
    """
    jit = jit or CraneliftJit()
    actions = list(actions)
    ran: dict[str, Engine] = {}
    outputs: dict[str, np.ndarray] = {}
    for name in engines:
        engine = make_engine(name, build(), jit)
        outputs[name] = engine.run(n, actions, blocks)
        ran[name] = engine
    if check_state and "interpreted" in ran and "state" in ran:
        interp = ran["interpreted"]
        compiled = ran["state"]
        assert isinstance(compiled, StateEngine)
        assert_same_state(interp.graph, compiled.state, atol=atol)
    if check_state and "interpreted" in ran and "reference" in ran:
        reference = ran["reference"]
        assert isinstance(reference, StateEngine)
        assert_same_state(ran["interpreted"].graph, reference.state, atol=atol)
    if "state" in outputs and "reference" not in engines and reference_engine_on():
        m = reference_samples(n)
        try:
            engine = make_engine("reference", build(), jit)
        except ReferenceNestingError as exc:  # deeper than CPython compiles: said, not hidden
            warnings.warn(f"reference engine not run: {exc}", stacklevel=2)
        else:
            got = engine.run(m, [a for a in actions if a.at < max(m, 1)], blocks)
            assert_engines_match(outputs["state"][..., :m], got, exact=True, what="reference vs wasm")
    return outputs


def run_both(
    build: Build,
    n: int,
    actions: Sequence[Action] = (),
    *,
    engine: str = "state",
    blocks: int | Sequence[int] = 512,
    jit: CraneliftJit | None = None,
    check_state: bool = True,
    atol: float = TOLERANCE,
) -> tuple[np.ndarray, np.ndarray]:
    """(interpreted output, compiled output) of ``n`` samples of ``build()`` with the same actions."""
    outs = run_engines(
        build,
        n,
        actions,
        engines=("interpreted", engine),
        blocks=blocks,
        jit=jit,
        check_state=check_state,
        atol=atol,
    )
    return outs["interpreted"], outs[engine]


def assert_jit_same(
    build: Build,
    n: int,
    actions: Sequence[Action] = (),
    *,
    engines: Sequence[str] = ("state", "jitgraph"),
    blocks: int | Sequence[int] = 512,
    jit: CraneliftJit | None = None,
    atol: float = TOLERANCE,
    check_state: bool = True,
    audible: bool = True,
    exact: bool = False,
) -> np.ndarray:
    """Every compiled engine's output equals the interpreter's within ``atol`` (``exact``: bit for
    bit, for graphs of float code without math-library calls); returns the reference."""
    outs = run_engines(
        build,
        n,
        actions,
        engines=("interpreted", *engines),
        blocks=blocks,
        jit=jit,
        check_state=check_state,
        atol=atol,
    )
    ref = outs["interpreted"]
    if audible:
        assert np.any(np.abs(ref) > 1e-6), "the reference output is silent: the test would prove little"
    perturbed = None
    for name in engines:
        if exact:
            assert_engines_match(ref, outs[name], exact=True, what=f"{name} vs interpreted")
            continue
        try:
            assert_engines_match(ref, outs[name], atol=atol, rtol=atol, what=f"{name} vs interpreted")
        except AssertionError:
            # beyond the plain bound: allowed only as far as the graph amplifies rounding itself
            if perturbed is None:
                perturbed = perturbed_reference(build, n, actions, blocks=blocks)
            assert_engines_match(
                ref, outs[name], atol=atol, rtol=atol, perturbed=perturbed, what=f"{name} vs interpreted"
            )
    return ref


def perturbed_reference(
    build: Build, n: int, actions: Sequence[Action] = (), *, blocks: int | Sequence[int] = 512
) -> np.ndarray:
    """The interpreter's output with every free parameter (unconnected value input) nudged by one
    ulp before the first sample, and every parameter change of ``actions`` nudged too: how far
    a rounding-level difference carries in this graph (the condition estimate of the policy)."""
    graph = build()
    driven = {(c.target.node_id, c.target.name) for c in graph.connections}
    for handle in graph.nodes:
        for name, spec in type(handle.node)._endpoints.items():
            ep = getattr(handle, name)
            free = (handle.id, name) not in driven
            if spec.kind.value == "value" and spec.direction.value == "input" and free:
                value = float(graph.get_value(ep))
                graph.set_value(ep, float(np.nextafter(value, math.inf)))
    nudged = [
        SetValue(a.at, a.endpoint, float(np.nextafter(a.value, math.inf)), a.ramp)
        if isinstance(a, SetValue)
        else a
        for a in actions
    ]
    return Interpreted(graph).run(n, nudged, blocks)


# ---------------------------------------------------------------------------------------- comparing
def assert_engines_match(
    expected: Any,
    got: Any,
    *,
    exact: bool = False,
    atol: float = TOLERANCE,
    rtol: float = TOLERANCE,
    perturbed: Any = None,
    what: str = "compiled vs interpreted",
) -> None:
    """The tolerance policy of docs/jit.md, applied to one output (any shape; the last axis is time).

    ``exact``: the same floats bit for bit (signed zeros too; NaN matches NaN). Otherwise sample
    ``i`` may differ by ``atol + rtol * |expected[i]|``, plus, when ``perturbed`` (see
    ``perturbed_reference``) is given, SPREAD_FACTOR times ``max(|expected[:i+1] - perturbed[:i+1]|)``.
    NaNs and infinities must be in the same places either way.
    """
    a = np.asarray(expected, dtype=np.float64)
    b = np.asarray(got, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shapes differ: expected {a.shape}, got {b.shape}")
    if a.size == 0:
        return
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore"):
        same_inf = (a == b) & np.isinf(a)
        diff = np.abs(a - b)
    diff = np.where(nan_a & nan_b, 0.0, diff)
    diff = np.where(same_inf, 0.0, diff)
    diff = np.where(nan_a ^ nan_b, np.inf, diff)
    if exact:
        same_bits = (a.view(np.int64) == b.view(np.int64)) | (nan_a & nan_b)
        bound = np.zeros_like(a)
        diff = np.where(same_bits, 0.0, np.where(diff == 0.0, np.inf, diff))  # 0.0 vs -0.0 differ
        label = "bit for bit"
    else:
        with np.errstate(invalid="ignore"):
            bound = atol + rtol * np.where(np.isfinite(a), np.abs(a), 0.0)
        label = f"{atol:g} + {rtol:g}·|expected|"
        if perturbed is not None:
            p = np.asarray(perturbed, dtype=np.float64)
            if p.shape != a.shape:
                raise AssertionError(f"{what}: the perturbed reference has shape {p.shape}, not {a.shape}")
            with np.errstate(invalid="ignore"):
                spread = np.where(np.isfinite(a) & np.isfinite(p), np.abs(a - p), 0.0)
            bound = bound + SPREAD_FACTOR * np.maximum.accumulate(spread, axis=-1)
            label += f" + {SPREAD_FACTOR:g}·(the graph's own spread under a one-ulp nudge)"
    bad = ~(diff <= bound)
    if not bad.any():
        return
    _report(a, b, diff, bad, f"{what}: {{count}} of {a.size} samples differ by more than {label}")


def _report(a: np.ndarray, b: np.ndarray, diff: np.ndarray, bad: np.ndarray, headline: str) -> None:
    flat_bad = np.flatnonzero(bad)
    first = int(flat_bad[0])
    worst = int(np.argmax(np.where(np.isnan(diff), np.inf, np.where(bad, diff, -1.0))))
    lines = [
        headline.format(count=flat_bad.size),
        f"  largest difference {diff.flat[worst]:.3e} at {_fmt_index(a.shape, worst)}: "
        f"expected {float(a.flat[worst])!r}, got {float(b.flat[worst])!r}",
        f"  first difference at {_fmt_index(a.shape, first)}",
    ]
    idx = np.unravel_index(first, a.shape)
    row_a = a if a.ndim == 1 else a[idx[0]]
    row_b = b if b.ndim == 1 else b[idx[0]]
    i = idx[-1]
    lines.append(f"  {'sample':>8} {'expected':>24} {'got':>24} {'diff':>10}")
    for j in range(max(0, i - 3), min(len(row_a), i + 4)):
        mark = " <" if j == i else ""
        x, y = float(row_a[j]), float(row_b[j])
        d = abs(x - y) if math.isfinite(x) and math.isfinite(y) else math.nan
        lines.append(f"  {j:>8} {x!r:>24} {y!r:>24} {d:>10.3e}{mark}")
    raise AssertionError("\n".join(lines))


def _fmt_index(shape: tuple[int, ...], flat: int) -> str:
    idx = np.unravel_index(flat, shape)
    if len(shape) == 1:
        return f"sample {idx[0]}"
    return f"channel {idx[0]}, sample {idx[1]}"


def assert_same(
    expected: Any, got: Any, atol: float = TOLERANCE, what: str = "compiled vs interpreted"
) -> None:
    """``got`` equals ``expected`` within ``atol`` (absolute), with NaNs and infinities in the same places.

    On failure the message gives the shapes, the largest difference and where, how many samples
    differ, and the samples around the first difference side by side.
    """
    a = np.asarray(expected, dtype=np.float64)
    b = np.asarray(got, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shapes differ: expected {a.shape}, got {b.shape}")
    if a.size == 0:
        return
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    with np.errstate(invalid="ignore"):
        same_inf = (a == b) & np.isinf(a)
        diff = np.abs(a - b)
    diff = np.where(nan_a & nan_b, 0.0, diff)
    diff = np.where(same_inf, 0.0, diff)
    diff = np.where(nan_a ^ nan_b, np.inf, diff)
    bad = ~(diff <= atol)
    if not bad.any():
        return
    _report(a, b, diff, bad, f"{what}: {{count}} of {a.size} samples differ by more than {atol:g}")


def _close(x: Any, y: Any, atol: float) -> bool:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rtol = 1e-12 if atol > 0 else 0.0
    return bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True)) and bool(
        np.array_equal(np.isinf(x) & (x > 0), np.isinf(y) & (y > 0))
    )


def assert_same_state(graph: Graph, state: GraphState, atol: float = TOLERANCE) -> None:
    """Every node attribute, output and parameter of the compiled ``state`` matches the node objects
    of the interpreted ``graph`` (same topology): ints and bools exactly, floats within ``atol``
    (or 1e-12 relative), NaNs where the interpreter has NaNs."""
    problems = []
    for n in state.ir.nodes:
        values = graph.handle(n.id).node.__dict__
        layout = state.layout.nodes[n.id]
        for name, (_, ty) in layout.scalars.items():
            want, have = values[name], state.scalar(n.id, name)[0]
            ok = (int(want) == int(have)) if ty in ("i64", "bool") else _close(want, have, atol)
            if not ok:
                problems.append(f"{n.label}.{name}: interpreted {want!r}, compiled {have!r}")
        for name in layout.arrays:
            want, have = values[name], state.array(n.id, name)
            if not _close(want, have, atol):
                d = np.flatnonzero(
                    ~np.isclose(want, have, rtol=1e-12 if atol > 0 else 0.0, atol=atol, equal_nan=True)
                )
                problems.append(
                    f"{n.label}.{name}[{d[0]}] (+{d.size - 1} more): interpreted {want[d[0]]!r}, compiled {have[d[0]]!r}"
                )
        for name in layout.params:  # a connected one's slot holds its base (sources add to it)
            ep = getattr(graph.handle(n.id), name)
            want, have = graph.get_value(ep), state.value_of(n.id, name)
            if not _close(want, have, atol):
                problems.append(f"{n.label}.{name} (parameter): interpreted {want!r}, compiled {have!r}")
    if graph.frame != state.frame:
        problems.append(f"frame: interpreted {graph.frame}, compiled {state.frame}")
    if problems:
        raise AssertionError(
            "compiled state differs from the interpreter's:\n  " + "\n  ".join(problems[:20])
        )


# ---------------------------------------------------------------------------------------- misc
def compile_graph(graph: Graph, **jit_options: Any) -> tuple[Any, GraphState]:
    """(compiled graph, fresh state) of ``graph`` through exactly ``to_ir`` and ``compile``."""
    jit = CraneliftJit(**jit_options)
    ir = graph.to_ir()
    compiled = jit.compile(ir)
    return compiled, GraphState.from_graph(graph, max_block=jit.max_block, ir=ir)


def same_float(a: float, b: float) -> bool:
    """Exactly the same float: NaN equals NaN, and 0.0 and -0.0 differ."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
