"""The Ray backend on a real local Ray cluster (two CPUs, started once for this module)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_batch import NOISY  # the same small patch as the local tests

from oscen import Node, StreamOutput, ValueInput
from oscen.batch import LogUniform, RandomSpace, Uniform, render_batch, restore_trap_handlers
from oscen.graph import Graph
from oscen.jit import CraneliftJit, GraphState

ray = pytest.importorskip("ray")

SR = 8000.0


class Divider(Node):
    by = ValueInput(0.0)
    output = StreamOutput()

    def process(self, sample_rate: float) -> None:
        self.output = 1.0 / self.by


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    restore_trap_handlers()
    try:
        yield
    finally:
        ray.shutdown()
        restore_trap_handlers()  # or the next compiled fault in this process kills it


def divide_by_zero() -> None:
    """A fault in compiled code in this process (a trap: needs wasmtime's signal handlers)."""
    graph = Graph(SR)
    graph.add_node(Divider(), "divider")
    compiled = CraneliftJit().compile(graph.to_ir())
    compiled.process_block(GraphState.from_graph(graph), 4)


def test_compiled_faults_still_raise_after_ray_starts_and_stops(tmp_path: Path) -> None:
    # render_batch starts its own cluster here (none is up yet in this test) and stops it; before
    # traps.restore, ray.shutdown left SIGILL at its default and this fault killed the process.
    patch = tmp_path / "noisy.py"
    patch.write_text(textwrap.dedent(NOISY))
    assert not ray.is_initialized()
    result = render_batch(patch, [{}], seconds=0.01, sample_rate=SR, backend="ray", workers=1, progress=False)
    assert result.rendered == 1 and not ray.is_initialized()
    with pytest.raises(ZeroDivisionError, match="divider"):
        divide_by_zero()


def test_ray_backend_on_a_local_cluster(cluster, tmp_path: Path) -> None:
    """One test, so that one xdist worker starts one cluster for all of it."""
    items_are_bit_identical_to_local(tmp_path)
    failures_are_recorded_and_the_folder_resumes(tmp_path)


def items_are_bit_identical_to_local(tmp_path: Path) -> None:
    patch = tmp_path / "noisy.py"
    patch.write_text(textwrap.dedent(NOISY))
    space = RandomSpace(
        {"osc.frequency": LogUniform(100, 2000), "lp.cutoff": Uniform(500, 3000)}, n=6, seed=4
    )
    remote = render_batch(
        patch, space, seconds=0.1, sample_rate=SR, backend="ray", chunk_size=1, progress=False
    )
    again = render_batch(patch, space, seconds=0.1, sample_rate=SR, backend="ray", workers=1, progress=False)
    local = render_batch(patch, space, seconds=0.1, sample_rate=SR, progress=False)
    assert remote.backend == "ray" and remote.workers == 2 and remote.rendered == 6
    assert np.array_equal(remote.audio, local.audio) and np.array_equal(again.audio, local.audio)
    assert ray.is_initialized()  # a cluster the caller started stays up
    with pytest.raises(ZeroDivisionError, match="divider"):
        divide_by_zero()  # ray.init replaced the trap handlers; oscen put them back


def failures_are_recorded_and_the_folder_resumes(tmp_path: Path) -> None:
    patch = tmp_path / "faulty.py"
    patch.write_text(
        textwrap.dedent("""
        from oscen import Graph, Node, StreamOutput, ValueInput

        class Faulty(Node):
            mode = ValueInput(0.0)
            output = StreamOutput()

            def process(self, sample_rate):
                self.output = 1.0 / self.mode

        def patch(sample_rate):
            graph = Graph(sample_rate)
            graph.add_node(Faulty(), "faulty")
            return graph
        """)
    )
    out = tmp_path / "data"
    rows = [{"faulty.mode": m} for m in (1, 0, 2, 4)]
    result = render_batch(
        patch, rows, out=out, seconds=0.05, sample_rate=SR, backend="ray", chunk_size=1, progress=False
    )
    assert sorted(result.failed) == [1] and "ZeroDivisionError" in result.failed[1]
    assert len({r["worker"] for r in result.rows}) == 2  # two actors, two processes, each its own kernel
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["000000.flac", "000002.flac", "000003.flac"]
    rerun = render_batch(patch, rows, out=out, seconds=0.05, sample_rate=SR, backend="ray", progress=False)
    assert rerun.skipped == 3 and rerun.rendered == 0 and sorted(rerun.failed) == [1]
