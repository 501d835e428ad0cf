"""The model lifecycle: aliases, routing, pins, loading and unloading versions, and rollback, each on record.

Proposals (propose -> approve -> promote) work on the same parts and lock: :mod:`driftline.lifecycle.proposals`.
Every change is checked against the live table first (the version must be loaded, its signature must fit what the
alias served), then written to the store, then swapped into the table in one step, then written to the audit log. A
refused change leaves all three as they were.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import msgspec

from driftline.errors import BadRequest, Conflict, DriftlineError, ModelNotFound
from driftline.lifecycle.references import version_text
from driftline.lifecycle.signatures import signature_change
from driftline.repository.names import check_alias_name, is_version
from driftline.serving.routing import ModelRoutes, RoutingPolicy, policy_targets
from driftline.store.audit import AuditAction

if TYPE_CHECKING:
    from driftline.serving.loaded import LoadedModel
    from driftline.serving.table import ModelTable
    from driftline.store.audit import AuditLog
    from driftline.store.deployments import DeploymentStore
    from driftline.store.shadow_stats import ShadowPair, ShadowStatsStore

__all__ = ["AliasMove", "Lifecycle"]

_log = logging.getLogger("driftline.lifecycle.service")
# The store keeps routing policies as the JSON text given; their shape is the serving layer's, decoded here.
_POLICY = msgspec.json.Decoder(RoutingPolicy)


class AliasMove(msgspec.Struct, frozen=True):
    """Where an alias points now, and where it pointed before (``null`` when it is new)."""

    model: str
    alias: str
    version: str
    previous: str | None


class Lifecycle:
    """Applies lifecycle changes to the store, the live table and the audit log together."""

    def __init__(
        self,
        table: ModelTable,
        deployments: DeploymentStore,
        shadow_stats: ShadowStatsStore,
        audit: AuditLog,
        default_alias: str,
    ) -> None:
        """Work on this table and these stores; ``default_alias`` is the server's (a model's config.toml may
        override it)."""
        self.table = table
        self.deployments = deployments
        self.shadow_stats = shadow_stats
        self.audit = audit
        self.default_alias = default_alias
        # Held from the checks of an alias or routing change to its audit record, so two changes never interleave.
        self.lock = asyncio.Lock()

    # -- start and refresh --------------------------------------------------------------------------------------

    def seed(self) -> None:
        """Insert config.toml aliases the store does not have yet, then install the stored state in the table."""
        for name in self.table.repository.model_names():
            try:
                source = self.table.repository.model(name)
            except DriftlineError:
                continue
            for alias, version in source.config.aliases.items():
                if version not in source.artifacts:
                    action = AuditAction.ALIAS_REFUSED
                    reason = f"config.toml points it at version {version}, which is not in the repository"
                    _log.error("model %s: alias %s -> version %s: no such version; not seeded", name, alias, version)
                elif self.deployments.seed_alias(name, alias, version):
                    action, reason = AuditAction.ALIAS_SET, "seeded"
                else:
                    continue  # the store has it already: the store wins after the first start
                self.audit.record(action, name, actor="config", version_after=str(version), reason=f"{alias}: {reason}")
        self.refresh()

    def _stored(self) -> tuple[dict[str, dict[str, int]], dict[str, RoutingPolicy], dict[str, set[int]]]:
        """The store's aliases, routing and pins, per model."""
        aliases: dict[str, dict[str, int]] = {}
        for row in self.deployments.aliases():
            aliases.setdefault(row.model, {})[row.alias] = row.version
        routing = {model: _POLICY.decode(text) for model, text in self.deployments.routing().items()}
        return aliases, routing, self.deployments.pins()

    def _install(self, stored: tuple[dict[str, dict[str, int]], dict[str, RoutingPolicy], dict[str, set[int]]]) -> None:
        aliases, routing, pins = stored
        names = set(self.table.repository.model_names()) | set(aliases) | set(routing) | set(self.table.loaded())
        for name in names:
            self.table.set_routes(
                name,
                ModelRoutes(
                    aliases=aliases.get(name, {}),
                    default_alias=self._default_alias(name),
                    policy=routing.get(name, RoutingPolicy()),
                ),
            )
            self.table.set_pins(name, pins.get(name, set()))

    def refresh(self) -> None:
        """Install the stored aliases, routing and pins in the live table (at start, and when another worker
        process changed them)."""
        self._install(self._stored())

    async def follow_store(self) -> None:
        """Take in what another worker process wrote to the store: versions it pinned or pointed an alias or
        route at are loaded here first, then the aliases and routing are swapped in, so no request meets an
        alias at a version this process has not loaded."""
        stored = self._stored()
        aliases, routing, pins = stored
        for name, versions in self.table.loaded().items():
            routes = ModelRoutes(aliases=aliases.get(name, {}), policy=routing.get(name, RoutingPolicy()))
            wanted = routes.referenced() | pins.get(name, set())
            if wanted - set(versions):
                try:
                    await self.table.load(name, actor="system", extra=wanted)
                except DriftlineError as exc:
                    _log.error("model %s: loading what another worker pointed at failed: %s", name, exc)
        self._install(stored)

    def _default_alias(self, name: str) -> str:
        loaded = self.table.loaded().get(name)
        if loaded:
            override = next(iter(loaded.values())).source.config.default_alias
            if override:
                return override
        return self.default_alias

    def _routes_with(
        self, name: str, aliases: dict[str, int] | None = None, policy: RoutingPolicy | None = None
    ) -> ModelRoutes:
        current = self.table.routes(name)
        return ModelRoutes(
            aliases=current.aliases if aliases is None else aliases,
            default_alias=self._default_alias(name),
            policy=current.policy if policy is None else policy,
        )

    # -- checks -------------------------------------------------------------------------------------------------

    async def catch_up(self, name: str, versions: set[int]) -> None:
        """With several workers, another one may have loaded (pinned) a version this one has not taken in yet:
        take in the store's state first, so an operator's change does not depend on which worker answers."""
        missing = versions - set(self.table.loaded().get(name, {}))
        if missing and missing & self.deployments.pins().get(name, set()):
            await self.follow_store()

    def require_loaded(self, name: str, version: int, what: str) -> LoadedModel:
        """The loaded version ``version`` of the model; else a 409 that starts with ``what`` (the field or the
        change asking) and says why it is not loaded and which versions are."""
        self.table.require(name)  # the right 404 / 503
        versions = self.table.loaded()[name]
        model = versions.get(version)
        if model is None:
            failure = self.table.failures(name).get(version)
            why = f" (it failed to load: {failure})" if failure else ""
            raise Conflict(
                f"{what}: version {version} of model {name!r} is not loaded{why}; "
                f"loaded versions: {', '.join(map(str, sorted(versions)))}"
            )
        return model

    def check_takeover(self, name: str, alias: str, version: int) -> LoadedModel:
        """The alias may move to ``version``: it is loaded and its signature fits the alias's current version."""
        model = self.require_loaded(name, version, f"alias {alias!r}")
        current = self.table.routes(name).aliases.get(alias)
        if current is not None and current != version:
            old = self.table.loaded()[name].get(current)
            if old is not None:
                change = signature_change(old, model)
                if change:
                    raise Conflict(
                        f"alias {alias!r} of model {name!r} cannot move from version {current} to {version}: "
                        f"the signature changed incompatibly: {change}"
                    )
        return model

    # -- aliases ------------------------------------------------------------------------------------------------

    async def set_alias(self, name: str, alias: str, version: int, actor: str, reason: str | None = None) -> AliasMove:
        """Point an alias at a loaded version (atomically: the next request sees the new version)."""
        await self.prepare_takeover(name, alias, version)
        async with self.lock:
            try:
                model = self.check_takeover(name, alias, version)
            except DriftlineError as exc:
                self.audit.record(
                    AuditAction.ALIAS_REFUSED, name, actor=actor, version_after=str(version), reason=f"{alias}: {exc}"
                )
                raise
            previous = self.table.routes(name).aliases.get(alias)
            if previous == version:
                return AliasMove(name, alias, str(version), version_text(previous))
            self.move(AuditAction.ALIAS_SET, name, alias, model, previous, actor, reason)
        return AliasMove(name, alias, str(version), version_text(previous))

    async def prepare_takeover(self, name: str, alias: str, version: int) -> None:
        """Before an alias may move to (or be proposed at) ``version``: its name is valid, and this worker has
        taken in what another one loaded."""
        _check_alias(alias)
        await self.catch_up(name, {version})

    def move(
        self,
        action: AuditAction,
        name: str,
        alias: str,
        model: LoadedModel,
        previous: int | None,
        actor: str,
        reason: str | None,
    ) -> None:
        """Point an alias at a loaded version: the store, then the live table in one swap, then the audit log.

        The caller holds :attr:`lock` and has checked the move (:meth:`check_takeover`).
        """
        self.deployments.move_alias(name, alias, model.version, previous)
        aliases = {**self.table.routes(name).aliases, alias: model.version}
        self.table.set_routes(name, self._routes_with(name, aliases=aliases))
        self.audit.record(
            action,
            name,
            actor=actor,
            version_before=version_text(previous),
            version_after=str(model.version),
            sha256=model.sha256,
            reason=f"{alias}: {reason}" if reason else alias,
        )

    async def delete_alias(self, name: str, alias: str, actor: str, reason: str | None = None) -> None:
        """Remove an alias; refused while the routing policy names it."""
        async with self.lock:
            routes = self.table.routes(name)
            if alias not in routes.aliases:
                raise ModelNotFound(f"model {name!r} has no alias {alias!r}")
            if alias in policy_targets(routes.policy):
                raise Conflict(f"alias {alias!r} is used by model {name!r}'s routing policy; change that first")
            self.deployments.delete_alias(name, alias)
            aliases = {a: v for a, v in routes.aliases.items() if a != alias}
            self.table.set_routes(name, self._routes_with(name, aliases=aliases))
            self.audit.record(
                AuditAction.ALIAS_DELETED,
                name,
                actor=actor,
                version_before=str(routes.aliases[alias]),
                reason=f"{alias}: {reason}" if reason else alias,
            )

    async def rollback(self, name: str, alias: str, actor: str, reason: str | None = None) -> AliasMove:
        """Return an alias to the version it pointed at before its last move, in one step."""
        rows = {r.alias: r for r in self.deployments.aliases(name)}
        row = rows.get(alias)
        if row is None:
            raise ModelNotFound(f"model {name!r} has no alias {alias!r}")
        if row.previous is None:
            raise Conflict(f"alias {alias!r} of model {name!r} has never moved; there is nothing to roll back to")
        async with self.lock:
            model = self.require_loaded(name, row.previous, f"rollback of alias {alias!r}")
            self.move(AuditAction.ROLLBACK, name, alias, model, row.version, actor, reason)
        return AliasMove(name, alias, str(row.previous), str(row.version))

    # -- routing ------------------------------------------------------------------------------------------------

    async def set_routing(
        self, name: str, policy: RoutingPolicy, actor: str, reason: str | None = None
    ) -> RoutingPolicy:
        """Change a model's routing at run time; every target must resolve to a loaded version."""
        numbers = {int(t) for t in policy_targets(policy) if is_version(t)}
        await self.catch_up(name, numbers | set(self.table.routes(name).aliases.values()))
        async with self.lock:
            routes = self.table.routes(name)
            self.table.require(name)
            loaded = self.table.loaded()[name]
            for target in policy_targets(policy):
                version = routes.resolve(target)
                if version is None:
                    raise Conflict(f"routing target {target!r} of model {name!r} is neither a version nor an alias")
                self.require_loaded(name, version, f"routing target {target!r}")
            default = routes.default(loaded)
            answering = [policy.canary.target] if policy.canary else list(policy.split.weights) if policy.split else []
            for target in answering:
                version = routes.resolve(target)
                if default is not None and version is not None and version != default:
                    change = signature_change(loaded[default], loaded[version])
                    if change:
                        raise Conflict(f"routing target {target!r} cannot answer model {name!r}'s traffic: {change}")
            before = routes.policy
            self.deployments.set_routing(name, _policy_json(policy))
            self.table.set_routes(name, self._routes_with(name, policy=policy))
            change = f"{_policy_text(before)} -> {_policy_text(policy)}"
            self.audit.record(
                AuditAction.ROUTING_SET, name, actor=actor, reason=f"{change}: {reason}" if reason else change
            )
        return policy

    # -- load and unload ----------------------------------------------------------------------------------------

    def _install_pins(self, name: str) -> None:
        self.table.set_pins(name, self.deployments.pins().get(name, set()))

    async def load_version(self, name: str, version: int, actor: str) -> list[int]:
        """Load one more version of a model and keep it loaded (a pin), warmed up before it is routable."""
        source = self.table.repository.model(name)
        if version not in source.artifacts:
            raise ModelNotFound(
                f"model {name!r} has no version {version} in the repository "
                f"(there: {', '.join(map(str, source.artifacts))})"
            )
        self.deployments.pin(name, version)
        self._install_pins(name)
        loaded = await self.table.load(name, actor=actor)
        if version not in loaded:
            self.deployments.unpin(name, version)
            self._install_pins(name)
            raise Conflict(
                f"version {version} of model {name!r} failed to load: {self.table.failures(name).get(version)}"
            )
        return loaded

    async def unload_version(self, name: str, version: int, actor: str) -> list[int]:
        """Stop keeping a version loaded; refused while an alias or the routing policy points at it, or while
        the version policy selects it."""
        self.require_loaded(name, version, "unload")
        routes = self.table.routes(name)
        users = [a for a, v in routes.aliases.items() if v == version]
        users += [t for t in policy_targets(routes.policy) if routes.resolve(t) == version and t not in users]
        if users:
            raise Conflict(f"version {version} of model {name!r} is in use by {', '.join(map(repr, users))}")
        source = self.table.repository.model(name)
        if version in source.versions_to_load():
            raise Conflict(
                f"version {version} of model {name!r} is selected by its version_policy in config.toml; "
                "change the policy to unload it"
            )
        self.deployments.unpin(name, version)
        self._install_pins(name)
        return await self.table.load(name, actor=actor)

    # -- shadow comparisons -------------------------------------------------------------------------------------

    def persist_shadows(self) -> None:
        """Save this process's shadow comparisons that changed since the last save (periodically, and at shutdown)."""
        shadows = self.table.shadows
        self.shadow_stats.save(shadows.process, shadows.changed())

    def shadow_pairs(self, name: str) -> list[ShadowPair]:
        """A model's shadow comparisons summed over every worker process and restart: this process's latest
        counts are saved first, so the totals include them."""
        self.persist_shadows()
        return self.shadow_stats.totals(name)


def _check_alias(alias: str) -> None:
    """An alias name a user gave, checked by the one alias rule (a 400 naming the problem)."""
    try:
        check_alias_name(alias)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _policy_json(policy: RoutingPolicy) -> str | None:
    """The stored (and audited) form of a policy; None for no policy."""
    return None if policy.empty else msgspec.json.encode(policy).decode()


def _policy_text(policy: RoutingPolicy) -> str:
    return _policy_json(policy) or "none"
