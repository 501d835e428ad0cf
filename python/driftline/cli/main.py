"""The ``driftline`` command: the parser, assembled from each command group, and the one place errors are printed.

A DriftlineError a command raises is one line on stderr, ``driftline: error: MESSAGE``, and exit 2; a Ctrl-C is
exit 130.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from driftline import __version__
from driftline.cli import drift, keys, models, score, serve
from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="driftline", description="A production inference server.")
    parser.add_argument("--version", action="version", version=f"driftline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (serve, models, keys):  # the order `driftline --help` lists them in
        group.add_parser(sub)
    drift.add_drift_parser(sub).set_defaults(func=drift.run_drift)
    score.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``driftline`` command."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except DriftlineError as exc:
        print(f"driftline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
