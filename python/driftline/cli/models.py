"""``driftline models ...``: ``list`` reads the repository; the rest drive the lifecycle through the /v1/admin API.

The lifecycle commands are clients of a running server (see client.py for ``--url`` and ``--key``).
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from driftline.cli import experiment, quality
from driftline.cli.client import add_command, call, print_json
from driftline.config import load_settings
from driftline.errors import BadRequest, DriftlineError
from driftline.store.audit import AuditAction

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser"]


def _models_list(args: argparse.Namespace) -> int:
    from driftline.repository import Repository

    settings = load_settings(args.config, {"repository": args.repository} if args.repository else None)
    repo = Repository(settings.repository)
    names = repo.model_names()
    if not names:
        print(f"no models in {repo.root}")
        return 0
    print(f"{'MODEL':<24} {'BACKEND':<8} {'VERSIONS':<16} {'LOADED':<12} BATCH")
    for name in names:
        try:
            source = repo.model(name)
        except DriftlineError as exc:
            print(f"{name:<24} {'-':<8} {'-':<16} {'-':<12} error: {exc}")
            continue
        versions = ",".join(map(str, source.artifacts))
        loaded = ",".join(map(str, source.versions_to_load()))
        print(f"{name:<24} {source.backend:<8} {versions:<16} {loaded:<12} {source.config.max_batch_size}")
    return 0


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _status(args: argparse.Namespace) -> int:
    if args.name:
        models = [call(args, "GET", f"/v1/admin/models/{_q(args.name)}")]
    else:
        models = call(args, "GET", "/v1/admin/models")
    if args.json:
        return print_json(models if not args.name else models[0])
    print(f"{'MODEL':<20} {'STATE':<12} {'DEFAULT':<8} {'VERSIONS':<24} {'ALIASES':<32} ROUTING")
    for m in models:
        versions = ",".join(v["version"] + ("" if v["state"] == "READY" else "!") for v in m["versions"]) or "-"
        aliases = ",".join(f"{a}={v['version']}" for a, v in m["aliases"].items()) or "-"
        routing = ",".join(sorted(m["routing"])) or "-"
        print(
            f"{m['name']:<20} {m['state']:<12} {m['default_version'] or '-':<8} {versions:<24} {aliases:<32} {routing}"
        )
        for v in m["versions"]:
            if v["state"] != "READY":
                print(f"  version {v['version']} {v['state']}: {v.get('reason')}")
            elif v.get("note"):
                print(f"  version {v['version']}: {v['note']}")
            if v.get("lineage"):
                print(f"  version {v['version']}: {_lineage_line(v['lineage'])}")
            if v.get("evaluation"):
                print(f"  version {v['version']}: {_evaluation_line(v['evaluation'])}")
        if m.get("error"):
            print(f"  error: {m['error']}")
    return 0


def _lineage_line(lineage: dict[str, Any]) -> str:
    """Where a version came from, in one line (``--json`` has the whole record)."""
    run = f"run {lineage['run_id']} " if lineage.get("run_id") else ""
    return f"{run}from {lineage.get('source_uri') or '-'} sha256={lineage.get('sha256', '')[:12]}"


def _evaluation_line(e: dict[str, Any]) -> str:
    metrics = " ".join(f"{k}={'-' if x is None else f'{x:.4f}'}" for k, x in e["metrics"].items())
    return f"evaluated {e['created_at']} on {e['dataset']} ({e['rows']:,} rows, target {e['target']!r}): {metrics}"


def _load(args: argparse.Namespace) -> int:
    body = {"version": args.version} if args.version is not None else {}
    return print_json(call(args, "POST", f"/v1/admin/models/{_q(args.name)}/load", body))


def _unload(args: argparse.Namespace) -> int:
    return print_json(call(args, "POST", f"/v1/admin/models/{_q(args.name)}/unload", {"version": args.version}))


def _alias(args: argparse.Namespace) -> int:
    body = {"version": args.version, "reason": args.reason}
    return print_json(call(args, "PUT", f"/v1/admin/models/{_q(args.name)}/aliases/{_q(args.alias)}", body))


def _unalias(args: argparse.Namespace) -> int:
    return print_json(call(args, "DELETE", f"/v1/admin/models/{_q(args.name)}/aliases/{_q(args.alias)}"))


def _rollback(args: argparse.Namespace) -> int:
    path = f"/v1/admin/models/{_q(args.name)}/aliases/{_q(args.alias)}/rollback"
    return print_json(call(args, "POST", path, {"reason": args.reason}))


def _target_percent(value: str, flag: str, default: float | None = None) -> dict[str, Any]:
    target, sep, percent = value.partition(":")
    if not target or (not sep and default is None):
        raise BadRequest(f"{flag} {value!r} must look like TARGET:PERCENT (a version or alias, then 0-100)")
    try:
        return {"target": target, "percent": float(percent) if sep else default}
    except ValueError:
        raise BadRequest(f"{flag} {value!r}: the percent must be a number") from None


def _route(args: argparse.Namespace) -> int:
    path = f"/v1/admin/models/{_q(args.name)}/routing"
    if args.clear:
        return print_json(call(args, "DELETE", path))
    body: dict[str, Any] = {"reason": args.reason}
    if args.canary:
        body["canary"] = _target_percent(args.canary, "--canary")
    if args.shadow:
        body["shadow"] = _target_percent(args.shadow, "--shadow", 100.0)
    if args.split:
        if not (args.split_parameter or args.split_header):
            raise BadRequest("--split needs --split-parameter NAME or --split-header NAME as the sticky key")
        weights: dict[str, float] = {}
        for part in args.split.split(","):
            target, sep, weight = part.partition("=")
            try:
                weights[target.strip()] = float(weight)
            except ValueError:
                raise BadRequest(f"--split {args.split!r} must look like champion=90,challenger=10") from None
            if not sep:
                raise BadRequest(f"--split {args.split!r} must look like champion=90,challenger=10")
        body["split"] = {"weights": weights, "parameter": args.split_parameter, "header": args.split_header}
    return print_json(call(args, "PUT", path, body))


def _shadow(args: argparse.Namespace) -> int:
    return print_json(call(args, "GET", f"/v1/admin/models/{_q(args.name)}/shadow"))


def _propose(args: argparse.Namespace) -> int:
    rule: dict[str, Any] = {}
    if args.min_agreement is not None:
        rule["min_agreement"] = args.min_agreement
    if args.min_requests is not None:
        rule["min_requests"] = args.min_requests
    if args.max_mean_abs_diff is not None:
        rule["max_mean_abs_diff"] = args.max_mean_abs_diff
    body = {"version": args.version, "alias": args.alias, "rule": rule or None, "reason": args.reason}
    return print_json(call(args, "POST", f"/v1/admin/models/{_q(args.name)}/proposals", body))


def _proposals(args: argparse.Namespace) -> int:
    query = f"?model={_q(args.name)}" if args.name else ""
    return print_json(call(args, "GET", f"/v1/admin/proposals{query}"))


def _decision(verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        return print_json(call(args, "POST", f"/v1/admin/proposals/{args.id}/{verb}", {"reason": args.reason}))

    return run


# The action column fits the longest action the log can hold.
_ACTION_WIDTH = max(len(a) for a in AuditAction)


def _audit(args: argparse.Namespace) -> int:
    query = {"limit": str(args.limit)}
    if args.name:
        query["model"] = args.name
    if args.action:
        query["action"] = args.action
    events = call(args, "GET", f"/v1/admin/audit?{urllib.parse.urlencode(query)}")
    if args.json:
        return print_json(events)
    for e in reversed(events):
        change = f"{e['version_before'] or '-'} -> {e['version_after'] or '-'}"
        sha = f" sha256={e['sha256'][:12]}" if e["sha256"] else ""
        action = f"{e['action']:<{_ACTION_WIDTH}}"
        print(f"{e['at']}  {e['actor']:<22} {action} {e['model']:<16} {change:<10}{sha}  {e['reason'] or ''}")
    return 0


def _sync(args: argparse.Namespace) -> int:
    return print_json(call(args, "POST", "/v1/admin/registry/sync", {}))


def _registry(args: argparse.Namespace) -> int:
    return print_json(call(args, "GET", "/v1/admin/registry"))


def add_parser(sub: Any) -> None:
    """``driftline models list`` and the lifecycle subcommands, under ``sub`` (the main parser's subparsers)."""
    models = sub.add_parser(
        "models", help="the model repository and the lifecycle: status, aliases, routing, promotion"
    )
    models_sub = models.add_subparsers(dest="models_command", required=True)
    listing = models_sub.add_parser("list", help="list models, versions and what the version policy loads")
    listing.add_argument("--repository", help="model repository directory")
    listing.add_argument("--config", help="server TOML file")
    listing.set_defaults(func=_models_list)
    _add_lifecycle_commands(models_sub)
    quality.add_parser(models_sub)
    experiment.add_parser(models_sub)


def _add_lifecycle_commands(models_sub: Any) -> None:
    """Add the lifecycle subcommands under ``driftline models``."""

    def add(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        return add_command(models_sub, name, help_text, func)

    p = add("status", "versions, aliases, routing and failures of every model (or one)", _status)
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    p = add("load", "load a model, or one more version of it (--version)", _load)
    p.add_argument("name")
    p.add_argument("--version", type=int)
    p = add("unload", "unload one version that nothing routes to", _unload)
    p.add_argument("name")
    p.add_argument("--version", type=int, required=True)
    p = add("alias", "point an alias at a loaded version (admin)", _alias)
    p.add_argument("name")
    p.add_argument("alias")
    p.add_argument("version", type=int)
    p.add_argument("--reason")
    p = add("unalias", "remove an alias (admin)", _unalias)
    p.add_argument("name")
    p.add_argument("alias")
    p = add("rollback", "return an alias to its previous version (admin)", _rollback)
    p.add_argument("name")
    p.add_argument("alias", nargs="?", default="champion")
    p.add_argument("--reason")
    p = add("route", "set the routing policy: canary, sticky split, shadow (operator)", _route)
    p.add_argument("name")
    p.add_argument("--canary", metavar="TARGET:PERCENT", help="percent of unpinned traffic to TARGET")
    p.add_argument("--split", metavar="T1=W1,T2=W2", help="sticky A/B weights adding up to 100")
    p.add_argument("--split-parameter", help="request parameter holding the sticky key")
    p.add_argument("--split-header", help="HTTP header holding the sticky key")
    p.add_argument("--shadow", metavar="TARGET[:PERCENT]", help="copy requests to TARGET off the response path")
    p.add_argument("--clear", action="store_true", help="remove the policy")
    p.add_argument("--reason")
    p = add("shadow", "shadow comparisons: agreement, mean abs diff, latency of each version", _shadow)
    p.add_argument("name")
    p = add("propose", "propose a version for an alias (operator)", _propose)
    p.add_argument("name")
    p.add_argument("version", type=int)
    p.add_argument("--alias", default="champion")
    p.add_argument("--min-agreement", type=float, help="approval waits for shadow agreement >= this (0-1)")
    p.add_argument("--min-requests", type=int, help="... over at least this many shadowed requests")
    p.add_argument("--max-mean-abs-diff", type=float, help="... and a mean absolute difference <= this")
    p.add_argument("--reason")
    p = add("proposals", "list proposals, newest first", _proposals)
    p.add_argument("name", nargs="?")
    for verb, text in (
        ("approve", "approve a proposal once its rule passes (admin)"),
        ("promote", "move the alias of an approved proposal (admin)"),
        ("reject", "close a proposal without promoting it (admin)"),
    ):
        p = add(verb, text, _decision(verb))
        p.add_argument("id", type=int)
        p.add_argument("--reason")
    p = add("audit", "the audit log (oldest first on screen)", _audit)
    p.add_argument("name", nargs="?")
    p.add_argument("--action")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    add("sync", "sync from the registry now (operator)", _sync)
    add("registry", "registry sync status", _registry)
