"""Backends of primitive kernel IR: ``wasm`` (printed to WebAssembly text, run by wasmtime) and
``reference`` (run directly in Python, to prove the IR's meaning)."""
