"""The command line, driven through main([...]) as a user would type it."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from oscen import cli
from oscen.cli import Command, main
from oscen.io import render

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

SMALL_PATCH = """
from oscen import Graph, Node, StreamOutput, ValueInput


class Saw(Node):
    frequency = ValueInput(100.0)
    output = StreamOutput()

    def __init__(self):
        self.phase = 0.0

    def process(self, sample_rate):
        self.phase += self.frequency / sample_rate
        if self.phase >= 1.0:
            self.phase -= 1.0
        self.output = (2.0 * self.phase - 1.0) * 0.5


def patch(sample_rate):
    graph = Graph(sample_rate)
    graph.add_node(Saw())
    return graph
"""


def write_patch(tmp_path: Path, body: str = SMALL_PATCH, name: str = "small.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def jit_graph_class() -> Any:
    """oscen.jit.JitGraph, or None while the JIT is not there (imported by name: it may not exist)."""
    try:
        return importlib.import_module("oscen.jit").JitGraph
    except (ImportError, AttributeError):
        return None


def jit_available() -> bool:
    return jit_graph_class() is not None


# ------------------------------------------------------------------------------ render
def test_render_writes_the_wav_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    patch, out = write_patch(tmp_path), tmp_path / "small.wav"
    code = main(
        [
            "render",
            str(patch),
            "--seconds",
            "0.5",
            "--sample-rate",
            "22050",
            "--out",
            str(out),
            "--engine",
            "interpret",
        ]
    )
    assert code == 0
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.frames) == (22050, 1, 11025)
    captured = capsys.readouterr()
    assert "1 nodes, engine interpret: 0.50 s of mono audio at 22050 Hz" in captured.out
    assert f"wrote {out}" in captured.out
    assert captured.err == ""  # no progress bar, no notices


def test_render_defaults_to_the_patch_name_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch = write_patch(tmp_path, name="tone.py")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert (
        main(["render", str(patch), "--seconds", "0.1", "--block-size", "100", "--engine", "interpret"]) == 0
    )
    assert sf.info(str(work / "tone.wav")).frames == 4410


def test_render_with_the_jit_engine_falls_back_or_compiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "small.wav"
    assert main(["render", str(write_patch(tmp_path)), "--seconds", "0.2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    if jit_available():
        assert "JIT: compiled 1 nodes" in captured.out and "engine jit" in captured.out
    else:
        assert "JIT engine is not available" in captured.err and "engine interpret" in captured.out
    assert len(captured.err.splitlines()) <= 1  # at most the one-line notice
    assert sf.info(str(out)).frames == 8820


def test_the_command_lines_jit_engine_compiles_the_final_code_once() -> None:
    """make_engine waits for the final code before anything plays, so its JitGraph is untiered:
    one compile (the optimized tier), no quick tier first that nothing would play."""
    if not jit_available():
        pytest.skip("the JIT engine is not available here")
    from oscen.demo import demo_patch

    engine, used = cli.make_engine(demo_patch(44100.0, events=False), "jit")
    try:
        assert used == "jit" and engine.tiered is False
        engine.process_block(64)  # the ready code swaps in at a block boundary
        assert engine.compiled_version == engine.graph.version
        assert [swap.tier for swap in engine.swaps] == ["optimized"]
    finally:
        cli._close_engines()


@pytest.mark.parametrize("example", ["seed.py", "custom_node.py"])
def test_examples_render(tmp_path: Path, example: str) -> None:
    out = tmp_path / "example.wav"
    assert (
        main(
            [
                "render",
                str(EXAMPLES / example),
                "--seconds",
                "0.25",
                "--out",
                str(out),
                "--engine",
                "interpret",
            ]
        )
        == 0
    )
    data, rate = sf.read(str(out))
    assert rate == 44100 and data.shape == (11025,)
    assert 0.05 < np.max(np.abs(data)) <= 1.0


def test_the_demo_module_is_also_a_patch_file(tmp_path: Path) -> None:
    out = tmp_path / "demo.wav"
    demo_file = REPO / "oscen" / "demo.py"
    assert (
        main(["render", str(demo_file), "--seconds", "0.1", "--out", str(out), "--engine", "interpret"]) == 0
    )
    assert sf.info(str(out)).channels == 2


def broken(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run a command that must fail as a user error: exit code 2, one message, no traceback."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert captured.err.startswith(f"oscen {argv[0]}: error: ")
    return captured.err


def test_broken_patches_exit_2_with_the_users_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    syntax = write_patch(tmp_path, "def patch(sample_rate)\n    pass\n", "syntax.py")
    assert f"{syntax}:1" in broken(capsys, ["render", str(syntax), "--engine", "interpret"])

    missing = tmp_path / "missing.py"
    assert "patch file not found" in broken(capsys, ["render", str(missing)])

    empty = write_patch(tmp_path, "x = 1\n", "empty.py")
    assert "defines neither" in broken(capsys, ["render", str(empty)])

    raising = write_patch(tmp_path, "def patch(sample_rate):\n    return 1 / 0\n", "raising.py")
    err = broken(capsys, ["render", str(raising)])
    assert f"{raising}:2 in patch()" in err and "ZeroDivisionError" in err


def test_a_node_failing_while_rendering_points_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = SMALL_PATCH.replace(
        "self.phase += self.frequency / sample_rate", "self.phase += self.frequency / 0.0  # boom"
    )
    patch = write_patch(tmp_path, body, "crash.py")
    err = broken(
        capsys,
        ["render", str(patch), "--seconds", "0.1", "--out", str(tmp_path / "c.wav"), "--engine", "interpret"],
    )
    line = next(i for i, text in enumerate(patch.read_text().splitlines(), 1) if "# boom" in text)
    assert f"{patch}:{line} in process(): rendering raised ZeroDivisionError" in err


def test_unwritable_output_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = broken(capsys, ["render", str(write_patch(tmp_path)), "--out", str(tmp_path / "no" / "x.wav")])
    assert "does not exist" in err


@pytest.mark.parametrize(
    "argv", [["render", "p.py", "--seconds", "-1"], ["render", "p.py", "--block-size", "0"], ["nope"], []]
)
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: oscen" in capsys.readouterr().err


# ------------------------------------------------------------------------------ demo
def test_demo_writes_wav_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--seconds", "1", "--out", str(out), "--engine", "interpret"]) == 0
    data, rate = sf.read(str(out / "demo.wav"), always_2d=True)
    assert rate == 44100 and data.shape == (44100, 2)
    assert np.all(np.isfinite(data)) and 0.1 < np.max(np.abs(data)) <= 1.0
    assert (out / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "engine interpret: 1.00 s of stereo audio at 44100 Hz" in captured.out
    assert "x real time" in captured.out
    assert f"wrote {out / 'demo.wav'}" in captured.out and f"wrote {out / 'demo.png'}" in captured.out
    assert captured.err == ""


def test_demo_renders_the_same_on_both_engines() -> None:
    JitGraph = jit_graph_class()
    if JitGraph is None:
        pytest.skip("oscen.jit.JitGraph is not available yet")
    from oscen import demo

    reference = render(demo.demo_patch(22050.0), 0.6, progress=False)
    graph = demo.demo_patch(22050.0, events=False)
    engine = JitGraph(graph)
    try:
        assert engine.wait_compiled(), f"the demo must compile: {engine.last_error}"
        demo.demo_events(engine, graph)
        compiled = render(engine, 0.6, progress=False)
        assert engine.mode == "compiled"
    finally:
        engine.close()
    np.testing.assert_allclose(compiled, reference, rtol=0, atol=1e-9)


def test_demo_events_are_deterministic_and_on_the_beat() -> None:
    from oscen import demo

    events = demo.note_events(demo.DEMO_NOTES, 44100.0)
    assert events == demo.note_events(demo.DEMO_NOTES, 44100.0)
    frames_per_eighth = 60.0 / demo.BPM * 44100.0 / 2
    lead_on = sorted(f for f, label, name, v in events if label == "amp_env" and v > 0)
    assert all(f % frames_per_eighth == 0 for f in lead_on)
    assert max(f for f, *_ in events) < demo.DEMO_SECONDS * 44100  # the song ends before the render does


# ------------------------------------------------------------------------------ structure
def test_subcommands_are_pluggable(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []

    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--times", type=int, default=1)

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setitem(cli.COMMANDS, "hello", Command("say hello", configure, run))
    assert main(["hello", "--times", "3"]) == 0
    assert seen[0].times == 3


def test_python_dash_m_oscen() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oscen", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "demo" in result.stdout and "render" in result.stdout


# ------------------------------------------------------------------------------ issue 9, item 24
UNCOMPILABLE_PATCH = """
from oscen import Graph, Node, StreamOutput


