"""``driftline models quality MODEL``: a running server's live quality report, one table per version.

A client of ``GET /v1/models/{name}/quality`` (see client.py for ``--url`` and ``--key``): the server checks every
parameter, and its refusal is the one-line error.
"""

from __future__ import annotations

import math
import urllib.parse
from typing import TYPE_CHECKING, Any

from driftline.cli.client import add_client_options, call, print_json

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser"]

_CLASSIFICATION = (
    ("accuracy", "accuracy"),
    ("precision_macro", "precision (macro)"),
    ("recall_macro", "recall (macro)"),
    ("f1_macro", "F1 (macro)"),
    ("log_loss", "log loss"),
    ("roc_auc", "ROC AUC"),
)
_REGRESSION = (("mae", "MAE"), ("rmse", "RMSE"), ("mape", "MAPE"), ("r2", "R²"))


def _number(value: float | None) -> str:
    """A metric as the table shows it (JSON's null is a NaN: a metric the rows leave undefined)."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.4f}"


def _table(version: dict[str, Any]) -> list[str]:
    """One version's lines: what is labeled, then each metric with its interval and the rows it was computed on."""
    lines = [
        f"version {version['version']}: {version['labeled']:,} of {version['captured']:,} captured rows labeled "
        f"({version['coverage']:.1%}), {len(version['windows'])} window(s)"
    ]
    overall = version["overall"]
    if overall is None:
        return [*lines, "  no labeled rows yet"]
    names = _CLASSIFICATION if overall["task"] == "classification" else _REGRESSION
    level = f"{overall['confidence']:.0%} interval"
    lines.append(f"  {'METRIC':<20} {'VALUE':>8}  {level:<20} {'LABELED/CAPTURED':>16}")
    for key, label in names:
        estimate = overall.get(key)
        if estimate is None:
            continue  # log loss and ROC AUC need a score output
        interval = f"[{_number(estimate['lower'])}, {_number(estimate['upper'])}]"
        rows = f"{estimate['n']:,}/{version['captured']:,}"
        lines.append(f"  {label:<20} {_number(estimate['value']):>8}  {interval:<20} {rows:>16}")
    return lines


def _quality(args: argparse.Namespace) -> int:
    query = {
        key: str(value)
        for key, value in (
            ("version", args.version),
            ("since", args.since),
            ("until", args.until),
            ("window", args.window),
            ("confidence", args.confidence),
        )
        if value is not None
    }
    path = f"/v1/models/{urllib.parse.quote(args.model, safe='')}/quality"
    report = call(args, "GET", f"{path}?{urllib.parse.urlencode(query)}" if query else path)
    if args.json:
        return print_json(report)
    if not report["versions"]:
        print(f"{args.model}: no captured rows (is capture on for this model?)")
    for version in report["versions"]:
        print("\n".join(_table(version)))
    print(f"{report['unmatched']:,} label(s) name no captured row")
    return 0


def add_parser(models_sub: Any) -> None:
    """``driftline models quality``, under ``models_sub`` (the ``driftline models`` subparsers)."""
    parser: argparse.ArgumentParser = add_client_options(
        models_sub.add_parser(
            "quality",
            help="live quality per version: metrics with intervals and label coverage, from a running server",
        )
    )
    parser.add_argument("model")
    parser.add_argument("--version", type=int, help="one version (default: each)")
    parser.add_argument("--since", help="rows captured at or after this ISO 8601 time (with a timezone)")
    parser.add_argument("--until", help="rows captured before this ISO 8601 time (with a timezone)")
    parser.add_argument("--window", help="windows of a time span (30m, 1h, 1d) or of N labeled rows (500)")
    parser.add_argument("--confidence", type=float, help="level of every interval (default 0.95)")
    parser.add_argument("--json", action="store_true", help="the API's JSON instead of tables")
    parser.set_defaults(func=_quality)
