"""Every node class of the sampler, wavetable, modulation, stereo, distortion and dynamics modules
is exported by its module and has a section in docs/nodes.md."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from oscen.graph import Node

DOCS = (Path(__file__).resolve().parent.parent / "docs" / "nodes.md").read_text()
MODULES = ["sampler", "wavetable", "modulation", "stereo", "distortion", "dynamics"]


@pytest.mark.parametrize("name", MODULES)
def test_every_node_is_exported_and_catalogued(name: str) -> None:
    module = importlib.import_module(f"oscen.{name}")
    nodes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Node) and cls is not Node and cls.__module__ == module.__name__
    ]
    assert nodes, f"oscen.{name} defines no nodes"
    for cls in nodes:
        assert cls.__name__ in module.__all__, f"{cls.__name__} is not in oscen.{name}.__all__"
        assert f"`oscen.{name}`" in DOCS
        assert f"## {cls.__name__}" in DOCS or f", {cls.__name__} (`oscen.{name}`)" in DOCS, (
            f"docs/nodes.md has no section for {cls.__name__}"
        )
        assert cls.__doc__ and "Endpoints" in cls.__doc__, f"{cls.__name__} documents no endpoints"
    example = Path(__file__).resolve().parent.parent / "examples" / f"{name}_patch.py"
    assert example.is_file() and f"examples/{name}_patch.py" in DOCS
