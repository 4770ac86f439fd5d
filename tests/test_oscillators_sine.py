"""The sine of the oscillators and LFOs (oscen.sine.sin_cycles): accuracy against libm and against an
extended-precision reference, exact special values and symmetries, a clean spectrum, exact pitch,
and bit-exact agreement of compiled code with the interpreter."""

from __future__ import annotations

import math

import numpy as np
import pytest
from node_harness import SR, assert_compilable, assert_jit_matches, run, run1
from scipy.signal import windows

from oscen.gain import Gain
from oscen.graph import Graph
from oscen.graph.endpoints import StreamInput, StreamOutput
from oscen.graph.node import Node
from oscen.modulation import Lfo
from oscen.oscillators import RESYNC_SAMPLES, SAW, SINE, Oscillator
from oscen.sine import SIN_COEFFICIENTS, sin_cycles, sin_cycles_array

SR48 = 48000.0
SPUR_LIMIT_DB = -140.0


def phases() -> np.ndarray:
    """2**20 uniform phases in [0, 1) plus dense runs of consecutive floats around 0, 1/4, 1/2, 3/4
    (where the reduction folds and the sine is extreme or zero): 1.2 million in all."""
    rng = np.random.default_rng(2026)
    parts = [rng.random(2**20), np.arange(20000) * 2.0**-60]
    for c in (0.25, 0.5, 0.75):
        parts.append(c + np.arange(-20000, 20000) * np.spacing(c))
    p = np.concatenate(parts)
    return p[(p >= 0.0) & (p < 1.0)]


def bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).view(np.int64)


def test_the_array_mirror_is_the_scalar_function_bit_for_bit() -> None:
    p = phases()[::10]
    p = np.concatenate([p, -p, p + 7.0, [0.0, -0.0, 1e20, -1e20, 2.0**51 - 0.5, math.inf, -math.inf]])
    scalar = np.array([sin_cycles(float(v)) for v in p])
    np.testing.assert_array_equal(bits(sin_cycles_array(p)), bits(scalar))


def test_accuracy_against_libm_and_an_extended_precision_reference() -> None:
    p = phases()
    assert len(p) >= 10**6
    got = sin_cycles_array(p)
    libm = np.array([math.sin(2.0 * math.pi * v) for v in p.tolist()])
    # libm itself is up to ~7e-16 from sin(2 pi p): 2 pi p is rounded before the sine
    assert np.max(np.abs(got - libm)) <= 1e-15
    if np.finfo(np.longdouble).eps > 1e-18:
        pytest.skip("no extended-precision long double on this platform")
    pi = np.longdouble("3.14159265358979323846264338327950288")
    exact = np.sin(2 * pi * p.astype(np.longdouble))
    assert float(np.max(np.abs(got - exact))) <= 4e-16  # measured 3.2e-16: 3 ulp of a result near 1


def test_exact_values_bounds_and_symmetries() -> None:
    assert sin_cycles(0.0) == 0.0 and math.copysign(1.0, sin_cycles(-0.0)) == -1.0
    assert sin_cycles(0.25) == 1.0 and sin_cycles(0.75) == -1.0 and sin_cycles(-0.25) == -1.0
    assert sin_cycles(0.5) == 0.0 and sin_cycles(1.0) == 0.0  # libm gives 1.2e-16 and -2.4e-16
    assert sin_cycles(1.0 / 12.0) == 0.5
    p = phases()
    y = sin_cycles_array(p)
    assert np.max(np.abs(y)) <= 1.0  # never beyond full scale, also next to the peaks
    np.testing.assert_array_equal(sin_cycles_array(-p), -y)  # odd, exactly (but sin_cycles(+-1/2) = +0.0)
    half = p[p <= 0.5]  # sin 2 pi (1/2 - p) = sin 2 pi p; 1/2 - p is exact for p in [1/4, 1/2]
    quarter = half[half >= 0.25]
    np.testing.assert_array_equal(bits(sin_cycles_array(0.5 - quarter)), bits(sin_cycles_array(quarter)))


