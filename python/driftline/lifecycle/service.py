"""The model lifecycle: aliases, routing, pins, and propose -> approve -> promote -> rollback, each on record.

Every change is checked against the live table first (the version must be loaded, its signature must fit what the
alias served), then written to the store, then swapped into the table in one step, then written to the audit log. A
refused change leaves all three as they were.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import msgspec

from driftline.errors import BadRequest, Conflict, DriftlineError, ModelNotFound
from driftline.repository.names import check_alias_name
from driftline.serving.routing import ModelRoutes, RoutingPolicy, policy_targets
from driftline.store.audit import AuditAction

if TYPE_CHECKING:
    from driftline.backends.base import TensorSpec
    from driftline.serving.loaded import LoadedModel
    from driftline.serving.shadow import ShadowPair
    from driftline.serving.table import ModelTable
    from driftline.store.audit import AuditLog
    from driftline.store.lifecycle import LifecycleStore, Proposal

__all__ = ["ApprovalRule", "Lifecycle", "resolve_version", "signature_change"]

_log = logging.getLogger("driftline.lifecycle.service")


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


def _dims_fit(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return len(a) == len(b) and all(x == y or x < 0 or y < 0 for x, y in zip(a, b, strict=True))


def signature_change(old: LoadedModel, new: LoadedModel) -> str | None:
    """Why ``new`` cannot take over ``old``'s traffic (its clients' requests or their reading of the answer would
    break), or None when it can. Added optional outputs are fine; a removed, renamed or retyped tensor is not."""

    def by_name(specs: tuple[TensorSpec, ...]) -> dict[str, TensorSpec]:
        return {s.name: s for s in specs}

    old_in, new_in = by_name(old.inputs), by_name(new.inputs)
    for name, spec in new_in.items():
        if name not in old_in:
            return f"input {name!r} is new in version {new.version} (version {old.version} has {sorted(old_in)})"
        was = old_in[name]
        if spec.datatype != was.datatype or not _dims_fit(tuple(spec.shape), tuple(was.shape)):
            return f"input {name!r} changed from {was.datatype}{list(was.shape)} to {spec.datatype}{list(spec.shape)}"
    missing = sorted(set(old_in) - set(new_in))
    if missing:
        return f"inputs {missing} are gone in version {new.version}"
    new_out = by_name(new.outputs)
    for name, was in by_name(old.outputs).items():
        out = new_out.get(name)
        if out is None:
            return f"output {name!r} is gone in version {new.version}"
        if out.datatype != was.datatype or not _dims_fit(tuple(out.shape), tuple(was.shape)):
            return f"output {name!r} changed from {was.datatype}{list(was.shape)} to {out.datatype}{list(out.shape)}"
    return None


def resolve_version(aliases: dict[str, int], name: str, ref: str | None, default_alias: str | None) -> str | None:
    """A job's model reference as a version number: an alias is looked up; no reference means the default alias
    when the model has one (as for a request), else None (the newest version).

    Raises:
        ModelNotFound: the alias is not set.
    """
    if ref is not None and not ref.isdigit():
        if ref not in aliases:
            known = ", ".join(f"{a}={v}" for a, v in sorted(aliases.items())) or "none"
            raise ModelNotFound(f"model {name!r} has no alias {ref!r} (aliases: {known})")
        return str(aliases[ref])
    if ref is None and default_alias is not None and default_alias in aliases:
        return str(aliases[default_alias])
    return ref


class Lifecycle:
    """Applies lifecycle changes to the store, the live table and the audit log together."""

    def __init__(self, table: ModelTable, store: LifecycleStore, audit: AuditLog, default_alias: str) -> None:
        """Work on this table and store; ``default_alias`` is the server's (a model's config.toml may override)."""
        self.table = table
        self.store = store
        self.audit = audit
        self.default_alias = default_alias
        self._lock = asyncio.Lock()

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
                    self.audit.record(
                        AuditAction.ALIAS_REFUSED,
                        name,
                        actor="config",
                        version_after=str(version),
                        reason=f"{alias}: config.toml points it at version {version}, which is not in the repository",
                    )
                    _log.error("model %s: alias %s -> version %s: no such version; not seeded", name, alias, version)
                    continue
                if self.store.seed_alias(name, alias, version):
                    self.audit.record(
                        AuditAction.ALIAS_SET,
                        name,
                        actor="config",
                        version_after=str(version),
                        reason=f"{alias}: seeded",
                    )
        self.refresh()

    def _stored(self) -> tuple[dict[str, dict[str, int]], dict[str, RoutingPolicy], dict[str, set[int]]]:
        """The store's aliases, routing and pins, per model."""
        aliases: dict[str, dict[str, int]] = {}
        for row in self.store.aliases():
            aliases.setdefault(row.model, {})[row.alias] = row.version
        return aliases, self.store.routing(), self.store.pins()

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

    async def _catch_up(self, name: str, versions: set[int]) -> None:
        """With several workers, another one may have loaded (pinned) a version this one has not taken in yet:
        take in the store's state first, so an operator's change does not depend on which worker answers."""
        missing = versions - set(self.table.loaded().get(name, {}))
        if missing and missing & self.store.pins().get(name, set()):
            await self.follow_store()

    def _loaded(self, name: str, version: int, what: str) -> LoadedModel:
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

    def _check_takeover(self, name: str, alias: str, version: int) -> LoadedModel:
        """The alias may move to ``version``: it is loaded and its signature fits the alias's current version."""
        model = self._loaded(name, version, f"alias {alias!r}")
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

    async def set_alias(
        self, name: str, alias: str, version: int, actor: str, reason: str | None = None
    ) -> dict[str, Any]:
        """Point an alias at a loaded version (atomically: the next request sees the new version)."""
        _check_alias(alias)
        await self._catch_up(name, {version})
        async with self._lock:
            try:
                model = self._check_takeover(name, alias, version)
            except DriftlineError as exc:
                self.audit.record(
                    AuditAction.ALIAS_REFUSED, name, actor=actor, version_after=str(version), reason=f"{alias}: {exc}"
                )
                raise
            previous = self.table.routes(name).aliases.get(alias)
            if previous == version:
                return {"model": name, "alias": alias, "version": str(version), "previous": _s(previous)}
            self._move(AuditAction.ALIAS_SET, name, alias, model, previous, actor, reason)
        return {"model": name, "alias": alias, "version": str(version), "previous": _s(previous)}

    def _move(
        self,
        action: AuditAction,
        name: str,
        alias: str,
        model: LoadedModel,
        previous: int | None,
        actor: str,
        reason: str | None,
    ) -> None:
        """Point an alias at a loaded version: the store, then the live table in one swap, then the audit log."""
        self.store.move_alias(name, alias, model.version, previous)
        aliases = {**self.table.routes(name).aliases, alias: model.version}
        self.table.set_routes(name, self._routes_with(name, aliases=aliases))
        self.audit.record(
            action,
            name,
            actor=actor,
            version_before=_s(previous),
            version_after=str(model.version),
            sha256=model.sha256,
            reason=f"{alias}: {reason}" if reason else alias,
        )

    async def delete_alias(self, name: str, alias: str, actor: str, reason: str | None = None) -> None:
        """Remove an alias; refused while the routing policy names it."""
        async with self._lock:
            routes = self.table.routes(name)
            if alias not in routes.aliases:
                raise ModelNotFound(f"model {name!r} has no alias {alias!r}")
            if alias in policy_targets(routes.policy):
                raise Conflict(f"alias {alias!r} is used by model {name!r}'s routing policy; change that first")
            self.store.delete_alias(name, alias)
            aliases = {a: v for a, v in routes.aliases.items() if a != alias}
            self.table.set_routes(name, self._routes_with(name, aliases=aliases))
            self.audit.record(
                AuditAction.ALIAS_DELETED,
                name,
                actor=actor,
                version_before=str(routes.aliases[alias]),
                reason=f"{alias}: {reason}" if reason else alias,
            )

    async def rollback(self, name: str, alias: str, actor: str, reason: str | None = None) -> dict[str, Any]:
        """Return an alias to the version it pointed at before its last move, in one step."""
        rows = {r.alias: r for r in self.store.aliases(name)}
        row = rows.get(alias)
        if row is None:
            raise ModelNotFound(f"model {name!r} has no alias {alias!r}")
        if row.previous is None:
            raise Conflict(f"alias {alias!r} of model {name!r} has never moved; there is nothing to roll back to")
        async with self._lock:
            model = self._loaded(name, row.previous, f"rollback of alias {alias!r}")
            self._move(AuditAction.ROLLBACK, name, alias, model, row.version, actor, reason)
        return {"model": name, "alias": alias, "version": str(row.previous), "previous": str(row.version)}

    # -- routing ------------------------------------------------------------------------------------------------

    async def set_routing(
        self, name: str, policy: RoutingPolicy, actor: str, reason: str | None = None
    ) -> RoutingPolicy:
        """Change a model's routing at run time; every target must resolve to a loaded version."""
        numbers = {int(t) for t in policy_targets(policy) if t.isdigit()}
        await self._catch_up(name, numbers | set(self.table.routes(name).aliases.values()))
        async with self._lock:
            routes = self.table.routes(name)
            self.table.require(name)
            loaded = self.table.loaded()[name]
            for target in policy_targets(policy):
                version = routes.resolve(target)
                if version is None:
                    raise Conflict(f"routing target {target!r} of model {name!r} is neither a version nor an alias")
                self._loaded(name, version, f"routing target {target!r}")
            default = routes.default(loaded)
            answering = [policy.canary.target] if policy.canary else list(policy.split.weights) if policy.split else []
            for target in answering:
                version = routes.resolve(target)
                if default is not None and version is not None and version != default:
                    change = signature_change(loaded[default], loaded[version])
                    if change:
                        raise Conflict(f"routing target {target!r} cannot answer model {name!r}'s traffic: {change}")
            before = routes.policy
            self.store.set_routing(name, policy)
            self.table.set_routes(name, self._routes_with(name, policy=policy))
            change = f"{_policy_text(before)} -> {_policy_text(policy)}"
            self.audit.record(
                AuditAction.ROUTING_SET, name, actor=actor, reason=f"{change}: {reason}" if reason else change
            )
        return policy

    # -- load and unload ----------------------------------------------------------------------------------------

    def _install_pins(self, name: str) -> None:
        self.table.set_pins(name, self.store.pins().get(name, set()))

    async def load_version(self, name: str, version: int, actor: str) -> list[int]:
        """Load one more version of a model and keep it loaded (a pin), warmed up before it is routable."""
        source = self.table.repository.model(name)
        if version not in source.artifacts:
            raise ModelNotFound(
                f"model {name!r} has no version {version} in the repository "
                f"(there: {', '.join(map(str, source.artifacts))})"
            )
        self.store.pin(name, version)
        self._install_pins(name)
        loaded = await self.table.load(name, actor=actor)
        if version not in loaded:
            self.store.unpin(name, version)
            self._install_pins(name)
            raise Conflict(
                f"version {version} of model {name!r} failed to load: {self.table.failures(name).get(version)}"
            )
        return loaded

    async def unload_version(self, name: str, version: int, actor: str) -> list[int]:
        """Stop keeping a version loaded; refused while an alias or the routing policy points at it, or while
        the version policy selects it."""
        self._loaded(name, version, "unload")
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
        self.store.unpin(name, version)
        self._install_pins(name)
        return await self.table.load(name, actor=actor)

    # -- proposals ----------------------------------------------------------------------------------------------

    async def propose(
        self,
        name: str,
        version: int,
        alias: str,
        rule: ApprovalRule | None,
        actor: str,
        reason: str | None = None,
    ) -> Proposal:
        """Make a loaded version the candidate for an alias."""
        _check_alias(alias)
        await self._catch_up(name, {version})
        self._check_takeover(name, alias, version)
        if self.table.routes(name).aliases.get(alias) == version:
            raise Conflict(f"alias {alias!r} of model {name!r} already points at version {version}")
        proposal = self.store.propose(
            name, alias, version, msgspec.structs.asdict(rule) if rule else None, actor, reason
        )
        self.audit.record(
            AuditAction.PROPOSE,
            name,
            actor=actor,
            version_before=_s(self.table.routes(name).aliases.get(alias)),
            version_after=str(version),
            reason=f"proposal {proposal.id} for {alias}" + (f": {reason}" if reason else ""),
        )
        return proposal

    def _proposal(self, pid: int) -> Proposal:
        proposal = self.store.proposal(pid)
        if proposal is None:
            raise ModelNotFound(f"no proposal {pid}")
        return proposal

    def rule_status(self, proposal: Proposal) -> tuple[bool, str]:
        """Whether the proposal's rule passes now, and the evidence."""
        if not proposal.rule:
            return True, "no rule"
        rule = msgspec.convert(proposal.rule, ApprovalRule)
        current = self.table.routes(proposal.model).aliases.get(proposal.alias)
        pair = next(
            (p for p in self.shadow_pairs(proposal.model) if p.primary == current and p.shadow == proposal.version),
            None,
        )
        requests = pair.requests - pair.shadow_errors if pair else 0
        agreement = pair.agreement if pair else None
        mad = pair.mean_abs_diff if pair else None
        evidence = (
            f"shadow of version {proposal.version} beside version {current}: {requests} compared request(s), "
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

    async def approve(self, pid: int, actor: str, reason: str | None = None) -> Proposal:
        """Approve a proposal once its rule passes."""
        proposal = self._proposal(pid)
        if proposal.state != "proposed":
            raise Conflict(f"proposal {pid} is {proposal.state}; only a proposed one can be approved")
        ok, evidence = self.rule_status(proposal)
        if not ok:
            self.audit.record(
                AuditAction.APPROVE_REFUSED,
                proposal.model,
                actor=actor,
                version_after=str(proposal.version),
                reason=f"proposal {pid}: {evidence}",
            )
            raise Conflict(f"proposal {pid} cannot be approved yet: {evidence}")
        if not self.store.decide(pid, "approved", actor, reason, expect="proposed"):
            raise Conflict(f"proposal {pid} changed state meanwhile")
        self.audit.record(
            AuditAction.APPROVE,
            proposal.model,
            actor=actor,
            version_after=str(proposal.version),
            reason=f"proposal {pid}: {evidence}" + (f"; {reason}" if reason else ""),
        )
        return self._proposal(pid)

    async def promote(self, pid: int, actor: str, reason: str | None = None) -> Proposal:
        """Move the alias of an approved proposal to its version (atomically).

        A lost race is refused (409, audited as ``promote_refused``, the alias untouched): the proposal was
        rejected or promoted meanwhile (by this or another worker process), or the alias moved after the approval
        (the approval's evidence was about the version it pointed at then).
        """
        proposal = self._proposal(pid)
        if proposal.state != "approved":
            raise Conflict(f"proposal {pid} is {proposal.state}; it must be approved before it is promoted")
        name, alias = proposal.model, proposal.alias
        await self._catch_up(name, {proposal.version})
        async with self._lock:
            row = next((r for r in self.store.aliases(name) if r.alias == alias), None)
            before = row.version if row is not None else None
            try:
                now = self._proposal(pid)  # as it is now: another call may have decided it while this one waited
                if now.state != "approved":
                    raise Conflict(f"proposal {pid} is {now.state}: it was decided meanwhile; it cannot be promoted")
                if row is not None and row.updated_at > now.updated_at:
                    raise Conflict(
                        f"alias {alias!r} of model {name!r} moved to version {row.version} after proposal {pid} "
                        "was approved; propose again"
                    )
                model = self._check_takeover(name, alias, proposal.version)
                # The claim is one conditional UPDATE, so of two promotes (or a promote and a reject) in any
                # processes exactly one wins; the alias moves only after it.
                if not self.store.decide(pid, "promoted", actor, reason, expect="approved"):
                    state = self._proposal(pid).state
                    raise Conflict(f"proposal {pid} is {state}: it was decided meanwhile; it cannot be promoted")
            except DriftlineError as exc:
                self.audit.record(
                    AuditAction.PROMOTE_REFUSED, name, actor=actor, version_after=str(proposal.version), reason=str(exc)
                )
                raise
            if before != proposal.version:
                self._move(AuditAction.ALIAS_SET, name, alias, model, before, actor, f"promotion of proposal {pid}")
            self.audit.record(
                AuditAction.PROMOTE,
                name,
                actor=actor,
                version_before=_s(before),
                version_after=str(proposal.version),
                sha256=model.sha256,
                reason=f"proposal {pid}: {alias}" + (f": {reason}" if reason else ""),
            )
        return self._proposal(pid)

    async def reject(self, pid: int, actor: str, reason: str | None = None) -> Proposal:
        """Close a proposed or approved proposal without promoting it."""
        proposal = self._proposal(pid)
        if proposal.state not in {"proposed", "approved"}:
            raise Conflict(f"proposal {pid} is {proposal.state}; it can no longer be rejected")
        if not self.store.decide(pid, "rejected", actor, reason, expect=proposal.state):
            raise Conflict(f"proposal {pid} changed state meanwhile")
        self.audit.record(
            AuditAction.REJECT,
            proposal.model,
            actor=actor,
            version_after=str(proposal.version),
            reason=f"proposal {pid}",
        )
        return self._proposal(pid)

    def shadow_pairs(self, name: str) -> list[ShadowPair]:
        """A model's shadow comparisons summed over every worker process and restart (from the store)."""
        self.table.shadows.persist(self.store)
        return self.store.shadow_totals(name)

    # -- status -------------------------------------------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        """A model's state: versions (ready or failed), aliases, routing, shadow comparisons, open proposals."""
        loaded = self.table.loaded().get(name, {})
        if not loaded and self.table.error(name) is None and name not in self.table.repository.model_names():
            raise ModelNotFound(f"model {name!r} not found")
        routes = self.table.routes(name)
        versions: list[dict[str, Any]] = [
            {"version": str(v), "state": "READY", "sha256": m.sha256, "backend": m.backends[0].platform}
            for v, m in sorted(loaded.items())
        ]
        for row in versions:
            # Served, but with a caveat worth showing (a drift profile that could not be saved).
            window = self.table.drift.window(name, row["version"]) if self.table.drift is not None else None
            if window is not None and window.profile.unsaved:
                row["note"] = window.profile.unsaved
        versions += [
            {"version": str(v), "state": "FAILED", "reason": why}
            for v, why in sorted(self.table.failures(name).items())
            if v not in loaded
        ]
        aliases = {
            r.alias: {"version": str(r.version), "previous": _s(r.previous), "updated_at": r.updated_at}
            for r in self.store.aliases(name)
        }
        default = routes.default(loaded) if loaded else None
        return {
            "name": name,
            "state": "READY" if loaded else "UNAVAILABLE",
            "error": self.table.error(name),
            "default_alias": routes.default_alias,
            "default_version": _s(default),
            "versions": versions,
            "aliases": aliases,
            "routing": msgspec.to_builtins(routes.policy),
            "shadow": [p.as_dict() for p in self.shadow_pairs(name)],
            "proposals": [
                msgspec.to_builtins(p) for p in self.store.proposals(name, 20) if p.state in {"proposed", "approved"}
            ],
        }


def _check_alias(alias: str) -> None:
    try:
        check_alias_name(alias)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _policy_text(policy: RoutingPolicy) -> str:
    return "none" if policy.empty else msgspec.json.encode(policy).decode()


def _s(version: int | None) -> str | None:
    return None if version is None else str(version)
