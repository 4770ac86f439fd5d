"""The passes' output (oscen.jit.passes): primitive kernel IR only, self-contained, every trap
site in the variant's table, every local declared; checked on every variant of the demo patch and
the polysynth, with state in memory and in locals. What the code computes is checked by the
differential suites (test_jit_*.py), which run it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oscen.demo import demo_patch
from oscen.graph import Graph, Node, StreamOutput
from oscen.jit import CraneliftJit, GraphState, validate
from oscen.jit import kernel as k
from oscen.jit.layout import Layout
from oscen.jit.passes import VariantCode, compile_variant
from oscen.jit.passes.walk import walk
from oscen.jit.session import CompileSession

HIGH_LEVEL = validate.HIGH_EXPRS + validate.HIGH_STMTS  # what the passes must leave none of
SKELETON_LOCALS = {"nb", "i", "ev_at"}


def _polysynth():
    from benchmarks.oscen_engine import polysynth_graph

    return polysynth_graph(44100.0, voices=2)


def _variants(graph, state_in_locals: bool) -> list[tuple[str, VariantCode]]:
    ir = graph.to_ir()
    layout = Layout.of(ir)
    inputs = {(c.target, c.target_endpoint) for c in ir.connections}
    out = []
    for node in ir.nodes:
        connected = frozenset(
            e.name
            for e in node.endpoints
            if e.direction == "input" and e.kind != "event" and (node.id, e.name) in inputs
        )
        low = CompileSession().lowering_for(node, ir.sample_rate)
        out.append(
            (node.label, compile_variant(node, layout.nodes[node.id], low, connected, True, state_in_locals))
        )
    return out


def _check_body(
    label: str, vc: VariantCode, body: list[k.Stmt], declared: set[str], in_function: bool
) -> None:
    sites = {id(s) for s in vc.sites[1:]}
    for x in walk(body):
        assert not isinstance(x, HIGH_LEVEL), f"{label}: {type(x).__name__} left at the primitive level"
        if isinstance(x, k.Trap):
            assert x.where is None or id(x.where) in sites, f"{label}: a trap site outside the table"
        if isinstance(x, k.Local):
            ok = (
                x.name in declared
                or x.name.startswith("in_")
                or (x.name.startswith("S_") and not in_function)
                or (x.name[2:] in vc.params_used and x.name.startswith("P_") and not in_function)
            )
            assert ok, f"{label}: local {x.name} is not declared"
        if isinstance(x, k.SyncState):
            assert not in_function and vc.state_used, f"{label}: a state sync with no state in locals"
        for value in vars(x).values():
            assert not isinstance(value, str) or not value.startswith("("), (
                f"{label}: text in the IR: {value!r}"
            )


@pytest.mark.parametrize("state_in_locals", [False, True])
@pytest.mark.parametrize("build", [demo_patch, _polysynth], ids=["demo", "polysynth"])
def test_variants_are_primitive_and_self_contained(build, state_in_locals: bool) -> None:
    variants = _variants(build(), state_in_locals)
    assert variants
    n_sites = n_handlers = 0
    for label, vc in variants:
        declared = set(vc.process.locals) | SKELETON_LOCALS
        for code in [vc.process, *vc.handlers.values()]:
            assert code.sites == vc.sites[1:], f"{label}: the Codes of a variant share one site table"
            _check_body(label, vc, code.body, declared, in_function=False)
        for fn in vc.functions:
            assert fn.params[0] == ("nb", k.T.I32), f"{label}: {fn.name} takes the node base first"
            _check_body(label, vc, fn.body, set(fn.locals) | {p for p, _ in fn.params}, in_function=True)
        if not state_in_locals:
            assert not vc.state_used and not vc.params_used
        n_sites += len(vc.sites) - 1
        n_handlers += len(vc.handlers)
    assert n_sites > 0 and n_handlers > 0  # the check saw traps and handlers


def test_state_syncs_around_outlined_calls() -> None:
    """With state in locals, a call of an outlined helper (which works on memory) is preceded by
    a flush and followed by a reload; with state in memory there are none."""
    for state_in_locals in (False, True):
        seen = 0
        for label, vc in _variants(_polysynth(), state_in_locals):
            if not vc.functions:
                continue
            body = [x for x in walk([vc.process.body, *(c.body for c in vc.handlers.values())])]
            syncs = [x.direction for x in body if isinstance(x, k.SyncState)]
            calls = [
                x
                for x in body
                if isinstance(x, (k.Invoke, k.CallFn)) and x.func in {f.name for f in vc.functions}
            ]
            if state_in_locals:
                assert syncs.count("flush") == syncs.count("reload") >= len(calls) > 0, label
            else:
                assert not syncs, label
            seen += len(calls)
        assert seen > 0, "the polysynth has outlined helpers (coefficient updates)"


class _LibmSine(Node):
    """A sine oscillator through ``math.sin`` (the library's Oscillator uses a polynomial instead)."""

    output = StreamOutput()

    def __init__(self) -> None:
        self._phase = 0.0

    def process(self, sample_rate: float) -> None:
        self.output = math.sin(2.0 * math.pi * self._phase)
        self._phase = (self._phase + 440.0 / sample_rate) % 1.0


def test_small_math_decides_each_function_when_asked_as_the_whole_table_would() -> None:
    """SmallMath measures a function (and its callees) when it is first looked up, not the whole
    library at once: the same answers as outlined() of the whole table, fewer measured."""
    from oscen.jit.mathlib import BY_WASM
    from oscen.jit.passes.inline import INLINE_LIMIT, Outlining, SmallMath, outlined

    table = {name: mf.function for name, mf in BY_WASM.items()}
    lazy = SmallMath(table)
    assert "m_sin" in lazy and lazy["m_sin"] is table["m_sin"]
    measured = lazy._outlining._sizes
    assert 0 < len(measured) < len(table)
    assert "m_tan" not in lazy and "m_no_such_function" not in lazy
    with pytest.raises(KeyError):
        lazy["m_tan"]
    large = outlined(table)
    assert set(lazy) == set(table) - large and len(lazy) == len(table) - len(large)
    decide = Outlining(table)
    assert all(decide.large(name) == (decide._sizes[name] > INLINE_LIMIT) for name in table)


def test_small_math_is_expanded_in_per_sample_code_only() -> None:
    """sin is expanded into a sine oscillator's process (inline_math), called when math is not
    inlined (large graphs) and in outlined helpers; the large functions stay calls."""
    from oscen.jit.passes.inline import small_math

    inlinable, everything = small_math()
    assert {"m_sin", "m_cos", "m_exp", "m_pymod"} <= set(inlinable)
    assert {"m_tan", "m_log10", "m_rem_pio2_large", "m_pow_core"} <= everything - set(inlinable)
    graph = Graph(44100.0)
    graph.add_node(_LibmSine(), "lfo")
    ir = graph.to_ir()
    layout = Layout.of(ir)
    osc = next(n for n in ir.nodes if n.label == "lfo")  # a sine
    low = CompileSession().lowering_for(osc, ir.sample_rate)
    for inline_math in (True, False):
        vc = compile_variant(osc, layout.nodes[osc.id], low, frozenset(), inline_math, False)
        calls = {x.func for x in walk(vc.process.body) if isinstance(x, (k.CallFn, k.Invoke))}
        if inline_math:
            assert not calls & set(inlinable), calls
        else:
            assert "m_sin" in calls and "m_sin" in vc.math_called


class _OutlinedInExpression(Node):
    """State kept in locals, and a large helper called under an ``if`` whose value is used inside
    an expression: the state must go back to memory around that call even though the call sits
    inside an expression (the skeleton once looked for the sync marks among statements only)."""

    output = StreamOutput()

    def __init__(self) -> None:
        self.phase = 0.0
        self.count = 0
        self.table = np.linspace(-1.0, 1.0, 64)

    def process(self, sample_rate: float) -> None:
        self.count += 1
        self.phase = (self.phase + 0.013) % 1.0
        y = self.phase
        if self.count % 3 == 0:
            y = 0.5 * self.lookup(self.phase) + y
        self.output = y

    def lookup(self, x: float) -> float:
        i = int(x * 63.0)
        a = self.table[i] * 0.5 - self.phase * 0.01 + self.count * 1e-9
        b = self.table[(i + 1) % 64] * 0.25 + a * a - self.phase * 0.02
        c = self.table[(i + 2) % 64] * 0.125 + b * a - self.phase * 0.03
        d = self.table[(i + 3) % 64] * 0.0625 + c * b - self.phase * 0.04
        e = self.table[(i + 4) % 64] * 0.03125 + d * c - self.phase * 0.05
        return a + b + c + d + e


def test_state_goes_back_to_memory_around_an_outlined_call_inside_an_expression() -> None:
    graph = Graph(44100)
    node = graph.add_node(_OutlinedInExpression(), "n")
    graph.set_output(node.output)
    compiled = CraneliftJit(state_in_locals=True).compile(graph.to_ir())  # a fresh session
    assert "call $v" in compiled.wat  # the helper really is outlined
    state = GraphState.from_graph(graph)
    got = compiled.process_block(state, 600)
    want = graph.process_block(600)
    np.testing.assert_array_equal(got, want)
