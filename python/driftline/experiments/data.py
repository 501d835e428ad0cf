"""What an experiment's report is computed from, gathered from the live parts over the experiment's window: the
captured rows (read once per report), their labels, the KPI events attributed to them, and the traffic counts.

Units of assignment (docs/experiments.md): the captured request for a canary and a shadow; for a split, the entity
when the captured rows carry one, else the request. A unit belongs to the arm whose pinned version answered it,
among the requests the routing policy sent: a shadow copy's rows (arm "shadow") are no unit outside a shadow
design, and a request that named a version or an alias is not the experiment's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

import numpy as np
import polars as pl

from driftline.errors import Conflict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from driftline.experiments.spec import Arm, Experiment, Metric
    from driftline.feedback.join import Joined
    from driftline.feedback.kpis import Kpis
    from driftline.feedback.service import LiveQuality
    from driftline.serving.traffic import Traffic
    from driftline.store.traffic import TrafficTotals

__all__ = ["ExperimentData", "ExperimentSources", "Pairs", "Units"]

#: Steps of the traffic series a report reads (its history has at most this many looks).
SERIES_STEPS: Final = 20
_SHADOW = "shadow"
# Arms of the requests the routing policy sent (capture/rows.py ARMS): the experiment's population. A request that
# named a version or an alias ("pinned", "alias") or a bulk job's row is not, as the traffic counts' "routed".
_ROUTED = ("canary", "split", "default")
_KEY, _AT = "_unit", "_at"


@dataclass(frozen=True, slots=True)
class Units:
    """One arm's values of one metric, one per unit (a KPI's sum per request or entity, a quality metric per
    labeled row), with when each unit was first captured (µs since the epoch), which orders the history."""

    values: NDArray[np.float64]
    at: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Pairs:
    """A shadow's paired values: the control's and the treatment's on the same rows (or requests), and when."""

    control: NDArray[np.float64]
    treatment: NDArray[np.float64]
    at: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ExperimentData:
    """Everything a report reads, over ``[start, end)``; arms by name.

    Attributes:
        versions: The version each arm is pinned to.
        unit: What one unit of a kpi metric is: "request" or "entity".
        assignments: Routed requests each arm's version answered or failed (traffic counts).
        units: Per kpi / quality metric (outside a shadow), per arm, its units' values.
        pairs: Per metric of a shadow design, the paired values.
        traffic: Per arm, the routed traffic totals over the window.
        series: The traffic totals step by step, each at the end of its step.
    """

    start: datetime
    end: datetime
    versions: dict[str, int]
    unit: str
    assignments: dict[str, int]
    units: dict[str, dict[str, Units]]
    pairs: dict[str, Pairs]
    traffic: dict[str, TrafficTotals]
    series: list[tuple[datetime, dict[str, TrafficTotals]]]


