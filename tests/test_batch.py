"""oscen.batch: parameter sources, determinism, output folders, resume, failures, the CLI."""

from __future__ import annotations

import json
import math
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from oscen.batch import (
    Choice,
    Grid,
    IntUniform,
    LogUniform,
    OutputError,
    ParamError,
    RandomSpace,
    Records,
    Uniform,
    load_space,
    render_batch,
)
from oscen.batch.params import as_source
from oscen.batch.plan import resolve_targets
from oscen.batch.worker import KernelImage, item_noise_seed, noise_state
from oscen.cli import main
from oscen.jit import JitFallbackWarning
from oscen.noise import Noise
from oscen.patch import load_patch

SR = 8000.0

# A sine plus seeded noise through a lowpass: parameters, noise and a filter, quick to run in
# both engines.
NOISY = """
from oscen.filters import IirLowpass
from oscen.graph import Graph
from oscen.noise import Noise
from oscen.oscillators import Oscillator


def patch(sample_rate):
    graph = Graph(sample_rate)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5), "osc")
    noise = graph.add_node(Noise.white(0.2, seed=3), "noise")
    lp = graph.add_node(IirLowpass(3000.0, 0.7), "lp")
    graph.connect(osc.output, lp.input)
    graph.connect(noise.output, lp.input)
    graph.set_output(lp.output)
    return graph
"""

# A node that fails on demand: mode 1 divides by zero (a fault), mode 2 overflows to inf (a
# non-finite output), mode 0 plays a constant.
FAULTY = """
from oscen import Graph, Node, StreamOutput, ValueInput


class Faulty(Node):
    mode = ValueInput(0.0)
    output = StreamOutput()

    def __init__(self):
        self.t = 0

    def process(self, sample_rate):
        self.t += 1
        if self.mode == 1.0 and self.t == 100:
            self.output = 1.0 / (self.mode - 1.0)
        elif self.mode == 2.0:
            self.output = 1e300 * 1e300
        else:
            self.output = 0.25


def patch(sample_rate):
    graph = Graph(sample_rate)
    graph.add_node(Faulty(), "faulty")
    return graph
"""

