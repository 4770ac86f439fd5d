"""Random graphs of library nodes as plain data (:class:`GraphSpec`), for the property tests.

The graphs stay bounded and non-chaotic (see tests/test_jit_properties.py): parameters are driven
only by sources, every processor has a gain of at most about one, and feedback is scaled down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from oscen.delay import Delay
from oscen.envelopes import AdsrEnvelope
from oscen.filters import (
    IirBandpass,
    IirHighpass,
    IirHighShelf,
    IirLowpass,
    IirLowShelf,
    IirNotch,
    IirPeak,
    TptFilter,
)
from oscen.gain import Add, Constant, Gain, Mixer, Multiply
from oscen.graph import Graph, Node, NodeHandle
from oscen.noise import Noise
from oscen.oscillators import Oscillator

SR = 8000.0

SOURCES = ["sine", "saw", "square", "triangle", "noise", "pink", "gauss", "const", "adsr"]
PROCESSORS = [
    "lowpass",
    "highpass",
    "bandpass",
    "notch",
    "peak",
    "lowshelf",
    "highshelf",
    "tpt",
    "gain",
    "add",
    "mul",
    "mixer",
    "delay",
]


def _u(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


# value inputs each kind may be set to (at construction and by the random edits), kept in ranges
# where the node's gain stays at most about 1
PARAMS: dict[str, dict[str, st.SearchStrategy[float]]] = {
    "sine": {"frequency": _u(-2000, 3000), "amplitude": _u(0, 1)},
    "saw": {"frequency": _u(20, 5000), "amplitude": _u(0, 1)},
    "square": {"frequency": _u(20, 3000), "amplitude": _u(0, 1), "pulse_width": _u(0, 1)},
    "triangle": {"frequency": _u(-500, 3000), "amplitude": _u(0, 1)},
    "noise": {"amplitude": _u(0, 1)},
    "pink": {"amplitude": _u(0, 1)},
    "gauss": {"amplitude": _u(0, 0.5)},
    "const": {"value": _u(-1, 1)},
    "adsr": {"attack": _u(0, 0.02), "decay": _u(0, 0.05), "sustain": _u(0, 1), "release": _u(0, 0.05)},
    "lowpass": {"cutoff": _u(0, 5000), "q": _u(0.1, 0.7)},
    "highpass": {"cutoff": _u(0, 5000), "q": _u(0.1, 0.7)},
    "bandpass": {"cutoff": _u(10, 5000), "q": _u(0.1, 5)},
    "notch": {"cutoff": _u(10, 5000), "q": _u(0.1, 5)},
    "peak": {"cutoff": _u(10, 3000), "q": _u(0.3, 3), "gain_db": _u(-12, 0)},
    "lowshelf": {"cutoff": _u(10, 3000), "q": _u(0.3, 0.7), "gain_db": _u(-12, 0)},
    "highshelf": {"cutoff": _u(10, 3000), "q": _u(0.3, 0.7), "gain_db": _u(-12, 0)},
    "tpt": {"cutoff": _u(0, 5000), "q": _u(0.1, 0.7)},
    "gain": {"gain": _u(-1, 1)},
    "add": {"b": _u(-1, 1)},
    "mul": {"b": _u(-1, 1)},
    "mixer": {"level0": _u(-0.5, 0.5), "level1": _u(-0.5, 0.5)},
    "delay": {"delay_time": _u(0, 0.05), "feedback": _u(0, 0.3)},
}
STREAM_INPUTS = {
    "lowpass": ["input"], "highpass": ["input"], "bandpass": ["input"], "notch": ["input"], "peak": ["input"],
    "lowshelf": ["input"], "highshelf": ["input"], "tpt": ["input"], "gain": ["input"], "add": ["a"],
    "mul": ["a"], "mixer": ["input0", "input1"], "delay": ["input"],
}  # fmt: skip
MODULATED = {"sine": ["fm", "pm"], "saw": ["fm"], "square": ["pm"], "triangle": ["fm"], "tpt": ["cutoff_mod"]}
OUTPUTS = {"tpt": ["lowpass", "bandpass", "highpass"]}


def make_node(kind: str, p: dict[str, float], seed: int) -> Node:
    if kind in ("sine", "saw", "square", "triangle"):
        return Oscillator(
            p["frequency"],
            p["amplitude"],
            kind,
            p.get("pulse_width", 0.5),
            band_limited=seed % 2 == 1,
            phase=(seed % 7) / 7.0,
        )
    if kind in ("noise", "pink", "gauss"):
        return Noise(p["amplitude"], "pink" if kind == "pink" else "white", kind == "gauss", seed)
    if kind == "const":
        return Constant(p["value"])
    if kind == "adsr":
        return AdsrEnvelope(p["attack"], p["decay"], p["sustain"], p["release"])
    if kind in ("peak", "lowshelf", "highshelf"):
        cls = {"peak": IirPeak, "lowshelf": IirLowShelf, "highshelf": IirHighShelf}[kind]
        return cls(p["cutoff"], p["q"], p["gain_db"])
    if kind in ("lowpass", "highpass", "bandpass", "notch"):
        cls = {"lowpass": IirLowpass, "highpass": IirHighpass, "bandpass": IirBandpass, "notch": IirNotch}[
            kind
        ]
        return cls(p["cutoff"], p["q"])
    if kind == "tpt":
        return TptFilter(p["cutoff"], p["q"])
    if kind == "gain":
        return Gain(p["gain"])
    if kind == "add":
        return Add(p["b"])
    if kind == "mul":
        return Multiply(p["b"])
    if kind == "mixer":
        return Mixer(2, levels=[p["level0"], p["level1"]])
    if kind == "delay":
        return Delay(p["delay_time"], p["feedback"], max_delay=0.06)
    raise ValueError(kind)


@dataclass
class GraphSpec:
    """A random graph as plain data, built afresh for each engine."""

    kinds: list[str]
    params: list[dict[str, float]]
    links: list[tuple[int, str, int, str]] = field(default_factory=list)  # (source, output, target, input)
    feedback: tuple[int, str, int] | None = None  # (source, output, delay) closed through a small Gain
    outputs: list[tuple[int, str]] = field(default_factory=list)

    def build(self) -> Graph:
        graph = Graph(SR)
        handles = self.add_to(graph)
        graph.set_output(*[getattr(handles[i], o) for i, o in self.outputs])
        return graph

    def add_to(self, graph: Graph, prefix: str = "") -> list[NodeHandle]:
        """Add the nodes (labelled ``<prefix>n<i>``) and links to ``graph``; their handles."""
        handles = [
            graph.add_node(make_node(k, p, i), f"{prefix}n{i}")
            for i, (k, p) in enumerate(zip(self.kinds, self.params, strict=True))
        ]
        for s, out, t, inp in self.links:
            graph.connect(getattr(handles[s], out), getattr(handles[t], inp))
        if self.feedback is not None:
            s, out, d = self.feedback
            back = graph.add_node(Gain(0.02), f"{prefix}back")
            graph.connect(getattr(handles[s], out), back.input)
            graph.connect(back.output, handles[d].input)
        return handles

    def __repr__(self) -> str:
        nodes = ", ".join(f"n{i}={k}{self.params[i]}" for i, k in enumerate(self.kinds))
        return f"GraphSpec({nodes}; links={self.links}; feedback={self.feedback}; outputs={self.outputs})"


def outputs_of(kind: str) -> list[str]:
    return OUTPUTS.get(kind, ["output"])


@st.composite
def graph_specs(draw: st.DrawFn) -> GraphSpec:
    n_sources = draw(st.integers(1, 3))
    n_proc = draw(st.integers(1, 4))
    kinds = [draw(st.sampled_from(SOURCES)) for _ in range(n_sources)]
    kinds += [draw(st.sampled_from(PROCESSORS)) for _ in range(n_proc)]
    params = [{name: draw(s) for name, s in PARAMS[k].items()} for k in kinds]
    spec = GraphSpec(kinds, params)
    sources = list(range(n_sources))
    for t in range(len(kinds)):
        kind = kinds[t]
        # modulation inputs and parameters: from sources only (so that loops stay linear)
        for inp in MODULATED.get(kind, []):
            candidates = [s for s in sources if s < t]
            if candidates and draw(st.booleans()):
                spec.links.append((draw(st.sampled_from(candidates)), "output", t, inp))
        if t >= n_sources and draw(st.integers(0, 3)) == 0:
            names = [p for p in PARAMS[kind] if p != "feedback"]  # a delay's feedback stays below 0.3
            spec.links.append((draw(st.sampled_from(sources)), "output", t, draw(st.sampled_from(names))))
        # stream inputs of processors: one to three earlier nodes (summed), any kind (fan-out)
        for inp in STREAM_INPUTS.get(kind, []):
            for _ in range(draw(st.integers(1, 3))):
                s = draw(st.integers(0, t - 1))
                spec.links.append((s, draw(st.sampled_from(outputs_of(kinds[s]))), t, inp))
    spec.links = list(dict.fromkeys(spec.links))  # a connection is made once
    # a feedback loop: a later processor back into a delay's input
    delays = [i for i, k in enumerate(kinds) if k == "delay"]
    if delays and draw(st.booleans()):
        d = draw(st.sampled_from(delays))
        later = [i for i in range(d, len(kinds))]
        s = draw(st.sampled_from(later))
        spec.feedback = (s, draw(st.sampled_from(outputs_of(kinds[s]))), d)
    all_outputs = [(i, o) for i, k in enumerate(kinds) for o in outputs_of(k)]
    spec.outputs = draw(st.lists(st.sampled_from(all_outputs), min_size=1, max_size=3, unique=True))
    if (len(kinds) - 1, outputs_of(kinds[-1])[0]) not in spec.outputs:
        spec.outputs.append((len(kinds) - 1, outputs_of(kinds[-1])[0]))
    return spec
