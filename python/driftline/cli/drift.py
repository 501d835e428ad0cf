"""The `driftline drift REFERENCE CURRENT` command: compare two data sets, print JSON or write HTML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

from driftline.drift.detect import compute_drift
from driftline.drift.profile import ReferenceProfile
from driftline.errors import CoreError, DriftlineError

__all__ = ["add_drift_parser", "main", "run_drift"]


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("reference", help="reference data: .parquet, .csv, or a saved .profile")
    parser.add_argument("current", help="current data: .parquet or .csv")
    parser.add_argument("--features", help="comma-separated columns to compare (default: all)")
    parser.add_argument("--categorical", help="comma-separated columns to treat as categorical")
    parser.add_argument("--stat", help="one statistic for every feature it applies to (e.g. ks, psi)")
    parser.add_argument("--threshold", type=float, help="threshold for every feature")
    parser.add_argument("--preset", choices=("default", "significance"), default="default")
    parser.add_argument("--binning", choices=("quantile", "evidently"), default="quantile")
    parser.add_argument("--drift-share", type=float, default=0.5, help="dataset drift share (default 0.5)")
    parser.add_argument("--format", choices=("json", "html"), default="json")
    parser.add_argument("--out", help="write the report to FILE instead of stdout")
    parser.set_defaults(handler=run_drift)
    return parser


def add_drift_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `drift` sub-command to the main CLI.

    Args:
        subparsers: The object `ArgumentParser.add_subparsers()` returned.

    Returns:
        The new sub-parser (its `handler` default is run_drift).
    """
    parser = subparsers.add_parser(
        "drift",
        help="compare current data with reference data",
        description="Exit 0: no dataset drift; 1: drift; 2: bad input.",
    )
    return _configure(parser)


def _check_files(*paths: str) -> None:
    for path in paths:
        if not Path(path).is_file():
            raise DriftlineError(f"no such file: {path}")


def run_drift(args: argparse.Namespace) -> int:
    """Run the command.

    Args:
        args: Parsed arguments from the drift sub-parser.

    Returns:
        0 when the dataset did not drift, 1 when it did, 2 on bad input (one line on stderr).
    """
    try:
        reference: Any = args.reference
        if str(reference).endswith(".profile"):
            reference = ReferenceProfile.load(reference)
        _check_files(args.reference, args.current)
        report = compute_drift(
            reference,
            args.current,
            features=_names(args.features),
            categorical=_names(args.categorical),
            stats=args.stat,
            preset=args.preset,
            thresholds=args.threshold,
            binning=args.binning,
            drift_share=args.drift_share,
        )
        output = report.to_html() if args.format == "html" else msgspec.json.format(report.to_json()).decode()
        if args.out:
            Path(args.out).write_text(output, encoding="utf-8")
        else:
            sys.stdout.write(output + "\n")
    except (DriftlineError, CoreError, OSError) as exc:
        sys.stderr.write(f"driftline drift: error: {exc}\n")
        return 2
    return 1 if report.drift else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m driftline.cli.drift`.

    Args:
        argv: Arguments (default sys.argv[1:]).

    Returns:
        The exit status.
    """
    parser = _configure(argparse.ArgumentParser(prog="driftline drift", description="Exit 0: no drift; 1: drift."))
    return run_drift(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
