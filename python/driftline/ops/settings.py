"""``[slo]`` settings: the server-wide defaults (``ServerSettings.slo``) and a model's overrides (its
``config.toml``). Imports nothing from driftline, so both config modules can use it."""

from __future__ import annotations

import math

import msgspec

__all__ = ["SloOverrides", "SloSettings"]


def _check_objective(key: str, value: float) -> None:
    if isinstance(value, bool) or not (isinstance(value, int | float) and 0 < value < 1):
        raise ValueError(f"slo.{key} must be a number within (0, 1), got {value!r}")


class SloSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One model's SLOs: availability (share of answers that are not a 5xx) and latency (share of requests
    answered within ``latency_threshold_ms``), each over ``period_days``. ``enabled = false`` turns the SLO
    accounting off (no slow count, no SLO metrics, no statuses)."""

    enabled: bool = True
    availability: float = 0.999
    latency_threshold_ms: float = 50.0
    latency_objective: float = 0.99
    period_days: float = 28.0

    def __post_init__(self) -> None:
        _check_objective("availability", self.availability)
        _check_objective("latency_objective", self.latency_objective)
        if not (math.isfinite(self.latency_threshold_ms) and self.latency_threshold_ms > 0):
            raise ValueError(f"slo.latency_threshold_ms must be > 0, got {self.latency_threshold_ms!r}")
        # At least the 6 h window the slowest alert reads, at most the history's 30-day retention.
        if not 0.25 <= self.period_days <= 30:
            raise ValueError(f"slo.period_days must be within 0.25..30, got {self.period_days!r}")


class SloOverrides(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model's ``[slo]``: each key given replaces the server's ``[slo]`` default (omitted: inherited)."""

    enabled: bool | None = None
    availability: float | None = None
    latency_threshold_ms: float | None = None
    latency_objective: float | None = None
    period_days: float | None = None

    def __post_init__(self) -> None:
        self.over(SloSettings())  # each key is checked by the rules the server-wide one meets

    def over(self, default: SloSettings) -> SloSettings:
        """The model's SLO settings: ``default`` with this table's keys in place of its own."""
        given = {name: value for name in self.__struct_fields__ if (value := getattr(self, name)) is not None}
        return msgspec.structs.replace(default, **given)
