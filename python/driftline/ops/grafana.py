"""A Grafana dashboard for a Prometheus that scrapes driftline: ``driftline ops grafana`` writes it (docs/slo.md).

Rows: traffic, latency (p50/p99 from the histogram), errors by code, queue depth and batch size, the SLOs' burn
rates (the rules' recorded ratios over each SLO's budget, with the alert factors of
:data:`driftline.ops.slo.ALERTS` drawn as thresholds) and budget left, and each worker's CPU and memory. The JSON
follows Grafana's dashboard kind (schemaVersion 36; tests/fixtures/grafana_dashboard.schema.json checks it).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from driftline.ops.rules import ratio_series
from driftline.ops.slo import ALERTS, WINDOWS

if TYPE_CHECKING:
    from driftline.ops.slo import Kind

__all__ = ["dashboard", "dashboard_json"]

_DS: Final = {"type": "prometheus", "uid": "${datasource}"}
_M: Final = 'model=~"$model"'
_RATE: Final = "$__rate_interval"


def _target(expr: str, legend: str, ref: int) -> dict[str, Any]:
    return {"datasource": _DS, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + ref)}


class _Layout:
    """Panels placed top to bottom, two a row of the grid; ids in order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self._y = 0
        self._x = 0

    def row(self, title: str) -> None:
        self._y += 0 if self._x == 0 else 8
        self._x = 0
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "id": len(self.panels) + 1,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def panel(
        self,
        title: str,
        targets: list[tuple[str, str]],
        unit: str,
        description: str,
        thresholds: list[float] | None = None,
    ) -> None:
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        colors = ["orange", "red"]
        steps += [{"color": colors[min(i, 1)], "value": v} for i, v in enumerate(sorted(thresholds or []))]
        self.panels.append(
            {
                "type": "timeseries",
                "title": title,
                "description": description,
                "id": len(self.panels) + 1,
                "datasource": _DS,
                "gridPos": {"h": 8, "w": 12, "x": self._x, "y": self._y},
                "targets": [_target(expr, legend, i) for i, (expr, legend) in enumerate(targets)],
                "transparent": False,
                "repeatDirection": "h",
                "transformations": [],
                "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
                "fieldConfig": {
                    "defaults": {
                        "unit": unit,
                        "thresholds": {"mode": "absolute", "steps": steps},
                        "custom": {"thresholdsStyle": {"mode": "line" if thresholds else "off"}},
                    },
                    "overrides": [],
                },
            }
        )
        self._x = 12 - self._x
        self._y += 8 if self._x == 0 else 0


def _burn(kind: Kind) -> list[tuple[str, str]]:
    budget = f'(1 - max by (model) (driftline_slo_objective{{slo="{kind}"}}))'
    return [(f"{ratio_series(kind, w)}{{{_M}}} / on (model) {budget}", f"{{{{model}}}} {w}") for w in WINDOWS]


def dashboard() -> dict[str, Any]:
    """The dashboard, as Grafana imports it."""
    g = _Layout()
    g.row("Traffic")
    g.panel(
        "Requests/s",
        [(f"sum by (model) (rate(driftline_slo_requests_total{{{_M}}}[{_RATE}]))", "{{model}}")],
        "reqps",
        "Requests that reached a model version, every instance and worker summed.",
    )
    g.panel(
        "Rows/s",
        [(f"sum by (model, version) (rate(driftline_inferences_total{{{_M}}}[{_RATE}]))", "{{model}} v{{version}}")],
        "short",
        "Rows inferred per second.",
    )
    g.row("Latency")
    g.panel(
        "Latency p50 and p99",
        [
            (
                f"histogram_quantile({q}, sum by (model, le)"
                f" (rate(driftline_request_latency_seconds_bucket{{{_M}}}[{_RATE}])))",
                f"{{{{model}}}} p{int(q * 100)}",
            )
            for q in (0.5, 0.99)
        ],
        "s",
        "End-to-end latency inside the server, from the histogram.",
    )
    g.row("Errors")
    g.panel(
        "Errors by code",
        [
            (
                f'sum by (model, code) (rate(driftline_requests_total{{{_M}, outcome="failure"}}[{_RATE}]))',
                "{{model}} {{code}}",
            )
        ],
        "reqps",
        "Error answers per second by HTTP status (4xx: the request's fault; 5xx: the server's, the SLO's).",
    )
    g.row("Queue and batches")
    g.panel(
        "Queue depth",
        [(f"sum by (model, version) (driftline_queue_depth{{{_M}}})", "{{model}} v{{version}}")],
        "short",
        "Requests waiting in the batch queue.",
    )
    g.panel(
        "Batch size",
        [
            (
                f"sum by (model) (rate(driftline_inferences_total{{{_M}}}[{_RATE}]))"
                f" / sum by (model) (rate(driftline_batches_total{{{_M}}}[{_RATE}]))",
                "{{model}} mean",
            ),
            (
                f"histogram_quantile(0.99, sum by (model, le) (rate(driftline_batch_size_bucket{{{_M}}}[{_RATE}])))",
                "{{model}} p99",
            ),
        ],
        "short",
        "Rows per executed batch.",
    )
    g.row("SLOs")
    factors = [a.factor for a in ALERTS]
    g.panel("Availability burn rate", _burn("availability"), "short", "5xx ratio over the budget.", factors)
    g.panel("Latency burn rate", _burn("latency"), "short", "Slow ratio over the budget.", factors)
    g.panel(
        "Error budget left",
        [(f"max by (model, slo) (driftline_slo_error_budget_remaining{{{_M}}})", "{{model}} {{slo}}")],
        "percentunit",
        "Share of the period's budget left, from driftline's own history (1: untouched, below 0: overspent).",
    )
    g.row("Processes")
    g.panel(
        "CPU per worker",
        [("sum by (instance, worker) (rate(process_cpu_seconds_total[$__rate_interval]))", "{{instance}} {{worker}}")],
        "percentunit",
        "CPU seconds per second of each worker process.",
    )
    g.panel(
        "Resident memory per worker",
        [("max by (instance, worker) (process_resident_memory_bytes)", "{{instance}} {{worker}}")],
        "bytes",
        "Resident memory of each worker process.",
    )
    return {
        "uid": "driftline-ops",
        "title": "driftline operations",
        "description": "Generated by `driftline ops grafana` (docs/slo.md).",
        "tags": ["driftline"],
        "style": "dark",
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "schemaVersion": 36,
        "templating": {
            "list": [
                _variable("datasource", "datasource", "prometheus", "Data source"),
                _variable("model", "query", "label_values(driftline_slo_requests_total, model)", "Model"),
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": g.panels,
    }


def _variable(name: str, kind: str, query: str, label: str) -> dict[str, Any]:
    v: dict[str, Any] = {
        "id": "00000000-0000-0000-0000-000000000000",
        "type": kind,
        "name": name,
        "label": label,
        "global": False,
        "hide": 0,
        "skipUrlSync": False,
        "index": -1,
        "state": "NotStarted",
        "query": query,
    }
    if kind == "query":
        v |= {"datasource": _DS, "includeAll": True, "multi": True, "refresh": 2, "current": {}}
    return v


def dashboard_json() -> str:
    """:func:`dashboard` as indented JSON."""
    return json.dumps(dashboard(), indent=2) + "\n"
