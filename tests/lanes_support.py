"""A voice group's per-voice body built the way the skeleton builds it (issue 11, item 2), and two
ways to run W voices of it on wasmtime: the body W times, voice by voice (the reference meaning),
and the lane body of :func:`oscen.jit.passes.lanes.lanes` once. Used by tests/test_lanes.py and
benchmarks/bench_lanes.py.

A voice is a small graph; its nodes' regions (Layout.of) are the voice's memory, from
HEADER_BYTES to the layout's render area, and voice ``v`` of the group lives at
``HEADER_BYTES + v * VS``. Everything of the voice is addressed from the local ``vb``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import wasmtime

from oscen.filters import IirLowpass
from oscen.graph import Graph, Node, StreamOutput, ValueInput
from oscen.jit import kernel as k
from oscen.jit import wasm_math
from oscen.jit.backends import wasm
from oscen.jit.engine import engine, math_module
from oscen.jit.kernel import T
from oscen.jit.layout import EVENT_BYTES, FRAME, HEADER_BYTES, INTERRUPT, LANE, LOOP_BUDGET, SEGMENT
from oscen.jit.ops import Op
from oscen.jit.passes.lanes import LaneBody, lanes
from oscen.jit.passes.runtime import trap_function
from oscen.jit.protocol import ramp_function
from oscen.jit.skeleton import SCALAR_TYPES, SkeletonBuilder
from oscen.jit.state import GraphState

I32, I64, F64 = T.I32, T.I64, T.F64
MAX_BLOCK = 64


def c32(v: int) -> k.Const:
    return k.Const(I32, v)


def p(op: Op, *args: k.Expr) -> k.Prim:
    return k.Prim(op.result, op, list(args))


def loc(t: T, name: str) -> k.Local:
    return k.Local(t, name)


VB = loc(I32, "vb")


@dataclass
class VoiceBody:
    """The per-voice body and what running it needs."""

    body: list[k.Stmt]
    locals: dict[str, T]
    functions: list[k.Function]  # the module functions it calls (ramp, trap, outlined helpers)
    math: list[str]  # math library functions it calls out of line
    vs: int  # voice size in bytes
    images: list[np.ndarray]  # each voice's memory image (HEADER_BYTES .. HEADER_BYTES + vs)
    sites: dict[int, list]  # node id -> its variant's trap sites
    node_ids: list[int]
    base: int = HEADER_BYTES  # where voice 0 lives (voice v at base + v * vs)
    outputs: list[int] = field(default_factory=list)  # the graph outputs' buffers, voice-relative

    def output(self, memory: np.ndarray, voice: int, index: int, n: int) -> np.ndarray:
        """Voice ``voice``'s samples of graph output ``index`` in ``memory``."""
        at = self.base + voice * self.vs + self.outputs[index]
        return memory[at : at + 8 * n].view(np.float64)


