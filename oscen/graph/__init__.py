"""Graphs of nodes: building, the interpreter (reference semantics), and the JIT under ``oscen.jit``."""

from .endpoints import (
    Endpoint,
    EventInput,
    EventOutput,
    StreamInput,
    StreamOutput,
    ValueInput,
    ValueOutput,
)
from .graph import Connection, Graph, GraphError, NodeHandle
from .node import Node, NodeDefinitionError
from .topology import CycleError

__all__ = [
    "Connection",
    "CycleError",
    "Endpoint",
    "EventInput",
    "EventOutput",
    "Graph",
    "GraphError",
    "Node",
    "NodeDefinitionError",
    "NodeHandle",
    "StreamInput",
    "StreamOutput",
    "ValueInput",
    "ValueOutput",
]