class ExperimentSources:
    """The live parts a report reads: labels and captures (LiveQuality), KPI events, traffic counts."""

    def __init__(self, quality: LiveQuality, kpis: Kpis, traffic: Traffic) -> None:
        """Read through these (the server's own)."""
        self._quality = quality
        self._kpis = kpis
        self._traffic = traffic

    def gather(self, experiment: Experiment, until: datetime | None = None) -> ExperimentData:
        """The experiment's data over ``[started_at, until or stopped_at or now)``; blocking.

        Raises:
            Conflict: a kpi or quality metric on a model that captures nothing, or a quality metric on a model
                without a ``[quality]`` table (naming the metric).
        """
        spec, model = experiment.spec, experiment.model
        start = experiment.started_at
        end = until or experiment.stopped_at or datetime.now(UTC)
        versions = {arm.name: experiment.version(arm.name) for arm in spec.arms}
        arm_of = {v: a for a, v in versions.items()}
        shadow = spec.design.kind == "shadow"
        by_split = spec.design.kind == "split"
        needs_rows = [m for m in spec.metrics if m.kind in ("kpi", "quality") or (shadow and m.kind == "latency_p99")]
        units: dict[str, dict[str, Units]] = {}
        pairs: dict[str, Pairs] = {}
        unit = "request"
        if needs_rows:
            if not self._quality.capturing:
                raise Conflict(
                    f"metrics[{needs_rows[0].name!r}] needs captured rows, but the server captures nothing: "
                    f"turn capture on for model {model!r} ([capture] enabled = true)"
                )
            everything = self._quality.captured(model, since=start, until=end)  # read once for every metric
            frame = everything.filter(pl.col("version").is_in(list(arm_of)))
            if by_split and frame["entity"].null_count() < frame.height:
                unit = "entity"
            joined: Joined | None = None
            for metric in needs_rows:
                if metric.kind == "quality":
                    label = self._label_output(model, metric)
                    if joined is None:
                        joined = self._quality.joined(model, captured=frame)
                    if shadow:
                        pairs[metric.name] = _paired_quality(joined.rows, metric, label, versions, spec.arms)
                    else:
                        units[metric.name] = _row_quality(joined.rows, metric, label, arm_of)
                elif metric.kind == "latency_p99":
                    pairs[metric.name] = _paired_latency(frame, versions, spec.arms)
            kpis = [m for m in needs_rows if m.kind == "kpi"]
            if kpis:
                captured = _units(frame, arm_of, by_split)
                # Attributed among every version's requests, as the KPI route attributes them.
                events = self._kpis.attributed(model, since=start, until=end, captured=everything).frame
                for metric in kpis:
                    units[metric.name] = _kpi_units(captured, events, metric, arm_of, by_split)
        # The requests the experiment's own routing policy sent, from its first second (not its first whole minute).
        totals = self._traffic.totals(model, start, end, policy=experiment.policy_tag or None)
        traffic = {arm_of[v]: t for v, t in totals.items() if v in arm_of}
        step = timedelta(minutes=max(1, math.ceil((end - start) / timedelta(minutes=SERIES_STEPS))))
        series = [
            (min(at + step, end), {arm_of[v]: t for v, t in part.items() if v in arm_of})
            for at, part in self._traffic.series(model, start, end, step, policy=experiment.policy_tag or None)
        ]
        assignments = {a.name: traffic[a.name].requests if a.name in traffic else 0 for a in spec.arms}
        return ExperimentData(start, end, versions, unit, assignments, units, pairs, traffic, series)

    def _label_output(self, model: str, metric: Metric) -> str:
        try:
            return f"out.{self._quality.config(model).label_output}"
        except Conflict as exc:
            raise Conflict(f"metrics[{metric.name!r}] is a quality metric: {exc}") from None


def _us(column: str) -> pl.Expr:
    return pl.col(column).dt.epoch("us")


def _key(by_split: bool) -> pl.Expr:
    """A unit's key: the entity under a split when there is one, else the request."""
    return pl.coalesce(pl.col("entity"), pl.col("request_id")) if by_split else pl.col("request_id")


def _arm_name(arm_of: dict[int, str]) -> pl.Expr:
    return pl.col("version").replace_strict(arm_of, return_dtype=pl.String).alias("arm_name")


def _units(frame: pl.DataFrame, arm_of: dict[int, str], by_split: bool) -> pl.DataFrame:
    """One row per unit: its arm, key and first capture (µs); shadow copies are no unit."""
    routed = frame.filter(pl.col("arm").is_in(_ROUTED))
    return (
        routed.select(_arm_name(arm_of), _key(by_split).alias(_KEY), _us("ts").alias(_AT))
        .group_by("arm_name", _KEY)
        .agg(pl.col(_AT).min())
    )


def _kpi_units(
    units: pl.DataFrame, events: pl.DataFrame, metric: Metric, arm_of: dict[int, str], by_split: bool
) -> dict[str, Units]:
    """Per arm, each unit's sum of the KPI's events attributed to that arm's version (0 when none). Attribution
    fills in both keys of an event (the request an entity's event went to, the entity of a request's)."""
    mine = events.filter((pl.col("name") == metric.event) & pl.col("version").is_in(list(arm_of)))
    sums = (
        mine.select(_arm_name(arm_of), _key(by_split).alias(_KEY), pl.col("value").cast(pl.Float64))
        .group_by("arm_name", _KEY)
        .agg(pl.col("value").sum())
    )
    per_unit = units.join(sums, on=["arm_name", _KEY], how="left").with_columns(pl.col("value").fill_null(0.0))
    return _split(per_unit, "value")


