"""``driftline models ...`` lifecycle subcommands (a client of the /v1/admin API) and ``driftline keys ...``.

The client uses only the standard library. The server is ``--url`` or ``$DRIFTLINE_URL`` (default
http://127.0.0.1:8000), the key ``--key`` or ``$DRIFTLINE_API_KEY``. An HTTP error prints the server's message and
exits 2, like every other user error of the CLI.
"""

from __future__ import annotations

import getpass
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from driftline.errors import BadRequest, DriftlineError

if TYPE_CHECKING:
    import argparse

__all__ = ["add_keys_parser", "add_lifecycle_commands"]

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(DriftlineError):
    """The server refused a request; the message is its own."""


def call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One request to the admin API; returns the decoded JSON answer.

    Raises:
        BadRequest: ``--url`` is no http(s) URL, or ``--key`` cannot be sent as a header.
        ApiError: the server cannot be reached, refuses the request, or answers something that is not JSON.
    """
    base = (args.url or os.environ.get("DRIFTLINE_URL") or DEFAULT_URL).rstrip("/")
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise BadRequest(f"--url {base!r} (or DRIFTLINE_URL) must look like http://HOST:PORT")
    url = base + path
    key = args.key or os.environ.get("DRIFTLINE_API_KEY")
    if key is not None and (not key or not key.isascii() or not key.isprintable() or " " in key):
        raise BadRequest("--key (or DRIFTLINE_API_KEY) must be printable ASCII without spaces, as keys are")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - checked to be http(s) above
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            message = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            message = text
        raise ApiError(f"{method} {path}: HTTP {exc.code}: {_one_line(str(message))}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ApiError(f"cannot reach the driftline server at {url}: {reason} (set --url or DRIFTLINE_URL)") from None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise ApiError(f"{method} {url}: the answer is not JSON (is this a driftline server?)") from None


def _one_line(text: str, limit: int = 300) -> str:
    """An error body as one line (an HTML error page from a proxy has many)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _print(value: Any) -> int:
    print(json.dumps(value, indent=2, sort_keys=False))
    return 0


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _status(args: argparse.Namespace) -> int:
    if args.name:
        models = [call(args, "GET", f"/v1/admin/models/{_q(args.name)}")]
    else:
        models = call(args, "GET", "/v1/admin/models")
    if args.json:
        return _print(models if not args.name else models[0])
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
        if m.get("error"):
            print(f"  error: {m['error']}")
    return 0


def _load(args: argparse.Namespace) -> int:
    body = {"version": args.version} if args.version is not None else {}
    return _print(call(args, "POST", f"/v1/admin/models/{_q(args.name)}/load", body))


def _unload(args: argparse.Namespace) -> int:
    return _print(call(args, "POST", f"/v1/admin/models/{_q(args.name)}/unload", {"version": args.version}))


def _alias(args: argparse.Namespace) -> int:
    body = {"version": args.version, "reason": args.reason}
    return _print(call(args, "PUT", f"/v1/admin/models/{_q(args.name)}/aliases/{_q(args.alias)}", body))


def _unalias(args: argparse.Namespace) -> int:
    return _print(call(args, "DELETE", f"/v1/admin/models/{_q(args.name)}/aliases/{_q(args.alias)}"))


def _rollback(args: argparse.Namespace) -> int:
    path = f"/v1/admin/models/{_q(args.name)}/aliases/{_q(args.alias)}/rollback"
    return _print(call(args, "POST", path, {"reason": args.reason}))


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
        return _print(call(args, "DELETE", path))
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
    return _print(call(args, "PUT", path, body))


def _shadow(args: argparse.Namespace) -> int:
    return _print(call(args, "GET", f"/v1/admin/models/{_q(args.name)}/shadow"))


def _propose(args: argparse.Namespace) -> int:
    rule: dict[str, Any] = {}
    if args.min_agreement is not None:
        rule["min_agreement"] = args.min_agreement
    if args.min_requests is not None:
        rule["min_requests"] = args.min_requests
    if args.max_mean_abs_diff is not None:
        rule["max_mean_abs_diff"] = args.max_mean_abs_diff
    body = {"version": args.version, "alias": args.alias, "rule": rule or None, "reason": args.reason}
    return _print(call(args, "POST", f"/v1/admin/models/{_q(args.name)}/proposals", body))


def _proposals(args: argparse.Namespace) -> int:
    query = f"?model={_q(args.name)}" if args.name else ""
    return _print(call(args, "GET", f"/v1/admin/proposals{query}"))


def _decision(verb: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        return _print(call(args, "POST", f"/v1/admin/proposals/{args.id}/{verb}", {"reason": args.reason}))

    return run


def _audit(args: argparse.Namespace) -> int:
    query = {"limit": str(args.limit)}
    if args.name:
        query["model"] = args.name
    if args.action:
        query["action"] = args.action
    events = call(args, "GET", f"/v1/admin/audit?{urllib.parse.urlencode(query)}")
    if args.json:
        return _print(events)
    for e in reversed(events):
        change = f"{e['version_before'] or '-'} -> {e['version_after'] or '-'}"
        sha = f" sha256={e['sha256'][:12]}" if e["sha256"] else ""
        print(f"{e['at']}  {e['actor']:<22} {e['action']:<15} {e['model']:<16} {change:<10}{sha}  {e['reason'] or ''}")
    return 0


def _sync(args: argparse.Namespace) -> int:
    return _print(call(args, "POST", "/v1/admin/registry/sync", {}))


def _registry(args: argparse.Namespace) -> int:
    return _print(call(args, "GET", "/v1/admin/registry"))


def _client_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--url", help=f"driftline server (default $DRIFTLINE_URL or {DEFAULT_URL})")
    parser.add_argument("--key", help="API key (default $DRIFTLINE_API_KEY)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server")
    return parser


def add_lifecycle_commands(models_sub: Any) -> None:
    """Add the lifecycle subcommands under ``driftline models``."""

    def add(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = _client_options(models_sub.add_parser(name, help=help_text))
        parser.set_defaults(func=func)
        return parser

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


def _local_actor() -> str:
    """Who ran a local command, for the audit log (there is no API key on this path)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry and no $USER (a bare container)
        return f"cli:uid={os.getuid()}"


def _keys_create(args: argparse.Namespace) -> int:
    from driftline.config import load_settings
    from driftline.store.db import Database
    from driftline.store.keys import KeyStore

    settings = load_settings(args.config, {"database": args.database} if args.database else None)
    db = Database(settings.database)
    try:
        reserved = [k.name for k in settings.auth.keys]
        key = KeyStore(db).create_key(args.name, args.role, reserved, actor=_local_actor())
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    finally:
        db.close()
    print(key)
    return 0


def _keys_hash(args: argparse.Namespace) -> int:
    from driftline.security.keys import hash_key

    print(hash_key(args.key))
    return 0


def add_keys_parser(sub: Any) -> None:
    """``driftline keys create|hash``: make the first admin key, or hash one for config.toml."""
    keys = sub.add_parser("keys", help="API keys: create one in the local store, or hash one for config.toml")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key in the server's SQLite store and print it once")
    create.add_argument("name")
    create.add_argument("--role", required=True, help="viewer, predictor, operator or admin")
    create.add_argument("--database", help="the server's SQLite file (default from the config: driftline.db)")
    create.add_argument("--config", help="server TOML file")
    create.set_defaults(func=_keys_create)
    hashing = keys_sub.add_parser("hash", help="print the sha256 to put in config.toml's [[auth.keys]]")
    hashing.add_argument("key")
    hashing.set_defaults(func=_keys_hash)
