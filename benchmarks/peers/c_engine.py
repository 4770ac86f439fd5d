"""Hand-written C baseline ("our practical limit"): the patch as plain C, built at benchmark time.

``prepare`` compiles ``benchmarks/c/seed.c`` or ``benchmarks/c/voices.c`` with the system C
compiler (``$CC``, else ``cc``) into a shared library in a fresh temp dir (that ``cc`` run plus
the ``dlopen`` is the reported latency) and loads it with ctypes. ``render`` makes one ctypes
call, ``*_render(state, out, n, block)``, which resets the state and loops over blocks *in C*,
calling ``*_process_block`` once per block, writing straight into the numpy float64 array that
``render`` returns. Every render therefore starts from t = 0.

Oscillator (``osc``): ``"libm"`` (default) computes ``sin(2 pi phase)`` per sample, the same
math as the reference and as SignalFlow; ``"rotation"`` (``-DPEER_OSC_ROTATION``) uses a
quadrature recurrence with no transcendental per sample, the cheapest exact-enough sine, i.e.
the practical upper bound (table-lookup oscillators like Faust's ``os.osc`` sit in between);
``"same"`` (seed only) builds ``benchmarks/c/seed_same.c``, the patch doing exactly oscen's
arithmetic (its rotation sine with the polynomial resync and phase tracking, the biquad's
parameter test and denormal flush), always with ``-ffp-contract=off``: its output is bit for bit
oscen's (``tests/test_peer_c_same.py``), so it is "the C -O3 version with the same math".

Voice layout (``layout``, voices64 only): ``"voice"`` (default) runs each voice over the whole
block, like an engine with one node per voice; ``"interleaved"`` (``-DPEER_VOICES_INTERLEAVED``)
advances all voices sample by sample over SoA arrays, so the 64 independent biquad recurrences
overlap and gcc vectorises across voices: with ``osc="rotation"`` this is the practical limit.

Flag variants (the engine name says which one ran): ``-O3 -march=native`` (default),
``-O3`` (portable x86-64 baseline) and ``-O3 -march=native -ffp-contract=off`` (GCC's GNU C
dialects already default to ``-ffp-contract=fast``, i.e. FMA contraction wherever the target
has FMA, so "off" is the variant that differs).
"""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from .base import NotPrepared, check_block_size, check_patch
from .reference import (
    CUTOFF,
    SEED_AMP,
    SEED_FREQ,
    SEED_GAIN,
    VOICE_AMP,
    VOICES,
    Q,
    num_samples,
    voice_frequencies,
)

C_DIR = Path(__file__).resolve().parent.parent / "c"

FLAG_VARIANTS: dict[str, tuple[str, ...]] = {
    "native": ("-O3", "-march=native"),
    "generic": ("-O3",),
    "native-nocontract": ("-O3", "-march=native", "-ffp-contract=off"),
}

OSCILLATORS: tuple[str, ...] = ("libm", "rotation", "same")
SAME_PATCHES: tuple[str, ...] = ("seed",)
"""The patches ``osc="same"`` has (a C file doing oscen's arithmetic exactly)."""
NO_CONTRACT = "-ffp-contract=off"
LAYOUTS: tuple[str, ...] = ("voice", "interleaved")

_SOURCES = {"seed": "seed.c", "voices64": "voices.c"}
_SAME_SOURCES = {"seed": "seed_same.c"}
_PREFIX = {"seed": "seed", "voices64": "voices"}


def compiler() -> str | None:
    """Path of the C compiler to use ($CC or cc), or None if there is none."""
    cc = os.environ.get("CC", "cc")
    argv = shlex.split(cc)
    found = shutil.which(argv[0]) if argv else None
    return " ".join([found, *argv[1:]]) if found else None