class ListNode(Node):
    output = StreamOutput()

    def __init__(self):
        self.items = [0.25, 0.5]  # a Python list: outside the compilable subset

    def process(self, sample_rate):
        self.output = self.items[0]


def patch(sample_rate):
    graph = Graph(sample_rate)
    graph.add_node(ListNode())
    return graph
"""

LOUD_PATCH = """
from oscen import Graph
from oscen.gain import Constant


def patch(sample_rate):
    graph = Graph(sample_rate)
    graph.add_node(Constant(3.0))
    return graph
"""


def test_a_graph_the_jit_cannot_compile_gets_one_notice_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not jit_available():
        pytest.skip("oscen.jit.JitGraph is not available")
    patch, out = write_patch(tmp_path, UNCOMPILABLE_PATCH, "listy.py"), tmp_path / "listy.wav"
    assert main(["render", str(patch), "--seconds", "0.05", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("oscen: the JIT could not compile this graph (JitError: ")
    assert "self.items" in lines[0] and lines[0].endswith("; using the interpreter")
    assert "engine interpret" in captured.out
    assert sf.read(str(out))[0][0] == 0.25


@pytest.mark.parametrize(
    ("suffix", "fmt"), [(".flac", "FLAC"), (".ogg", "OGG"), (".mp3", "MP3"), (".aiff", "AIFF")]
)
def test_out_writes_the_format_its_extension_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str, fmt: str
) -> None:
    patch, out = write_patch(tmp_path), tmp_path / f"small{suffix}"
    argv = ["render", str(patch), "--seconds", "0.5", "--out", str(out), "--engine", "interpret"]
    if fmt not in sf.available_formats():  # an old libsndfile: refused, clearly, before rendering
        assert f"no {fmt} support" in broken(capsys, argv)
        return
    assert main(argv) == 0
    info = sf.info(str(out))
    assert info.format == fmt and info.samplerate == 44100 and info.channels == 1
    assert abs(info.frames - 22050) <= 2048  # lossy codecs pad
    assert f"wrote {out}" in capsys.readouterr().out


def test_an_unsupported_extension_is_refused_before_the_patch_is_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raising = write_patch(tmp_path, "raise SystemExit('the patch was loaded')\n", "raising.py")
    for name in ("x.m4a", "x.txt", "noextension"):
        err = broken(capsys, ["render", str(raising), "--out", str(tmp_path / name), "--engine", "interpret"])
        assert "is not a sound file format oscen writes; use one of .wav, .flac, .ogg, .mp3" in err
        assert not (tmp_path / name).exists()
    err = broken(capsys, ["render", str(raising), "--out", str(tmp_path / "x.flac"), "--subtype", "float"])
    assert "subtype must be one of PCM_16, PCM_24 for a FLAC file, got 'FLOAT'" in err


def test_clipping_in_an_integer_file_is_reported_with_the_peak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patch, out = write_patch(tmp_path, LOUD_PATCH, "loud.py"), tmp_path / "loud.wav"
    base = ["render", str(patch), "--seconds", "0.1", "--out", str(out), "--engine", "interpret"]
    assert main([*base, "--subtype", "PCM_16"]) == 0
    err = capsys.readouterr().err
    assert "the signal peaks at 3 (+9.5 dBFS) but WAV PCM_16 holds only -1..1: 4410 samples clipped" in err
    assert "--normalize" in err and len(err.splitlines()) == 1
    assert np.max(np.abs(sf.read(str(out))[0])) <= 1.0
    assert main([*base, "--subtype", "PCM_16", "--normalize"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "normalized from a peak of 3" in captured.out
    np.testing.assert_allclose(sf.read(str(out))[0], 10 ** (-1 / 20), atol=1 / 2**15)
    assert main(base) == 0  # float WAV keeps the overs: nothing to say
    assert capsys.readouterr().err == "" and sf.read(str(out))[0][0] == 3.0


def test_midi_renders_get_a_progress_bar_like_any_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mido

    render_module = importlib.import_module("oscen.io.render")
    monkeypatch.setattr(render_module, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(render_module, "_ESTIMATE_AFTER", 0.0)
    monkeypatch.setattr(render_module, "AUTO_PROGRESS_SECONDS", 0.0)
    song = tmp_path / "one.mid"
    mid = mido.MidiFile()
    mid.tracks.append(
        mido.MidiTrack([mido.Message("note_on", note=60, time=0), mido.Message("note_off", note=60, time=96)])
    )
    mid.save(song)
    synth = write_patch(tmp_path, MIDI_PATCH, "synth.py")
    common = ["--sample-rate", "8000", "--block-size", "64", "--engine", "interpret"]
    assert main(["render", str(synth), "--midi", str(song), "--out", str(tmp_path / "m.wav"), *common]) == 0
    assert "rendering:" in capsys.readouterr().err
    assert main(["render", str(synth), "--seconds", "0.5", "--out", str(tmp_path / "p.wav"), *common]) == 0
    assert "rendering:" in capsys.readouterr().err


MIDI_PATCH = """
from oscen.graph import Graph
from oscen.envelopes import AdsrEnvelope
from oscen.midi import SubGraph, poly_voices


