"""What every subcommand of the ``oscen`` command line shares: exit codes, the user's errors and
argparse types. A module of its own, below :mod:`oscen.cli` and the subcommands defined elsewhere
(``oscen.batch.cli``), so that those need not import the command line that imports them.
"""

from __future__ import annotations

import argparse
import math

EXIT_OK = 0
EXIT_USER_ERROR = 2


class UserError(Exception):
    """Something the user can fix; shown as one paragraph, exit code 2, no traceback."""


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value