def voice_body(
    make: Callable[[int], Graph], voices: int, inline_math: bool = True, max_block: int = MAX_BLOCK
) -> VoiceBody:
    """The per-voice body of the graph ``make(0)`` (state in locals), with the memory images of
    ``make(v)`` for each voice (the same structure, other parameters and events)."""
    graph = make(0)
    ir = graph.to_ir()
    states = [GraphState.from_graph(make(v), max_block) for v in range(voices)]
    layout = states[0].layout
    vs = layout.render_area - HEADER_BYTES
    builder = SkeletonBuilder(ir, layout, state_in_locals=True)
    builder.inline_math = inline_math
    locals_: dict[str, T] = {"i": I32, "i8": I32, "nb": I32, "ev_at": I32, "ev_head": I32}
    state: dict[int, dict[str, T]] = builder.seg_state
    called: set[str] = set()
    functions: dict[str, k.Function] = {}
    syncs = []
    steps: list[k.Stmt] = []
    param_loads: list[tuple[str, int]] = []  # (local, voice-relative address) of held value inputs
    i8 = loc(I32, "i8")
    frame_now = p(Op.I64_ADD, k.Load(I64, c32(FRAME)), p(Op.I64_EXTEND_I32_U, loc(I32, "i")))
    for nid in ir.order:
        node = builder.nodes[nid]
        nl = layout.nodes[nid]
        code = builder.variant(node)
        locals_.update(code.process.locals)
        called |= code.called
        for fn in code.functions:
            functions.setdefault(fn.name, fn)
        renames = {}
        st = state.setdefault(nid, {})
        for name in code.state_used:
            st[name] = SCALAR_TYPES[nl.scalars[name][1]]
            renames[f"S_{name}"] = f"n{nid}_{name}"
        # value inputs the code reads held in locals (as the skeleton does): loaded before the
        # loop, again after a ramp step
        held = sorted(code.params_used)
        for name in held:
            renames[f"P_{name}"] = f"p{nid}_{name}"
            locals_[f"p{nid}_{name}"] = F64
            param_loads.append((f"p{nid}_{name}", nl.params[name].value - HEADER_BYTES))

        def instance(c: k.Code, nid=nid, code=code, renames=renames) -> k.Instance:
            inst = k.Instance(code=c, renames=dict(renames))
            if renames and wasm.FLUSH_MARK in wasm.code_text(c):
                syncs.append((nid, inst, code))
            return inst

        nb = loc(I32, "nb")
        steps += [
            k.SetLocal(name="nb", value=p(Op.I32_ADD, VB, c32(nl.base - HEADER_BYTES))),
        ]  # no NODE store: a trap path stores nb there itself (as the skeleton's voice bodies)
        for name, slots in nl.params.items():
            functions.setdefault("ramp", ramp_function())
            step: list[k.Stmt] = [k.Invoke(func="ramp", args=[nb, c32(nl.rel(slots.value))])]
            if name in held:
                step.append(k.SetLocal(name=f"p{nid}_{name}", value=k.Load(F64, nb, nl.rel(slots.value))))
            steps.append(
                k.If(
                    k.NOSITE,
                    p(Op.I64_NE, k.Load(I64, nb, nl.rel(slots.remaining)), k.Const(I64, 0)),
                    step,
                    [],
                )
            )
        for e in node.endpoints:
            if e.direction != "input" or e.kind == "event":
                continue
            srcs = builder.sources(nid, e.name)
            if not srcs:
                continue
            terms: list[k.Expr] = []
            for src, port in srcs:
                state.setdefault(src, {})[port] = F64
                terms.append(loc(F64, f"n{src}_{port}"))
            if e.kind == "value":
                terms.insert(0, k.Load(F64, nb, nl.rel(nl.params[e.name].value)))
            locals_[f"in_{e.name}"] = F64
            steps.extend(builder.sum_into(f"in_{e.name}", terms))
        for e in node.endpoints:
            if e.direction != "input" or e.kind != "event":
                continue
            q = nl.external_queues[e.name]
            qrel = q.base - HEADER_BYTES
            head = loc(I32, "ev_head")
            at = loc(I32, "ev_at")
            steps.append(
                k.Loop(
                    label="ev",
                    cond=None,
                    body=[
                        k.SetLocal(name="ev_head", value=k.Load(I32, VB, qrel + 4)),
                        k.Exit(label="ev", cond=p(Op.I32_GE_U, head, k.Load(I32, VB, qrel))),
                        k.SetLocal(
                            name="ev_at",
                            value=p(
                                Op.I32_ADD,
                                p(Op.I32_ADD, VB, c32(qrel + 8)),
                                p(Op.I32_MUL, head, c32(EVENT_BYTES)),
                            ),
                        ),
                        k.Exit(label="ev", cond=p(Op.I64_GT_S, k.Load(I64, at), frame_now)),
                        k.Store(type=I32, addr=VB, offset=qrel + 4, value=p(Op.I32_ADD, head, c32(1))),
                        instance(code.handlers[e.name]),
                    ],
                )
            )
        steps.append(instance(code.process))
        for e in node.endpoints:
            if e.direction == "output" and e.kind == "stream":
                st[e.name] = F64
                steps.append(
                    k.Store(
                        type=F64,
                        addr=p(Op.I32_ADD, VB, i8),
                        offset=nl.buffers[e.name] - HEADER_BYTES,
                        value=loc(F64, f"n{nid}_{e.name}"),
                    )
                )
    for nid, inst, code in syncs:
        builder.sync(nid, inst, code)
    prologue: list[k.Stmt] = [k.SetLocal(name=name, value=k.Load(F64, VB, rel)) for name, rel in param_loads]
    epilogue: list[k.Stmt] = []
    for nid in ir.order:
        for name, t in state.get(nid, {}).items():
            rel = layout.nodes[nid].scalars[name][0] - HEADER_BYTES
            locals_[f"n{nid}_{name}"] = t
            prologue.append(k.SetLocal(name=f"n{nid}_{name}", value=k.Load(t, VB, rel)))
            epilogue.append(k.Store(type=t, addr=VB, offset=rel, value=loc(t, f"n{nid}_{name}")))
    i = loc(I32, "i")
    loop = k.Loop(
        label="sample",
        cond=None,
        body=[
            k.Exit(label="sample", cond=p(Op.I32_GE_U, i, loc(I32, "n"))),
            k.SetLocal(name="i8", value=p(Op.I32_SHL, i, c32(3))),
            *steps,
            k.SetLocal(name="i", value=p(Op.I32_ADD, i, c32(1))),
        ],
    )
    body = [
        k.Store(type=I32, addr=c32(SEGMENT), offset=0, value=c32(0)),
        *prologue,
        k.SetLocal(name="i", value=c32(0)),
        loop,
        *epilogue,
    ]
    if "trap" in called:
        functions["trap"] = trap_function()
    images = [s.bytes[HEADER_BYTES : HEADER_BYTES + vs].copy() for s in states]
    math = sorted(called - {"trap"})
    outputs = [layout.nodes[nid].buffers[name] - HEADER_BYTES for nid, name in ir.outputs]
    return VoiceBody(
        body,
        locals_,
        list(functions.values()),
        math,
        vs,
        images,
        builder.sites,
        list(ir.order),
        outputs=outputs,
    )


