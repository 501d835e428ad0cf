"""Shadow comparison totals: each process's running counters per (model, primary, shadow), summed on read.

:class:`ShadowPair` is the counter record itself: the serving side counts into it, this module stores and sums it,
so it lives here, below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import msgspec

if TYPE_CHECKING:
    from driftline.store.db import Database

__all__ = ["ShadowPair", "ShadowStatsStore", "ShadowSummary"]

_COUNTERS = (
    "requests",
    "compared_rows",
    "agreeing_rows",
    "abs_diff_sum",
    "abs_diff_count",
    "primary_latency_s",
    "shadow_latency_s",
    "shadow_errors",
    "dropped",
)


# Absolute totals per process: a repeated save replaces the row (the counters are not added).
_UPSERT: Final = (
    "INSERT INTO shadow_stats (process, model, primary_version, shadow_version, requests,"  # noqa: S608 - fixed column names
    " compared_rows, agreeing_rows, abs_diff_sum, abs_diff_count, primary_latency_s, shadow_latency_s,"
    " shadow_errors, dropped, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (process, model, primary_version, shadow_version) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_COUNTERS, "last_error"))
    + ", updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
)


class ShadowSummary(msgspec.Struct, frozen=True):
    """One pair's comparison as the admin API shows it (ratios and mean latencies, not raw counters)."""

    model: str
    primary_version: str
    shadow_version: str
    requests: int
    compared_rows: int
    agreement: float | None
    mean_abs_diff: float | None
    primary_latency_ms: float | None
    shadow_latency_ms: float | None
    shadow_errors: int
    dropped: int
    last_error: str | None


@dataclass(slots=True)
class ShadowPair:
    """Running comparison of one primary version against one shadow version."""

    model: str
    primary: int
    shadow: int
    requests: int = 0
    compared_rows: int = 0
    agreeing_rows: int = 0
    abs_diff_sum: float = 0.0
    abs_diff_count: int = 0
    primary_latency_s: float = 0.0
    shadow_latency_s: float = 0.0
    shadow_errors: int = 0
    dropped: int = 0
    last_error: str | None = None

    @property
    def agreement(self) -> float | None:
        """Share of compared rows on which both versions gave the same answer."""
        return self.agreeing_rows / self.compared_rows if self.compared_rows else None

    @property
    def mean_abs_diff(self) -> float | None:
        """Mean absolute difference over every floating output value both versions gave."""
        return self.abs_diff_sum / self.abs_diff_count if self.abs_diff_count else None

    def summary(self) -> ShadowSummary:
        """The form the admin API shows."""
        done = self.requests - self.shadow_errors
        return ShadowSummary(
            model=self.model,
            primary_version=str(self.primary),
            shadow_version=str(self.shadow),
            requests=self.requests,
            compared_rows=self.compared_rows,
            agreement=self.agreement,
            mean_abs_diff=self.mean_abs_diff,
            primary_latency_ms=1e3 * self.primary_latency_s / self.requests if self.requests else None,
            shadow_latency_ms=1e3 * self.shadow_latency_s / done if done > 0 else None,
            shadow_errors=self.shadow_errors,
            dropped=self.dropped,
            last_error=self.last_error,
        )


class ShadowStatsStore:
    """Reads and writes the shadow_stats table (migration 3 in :mod:`driftline.store.db`)."""

    def __init__(self, db: Database) -> None:
        """Use the given database."""
        self.db = db

    def save(self, process: str, pairs: list[ShadowPair]) -> None:
        """Store one process's running totals (absolute values, so a repeated write is harmless)."""
        if not pairs:
            return
        with self.db.transaction() as conn:
            conn.executemany(
                _UPSERT,
                [
                    (process, p.model, p.primary, p.shadow, *(getattr(p, c) for c in _COUNTERS), p.last_error)
                    for p in pairs
                ],
            )

    def totals(self, model: str | None = None) -> list[ShadowPair]:
        """Every process's comparisons summed per (model, primary, shadow), across restarts and workers."""
        sums = ", ".join(f"SUM({c}) AS {c}" for c in _COUNTERS)
        where, params = ("WHERE model = ?", (model,)) if model else ("", ())
        rows = self.db.query(
            f"SELECT model, primary_version, shadow_version, {sums}, MAX(last_error) AS last_error"  # noqa: S608
            f" FROM shadow_stats {where} GROUP BY model, primary_version, shadow_version"
            " ORDER BY model, primary_version, shadow_version",
            params,
        )
        return [
            ShadowPair(
                r["model"],
                r["primary_version"],
                r["shadow_version"],
                **{c: r[c] for c in _COUNTERS},
                last_error=r["last_error"],
            )
            for r in rows
        ]
