"""``driftline models experiment create|list|report|stop``: experiments through the /v1/admin API of a running
server (``--url``, ``--key`` as every ``driftline models`` command)."""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.cli.client import add_command, call, download, print_json
from driftline.errors import BadRequest

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser"]


def _path(model: str, *rest: str) -> str:
    parts = "".join(f"/{urllib.parse.quote(p, safe='')}" for p in rest)
    return f"/v1/admin/models/{urllib.parse.quote(model, safe='')}/experiments{parts}"


def _read_spec(source: str) -> dict[str, Any]:
    """The experiment's JSON from a file, or stdin for ``-``."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise BadRequest(f"cannot read the experiment file {source}: {exc.strerror or exc}") from None
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"the experiment file {source} is not JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise BadRequest(f"the experiment file {source} must hold one JSON object (the experiment)")
    return spec


def _create(args: argparse.Namespace) -> int:
    spec = _read_spec(args.file)
    model = args.model or spec.pop("model", None)
    if not isinstance(model, str) or not model:
        raise BadRequest('name the model: --model NAME, or a "model" field in the experiment file')
    return print_json(call(args, "POST", _path(model), spec))


def _list(args: argparse.Namespace) -> int:
    query = f"?state={args.state}" if args.state else ""
    experiments = call(args, "GET", _path(args.model) + query)
    if args.json:
        return print_json(experiments)
    if not experiments:
        print(f"no experiments on model {args.model}")
        return 0
    print(f"{'ID':<6} {'NAME':<24} {'STATE':<8} {'DESIGN':<8} {'ARMS':<28} {'STARTED':<27} STOPPED")
    for e in experiments:
        arms = ",".join(f"{a}={v}" for a, v in e["versions"].items())
        design = next(iter(e["spec"]["design"]), "-")
        stopped = f"{e['stopped_at']} ({e['stop_reason'] or e['stopped_by']})" if e.get("stopped_at") else "-"
        name = e["spec"]["name"]
        print(f"{e['id']:<6} {name:<24} {e['state']:<8} {design:<8} {arms:<28} {e['started_at']:<27} {stopped}")
    return 0


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _bounds(value: Any) -> str:
    if not isinstance(value, dict):
        return "-"
    return f"{_number(value['estimate'])} [{_number(value['lower'])}, {_number(value['upper'])}]"


def print_report(report: dict[str, Any]) -> None:
    """The report as a readable table: per metric the arms, each treatment's difference with its intervals and
    verdict; the rules; the sample-ratio check."""
    e = report["experiment"]
    print(f"experiment {e['id']} {e['spec']['name']!r} on model {e['model']}: {e['state']}, as of {report['as_of']}")
    print("assignments: " + (", ".join(f"{a}={n}" for a, n in report["assignments"].items()) or "none"))
    srm = report.get("sample_ratio")
    if srm:
        flag = "FLAGGED (the traffic did not split as designed)" if srm["flagged"] else "ok"
        print(f"sample ratio: {flag}: chi2 {_number(srm['chi2'])}, p {_number(srm['p_value'])}")
    for m in report["metrics"]:
        print(f"\n{m['name']} ({m['role']}, {m['kind']}, {m['direction']} is better; unit {m['unit']})")
        print(f"  {'ARM':<16} {'VERSION':<8} {'N':<10} MEAN [INTERVAL]")
        for arm in m["arms"]:
            print(f"  {arm['arm']:<16} {arm['version']:<8} {arm['n']:<10} {_bounds(arm['interval'])}")
        for c in m["comparisons"]:
            print(
                f"  {c['arm']} - control: {_bounds(c['absolute'])} (anytime-valid); fixed horizon "
                f"{_bounds(c['fixed_absolute'])}; relative {_bounds(c['relative'])}; "
                f"p {_number(c['p_value'])} (adjusted {_number(c['adjusted_p_value'])}) -> {c['verdict'].upper()}"
            )
    print()
    for rule in report["rules"]:
        print(f"{'PASS' if rule['passed'] else 'FAIL'}  {rule['text']}: {rule['evidence']}")
    if report["breached"]:
        print(f"guardrails breached: {', '.join(report['breached'])}")
    print(f"ready for promotion: {'yes' if report['ready'] else 'no'}")


def _report(args: argparse.Namespace) -> int:
    path = _path(args.model, str(args.id))
    if args.html:
        with Path(args.html).open("wb") as sink:
            size = download(args, path + "?format=html", sink)
        print(f"wrote {args.html} ({size:,} bytes)")
        return 0
    report = call(args, "GET", path + "?format=json")
    if args.json:
        return print_json(report)
    print_report(report)
    return 0


def _stop(args: argparse.Namespace) -> int:
    return print_json(call(args, "POST", _path(args.model, str(args.id), "stop"), {"reason": args.reason}))


def add_parser(models_sub: Any) -> None:
    """``driftline models experiment ...`` under ``models_sub`` (the ``models`` subparsers)."""
    experiment = models_sub.add_parser("experiment", help="champion/challenger experiments: create, list, report, stop")
    sub = experiment.add_subparsers(dest="experiment_command", required=True)

    def add(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        return add_command(sub, name, help_text, func)

    p = add("create", "start an experiment from a JSON file (or - for stdin) (operator)", _create)
    p.add_argument("file", metavar="FILE.json|-")
    p.add_argument("--model", help='the model (default: the file\'s "model" field)')
    p = add("list", "a model's experiments, newest first", _list)
    p.add_argument("model")
    p.add_argument("--state", choices=["running", "stopped"])
    p.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    p = add("report", "an experiment's report: per metric arms, difference, interval, verdict; rules; SRM", _report)
    p.add_argument("model")
    p.add_argument("id", type=int)
    p.add_argument("--html", metavar="FILE", help="write the HTML report to FILE")
    p.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    p = add("stop", "stop an experiment: its routing goes back to the default alias (operator)", _stop)
    p.add_argument("model")
    p.add_argument("id", type=int)
    p.add_argument("--reason")
