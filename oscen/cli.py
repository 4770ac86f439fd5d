"""The ``oscen`` command line: ``oscen demo``, ``oscen render PATCH.py``, ``oscen bench``,
``oscen play PATCH.py``.

Each subcommand is one :class:`Command` in :data:`COMMANDS`: a function that adds its arguments to
its own sub-parser and a function that runs it and returns the exit code. Adding a subcommand
(``play``, ``bench``...) means writing those two functions and one dict entry; nothing else here
changes. Exit codes: 0 success, 2 the user's input is wrong (bad arguments, broken patch, unwritable
path), which is also what argparse uses for usage errors.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cliargs import EXIT_OK, EXIT_USER_ERROR, UserError, positive_float, positive_int
from .graph import Graph, GraphError
from .io.render import MAX_RENDER_SECONDS

ENGINES = ("jit", "interpret")


@dataclass(frozen=True)
class Command:
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------------------------------- helpers
def add_engine_argument(parser: argparse.ArgumentParser) -> None:
    """``--engine jit|interpret``, the same on every subcommand that runs a graph."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="jit",
        help="jit: compile the graph to machine code (falls back to the interpreter if it cannot); "
        "interpret: run the reference Python interpreter (default: %(default)s)",
    )


def add_output_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """``--out``, ``--subtype``, ``--normalize``, ``--max-seconds``: how a render becomes a file."""
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"sound file to write, in the format its extension names ({supported_extensions()}; "
        f"default: {default_out})",
    )
    parser.add_argument(
        "--subtype",
        type=str.upper,
        default=None,
        help="sample format, e.g. FLOAT, PCM_16, PCM_24 (default: FLOAT for .wav, PCM_24 for .flac and "
        ".aiff, the codec for .ogg and .mp3); integer and lossy formats clip at 0 dBFS",
    )
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="scale the whole render so its peak sits at -1 dBFS (a second pass over a temporary file)",
    )
    add_max_seconds_argument(parser)


def add_max_seconds_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-seconds",
        type=positive_float,
        default=MAX_RENDER_SECONDS,
        help="refuse renders longer than this, before starting (default: %(default)g s, one hour)",
    )


def supported_extensions() -> str:
    from .io.wav import supported_extensions

    return supported_extensions()


def check_output(path: Path, subtype: str | None) -> Any:
    """The output's format, checked before anything is loaded or rendered; a UserError otherwise."""
    from .io.render import prepare_output
    from .io.wav import WavError

    try:
        return prepare_output(path, subtype, "--out")
    except WavError as exc:
        raise UserError(str(exc).removeprefix("--out: ")) from exc


def make_engine(graph: Graph, engine: str) -> tuple[Any, str]:
    """Wrap ``graph`` in the chosen engine; returns (engine object, name of the engine actually used).

    The JIT is imported lazily so that the interpreter works even where the compiler cannot be
    imported. When the JIT is unavailable or cannot compile this graph, the render still happens,
    on the interpreter, after a one-line notice on stderr.

    JitGraph compiles in the background and plays interpreted until the code is ready, which suits
    live use; an offline render waits for the compiled code first, so that every sample comes from
    the engine the report names. The compile time is reported on its own line.
    """
    if engine == "interpret":
        return graph, "interpret"
    try:
        from oscen.jit import JitGraph
    except Exception as exc:  # not written yet, or broken mid-edit: the interpreter still plays
        notice(f"the JIT engine is not available ({type(exc).__name__}: {exc}); using the interpreter")
        return graph, "interpret"
    start = time.perf_counter()
    try:
        # Untiered: the command line waits for the final code before it renders or plays, and
        # changes no topology while playing, so a quick tier first would only be one compile
        # more (the demo's patch: 0.51 -> 0.27 s from JitGraph() to its code being ready).
        jit = JitGraph(graph, tiered=False)
        _open_engines.append(jit)
        ready = jit.wait_compiled(timeout=JIT_COMPILE_TIMEOUT) if hasattr(jit, "wait_compiled") else True
    except Exception as exc:  # a node outside the compilable subset, say: still render, slower
        fallback_notice(exc)
        return graph, "interpret"
    if not ready:
        fallback_notice(getattr(jit, "last_error", None))
        _close_engines()
        return graph, "interpret"
    print(f"JIT: compiled {len(graph.nodes)} nodes in {time.perf_counter() - start:.2f} s", flush=True)
    return jit, "jit"