# --------------------------------------------------------------------------- running
def _module(vb: VoiceBody, run: k.Function, voices: int, extra: list[k.Function] | None = None) -> k.Module:
    imports = []
    for name in vb.math:
        fn = wasm_math.resolve(name).function
        imports.append(k.Import("math", name, tuple(t for _, t in fn.params), fn.results))
    pages = (vb.base + voices * vb.vs + 65535) // 65536
    return k.Module(
        [*vb.functions, *(extra or []), run],
        imports=imports,
        globals=[k.Global(wasm_math.ERROR_GLOBAL, I32, 0, mutable=True, export="math_error")],
        memory_pages=pages,
    )


def sequential_module(vb: VoiceBody, voices: int) -> k.Module:
    """``run(n)``: the per-voice body for voice 0, then 1, ... (the reference meaning; LANE holds
    the voice running, as the skeleton keeps it when it runs a group's voices one by one)."""
    v = loc(I32, "v")
    body = [
        k.SetLocal(name="v", value=c32(0)),
        k.Loop(
            label="voices",
            cond=p(Op.I32_LT_U, v, c32(voices)),
            body=[
                k.SetLocal(name="vb", value=p(Op.I32_ADD, c32(vb.base), p(Op.I32_MUL, v, c32(vb.vs)))),
                k.Store(type=I32, addr=c32(LANE), offset=0, value=v),
                *vb.body,
                k.SetLocal(name="v", value=p(Op.I32_ADD, v, c32(1))),
            ],
        ),
    ]
    locals_ = {**vb.locals, "vb": I32, "v": I32}
    run = k.Function("run", [("n", I32)], (), locals_, body, export="run")
    return _module(vb, run, voices)


def lane_module(vb: VoiceBody, voices: int, width: int = 2, lb: LaneBody | None = None) -> k.Module:
    """``run(n)``: the lane body, ``width`` voices at a time (``voices`` a multiple of it)."""
    lb = lb or lanes(vb.body, vb.locals, width)
    g = loc(I32, "g")
    inputs: list[k.Stmt] = []
    for lane in range(width):
        v = p(Op.I32_ADD, g, c32(lane))
        inputs.append(k.SetLocal(name=f"v__{lane}", value=v))
        inputs.append(
            k.SetLocal(
                name=f"vb__{lane}",
                value=p(Op.I32_ADD, c32(vb.base), p(Op.I32_MUL, loc(I32, f"v__{lane}"), c32(vb.vs))),
            )
        )
    body = [
        k.SetLocal(name="g", value=c32(0)),
        k.Loop(
            label="groups",
            cond=p(Op.I32_LT_U, g, c32(voices)),
            body=[*inputs, *lb.body, k.SetLocal(name="g", value=p(Op.I32_ADD, g, c32(width)))],
        ),
    ]
    run = k.Function("run", [("n", I32)], (), {**lb.locals, "g": I32}, body, export="run")
    return _module(vb, run, voices, lb.functions)


