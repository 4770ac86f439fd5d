"""Batch rendering throughput: items per second for 2-second polysynth sounds, random parameters.

    python benchmarks/bench_batch.py [--n 48] [--seconds 2] [--skip-ray]

Each item is one note of examples/polysynth.py (16 voices, reverb) with a random filter cutoff,
resonance, note and velocity, held for half the item. Rows:

* oscen local, threads and processes, 1 and 2 workers (``render_batch``, in memory);
* oscen on Ray (a local ``ray.init(num_cpus=2)`` cluster started once), 1 and 2 actors;
* oscen to FLAC files (threads, 2 workers): the cost of encoding and writing;
* Faust through DawDreamer in a ``multiprocessing`` pool (spawn; each worker compiles the DSP
  once in its initializer) doing the same work: the same voice (two detuned saws, a resonant
  state-variable lowpass with its own envelope and key tracking, an amplitude envelope) as a
  16-voice Faust polyphonic instrument with a stereo Freeverb effect, one MIDI note per item,
  parameters set per item, audio returned to the parent. Faust computes only sounding voices
  and in float32; oscen runs all 16 voices of the graph in float64. Skipped, with a note, if
  dawdreamer is not installed (``pip install dawdreamer``).

items/s counts the render phase (workers starting, kernels loading, items rendering and coming
back), not building and compiling the patch in the driver, which is reported separately. The
machine is shared: run it when it is quiet, or read the numbers as a rough guide.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
POLYSYNTH = REPO / "examples" / "polysynth.py"

FAUST_POLYSYNTH = r"""
declare name "polysynth";
import("stdfaust.lib");
freq = hslider("freq", 440, 20, 20000, 0.01);
gain = hslider("gain", 0.5, 0, 1, 0.001);
gate = button("gate");
cutoff = hslider("cutoff", 250, 20, 20000, 0.01);
q = hslider("q", 2.2, 0.1, 20, 0.001);
fenv = en.adsr(0.005, 0.45, 0.25, 0.5, gate) * gain;
aenv = en.adsr(0.008, 0.3, 0.7, 0.6, gate) * gain;
saws = os.sawtooth(freq) * 0.5 + os.sawtooth(freq * pow(2.0, 7.0 / 1200.0)) * 0.5;
fc = min(cutoff + fenv * 3500.0 + freq * 1.5, 18000.0);
process = saws : fi.svf.lp(fc, q) : *(aenv) : *(0.24) <: _, _;
effect = _, _ <: (*(0.85), *(0.85)), (re.stereo_freeverb(0.84, 0.5, 0.45, 23) : *(0.22), *(0.22)) :> _, _;
"""


def space(n: int):
    from oscen.batch import IntUniform, LogUniform, RandomSpace, Uniform

    return RandomSpace(
        {
            "TptFilter.cutoff": LogUniform(80.0, 2000.0),
            "TptFilter.q": Uniform(0.6, 4.0),
            "note": IntUniform(36, 84),
            "velocity": IntUniform(40, 127),
        },
        n=n,
        seed=1,
    )


def oscen_row(label: str, n: int, seconds: float, **kwargs) -> tuple[str, float, float, float]:
    from oscen.batch import render_batch

    source = space(n)
    rows = [
        {
            **source.item(i).params,
            "note": source.item(i).note,
            "velocity": source.item(i).velocity,
            "duration": seconds / 2,
        }
        for i in range(n)
    ]
    t0 = time.perf_counter()
    result = render_batch(POLYSYNTH, rows, seconds=seconds, progress=False, **kwargs)
    wall = time.perf_counter() - t0
    assert not result.failed, result.failed
    return label, result.items_per_second, result.elapsed, wall - result.elapsed


# ---------------------------------------------------------------------------- DawDreamer
_dd: dict = {}


def _dd_init(seconds: float) -> None:
    import dawdreamer as dd

    engine = dd.RenderEngine(44100.0, 512)
    synth = engine.make_faust_processor("synth")
    synth.num_voices = 16
    synth.set_dsp_string(FAUST_POLYSYNTH)
    if not synth.compile():
        raise RuntimeError("Faust did not compile the polysynth")
    engine.load_graph([(synth, [])])
    names = {d["name"].rsplit("/", 1)[-1]: d["name"] for d in synth.get_parameters_description()}
    _dd.update(engine=engine, synth=synth, names=names, seconds=seconds)


def _dd_render(item: tuple[float, float, int, int]) -> np.ndarray:
    cutoff, q, note, velocity = item
    synth, names, seconds = _dd["synth"], _dd["names"], _dd["seconds"]
    synth.clear_midi()
    synth.set_parameter(names["cutoff"], cutoff)
    synth.set_parameter(names["q"], q)
    synth.add_midi_note(note, velocity, 0.0, seconds / 2)
    _dd["engine"].render(seconds)
    return np.asarray(_dd["engine"].get_audio(), dtype=np.float64)


def dawdreamer_row(workers: int, n: int, seconds: float) -> tuple[str, float, float, float]:
    source = space(n)
    items = [
        (it.params["TptFilter.cutoff"], it.params["TptFilter.q"], it.note, it.velocity)
        for it in (source.item(i) for i in range(n))
    ]
    context = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    with context.Pool(workers, initializer=_dd_init, initargs=(seconds,)) as pool:
        out = pool.map(_dd_render, items, chunksize=max(1, n // (workers * 8)))
    elapsed = time.perf_counter() - t0
    assert len(out) == n and all(np.isfinite(a).all() for a in out)
    return (
        f"DawDreamer (Faust), multiprocessing, {workers} worker{'s' * (workers > 1)}",
        n / elapsed,
        elapsed,
        0.0,
    )


def gil_check() -> str:
    """Does a kernel call release the GIL? Python code of the main thread that runs while another
    thread is inside a kernel call can only have run if it did."""
    import bisect
    import threading

    from oscen.batch.worker import KernelImage
    from oscen.patch import load_patch

    compiled, state = KernelImage.compile(load_patch(POLYSYNTH, 44100.0)).load()
    out = np.empty((2, 8192))
    calls: list[tuple[float, float]] = []
    stop = threading.Event()

    def call_kernel() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            compiled.process_into(state, out)  # one call: 8192 samples
            calls.append((start, time.perf_counter()))

    thread = threading.Thread(target=call_kernel)
    thread.start()
    time.sleep(0.05)
    stamps: list[float] = []
    end = time.perf_counter() + 1.0
    while (now := time.perf_counter()) < end:
        stamps.append(now)
    stop.set()
    thread.join(timeout=10)
    during = sum(bisect.bisect_left(stamps, b) - bisect.bisect_right(stamps, a) for a, b in calls)
    return (
        f"GIL: {len(calls)} kernel calls on a thread; {during} of {len(stamps)} iterations of a Python "
        "loop on the main thread ran while a call was in progress"
        + (" (the call releases the GIL)" if during > 0 else " (the call holds the GIL)")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="items per row (default: 48)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per item (default: 2)")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    n, seconds = args.n, args.seconds
    gil = gil_check()
    rows = []
    for workers in (1, 2):
        for local in ("threads", "processes"):
            rows.append(
                oscen_row(
                    f"oscen local {local}, {workers} worker{'s' * (workers > 1)}",
                    n,
                    seconds,
                    workers=workers,
                    local=local,
                )
            )
    if not args.skip_ray:
        try:
            import ray
        except ImportError:
            rows.append(("oscen on Ray: skipped (pip install ray)", float("nan"), 0.0, 0.0))
        else:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                for workers in (1, 2):
                    rows.append(
                        oscen_row(
                            f"oscen Ray actors, {workers} worker{'s' * (workers > 1)}",
                            n,
                            seconds,
                            backend="ray",
                            workers=workers,
                        )
                    )
            finally:
                ray.shutdown()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        rows.append(
            oscen_row(
                "oscen threads, 2 workers, to FLAC files", n, seconds, workers=2, out=Path(folder) / "data"
            )
        )
    try:
        import dawdreamer  # noqa: F401
    except ImportError:
        rows.append(
            ("DawDreamer (Faust): skipped, not installed (pip install dawdreamer)", float("nan"), 0.0, 0.0)
        )
    else:
        for workers in (1, 2):
            rows.append(dawdreamer_row(workers, n, seconds))

    print(
        f"\n{n} items of {seconds:g} s each, 44.1 kHz stereo; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print(gil + "\n")
    print(f"| {'engine':<58} | {'items/s':>8} | {'render s':>8} | {'setup s':>7} |")
    print(f"|{'-' * 60}|{'-' * 9}:|{'-' * 9}:|{'-' * 8}:|")
    for label, rate, elapsed, setup in rows:
        rate_text = "-" if rate != rate else f"{rate:.2f}"
        print(f"| {label:<58} | {rate_text:>8} | {elapsed:>8.2f} | {setup:>7.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
