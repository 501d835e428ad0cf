"""``driftline drift REFERENCE CURRENT``: compare two data sets, print JSON or write HTML.

Exit 0: no dataset drift; 1: drift. Bad input is raised as a DriftlineError, which main() prints as every other
command's errors (one line, exit 2).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.drift.detect import compute_drift
from driftline.drift.profile import ReferenceProfile
from driftline.errors import CoreError, DriftlineError

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run_drift"]


def _names(text: str | None) -> list[str] | None:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def add_parser(sub: Any) -> None:
    """``driftline drift``, under ``sub`` (the main parser's subparsers)."""
    parser = sub.add_parser(
        "drift",
        help="compare current data with reference data",
        description="Exit 0: no dataset drift; 1: drift; 2: bad input.",
    )
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
    parser.set_defaults(func=run_drift)


def _check_files(*paths: str) -> None:
    for path in paths:
        if not Path(path).is_file():
            raise DriftlineError(f"no such file: {path}")


def run_drift(args: argparse.Namespace) -> int:
    """Run the command: 0 when the dataset did not drift, 1 when it did.

    Raises:
        DriftlineError: a file is missing or unreadable, or an option does not fit the data.
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
    except (CoreError, OSError) as exc:
        # The core's and the file system's refusals are bad input here too: main() reports DriftlineErrors.
        raise DriftlineError(str(exc)) from None
    return 1 if report.drift else 0
