"""Which statistic and threshold judge each feature, and the verdicts they give (docs/drift.md "Verdicts")."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import msgspec

from driftline.errors import DriftInputError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from driftline.drift.features import Schema

__all__ = [
    "CATEGORICAL_STATS",
    "NUMERIC_STATS",
    "PVALUE_STATS",
    "DriftPolicy",
    "Rule",
    "Verdict",
    "decide",
    "resolve",
]

Verdict = Literal["drift", "ok", "insufficient_data"]
Preset = Literal["default", "significance"]

NUMERIC_STATS = frozenset(
    {
        "ks",
        "wasserstein",
        "wasserstein_norm",
        "psi",
        "jensenshannon",
        "hellinger",
        "kl",
        "cramervonmises",
        "anderson",
    }
)
CATEGORICAL_STATS = frozenset({"chi2", "chi2_gof", "jensenshannon", "psi", "fisher_exact"})
PVALUE_STATS = frozenset({"ks", "cramervonmises", "anderson", "chi2", "chi2_gof", "fisher_exact"})
ALL_STATS = NUMERIC_STATS | CATEGORICAL_STATS

# Evidently's defaults: p < 0.05 for tests, 0.1 for distances. Raw `wasserstein` is in data units: no default.
DEFAULT_THRESHOLDS: dict[str, float] = {
    **dict.fromkeys(PVALUE_STATS, 0.05),
    **dict.fromkeys(("wasserstein_norm", "jensenshannon", "psi", "kl", "hellinger"), 0.1),
}
SMALL_REFERENCE = 1000


class DriftPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a model's features are judged; one per model, with per-feature overrides.

    Attributes:
        preset: "default" (Evidently's choice by reference size and kind) or "significance" (alibi-detect:
            ks / chi2 with a multiple-testing correction).
        stat: One statistic for every feature whose kind it applies to (others keep the preset's choice).
        threshold: Threshold for every feature without a per-feature threshold.
        stats: Per-feature statistic.
        thresholds: Per-feature threshold.
        correction: For "significance": "bonferroni" (p < p_value / features) or "fdr" (Benjamini-Hochberg).
        p_value: Significance level of p-value tests.
        drift_share: The dataset drifts when at least this share of features drift.
    """

    preset: Preset = "default"
    stat: str | None = None
    threshold: float | None = None
    stats: dict[str, str] = msgspec.field(default_factory=dict)
    thresholds: dict[str, float] = msgspec.field(default_factory=dict)
    correction: Literal["bonferroni", "fdr"] = "bonferroni"
    p_value: float = 0.05
    drift_share: float = 0.5

    def __post_init__(self) -> None:
        """Check names and ranges.

        Raises:
            DriftInputError: Unknown statistic or preset, a share/p-value outside (0, 1], or a threshold that is
                negative or not finite.
        """
        for s in [self.stat, *self.stats.values()]:
            if s is not None and s not in ALL_STATS:
                raise DriftInputError(f"unknown statistic {s!r}; known: {sorted(ALL_STATS)}")
        if self.preset not in ("default", "significance"):
            raise DriftInputError(f"unknown preset {self.preset!r}; known: default, significance")
        if not 0 < self.drift_share <= 1 or not 0 < self.p_value <= 1:
            raise DriftInputError("drift_share and p_value must be in (0, 1]")
        given = [("threshold", self.threshold)] if self.threshold is not None else []
        given += [(f"threshold of {name!r}", t) for name, t in self.thresholds.items()]
        for what, t in given:
            # p-value thresholds are checked against (0, 1) in resolve(), once the statistic is known.
            if not 0 <= t < math.inf:
                raise DriftInputError(f"{what} must be a finite number >= 0, got {t}")


class Rule(msgspec.Struct, frozen=True):
    """The test of one feature.

    Attributes:
        stat: Statistic name.
        threshold: Drift when value >= threshold (distances) or p < threshold (tests); None for "fdr"
            until the p-values are known.
        pvalue: Whether the statistic is a test judged by its p-value.
        fallback: Statistic to use when `stat` does not apply to the data seen (fisher_exact when the current
            window brings a third category).
        corrected: Whether the threshold comes from the multiple-testing correction.
    """

    stat: str
    threshold: float | None
    pvalue: bool
    fallback: str | None = None
    corrected: bool = False


def _default_stat(kind: str, distinct: int, n_ref: int, preset: Preset) -> tuple[str, str | None]:
    if preset == "significance":
        return ("ks", None) if kind == "numeric" else ("chi2", None)
    if n_ref <= SMALL_REFERENCE:
        if kind == "numeric":
            return "ks", None
        return ("fisher_exact", "chi2") if distinct == 2 else ("chi2", None)
    return ("wasserstein_norm", None) if kind == "numeric" else ("jensenshannon", None)