JIT_COMPILE_TIMEOUT = 120.0
"""Seconds an offline render waits for the JIT before rendering with the interpreter instead."""

_open_engines: list[Any] = []
"""Engines with a compile thread, closed when the command ends (main is also called from tests)."""


def _close_engines() -> None:
    while _open_engines:
        engine = _open_engines.pop()
        close = getattr(engine, "close", None)
        if close is not None:
            close()


_told_fallbacks: list[str] = []
"""Fallbacks already announced by make_engine (their errors' text). The JIT's own warning about the
same failure (a JitFallbackWarning, gathered by main) is then not printed again: once make_engine
has given up on the JIT, the run is interpreted and every such warning is about that failure, so a
fallback is one line."""


def fallback_notice(error: BaseException | None) -> None:
    if error is None:
        reason = f"no code after {JIT_COMPILE_TIMEOUT:g} s"
    else:
        reason = f"{type(error).__name__}: {error}"
    _told_fallbacks.append(str(error or ""))
    notice(f"the JIT could not compile this graph ({reason}); using the interpreter")


def notice(message: str) -> None:
    print(f"oscen: {message}", file=sys.stderr)


def already_told(warning: warnings.WarningMessage) -> bool:
    if not _told_fallbacks:
        return False
    text = str(warning.message)
    return warning.category.__name__ == "JitFallbackWarning" or any(r and r in text for r in _told_fallbacks)


def describe_layout(samples: Any) -> str:
    return describe_channels(channel_count(samples))


def describe_channels(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels} channels")


def channel_count(samples: Any) -> int:
    return 1 if samples.ndim == 1 else int(samples.shape[0])


def report_render(graph: Graph, engine: str, samples: Any, sample_rate: float, elapsed: float) -> None:
    """The summary line of an in-memory render (``samples`` as process_block returns them)."""
    report_frames(graph, engine, samples.shape[-1], channel_count(samples), sample_rate, elapsed)


def report_frames(
    graph: Graph, engine: str, frames: int, channels: int, sample_rate: float, elapsed: float
) -> None:
    """The summary line of a render of ``frames`` (a streamed one has no samples to show)."""
    seconds = frames / sample_rate
    factor = seconds / elapsed if elapsed > 0 else math.inf
    print(
        f"{len(graph.nodes)} nodes, engine {engine}: {seconds:.2f} s of {describe_channels(channels)} audio "
        f"at {sample_rate:g} Hz rendered in {elapsed:.2f} s ({factor:.1f}x real time)"
    )


def timed_render(
    engine: Any,
    seconds: float,
    block_size: int,
    progress: bool | None,
    max_seconds: float | None = MAX_RENDER_SECONDS,
) -> tuple[Any, float]:
    from .io import render

    start = time.perf_counter()
    samples = render(engine, seconds, block_size=block_size, progress=progress, max_seconds=max_seconds)
    return samples, time.perf_counter() - start


def timed_render_to_file(
    args: argparse.Namespace, engine: Any, out: Path, midi_input: Any
) -> tuple[Any, float]:
    """Stream the render into ``out`` block by block (bounded memory, whatever the length), driven by
    ``args.midi`` when given; a progress bar appears by itself on a terminal when it takes a while."""
    from .io.render import render_to_file
    from .midi import render_midi_to_file

    options = dict(
        block_size=args.block_size,
        progress=None,
        subtype=args.subtype,
        normalize=args.normalize,
        max_seconds=args.max_seconds,
    )
    start = time.perf_counter()
    if args.midi is not None:
        result = render_midi_to_file(engine, midi_input, args.midi, out, seconds=args.seconds, **options)
    else:
        seconds = args.seconds if args.seconds is not None else RENDER_SECONDS
        result = render_to_file(engine, out, seconds, **options)
    return result, time.perf_counter() - start


