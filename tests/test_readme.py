"""Runs the README's Python code blocks, in order, in one namespace, so the README cannot rot.

Each block is compiled against README.md with its real line numbers: a failure's traceback points
at the README line to fix.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number of the code, code) for each ```python block."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def test_readme_has_python_blocks() -> None:
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 4
    assert any("class Doubler(Node):" in code for _, code in blocks)
    assert any("graph.set_value(filt.cutoff, 2000.0)" in code for _, code in blocks)


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything a block writes lands in a throwaway folder
    namespace: dict[str, object] = {"__name__": "readme"}
    lines = README.read_text().splitlines()
    for line, code in python_blocks(README.read_text()):
        # Pad so that the code's line numbers are the README's.
        failure = None
        try:
            exec(compile("\n" * (line - 1) + code, str(README), "exec"), namespace)
        except Exception as exc:
            where = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(README)]
            at = where[-1] if where else line
            failure = (
                f"README.md:{at}: {type(exc).__name__}: {exc}\n    {lines[at - 1].strip()}\n"
                f"(in the python block starting at line {line})"
            )
        if failure is not None:  # outside the except: no chained traceback through the whole README
            pytest.fail(failure, pytrace=False)
