"""A model's lifecycle status as the admin API shows it: versions (ready or failed), aliases, routing, shadow
comparisons and open proposals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from driftline.errors import ModelNotFound
from driftline.lifecycle.references import version_text
from driftline.repository.lineage import Lineage  # noqa: TC001 - msgspec needs it at run time
from driftline.serving.routing import RoutingPolicy  # noqa: TC001 - msgspec needs it at run time
from driftline.store.evaluations import EvaluationStore, EvaluationSummary
from driftline.store.proposals import Proposal  # noqa: TC001
from driftline.store.shadow_stats import ShadowSummary  # noqa: TC001

if TYPE_CHECKING:
    from driftline.lifecycle.service import Lifecycle
    from driftline.serving.loaded import LoadedModel
    from driftline.store.proposals import ProposalStore

__all__ = ["AliasStatus", "ModelStatus", "VersionStatus", "model_status"]

# Open proposals shown with a model's status (the full list is GET /v1/admin/proposals).
_OPEN_PROPOSALS = 20


class VersionStatus(msgspec.Struct, frozen=True):
    """A loaded version (READY: sha256, backend, lineage, maybe a note) or one that failed to load (FAILED: reason),
    and its latest offline evaluation (``driftline evaluate``) when it has one.

    A field that does not apply to the state is left out of the JSON, not null.
    """

    version: str
    state: str
    sha256: str | msgspec.UnsetType = msgspec.UNSET
    backend: str | msgspec.UnsetType = msgspec.UNSET
    note: str | msgspec.UnsetType = msgspec.UNSET
    reason: str | msgspec.UnsetType = msgspec.UNSET
    evaluation: EvaluationSummary | msgspec.UnsetType = msgspec.UNSET
    lineage: Lineage | msgspec.UnsetType = msgspec.UNSET


class AliasStatus(msgspec.Struct, frozen=True):
    """Where an alias points, where it pointed before its last move, and when it moved."""

    version: str
    previous: str | None
    updated_at: str


class ModelStatus(msgspec.Struct, frozen=True):
    """One model's lifecycle state."""

    name: str
    state: str
    error: str | None
    default_alias: str | None
    default_version: str | None
    versions: list[VersionStatus]
    aliases: dict[str, AliasStatus]
    routing: RoutingPolicy
    shadow: list[ShadowSummary]
    proposals: list[Proposal]


def model_status(lifecycle: Lifecycle, proposals: ProposalStore, name: str) -> ModelStatus:
    """A model's state: versions (ready or failed), aliases, routing, shadow comparisons, open proposals.

    Raises:
        ModelNotFound: the model is neither loaded, failed nor in the repository.
    """
    table = lifecycle.table
    loaded = table.loaded().get(name, {})
    if not loaded and table.error(name) is None and name not in table.repository.model_names():
        raise ModelNotFound(f"model {name!r} not found")
    routes = table.routes(name)
    versions = [_ready(lifecycle, m) for _, m in sorted(loaded.items())]
    versions += [
        VersionStatus(str(v), "FAILED", reason=why)
        for v, why in sorted(table.failures(name).items())
        if v not in loaded
    ]
    # Written by `driftline evaluate` into the same store, from any process: read at each call.
    evaluations = EvaluationStore(lifecycle.deployments.db)
    versions = [_evaluated(evaluations, name, v) for v in versions]
    aliases = {
        r.alias: AliasStatus(str(r.version), version_text(r.previous), r.updated_at)
        for r in lifecycle.deployments.aliases(name)
    }
    return ModelStatus(
        name=name,
        state="READY" if loaded else "UNAVAILABLE",
        error=table.error(name),
        default_alias=routes.default_alias,
        default_version=version_text(routes.default(loaded) if loaded else None),
        versions=versions,
        aliases=aliases,
        routing=routes.policy,
        shadow=[p.summary() for p in lifecycle.shadow_pairs(name)],
        proposals=[p for p in proposals.proposals(name, _OPEN_PROPOSALS) if p.state in {"proposed", "approved"}],
    )


def _ready(lifecycle: Lifecycle, model: LoadedModel) -> VersionStatus:
    # Served, but with a caveat worth showing (a drift profile that could not be saved).
    drift = lifecycle.table.drift
    window = drift.window(model.name, str(model.version)) if drift is not None else None
    note = window.profile.unsaved if window is not None and window.profile.unsaved else msgspec.UNSET
    return VersionStatus(
        str(model.version),
        "READY",
        sha256=model.sha256,
        backend=model.backends[0].platform,
        note=note,
        lineage=msgspec.UNSET if model.lineage is None else model.lineage,
    )


def _evaluated(evaluations: EvaluationStore, name: str, status: VersionStatus) -> VersionStatus:
    found = evaluations.summary(name, int(status.version))
    return status if found is None else msgspec.structs.replace(status, evaluation=found)
