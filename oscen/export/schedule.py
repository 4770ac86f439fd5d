"""Timestamped parameter changes and events, played the way the web worklet plays them.

A :class:`Schedule` names value and event inputs as the web manifest does (``"label.endpoint"``, or
``"midi"`` for the patch's MIDI input) and stamps each change with the frame it lands on.
:func:`render_scheduled` renders a graph under a schedule in 128-frame quanta, splitting a quantum
at each parameter change and queueing each event at its frame, exactly as ``worklet.js`` does, so
Python's render is the reference the browser's is compared with.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph import Endpoint, Graph
from ..graph.endpoints import Kind

QUANTUM = 128


@dataclass(frozen=True)
class Change:
    frame: int
    endpoint: Endpoint
    value: Any
    ramp: float = 0.0


@dataclass
class Schedule:
    params: list[Change] = field(default_factory=list)
    events: list[Change] = field(default_factory=list)

    @classmethod
    def parse(
        cls, graph: Graph, params: Iterable[Sequence[Any]] = (), events: Iterable[Sequence[Any]] = ()
    ) -> Schedule:
        """From ``[frame, id, value(, ramp seconds)]`` params and ``[frame, id, value or fields]`` events."""
        by_id = endpoints_by_id(graph)
        out = cls()
        for kind, items, target in (("value", params, out.params), ("event", events, out.events)):
            for item in items:
                if not 3 <= len(item) <= (4 if kind == "value" else 3):
                    raise ValueError(
                        f"a scheduled {kind} change is [frame, id, value{', ramp' if kind == 'value' else ''}], got {item!r}"
                    )
                frame, name, value = item[0], item[1], item[2]
                if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
                    raise ValueError(f"scheduled change {item!r}: the frame must be an int >= 0")
                ep = by_id.get(name)
                if ep is None or ep.kind.value != kind:
                    names = sorted(k for k, e in by_id.items() if e.kind.value == kind)
                    raise ValueError(
                        f"scheduled change {item!r}: no {kind} input {name!r} (there are: {', '.join(names)})"
                    )
                ramp = float(item[3]) if len(item) == 4 else 0.0
                if not math.isfinite(ramp) or ramp < 0:
                    raise ValueError(f"scheduled change {item!r}: the ramp must be seconds >= 0")
                target.append(Change(frame, ep, value, ramp))
        out.params.sort(key=lambda c: c.frame)  # stable: same-frame changes keep their order
        out.events.sort(key=lambda c: c.frame)
        return out


def endpoints_by_id(graph: Graph) -> dict[str, Endpoint]:
    """Every value and event input by its manifest id, ``"label.endpoint"``; ``"midi"`` too."""
    from ..midi import find_midi_input

    ids: dict[str, Endpoint] = {}
    for handle in graph.nodes:
        for ep in handle.endpoints():
            if ep.direction.value == "input" and ep.kind in (Kind.VALUE, Kind.EVENT):
                ids[f"{handle.label}.{ep.name}"] = ep
    midi = find_midi_input(graph)
    if midi is not None:
        ids["midi"] = midi
    return ids


def render_scheduled(
    graph: Graph,
    seconds: float,
    params: Iterable[Sequence[Any]] = (),
    events: Iterable[Sequence[Any]] = (),
    compiled: bool = True,
) -> np.ndarray:
    """``(channels, n)`` float64 of ``graph`` under the schedule, compiled (as the web export runs
    it: the kernel for 128-frame blocks) or interpreted. Frames count from the graph's position."""
    schedule = Schedule.parse(graph, params, events)
    if compiled:
        from .web import compile_for_web

        kernel, state = compile_for_web(graph)
        engine: Any = state

        def run(k: int) -> np.ndarray:
            return kernel.process_block(state, k)

    else:
        engine = graph
        run = graph.process_block
    origin = engine.frame
    total = int(round(seconds * graph.sample_rate))
    blocks = []
    pending_params = list(schedule.params)
    pending_events = list(schedule.events)
    done = 0
    while done < total:
        end = min(done + QUANTUM, total)
        while pending_events and pending_events[0].frame < end:
            ev = pending_events.pop(0)
            engine.queue_event(ev.endpoint, max(ev.frame, done) - done, ev.value)
        while done < end:
            while pending_params and pending_params[0].frame <= done:
                p = pending_params.pop(0)
                engine.set_value(p.endpoint, float(p.value), ramp=p.ramp)
            stop = min(end, pending_params[0].frame) if pending_params else end
            block = np.asarray(run(stop - done), dtype=np.float64)
            blocks.append(block if block.ndim == 2 else block[None, :])
            done = stop
        assert engine.frame - origin == done
    if not blocks:
        return np.zeros((len(graph.outputs), 0))
    return np.concatenate(blocks, axis=-1)