def test_whole_cycles_change_nothing_and_huge_phases_are_zero() -> None:
    # p + k is exact for these p (multiples of 2**-20): a whole number of cycles gives the same sine
    p = np.arange(2**20) / 2.0**20
    y = sin_cycles_array(p)
    for k in (1.0, -1.0, 5.0, -1024.0, 2.0**30):
        np.testing.assert_array_equal(bits(sin_cycles_array(p + k)), bits(y), err_msg=f"{k} cycles")
    # beyond 2**51 every float is a multiple of 1/2: its sine is 0 (libm would say so within 1e-5)
    for big in (2.0**51 + 0.5, 2.0**52 + 1.0, 1e20, -1e300, math.inf, -math.inf):
        assert sin_cycles(big) == 0.0, big
    assert math.isnan(sin_cycles(math.nan))


def test_the_coefficients_are_near_the_taylor_series() -> None:
    # a typo in one coefficient would break the accuracy test; this says which one
    taylor = [(-1) ** k * (2 * math.pi) ** (2 * k + 1) / math.factorial(2 * k + 1) for k in range(9)]
    for k, (c, t) in enumerate(zip(SIN_COEFFICIENTS, taylor, strict=True)):
        assert c == pytest.approx(t, rel=0.02 if k < 7 else 0.2), k


# ----------------------------------------------------------------------------- the oscillator
def spur_levels(y: np.ndarray, freq: float, sample_rate: float = SR48, guard: int = 4) -> tuple[float, float]:
    """(tone, strongest spur) in dBFS: periodic Blackman-Harris window over the whole render, one
    FFT; for a tone on a bin its window spreads over exactly +/-3 bins, so every other bin (beyond
    ``guard``) holds only harmonics, spurs and the rounding noise."""
    w = windows.blackmanharris(len(y), sym=False)
    amp = 2.0 * np.abs(np.fft.rfft(y * w)) / w.sum()
    k0 = int(round(freq * len(y) / sample_rate))
    away = np.ones(len(amp), dtype=bool)
    away[k0 - guard : k0 + guard + 1] = False
    return float(20.0 * np.log10(amp[k0])), float(20.0 * np.log10(max(np.max(amp[away]), 1e-300)))


@pytest.mark.parametrize("freq", [1000.0, 997.0])
def test_spectrum_has_no_spur_above_minus_140_dbfs(freq: float) -> None:
    y = run1(Oscillator.sine(freq, 1.0), int(SR48), SR48)
    tone, spur = spur_levels(y, freq)
    assert tone == pytest.approx(0.0, abs=1e-9)
    assert spur < SPUR_LIMIT_DB, spur  # measured about -298 dBFS: the float64 rounding floor


def test_the_spur_measurement_sees_a_poor_sine() -> None:
    # the same phases through a degree-9 Taylor sine (error 3e-6 at the fold): spurs near -125 dBFS
    n, freq = int(SR48), 997.0
    p = np.arange(n) * (freq / SR48) % 1.0
    x = p - np.round(p)
    x = np.where(x > 0.25, 0.5 - x, np.where(x < -0.25, -0.5 - x, x)) * (2.0 * np.pi)
    poor = x - x**3 / 6 + x**5 / 120 - x**7 / 5040 + x**9 / 362880
    assert spur_levels(poor, freq)[1] > SPUR_LIMIT_DB


@pytest.mark.parametrize(("freq", "sample_rate"), [(997.0, 48000.0), (1000.0, 48000.0), (440.0, 44100.0)])
def test_pitch_is_exact(freq: float, sample_rate: float) -> None:
    # one second holds a whole number of cycles: with the exact pitch the (unwindowed) DFT has a
    # single line, and a frequency error of 1e-8 Hz would already leak -190 dB into the next bins
    n = int(sample_rate)
    y = run1(Oscillator.sine(freq, 1.0), n, sample_rate)
    amp = 2.0 * np.abs(np.fft.rfft(y)) / n
    k0 = int(freq)
    assert amp[k0] == pytest.approx(1.0, abs=1e-12)
    assert 20.0 * np.log10(np.max(np.delete(amp, k0))) < -200.0  # measured -242 dB and below


def node_phases(increments: np.ndarray, phase: float = 0.0) -> np.ndarray:
    """The phase each sample reads, by the node's own arithmetic (``phase + increment``, wrapped
    by one subtraction or, past that, by floor): the truth the oscillator's sine must follow."""
    out = np.empty(len(increments))
    for i, inc in enumerate(increments.tolist()):
        out[i] = phase
        phase = phase + inc
        phase = phase - 1.0 if phase >= 1.0 else phase
        if phase >= 1.0 or phase < 0.0:
            phase = phase - math.floor(phase)
            if phase >= 1.0:
                phase = 0.0
    return out


