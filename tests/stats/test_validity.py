"""The confidence sequence survives peeking; the fixed-horizon interval does not (docs/statistics.md "Validity,
measured": the figures there come from ``pytest tests/stats/test_validity.py -s``).

1,000 simulated experiments per scenario (A/A and A/B, a Bernoulli and a normal metric, and paired differences as
shadow traffic gives them), up to 5,000 units per arm, the report read after every 100 units per arm: a 95%
interval "covers" an experiment when it contains the true difference at every one of the 50 looks. The looks of
all experiments are computed at once with the engines' vectorised radii (driftline.stats.bounds); a sample of them
is checked against the public functions, so what is measured is what the report uses.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest

from driftline.stats import Sample, fixed_horizon, paired_fixed, paired_sequential, sample_ratio, sequential
from driftline.stats.bounds import fixed_radius, sequential_radius, welch_dof

EXPERIMENTS = 1000
EVERY = 100
LOOKS = 50
CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE
TUNING = 5000.0
SEED = 12
CHECKED = 100  # looks per scenario compared with the public functions

# (name, kind, control parameter, treatment parameter); Bernoulli(p) and normal(mu, 1); "paired": normal
# differences (mean = the effect, sd 1) of the two versions on the same requests. "rare": an error rate, where an
# arm often has no event yet at the early looks (one arm's variance bounds it). The relative lift is measured
# too where it exists (its sequence is asymptotic twice over: the CS and the delta method).
SCENARIOS = [
    ("bernoulli A/A", "bernoulli", 0.10, 0.10),
    ("bernoulli A/B", "bernoulli", 0.10, 0.11),
    ("rare A/A", "bernoulli", 0.002, 0.002),
    ("rare A/B", "bernoulli", 0.002, 0.004),
    ("normal A/A", "normal", 1.0, 1.0),
    ("normal A/B", "normal", 1.0, 1.05),
    ("paired A/A", "paired", 0.0, 0.0),
    ("paired A/B", "paired", 0.0, 0.05),
]


@dataclass(frozen=True)
class Looks:
    """Running summaries of every experiment at every look: arrays of shape (EXPERIMENTS, LOOKS)."""

    n: np.ndarray
    mean: np.ndarray
    variance: np.ndarray


def _looks(rng: np.random.Generator, kind: str, parameter: float) -> Looks:
    n = np.broadcast_to(EVERY * np.arange(1, LOOKS + 1, dtype=np.float64), (EXPERIMENTS, LOOKS))
    if kind == "bernoulli":
        # A block of 100 Bernoulli units sums to a Binomial(100, p): the same running sums, drawn 100x cheaper.
        mean = rng.binomial(EVERY, parameter, size=(EXPERIMENTS, LOOKS)).cumsum(axis=1) / n
        return Looks(n, mean, mean * (1.0 - mean))
    values = rng.normal(parameter, 1.0, size=(EXPERIMENTS, LOOKS, EVERY))
    total, squares = values.sum(axis=2).cumsum(axis=1), (values * values).sum(axis=2).cumsum(axis=1)
    return Looks(n, total / n, np.maximum(0.0, (squares - total * total / n) / (n - 1.0)))


def _sample(looks: Looks, e: int, k: int) -> Sample:
    return Sample(int(looks.n[e, k]), float(looks.mean[e, k]), float(looks.variance[e, k]))


def _two_sample(rng: np.random.Generator, kind: str, a: float, b: float) -> tuple[float, float, float, float | None]:
    control, treatment = _looks(rng, kind, a), _looks(rng, kind, b)
    difference = treatment.mean - control.mean
    known = control.variance + treatment.variance > 0
    variance = np.where(known, control.variance / control.n + treatment.variance / treatment.n, 0.0)
    seq = sequential_radius(variance, control.n + treatment.n, ALPHA, TUNING)
    dof = welch_dof(control.variance, control.n, treatment.variance, treatment.n)
    fix = fixed_radius(variance, dof, ALPHA)
    lift, lift_seq = _relative(control, treatment, known)
    for e, k in zip(rng.integers(0, EXPERIMENTS, CHECKED), rng.integers(0, LOOKS, CHECKED), strict=True):
        c, t = _sample(control, e, k), _sample(treatment, e, k)
        result = sequential(c, t, CONFIDENCE, TUNING)
        assert result.absolute.upper == pytest.approx(difference[e, k] + seq[e, k])
        if result.relative is None:
            assert c.mean == 0
        else:
            assert result.relative.lower == pytest.approx(lift[e, k] - lift_seq[e, k])
        assert fixed_horizon(c, t, CONFIDENCE).absolute.lower == pytest.approx(difference[e, k] - fix[e, k])
    relative = float((np.abs(lift - (b / a - 1.0)) <= lift_seq).all(axis=1).mean()) if a else None
    return (*_coverage(difference, seq, fix, b - a), relative)


def _relative(control: Looks, treatment: Looks, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lift and its sequence's radius (delta method); a control mean of 0 (no lift) counts as covered."""
    a = np.where(control.mean != 0, control.mean, 1.0)
    lift = np.where(control.mean != 0, (treatment.mean - control.mean) / a, 0.0)
    variance = treatment.variance / (a * a * treatment.n) + control.variance * treatment.mean**2 / (a**4 * control.n)
    radius = sequential_radius(np.where(known, variance, 0.0), control.n + treatment.n, ALPHA, TUNING)
    return lift, np.where(control.mean != 0, radius, np.inf)


