"""``oscen bench``: oscen against its peers (SignalFlow, pyo, Faust/DawDreamer, numba, C), one run.

The peers, their reference signals and the runner live in the source checkout's ``benchmarks/``
folder, not in the installed package (they pull in optional engines and a C compiler). So
``oscen bench`` finds that folder (next to the package, or in the current directory) and runs
``benchmarks/bench_peers.py`` with the same options, by path, in a new process of the same Python:
the benchmarks import oscen and never the other way round, and this process's ``sys.path`` is left
as it is. Without a checkout it says so (:class:`BenchUnavailable`). The method (reference check
before timing, round-robin repetitions, medians) is described in ``benchmarks/bench_peers.py``.

What stays here is what the command needs without the checkout (its arguments, :func:`configure`)
and what every benchmark script prints with: :class:`Table` and :func:`print_table` (with ``rich``
when it is installed, else aligned text), the number formats and :func:`source_revision`.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENGINE_KEYS: tuple[str, ...] = (
    "oscen", "oscen-interpreted", "signalflow", "pyo", "faust", "numba", "c", "c-rotation", "c-same",
)  # fmt: skip
"""Names for ``--engines``: oscen compiled, oscen interpreted, then the peers' default engines, and
the C peer with oscen's sine algorithm (a rotation recurrence), and the C peer doing exactly
oscen's arithmetic ("c-same", the seed patch only: bit for bit oscen's output).

Also accepted, not run by default: "c-same-16", that C built with ``-mno-avx512f``. On a CPU with
AVX-512 (AMD Zen 4, many Xeons) GCC then allocates 16 vector registers, as Cranelift does on every
x86-64 CPU, rather than 32: the seed's loop carries and reads more values than 16 registers hold,
so this row shows what the extra registers are worth to the C."""
EXTRA_ENGINE_KEYS: tuple[str, ...] = ("c-same-16",)
KNOWN_ENGINE_KEYS: tuple[str, ...] = (*ENGINE_KEYS, *EXTRA_ENGINE_KEYS)
"""Every name ``--engines`` takes."""


class BenchUnavailable(Exception):
    """The benchmarks folder (peers, reference, runner) is not available: not a source checkout."""


class BenchUsageError(ValueError):
    """A bad option value (unknown engine or patch, ...): the user's to fix."""


# ------------------------------------------------------------------------------------ tables
@dataclass
class Table:
    """A titled table; ``align`` has one 'l' or 'r' per column (numbers right-aligned)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    align: str = ""
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append([str(c) for c in cells])


def _rich_console() -> Any:
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(width=max(120, _terminal_width()), highlight=False, markup=False)


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def print_table(table: Table, file: Any = None) -> None:
    """Print ``table`` with rich if installed (wide console, so piped output does not wrap), else
    as aligned plain text; notes follow the table, one per line."""
    file = file if file is not None else sys.stdout
    align = (table.align or "l" + "r" * (len(table.columns) - 1)).ljust(len(table.columns), "r")
    console = _rich_console() if file is sys.stdout else None
    if console is not None:
        from rich.table import Table as RichTable

        rt = RichTable(title=table.title, title_justify="left")
        for name, a in zip(table.columns, align, strict=True):
            rt.add_column(name, justify="right" if a == "r" else "left")
        for row in table.rows:
            rt.add_row(*row)
        console.print(rt)
        for note in table.notes:
            console.print(note)
        console.print()
        return
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, align, strict=True)]
        return "  ".join(parts).rstrip()

    print(table.title, file=file)
    print(line(table.columns), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for row in table.rows:
        print(line(row), file=file)
    for note in table.notes:
        print(note, file=file)
    print(file=file, flush=True)


def fmt_rtf(x: float) -> str:
    """Real-time factor with about three significant digits."""
    if not math.isfinite(x):
        return "-"
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


def fmt_ratio(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"


def fmt_ms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    ms = seconds * 1000.0
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.2f}"


def source_revision() -> str:
    """``git <short sha>`` of the checkout (``+ uncommitted changes`` when dirty), or "" outside git:
    printed with every run so a table can be traced to the code that produced it."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if sha.returncode != 0:
            return ""
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "oscen"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"git {sha.stdout.strip()}" + (" + uncommitted changes in oscen/" if dirty.stdout.strip() else "")


