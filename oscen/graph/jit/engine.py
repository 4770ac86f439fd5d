"""The one wasmtime engine (Cranelift) shared by every compiled graph, and its epoch ticker.

Epoch interruption lets a kernel stuck in an endless loop be stopped: a daemon thread advances the
engine's epoch every TICK seconds, and each kernel call sets a deadline a few ticks ahead.
"""

from __future__ import annotations

import threading
import time

import wasmtime

TICK = 0.01
_engine: wasmtime.Engine | None = None
_lock = threading.Lock()


def engine() -> wasmtime.Engine:
    global _engine
    with _lock:
        if _engine is None:
            config = wasmtime.Config()
            config.epoch_interruption = True
            config.cranelift_opt_level = "speed"
            _engine = wasmtime.Engine(config)
            eng = _engine

            def tick() -> None:
                while True:
                    time.sleep(TICK)
                    eng.increment_epoch()

            threading.Thread(target=tick, name="oscen-epoch", daemon=True).start()
        return _engine