def _paired(rng: np.random.Generator, effect: float) -> tuple[float, float, float, None]:
    differences = _looks(rng, "normal", effect)
    variance = differences.variance / differences.n
    seq = sequential_radius(variance, differences.n, ALPHA, TUNING)
    fix = fixed_radius(variance, differences.n - 1.0, ALPHA)
    for e, k in zip(rng.integers(0, EXPERIMENTS, CHECKED), rng.integers(0, LOOKS, CHECKED), strict=True):
        d = _sample(differences, e, k)
        assert paired_sequential(d, CONFIDENCE, TUNING).absolute.upper == pytest.approx(d.mean + seq[e, k])
        assert paired_fixed(d, CONFIDENCE).absolute.lower == pytest.approx(d.mean - fix[e, k])
    return (*_coverage(differences.mean, seq, fix, effect), None)


def _coverage(estimate: np.ndarray, seq: np.ndarray, fix: np.ndarray, truth: float) -> tuple[float, float, float]:
    """Shares of experiments whose interval held the truth at every look (sequential, fixed), and the fixed
    interval's share at the last look alone (read once, as it is meant to be)."""
    error = np.abs(estimate - truth)
    held_seq, held_fix = error <= seq, error <= fix
    return float(held_seq.all(axis=1).mean()), float(held_fix.all(axis=1).mean()), float(held_fix[:, -1].mean())


def test_the_sequence_covers_at_every_look_and_the_fixed_interval_does_not():
    start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    rows = []
    for name, kind, a, b in SCENARIOS:
        rows.append((name, *(_paired(rng, b) if kind == "paired" else _two_sample(rng, kind, a, b))))
    seconds = time.perf_counter() - start
    header = "| scenario | sequential, every look | fixed, every look | fixed, last look only | sequential lift |"
    lines = [f"| {n} | {s:.3f} | {f:.3f} | {o:.3f} | {'-' if r is None else f'{r:.3f}'} |" for n, s, f, o, r in rows]
    figures = "\n".join([header, *lines])
    print(f"\nseed {SEED}, {EXPERIMENTS} experiments per scenario, {seconds:.1f} s\n{figures}", file=sys.stderr)
    for name, seq, fix, once, lift in rows:
        assert seq >= CONFIDENCE, (name, seq)
        assert fix <= seq - 0.15, (name, fix, seq)
        # Read once, at its planned sample size, the fixed interval is right: the failure is the peeking.
        assert 0.93 <= once <= 0.97, (name, once)
        # The lift's sequence is near nominal, not above it, while events are plenty: held to a looser bound there.
        # On a rare event (a handful in the control) the delta method fails, and gbstats with it: recorded only.
        assert lift is None or name.startswith("rare") or lift >= 0.94, (name, lift)


def test_srm_flags_a_52_48_split_and_rarely_a_fair_one():
    # 1,000 simulated 50/50 designs at 20,000 assignments: when units really go 50/50 the check raises an alarm
    # (p < 0.001) about once in a thousand; when they go 52/48 (a shift of 5.7 standard deviations) it misses about
    # 1% of them. And the exact splits the issue names.
    rng = np.random.default_rng(SEED)
    fair = [sample_ratio([int(k), 20_000 - int(k)], [50, 50]).flagged for k in rng.binomial(20_000, 0.5, 1000)]
    skewed = [sample_ratio([int(k), 20_000 - int(k)], [50, 50]).flagged for k in rng.binomial(20_000, 0.52, 1000)]
    print(
        f"\nSRM at 20,000: false alarms {sum(fair)} of 1000 (50/50), flagged {sum(skewed)} of 1000 (52/48)",
        file=sys.stderr,
    )
    assert sum(fair) <= 5
    assert sum(skewed) >= 980
    assert sample_ratio([10_400, 9_600], [50, 50]).flagged
    assert not sample_ratio([10_040, 9_960], [50, 50]).flagged