# Two voices driven by MIDI: a saw per voice with an envelope.
SYNTH = """
from oscen.envelopes import AdsrEnvelope
from oscen.gain import Multiply
from oscen.graph import Graph
from oscen.midi import SubGraph, poly_voices
from oscen.oscillators import Oscillator


def voice(graph):
    osc = graph.add_node(Oscillator.sine(440.0, 0.5))
    env = graph.add_node(AdsrEnvelope(attack=0.001, decay=0.01, sustain=1.0, release=0.005), "env")
    vca = graph.add_node(Multiply())
    graph.connect(osc.output, vca.a)
    graph.connect(env.output, vca.b)
    return SubGraph(graph, inputs={"pitch": osc.frequency, "gate": env.gate}, outputs={"output": vca.output})


def patch(sample_rate):
    graph = Graph(sample_rate)
    poly_voices(graph, voice, 2)
    return graph
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def noisy(tmp_path: Path) -> Path:
    return write(tmp_path, "noisy.py", NOISY)


# ---------------------------------------------------------------------------- parameter sources
def test_random_space_item_depends_only_on_seed_and_index() -> None:
    space = {
        "a.x": Uniform(-1.0, 3.0),
        "b.y": LogUniform(10.0, 1000.0),
        "c.z": Choice([1, 2, 3]),
        "note": IntUniform(40, 50),
    }
    big = RandomSpace(space, n=1000, seed=7)
    small = RandomSpace(space, n=10, seed=7)
    assert big.item(5) == small.item(5)  # not the 5th draw of one stream: its own generator
    assert RandomSpace(space, n=10, seed=8).item(5) != small.item(5)
    items = [big.item(i) for i in range(1000)]
    xs = np.array([it.params["a.x"] for it in items])
    ys = np.array([it.params["b.y"] for it in items])
    assert -1.0 <= xs.min() and xs.max() < 3.0 and abs(xs.mean() - 1.0) < 0.15
    # log-uniform: log10 of the values is uniform on [1, 3], so half of them lie below 100
    assert 10.0 <= ys.min() and ys.max() <= 1000.0
    assert 0.45 < np.mean(ys < 100.0) < 0.55
    assert {it.params["c.z"] for it in items} == {1.0, 2.0, 3.0}
    assert {it.note for it in items} == set(range(40, 51))


def test_grid_row_major_and_records_and_tables() -> None:
    grid = Grid({"a.x": [1, 2], "b.y": [10, 20, 30]})
    assert len(grid) == 6
    assert [grid.item(i).params for i in (0, 1, 3, 5)] == [
        {"a.x": 1.0, "b.y": 10.0},
        {"a.x": 1.0, "b.y": 20.0},
        {"a.x": 2.0, "b.y": 10.0},
        {"a.x": 2.0, "b.y": 30.0},
    ]
    rows = [{"a.x": 1.5, "note": 60, "velocity": 90, "duration": 0.5}, {"a.x": 2.5}]
    records = Records(rows)
    assert records.item(0).note == 60 and records.item(0).velocity == 90 and records.item(0).duration == 0.5
    assert records.item(1).params == {"a.x": 2.5} and records.item(1).note is None
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"a.x": [1.0, 2.0], "note": [60, 62]})
    assert as_source(frame).item(1).params == {"a.x": 2.0} and as_source(frame).item(1).note == 62
    table = pa.table({"a.x": [1.0, 2.0]})
    assert as_source(table).item(0).params == {"a.x": 1.0}


def test_space_json_forms(tmp_path: Path) -> None:
    path = tmp_path / "space.json"
    path.write_text(
        json.dumps(
            {
                "random": {"lp.cutoff": {"log_uniform": [100, 4000]}, "note": {"int": [48, 72]}},
                "n": 4,
                "seed": 2,
            }
        )
    )
    source = load_space(path)
    assert len(source) == 4 and source.item(3) == RandomSpace(
        {"lp.cutoff": LogUniform(100, 4000), "note": IntUniform(48, 72)}, 4, 2
    ).item(3)
    assert len(load_space(path, n=9)) == 9
    assert len(load_space({"grid": {"lp.q": [0.5, 1, 2]}})) == 3
    assert len(load_space({"grid": {"lp.q": [0.5, 1, 2]}}, n=2)) == 2
    assert load_space({"items": [{"lp.q": 3}]}).item(0).params == {"lp.q": 3.0}


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"random": {"x.y": {"uniform": [1]}}, "n": 2}, "takes \\[low, high\\]"),
        ({"random": {"x.y": {"log_uniform": [0, 1]}}, "n": 2}, "low > 0"),
        ({"random": {"x.y": {"gauss": [0, 1]}}, "n": 2}, "unknown distribution 'gauss'"),
        ({"random": {"x.y": {"uniform": [0, 1]}}}, "needs 'n'"),
        ({"grid": {"x.y": []}}, "non-empty list"),
        ({"grid": {}, "random": {}}, "exactly one of"),
        ({"items": [{"x.y": "loud"}]}, "x.y must be a number"),
        ({"items": [{"note": 200}]}, "note must be a whole number in 0..127"),
    ],
)
def test_bad_spaces_say_what_is_wrong(spec: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        load_space(spec)


def test_parameter_names_resolve_by_label_and_class(tmp_path: Path) -> None:
    graph = load_patch(write(tmp_path, "synth.py", SYNTH), SR)
    targets = resolve_targets(graph, ["env.attack", "AdsrEnvelope.release", "voice mix.gain"])
    assert len(targets.params["env.attack"]) == 2 and len(targets.params["AdsrEnvelope.release"]) == 2
    assert targets.midi is not None and targets.midi[1] == "midi"
    with pytest.raises(ParamError, match="no node is labelled or of class 'nope'"):
        resolve_targets(graph, ["nope.x"])
    with pytest.raises(ParamError, match="no value input 'cutoff'.*attack"):
        resolve_targets(graph, ["env.cutoff"])
    with pytest.raises(ParamError, match="driven by a connection"):
        resolve_targets(graph, ["Oscillator.frequency"])  # the allocator's pitch drives it
    with pytest.raises(ParamError, match="NODE.INPUT"):
        resolve_targets(graph, ["cutoff"])


# ---------------------------------------------------------------------------- determinism
def test_noise_reseeding_matches_the_noise_node() -> None:
    for seed in (0, 1, 12345):
        assert noise_state(seed) == Noise.white(1.0, seed=seed)._state
    assert item_noise_seed(0, 1, 3) == item_noise_seed(0, 1, 3) != item_noise_seed(0, 2, 3)


def test_item_bit_identical_across_runs_workers_and_local_modes(noisy: Path) -> None:
    space = RandomSpace(
        {"osc.frequency": LogUniform(100, 2000), "lp.cutoff": Uniform(500, 3000)}, n=6, seed=4
    )
    a = render_batch(noisy, space, seconds=0.1, sample_rate=SR, workers=1, progress=False)
    b = render_batch(noisy, space, seconds=0.1, sample_rate=SR, workers=2, chunk_size=1, progress=False)
    c = render_batch(noisy, space, seconds=0.1, sample_rate=SR, workers=2, local="processes", progress=False)
    one = render_batch(noisy, [space.item(4).params], seconds=0.1, sample_rate=SR, progress=False)
    assert a.engine == "jit" and not a.failed and a.audio.shape == (6, 800)
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.audio, c.audio)
    # alone, item 4 is index 0: the same parameters but its own noise
    assert not np.array_equal(one.audio[0], a.audio[4])
    noise_only = render_batch(
        noisy, {"items": [{"osc.amplitude": 0.0}] * 2}, seconds=0.1, sample_rate=SR, progress=False
    )
    assert not np.array_equal(noise_only.audio[0], noise_only.audio[1])  # fresh noise per item
    assert abs(noise_only.audio[0]).max() > 0.01


def test_compiled_items_match_the_interpreter(noisy: Path) -> None:
    space = RandomSpace(
        {"osc.frequency": LogUniform(100, 2000), "lp.cutoff": Uniform(500, 3000)}, n=3, seed=4
    )
    fast = render_batch(noisy, space, seconds=0.05, sample_rate=SR, progress=False)
    slow = render_batch(noisy, space, seconds=0.05, sample_rate=SR, engine="interpret", progress=False)
    assert fast.engine == "jit" and slow.engine == "interpret"
    assert np.max(np.abs(fast.audio - slow.audio)) < 1e-9


def test_parameters_reach_the_sound(noisy: Path) -> None:
    # pitch measured from the spectrum's peak, noise off
    freqs = [220.0, 880.0]
    result = render_batch(
        noisy,
        [{"osc.frequency": f, "noise.amplitude": 0.0, "lp.cutoff": 3900.0} for f in freqs],
        seconds=0.5,
        sample_rate=SR,
        progress=False,
    )
    for f, audio in zip(freqs, result.audio, strict=True):
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
        assert abs(np.argmax(spectrum) * SR / len(audio) - f) < 4.0


def test_midi_note_items(tmp_path: Path) -> None:
    synth = write(tmp_path, "synth.py", SYNTH)
    rows = [{"note": 69, "velocity": 127, "duration": 0.25}, {"note": 57, "velocity": 64}]
    result = render_batch(synth, rows, seconds=0.5, sample_rate=SR, progress=False)
    assert not result.failed
    a4, a3 = result.audio
    half = int(0.2 * SR)
    for audio, hz in ((a4, 440.0), (a3, 220.0)):
        seg = audio[:half]
        spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
        assert abs(np.argmax(spectrum) * SR / len(seg) - hz) < 6.0
    assert abs(a4[int(0.3 * SR) :]).max() < 1e-6  # released at 0.25 s, 5 ms release
    assert abs(a3[int(0.4 * SR) :]).max() > 0.1  # no duration: held to the end
    assert abs(a4[:half]).max() > 1.5 * abs(a3[:half]).max()  # velocity scales the envelope
    # a sequence: (seconds, status, data1, data2)
    seq = render_batch(
        synth,
        [{"midi": [(0.0, 0x90, 69, 100), (0.1, 0x80, 69, 0)]}],
        seconds=0.3,
        sample_rate=SR,
        progress=False,
    )
    assert abs(seq.audio[0][: int(0.1 * SR)]).max() > 0.1 and abs(seq.audio[0][int(0.15 * SR) :]).max() < 1e-6


def test_a_graph_object_is_rendered_and_left_as_it_was(noisy: Path) -> None:
    graph = load_patch(noisy, SR)
    osc = graph.nodes[0]
    before = graph.get_value(osc.frequency)
    result = render_batch(graph, [{"osc.frequency": 1000.0}], seconds=0.05, progress=False)
    from_file = render_batch(noisy, [{"osc.frequency": 1000.0}], seconds=0.05, sample_rate=SR, progress=False)
    assert np.array_equal(result.audio, from_file.audio)
    assert graph.frame == 0 and graph.get_value(osc.frequency) == before


def test_midi_items_need_a_midi_input(noisy: Path) -> None:
    with pytest.raises(ParamError, match="no MIDI input"):
        render_batch(noisy, [{"note": 60}], seconds=0.1, sample_rate=SR, progress=False)


def test_kernel_image_pickles_without_node_classes(tmp_path: Path) -> None:
    import pickle

    image = KernelImage.compile(load_patch(write(tmp_path, "faulty.py", FAULTY), SR))
    blob = pickle.dumps(image)
    assert b"Faulty" not in blob.split(b"ir_json")[0]  # classes travel as names in the IR text only
    compiled, state = pickle.loads(blob).load()
    assert compiled.process_block(state, 4)[0] == 0.25


# ---------------------------------------------------------------------------- failures
@pytest.mark.parametrize("local", ["threads", "processes"])
def test_failing_items_are_recorded_and_the_rest_render(tmp_path: Path, local: str) -> None:
    faulty = write(tmp_path, "faulty.py", FAULTY)
    rows = [{"faulty.mode": m} for m in (0, 1, 0, 2, 0)]
    result = render_batch(
        faulty,
        rows,
        out=tmp_path / "out",
        seconds=0.05,
        sample_rate=SR,
        workers=2,
        local=local,
        progress=False,
    )
    assert result.rendered == 3 and sorted(result.failed) == [1, 3]
    assert "ZeroDivisionError" in result.failed[1] and "in faulty at" in result.failed[1]
    assert "non-finite output (inf) at sample 0" in result.failed[3]
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(tmp_path / "out" / "items.parquet").to_pylist()
    assert [r["status"] for r in table] == ["ok", "error", "ok", "error", "ok"]
    assert table[1]["file_name"] is None and "ZeroDivisionError" in table[1]["error"]
    meta = (tmp_path / "out" / "metadata.csv").read_text().splitlines()
    assert len(meta) == 4 and meta[0].startswith("file_name,index,faulty.mode")


def test_uncompilable_patch_is_interpreted_with_a_warning(tmp_path: Path) -> None:
    patch = write(
        tmp_path,
        "dicty.py",
        """
        from oscen import Graph, Node, StreamOutput, ValueInput

        class Dicty(Node):
            level = ValueInput(0.5)
            output = StreamOutput()

            def __init__(self):
                self.table = {"k": 1.0}   # a dict: not compilable

            def process(self, sample_rate):
                self.output = self.level * self.table["k"]

        def patch(sample_rate):
            graph = Graph(sample_rate)
            graph.add_node(Dicty(), "d")
            return graph
    """,
    )
    with pytest.warns(JitFallbackWarning, match="interpreted"):
        result = render_batch(
            patch,
            [{"d.level": 0.1}, {"d.level": 0.3}],
            seconds=0.01,
            sample_rate=SR,
            workers=2,
            local="processes",
            progress=False,
        )
    assert result.engine == "interpret" and not result.failed
    assert np.allclose(result.audio[:, 0], [0.1, 0.3])


def test_a_worker_process_that_dies_costs_only_its_item(tmp_path: Path) -> None:
    patch = write(
        tmp_path,
        "killer.py",
        """
        import os
        from oscen import Graph, Node, StreamOutput, ValueInput

        class Killer(Node):
            kill = ValueInput(0.0)
            output = StreamOutput()

            def __init__(self):
                self.hook = os   # a module attribute: interpreted only

            def process(self, sample_rate):
                if self.kill == 1.0:
                    self.hook._exit(3)
                self.output = 0.5

        def patch(sample_rate):
            graph = Graph(sample_rate)
            graph.add_node(Killer(), "k")
            return graph
    """,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", JitFallbackWarning)
        result = render_batch(
            patch,
            [{"k.kill": v} for v in (0, 0, 1, 0)],
            seconds=0.01,
            sample_rate=SR,
            workers=2,
            local="processes",
            chunk_size=2,
            progress=False,
        )
    assert sorted(result.failed) == [2] and "worker process died" in result.failed[2]
    assert result.rendered == 3 and np.all(result.audio[[0, 1, 3]] == 0.5)


# ---------------------------------------------------------------------------- output folders
def test_output_folder_layout_and_resume(tmp_path: Path, noisy: Path) -> None:
    out = tmp_path / "data"
    space = RandomSpace({"osc.frequency": LogUniform(100, 2000)}, n=5, seed=1)
    first = render_batch(noisy, space, out=out, seconds=0.1, sample_rate=SR, progress=False)
    assert first.rendered == 5 and first.skipped == 0
    files = sorted(p.name for p in (out / "audio").iterdir())
    assert files == [f"{i:06d}.flac" for i in range(5)]
    data, rate = sf.read(out / "audio" / "000003.flac")
    assert rate == SR and data.shape == (800,) and sf.info(out / "audio" / "000003.flac").subtype == "PCM_24"
    memory = render_batch(noisy, space, seconds=0.1, sample_rate=SR, progress=False)
    assert np.max(np.abs(data - memory.audio[3])) < 2.0**-22  # the file is the same sound, in 24 bits
    lines = (out / "metadata.csv").read_text().splitlines()
    assert lines[0] == "file_name,index,osc.frequency,peak" and lines[4].startswith("audio/000003.flac,3,")
    stamp = (out / "audio" / "000001.flac").stat().st_mtime_ns

    again = render_batch(noisy, space, out=out, seconds=0.1, sample_rate=SR, progress=False)
    assert again.rendered == 0 and again.skipped == 5
    (out / "audio" / "000002.flac").unlink()
    third = render_batch(noisy, space, out=out, seconds=0.1, sample_rate=SR, progress=False)
    assert third.rendered == 1 and third.skipped == 4
    assert (out / "audio" / "000001.flac").stat().st_mtime_ns == stamp
    assert (
        sf.read(out / "audio" / "000002.flac")[0].tolist()
        == sf.read(out / "audio" / "000002.flac")[0].tolist()
    )
    assert len((out / "metadata.csv").read_text().splitlines()) == 6

    with pytest.raises(OutputError, match="another batch.*seconds"):
        render_batch(noisy, space, out=out, seconds=0.2, sample_rate=SR, progress=False)


def test_resume_after_a_crash_keeps_the_journal(tmp_path: Path, noisy: Path) -> None:
    out = tmp_path / "data"
    space = RandomSpace({"osc.frequency": LogUniform(100, 2000)}, n=4, seed=1)
    render_batch(noisy, space, out=out, seconds=0.05, sample_rate=SR, progress=False)
    journal = out / ".oscen-batch" / "rows.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:2]) + "\n" + lines[2][:10])  # killed while writing row 3
    (out / "metadata.csv").unlink()
    result = render_batch(noisy, space, out=out, seconds=0.05, sample_rate=SR, progress=False)
    assert result.rendered == 2 and result.skipped == 2
    assert len((out / "metadata.csv").read_text().splitlines()) == 5


def test_output_loads_as_an_audiofolder(tmp_path: Path, noisy: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "data"
    rows = [{"osc.frequency": 200.0 + 100 * i} for i in range(3)] + [{"osc.frequency": 1e9}]
    render_batch(noisy, rows, out=out, seconds=0.05, sample_rate=SR, format="wav", progress=False)
    ds = datasets.load_dataset(
        "audiofolder", data_dir=str(out), split="train", cache_dir=str(tmp_path / "cache")
    ).cast_column("audio", datasets.Audio(decode=False))
    assert ds.num_rows == 4
    assert ds["index"] == [0, 1, 2, 3] and ds["osc.frequency"][:3] == [200.0, 300.0, 400.0]
    first = ds[0]["audio"]
    samples, rate = sf.read(first["path"])
    assert rate == SR and samples.shape == (400,) and sf.info(first["path"]).subtype == "FLOAT"


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seconds": 0}, "seconds must be > 0"),
        ({"seconds": math.inf}, "finite"),
        ({"backend": "dask"}, "backend must be one of"),
        ({"workers": 0}, "workers must be an int >= 1"),
        ({"format": "mp3"}, "format must be one of"),
        ({"local": "fibers"}, "local must be"),
    ],
)
def test_bad_arguments(noisy: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message):
        render_batch(noisy, [{}], **kwargs)


def test_bad_parameter_name_fails_before_rendering(noisy: Path, tmp_path: Path) -> None:
    with pytest.raises(ParamError, match="no node is labelled or of class 'osc2'"):
        render_batch(noisy, [{"osc2.frequency": 1.0}], out=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- command line
def test_cli_batch(tmp_path: Path, noisy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.json"
    space.write_text(
        json.dumps({"random": {"osc.frequency": {"log_uniform": [100, 2000]}, "lp.q": {"choice": [0.5, 2]}}})
    )
    out = tmp_path / "data"
    common = [
        "--params",
        str(space),
        "--n",
        "3",
        "--seconds",
        "0.05",
        "--sample-rate",
        "8000",
        "--no-progress",
    ]
    argv = ["batch", str(noisy), *common, "--workers", "2", "--out", str(out)]
    assert main(argv) == 0
    assert "3 rendered, 0 failed" in capsys.readouterr().out
    assert len(list((out / "audio").iterdir())) == 3
    assert main(argv) == 0 and "0 rendered, 0 failed, 3 already done" in capsys.readouterr().out
    space.write_text(json.dumps({"random": {"osc.nope": {"uniform": [0, 1]}}}))
    assert main(["batch", str(noisy), *common, "--out", str(tmp_path / "other")]) == 2
    assert "no value input 'nope'" in capsys.readouterr().err
