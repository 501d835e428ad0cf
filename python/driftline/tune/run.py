"""One tune from start to end: the space, the default configuration's numbers, the search, the ranking, the result.

Each candidate runs on its own server process (`tune.server`), measured by `tune.measure`; the search
(`tune.search`) decides which candidates, the recommendation (`tune.recommend`) ranks what was measured. The
default configuration (the model's config.toml as it is) is always measured first, so the gain is visible.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from driftline.config import load_settings
from driftline.repository import Repository
from driftline.tune import recommend
from driftline.tune.measure import MeasureSettings, measure_candidate, prepare_target
from driftline.tune.search import brute, quick
from driftline.tune.space import current_candidate, default_space, expand, parse_space
from driftline.tune.spec import TuneResult
from driftline.tune.trace import load_trace

if TYPE_CHECKING:
    from driftline.tune.spec import Candidate, Load, Measurement, Slo

__all__ = ["TuneProgress", "TuneRequest", "run_tune"]


@dataclass(frozen=True)
class TuneRequest:
    """What `driftline tune` was asked: the model, the SLO, the load, the space and the search."""

    repository: Path
    model: str
    version: int | None
    slo: Slo
    load: Load
    search: Literal["brute", "quick"] = "quick"
    space: list[str] = field(default_factory=list)
    budget_s: float = 600.0
    settings: MeasureSettings = field(default_factory=MeasureSettings)
    server_config: Path | None = None


class TuneProgress:
    """What a tune reports as it goes; the CLI draws it, a test may record it. The base class ignores it all."""

    def planned(self, points: int, search: str, notes: list[str]) -> None:
        """The space is known: ``points`` candidates, of which the search measures some."""

    def candidate(self, index: int, candidate: Candidate) -> None:
        """A candidate's server is starting (index 0 is the default configuration)."""

    def step(self, message: str) -> None:
        """A step inside the candidate's measurement (a load level, a window)."""

    def measured(self, index: int, measurement: Measurement) -> None:
        """A candidate is measured."""


def run_tune(request: TuneRequest, progress: TuneProgress | None = None) -> TuneResult:
    """Measure, search, rank and recommend; the result also carries the default configuration's numbers.

    Raises:
        ModelNotFound / ConfigError: the model, its version, the space or the trace cannot be used (before
            anything is measured).
    """
    report = progress or TuneProgress()
    started = time.monotonic()
    deadline = started + request.budget_s
    source = Repository(request.repository).model(request.model)
    trace = None
    if request.load.mode == "trace":
        settings = load_settings(request.server_config, {"repository": str(request.repository)})
        trace = load_trace(settings, request.model, request.version)
    target = prepare_target(
        request.repository, request.model, request.version, request.load, request.server_config, trace
    )
    backend = target.backend
    current = current_candidate(source.config)
    # With --space, the knobs it names vary and every other stays at the model's current value; without, the
    # default space of this machine.
    held = {knob: [value] for knob, value in current.values().items()}
    space = parse_space(request.space, held if request.space else default_space(current, backend, os.cpu_count() or 1))
    candidates, notes = expand(space, backend)
    report.planned(len(candidates), request.search, notes)

    measured: dict[Candidate, Measurement] = {}
    with tempfile.TemporaryDirectory(prefix="driftline-tune-") as work:

        def measure(candidate: Candidate) -> Measurement:
            if candidate not in measured:
                index = len(measured)
                report.candidate(index, candidate)
                folder = Path(work) / f"c{index}"
                folder.mkdir()
                measured[candidate] = measure_candidate(
                    target, candidate, request.load, request.slo, request.settings, folder, report.step
                )
                report.measured(index, measured[candidate])
            return measured[candidate]

        default = measure(current)

        def objective(m: Measurement) -> float | None:
            return recommend.objective(m, request.slo, request.load)

        if request.search == "brute":
            outcome = brute(candidates, measure, objective, deadline)
        else:
            outcome = quick(
                space,
                candidates,
                current,
                measure,
                objective,
                deadline,
                shortfall=lambda m: recommend.shortfall(m, request.slo, request.load),
            )
    in_space = set(candidates)
    searched = [m for c, m in measured.items() if c in in_space]
    ranked = recommend.rank(searched, request.slo, request.load)
    best = ranked[0] if ranked and objective(ranked[0]) is not None else None
    best_point = recommend.best_point(best, request.slo, request.load) if best else None
    if current not in in_space:
        notes.append("the default configuration is outside the space: measured for comparison, never recommended")
    if best is None:
        notes.append(f"no measured configuration meets {request.slo.describe()}")
    else:
        notes.extend(recommend.stability_notes(best, request.slo, request.load))
    if outcome.exhausted_budget:
        notes.append(f"the budget ({request.budget_s:g} s) ran out: {outcome.skipped} candidate(s) not measured")
    return TuneResult(
        model=request.model,
        version=target.version,
        backend=backend,
        slo=request.slo,
        load=request.load,
        search=request.search,
        space=space,
        points_in_space=len(candidates),
        measurements=list(measured.values()),
        default=default,
        ranked=ranked,
        recommended=best.candidate if best else None,
        objective=objective(best) if best else None,
        margin_ms=recommend.margin_ms(best_point, request.slo) if best_point else None,
        patch_toml=recommend.patch_toml(best.candidate, backend) if best else "",
        serve_flags=recommend.serve_flags(best.candidate) if best else [],
        notes=notes,
        elapsed_s=time.monotonic() - started,
        budget_s=request.budget_s,
        exhausted_budget=outcome.exhausted_budget,
        points_measured=len(searched),
    )