def find_midi_target(graph: Graph, patch: Path, midi_file: Path) -> Any:
    """The patch's MIDI input (its first MidiParser), after checking the MIDI file reads: both are
    the user's to fix, so they fail before rendering, as user errors."""
    from .midi import MidiError, find_midi_input, timed_messages

    endpoint = find_midi_input(graph)
    if endpoint is None:
        raise UserError(
            f"{patch} has no MidiParser node to play {midi_file} into; build the patch with "
            "oscen.midi.poly_voices (or add an oscen.midi.MidiParser)"
        )
    try:
        timed_messages(midi_file)
    except MidiError as exc:
        raise UserError(str(exc)) from exc
    return endpoint


def write_outputs(path: Path, samples: Any, sample_rate: float) -> None:
    from .io import WavError, write_wav

    try:
        write_wav(path, samples, sample_rate)
    except WavError as exc:
        raise UserError(str(exc)) from exc


def plot(samples: Any, sample_rate: float, path: Path, title: str) -> None:
    """Waveform and spectrogram in one PNG, drawn with the Agg canvas directly (no pyplot, no display)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    channels = samples[np.newaxis, :] if samples.ndim == 1 else samples
    t = np.arange(channels.shape[-1]) / sample_rate
    fig = Figure(figsize=(10, 6), layout="constrained")
    FigureCanvasAgg(fig)
    wave, spec = fig.subplots(2, 1, sharex=True)
    names = (
        ["left", "right"] if channels.shape[0] == 2 else [f"channel {i}" for i in range(channels.shape[0])]
    )
    for channel, name in zip(channels, names, strict=True):
        wave.plot(t, channel, linewidth=0.4, label=name, alpha=0.8)
    wave.set_ylabel("amplitude")
    wave.set_ylim(-1.05, 1.05)
    if channels.shape[0] > 1:
        wave.legend(loc="upper right", fontsize="small")
    mono = channels.mean(axis=0)
    nfft = 2048 if mono.size >= 4096 else max(64, 2 ** int(math.log2(max(mono.size // 2, 64))))
    spec.specgram(mono + 1e-12, NFFT=nfft, Fs=sample_rate, noverlap=nfft * 3 // 4, cmap="magma", vmin=-120)
    spec.set_ylim(0, min(sample_rate / 2, 12000))
    spec.set_ylabel("frequency (Hz)")
    spec.set_xlabel("time (s)")
    fig.suptitle(title)
    fig.savefig(path, dpi=100)


# ---------------------------------------------------------------------------------------- demo
def configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out"),
        help="folder for demo.wav and demo.png (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds", type=positive_float, default=None, help="seconds of audio (default: the whole demo)"
    )
    parser.add_argument(
        "--sample-rate", type=positive_float, default=44100.0, help="Hz (default: %(default)g)"
    )
    add_engine_argument(parser)
    add_max_seconds_argument(parser)


def run_demo(args: argparse.Namespace) -> int:
    from .demo import DEMO_SECONDS, demo_events, demo_patch

    seconds = args.seconds if args.seconds is not None else DEMO_SECONDS
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {out}: {exc.strerror or exc}") from exc
    graph = demo_patch(args.sample_rate, events=False)
    print("oscen demo: detuned saws + sub -> state-variable lowpass -> ADSR -> echo -> reverb", flush=True)
    engine, used = make_engine(graph, args.engine)
    demo_events(engine, graph)
    try:
        samples, elapsed = timed_render(engine, seconds, 512, None, args.max_seconds)
    except render_errors() as exc:
        raise UserError(str(exc)) from exc
    report_render(graph, used, samples, graph.sample_rate, elapsed)
    wav, png = out / "demo.wav", out / "demo.png"
    write_outputs(wav, samples, graph.sample_rate)
    plot(
        samples,
        graph.sample_rate,
        png,
        f"oscen demo: {seconds:g} s at {graph.sample_rate:g} Hz, engine {used}",
    )
    print(f"wrote {wav}")
    print(f"wrote {png}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------- render
RENDER_SECONDS = 5.0


def configure_render(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "patch", type=Path, help="a patch file defining patch(sample_rate) -> Graph, or a module-level graph"
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=None,
        help=f"seconds of audio (default: {RENDER_SECONDS:g}; with --midi, the file's length plus 2 s)",
    )
    parser.add_argument(
        "--sample-rate",
        type=positive_float,
        default=None,
        help="Hz (default: 44100, or the rate of a module-level graph)",
    )
    parser.add_argument(
        "--midi",
        type=Path,
        default=None,
        metavar="FILE",
        help="play a standard MIDI file through the patch (into its first MidiParser's midi input)",
    )
    add_output_arguments(parser, "PATCH's name with .wav, here")
    parser.add_argument(
        "--block-size", type=positive_int, default=512, help="samples per block (default: %(default)s)"
    )
    add_engine_argument(parser)


def render_errors() -> tuple[type[Exception], ...]:
    """Errors of a render that are the user's to fix (length limit, file, MIDI): one line, exit 2."""
    from .io import RenderLimitError, WavError
    from .midi import MidiError

    return (RenderLimitError, WavError, MidiError)


