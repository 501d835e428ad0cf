"""The admin API under ``/v1/admin``: model status, load/unload, aliases, routing, shadow comparisons, proposals
(propose -> approve -> promote), rollback, the audit log, API keys and the registry sync.

Every route needs an API key; the role each one needs is in its ``opt`` and checked by :func:`require_role`.
Bodies are msgspec structs (:mod:`driftline.http.admin_bodies`, documented in the OpenAPI schema); a bad field is a
400 that names it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.params import Parameter

from driftline.errors import BadRequest, Conflict, KeyNotFound
from driftline.http import openapi as doc
from driftline.http.admin_bodies import (
    AliasBody,
    AliasName,
    KeyBody,
    ProposalBody,
    ReasonBody,
    RoutingBody,
    RowId,
    VersionBody,
)
from driftline.http.answers import (
    AliasDeleted,
    KeyInfo,
    KeyRevoked,
    LoadedVersions,
    ModelVersions,
    NewKey,
    ProposalStatus,
)
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.http.guards import actor, require_role
from driftline.lifecycle.service import AliasMove  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.lifecycle.status import ModelStatus, model_status
from driftline.registry.answers import SyncOff, SyncReport, SyncStatus, SyncWoken
from driftline.serving.routing import RoutingPolicy
from driftline.store.audit import AuditAction, AuditEvent
from driftline.store.proposals import Proposal  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.store.shadow_stats import ShadowSummary  # noqa: TC001

__all__ = ["AdminController"]


def _change(path: str, summary: str, role: str) -> post:
    """The route of an admin change whose body may be left out: POST, 200, the errors a change can answer."""
    return post(
        path,
        summary=summary,
        opt={"role": role},
        status_code=200,
        responses=doc.CHANGE,
        operation_class=doc.OptionalBody,
    )


class AdminController(Controller):
    """Lifecycle operations; see the module docstring."""

    path = "/v1/admin"
    tags = ["admin"]  # noqa: RUF012 - Litestar reads it as a class attribute
    guards = [require_role]  # noqa: RUF012
    security = doc.KEYED

    # -- status -------------------------------------------------------------------------------------------------

    @get("/models", summary="Every model's lifecycle status", opt={"role": "viewer"}, responses=doc.LIST)
    async def models(self, services: ServicesDep) -> list[ModelStatus]:
        """Versions (ready, failed), aliases, routing, shadow comparisons and open proposals of every model."""
        lifecycle = services.lifecycle
        names = sorted(set(lifecycle.table.repository.model_names()) | set(lifecycle.table.loaded()))
        store = services.proposals.store
        return [model_status(lifecycle, store, n) for n in names]

    @get("/models/{name:str}", summary="One model's lifecycle status", opt={"role": "viewer"}, responses=doc.READ)
    async def model(self, services: ServicesDep, name: str) -> ModelStatus:
        """Versions (ready, failed), aliases, routing, shadow comparisons and open proposals."""
        return model_status(services.lifecycle, services.proposals.store, name)

    @_change("/models/{name:str}/load", "Load a model or one more version", "operator")
    async def load(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: str, data: VersionBody | None = None
    ) -> LoadedVersions:
        """Body ``{"version": N}`` loads and keeps version N; an empty body reloads the model from the repository."""
        body = data or VersionBody()
        lifecycle = services.lifecycle
        if body.version is None:
            lifecycle.table.repository.require(name)
            versions = await lifecycle.table.load(name, actor=actor(request))
            await lifecycle.follow_store()
        else:
            versions = await lifecycle.load_version(name, body.version, actor(request))
        failed = {str(v): why for v, why in sorted(lifecycle.table.failures(name).items())}
        return LoadedVersions(name=name, versions=[str(v) for v in versions], failed=failed)

    @_change("/models/{name:str}/unload", "Unload one version", "operator")
    async def unload(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: str, data: VersionBody | None = None
    ) -> ModelVersions:
        """Body ``{"version": N}``; refused while an alias, the routing or the version policy wants it."""
        body = data or VersionBody()
        if body.version is None:
            raise BadRequest("unload: 'version' is required (POST /v2/repository/models/{name}/unload unloads all)")
        versions = await services.lifecycle.unload_version(name, body.version, actor(request))
        return ModelVersions(name=name, versions=[str(v) for v in versions])

    # -- aliases ------------------------------------------------------------------------------------------------

    @put(
        "/models/{name:str}/aliases/{alias:str}",
        summary="Point an alias at a version",
        opt={"role": "admin"},
        responses=doc.CHANGE,
    )
    async def set_alias(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: str, alias: AliasName, data: AliasBody
    ) -> AliasMove:
        """Body ``{"version": N, "reason": "..."}``; the version must be loaded and fit the alias's signature."""
        body = data
        moved = await services.lifecycle.set_alias(name, alias, body.version, actor(request), body.reason)
        return moved

    @delete(
        "/models/{name:str}/aliases/{alias:str}",
        summary="Remove an alias",
        opt={"role": "admin"},
        status_code=200,
        responses=doc.REMOVE,
    )
    async def delete_alias(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: str, alias: AliasName
    ) -> AliasDeleted:
        """Requests naming the alias get 404 afterwards; refused while the routing policy names it."""
        await services.lifecycle.delete_alias(name, alias, actor(request))
        return AliasDeleted(model=name, alias=alias, deleted=True)

    @_change("/models/{name:str}/aliases/{alias:str}/rollback", "Return an alias to its previous version", "admin")
    async def rollback(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        name: str,
        alias: AliasName,
        data: ReasonBody | None = None,
    ) -> AliasMove:
        """One call: the alias points where it pointed before its last move."""
        body = data or ReasonBody()
        return await services.lifecycle.rollback(name, alias, actor(request), body.reason)

    # -- routing and shadow -------------------------------------------------------------------------------------

    @get("/models/{name:str}/routing", summary="A model's routing policy", opt={"role": "viewer"}, responses=doc.READ)
    async def routing(self, services: ServicesDep, name: str) -> RoutingPolicy:
        """Canary, split and shadow, as set."""
        return services.lifecycle.table.routes(name).policy

    @put(
        "/models/{name:str}/routing",
        summary="Set a model's routing policy",
        opt={"role": "operator"},
        responses=doc.CHANGE,
    )
    async def set_routing(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: str, data: RoutingBody
    ) -> RoutingPolicy:
        """Body ``{"canary": {"target": "challenger", "percent": 10}}``, or ``{"split": {"parameter": "user",
        "weights": {"champion": 50, "challenger": 50}}}``, and/or ``{"shadow": {"target": "challenger"}}``."""
        body = data
        try:
            policy = RoutingPolicy(canary=body.canary, split=body.split, shadow=body.shadow)
        except ValueError as exc:
            raise BadRequest(f"routing: {exc}") from None
        return await services.lifecycle.set_routing(name, policy, actor(request), body.reason)

    @delete(
        "/models/{name:str}/routing",
        summary="Clear a model's routing policy",
        opt={"role": "operator"},
        status_code=200,
        responses={**doc.REMOVE, **doc.errors(503)},  # 503: the model is not loaded
    )
    async def clear_routing(self, request: Request[Any, Any, Any], services: ServicesDep, name: str) -> RoutingPolicy:
        """Every unpinned request goes to the default alias again; the answer is the empty policy, ``{}``."""
        return await services.lifecycle.set_routing(name, RoutingPolicy(), actor(request), "cleared")

    @get("/models/{name:str}/shadow", summary="Shadow comparisons", opt={"role": "viewer"}, responses=doc.READ)
    async def shadow(self, services: ServicesDep, name: str) -> list[ShadowSummary]:
        """Per (primary, shadow) pair: requests, agreement, mean absolute difference, latency of each, errors."""
        return [p.summary() for p in services.lifecycle.shadow_pairs(name)]

    # -- proposals ----------------------------------------------------------------------------------------------

    @post(
        "/models/{name:str}/proposals",
        summary="Propose a version for an alias",
        opt={"role": "operator"},
        responses=doc.CHANGE,
    )
    async def propose(
        self, request: Request[Any, Any, Any], services: ServicesDep, name: str, data: ProposalBody
    ) -> Proposal:
        """Body ``{"version": 3, "alias": "champion", "rule": {"min_agreement": 0.95, "min_requests": 100}}``."""
        body = data
        return await services.proposals.propose(name, body.version, body.alias, body.rule, actor(request), body.reason)

    @get("/proposals", summary="Proposals, newest first", opt={"role": "viewer"}, responses=doc.QUERY)
    async def proposals(
        self,
        services: ServicesDep,
        model: str | None = None,
        limit: int = Parameter(default=100, ge=1, le=1000),
    ) -> list[Proposal]:
        """Optionally one model's."""
        return services.proposals.store.proposals(model, limit)

    @get(
        "/proposals/{pid:int}",
        summary="One proposal and whether its rule passes now",
        opt={"role": "viewer"},
        responses=doc.READ,
    )
    async def proposal(self, services: ServicesDep, pid: RowId) -> ProposalStatus:
        """The proposal with ``rule_passes``, the shadow evidence and the proposed version's latest evaluation."""
        proposals = services.proposals
        proposal = proposals.get(pid)
        ok, evidence = proposals.rule_status(proposal)
        evaluation = proposals.evaluation(proposal)
        return ProposalStatus(
            **msgspec.structs.asdict(proposal), rule_passes=ok, rule_evidence=evidence, evaluation=evaluation
        )

    @_change("/proposals/{pid:int}/approve", "Approve a proposal", "admin")
    async def approve(
        self, request: Request[Any, Any, Any], services: ServicesDep, pid: RowId, data: ReasonBody | None = None
    ) -> Proposal:
        """Refused (409, with the evidence) until the proposal's rule passes."""
        body = data or ReasonBody()
        return await services.proposals.approve(pid, actor(request), body.reason)

    @_change("/proposals/{pid:int}/promote", "Promote an approved proposal", "admin")
    async def promote(
        self, request: Request[Any, Any, Any], services: ServicesDep, pid: RowId, data: ReasonBody | None = None
    ) -> Proposal:
        """The alias moves to the proposal's version atomically."""
        body = data or ReasonBody()
        return await services.proposals.promote(pid, actor(request), body.reason)

    @_change("/proposals/{pid:int}/reject", "Reject a proposal", "admin")
    async def reject(
        self, request: Request[Any, Any, Any], services: ServicesDep, pid: RowId, data: ReasonBody | None = None
    ) -> Proposal:
        """Closes it without moving any alias."""
        body = data or ReasonBody()
        return await services.proposals.reject(pid, actor(request), body.reason)

    # -- audit, keys, registry ----------------------------------------------------------------------------------

    @get("/audit", summary="The audit log, newest first", opt={"role": "viewer"}, responses=doc.QUERY)
    async def audit(
        self,
        services: ServicesDep,
        model: str | None = None,
        action: AuditAction | None = None,
        limit: int = Parameter(default=100, ge=1, le=10_000),
    ) -> list[AuditEvent]:
        """Every load, unload, failed load, alias change, routing change, approval, promotion and rollback."""
        return services.audit.events(model=model, action=action, limit=limit)

    @get("/keys", summary="API keys (names and roles; never the keys)", opt={"role": "admin"}, responses=doc.LIST)
    async def keys(self, services: ServicesDep) -> list[KeyInfo]:
        """Keys from the config file and the store."""
        out = [KeyInfo(name=k.name, role=k.role, source="config") for k in services.settings.auth.keys]
        out += [
            KeyInfo(name=k.name, role=k.role, source="store", created_at=k.created_at, revoked_at=k.revoked_at)
            for k in services.key_store.api_keys()
        ]
        return out

    @post("/keys", summary="Create an API key", opt={"role": "admin"}, responses=doc.CREATE)
    async def create_key(self, request: Request[Any, Any, Any], services: ServicesDep, data: KeyBody) -> NewKey:
        """Body ``{"name": "ci", "role": "predictor"}``; the answer holds the key, shown this once."""
        body = data
        try:
            reserved = [k.name for k in services.settings.auth.keys]
            key = services.key_store.create_key(body.name, body.role, reserved, actor=actor(request))
        except ValueError as exc:
            raise BadRequest(f"key: {exc}") from None
        services.reload_keys()
        return NewKey(name=body.name, role=body.role, key=key)

    @delete(
        "/keys/{key_name:str}",
        summary="Revoke an API key",
        opt={"role": "admin"},
        status_code=200,
        responses=doc.REMOVE,
    )
    async def revoke_key(self, request: Request[Any, Any, Any], services: ServicesDep, key_name: str) -> KeyRevoked:
        """Stored keys only; a key from the config file is removed by editing the file."""
        if not services.key_store.revoke_key(key_name):
            raise KeyNotFound(f"no live stored key named {key_name!r}")
        services.reload_keys()
        services.audit.record(AuditAction.KEY_REVOKED, "-", actor=actor(request), reason=key_name)
        return KeyRevoked(name=key_name, revoked=True)

    @get("/registry", summary="Registry sync status", opt={"role": "viewer"}, responses=doc.LIST)
    async def registry(self, services: ServicesDep) -> SyncStatus | SyncOff:
        """Source, state, last error, next attempt and versions refused."""
        sync = services.sync
        return SyncOff() if sync is None else sync.status()

    @post(
        "/registry/sync",
        summary="Sync from the registry now",
        opt={"role": "operator"},
        status_code=200,
        responses=doc.CHANGE,
    )
    async def sync_now(self, services: ServicesDep) -> SyncReport | SyncWoken:
        """Runs one pass now (this process leads the sync) and returns what changed."""
        sync = services.sync
        if sync is None:
            raise Conflict("no registry source is configured (registry.source)")
        if not sync.leader:
            sync.wake()
            return SyncWoken()
        return await sync.sync_once()
