"""``driftline ops rules|grafana``: Prometheus rules for every model's SLOs, and a Grafana dashboard, generated
from the definitions the server judges by (docs/slo.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import BadRequest, ConfigError

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser"]


def _write(text: str, out: str | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    try:
        Path(out).write_text(text)
    except OSError as exc:
        raise BadRequest(f"cannot write {out}: {exc.strerror or exc}") from None


def _rules(args: argparse.Namespace) -> int:
    from driftline.config import load_settings
    from driftline.ops.rules import rules_yaml
    from driftline.ops.slo import definitions
    from driftline.repository import Repository

    settings = load_settings(args.config)
    root = Path(args.repository or settings.repository)
    if not root.is_dir():
        raise ConfigError(f"repository {root} does not exist")
    _write(rules_yaml(definitions(settings, Repository(root))), args.out)
    return 0


def _grafana(args: argparse.Namespace) -> int:
    from driftline.ops.grafana import dashboard_json

    _write(dashboard_json(), args.out)
    return 0


def add_parser(sub: Any) -> None:
    """``driftline ops rules|grafana``, under ``sub`` (the main parser's subparsers)."""
    ops = sub.add_parser("ops", help="operations: Prometheus SLO rules and a Grafana dashboard")
    ops_sub = ops.add_subparsers(dest="ops_command", required=True)
    rules = ops_sub.add_parser("rules", help="write Prometheus recording and alerting rules for every model's SLOs")
    rules.add_argument("--repository", help="the model repository (default: the settings' repository)")
    rules.add_argument("--config", help="server TOML file (its [slo] is every model's default)")
    rules.add_argument("--out", help="write to this file (default: stdout)")
    rules.set_defaults(func=_rules)
    grafana = ops_sub.add_parser("grafana", help="write a Grafana dashboard JSON for a Prometheus scraping driftline")
    grafana.add_argument("--out", help="write to this file (default: stdout)")
    grafana.set_defaults(func=_grafana)