# ------------------------------------------------------------------------------------ locating the runner
def benchmarks_root() -> Path | None:
    """The folder holding ``benchmarks/bench_peers.py`` and ``benchmarks/peers``, or None.

    Looked for next to the ``oscen`` package (a source checkout, editable or not) and in the
    current directory (an installed oscen run from inside a checkout), in that order.
    """
    here = Path(__file__).resolve().parent.parent
    for root in (here, Path.cwd()):
        if (root / "benchmarks" / "peers" / "__init__.py").is_file() and (
            root / "benchmarks" / "bench_peers.py"
        ).is_file():
            return root
    return None


def bench_script() -> Path:
    """The checkout's ``benchmarks/bench_peers.py``; :class:`BenchUnavailable` saying what to do
    when there is no checkout."""
    root = benchmarks_root()
    if root is None:
        raise BenchUnavailable(
            "oscen bench needs the benchmarks/ folder of an oscen source checkout (the peer engines "
            f"and reference signals live there, not in the installed package); none was found next to "
            f"{Path(__file__).resolve().parent} or in the current directory. Clone the repository "
            "and run `oscen bench` from inside it."
        )
    return root / "benchmarks" / "bench_peers.py"


# ------------------------------------------------------------------------------------ command line
def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def block_list(text: str) -> list[int]:
    try:
        blocks = [int(b) for b in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected block sizes like 64,256, got {text!r}") from None
    if not blocks or any(b < 1 for b in blocks):
        raise argparse.ArgumentTypeError(f"block sizes must be whole numbers >= 1, got {text!r}")
    return blocks


def configure(parser: argparse.ArgumentParser) -> None:
    """The ``oscen bench`` / ``benchmarks/bench_peers.py`` arguments."""
    parser.add_argument("--quick", action="store_true", help="short renders, 2 repetitions (a smoke run)")
    parser.add_argument(
        "--engines",
        type=comma_list,
        default=list(ENGINE_KEYS),
        help=(
            f"comma-separated, from {','.join(KNOWN_ENGINE_KEYS)} (default: all but "
            f"{','.join(EXTRA_ENGINE_KEYS)}; missing ones are skipped)"
        ),
    )
    parser.add_argument(
        "--patches",
        type=comma_list,
        default=["seed", "voices64"],
        help="comma-separated (default: seed,voices64)",
    )
    parser.add_argument(
        "--blocks", type=block_list, default=[64, 256], help="block sizes, comma-separated (default: 64,256)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="audio seconds per render (default: 10, quick: 1)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed renders per engine (default: 5, quick: 2)"
    )
    parser.add_argument(
        "--chart", type=Path, default=None, help="also draw the table as a PNG bar chart here"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement as JSON here")


def argv_of(args: argparse.Namespace) -> list[str]:
    """The command line that :func:`configure`'s parser turns into ``args`` (what ``oscen bench``
    passes on to the runner's process, which parses it with the same arguments)."""
    argv = ["--quick"] if args.quick else []
    argv += ["--engines", ",".join(args.engines), "--patches", ",".join(args.patches)]
    argv += ["--blocks", ",".join(str(b) for b in args.blocks)]
    if args.seconds is not None:
        argv += ["--seconds", repr(float(args.seconds))]
    if args.repeats is not None:
        argv += ["--repeats", str(args.repeats)]
    for flag, path in (("--chart", args.chart), ("--json", args.json)):
        if path is not None:
            argv += [flag, str(path)]
    return argv


def run(args: argparse.Namespace) -> int:
    """``oscen bench``: run the checkout's ``benchmarks/bench_peers.py`` with ``args`` in a new
    process of this Python (same working directory and environment; its output goes straight to
    this process's stdout and stderr) and return its exit code. Raises :class:`BenchUnavailable`
    without a checkout and :class:`BenchUsageError` for an unknown engine, for the caller to
    report as the user's error (an unknown patch the runner reports itself, with exit code 2)."""
    bad = [k for k in args.engines if k not in KNOWN_ENGINE_KEYS]
    if bad:
        raise BenchUsageError(
            f"unknown engine(s) {', '.join(bad)}; choose from {', '.join(KNOWN_ENGINE_KEYS)}"
        )
    script = bench_script()
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.run([sys.executable, str(script), *argv_of(args)], check=False).returncode
