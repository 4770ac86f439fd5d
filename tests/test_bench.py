"""Smoke tests of the benchmark suite: the oscen engine renders the peers' patches right, and the
two benchmark programs run end to end on tiny sizes (the whole file takes a few seconds)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import bench_jit, bench_peers, bench_sine  # noqa: E402
from benchmarks.oscen_engine import OscenEngine  # noqa: E402
from benchmarks.peers.c_engine import compiler  # noqa: E402
from benchmarks.peers.reference import check  # noqa: E402
from oscen import bench, cli  # noqa: E402

SR = 44100.0
HAVE_CC = compiler() is not None


@pytest.mark.parametrize("block", [64, 256])
@pytest.mark.parametrize("patch", ["seed", "voices64"])
def test_compiled_oscen_engine_renders_the_reference(patch: str, block: int) -> None:
    engine = OscenEngine(compiled=True)
    assert engine.available() is None
    latency = engine.prepare(patch, SR, block)
    assert latency > 0
    first = engine.render(0.5)
    assert first.shape == (int(0.5 * SR),) and first.dtype == np.float64
    assert bench_peers.passes(patch, check(patch, first, 0.5, SR))
    # Every render restarts at t = 0 (the state snapshot), so the benchmark times the same work.
    np.testing.assert_array_equal(engine.render(0.5), first)
    engine.close()


@pytest.mark.parametrize("patch, seconds", [("seed", 0.2), ("voices64", 0.1)])
def test_interpreted_oscen_engine_renders_the_reference(patch: str, seconds: float) -> None:
    engine = OscenEngine(compiled=False)
    engine.prepare(patch, SR, 256)
    out = engine.render(seconds)
    assert bench_peers.passes(patch, check(patch, out, seconds, SR))
    engine.close()


def test_polysynth_plays_the_song_from_the_start_in_both_flavours() -> None:
    comp, interp = OscenEngine(compiled=True), OscenEngine(compiled=False)
    comp.prepare("polysynth", SR, 256)
    interp.prepare("polysynth", SR, 256)
    a, b = comp.render(0.05), interp.render(0.05)
    assert np.max(np.abs(a)) > 1e-3  # the song's first notes are playing
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_bench_jit_quick_section_b_on_tiny_graphs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "jit.json"
    argv = ["--quick", "--section", "b", "--sizes", "4,6", "--voice-graphs", "2", "--json", str(out)]
    assert bench_jit.main(argv) == 0
    text = capsys.readouterr().out
    assert "b. Compile latency" in text and "Linear-fit check" in text and "b. Voice graphs" in text
    data = json.loads(out.read_text())
    assert [row["nodes"] for row in data["b"]["chain"]] == [4, 6]
    assert [row["nodes"] for row in data["b"]["parallel"]] == [5, 7]  # pairs plus the summing gain
    assert {"slope_ms_per_node", "intercept_ms", "r2", "growth"} <= set(data["b"]["parallel_fit"])
    voices = data["b"]["voices"]
    assert [(row["voices"], row["nodes"]) for row in voices] == [(2, 5), (50, 101)]
    assert all(row["rtf"] > 0 and row["cranelift"] > 0 and row["frontend"] > 0 for row in voices)
    assert all(0 < row["playable_cpu_best"] <= max(row["playable"], row["playable_cpu"]) for row in voices)


def test_oscen_bench_quick_prints_tables_and_draws_a_chart(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    chart, report = tmp_path / "bench.png", tmp_path / "bench.json"
    engines = "oscen,c" if HAVE_CC else "oscen"
    argv = ["bench", "--quick", "--engines", engines, "--chart", str(chart), "--json", str(report)]
    assert cli.main(argv) == 0
    text = capfd.readouterr().out  # the runner's process writes to the same file descriptors
    for block in (64, 256):
        assert f"block {block}: median of" in text
    assert "oscen (compiled)" in text and "Compile latency" in text
    if HAVE_CC:
        assert "C (cc -O3 -march=native)" in text
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads(report.read_text())["measurements"]
    assert rows and all(r["status"] == "ok" and r["rtf_median"] > 1 for r in rows)


class _Silent:
    """An engine that renders silence: the runner must report it FAILED and never time it."""

    name = "silent"

    def available(self) -> None:
        return None

    def version(self) -> str:
        return "0"

    def prepare(self, patch: str, sample_rate: float, block_size: int) -> float:
        self.sr = sample_rate
        return 0.0

    def render(self, seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * self.sr))

    def close(self) -> None:
        pass


def test_an_engine_with_the_wrong_sound_is_failed_not_timed() -> None:
    config = bench_peers.BenchConfig(
        patches=("seed",), blocks=(256,), seconds=0.2, repeats=2, latency_repeats=0
    )
    report = bench_peers.run_bench(config, engines=[("oscen", OscenEngine()), ("silent", _Silent())])
    silent = report.find("silent", "seed", 256)
    assert silent is not None and silent.status == "FAILED" and silent.times == []
    assert "differs from the reference" in silent.reason
    oscen = report.find("oscen", "seed", 256)
    assert oscen is not None and oscen.ok and len(oscen.times) == 2
    (table,) = bench_peers.rtf_tables(report)
    assert ["silent", "FAILED", ""] in table.rows


def test_oscen_bench_without_a_checkout_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "benchmarks_root", lambda: None)
    assert cli.main(["bench", "--quick"]) == cli.EXIT_USER_ERROR
    assert "benchmarks/ folder of an oscen source checkout" in capsys.readouterr().err


def test_oscen_bench_rejects_an_unknown_engine(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--quick", "--engines", "oscen,csound"]) == cli.EXIT_USER_ERROR
    assert "unknown engine(s) csound" in capsys.readouterr().err


@pytest.mark.skipif(not HAVE_CC, reason="needs a C compiler")
def test_the_c_with_16_vector_registers_is_asked_for_not_run_by_default() -> None:
    """``c-same-16`` (oscen's seed arithmetic built with -mno-avx512f) is taken by --engines but
    is not among the default engines; on x86-64 it builds and renders the reference."""
    parser = argparse.ArgumentParser()
    bench.configure(parser)
    assert "c-same-16" not in parser.parse_args([]).engines
    assert "c-same-16" in bench.KNOWN_ENGINE_KEYS and "c-same-16" not in bench.ENGINE_KEYS
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("-mno-avx512f is an x86 flag")
    peers, oscen_engine = bench_peers.load_benchmarks()
    ((_, engine),) = bench_peers.make_engines(["c-same-16"], peers, oscen_engine)
    assert "-mno-avx512f" in engine.name and engine.available() is None
    engine.prepare("seed", SR, 256)
    try:
        assert check("seed", engine.render(0.2), 0.2, SR).ok
    finally:
        engine.close()


def test_oscen_bench_runs_the_checkout_s_runner_without_putting_the_checkout_on_sys_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []

    def fake_run(cmd: list[str], check: bool) -> object:
        calls.append(cmd)
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    path = list(sys.path)
    argv = [
        "--engines",
        "oscen",
        "--patches",
        "seed",
        "--blocks",
        "64",
        "--seconds",
        "0.5",
        "--json",
        "x.json",
    ]
    assert cli.main(["bench", *argv]) == 0
    ((python, script, *rest),) = calls
    assert python == sys.executable and Path(script) == REPO / "benchmarks" / "bench_peers.py"
    assert rest == argv
    assert sys.path == path


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--quick", "--engines", "oscen,c", "--blocks", "32,64", "--repeats", "3"],
        ["--patches", "voices64", "--seconds", "2.5", "--chart", "a b.png", "--json", "out/r.json"],
    ],
)
def test_the_runner_gets_the_arguments_oscen_bench_parsed(argv: list[str]) -> None:
    def parse(args: list[str]) -> object:
        parser = argparse.ArgumentParser()
        bench.configure(parser)
        return parser.parse_args(args)

    assert parse(bench.argv_of(parse(argv))) == parse(argv)


def test_bench_sine_tables_on_small_sizes() -> None:
    accuracy = bench_sine.accuracy(10_000)
    assert [row[0] for row in accuracy.rows][:2] == ["sin_cycles(p)"] * 2
    assert all(float(row[2]) <= 1e-15 for row in accuracy.rows)
    spectrum = bench_sine.spectrum(minute=False)
    assert [row[0] for row in spectrum.rows] == ["1000 Hz", "997 Hz"]
    for row in spectrum.rows:  # the oscillator (its recurrence) and sin_cycles clean, Taylor 9 not
        assert float(row[3].split()[0]) < -140.0 and float(row[5].split()[0]) < -140.0
        assert float(row[7].split()[0]) > -140.0 and float(row[8]) < 1e-12
    speed = bench_sine.speed(0.05, 1)
    assert [row[0] for row in speed.rows] == [
        "math.sin(2 pi p)",
        "sin_cycles(p)",
        "Oscillator.sine, polynomial (as before)",
        "Oscillator.sine (recurrence)",
    ]
    drift = bench_sine.recurrence_drift()
    assert float(drift.rows[0][0]) < 1e-12 and float(drift.rows[0][2]) < 1e-12


def test_bench_swap_reads_the_vm_s_steal_time_and_says_so_per_row(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import bench_swap

    stat = "cpu  125050 3941 15361 315163 1016 0 382 6971 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
    real_open = open

    def fake_open(path: object, *args: object, **kwargs: object) -> object:
        if path == "/proc/stat":
            import io

            return io.StringIO(stat)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", fake_open)
    ticks = bench_swap.os.sysconf("SC_CLK_TCK")
    assert bench_swap.vm_steal() == pytest.approx(6971 / ticks)
    stat = "intr 1 2 3\n"  # no cpu line: nothing to say
    assert bench_swap.vm_steal() is None
    monkeypatch.setattr("builtins.open", real_open)

    row = bench_swap.Run("seed", 256, 0.005, "frozen", steal=0.04, seconds=2.0)
    assert bench_swap.steal_summary(row) == "40 (2.0 %)"
    assert bench_swap.steal_summary(bench_swap.Run("seed", 256, 0.005, "frozen")) == "-"
    assert bench_swap.table([row]).splitlines()[0].endswith("| late | VM steal |")


def test_bench_swap_runs_a_row_and_its_control_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import bench_swap

    argv = ["--graphs", "seed", "--blocks", "256", "--switch", "0.005", "--changes", "2", "--control"]
    assert bench_swap.main(argv) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| seed |")]
    assert len(rows) == 2 and "none (control)" in rows[1]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[4].startswith("worker (")
    late, blocks = map(int, cells[-2].split("/"))
    assert blocks > 0 and 0 <= late <= blocks
    steal = cells[-1]
    assert steal == "-" or steal.endswith("%)")
