"""Runs the ```python blocks of a Markdown file, in order, in one namespace, so docs cannot rot.

Each block is compiled against the Markdown file with its real line numbers: a failure's
traceback points at the line of the document to fix.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number of the code, code) for each ```python block."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def run_blocks(path: Path, namespace: dict[str, object] | None = None) -> dict[str, object]:
    """Execute every python block of ``path`` in one namespace; fail naming the document's line."""
    namespace = namespace if namespace is not None else {"__name__": path.stem}
    text = path.read_text()
    lines = text.splitlines()
    for line, code in python_blocks(text):
        failure = None
        try:
            # Pad so that the code's line numbers are the document's.
            exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
        except Exception as exc:
            where = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
            at = where[-1] if where else line
            failure = (
                f"{path.name}:{at}: {type(exc).__name__}: {exc}\n    {lines[at - 1].strip()}\n"
                f"(in the python block starting at line {line})"
            )
        if failure is not None:  # outside the except: no chained traceback through the whole document
            pytest.fail(failure, pytrace=False)
    return namespace
