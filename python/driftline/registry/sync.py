"""Registry sync: a background task that brings the local repository and aliases in line with a registry source.

For each version the source has and the repository lacks: download it into the content-addressed cache (its sha256
checked), copy it (with the ``lineage.json`` the source states for it) into the repository under a temporary name
and rename it into place, load it and warm it up. Only then is it routable, and then only if an alias or the
routing policy sends traffic to it (or, for a model without a default alias, because it is the newest). A version
that fails any step is moved aside, never takes traffic, and is on record in the model's status and the audit log;
the versions already serving go on serving.

Alias values the source states are applied when they change at the source, through the same checks an operator's
alias move meets. A refused value is tried again when the model's loaded versions or the alias's local value
change (the target version loaded late, say), not on every poll. An alias the registry set and then deleted is
deleted here too, unless it was moved here since (it is an operator's then), the routing policy names it, or it is
the default alias (deleting that would send unpinned traffic to the newest version); a refusal is audited once.

A version the sync placed (on record in ``<model>/.registry/``) that the source no longer lists is unloaded after
its queue drains and moved to ``<model>/.deleted/``, unless an alias, route or pin holds it or it is the model's
last version; versions put in the repository by hand are never touched. A listing that skipped anything it could
not read prunes nothing. An unreachable source changes nothing; the next try waits twice as long, up to a limit.

With several worker processes one of them (the holder of a file lock) talks to the source; the others watch the
repository folders and the store, and load what the leader put there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from driftline.errors import DriftlineError, IntegrityError, RegistryUnavailable
from driftline.registry.answers import (
    AliasChange,
    AliasRefusal,
    ChangedVersion,
    FailedVersion,
    HeldVersion,
    LoadFailure,
    SyncReport,
    SyncState,
    SyncStatus,
)
from driftline.registry.leader import LeaderLock, SyncLock
from driftline.repository.placement import Placement
from driftline.store.audit import AuditAction

if TYPE_CHECKING:
    from driftline.config import RegistrySettings
    from driftline.lifecycle.service import Lifecycle
    from driftline.registry.cache import ArtifactCache
    from driftline.registry.source import RegistrySource, RemoteModel
    from driftline.serving.table import ModelTable
    from driftline.store.audit import AuditLog

__all__ = ["RegistrySync"]

_log = logging.getLogger("driftline.registry")


class RegistrySync:
    """Polls one registry source on the event loop; blocking work (listing, downloads, copies) runs in threads."""

    def __init__(
        self,
        source: RegistrySource,
        cache: ArtifactCache,
        table: ModelTable,
        lifecycle: Lifecycle,
        audit: AuditLog,
        settings: RegistrySettings,
        lock: SyncLock | None = None,
    ) -> None:
        """Sync ``source`` into ``table``'s repository through ``cache``; ``lock`` elects the leader (default: the
        cache's file lock, for the workers of one host)."""
        self.source = source
        self.cache = cache
        self.table = table
        self.lifecycle = lifecycle
        self.audit = audit
        self.settings = settings
        self.actor = f"registry:{source.url}"
        self.placement = Placement(table.repository.root, source.url)
        self.state: SyncState = "starting"
        self.last_error: str | None = None
        self.last_success: float | None = None
        self.next_attempt: float | None = None
        self.attempts = 0
        # (model, version) -> the sha256 that failed; not tried again until the source states another digest.
        self._failed: dict[tuple[str, int], str | None] = {}
        # (model, alias) -> the refused value and the conditions it was refused under (loaded versions, the
        # alias's value then). Tried again once those change, so a refusal is audited once, not on every poll.
        self._refused: dict[tuple[str, str], tuple[int, frozenset[int], int | None]] = {}
        # (model, alias) deleted at the registry but kept here, and why.
        self._kept_aliases: dict[tuple[str, str], str] = {}
        # (model, version) -> the sha256 the source states for a version placed here with other bytes.
        self._changed: dict[tuple[str, int], str] = {}
        # (model, version) deleted at the source but held here (alias, route, pin, last version): audited once.
        self._held: dict[tuple[str, int], str] = {}
        self._seen_folders: dict[str, frozenset[int]] = {}
        self._lock: SyncLock = lock if lock is not None else LeaderLock(cache.root)
        self._wake = asyncio.Event()
        self._running = asyncio.Lock()

    # -- status and control ---------------------------------------------------------------------------------------

    def status(self) -> SyncStatus:
        """What the admin API shows about the sync."""
        now = time.time()
        return SyncStatus(
            source=self.source.url,
            state=self.state,
            leader=self.leader,
            last_error=self.last_error,
            last_success_s_ago=None if self.last_success is None else round(now - self.last_success, 3),
            next_attempt_in_s=None if self.next_attempt is None else max(0.0, round(self.next_attempt - now, 3)),
            failed_versions=[FailedVersion(m, str(v), sha) for (m, v), sha in sorted(self._failed.items())],
            deleted_but_held=[HeldVersion(m, str(v), why) for (m, v), why in sorted(self._held.items())],
            changed_at_source=[ChangedVersion(m, str(v), sha) for (m, v), sha in sorted(self._changed.items())],
            problems=list(self.source.problems),
        )

    @property
    def leader(self) -> bool:
        """Whether this process leads the sync: it holds the leader lock (taken again before every poll)."""
        return self._lock.held

    def wake(self) -> None:
        """Run the next poll now (an operator asked for a sync)."""
        self._wake.set()

    async def run_forever(self) -> None:
        """Poll until cancelled; an unreachable source backs off up to ``max_backoff_s``."""
        delay = self.settings.poll_interval_s
        try:
            while True:
                leader = self._lock.acquire()
                try:
                    if leader:
                        await self.sync_once()
                    else:
                        await self.follow_once()
                        self.last_error = None
                    delay = self.settings.poll_interval_s
                except RegistryUnavailable as exc:
                    self.state = "unreachable"
                    self.last_error = str(exc)
                    delay = min(delay * 2, self.settings.max_backoff_s)
                    _log.warning("registry %s unreachable (next try in %.1fs): %s", self.source.url, delay, exc)
                except Exception as exc:  # noqa: BLE001 - the loop must outlive any one bad poll
                    self.state = "error"
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    _log.exception("registry sync from %s failed", self.source.url)
                self.next_attempt = time.time() + delay
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            self._lock.release()

    # -- leader ---------------------------------------------------------------------------------------------------

    async def sync_once(self) -> SyncReport:
        """One pass over the source.

        Returns:
            What changed: versions loaded, versions that failed, aliases moved or refused.

        Raises:
            RegistryUnavailable: the source could not be listed or a download could not reach it; nothing changed.
        """
        async with self._running:
            self.state = "syncing"
            self.attempts += 1
            remote = await asyncio.to_thread(self.source.list_models)
            report = SyncReport()
            wanted = set(self.settings.models)
            listed = {m.name: m for m in remote if not wanted or m.name in wanted}
            local = [n for n in self.table.repository.model_names() if not wanted or n in wanted]
            # What this source placed, read once per poll: the republish check and the pruning both use it.
            placed = await asyncio.to_thread(self._placed, {*listed, *local})
            for model in listed.values():
                await self._sync_model(model, placed[model.name], report)
            # A model the listing skipped anything of cannot tell "deleted" from "unreadable": none of its versions
            # is pruned. The others' are: one bad tag elsewhere in a shared registry must not stop every deletion.
            if self.settings.mirror_deletions:
                for name in local:
                    if name in self.source.unsure:
                        continue
                    still = listed.get(name)
                    await self._prune(name, set(still.versions) if still else set(), placed[name], report)
        self.state = "ok"
        self.last_error = None
        self.last_success = time.time()
        return report

    def _placed(self, names: set[str]) -> dict[str, dict[int, str]]:
        return {name: self.placement.placed(name) for name in names}

    async def _sync_model(self, model: RemoteModel, placed: dict[int, str], report: SyncReport) -> None:
        new: dict[int, str] = {}
        for version, remote in sorted(model.versions.items()):
            if self.placement.has(model.name, version):
                here = placed.get(version)
                if here and remote.sha256 and remote.sha256 != here:
                    self._republished(model.name, version, here, remote.sha256)
                continue
            key = (model.name, version)
            if key in self._failed and self._failed[key] == remote.sha256:
                continue
            try:
                cached = await asyncio.to_thread(self.cache.store, self.source, remote)
                lineage = await asyncio.to_thread(self.source.lineage, remote)
                await asyncio.to_thread(
                    self.placement.place,
                    model.name,
                    version,
                    cached.path,
                    cached.sha256,
                    model.config_toml,
                    ref=remote.ref,
                    lineage=lineage,
                )
            except IntegrityError as exc:
                self._fail(model.name, version, remote.sha256, str(exc), report)
                continue
            except OSError as exc:
                self._fail(model.name, version, remote.sha256, f"cannot place the artifact: {exc}", report)
                continue
            new[version] = cached.sha256
        wanted = set(model.aliases.values()) if self.settings.sync_aliases else set()
        loaded_now = set(self.table.loaded().get(model.name, {}))
        # Reload when versions arrived, or when the registry points an alias at a local version not loaded now.
        local = wanted & self.placement.versions(model.name)
        if new or (local - loaded_now) or (model.versions and not loaded_now):
            try:
                loaded = await self.table.load(model.name, actor=self.actor, extra=wanted)
            except DriftlineError as exc:
                loaded = []
                _log.error("model %s from %s failed to load: %s", model.name, self.source.url, exc)
            failures = self.table.failures(model.name)
            for version, sha in new.items():
                if version in loaded:
                    report.loaded.append(f"{model.name}/{version}")
                    continue
                if version not in failures:
                    continue  # placed, not selected by the version policy: a pin or an alias can load it later
                reason = failures[version]
                await asyncio.to_thread(self.placement.set_aside, model.name, version, sha)
                self._failed[(model.name, version)] = model.versions[version].sha256
                report.failed.append(LoadFailure(model.name, str(version), reason))
        if self.settings.sync_aliases and model.name in self.table.loaded():
            await self._sync_aliases(model, report)

    async def _prune(self, name: str, listed: set[int], placed: dict[int, str], report: SyncReport) -> None:
        """Unload and move aside the versions this source placed and no longer lists, unless something holds them."""
        gone = {v: sha for v, sha in placed.items() if v not in listed}
        # Only versions still gone can still be held; the loop below updates those.
        self._held = {k: why for k, why in self._held.items() if k[0] != name or k[1] in gone}
        if not gone:
            return
        local = set(self.placement.versions(name))
        held = self.table.held(name)
        removed = []
        for version, sha in sorted(gone.items()):  # oldest first: the newest is the one a last-version rule keeps
            if version in held:
                why = "an alias, route or pin holds it"
            elif not (local - {version}):
                why = "it is the model's last version (unload the model to take it offline)"
            else:
                await asyncio.to_thread(self.placement.set_aside, name, version, sha, deleted=True)
                local.discard(version)
                self._held.pop((name, version), None)
                removed.append(version)
                continue
            if self._held.get((name, version)) != why:
                self._held[(name, version)] = why
                self.audit.record(
                    AuditAction.DELETE_REFUSED,
                    name,
                    actor=self.actor,
                    version_before=str(version),
                    sha256=sha,
                    reason=f"deleted at the registry, kept here: {why}",
                )
        if removed:
            with contextlib.suppress(DriftlineError):  # the versions that remain were loaded before and stay
                await self.table.load(name, actor=self.actor)
            report.deleted.extend(f"{name}/{v}" for v in sorted(removed))

    def _republished(self, name: str, version: int, local: str, remote: str) -> None:
        """A version number the source now states other bytes for: versions are immutable here, so the one
        placed keeps serving and the change is on record once (publish a new version number instead)."""
        if self._changed.get((name, version)) == remote:
            return
        self._changed[(name, version)] = remote
        self.audit.record(
            AuditAction.REPUBLISH_REFUSED,
            name,
            actor=self.actor,
            version_before=str(version),
            sha256=remote,
            reason=f"the source states sha256 {remote[:12]} for version {version}, placed here as {local[:12]}; "
            "versions are immutable: publish a new version number",
        )
        _log.error("version %s of %s changed at %s; the version placed here stays", version, name, self.source.url)

    def _fail(self, name: str, version: int, sha256: str | None, reason: str, report: SyncReport) -> None:
        self._failed[(name, version)] = sha256
        self.table.note_failure(name, version, reason)
        self.audit.record(
            AuditAction.LOAD_FAILED, name, actor=self.actor, version_after=str(version), sha256=sha256, reason=reason
        )
        report.failed.append(LoadFailure(name, str(version), reason))
        _log.error("version %s of %s from %s refused: %s", version, name, self.source.url, reason)

    async def _sync_aliases(self, model: RemoteModel, report: SyncReport) -> None:
        seen = self.lifecycle.deployments.registry_aliases(self.source.url)
        loaded = frozenset(self.table.loaded().get(model.name, {}))
        for alias, version in sorted(model.aliases.items()):
            self._kept_aliases.pop((model.name, alias), None)
            if seen.get((model.name, alias)) == version:
                continue
            attempt = (version, loaded, self.table.routes(model.name).aliases.get(alias))
            if self._refused.get((model.name, alias)) == attempt:
                continue  # refused under these same conditions: the answer would be the same
            try:
                await self.lifecycle.set_alias(model.name, alias, version, self.actor, "moved at the registry")
            except DriftlineError as exc:
                self._refused[(model.name, alias)] = attempt
                report.refused.append(AliasRefusal(model.name, alias, str(version), str(exc)))
                continue
            self._refused.pop((model.name, alias), None)
            self.lifecycle.deployments.remember_registry_alias(self.source.url, model.name, alias, version)
            report.aliases.append(AliasChange(model.name, alias, str(version)))
        for (name, alias), version in sorted(seen.items()):
            if name == model.name and alias not in model.aliases:
                await self._drop_alias(name, alias, version, report)

    async def _drop_alias(self, name: str, alias: str, version: int, report: SyncReport) -> None:
        """An alias the registry set here and has since deleted: delete it here too, unless that is unsafe."""
        routes = self.table.routes(name)
        if routes.aliases.get(alias) != version:
            # Moved (or deleted) here since the registry set it: the local value is an operator's, and stays.
            self.lifecycle.deployments.forget_registry_alias(self.source.url, name, alias)
            return
        why: str | None = None
        if alias == routes.default_alias:
            why = "it is the default alias: deleting it would send unpinned traffic to the newest version"
        else:
            try:
                await self.lifecycle.delete_alias(name, alias, self.actor, "deleted at the registry")
            except DriftlineError as exc:
                why = str(exc)
        if why is None:
            self._kept_aliases.pop((name, alias), None)
            self.lifecycle.deployments.forget_registry_alias(self.source.url, name, alias)
            report.aliases.append(AliasChange(name, alias, None))
            return
        if self._kept_aliases.get((name, alias)) != why:  # tried every poll, audited once per reason
            self._kept_aliases[(name, alias)] = why
            self.audit.record(
                AuditAction.ALIAS_REFUSED,
                name,
                actor=self.actor,
                version_before=str(version),
                reason=f"{alias}: deleted at the registry, kept here: {why}",
            )
            report.refused.append(AliasRefusal(name, alias, None, why))

    # -- followers ------------------------------------------------------------------------------------------------

    async def follow_once(self) -> None:
        """Load the versions the leader placed in the repository since the last look."""
        self.state = "following"
        changed = []
        for name in self.table.repository.model_names():
            folders = self.placement.versions(name)
            if self._seen_folders.get(name) != folders:
                self._seen_folders[name] = folders
                changed.append(name)
        for name in changed:
            with contextlib.suppress(DriftlineError):
                await self.table.load(name, actor=self.actor)
        if changed:
            # The leader's alias moves: the versions they point at load here before the aliases are swapped in.
            await self.lifecycle.follow_store()