def resync_samples(n: int) -> np.ndarray:
    """The samples at which a fresh steady sine takes the polynomial: the first (no recurrence
    yet), the second (the increment repeats: restart) and every RESYNC_SAMPLES after it."""
    return np.concatenate([[0], np.arange(1, n, int(RESYNC_SAMPLES))])


@pytest.mark.parametrize("freq", [441.0, 997.0, 0.15, 13000.0, -440.0])
def test_the_rotation_follows_sin_cycles_of_the_phase(freq: float) -> None:
    # exactly the polynomial of the phase where the recurrence restarts, within 1e-12 between
    # (measured at most 2.6e-13 over 49 frequencies, benchmarks/bench_sine.py section 4)
    n = 5000
    y = run1(Oscillator.sine(freq), n)
    expected = sin_cycles_array(node_phases(np.full(n, freq * (1.0 / SR))))
    at = resync_samples(n)
    np.testing.assert_array_equal(bits(y[at]), bits(expected[at]))
    assert np.max(np.abs(y - expected)) < 1e-12
    if freq != 0.15:
        assert np.count_nonzero(y != expected) > n // 2  # the recurrence really runs


def test_the_rotation_stays_on_the_unit_circle() -> None:
    osc = Oscillator.sine(1234.5)
    radius = np.empty(3 * int(RESYNC_SAMPLES))
    for i in range(len(radius)):
        osc.process(SR)
        radius[i] = math.hypot(osc._c, osc._s)
    assert np.max(np.abs(radius[1:] - 1.0)) < 1e-12  # measured ~1e-13 (sample 0 has no recurrence)


def test_fm_and_pm_take_the_polynomial_every_sample() -> None:
    # what the oscillator computed before the recurrence, bit for bit: an increment that changes
    # every sample (FM) or a phase offset (PM) never runs the recurrence
    n, freq = 3000, 440.0
    rng = np.random.default_rng(7)
    fm = rng.uniform(-300.0, 300.0, n)
    y = run1(Oscillator.sine(freq, 0.5), n, fm=fm)
    np.testing.assert_array_equal(
        bits(y), bits(0.5 * sin_cycles_array(node_phases((freq + fm) * (1.0 / SR))))
    )
    pm = rng.uniform(0.0, 0.9, n)
    y = run1(Oscillator.sine(freq, 0.5), n, pm=pm)
    p = node_phases(np.full(n, freq * (1.0 / SR))) + pm
    p = np.where(p >= 1.0, p - 1.0, p)
    np.testing.assert_array_equal(bits(y), bits(0.5 * sin_cycles_array(p)))


def test_frequency_changes_restart_the_recurrence() -> None:
    # a new frequency: the polynomial for that sample, the recurrence restarted on the next
    n = 9000
    freqs = np.full(n, 500.0)
    for at, f in ((1500, 997.0), (1501, 998.0), (4000, 1000.0), (7777, 1000.5)):
        freqs[at:] = f
    y = run(Oscillator.sine(500.0), n, inputs={"frequency": freqs})["output"]
    expected = sin_cycles_array(node_phases(freqs * (1.0 / SR)))
    for at in (0, 1, 1500, 1501, 1502, 4000, 4001, 7777, 7778, 7778 + int(RESYNC_SAMPLES)):
        assert y[at] == expected[at], at
    assert np.max(np.abs(y - expected)) < 1e-12


def test_switching_waveforms_keeps_the_phase() -> None:
    osc = Oscillator.sine(441.0)
    first = run1(osc, 300)
    osc.waveform = SAW
    run1(osc, 123)
    osc.waveform = SINE
    again = run1(osc, 300)
    phases = node_phases(np.full(723, 441.0 * (1.0 / SR)))
    np.testing.assert_allclose(first, sin_cycles_array(phases[:300]), rtol=0, atol=1e-12)
    assert again[0] == sin_cycles_array(phases[423:424])[0]  # the polynomial again, not a stale recurrence
    np.testing.assert_allclose(again, sin_cycles_array(phases[423:]), rtol=0, atol=1e-12)