class Runner:
    """One instance of a module on memory holding the voices' images."""

    def __init__(self, module: k.Module, vb: VoiceBody, voices: int) -> None:
        self.text = wasm.module_text(module, lambda where: 0)
        self.store = wasmtime.Store(engine())
        self.mathlib = mathlib = wasmtime.Instance(self.store, math_module(), []).exports(self.store)
        imports = [mathlib[imp.name] for imp in module.imports]
        self.instance = wasmtime.Instance(self.store, wasmtime.Module(self.store.engine, self.text), imports)
        exports = self.instance.exports(self.store)
        self.memory = exports["memory"]
        self.run_fn = exports["run"]
        raw = self.memory.data_ptr(self.store)
        size = self.memory.data_len(self.store)
        self.bytes = np.ctypeslib.as_array(raw, shape=(size,))
        for v in range(voices):
            at = vb.base + v * vb.vs
            self.bytes[at : at + vb.vs] = vb.images[v % len(vb.images)]
        self.header(INTERRUPT)[0] = LOOP_BUDGET

    def header(self, slot: int) -> np.ndarray:
        return self.bytes[slot : slot + 4].view(np.int32)

    def run(self, n: int) -> None:
        self.run_fn(self.store, n)

    def math_error(self) -> int:
        """The error code the math library (imported, or pasted in: the f64x2 forms) left."""
        own = self.instance.exports(self.store)["math_error"].value(self.store)
        return own or self.mathlib[wasm_math.ERROR_GLOBAL].value(self.store)


def reference_memory(module: k.Module, vb: VoiceBody, voices: int, n: int, size: int) -> np.ndarray:
    """The memory after ``run(n)`` of ``module`` on the reference backend (the IR's other
    evaluator), from the voices' images as :class:`Runner` starts: compare with a Runner's."""
    from oscen.jit.backends import reference as ref
    from oscen.jit.backends.reference_graph import library

    memory = np.zeros(size, dtype=np.uint8)
    for v in range(voices):
        at = vb.base + v * vb.vs
        memory[at : at + vb.vs] = vb.images[v % len(vb.images)]
    memory[INTERRUPT : INTERRUPT + 4] = np.array([LOOP_BUDGET], dtype=np.int32).view(np.uint8)
    lib = library().instantiate()
    inst = ref.CompiledModule(module).instantiate(
        memory, {imp.name: lib.functions[imp.name] for imp in module.imports}
    )
    inst.call("run", n)
    return memory


# --------------------------------------------------------------------------- a voice of straight-line f64 work
S = (6.283185307179586, -41.341702240399755, 81.60524927607341, -76.7058597527985, 42.05869392378516)


class PolySine(Node):
    """A sine by a polynomial of the phase in plain arithmetic with min/max folds (the shape of
    the oscillator's branch-free sine): straight-line f64 work, all of it packable."""

    frequency = ValueInput(440.0)
    output = StreamOutput()

    def __init__(self, frequency: float = 440.0) -> None:
        self.frequency = float(frequency)
        self.phase = 0.0

    def process(self, sample_rate: float) -> None:
        q = min(max(self.phase, -2251799813685248.0), 2251799813685248.0)
        x = q - ((q + 6755399441055744.0) - 6755399441055744.0)
        x = min(x, 0.5 - x)
        x = max(x, -0.5 - x)
        z = x * x
        r = S[4] * z + S[3]
        r = r * z + S[2]
        r = r * z + S[1]
        r = r * z + S[0]
        self.output = x * r
        self.phase = self.phase + self.frequency / sample_rate


def poly_lowpass(v: int) -> Graph:
    g = Graph(44100.0)
    osc = g.add_node(PolySine(100.0 + 77.0 * v))
    lp = g.add_node(IirLowpass(900.0 + 200.0 * v))
    g.connect(osc.output, lp.input)
    g.set_output(lp.output)
    return g