def check_render_length(args: argparse.Namespace) -> None:
    """The length limit, before the patch is loaded or compiled (a MIDI file is timed for it)."""
    from .io import RenderLimitError
    from .io.render import check_length
    from .midi import TAIL_SECONDS, MidiError, midi_file_duration

    why = ""
    if args.seconds is not None:
        seconds = args.seconds
    elif args.midi is not None:
        try:
            end = midi_file_duration(args.midi)
        except MidiError as exc:
            raise UserError(str(exc)) from exc
        seconds = end + TAIL_SECONDS
        why = f" ({args.midi} ends at {end:.6g} s, plus a {TAIL_SECONDS:g} s tail)"
    else:
        seconds = RENDER_SECONDS
    try:
        check_length(seconds, args.max_seconds, "oscen render", why, "use --max-seconds (or --seconds)")
    except RenderLimitError as exc:
        raise UserError(str(exc).removeprefix("oscen render: ")) from exc


def run_render(args: argparse.Namespace) -> int:
    from .patch import PatchError, describe_failure, load_patch

    out: Path = args.out if args.out is not None else Path(args.patch.stem + ".wav")
    check_output(out, args.subtype)  # before loading or compiling anything: a typo costs nothing
    check_render_length(args)
    try:
        graph = load_patch(args.patch, args.sample_rate)
    except PatchError as exc:
        raise UserError(str(exc)) from exc
    midi_input = find_midi_target(graph, args.patch, args.midi) if args.midi is not None else None
    engine, used = make_engine(graph, args.engine)
    print(
        f"oscen render: {args.patch}" + (f" playing {args.midi}" if args.midi is not None else ""), flush=True
    )
    try:
        result, elapsed = timed_render_to_file(args, engine, out, midi_input)
    except render_errors() as exc:
        raise UserError(str(exc)) from exc
    except Exception as exc:  # a node of the patch failed while running: point at the patch, not at oscen
        raise UserError(describe_failure(args.patch, "rendering raised", exc)) from exc
    report_frames(graph, used, result.frames, result.channels, graph.sample_rate, elapsed)
    print(f"wrote {out}" + (f" (normalized from a peak of {result.peak:.3g})" if args.normalize else ""))
    return EXIT_OK


# ---------------------------------------------------------------------------------------- bench
def configure_bench(parser: argparse.ArgumentParser) -> None:
    from .bench import configure

    configure(parser)


def run_bench(args: argparse.Namespace) -> int:
    """oscen against its peers; the runner and its peers live in the checkout's benchmarks/ folder,
    so a missing folder or a bad option is the user's to fix (exit 2), not a crash."""
    from .bench import BenchUnavailable, BenchUsageError, run

    try:
        return run(args)
    except (BenchUnavailable, BenchUsageError) as exc:
        raise UserError(str(exc)) from exc


