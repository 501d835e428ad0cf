"""Write GrowthBook gbstats' frequentist results on seeded data as JSON: the reference tests/stats compares
driftline.stats with (tests/stats/test_gbstats_reference.py).

gbstats pins numpy < 2 and pandas < 2, so it runs in its own virtualenv, not the project's:

    python3.11 -m venv /tmp/gbstats-venv
    /tmp/gbstats-venv/bin/pip install gbstats==0.8.0
    /tmp/gbstats-venv/bin/python scripts/gbstats_reference.py > tests/fixtures/gbstats_reference.json

The data are drawn from a fixed seed, so the same gbstats version writes the same file. Each case gives gbstats
the arms' running sums (n, sum, sum of squares) as SampleMeanStatistic or ProportionStatistic and records, for the
fixed-horizon TwoSidedTTest and the SequentialTwoSidedTTest, the absolute and relative estimate, interval and
p-value. The SRM cases record gbstats' check_srm p-value.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from typing import Any

import numpy as np
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
from gbstats.utils import check_srm

SEED = 20261201
GBSTATS_VERSION = "0.8.0"

# (name, kind, control n, treatment n, control parameter, treatment parameter, confidence, tuning)
# kind "proportion": Bernoulli(p); "mean": normal(mu, 1); "revenue": lognormal(mu, 1) (skewed, as revenue is).
CASES: list[tuple[str, str, int, int, float, float, float, float]] = [
    ("proportion_small_equal", "proportion", 40, 40, 0.30, 0.40, 0.95, 5000.0),
    ("proportion_medium_unequal", "proportion", 700, 300, 0.10, 0.13, 0.95, 5000.0),
    ("proportion_large_equal_90", "proportion", 20000, 20000, 0.100, 0.104, 0.90, 5000.0),
    ("proportion_large_unequal_tuned", "proportion", 15000, 5000, 0.05, 0.06, 0.95, 1000.0),
    ("proportion_aa", "proportion", 2500, 2500, 0.20, 0.20, 0.95, 5000.0),
    ("proportion_large_strong", "proportion", 20000, 18000, 0.10, 0.12, 0.95, 5000.0),
    ("mean_tiny_unequal", "mean", 3, 5, 1.0, 1.5, 0.95, 5000.0),
    ("mean_small_equal_90", "mean", 30, 30, 2.0, 2.4, 0.90, 5000.0),
    ("mean_medium_unequal", "mean", 800, 1200, 10.0, 10.1, 0.95, 5000.0),
    ("mean_large_equal", "mean", 50000, 50000, 5.0, 5.02, 0.95, 20000.0),
    ("mean_negative_control", "mean", 400, 400, -3.0, -2.8, 0.90, 5000.0),
    ("mean_large_strong_90", "mean", 10000, 12000, 1.0, 1.1, 0.90, 5000.0),
    ("revenue_medium_unequal", "revenue", 1500, 900, 1.0, 1.1, 0.95, 5000.0),
    ("revenue_large_equal_90", "revenue", 10000, 10000, 0.5, 0.5, 0.90, 5000.0),
]

SRM_CASES: list[tuple[str, list[int], list[float]]] = [
    ("srm_52_48", [10400, 9600], [50.0, 50.0]),
    ("srm_502_498", [10040, 9960], [50.0, 50.0]),
    ("srm_three_arms", [3400, 3300, 3500], [1.0, 1.0, 1.0]),
    ("srm_unequal_weights", [7100, 2900], [70.0, 30.0]),
    ("srm_canary_30", [7040, 2960], [70.0, 30.0]),
]


def _draw(rng: np.random.Generator, kind: str, n: int, parameter: float) -> np.ndarray:
    if kind == "proportion":
        return (rng.random(n) < parameter).astype(np.float64)
    if kind == "mean":
        return rng.normal(parameter, 1.0, n)
    return rng.lognormal(parameter, 1.0, n)


def _arm(kind: str, values: np.ndarray) -> dict[str, Any]:
    return {"n": int(values.size), "sum": float(values.sum()), "sum_squares": float((values * values).sum())}


def _statistic(kind: str, arm: dict[str, Any]) -> SampleMeanStatistic | ProportionStatistic:
    if kind == "proportion":
        return ProportionStatistic(n=arm["n"], sum=arm["sum"])
    return SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_squares"])


def _result(test: TwoSidedTTest) -> dict[str, Any]:
    r = test.compute_result()
    if r.error_message:
        raise SystemExit(f"gbstats gave no result: {r.error_message}")
    lower, upper = (float(x) for x in r.ci)
    return {"estimate": float(r.expected), "lower": lower, "upper": upper, "p_value": float(r.p_value)}


def main() -> None:
    version = importlib.metadata.version("gbstats")
    if version != GBSTATS_VERSION:
        raise SystemExit(f"gbstats {GBSTATS_VERSION} wanted, {version} installed")
    rng = np.random.default_rng(SEED)
    cases = []
    for name, kind, n_a, n_b, param_a, param_b, confidence, tuning in CASES:
        control = _arm(kind, _draw(rng, kind, n_a, param_a))
        treatment = _arm(kind, _draw(rng, kind, n_b, param_b))
        alpha = 1.0 - confidence
        out: dict[str, Any] = {}
        for difference in ("absolute", "relative"):
            a, b = _statistic(kind, control), _statistic(kind, treatment)
            fixed = TwoSidedTTest(a, b, FrequentistConfig(alpha=alpha, difference_type=difference))
            seq = SequentialTwoSidedTTest(
                a, b, SequentialConfig(alpha=alpha, difference_type=difference, sequential_tuning_parameter=tuning)
            )
            out[f"fixed_{difference}"] = _result(fixed)
            out[f"sequential_{difference}"] = _result(seq)
        cases.append(
            {
                "name": name,
                "kind": kind,
                "confidence": confidence,
                "tuning": tuning,
                "control": control,
                "treatment": treatment,
                "gbstats": out,
            }
        )
    srm = [
        {"name": name, "observed": observed, "weights": weights, "p_value": float(check_srm(observed, weights))}
        for name, observed, weights in SRM_CASES
    ]
    json.dump({"gbstats": version, "seed": SEED, "cases": cases, "srm": srm}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
