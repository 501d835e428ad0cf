"""What an experiment is: the arms it compares, the traffic design that feeds them, the metrics it measures and the
rules a promotion must pass. Bodies of ``POST /v1/admin/models/{m}/experiments`` decode into :class:`ExperimentSpec`,
the store keeps it as JSON, and the report and the promotion gate read it back.

Checks that need only the spec itself are here (``__post_init__``: a 400 naming the field); checks that need the
server (versions loaded, a ``[quality]`` table, another running experiment on the same traffic) are the service's.
"""

from __future__ import annotations

from datetime import datetime  # noqa: TC003 - msgspec needs it at run time
from typing import Final, Literal

import msgspec

__all__ = [
    "ARM_NAME_MAX",
    "MAX_ARMS",
    "MAX_METRICS",
    "MAX_RULES",
    "Arm",
    "Design",
    "Experiment",
    "ExperimentSpec",
    "Metric",
    "Rule",
]

MAX_ARMS: Final = 8
MAX_METRICS: Final = 20
#: Rules judged on every report and every approval: a bound keeps both cheap whatever a body holds.
MAX_RULES: Final = 50
ARM_NAME_MAX: Final = 64

#: Where a metric's values come from. ``kpi``: business events (``POST /v1/models/{m}/kpi``) per assignment unit;
#: ``quality``: a quality metric of the labeled captured rows (feedback); ``latency_p99`` and ``error_rate``: the
#: server's own counts of the requests each arm answered.
MetricKind = Literal["kpi", "quality", "latency_p99", "error_rate"]
#: Quality metrics an experiment can compare per row: ``accuracy`` (share of correct labels, classification) and
#: ``abs_error`` / ``squared_error`` (per-row errors, regression).
QualityName = Literal["accuracy", "abs_error", "squared_error"]
#: ``better``: the difference's interval lies wholly on the metric's good side of 0 (a superiority test);
#: ``not_worse``: it lies past ``-margin`` on the good side (non-inferiority; ``relative`` reads margin as a share
#: of the control's value, e.g. 0.10 = "not worse by 10%"); ``min_sample``: every arm has at least ``n`` units.
Requirement = Literal["better", "not_worse", "min_sample"]


