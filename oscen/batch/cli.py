"""``oscen batch PATCH.py --params space.json --n 10000 --seconds 2 --out data/``: the command line
of :func:`oscen.batch.render_batch` (oscen/cli.py registers it)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    from ..cliargs import positive_float, positive_int

    parser.add_argument("patch", type=Path, help="a patch file defining patch(sample_rate) -> Graph")
    parser.add_argument(
        "--params",
        type=Path,
        default=None,
        metavar="SPACE.json",
        help="the parameter space: {'random': {...}}, {'grid': {...}} or {'items': [...]} (docs/batch.md)",
    )
    parser.add_argument(
        "--n", type=positive_int, default=None, help="items to render (a random space needs it)"
    )
    parser.add_argument(
        "--seconds", type=positive_float, default=2.0, help="seconds per item (default: %(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (resumable: rerun to continue)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random space and of noise (default: 0)"
    )
    parser.add_argument("--sample-rate", type=positive_float, default=None, help="Hz (default: 44100)")
    parser.add_argument(
        "--format", choices=("flac", "wav"), default="flac", help="audio files (default: flac)"
    )
    parser.add_argument("--backend", choices=("local", "ray"), default="local", help="where to render")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local one)")
    parser.add_argument("--workers", type=positive_int, default=None, help="workers (default: all CPUs)")
    parser.add_argument(
        "--local",
        choices=("threads", "processes"),
        default="threads",
        help="local workers (default: threads)",
    )
    parser.add_argument("--engine", choices=("jit", "interpret"), default="jit", help="default: jit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..cliargs import EXIT_OK, UserError
    from ..patch import PatchError
    from .api import render_batch
    from .output import OutputError
    from .params import ParamError
    from .ray_backend import RayUnavailable

    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    print(f"oscen batch: {args.patch} -> {args.out}", flush=True)
    try:
        result = render_batch(
            args.patch,
            args.params,
            out=args.out,
            seconds=args.seconds,
            n=args.n,
            seed=args.seed,
            sample_rate=args.sample_rate,
            backend=args.backend,
            workers=args.workers,
            local=args.local,
            address=args.address,
            format=args.format,
            engine=args.engine,
            progress=False if args.no_progress else None,
        )
    except (PatchError, ParamError, OutputError, RayUnavailable) as exc:
        raise UserError(str(exc)) from exc
    print(result.summary())
    for index, error in list(result.failed.items())[:5]:
        print(f"  item {index} failed: {error}")
    if len(result.failed) > 5:
        print(f"  ... and {len(result.failed) - 5} more (items.parquet has them all)")
    print(f"wrote {args.out}/metadata.csv and {args.out}/items.parquet")
    return EXIT_OK
