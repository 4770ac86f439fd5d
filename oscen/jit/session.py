"""A compile session: what one compiler (a :class:`~.compiler.CraneliftJit`, and so a
:class:`~.jitgraph.JitGraph`) keeps between compiles; only lane bodies are also kept for the
whole process (:func:`CompileSession.lane_body`).

A re-patch recompiles only the node variants that changed: the session keeps, per variant, the
frontend's lowering and the passes' primitive code, least recently used first out. Keys are
structural (class, attribute types, constants, endpoints, sample rate, connected inputs and the
options that shape the code), never ``id()``; an entry whose lowering folded in a global that has
changed since is dropped. Two compiles may run on one session at once (a JitGraph's compiler thread
and a batch driver sharing it): the caches are locked, and a variant compiled twice at once is
simply kept once.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from hashlib import sha1
from typing import Any

from ..graph.ir import NodeIR
from .frontend import JitError, NodeLowering, attribute_infos, fingerprint
from .layout import NodeLayout
from .passes import VariantCode, compile_variant

VARIANT_CACHE = 64
"""Node variants whose lowering and code a session keeps (least recently used go first): a
re-patch recompiles only what changed, and a live session that meets thousands of variants (every
distinct constant is one) keeps its memory flat. A patch has a handful of variants (the 16-voice
polysynth 8, the demo 9); an entry is tens of KB, and bench_soak's random patches (a new variant
nearly every edit) grew 2 KB per edit with 256 entries, 0.75 KB with 16."""


def variant_key(node: NodeIR, sample_rate: float) -> tuple:
    """What makes two nodes one variant: same class, attribute types, constants (-0.0 and the NaNs
    told apart), endpoints and sample rate.

    Kept on the NodeIR (a compile asks for it several times per node: groups, lowering, code),
    with the sample rate it was made for; a NodeIR is not changed after it is built, and every
    ``to_ir()`` builds new ones, so an edited node, a new class or new constants make a new key."""
    got = node.__dict__.get("_variant_key")
    if got is not None and got[0] == sample_rate:
        return got[1]
    # Nodes of one template share their state, constants and endpoint objects (build_ir): the
    # key is made once per distinct set (checked by identity, the objects kept alive with it).
    parts = (node.resolve_class(), node.state, node.constants, node.endpoints)
    ids = (id(parts[0]), id(parts[1]), id(parts[2]), id(parts[3]), sample_rate)
    shared = _SHARED_KEYS.get(ids)  # one dict read (atomic); writes are locked
    if shared is not None:
        made = shared[0]
        if made[0] is parts[0] and made[1] is parts[1] and made[2] is parts[2] and made[3] is parts[3]:
            key = shared[1]
            node.__dict__["_variant_key"] = (sample_rate, key)
            return key
    key = (
        node.resolve_class(),
        tuple((s.name, s.type, s.length, s.cols) for s in node.state),
        tuple(sorted((name, fingerprint(v)) for name, v in node.constants.items())),
        tuple((e.name, e.kind, e.direction, e.default, e.arity) for e in node.endpoints),
        sample_rate,
    )
    node.__dict__["_variant_key"] = (sample_rate, key)
    with _SHARED_LOCK:
        _SHARED_KEYS[ids] = (parts, key)
        while len(_SHARED_KEYS) > VARIANT_CACHE:
            _SHARED_KEYS.pop(next(iter(_SHARED_KEYS)))
    return key


LANE_BODIES = 16
"""Lane bodies the process keeps for every compiler (least recently used go first), by the
digest of the voice body's text and the width: a patch has one or two voice groups; an entry
is the lane body's kernel IR (voices64's: about 2,000 nodes, some 0.3 MB)."""
_LANE_BODIES: dict[tuple, Any] = {}
_LANE_LOCK = threading.Lock()


def _shared_key(key: tuple) -> tuple:
    """``key`` with its texts replaced by their digests (a voice body's text is tens of KB)."""
    return tuple(sha1(x.encode()).digest() if isinstance(x, str) else x for x in key)


def _recall_shared(key: tuple) -> Any:
    key = _shared_key(key)
    with _LANE_LOCK:
        got = _LANE_BODIES.pop(key, None)
        if got is not None:
            _LANE_BODIES[key] = got  # most recently used last
        return got


def _remember_shared(key: tuple, body: Any) -> None:
    key = _shared_key(key)
    with _LANE_LOCK:
        _LANE_BODIES.setdefault(key, body)  # made twice at once: the first one kept
        while len(_LANE_BODIES) > LANE_BODIES:
            _LANE_BODIES.pop(next(iter(_LANE_BODIES)))


def _keep_texts(made: Any) -> None:
    """Have the printer keep the text of every function a lane body's maker returned (the lane
    functions themselves, after the passes that follow the lanes pass, and their helpers): they
    are never changed, and printing voices64's pair body took ~0.5 ms per compile."""
    from .backends.wasm import keep_text
    from .kernel import Function

    for item in made if isinstance(made, (tuple, list)) else (made,):
        if isinstance(item, Function):
            keep_text(item.body)
        elif isinstance(item, (tuple, list)):
            _keep_texts(item)


_SHARED_KEYS: dict[tuple, tuple[tuple, tuple]] = {}
"""The newest variant keys by the ids of the objects they were made of (see variant_key)."""
_SHARED_LOCK = threading.Lock()


class CompileSession:
    """The caches of one compiler (see the module docstring)."""

    def __init__(self, capacity: int = VARIANT_CACHE) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._lowerings: dict[tuple, NodeLowering] = {}
        self._codes: dict[tuple, VariantCode] = {}
        self._lane_bodies: dict[tuple, Any] = {}
        self._prefixes = itertools.count()  # names of variants' functions, unique in a session

    def _recall(self, cache: dict[tuple, Any], key: tuple) -> Any:
        with self._lock:
            entry = cache.pop(key, None)
            if entry is not None:
                cache[key] = entry  # most recently used last (dicts keep insertion order)
            return entry

    def lane_body(self, key: tuple, make: Callable[[], Any]) -> Any:
        """A voice body made into lanes (:mod:`.passes.lanes`), by the text of the voice body it
        came from (and the width): a recompile after an edit elsewhere reuses it, and so does
        any compiler of the process (:data:`LANE_BODIES`: a new ``CraneliftJit`` for a graph
        with the same voices, the next patch of a batch), since the pass is the slowest part of
        compiling a voice group. The text is the whole meaning of the body (every constant,
        address and call spelled out), and a lane body is never changed once made, so sharing
        it is exact. ``make`` may raise; nothing is kept then."""
        got = self._recall(self._lane_bodies, key)
        if got is None:
            got = _recall_shared(key)
            if got is None:
                got = make()
                _keep_texts(got)
                _remember_shared(key, got)
            self._remember(self._lane_bodies, key, got)
        return got

    def _remember(self, cache: dict[tuple, Any], key: tuple, entry: Any) -> None:
        with self._lock:
            cache[key] = entry
            while len(cache) > self.capacity:
                cache.pop(next(iter(cache)))

    def lowering_for(self, node: NodeIR, sample_rate: float) -> NodeLowering:
        """The frontend for a node; nodes of one variant share the lowered methods."""
        key = variant_key(node, sample_rate)
        low = self._recall(self._lowerings, key)
        if low is not None and not low.still_valid():  # a global it folded in has changed
            low = None
        if low is None:
            attrs = attribute_infos(
                ((s.name, s.type, s.length, s.cols) for s in node.state),
                ((e.name, e.kind, e.direction) for e in node.endpoints),
            )
            low = NodeLowering(
                node.resolve_class(), attrs, sample_rate, node.label, node.unsupported, node.constants
            )
            self._remember(self._lowerings, key, low)
        return low

    def variant(
        self,
        node: NodeIR,
        layout: NodeLayout,
        connected: frozenset[str],
        inline_math: bool,
        state_in_locals: bool,
        sample_rate: float,
        max_block: int,
    ) -> VariantCode:
        """The primitive code of ``node``'s variant placed with these connected inputs and options."""
        # max_block too: outbox capacities and buffer offsets in the node's region depend on it
        key = (variant_key(node, sample_rate), connected, inline_math, max_block, state_in_locals)
        code = self._recall(self._codes, key)
        if code is not None and not code.lowering.still_valid():
            code = None
        if code is None:
            low = self.lowering_for(node, sample_rate)
            low.name = node.label
            try:
                code = compile_variant(
                    node, layout, low, connected, inline_math, state_in_locals, f"v{next(self._prefixes)}"
                )
            except JitError as err:
                if not err.node:
                    err.node = node.label
                raise
            self._remember(self._codes, key, code)
        return code


class SessionView:
    """One compile's view of a :class:`CompileSession`: the same caches, and a count of the voice
    bodies made into lanes that this compile asked for. None means the program does not depend
    on the tier (the tiers differ only in what lanes bodies get, see ``CraneliftJit(tier=...)``).
    Made per compile, so concurrent compiles on one session count apart."""

    def __init__(self, session: CompileSession) -> None:
        self.session = session
        self.lane_bodies = 0

    def lane_body(self, key: tuple, make: Callable[[], Any]) -> Any:
        got = self.session.lane_body(key, make)
        self.lane_bodies += 1
        return got

    def variant(self, *args: Any, **kwargs: Any) -> VariantCode:
        return self.session.variant(*args, **kwargs)

    def lowering_for(self, node: NodeIR, sample_rate: float) -> NodeLowering:
        return self.session.lowering_for(node, sample_rate)

    def __getattr__(self, name: str) -> Any:  # anything else a builder asks of its session
        return getattr(self.session, name)
