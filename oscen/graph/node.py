"""The Node base class: a plain Python class whose methods the interpreter calls and the JIT compiles."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from .endpoints import MAX_EVENT_FIELDS, Direction, EndpointSpec, Kind

NODE_CLASSES: dict[str, type[Node]] = {}
"""Every node class by "module:qualname", so an IR read from JSON finds generated classes too."""


def endpoint_specs(cls: type) -> dict[str, EndpointSpec]:
    """All endpoint declarations of a node class, in declaration order, base classes first."""
    specs: dict[str, EndpointSpec] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, EndpointSpec):
                specs[name] = value
    return specs


def handler_arity(handler: Callable[..., Any]) -> int:
    """How many event fields a handler takes (the compiled code passes exactly these)."""
    params = list(inspect.signature(handler).parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return MAX_EVENT_FIELDS
    return min(len(params), MAX_EVENT_FIELDS)


class NodeDefinitionError(TypeError):
    """A node class is declared in a way the graph cannot run (say, an event input without handler)."""


class Node:
    """Base class of every node.

    Declare endpoints as class attributes, keep state in ordinary attributes set in ``__init__``
    (floats, ints, bools, fixed-size numpy arrays), and write ``process(self, sample_rate)``, which
    reads inputs and assigns outputs as attributes. Event inputs are handled by ``on_<name>``.

    Keep ``process`` and its helpers to plain numeric Python (arithmetic, ``math``, if/while/
    for-range, array indexing, calls to the node's own methods): the JIT compiles exactly this code.

    A node that delays its input by at least one sample (a delay line) sets ``breaks_feedback = True``:
    it may close a cycle, and on such a back edge it reads its source's previous sample.
    """

    breaks_feedback: ClassVar[bool] = False
    _endpoints: ClassVar[dict[str, EndpointSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._endpoints = endpoint_specs(cls)
        NODE_CLASSES[f"{cls.__module__}:{cls.__qualname__}"] = cls
        for name, spec in cls._endpoints.items():
            if spec.kind is Kind.EVENT and spec.direction is Direction.INPUT:
                if not callable(getattr(cls, f"on_{name}", None)):
                    raise NodeDefinitionError(
                        f"{cls.__qualname__}: event input {name!r} needs a handler method on_{name}(self, *fields)"
                    )

    def __new__(cls, *args: Any, **kwargs: Any) -> Node:
        node = super().__new__(cls)
        # Endpoint values live in the instance dict, so `self.input` is a plain attribute read.
        for name, spec in cls._endpoints.items():
            node.__dict__[name] = spec.initial_value()
        return node

    def process(self, sample_rate: float) -> None:
        """Compute this sample's outputs from inputs and state. Override it."""
        raise NotImplementedError(f"{type(self).__qualname__} must define process(self, sample_rate)")

    @classmethod
    def endpoints(cls) -> dict[str, EndpointSpec]:
        """The declared endpoints, by name, in declaration order."""
        return dict(cls._endpoints)

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}()"
