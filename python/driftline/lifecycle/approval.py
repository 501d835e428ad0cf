"""Approval rules: what the shadow comparison of a candidate beside the alias's version must show before approval."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from driftline.store.shadow_stats import ShadowPair

__all__ = ["ApprovalRule", "judge"]


class ApprovalRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What the shadow comparison of candidate against the alias's version must show before approval."""

    min_agreement: float | None = None
    min_requests: int = 0
    max_mean_abs_diff: float | None = None

    def __post_init__(self) -> None:
        if self.min_agreement is not None and not 0 <= self.min_agreement <= 1:
            raise ValueError(f"rule.min_agreement must be within 0..1, got {self.min_agreement}")
        if self.min_requests < 0:
            raise ValueError("rule.min_requests must be >= 0")


def judge(rule: ApprovalRule, pair: ShadowPair | None, candidate: int, current: int | None) -> tuple[bool, str]:
    """Whether ``pair`` (``candidate`` shadowing ``current``, None when it never ran) meets ``rule``, and the
    evidence in words (shown on a refusal and in the audit log)."""
    requests = pair.requests - pair.shadow_errors if pair else 0
    agreement = pair.agreement if pair else None
    mad = pair.mean_abs_diff if pair else None
    evidence = (
        f"shadow of version {candidate} beside version {current}: {requests} compared request(s), "
        f"agreement {'n/a' if agreement is None else f'{agreement:.4f}'}, "
        f"mean abs diff {'n/a' if mad is None else f'{mad:.6g}'}"
    )
    if requests < rule.min_requests:
        return False, f"{evidence}; the rule needs at least {rule.min_requests} request(s)"
    if rule.min_agreement is not None and (agreement is None or agreement < rule.min_agreement):
        return False, f"{evidence}; the rule needs agreement >= {rule.min_agreement}"
    if rule.max_mean_abs_diff is not None and (mad is None or mad > rule.max_mean_abs_diff):
        return False, f"{evidence}; the rule needs mean abs diff <= {rule.max_mean_abs_diff}"
    return True, evidence
