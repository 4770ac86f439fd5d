"""pytest options of the suite: ``--stress-seconds`` lengthens tests/test_stress.py.

Every kernel the tests build is validated (oscen/jit/validate.py): ``OSCEN_VALIDATE_IR`` is set
here, before any test module imports oscen (``OSCEN_VALIDATE_IR=0`` in the environment turns it
off, to time the suite without it).
"""

from __future__ import annotations

import os

import pytest

STRESS_ENV = "OSCEN_STRESS_SECONDS"
os.environ.setdefault("OSCEN_VALIDATE_IR", "1")
os.environ.setdefault("OSCEN_REFERENCE_ENGINE", "1")  # interpreter, wasm and reference side by side


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-reference-engine",
        action="store_true",
        default=False,
        help="differential tests skip the reference backend (oscen/jit/backends/reference.py), which by "
        "default runs on their first samples, bit for bit against the wasm kernel (also OSCEN_REFERENCE_ENGINE=0)",
    )
    parser.addoption(
        "--stress-seconds",
        type=float,
        default=None,
        help=f"how long each stress test runs its load (default 3; also the {STRESS_ENV} environment variable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # The stress module reads the environment at import (hypothesis settings are made then), so
    # the option is passed on through it; xdist workers inherit it.
    if config.getoption("--no-reference-engine", default=False):
        os.environ["OSCEN_REFERENCE_ENGINE"] = "0"
    seconds = config.getoption("--stress-seconds", default=None)
    if seconds is not None:
        os.environ[STRESS_ENV] = str(seconds)
