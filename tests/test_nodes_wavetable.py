"""Wavetable: partials exactly those of the table up to Nyquist, aliasing below -90 dB, morphing as a
crossfade, the mip level chosen per frequency, in both engines."""

from __future__ import annotations

import numpy as np
import pytest
from engines_support import both_engines, example_renders, one_node
from jit_support import set_value
from node_harness import assert_compilable

from oscen.wavetable import Wavetable, basic_shapes, harmonic_table

SR = 44100.0
N = 8192


def saw_table(size: int = 2048) -> np.ndarray:
    """A naive (aliased) rising saw, the kind of table a user draws: the node band-limits it."""
    return 2.0 * np.arange(size) / size - 1.0


def spectrum(y: np.ndarray) -> np.ndarray:
    """Amplitudes of the last N samples (a whole number of periods: exact bins, no window)."""
    return np.abs(np.fft.rfft(y[-N:])) * 2 / N


@pytest.mark.parametrize(
    ("bin_", "kept"), [(101, 32), (127, 32), (129, 16), (1999, 2), (13, 256), (7, 512), (3715, 1)]
)
def test_saw_has_exactly_its_partials_below_nyquist_and_no_aliases(bin_: int, kept: int) -> None:
    frequency = bin_ * SR / N  # on an FFT bin; bin_ odd, so aliases would fall between harmonics
    node = Wavetable(saw_table(), frequency, normalize=False)
    assert node.level_for(frequency, SR) == {512: 0, 256: 1, 32: 4, 16: 5, 2: 8, 1: 9}[kept]
    assert node._level_harmonics[node.level_for(frequency, SR)] * frequency < SR / 2
    outs = both_engines(one_node(lambda: Wavetable(saw_table(), frequency, normalize=False)), 2 * N)
    for y in outs.values():
        a = spectrum(y)
        harmonics = np.arange(bin_, len(a), bin_)
        # the saw's partials, 2 / (pi k), up to the level's count (the table's own sampling
        # shifts them a little from the ideal saw: compare with its exact DFT instead)
        table_partials = np.abs(np.fft.rfft(saw_table()))[1 : kept + 1] * 2 / 2048
        np.testing.assert_allclose(a[harmonics[:kept]], table_partials, rtol=1e-4)  # 0.001 dB
        assert table_partials[0] == pytest.approx(2 / np.pi, rel=1e-4)
        # nothing above the kept partials, nothing between the harmonics
        other = np.ones(len(a), bool)
        other[harmonics[:kept]] = False
        alias_db = 10 * np.log10(np.sum(a[other] ** 2) / np.sum(a[harmonics[:kept]] ** 2))
        print(f"{frequency:.1f} Hz: {kept} partials, aliases and images {alias_db:.1f} dB")
        assert alias_db < -100.0, f"{alias_db:.1f} dB of aliases and images at {frequency:.1f} Hz"


def test_morph_is_a_crossfade_at_the_same_phase() -> None:
    tables = [harmonic_table([1.0]), harmonic_table([0, 0, 1.0]), harmonic_table([0, 0, 0, 0, 1.0])]
    bin_ = 37
    frequency = bin_ * SR / N
    for position, weights in (
        (0.0, (1, 0, 0)),
        (0.25, (0.5, 0.5, 0)),
        (0.6, (0, 0.8, 0.2)),
        (1.0, (0, 0, 1)),
    ):
        outs = both_engines(one_node(lambda p=position: Wavetable(tables, frequency, 0.9, position=p,
                                                                   normalize=False)), 2 * N)  # fmt: skip
        for y in outs.values():
            a = spectrum(y)
            np.testing.assert_allclose(a[[bin_, 3 * bin_, 5 * bin_]], 0.9 * np.array(weights), atol=1e-9)


def test_position_can_be_swept_and_frequency_modulated() -> None:
    # a sweep of position and a jump of frequency across mip levels: both engines agree, the
    # output stays bounded (each table normalized to peak 1)
    build = one_node(lambda: Wavetable.basic(110.0))
    outs = both_engines(build, 6000, [set_value(1000, "node.position", 1.0, ramp=4000 / SR),
                                      set_value(3000, "node.frequency", 5000.0)])  # fmt: skip
    for y in outs.values():
        assert np.max(np.abs(y)) < 1.2
        np.testing.assert_allclose(y[:1000], np.sin(2 * np.pi * 110.0 * np.arange(1000) / SR), atol=1e-9)


def test_at_or_above_nyquist_it_is_silent() -> None:
    node = Wavetable(saw_table(), 30000.0)
    outs = both_engines(
        one_node(lambda: Wavetable(saw_table(), 1000.0)), 200, [set_value(100, "node.frequency", 30000.0)]
    )
    for y in outs.values():
        assert np.all(y[100:] == 0.0) and np.any(y[:100] != 0.0)
    assert node.level_for(30000.0, SR) == node.levels - 1


def test_basic_shapes_are_the_named_waves() -> None:
    sine, triangle, saw, square = basic_shapes(size=1024, harmonics=256)
    p = np.arange(1024) / 1024
    np.testing.assert_allclose(sine, np.sin(2 * np.pi * p), atol=1e-12)
    assert np.max(np.abs(triangle - (1 - 4 * np.abs((p + 0.25) % 1 - 0.5)))) < 0.01
    assert np.median(np.abs(saw[50:-50] - (2 * ((p[50:-50] + 0.5) % 1) - 1))) < 0.01
    assert np.median(np.abs(square - np.where(p < 0.5, 1, -1))) < 0.01


def test_bad_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="table 0 must be one cycle of at least 4 samples"):
        Wavetable([np.zeros(2)])
    with pytest.raises(ValueError, match="needs at least one table"):
        Wavetable([])
    with pytest.raises(ValueError, match="max_harmonics must be a power of two"):
        Wavetable(saw_table(), max_harmonics=100)
    with pytest.raises(ValueError, match="non-finite"):
        Wavetable([np.array([0, 1, np.nan, 0])])


def test_compilable_subset() -> None:
    assert_compilable(Wavetable.basic(220.0, position=0.4))


def test_example_patch_renders_in_both_engines() -> None:
    out = example_renders("wavetable_patch.py", seconds=0.2)
    assert np.max(np.abs(out)) > 0.05
