"""Every example runs: each patch file renders in both engines (and they agree), the song script
writes its MIDI file, and the notebook executes with its rich outputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from oscen.graph import Graph
from oscen.io import render
from oscen.jit import CraneliftJit, GraphState
from oscen.patch import load_patch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PATCHES = sorted(p.name for p in EXAMPLES.glob("*.py") if "def patch(" in p.read_text())
SECONDS = 0.25


def test_every_example_is_covered() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")} - set(PATCHES)
    assert scripts <= {"make_song.py"}, f"examples that are neither patches nor run here: {scripts}"
    assert {"seed.py", "custom_node.py", "polysynth.py"} <= set(PATCHES)


@pytest.mark.parametrize("name", PATCHES)
def test_example_patch_renders_the_same_in_both_engines(name: str) -> None:
    interpreted = render(load_patch(EXAMPLES / name, 44100.0), SECONDS, progress=False)
    graph: Graph = load_patch(EXAMPLES / name, 44100.0)
    compiled = CraneliftJit().compile(graph.to_ir())
    state = GraphState.from_graph(graph)
    n = interpreted.shape[-1]
    fast = np.concatenate([compiled.process_block(state, min(512, n - i)) for i in range(0, n, 512)], axis=-1)
    assert np.isfinite(interpreted).all()
    assert fast.shape == interpreted.shape
    scale = max(1.0, float(np.max(np.abs(interpreted))))
    assert np.max(np.abs(fast - interpreted)) <= 1e-9 * scale


def test_make_song_writes_the_bundled_song(tmp_path: Path) -> None:
    import mido

    spec = importlib.util.spec_from_file_location("oscen_example_make_song", EXAMPLES / "make_song.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    song = module.build_song()
    song.save(tmp_path / "song.mid")
    bundled = mido.MidiFile(EXAMPLES / "song.mid")
    assert [list(t) for t in mido.MidiFile(tmp_path / "song.mid").tracks] == [list(t) for t in bundled.tracks]


def test_notebook_executes_and_shows_a_diagram_and_a_player() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    rich = [o.data for o in outputs if o.output_type == "execute_result"]
    assert any("image/svg+xml" in d for d in rich), "the graph should draw itself"
    assert any("<audio" in d.get("text/html", "") for d in rich), "the clip should show a player"
