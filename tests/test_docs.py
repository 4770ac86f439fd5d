"""The documentation: its pages' code runs, its examples run, and the site builds without a warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import ROOT, python_blocks, run_blocks

GUIDES = [ROOT / "docs" / "tutorial.md", ROOT / "docs" / "cookbook.md"]


@pytest.mark.parametrize("page", GUIDES, ids=lambda p: p.name)
def test_guide_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(python_blocks(page.read_text())) >= 5, f"{page.name} should teach by example"
    monkeypatch.chdir(tmp_path)
    run_blocks(page)


def test_site_builds_without_warnings(tmp_path: Path) -> None:
    """mkdocs in strict mode turns every warning (a broken link, a docstring it cannot read) into a failure."""
    pytest.importorskip(
        "mkdocstrings", reason="the docs extra is part of the test extra; reinstall with ./dev test"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert not warnings, "\n".join(warnings)
    site = tmp_path / "site"
    for page in ("index.html", "tutorial/index.html", "cookbook/index.html", "api/graph/index.html"):
        assert (site / page).is_file(), page
    # the API reference really holds the generated docstrings
    api = (site / "api" / "graph" / "index.html").read_text()
    assert "set_value" in api and "process_block" in api
    shutil.rmtree(site)