def voice(graph):
    env = graph.add_node(AdsrEnvelope(0.0, 0.0, 1.0, 0.0))
    return SubGraph(graph, inputs={"gate": env.gate}, outputs={"output": env.output})


def patch(sample_rate):
    graph = Graph(sample_rate)
    synth = poly_voices(graph, voice, 2)
    graph.set_output(synth.output)
    return graph
"""


@pytest.mark.parametrize("engine", ["jit", "interpret"])
def test_play_and_render_take_the_same_engine_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    from oscen.io import realtime

    monkeypatch.setenv(realtime.FAKE_AUDIO_ENV, "1")
    patch = write_patch(tmp_path)
    assert main(["play", str(patch), "--seconds", "0.05", "--engine", engine]) == 0
    assert f"engine {engine}," in capsys.readouterr().out
    assert (
        main(
            ["render", str(patch), "--seconds", "0.05", "--out", str(tmp_path / "r.wav"), "--engine", engine]
        )
        == 0
    )
    assert f"engine {engine}:" in capsys.readouterr().out
    assert "--engine" in cli.build_parser()._subparsers._group_actions[0].choices["play"].format_help()
    if engine == "interpret":  # the old spelling still works
        assert main(["play", str(patch), "--seconds", "0.05", "--interpret"]) == 0
        assert "engine interpret," in capsys.readouterr().out


@pytest.mark.parametrize("where", ["before", "after"])
def test_traceback_works_before_and_after_the_subcommand(tmp_path: Path, where: str) -> None:
    missing = str(tmp_path / "missing.py")
    argv = ["--traceback", "render", missing] if where == "before" else ["render", missing, "--traceback"]
    with pytest.raises(cli.UserError, match="patch file not found"):
        main(argv)
    assert main(["render", missing]) == 2  # without it: the one-line error


def test_every_subcommand_accepts_traceback_after_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def run(args: argparse.Namespace) -> int:
        raise cli.UserError("boom")

    monkeypatch.setitem(cli.COMMANDS, "fail", Command("fails", lambda parser: None, run))
    with pytest.raises(cli.UserError, match="boom"):
        main(["fail", "--traceback"])
    required = {
        "render": ["p.py"],
        "play": ["p.py"],
        "export": ["p.py", "--web", "out"],
        "batch": ["p.py", "--params", "s.json", "--out", "o"],
    }
    for name in cli.COMMANDS:
        args = cli.build_parser().parse_args([name, "--traceback", *required.get(name, [])])
        assert args.traceback is True


def test_render_length_limit_is_checked_before_loading_or_compiling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mido

    huge = tmp_path / "huge.mid"
    mid = mido.MidiFile(type=0, ticks_per_beat=1)
    mid.tracks.append(
        mido.MidiTrack(
            [
                mido.MetaMessage("set_tempo", tempo=0xFFFFFF, time=0),
                mido.Message("note_on", note=60, time=0),
                mido.Message("note_off", note=60, time=0x0FFFFFFF),
            ]
        )
    )
    mid.save(huge)
    raising = write_patch(tmp_path, "raise SystemExit('the patch was loaded')\n", "raising.py")
    out = tmp_path / "never.wav"
    err = broken(capsys, ["render", str(raising), "--midi", str(huge), "--out", str(out)])
    assert (
        f"4.5036e+09 s of audio ({huge} ends at 4.5036e+09 s, plus a 2 s tail) is beyond the limit of 3600 s"
        in err
    )
    assert "--max-seconds" in err
    err = broken(capsys, ["render", str(raising), "--seconds", "2", "--max-seconds", "1", "--out", str(out)])
    assert "2 s of audio is beyond the limit of 1 s" in err
    assert not out.exists()
    synth = write_patch(tmp_path, MIDI_PATCH, "synth.py")
    argv = [
        "render",
        str(synth),
        "--midi",
        str(huge),
        "--seconds",
        "0.1",
        "--out",
        str(out),
        "--engine",
        "interpret",
    ]
    assert main(argv) == 0  # a stated length plays the start
    assert sf.info(str(out)).frames == 4410
    err = broken(capsys, ["demo", "--seconds", "5000", "--out", str(tmp_path / "d"), "--engine", "interpret"])
    assert "beyond the limit of 3600 s" in err


def test_a_format_libsndfile_refuses_at_this_rate_fails_before_rendering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile cannot write MP3")
    body = SMALL_PATCH.replace("self.phase += self.frequency / sample_rate", "raise RuntimeError('rendered')")
    patch, out = write_patch(tmp_path, body, "never.py"), tmp_path / "low.mp3"
    argv = ["render", str(patch), "--sample-rate", "1000", "--out", str(out), "--engine", "interpret"]
    err = broken(capsys, argv)
    assert f"cannot write {out} as MP3 MPEG_LAYER_III at 1000 Hz" in err and "sample rates" in err
    assert "rendered" not in err and list(tmp_path.iterdir()) == [patch]
