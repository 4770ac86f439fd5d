"""Runs the README's Python code blocks, in order, in one namespace, so the README cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_blocks import ROOT, python_blocks, run_blocks

README = ROOT / "README.md"


def test_readme_has_python_blocks() -> None:
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 4
    assert any("class Doubler(Node):" in code for _, code in blocks)
    assert any("graph.set_value(filt.cutoff, 2000.0)" in code for _, code in blocks)


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything a block writes lands in a throwaway folder
    run_blocks(README, {"__name__": "readme"})
