"""The web export, in a real headless Chromium: the browser's render equals Python's compiled render
of the same patch to float32 rounding, with parameter changes and notes landing on their exact
frames inside a 128-frame quantum; faults reach the page; the page has its controls."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from web_browser import browser_render, start_browser

from oscen.cli import main
from oscen.export import ExportError, ExportServer, export_web, render_scheduled
from oscen.export.schedule import Schedule
from oscen.patch import load_patch

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DEMO = REPO / "oscen" / "demo.py"
RATE = 44100.0
FLOAT32 = 1e-6  # the browser's output is float32; the kernel computes in float64 in both places


@pytest.fixture(scope="module")
def browser():
    driver = start_browser()
    yield driver
    driver.quit()


def exported(tmp_path: Path, patch: Path, name: str) -> tuple[Path, ExportServer]:
    folder = tmp_path / name
    export_web(load_patch(patch, RATE), folder, title=name)
    return folder, ExportServer(folder)


def compare(browser, tmp_path: Path, patch: Path, seconds: float, params=(), events=()) -> np.ndarray:
    folder, server = exported(tmp_path, patch, patch.stem)
    with server:
        result = browser_render(browser, server.url, seconds, params, events)
    assert result["faults"] == []
    web = result["channels"]
    python = render_scheduled(load_patch(patch, RATE), seconds, params, events)
    assert web.shape == python.shape
    assert np.max(np.abs(python)) > 0.01, "the render should not be silent"
    assert np.max(np.abs(web - python)) <= FLOAT32
    return python


def test_schedule_is_the_same_in_both_python_engines() -> None:
    """The reference the browser is held to: compiled and interpreted agree under a schedule."""
    params = [[1000, "IirLowpass#1.cutoff", 300.0], [2050, "Oscillator#0.frequency", 660.0, 0.01]]
    compiled = render_scheduled(load_patch(EXAMPLES / "seed.py", RATE), 0.2, params)
    interpreted = render_scheduled(load_patch(EXAMPLES / "seed.py", RATE), 0.2, params, compiled=False)
    assert np.max(np.abs(compiled - interpreted)) < 1e-9


def test_seed_with_parameter_changes_inside_quanta(browser, tmp_path: Path) -> None:
    # 1000 and 2050 are not multiples of 128: the worklet must split its quanta there
    params = [[1000, "IirLowpass#1.cutoff", 300.0], [2050, "Oscillator#0.frequency", 660.0, 0.01]]
    out = compare(browser, tmp_path, EXAMPLES / "seed.py", 0.5, params)
    unchanged = render_scheduled(load_patch(EXAMPLES / "seed.py", RATE), 0.5)
    first = int(np.flatnonzero(np.abs(out - unchanged)[0] > 1e-12)[0])
    assert first == 1000  # the change lands on its frame, not on a quantum boundary


def test_demo_stereo_with_a_parameter_change(browser, tmp_path: Path) -> None:
    out = compare(browser, tmp_path, DEMO, 2.0, params=[[30001, "svf.q", 4.0, 0.05]])
    assert out.shape[0] == 2


def test_polysynth_plays_a_midi_sequence_sample_accurately(browser, tmp_path: Path) -> None:
    events = [
        [100, "midi", [144, 60, 100]],
        [4453, "midi", [144, 64, 90]],
        [8901, "midi", [144, 67, 80]],
        [20000, "midi", [128, 60, 0]],
        [30077, "midi", [128, 64, 0]],
    ]
    params = [[15003, "reverb.wet", 0.5]]
    out = compare(browser, tmp_path, EXAMPLES / "polysynth.py", 1.0, params, events)
    late = [list(e) for e in events]
    late[1][0] += 1  # the second note one frame later gives a different signal from that frame on
    moved = render_scheduled(load_patch(EXAMPLES / "polysynth.py", RATE), 1.0, params, late)
    first = int(np.flatnonzero(np.abs(out - moved).max(axis=0) > 1e-12)[0])
    assert first in (4453, 4454)  # the note's own frame (an envelope's gate sample may still be 0)


FAULTY_PATCH = '''
import numpy as np
from oscen import Graph, Node, StreamOutput, ValueInput


class Stepper(Node):
    """Reads its table one step per sample and runs off its end after 300 samples."""

    limit = ValueInput(1.0)
    output = StreamOutput()

    def __init__(self):
        self.table = np.linspace(0.0, 0.5, 300)
        self.i = 0

    def process(self, sample_rate):
        self.output = self.table[self.i]
        self.i += 1


def patch(sample_rate):
    graph = Graph(sample_rate)
    graph.add_node(Stepper(), "stepper")
    return graph
'''


def test_a_fault_reaches_the_page_naming_the_node_and_line(browser, tmp_path: Path) -> None:
    patch = tmp_path / "faulty.py"
    patch.write_text(FAULTY_PATCH)
    folder = tmp_path / "faulty"
    export_web(load_patch(patch, RATE), folder)
    with ExportServer(folder) as server:
        result = browser_render(browser, server.url, 0.05)
    (fault,) = result["faults"]
    line = FAULTY_PATCH.splitlines().index("        self.output = self.table[self.i]") + 1
    assert fault.startswith("IndexError in stepper") and f"faulty.py:{line}" in fault, fault
    channels = result["channels"]
    assert channels.shape == (1, int(0.05 * RATE))  # the render finished: the page stayed alive
    # the quanta before the fault played; the faulting one (frames 256-383) is abandoned, as in Python
    assert np.allclose(channels[0, :256], np.linspace(0.0, 0.5, 300)[:256], atol=FLOAT32)
    assert not channels[0, 256:].any()


SPINNING_PATCH = """
from oscen import Graph, Node, StreamOutput, ValueInput