class CEngine:
    """Peer engine running the hand-written C patches through ctypes."""

    def __init__(
        self, flags: tuple[str, ...] | str = "native", osc: str = "libm", layout: str = "voice"
    ) -> None:
        if osc not in OSCILLATORS:
            raise ValueError(f"osc must be one of {OSCILLATORS}, got {osc!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.flags: tuple[str, ...] = FLAG_VARIANTS[flags] if isinstance(flags, str) else tuple(flags)
        if osc == "same" and NO_CONTRACT not in self.flags:  # FMA would round differently from oscen
            self.flags = (*self.flags, NO_CONTRACT)
        self.osc, self.layout = osc, layout
        self.patches: tuple[str, ...] = SAME_PATCHES if osc == "same" else tuple(_SOURCES)
        extras = [
            e
            for e, on in (
                ("rotation osc", osc == "rotation"),
                ("oscen's math", osc == "same"),
                ("interleaved", layout == "interleaved"),
            )
            if on
        ]
        self.name = f"C (cc {' '.join(self.flags)})" + "".join(f", {e}" for e in extras)
        self._tmpdir: str | None = None
        self._lib: ctypes.CDLL | None = None
        self._state: int | None = None
        self._render: ctypes._CFuncPtr | None = None
        self._prefix = ""
        self._sample_rate = 44100.0
        self._block_size = 256

    def available(self) -> str | None:
        if compiler() is None:
            return "no C compiler found ($CC or cc; apt-get install gcc)"
        missing = [s for s in (*_SOURCES.values(), *_SAME_SOURCES.values()) if not (C_DIR / s).is_file()]
        if missing:
            return f"C sources missing in {C_DIR}: {missing}"
        return None

    def version(self) -> str:
        cc = compiler()
        if cc is None:
            return "no compiler"
        out = subprocess.run([*shlex.split(cc), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.splitlines()[0].strip() if out.stdout else cc

    def prepare(self, patch: str, sample_rate: float, block_size: int) -> float:
        check_patch(patch)
        check_block_size(block_size)
        if self.osc == "same" and patch not in SAME_PATCHES:
            raise ValueError(
                f"CEngine(osc='same') has only the {', '.join(SAME_PATCHES)} patch, not {patch!r}"
            )
        self.close()
        cc = compiler()
        if cc is None:
            raise RuntimeError(self.available() or "no C compiler")
        self._tmpdir = tempfile.mkdtemp(prefix="oscen-peer-c-")
        lib_path = Path(self._tmpdir) / f"lib{_PREFIX[patch]}.so"
        defines = ["-DPEER_OSC_ROTATION"] if self.osc == "rotation" else []
        if self.layout == "interleaved":
            defines += ["-DPEER_VOICES_INTERLEAVED", f"-DPEER_NV={VOICES}"]
        cmd = [
            *shlex.split(cc),
            *self.flags,
            *defines,
            "-shared",
            "-fPIC",
            str(C_DIR / (_SAME_SOURCES if self.osc == "same" else _SOURCES)[patch]),
            "-o",
            str(lib_path),
            "-lm",
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"cc failed ({shlex.join(cmd)}):\n{proc.stderr}")
        lib = ctypes.CDLL(str(lib_path))
        elapsed = time.perf_counter() - t0

        prefix = _PREFIX[patch]
        dbl, ptr = ctypes.c_double, ctypes.c_void_p
        create = getattr(lib, f"{prefix}_create")
        create.restype = ptr
        render = getattr(lib, f"{prefix}_render")
        render.argtypes = [ptr, ptr, ctypes.c_long, ctypes.c_int]
        render.restype = None
        destroy = getattr(lib, f"{prefix}_destroy")
        destroy.argtypes = [ptr]
        destroy.restype = None
        if patch == "seed":
            create.argtypes = [dbl] * 6
            state = create(sample_rate, SEED_FREQ, SEED_AMP, CUTOFF, Q, SEED_GAIN)
        else:
            freqs = np.ascontiguousarray(voice_frequencies(), dtype=np.float64)
            create.argtypes = [dbl, ctypes.c_int, ptr, dbl, dbl, dbl]
            state = create(sample_rate, freqs.size, freqs.ctypes.data, VOICE_AMP, CUTOFF, Q)
        if not state:
            raise RuntimeError("C state creation failed (out of memory, or voice count != PEER_NV)")
        self._lib, self._state, self._prefix = lib, state, prefix
        self._render = render
        self._sample_rate, self._block_size = float(sample_rate), int(block_size)
        return elapsed

    def render(self, seconds: float) -> np.ndarray:
        if self._render is None or self._state is None:
            raise NotPrepared("call prepare() first")
        n = num_samples(seconds, self._sample_rate)
        out = np.empty(n, dtype=np.float64)
        self._render(self._state, out.ctypes.data, n, self._block_size)
        return out

    def close(self) -> None:
        if self._lib is not None and self._state is not None:
            getattr(self._lib, f"{self._prefix}_destroy")(self._state)
        self._lib = self._render = None
        self._state = None
        if self._tmpdir is not None:
            # The .so stays mapped until the process exits; removing the file is fine on POSIX.
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