def compiled_render(graph: Graph, n: int) -> np.ndarray:
    jit = pytest.importorskip("oscen.jit")
    ir = graph.to_ir()
    compiled = jit.CraneliftJit(max_block=4096).compile(ir)
    state = jit.GraphState.from_graph(graph, max_block=4096, ir=ir)
    blocks = [compiled.process_block(state, min(4096, n - start)) for start in range(0, n, 4096)]
    return np.concatenate(blocks, axis=-1)


@pytest.mark.parametrize("freq", [1000.0, 997.0])
def test_a_minute_of_the_recurrence_has_no_spur_above_minus_140_dbfs(freq: float) -> None:
    # compiled (bit for bit the interpreter, tested below): 60 s, ~2800 restarts of the recurrence
    n = 60 * int(SR48)
    graph = Graph(SR48)
    osc = graph.add_node(Oscillator.sine(freq, 1.0))
    graph.set_output(osc.output)
    y = compiled_render(graph, n).reshape(-1)
    tone, spur = spur_levels(y, freq)
    assert tone == pytest.approx(0.0, abs=1e-9)
    assert spur < SPUR_LIMIT_DB, spur  # measured below -250 dBFS


def test_after_frequency_changes_the_spectrum_stays_clean() -> None:
    # four frequencies, then one second of 1 kHz measured on its own
    n0, n = 20000, int(SR48)
    freqs = np.concatenate([np.repeat([440.0, 1234.5, 997.0, 1000.0], n0 // 4), np.full(n, 1000.0)])
    y = run(Oscillator.sine(440.0), n0 + n, SR48, inputs={"frequency": freqs})["output"][n0:]
    tone, spur = spur_levels(y, 1000.0)
    assert tone == pytest.approx(0.0, abs=1e-9)
    assert spur < SPUR_LIMIT_DB, spur


# ----------------------------------------------------------------------------- compiled code
class SineOf(Node):
    """Test node: the sine of its input times a constant scale (any phase, negative or huge)."""

    input = StreamInput()
    output = StreamOutput()

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    _sin_cycles = staticmethod(sin_cycles)

    def process(self, sample_rate: float) -> None:
        self.output = self._sin_cycles(self.input * self.scale)


@pytest.mark.parametrize("scale", [1.0, 2.0, 3.7e3, 1e15, 1e18])
def test_compiled_sin_cycles_is_bit_exact(scale: float) -> None:
    # white noise in [-0.5, 0.5) times the scale: every fold, negative phases, the clamp
    assert_jit_matches(lambda: SineOf(scale), n=20000, exact=True)


@pytest.mark.parametrize("shape", ["sine", "triangle", "saw", "ramp", "square", "random"])
def test_lfo_compiled_is_bit_exact(shape: str) -> None:
    # noise into the phase offset (the wrap runs both ways) and into the rate (Hz, through zero)
    assert_jit_matches(lambda: Lfo(30.0, shape, seed=5), n=8000, noise_into=("phase", "rate"), exact=True)


def test_lfo_sine_is_in_the_compilable_subset() -> None:
    assert_compilable(Lfo(3.0, "sine"))


def sines_build(voices: int) -> Graph:
    graph = Graph(SR)
    mix = graph.add_node(Gain(1.0), "mix")
    for k in range(voices):
        osc = graph.add_node(Oscillator.sine(110.0 * 1.25**k, 0.2), f"osc{k}")
        graph.connect(osc.output, mix.input)
    graph.set_output(mix.output)
    return graph


@pytest.mark.parametrize("lanes", [1, 2])
def test_compiled_rotation_is_bit_exact_through_frequency_steps_and_ramps(lanes: int) -> None:
    # steady stretches (the recurrence, its restarts), a step, a ramp (a new increment every
    # sample: the polynomial), an amplitude change; voices as lanes; final state compared too
    from jit_support import assert_jit_same, set_value

    from oscen.jit import CraneliftJit

    actions = [
        set_value(700, "osc1.frequency", 523.25),
        set_value(1900, "osc2.frequency", 80.0, ramp=0.01),
        set_value(2600, "osc0.amplitude", 0.7),
        set_value(3000, "osc3.frequency", 3000.0),
    ]
    assert_jit_same(
        lambda: sines_build(4),
        5000,
        actions,
        blocks=[256, 100, 1000],
        jit=CraneliftJit(lanes=lanes),
        exact=True,
    )
