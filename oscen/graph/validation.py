"""Argument checks shared by every engine: the interpreter (``Graph``), compiled state (``GraphState``,
``CompiledGraph``, ``CraneliftJit``) and ``JitGraph``.

Each public call of each engine checks its arguments here, so the same input is accepted or refused
the same way, with the same message, whichever engine runs the graph. Every check runs before the
call changes anything, so a refused call leaves the graph as it was.

The limits are stated here once:

* :data:`MAX_BLOCK_SAMPLES`: samples one ``process_block`` call may produce (longer renders go block
  by block, as ``oscen.io.render`` does).
* :data:`MAX_FRAME`: the largest frame an event or a ramp may reach (compiled code counts frames in
  64-bit integers).
* :data:`MAX_EVENTS_PER_SAMPLE`: events waiting for one event input at one and the same sample.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .endpoints import MAX_EVENT_FIELDS as MAX_EVENT_FIELDS  # the limit of an endpoint, re-exported
from .endpoints import Direction, Endpoint, Kind

MAX_BLOCK_SAMPLES = 1 << 22
"""Samples one ``process_block`` call may produce: 4,194,304 (95 s at 44.1 kHz, 32 MB per output
channel). A guard against a typo allocating gigabytes; render longer stretches block by block."""

MAX_FRAME = 1 << 62
"""The largest absolute frame an event may be queued for, or a ramp may end at (about 3.3 million
years at 44.1 kHz): compiled code keeps frames in signed 64-bit integers and adds block sizes."""

MAX_EVENTS_PER_SAMPLE = 256
"""Events that may wait for one event input at one and the same sample (compiled code hands an input
this many events at once; any number may wait for *different* samples)."""

MAX_KERNEL_BLOCK = 65536
"""The largest ``max_block`` a compiler accepts (samples per call into compiled code)."""


class GraphError(ValueError):
    """A graph call that cannot be carried out; the graph is left as it was."""


def _is_number(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (int, float, np.integer, np.floating)
    )


def _is_int(value: Any) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def finite(value: Any, call: str, what: str) -> float:
    """``value`` as a float; refuses bools, strings and other non-numbers, NaN and infinities."""
    if not _is_number(value):
        raise GraphError(f"{call}: {what} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise GraphError(f"{call}: {what} must be finite, got {result}")
    return result


def sample_rate(value: Any, call: str) -> float:
    """A sample rate: a positive finite number (Python or numpy), not a bool."""
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:
        raise GraphError(f"{call}: sample_rate must be a positive number, got {value!r}")
    return float(value)


def block_size(n: Any, call: str) -> int:
    """A block size for ``process_block``: an int in 0..MAX_BLOCK_SAMPLES."""
    if not _is_int(n) or n < 0:
        raise GraphError(f"{call}: n must be an int >= 0, got {n!r}")
    if n > MAX_BLOCK_SAMPLES:
        raise GraphError(
            f"{call}: n = {int(n)} samples is more than one call may produce "
            f"(MAX_BLOCK_SAMPLES = {MAX_BLOCK_SAMPLES}); process long stretches block by block"
        )
    return int(n)


def ramp_steps(ramp: Any, rate: float, call: str) -> int:
    """A ramp time in seconds as a number of samples (0: a jump)."""
    seconds = finite(ramp, call, "ramp")
    if seconds < 0:
        raise GraphError(f"{call}: ramp must be >= 0 seconds, got {seconds}")
    if seconds * rate > MAX_FRAME:
        raise GraphError(f"{call}: ramp = {seconds} s is longer than MAX_FRAME = {MAX_FRAME} samples")
    return round(seconds * rate)


def event_frame(frame_offset: Any, frame: int, call: str) -> int:
    """The absolute frame of an event ``frame_offset`` samples after ``frame``."""
    if not _is_int(frame_offset) or frame_offset < 0:
        raise GraphError(f"{call}: frame_offset must be an int >= 0, got {frame_offset!r}")
    at = int(frame) + int(frame_offset)
    if at > MAX_FRAME:
        raise GraphError(
            f"{call}: frame_offset = {int(frame_offset)} puts the event past MAX_FRAME = {MAX_FRAME}"
        )
    return at


def events_at_frame(waiting: int, where: Any, frame: int, call: str) -> None:
    """Refuse one more event for an input that already has ``waiting`` events at ``frame``."""
    if waiting >= MAX_EVENTS_PER_SAMPLE:
        raise GraphError(
            f"{call}: {where!r} already has {waiting} events waiting at frame {frame} "
            f"(MAX_EVENTS_PER_SAMPLE = {MAX_EVENTS_PER_SAMPLE} per input and sample)"
        )


def payload(value: Any, call: str, require_finite: bool = True) -> tuple[float, ...]:
    """An event payload as a tuple of MAX_EVENT_FIELDS floats (missing fields are 0.0).

    Queued events must be finite (``require_finite``); events emitted by node code are taken as the
    node computed them, as compiled code does."""
    fields = value if isinstance(value, (tuple, list)) else (value,)
    if len(fields) > MAX_EVENT_FIELDS:
        raise GraphError(f"{call}: an event carries at most {MAX_EVENT_FIELDS} numbers, got {len(fields)}")
    out = []
    for f in fields:
        if not _is_number(f):
            raise GraphError(f"{call}: event fields must be numbers, got {f!r}")
        x = float(f)
        if require_finite and not math.isfinite(x):
            raise GraphError(f"{call}: event fields must be finite, got {x}")
        out.append(x)
    return tuple(out) + (0.0,) * (MAX_EVENT_FIELDS - len(out))


def endpoint(ep: Any, call: str, role: str) -> Any:
    """``ep`` must be an endpoint handle (its graph and node are checked by the engine)."""
    if not isinstance(ep, Endpoint):
        raise GraphError(f"{call}: {role} must be an endpoint (like osc.output), got {type(ep).__name__}")
    return ep


def value_input(ep: Any, call: str) -> None:
    if ep.kind is not Kind.VALUE or ep.direction is not Direction.INPUT:
        raise GraphError(f"{call}: {ep!r} is not a value input")


def event_input(ep: Any, call: str) -> None:
    if ep.kind is not Kind.EVENT or ep.direction is not Direction.INPUT:
        raise GraphError(f"{call}: {ep!r} is not an event input")


def has_value(ep: Any, call: str) -> None:
    if ep.kind is Kind.EVENT:
        raise GraphError(f"{call}: {ep!r} is an event endpoint and has no value")


def owned(obj: Any, cls: type, uid: int, call: str, what: str) -> None:
    """``obj`` must be a ``cls`` made by the graph of ``uid`` (a plan, a snapshot): another graph's
    would name nodes this graph does not have, or other nodes under the same ids."""
    if not isinstance(obj, cls):
        raise GraphError(f"{call}: {what} must be a {cls.__name__}, got {type(obj).__name__}")
    if obj.graph_uid != uid:
        raise GraphError(f"{call}: this {what} was made by another graph (uid {obj.graph_uid}, not {uid})")


def frame(value: Any, call: str, what: str) -> int:
    """An absolute frame: an int in 0..MAX_FRAME."""
    if not _is_int(value) or not 0 <= value <= MAX_FRAME:
        raise GraphError(f"{call}: {what} must be an int in 0..MAX_FRAME, got {value!r}")
    return int(value)


def state_key(key: Any, call: str, what: str) -> tuple[int, str]:
    """A key of a graph's running state: (node id, endpoint name)."""
    if not (isinstance(key, tuple) and len(key) == 2 and _is_int(key[0]) and isinstance(key[1], str)):
        raise GraphError(f"{call}: the keys of {what} must be (node id, input name) pairs, got {key!r}")
    return int(key[0]), key[1]