def _split(frame: pl.DataFrame, column: str) -> dict[str, Units]:
    out = {}
    for (arm,), part in frame.partition_by("arm_name", as_dict=True).items():
        out[str(arm)] = Units(part[column].to_numpy().astype(np.float64), part[_AT].to_numpy().astype(np.int64))
    return out


def _flat(values: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """An output captured as a one-element list per row counts as its value."""
    return values.list.first() if isinstance(dtype, pl.List) else values


def _value(rows: pl.DataFrame, metric: Metric, label: str) -> pl.Expr:
    """The per-row quality value: 1/0 correct (accuracy), |error| or error² against ``target``."""
    if label not in rows.columns:
        raise Conflict(f"metrics[{metric.name!r}]: the captured rows have no output column {label!r}")
    prediction = _flat(pl.col(label), rows.schema[label])
    if metric.quality == "accuracy":
        return (prediction.cast(pl.String) == pl.col("target").cast(pl.String)).cast(pl.Float64)
    error = prediction.cast(pl.Float64) - pl.col("target").cast(pl.Float64)
    return error.abs() if metric.quality == "abs_error" else error * error


def _row_quality(rows: pl.DataFrame, metric: Metric, label: str, arm_of: dict[int, str]) -> dict[str, Units]:
    """Per arm, one value per labeled captured row its version answered (routed, not a shadow copy)."""
    if rows.height == 0:
        return {}
    mine = rows.filter(pl.col("arm").is_in(_ROUTED) & pl.col("version").is_in(list(arm_of)))
    return _split(
        mine.select(
            _arm_name(arm_of),
            _value(mine, metric, label).alias("value"),
            _us("ts").alias(_AT),
        ),
        "value",
    )


def _pair(frame: pl.DataFrame, versions: dict[str, int], arms: Sequence[Arm], on: list[str]) -> pl.DataFrame:
    """Rows of the control (as served) joined to the treatment's shadow answers of the same ``on`` keys."""
    control, treatment = versions[arms[0].name], versions[arms[1].name]
    left = frame.filter((pl.col("version") == control) & pl.col("arm").is_in(_ROUTED))
    right = frame.filter((pl.col("version") == treatment) & (pl.col("arm") == _SHADOW))
    return left.join(right, on=on, suffix="_t").sort("ts")


def _paired_quality(
    rows: pl.DataFrame, metric: Metric, label: str, versions: dict[str, int], arms: Sequence[Arm]
) -> Pairs:
    if rows.height == 0:
        return _no_pairs()
    values = rows.with_columns(_value(rows, metric, label).alias("_v")).select(
        "request_id", "row", "version", "arm", "ts", "_v"
    )
    both = _pair(values, versions, arms, ["request_id", "row"])
    return Pairs(
        both["_v"].to_numpy().astype(np.float64),
        both["_v_t"].to_numpy().astype(np.float64),
        both.select(_us("ts")).to_series().to_numpy().astype(np.int64),
    )


def _paired_latency(frame: pl.DataFrame, versions: dict[str, int], arms: Sequence[Arm]) -> Pairs:
    """Per request both versions answered, each one's captured latency in ms."""
    if frame.height == 0:
        return _no_pairs()
    first = frame.filter(pl.col("row") == 0).select("request_id", "version", "arm", "ts", "latency_us")
    both = _pair(first, versions, arms, ["request_id"])
    return Pairs(
        both["latency_us"].to_numpy().astype(np.float64) / 1e3,
        both["latency_us_t"].to_numpy().astype(np.float64) / 1e3,
        both.select(_us("ts")).to_series().to_numpy().astype(np.int64),
    )


def _no_pairs() -> Pairs:
    return Pairs(np.empty(0, np.float64), np.empty(0, np.float64), np.empty(0, np.int64))
