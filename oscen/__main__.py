"""``python -m oscen``: the same command line as the ``oscen`` script."""

from .cli import main

raise SystemExit(main())