class Spinner(Node):
    spin = ValueInput(0.0)
    output = StreamOutput()

    def process(self, sample_rate):
        while self.spin > 0.5:
            pass
        self.output = 0.25


def patch(sample_rate):
    graph = Graph(sample_rate)
    graph.add_node(Spinner(), "spinner")
    return graph
"""


def test_an_endless_loop_ends_as_a_timeout_naming_the_node(browser, tmp_path: Path) -> None:
    patch = tmp_path / "spinning.py"
    patch.write_text(SPINNING_PATCH)
    folder = tmp_path / "spinning"
    export_web(load_patch(patch, RATE), folder)
    with ExportServer(folder) as server:
        result = browser_render(browser, server.url, 0.05, params=[[500, "spinner.spin", 1.0]])
    (fault,) = result["faults"]
    line = SPINNING_PATCH.splitlines().index("        while self.spin > 0.5:") + 1
    assert fault.startswith("TimeoutError in spinner") and f"spinning.py:{line}" in fault, fault
    channels = result["channels"]
    assert np.all(channels[0, :500] == 0.25) and not channels[0, 500:].any()  # and the page lived on


VOICES_PATCH = """
from oscen import Graph, Node, StreamInput, StreamOutput, ValueInput
from oscen.gain import Gain
from oscen.oscillators import Oscillator


class Divider(Node):
    divisor = ValueInput(1.0)
    input = StreamInput()
    output = StreamOutput()

    def process(self, sample_rate):
        self.output = self.input / self.divisor


def patch(sample_rate):
    graph = Graph(sample_rate)
    mix = graph.add_node(Gain(0.5), "mix")
    for k in range(5):
        osc = graph.add_node(Oscillator.sine(100.0 + k, 0.5), f"osc{k}")
        div = graph.add_node(Divider(), f"divider{k}")
        graph.connect(osc.output, div.input)
        graph.connect(div.output, mix.input)
    graph.set_output(mix.output)
    return graph