def resolve(schema: Schema, n_ref: int, policy: DriftPolicy) -> list[Rule]:
    """Choose statistic and threshold per feature.

    Args:
        schema: The profile's columns (kinds and distinct counts).
        n_ref: Rows in the reference.
        policy: The policy.

    Returns:
        One rule per feature, in schema order.

    Raises:
        DriftInputError: An override names an unknown feature, a statistic that does not apply to the
            feature's kind (or `stat` that applies to none), `wasserstein` without a threshold, or a p-value
            threshold outside (0, 1).
    """
    names = set(schema.names)
    unknown = sorted((set(policy.stats) | set(policy.thresholds)) - names)
    if unknown:
        raise DriftInputError(f"policy names unknown feature(s) {unknown}; the profile has {schema.names}")
    n_features = len(schema.columns)
    kinds = {c.kind for c in schema.columns}
    if policy.stat is not None and not any(
        policy.stat in (NUMERIC_STATS if kind == "numeric" else CATEGORICAL_STATS) for kind in kinds
    ):
        raise DriftInputError(
            f"statistic {policy.stat!r} applies to none of the features (all {' and '.join(sorted(kinds))})"
        )
    rules: list[Rule] = []
    for col in schema.columns:
        allowed = NUMERIC_STATS if col.kind == "numeric" else CATEGORICAL_STATS
        stat, fallback = _default_stat(col.kind, col.distinct, n_ref, policy.preset)
        if policy.stat is not None and policy.stat in allowed:
            stat, fallback = policy.stat, None
        if col.name in policy.stats:
            stat, fallback = policy.stats[col.name], None
            if stat not in allowed:
                raise DriftInputError(
                    f"statistic {stat!r} does not apply to {col.kind} feature {col.name!r}; use one of "
                    f"{sorted(allowed)}"
                )
        is_p = stat in PVALUE_STATS
        threshold = policy.thresholds.get(col.name, policy.threshold)
        if threshold is not None and is_p and not 0 < threshold < 1:
            raise DriftInputError(
                f"threshold {threshold:g} for feature {col.name!r} is a p-value threshold ({stat} is a test) "
                "and must be in (0, 1)"
            )
        corrected = False
        if threshold is None:
            if is_p:
                threshold = policy.p_value
                if policy.preset == "significance":
                    corrected = True
                    threshold = policy.p_value / n_features if policy.correction == "bonferroni" else None
            else:
                threshold = DEFAULT_THRESHOLDS.get(stat)
                if threshold is None:
                    raise DriftInputError(
                        f"statistic {stat!r} for feature {col.name!r} has no default threshold; give one"
                    )
        rules.append(Rule(stat, threshold, is_p, fallback, corrected))
    return rules


def fdr_threshold(pvalues: Sequence[float], q: float) -> float:
    """Benjamini-Hochberg cut-off as alibi-detect computes it: the largest q*i/n with p_(i) < q*i/n.

    Args:
        pvalues: The p-values under test (NaN ones are left out).
        q: False discovery rate.

    Returns:
        The threshold; a feature drifts when p < threshold. With no rejection, q/n (no p is below it).
    """
    ps = sorted(p for p in pvalues if not math.isnan(p))
    n = len(ps)
    if n == 0:
        return q
    cut = q / n
    for i, p in enumerate(ps, start=1):
        if p < q * i / n:
            cut = q * i / n
    return cut


def verdict(value: float, pvalue: float, rule: Rule, threshold: float) -> Verdict:
    """The verdict of one feature.

    Args:
        value: The statistic.
        pvalue: Its p-value (NaN for distances).
        rule: The rule.
        threshold: The threshold in force.

    Returns:
        "insufficient_data" when the statistic is NaN, else "drift" or "ok".
    """
    if rule.pvalue:
        if math.isnan(pvalue):
            return "insufficient_data"
        return "drift" if pvalue < threshold else "ok"
    if math.isnan(value):
        return "insufficient_data"
    return "drift" if value >= threshold else "ok"


def decide(
    rules: Sequence[Rule], values: Sequence[float], pvalues: Sequence[float], policy: DriftPolicy
) -> tuple[list[float], list[Verdict]]:
    """Thresholds in force (fdr needs all p-values first) and the verdict of every feature.

    Args:
        rules: One per feature.
        values: Statistic per feature.
        pvalues: P-value per feature (NaN for distances).
        policy: The policy (its p_value is the fdr rate).

    Returns:
        Thresholds and verdicts, per feature.
    """
    pending = [i for i, r in enumerate(rules) if r.threshold is None]
    cut = fdr_threshold([pvalues[i] for i in pending], policy.p_value) if pending else math.nan
    thresholds = [cut if r.threshold is None else r.threshold for r in rules]
    verdicts = [verdict(v, p, r, t) for v, p, r, t in zip(values, pvalues, rules, thresholds, strict=True)]
    return thresholds, verdicts


def dataset_verdict(verdicts: Sequence[Verdict], share: float) -> tuple[Verdict, float]:
    """Dataset drift: the share of drifted features among all features, against the policy's share.

    Args:
        verdicts: Per-feature verdicts.
        share: Drift when drifted / features >= share.

    Returns:
        The dataset verdict ("insufficient_data" when no feature had data) and the drifted share.
    """
    if not verdicts or all(v == "insufficient_data" for v in verdicts):
        return "insufficient_data", 0.0
    drifted = sum(v == "drift" for v in verdicts) / len(verdicts)
    return ("drift" if drifted >= share else "ok"), drifted


def policy_from(
    preset: str = "default",
    stats: str | Mapping[str, str] | None = None,
    thresholds: float | Mapping[str, float] | None = None,
    **kwargs: object,
) -> DriftPolicy:
    """Build a policy from the compact arguments compute_drift and the CLI take.

    Args:
        preset: "default" or "significance".
        stats: One statistic for all features, or feature -> statistic.
        thresholds: One threshold for all features, or feature -> threshold.
        **kwargs: Further DriftPolicy fields (correction, p_value, drift_share).

    Returns:
        The policy.
    """
    fields: dict[str, object] = {"preset": preset, **kwargs}
    if isinstance(stats, str):
        fields["stat"] = stats
    elif stats is not None:
        fields["stats"] = dict(stats)
    if isinstance(thresholds, int | float):
        fields["threshold"] = float(thresholds)
    elif thresholds is not None:
        fields["thresholds"] = {k: float(v) for k, v in thresholds.items()}
    try:
        return msgspec.convert(fields, DriftPolicy)
    except msgspec.ValidationError as exc:
        raise DriftInputError(f"invalid drift policy: {exc}") from exc