# ---------------------------------------------------------------------------------------- play
def configure_play(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "patch", type=Path, help="a patch file defining patch(sample_rate) -> Graph, or a module-level graph"
    )
    parser.add_argument(
        "--block-size",
        type=positive_int,
        default=256,
        help="samples per audio callback: smaller is less latency, more risk of clicks (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=None,
        help="stop after this long (default: play until Ctrl-C)",
    )
    parser.add_argument(
        "--sample-rate",
        type=positive_float,
        default=None,
        help="Hz (default: 44100, or the rate of a module-level graph); must suit the device",
    )
    parser.add_argument(
        "--device",
        type=device_argument,
        default=None,
        help="audio output device: its number or a unique part of its name (`python -m sounddevice` lists "
        "them; default: the system's)",
    )
    parser.add_argument(
        "--midi-in",
        nargs="?",
        const="",
        default=None,
        metavar="PORT",
        help="play live MIDI from this input port (a unique part of its name; alone: the first port) into "
        "the patch's first MidiParser",
    )
    add_engine_argument(parser)
    parser.add_argument(  # the old spelling of --engine interpret, kept as an alias
        "--interpret", dest="engine", action="store_const", const="interpret", help=argparse.SUPPRESS
    )


def device_argument(text: str) -> int | str:
    """argparse type: a device number stays a number (sounddevice takes either)."""
    return int(text) if text.strip().isdigit() else text


def open_live_midi(graph: Graph, patch: Path, port: str) -> tuple[Any, Any]:
    """The patch's MIDI input endpoint and the opened port, or a UserError saying what is missing."""
    from .midi import MidiBackendError, MidiPortError, find_midi_input, open_midi_input

    endpoint = find_midi_input(graph)
    if endpoint is None:
        raise UserError(
            f"{patch} has no MidiParser node to play live MIDI into; build the patch with "
            "oscen.midi.poly_voices (or add an oscen.midi.MidiParser)"
        )
    try:
        return endpoint, open_midi_input(port or None)
    except (MidiBackendError, MidiPortError) as exc:
        raise UserError(str(exc)) from exc


def run_play(args: argparse.Namespace) -> int:
    from .io.realtime import AudioError, check_output_device, fake_audio_speed, import_sounddevice, play
    from .patch import PatchError, describe_failure, load_patch

    try:
        graph = load_patch(args.patch, args.sample_rate)
    except PatchError as exc:
        raise UserError(str(exc)) from exc
    fake = fake_audio_speed() is not None
    try:  # before compiling: no sound card should not cost a compile first
        channels = len(graph.outputs)
        if not fake:
            check_output_device(import_sounddevice(), args.device, channels, graph.sample_rate)
    except (AudioError, GraphError) as exc:
        raise UserError(str(exc)) from exc
    midi = open_live_midi(graph, args.patch, args.midi_in) if args.midi_in is not None else None
    messages = [0]
    try:
        engine, used = make_engine(graph, args.engine)
        before_block = None
        if midi is not None:
            endpoint, port = midi

            def before_block(n: int) -> None:  # in the audio callback: drain what arrived, no waiting
                messages[0] += port.queue_block(engine, endpoint, n)

        where = "fake audio output (OSCEN_FAKE_AUDIO)" if fake else f"device {args.device or 'default'}"
        period = args.block_size / graph.sample_rate * 1e3
        print(
            f"oscen play: {args.patch} on {where}, engine {used}, blocks of {args.block_size} "
            f"({period:.1f} ms) at {graph.sample_rate:g} Hz"
            + (f", MIDI from {midi[1].name!r}" if midi is not None else "")
            + ("" if args.seconds else "; Ctrl-C to stop"),
            flush=True,
        )
        try:
            stats = play(engine, args.block_size, args.seconds, args.device, before_block=before_block)
        except AudioError as exc:
            raise UserError(str(exc)) from exc
        except Exception as exc:  # a node of the patch failed while playing: point at the patch
            raise UserError(describe_failure(args.patch, "playing raised", exc)) from exc
    finally:
        if midi is not None:
            midi[1].close()
    count = messages[0]
    print(
        stats.summary() + (f"; {count} MIDI message{'s' if count != 1 else ''}" if midi is not None else "")
    )
    return EXIT_OK


