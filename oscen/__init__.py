"""oscen: modular audio synthesis in Python, interpreted or JIT-compiled to machine code."""

from .graph import (
    CycleError,
    Endpoint,
    EventInput,
    EventOutput,
    Graph,
    GraphError,
    Node,
    StreamInput,
    StreamOutput,
    ValueInput,
    ValueOutput,
)

__version__ = "0.1.0"

__all__ = [
    "CycleError",
    "Endpoint",
    "EventInput",
    "EventOutput",
    "Graph",
    "GraphError",
    "Node",
    "StreamInput",
    "StreamOutput",
    "ValueInput",
    "ValueOutput",
]
