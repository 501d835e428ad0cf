"""The figures of `driftline tune` in benchmarks/RESULTS.md: the large MLP under closed-loop load with an SLO the
default configuration misses (p99 <= 15 ms at >= 12,000 req/s); brute against quick on a 24-point space; two quick
runs; the recommendation re-measured in a separate run beside the default.

Run: `.venv/bin/python benchmarks/tune_runs.py OUT_DIR` (about 20 minutes on 2 cores; nothing else should run).
It drives the CLI as a user does and prints one JSON line per run, then a summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from driftline.repository.demo import build_mlp_onnx

SPACE = [
    "max_batch_size=8,32,64",
    "max_queue_delay_us=0,1000",
    "instances=1,2",
    "workers=1,2",
    "threads=1",
    "preferred_batch_sizes=none",
    "device=cpu",
]
COMMON = ["--load", "concurrency=32,64,96", "--window", "1s", "--warmup", "1s", "--max-windows", "6"]
COMMON += ["--budget", "30m"]


def tune(out: Path, name: str, slo: str, search: str, space: list[str]) -> dict:
    flags = [f for s in space for f in ("--space", s)]
    cmd = [sys.executable, "-m", "driftline.cli", "tune", "large", "--repository", str(out / "models")]
    cmd += ["--slo", slo, "--search", search, "--out", str(out / name), *COMMON, *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=out, timeout=3600)
    summary = json.loads(proc.stdout)
    print(json.dumps({"run": name, **summary}), flush=True)
    return summary


def pinned(config: dict) -> list[str]:
    pref = "+".join(map(str, config["preferred_batch_sizes"])) or "none"
    return [f"{k}={v}" for k, v in config.items() if k != "preferred_batch_sizes"] + [f"preferred_batch_sizes={pref}"]


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    (out / "models" / "large" / "1").mkdir(parents=True, exist_ok=True)
    build_mlp_onnx(out / "models" / "large" / "1" / "model.onnx", 256, 1024, 3, 16, seed=11)
    # The SLO: p99 within 15 ms at 12,000 req/s or more. A first run of this script (SLO p99 <= 20 ms at >= 7,000)
    # measured the default (one worker) at 7,000-11,000 req/s within p99 15 ms in four runs, and two-worker
    # configurations at 13,000-15,600, so the default misses this one.
    slo = "p99=15ms,rps>=12000"
    brute = tune(out, "brute", slo, "brute", SPACE)
    quick = [tune(out, f"quick{i}", slo, "quick", SPACE) for i in (1, 2)]
    again = tune(out, "rerun", slo, "brute", pinned(brute["recommended"]["config"]))
    print(
        json.dumps(
            {
                "slo": slo,
                "default_meets": brute["default"]["meets_slo"],
                "brute": [brute["recommended"]["config"], brute["recommended"]["objective"], brute["points_measured"]],
                "quick": [
                    [q["recommended"]["config"], q["recommended"]["objective"], q["points_measured"]] for q in quick
                ],
                "quick_vs_brute": [q["recommended"]["objective"] / brute["recommended"]["objective"] for q in quick],
                "rerun": again["recommended"],
                "rerun_default": again["default"],
                "rerun_vs_default_rps": again["throughput_vs_default"],
                "default_in_brute": brute["default"],
            }
        )
    )


if __name__ == "__main__":
    main()