# ---------------------------------------------------------------------------------------- export
def configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "patch", type=Path, help="patch file (defines patch(sample_rate) or a module-level graph)"
    )
    parser.add_argument(
        "--web", type=Path, required=True, metavar="OUT", help="folder to write the web page into"
    )
    parser.add_argument(
        "--sample-rate", type=positive_float, default=None, help="sample rate (default 44100)"
    )
    parser.add_argument("--title", default=None, help="the page's title (default: the patch's name)")
    parser.add_argument("--serve", action="store_true", help="then serve it on localhost until Ctrl-C")
    parser.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000; 0: any free)")


def run_export(args: argparse.Namespace) -> int:
    from .export import ExportError, ExportServer, export_web
    from .patch import PatchError, load_patch

    try:
        graph = load_patch(args.patch, args.sample_rate)
        result = export_web(graph, args.web, title=args.title or args.patch.stem)
    except (PatchError, ExportError) as exc:
        raise UserError(str(exc)) from exc
    m = result.manifest
    print(
        f"oscen export: wrote {result.folder} ({len(m['params'])} parameters, {len(m['events'])} event inputs"
        + (", MIDI input" if m["midi"] else "")
        + f", {m['channels']} channel{'s' if m['channels'] != 1 else ''}, {m['sample_rate']:g} Hz)"
    )
    if args.serve:
        with ExportServer(result.folder, args.port) as server:
            print(f"serving {server.url} (Ctrl-C to stop)", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return EXIT_OK


# ---------------------------------------------------------------------------------------- batch
def configure_batch(parser: argparse.ArgumentParser) -> None:
    from .batch.cli import configure

    configure(parser)


def run_batch(args: argparse.Namespace) -> int:
    from .batch.cli import run

    return run(args)


# ---------------------------------------------------------------------------------------- main
COMMANDS: dict[str, Command] = {
    "demo": Command("render the built-in demo patch to demo.wav and demo.png", configure_demo, run_demo),
    "render": Command(
        "render a patch file to a sound file (WAV, FLAC, Ogg, MP3, AIFF)", configure_render, run_render
    ),
    "play": Command("play a patch file on the sound card, live (MIDI in optional)", configure_play, run_play),
    "export": Command(
        "export a patch as a web page that plays it (AudioWorklet)", configure_export, run_export
    ),
    "bench": Command(
        "time oscen against its peers (SignalFlow, pyo, Faust, numba, C) on the same patches",
        configure_bench,
        run_bench,
    ),
    "batch": Command(
        "render many parameter variations of a patch to a dataset folder (local or Ray)",
        configure_batch,
        run_batch,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="oscen", description="Modular audio synthesis: render patches, hear the demo."
    )
    parser.add_argument("--version", action="version", version=f"oscen {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback on errors (for debugging oscen)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, command in COMMANDS.items():
        child = sub.add_parser(name, help=command.help, description=command.help)
        command.configure(child)
        add_common_arguments(child)
        child.set_defaults(_oscen_command=command.run)
    return parser


def add_common_arguments(child: argparse.ArgumentParser) -> None:
    """Options every subcommand accepts after its name too (``oscen render p.py --traceback``).

    The default is SUPPRESS so that a sub-parser that did not see the option leaves the main
    parser's value (``oscen --traceback render p.py``) alone.
    """
    child.add_argument(
        "--traceback",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback on errors (for debugging oscen)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script passes it to sys.exit)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _told_fallbacks.clear()
    try:
        # Warnings raised while running (the JIT falling back mid-render, a clipped file) become
        # one-line notices, each once; a fallback make_engine already announced is not repeated.
        with warnings.catch_warnings(record=True) as caught:
            try:
                return args._oscen_command(args)
            finally:
                told = [str(w.message) for w in caught if not already_told(w)]
                for message in dict.fromkeys(told):
                    notice(message.removeprefix("oscen: "))
    except UserError as exc:
        if args.traceback:
            raise
        print(f"oscen {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"oscen {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        _close_engines()
