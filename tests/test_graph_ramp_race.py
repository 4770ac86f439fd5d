"""An edit thread removing nodes while the playing thread finishes ramps (as JitGraph plays).

Regression: ``Graph.remove_node`` iterated ``_ramps`` while the playing thread popped finished ramps
from it, and raised "dictionary changed size during iteration".
"""

from __future__ import annotations

import sys
import threading

from oscen.gain import Gain
from oscen.graph import Graph

ROUNDS = 3  # each round alone caught the race in about half of the runs on the unfixed code


def _remove_all_while_playing() -> list[BaseException]:
    g = Graph(sample_rate=48000.0)
    gains = [g.add_node(Gain(gain=1.0)) for _ in range(300)]
    g.set_output(gains[0].output)
    plan = g.plan()  # JitGraph's player keeps a plan and runs it while another thread edits
    errors: list[BaseException] = []
    stop = threading.Event()

    def play() -> None:
        try:
            while not stop.is_set():
                g.run_plan(plan, 1)  # the ramps that end here are popped by `_advance_ramps`
        except BaseException as e:  # pragma: no cover - reported by the caller's assertion
            errors.append(e)

    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        for k in range(len(gains) - 1, 0, -1):
            for j, h in enumerate(gains[1:k]):  # ramps of 1-40 samples: some end in every block
                g.set_value(h.gain, 0.5, ramp=(1 + j % 40) / 48000.0)
            g.remove_node(gains[k])
    except RuntimeError as e:
        errors.append(e)
    finally:
        stop.set()
        player.join(timeout=10)
    assert not player.is_alive()
    if not errors:
        assert [h.id for h in g.nodes] == [gains[0].id]
    return errors


def test_remove_node_while_the_playing_thread_finishes_ramps() -> None:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(ROUNDS):
            errors = _remove_all_while_playing()
            assert not errors, errors
    finally:
        sys.setswitchinterval(old)
