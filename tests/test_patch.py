"""Patch files: the convention, and an error message that points into the user's file for each way to get it wrong."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest

from oscen import Graph
from oscen.patch import PatchError, load_patch

NODE = """
from oscen import Graph, Node, StreamInput, StreamOutput, ValueInput


class Ramp(Node):
    step = ValueInput(0.25)
    output = StreamOutput()

    def __init__(self):
        self.value = 0.0

    def process(self, sample_rate):
        self.output = self.value
        self.value += self.step


class Doubler(Node):
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = self.input * 2.0
"""


def write(tmp_path: Path, body: str, name: str = "my_patch.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line containing ``text``: tests don't hard-code line numbers."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_patch_function_gets_the_sample_rate(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        NODE
        + """
def patch(sample_rate):
    graph = Graph(sample_rate)
    ramp = graph.add_node(Ramp())
    double = graph.add_node(Doubler())
    graph.connect(ramp.output, double.input)
    return graph
""",
    )
    graph = load_patch(path, 48000)
    assert isinstance(graph, Graph) and graph.sample_rate == 48000.0
    assert list(graph.process_block(3)) == [0.0, 0.5, 1.0]
    assert load_patch(path).sample_rate == 44100.0
    # Each load builds a fresh graph.
    assert load_patch(path, 48000) is not graph


def test_custom_node_source_is_available_to_the_jit(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        NODE
        + "\ndef patch(sample_rate):\n    graph = Graph(sample_rate)\n    graph.add_node(Doubler())\n    return graph\n",
    )
    graph = load_patch(path, 44100)
    cls = type(graph.nodes[0].node)
    assert "self.output = self.input * 2.0" in inspect.getsource(cls)
    assert Path(inspect.getsourcefile(cls)).resolve() == path.resolve()


def test_module_level_graph(tmp_path: Path) -> None:
    path = write(tmp_path, NODE + "\ngraph = Graph(22050)\ngraph.add_node(Ramp())\n")
    assert load_patch(path).sample_rate == 22050.0
    assert load_patch(path, 22050).sample_rate == 22050.0
    with pytest.raises(
        PatchError, match=r"runs at 22050 Hz but 44100 Hz was asked for.*def patch\(sample_rate\)"
    ):
        load_patch(path, 44100)


def test_patch_can_import_a_module_beside_it(tmp_path: Path) -> None:
    write(tmp_path, NODE, name="my_nodes_helper.py")
    path = write(
        tmp_path,
        """
        from oscen import Graph
        from my_nodes_helper import Ramp

        def patch(sample_rate):
            graph = Graph(sample_rate)
            graph.add_node(Ramp())
            return graph
        """,
    )
    assert load_patch(path).process_block(2).tolist() == [0.0, 0.25]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PatchError, match=r"patch file not found: .*nope\.py"):
        load_patch(tmp_path / "nope.py")
    with pytest.raises(PatchError, match="not a file"):
        load_patch(tmp_path)


def test_syntax_error_gives_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "from oscen import Graph\n\ndef patch(sample_rate)\n    return Graph(sample_rate)\n"
    )
    with pytest.raises(PatchError) as info:
        load_patch(path)
    message = str(info.value)
    assert f"{path}:3" in message and "syntax error" in message
    assert "def patch(sample_rate)" in message


def test_exception_in_patch_points_at_the_users_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        NODE
        + """
def helper(graph):
    return graph.add_node(Ramp()).output / 0  # endpoints don't divide


def patch(sample_rate):
    graph = Graph(sample_rate)
    helper(graph)
    return graph
""",
    )
    with pytest.raises(PatchError) as info:
        load_patch(path)
    message = str(info.value)
    line = line_of(path, "endpoints don't divide")
    assert message.startswith(f"{path}:{line} in helper(): patch(sample_rate) raised TypeError")
    assert "return graph.add_node(Ramp()).output / 0" in message
    assert "Traceback" not in message


def test_oscen_error_points_at_the_call_in_the_users_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        NODE
        + """
def patch(sample_rate):
    graph = Graph(sample_rate)
    ramp = graph.add_node(Ramp())
    graph.connect(ramp.step, ramp.output)  # backwards
    return graph
""",
    )
    with pytest.raises(PatchError) as info:
        load_patch(path)
    message = str(info.value)
    assert f"{path}:{line_of(path, '# backwards')} in patch()" in message
    assert "GraphError" in message and "connect from an output" in message


def test_exception_at_module_level(tmp_path: Path) -> None:
    path = write(tmp_path, "import math\n\nx = math.sqrt(-1)\n")
    with pytest.raises(
        PatchError, match=rf"{path}:3: loading the patch raised ValueError: math domain error"
    ):
        load_patch(path)


def test_import_error_in_patch(tmp_path: Path) -> None:
    path = write(tmp_path, "from oscen.no_such_module import Thing\n")
    with pytest.raises(PatchError, match=rf"{path}:1: loading the patch raised ModuleNotFoundError"):
        load_patch(path)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("def patch(sample_rate):\n    graph = 1\n", r"returned None.*forget `return graph`"),
        ("def patch(sample_rate):\n    return [1]\n", r"returned a list"),
        ("graph = 'not a graph'\n", r"module-level `graph` is a str"),
        ("patch = 3\n", r"`patch` must be a function"),
        ("def patch():\n    pass\n", r"`patch\(\)` cannot be called as patch\(sample_rate\)"),
        (
            "x = 1\n",
            r"defines neither `def patch\(sample_rate\) -> Graph` \(preferred\) nor a module-level `graph`",
        ),
    ],
)
def test_wrong_shapes_of_patch(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(PatchError, match=expected):
        load_patch(write(tmp_path, body))