class Arm(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One arm: a name the report uses and the target that answers it (a version number or an alias, resolved when
    the experiment starts and pinned to that version for its whole run)."""

    name: str
    target: str

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > ARM_NAME_MAX or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"arms[].name must be 1..{ARM_NAME_MAX} letters, digits, '-' or '_', got {self.name!r}")
        if not self.target:
            raise ValueError("arms[].target must be a version number or an alias")


class Design(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """How traffic reaches the arms; exactly one of the three, as the routing policy has them.

    - ``canary``: the treatment (the second arm) answers ``canary`` percent of unpinned requests at random, the
      control (the first arm, which must be what the model's default alias answers) the rest.
    - ``split``: a hash of the routing key (request parameter ``parameter`` or header ``header``) picks an arm by
      ``weights`` (arm name -> percent, adding up to 100): one key always meets one arm (sticky A/B).
    - ``shadow``: the control answers every request and the treatment gets a copy of ``shadow`` percent of them,
      so both answer the same requests and paired tests apply.
    """

    canary: float | None = None
    split: dict[str, float] | None = None
    parameter: str | None = None
    header: str | None = None
    shadow: float | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("canary", "split", "shadow") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"design needs exactly one of 'canary', 'split' or 'shadow', got {given or 'none'}")
        for key in ("canary", "shadow"):
            value = getattr(self, key)
            if value is not None and not 0 < value <= 100:
                raise ValueError(f"design.{key} must be a percent within (0, 100], got {value}")
        if self.split is not None:
            if (self.parameter is None) == (self.header is None):
                raise ValueError("design.split needs exactly one of 'parameter' or 'header' as its routing key")
            total = sum(self.split.values())
            if any(not 0 <= w <= 100 for w in self.split.values()) or abs(total - 100.0) > 1e-6:
                raise ValueError(f"design.split weights must be percents adding up to 100, they add up to {total:g}")
        elif self.parameter is not None or self.header is not None:
            raise ValueError("design.parameter and design.header belong to a split")

    @property
    def kind(self) -> Literal["canary", "split", "shadow"]:
        """Which of the three designs this is."""
        return "canary" if self.canary is not None else "split" if self.split is not None else "shadow"


class Metric(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One measured quantity and which way is better.

    ``kpi`` names the KPI event (kind ``kpi``; default: the metric's name); ``quality`` the per-row quality metric
    (kind ``quality``). A KPI is summed per assignment unit (a request, or an entity under a split), so its mean is
    e.g. the conversion rate or revenue per request.
    """

    name: str
    kind: MetricKind
    direction: Literal["increase", "decrease"]
    kpi: str | None = None
    quality: QualityName | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > ARM_NAME_MAX:
            raise ValueError(f"metrics[].name must be 1..{ARM_NAME_MAX} characters, got {self.name!r}")
        if self.kind == "quality" and self.quality is None:
            raise ValueError(f"metrics[{self.name!r}].quality must name the quality metric (accuracy, abs_error, ...)")
        if self.kind != "quality" and self.quality is not None:
            raise ValueError(f"metrics[{self.name!r}].quality belongs to a metric of kind 'quality'")
        if self.kind != "kpi" and self.kpi is not None:
            raise ValueError(f"metrics[{self.name!r}].kpi belongs to a metric of kind 'kpi'")

    @property
    def event(self) -> str:
        """The KPI event name a ``kpi`` metric sums."""
        return self.kpi or self.name


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """A promotion rule on one metric's comparison of the treatment with the control (see :data:`Requirement`).

    Rules are judged on the anytime-valid confidence sequence at the experiment's confidence, so they may be
    checked at any time without inflating their error rate.
    """

    metric: str
    require: Requirement
    margin: float = 0.0
    relative: bool = False
    n: int = 0

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError(f"rules[{self.metric!r}].margin must be >= 0, got {self.margin}")
        if self.require == "min_sample" and self.n <= 0:
            raise ValueError(f"rules[{self.metric!r}]: min_sample needs n >= 1")


class ExperimentSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """An experiment as created: the first arm is the control (the champion), the others are treatments."""

    name: str
    arms: list[Arm]
    design: Design
    metrics: list[Metric]
    primary: str
    guardrails: list[str] = msgspec.field(default_factory=list)
    rules: list[Rule] = msgspec.field(default_factory=list)
    min_sample: int = 100
    confidence: float = 0.95
    correction: Literal["holm", "bh", "none"] = "holm"
    guardrail_stop: bool = False
    ends_at: datetime | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > ARM_NAME_MAX:
            raise ValueError(f"name must be 1..{ARM_NAME_MAX} characters, got {self.name!r}")
        if not 2 <= len(self.arms) <= MAX_ARMS:
            raise ValueError(f"arms must list 2..{MAX_ARMS} arms (the control first), got {len(self.arms)}")
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arms[].name must be unique, got {names}")
        targets = [a.target for a in self.arms]
        if len(set(targets)) != len(targets):
            raise ValueError(f"arms[].target must be distinct, got {targets}")
        if self.design.kind != "split" and len(self.arms) != 2:
            raise ValueError(f"a {self.design.kind} design compares two arms (control, treatment), got {len(names)}")
        if self.design.split is not None and set(self.design.split) != set(names):
            raise ValueError(
                f"design.split must weigh every arm by name: arms {names}, weights {sorted(self.design.split)}"
            )
        if not 1 <= len(self.metrics) <= MAX_METRICS:
            raise ValueError(f"metrics must list 1..{MAX_METRICS} metrics, got {len(self.metrics)}")
        metric_names = [m.name for m in self.metrics]
        if len(set(metric_names)) != len(metric_names):
            raise ValueError(f"metrics[].name must be unique, got {metric_names}")
        for field, named in (("primary", [self.primary]), ("guardrails", self.guardrails)):
            for metric in named:
                if metric not in metric_names:
                    raise ValueError(f"{field} names {metric!r}, which is not among metrics {metric_names}")
        if self.primary in self.guardrails:
            raise ValueError(f"primary metric {self.primary!r} cannot also be a guardrail")
        if len(self.rules) > MAX_RULES:
            raise ValueError(f"rules may list at most {MAX_RULES} rules, got {len(self.rules)}")
        if len(set(self.guardrails)) != len(self.guardrails):
            raise ValueError(f"guardrails must name each metric once, got {self.guardrails}")
        for rule in self.rules:
            if rule.metric not in metric_names:
                raise ValueError(f"rules[].metric names {rule.metric!r}, which is not among metrics {metric_names}")
        if self.min_sample < 0:
            raise ValueError(f"min_sample must be >= 0, got {self.min_sample}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be within [0.5, 1), got {self.confidence}")

    @property
    def control(self) -> Arm:
        """The first arm."""
        return self.arms[0]

    def metric(self, name: str) -> Metric:
        """The metric called ``name`` (the spec checked every reference to one)."""
        return next(m for m in self.metrics if m.name == name)


class Experiment(msgspec.Struct, frozen=True):
    """An experiment as the server runs it: its spec, the version each arm was pinned to when it started, its state.

    ``stopped_at`` is set once it stopped: by an operator, at ``ends_at``, or by a guardrail (``stop_reason`` says
    which); its report then covers ``[started_at, stopped_at)``.
    """

    id: int
    model: str
    spec: ExperimentSpec
    versions: dict[str, int]
    state: Literal["running", "stopped"]
    started_at: datetime
    created_by: str
    stopped_at: datetime | None = None
    stopped_by: str | None = None
    stop_reason: str | None = None
    policy_tag: int = 0  # the tag of the routing policy it set (driftline.serving.routing.policy_tag)

    def version(self, arm: str) -> int:
        """The version arm ``arm`` is pinned to."""
        return self.versions[arm]
