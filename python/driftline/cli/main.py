"""The ``driftline`` command: the parser, assembled from each command group, and the one place errors are printed.

Every refusal, a usage error argparse finds or a DriftlineError a command raises, is one line on stderr,
``driftline: error: MESSAGE``, and exit 2; a Ctrl-C is exit 130.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, NoReturn

from driftline import __version__
from driftline.cli import capture, drift, evaluate, feedback, keys, models, ops, score, serve, tune
from driftline.errors import DriftlineError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["build_parser", "main"]

PREFIX = "driftline: error: "


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors in the CLI's one format (subparsers inherit the class)."""

    def error(self, message: str) -> NoReturn:
        # argparse prints the usage and `PROG: error:`; the subcommand moves into the message so the prefix is one.
        command = self.prog.removeprefix("driftline").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"{PREFIX}{where}{message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog="driftline", description="A production inference server.")
    parser.add_argument("--version", action="version", version=f"driftline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    # The order `driftline --help` lists them in.
    for group in (serve, models, keys, drift, score, evaluate, capture, feedback, tune, ops):
        group.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``driftline`` command."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except DriftlineError as exc:
        print(f"{PREFIX}{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