"""


def test_a_fault_in_a_voice_names_that_voice_s_node_on_the_page(browser, tmp_path: Path) -> None:
    """Voices compiled as one body: the page decodes the faulting node's base and voice (the
    header's NODE and LANE slots) to that voice's node, not voice 0's."""
    patch = tmp_path / "voices.py"
    patch.write_text(VOICES_PATCH)
    folder = tmp_path / "voices"
    graph = load_patch(patch, RATE)
    from oscen.jit.groups import find_groups

    assert find_groups(graph.to_ir())
    export_web(graph, folder)
    with ExportServer(folder) as server:
        result = browser_render(browser, server.url, 0.05, params=[[500, "divider3.divisor", 0.0]])
    (fault,) = result["faults"]
    line = VOICES_PATCH.splitlines().index("        self.output = self.input / self.divisor") + 1
    assert fault.startswith("ZeroDivisionError in divider3") and f"voices.py:{line}" in fault, fault


def test_live_page_has_its_controls_and_plays(browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    folder, server = exported(tmp_path, EXAMPLES / "polysynth.py", "polysynth")
    manifest = json.loads((folder / "manifest.json").read_text())
    with server:
        browser.get(server.url)
        browser.find_element(By.ID, "start").click()
        browser.implicitly_wait(5)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#params .param")) == len(manifest["params"])
        visible = [e.text.split("\n")[0] for e in browser.find_elements(By.CSS_SELECTOR, "#params > .param")]
        assert "reverb.wet" in visible and not any(v.startswith("Oscillator#") for v in visible)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#keyboard .key")) == 25
        keys = browser.find_elements(By.CSS_SELECTOR, "#keyboard .key")
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(browser).click_and_hold(keys[12]).pause(0.6).release().perform()
        state = browser.execute_script("return document.getElementById('start').textContent")
        assert state == "Pause audio"
        assert not browser.find_element(By.ID, "fault").is_displayed()
        shots = Path(os.environ.get("OSCEN_SCREENSHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(shots / "web-export.png"))


def test_export_command_writes_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "site"
    assert main(["export", str(EXAMPLES / "seed.py"), "--web", str(out)]) == 0
    for name in (
        "index.html",
        "app.js",
        "worklet.js",
        "kernel.wasm",
        "math.wasm",
        "state.bin",
        "manifest.json",
    ):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sample_rate"] == RATE and manifest["channels"] == 1 and manifest["midi"] is None
    assert {p["id"] for p in manifest["params"]} >= {"IirLowpass#1.cutoff", "Gain#2.gain"}
    assert str(out) in capsys.readouterr().out


def test_export_refuses_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from oscen.graph import Graph

    with pytest.raises(ExportError, match="takes a Graph"):
        export_web("not a graph", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="whole sample rates"):
        export_web(Graph(44100.5), tmp_path)
    with pytest.raises(ValueError, match="no value input 'nope.cutoff'"):
        Schedule.parse(load_patch(EXAMPLES / "seed.py", RATE), params=[[0, "nope.cutoff", 1.0]])
    assert main(["export", str(tmp_path / "missing.py"), "--web", str(tmp_path / "x")]) == 2
    assert "not found" in capsys.readouterr().err


def test_declared_ranges_reach_the_manifest(tmp_path: Path) -> None:
    from oscen.graph import Graph, Node, StreamOutput, ValueInput

    class Knob(Node):
        level = ValueInput(0.5, range=(0.0, 4.0))
        pitch = ValueInput(440.0, range=(20.0, 20000.0))
        free = ValueInput(3.0)
        output = StreamOutput()

        def process(self, sample_rate):
            self.output = self.level * 0.0 + self.pitch * 0.0 + self.free * 0.0

    graph = Graph(RATE)
    graph.add_node(Knob(), "knob")
    params = {p["id"]: p for p in export_web(graph, tmp_path / "knob").manifest["params"]}
    assert (params["knob.level"]["min"], params["knob.level"]["max"], params["knob.level"]["log"]) == (
        0.0,
        4.0,
        False,
    )
    assert (params["knob.pitch"]["min"], params["knob.pitch"]["max"], params["knob.pitch"]["log"]) == (
        20.0,
        20000.0,
        True,
    )
    assert (params["knob.free"]["min"], params["knob.free"]["max"]) == (
        0.0,
        6.0,
    )  # derived: no range declared
    with pytest.raises(ValueError, match="low < high"):
        ValueInput(1.0, range=(2.0, 1.0))
