"""Simulated users for trying driftline's experiments: each one sends a prediction request, and converts (a KPI event
posted later) with a probability that depends on the version that answered it.

    python3 examples/simulate_users.py iris --users 4000 --convert 2=0.10,1=0.20

Standard library only; every user is one request to 127.0.0.1 (bounded by --users, each with a 10 s timeout), the
conversions go to ``POST /v1/models/{m}/kpi`` in batches after the requests, with the key in ``DRIFTLINE_API_KEY``
when it is set (a server that holds keys takes KPI events from a predictor key or above). Prints one JSON line: users
per version, conversions per version, and failed requests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

_ROW = [5.1, 3.5, 1.4, 0.2]
_BATCH = 500


def _post(url: str, body: object, key: str | None = None) -> dict[str, object]:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(  # noqa: S310 - the URL is the local server's
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        result: dict[str, object] = json.loads(answer.read())
        return result


def _rates(text: str) -> dict[str, float]:
    try:
        pairs = (item.split("=", 1) for item in text.split(","))
        return {version.strip(): float(rate) for version, rate in pairs}
    except ValueError:
        raise SystemExit(f"simulate_users: --convert takes VERSION=RATE,..., got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--convert", type=_rates, default={}, help="VERSION=RATE,... (conversion probability)")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--kpi", default="conversion")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    key = os.environ.get("DRIFTLINE_API_KEY")
    rng = random.Random(args.seed)  # noqa: S311 - a simulation, not a secret
    draws = [rng.random() for _ in range(args.users)]
    infer = f"{args.url}/v2/models/{args.model}/infer"

    def visit(i: int) -> tuple[str, str | None]:
        body = {"id": f"user-{i}", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": _ROW}]}
        try:
            return body["id"], str(_post(infer, body)["model_version"])
        except (urllib.error.URLError, OSError):
            return str(body["id"]), None

    served: dict[str, int] = {}
    converted: dict[str, int] = {}
    events = []
    failed = 0
    with ThreadPoolExecutor(8) as pool:
        for (uid, version), draw in zip(pool.map(visit, range(args.users)), draws, strict=True):
            if version is None:
                failed += 1
                continue
            served[version] = served.get(version, 0) + 1
            if draw < args.convert.get(version, 0.0):
                converted[version] = converted.get(version, 0) + 1
                events.append({"id": uid, "name": args.kpi, "value": 1})
    for start in range(0, len(events), _BATCH):
        _post(f"{args.url}/v1/models/{args.model}/kpi", {"kpi": events[start : start + _BATCH]}, key)
    json.dump({"users": served, "conversions": converted, "failed": failed}, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