def ramp_state(ramp: Any, call: str, where: Any) -> tuple[float, float, int]:
    """A ramp in progress (target, step, remaining): finite numbers, remaining an int >= 1."""
    try:
        target, step, remaining = ramp.target, ramp.step, ramp.remaining
    except AttributeError:
        raise GraphError(f"{call}: the ramp of {where} must be a Ramp, got {type(ramp).__name__}") from None
    if not _is_int(remaining) or not 1 <= remaining <= MAX_FRAME:
        raise GraphError(
            f"{call}: the ramp of {where} must have 1..MAX_FRAME samples remaining, got {remaining!r}"
        )
    return (
        finite(target, call, f"the ramp target of {where}"),
        finite(step, call, f"the ramp step of {where}"),
        int(remaining),
    )


def pending_event(event: Any, call: str, where: Any) -> tuple[int, tuple[float, ...]]:
    """A pending event (absolute frame, fields) as a frame and a full payload."""
    if not (isinstance(event, tuple) and len(event) == 2):
        raise GraphError(f"{call}: the events of {where} must be (frame, fields) pairs, got {event!r}")
    return frame(event[0], call, f"an event frame of {where}"), payload(event[1], call)


def max_block(value: Any, call: str) -> int:
    """Samples per call into compiled code: an int in 1..MAX_KERNEL_BLOCK."""
    if not _is_int(value) or not 1 <= value <= MAX_KERNEL_BLOCK:
        raise GraphError(f"{call}: max_block must be an int in 1..{MAX_KERNEL_BLOCK}, got {value!r}")
    return int(value)


def positive_int(value: Any, call: str, what: str) -> int:
    if not _is_int(value) or value < 1:
        raise GraphError(f"{call}: {what} must be an int >= 1, got {value!r}")
    return int(value)


def timeout(value: Any, call: str) -> float:
    """A time limit in seconds: a positive finite number."""
    seconds = finite(value, call, "timeout")
    if seconds <= 0:
        raise GraphError(f"{call}: timeout must be > 0 seconds, got {seconds}")
    return seconds


def optional_bool(value: Any, call: str, what: str) -> bool | None:
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise GraphError(f"{call}: {what} must be True, False or None, got {value!r}")
    return None if value is None else bool(value)
