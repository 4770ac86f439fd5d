"""Notebook display: clips play and picture themselves, graphs draw themselves."""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import soundfile

from oscen.delay import Delay
from oscen.filters import IirLowpass
from oscen.gain import Gain
from oscen.graph import Graph
from oscen.notebook import Clip, listen, spectrum_db
from oscen.oscillators import Oscillator


def seed_graph() -> Graph:
    graph = Graph(44100.0)
    osc = graph.add_node(Oscillator.sine(440.0, 0.5), label="osc")
    filt = graph.add_node(IirLowpass(1000.0, 0.7), label="lp")
    gain = graph.add_node(Gain(0.8), label="out")
    graph.connect(osc.output, filt.input)
    graph.connect(filt.output, gain.input)
    return graph


def test_clip_html_embeds_the_sound_it_was_given() -> None:
    clip = listen(seed_graph(), 0.25)
    html = clip._repr_html_()
    audio = re.search(r'src="data:audio/wav;base64,([^"]+)"', html)
    assert audio is not None
    data, rate = soundfile.read(io.BytesIO(base64.b64decode(audio.group(1))))
    assert rate == 44100 and data.shape == (11025,)
    # 16-bit quantisation is the only difference from the render
    assert np.max(np.abs(data - clip.samples)) <= 1.0 / 32768 + 1e-12
    picture = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert picture is not None and base64.b64decode(picture.group(1))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "0.250 s, 1 channel, 44100 Hz" in html


def test_clip_normalises_only_when_it_would_clip_and_keeps_stereo() -> None:
    loud = np.stack([np.full(100, 3.0), np.full(100, -1.5)])
    data, _ = soundfile.read(io.BytesIO(Clip(loud, 8000).wav_bytes()))
    assert data.shape == (100, 2)
    assert np.allclose(data[:, 0], 1.0, atol=1e-4) and np.allclose(data[:, 1], -0.5, atol=1e-4)


def test_spectrum_reads_a_full_scale_sine_at_0_db_at_its_frequency() -> None:
    rate, f = 48000.0, 1500.0
    x = np.sin(2 * np.pi * f * np.arange(48000) / rate)
    freqs, db = spectrum_db(x, rate)
    assert abs(freqs[np.argmax(db)] - f) < 1.0
    assert abs(db.max()) < 0.1


@pytest.mark.parametrize(
    "samples, rate, message",
    [
        (np.zeros((2, 2, 2)), 44100, "shape"),
        (np.zeros(0), 44100, "shape"),
        (np.zeros(10), 0, "sample_rate"),
        (np.zeros(10), float("nan"), "sample_rate"),
        (np.zeros(44100 * 601), 44100, "too long"),
    ],
)
def test_clip_refuses_what_it_cannot_show(samples: np.ndarray, rate: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Clip(samples, rate)


def test_graph_draws_itself_as_svg_with_every_node_and_connection() -> None:
    graph = seed_graph()
    svg = graph._repr_svg_()
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    boxes = root.findall(f".//{ns}rect")
    arrows = [p for p in root.findall(f".//{ns}path") if p.get("marker-end")]
    assert len(boxes) == 3 and len(arrows) == 2
    texts = "".join(root.itertext())
    for name in ("Oscillator", "IirLowpass", "Gain", "osc", "lp", "out"):
        assert name in texts
    # left to right along the signal: osc, then lp, then out
    xs = [float(r.get("x")) for r in boxes]
    assert xs == sorted(xs) and len(set(xs)) == 3


def test_feedback_edges_are_drawn_dashed() -> None:
    graph = Graph(44100.0)
    osc = graph.add_node(Oscillator.sine(220.0, 0.3))
    mix = graph.add_node(Gain(1.0))
    delay = graph.add_node(Delay(0.01, feedback=0.0))
    graph.connect(osc.output, mix.input)
    graph.connect(mix.output, delay.input)
    graph.connect(delay.output, mix.input)  # the delay breaks the loop
    root = ET.fromstring(graph._repr_svg_())
    dashed = [p for p in root.iter("{http://www.w3.org/2000/svg}path") if p.get("stroke-dasharray")]
    assert len(dashed) == 1
