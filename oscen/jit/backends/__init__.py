"""Backends: what runs primitive kernel IR. ``wasm`` prints it to WebAssembly text for wasmtime
(Cranelift); ``reference`` evaluates it in Python (slow, for tests and debugging)."""
