"""Registry sync: a background task that brings the local repository and aliases in line with a registry source.

For each version the source has and the repository lacks: download it into the content-addressed cache (its sha256
checked), copy it into the repository under a temporary name and rename it into place, load it and warm it up. Only
then is it routable, and then only if an alias or the routing policy sends traffic to it (or, for a model without a
default alias, because it is the newest). A version that fails any step is moved aside, never takes traffic, and is
on record in the model's status and the audit log; the versions already serving go on serving.

Alias values the source states are applied when they change at the source, through the same checks an operator's
alias move meets. An unreachable source changes nothing; the next try waits twice as long, up to a limit.

With several worker processes one of them (the holder of a file lock) talks to the source; the others watch the
repository folders and the store, and load what the leader put there.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import DriftlineError, IntegrityError, RegistryUnavailable

if TYPE_CHECKING:
    from driftline.config import RegistrySettings
    from driftline.lifecycle import Lifecycle
    from driftline.registry.cache import ArtifactCache, CachedArtifact
    from driftline.registry.source import RegistrySource, RemoteModel
    from driftline.serving.table import ModelTable
    from driftline.store.audit import AuditLog

__all__ = ["RegistrySync"]

_log = logging.getLogger("driftline.registry")
_FAILED = ".failed"


def _materialize(cached: CachedArtifact, model_dir: Path, version: int, config_toml: str | None) -> Path:
    """Place a cached version at ``model_dir/<version>`` atomically (hard links where the file system allows)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".incoming-{version}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    config_in_artifact: Path | None = None
    for item in cached.path.rglob("*"):
        if not item.is_file():
            continue
        relative = item.relative_to(cached.path)
        if relative == Path("config.toml"):
            config_in_artifact = item
            continue
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(item, target)
        except OSError:
            shutil.copy2(item, target)
    config = model_dir / "config.toml"
    if not config.exists():
        # A model new to this repository takes its config from the source; an existing config is never overwritten.
        if config_toml is not None:
            config.write_text(config_toml)
        elif config_in_artifact is not None:
            shutil.copyfile(config_in_artifact, config)
    final = model_dir / str(version)
    staging.rename(final)
    return final


def _set_aside(model_dir: Path, version: int, sha256: str) -> None:
    """Move a version that failed to load out of the repository, so no restart tries it again."""
    folder = model_dir / str(version)
    if folder.is_dir():
        aside = model_dir / _FAILED / f"{version}-{sha256[:12]}"
        shutil.rmtree(aside, ignore_errors=True)
        aside.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(aside)


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
    ) -> None:
        """Sync ``source`` into ``table``'s repository through ``cache``."""
        self.source = source
        self.cache = cache
        self.table = table
        self.lifecycle = lifecycle
        self.audit = audit
        self.settings = settings
        self.actor = f"registry:{source.url}"
        self.state = "starting"
        self.last_error: str | None = None
        self.last_success: float | None = None
        self.next_attempt: float | None = None
        self.attempts = 0
        self.leader = False
        # (model, version) -> the sha256 that failed; not tried again until the source states another digest.
        self._failed: dict[tuple[str, int], str | None] = {}
        self._refused: set[tuple[str, str, int]] = set()
        self._seen_folders: dict[str, frozenset[str]] = {}
        self._lock_file: Any = None
        self._wake = asyncio.Event()
        self._running = asyncio.Lock()

    # -- status and control ---------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What the admin API shows about the sync."""
        now = time.time()
        return {
            "source": self.source.url,
            "state": self.state,
            "leader": self.leader,
            "last_error": self.last_error,
            "last_success_s_ago": None if self.last_success is None else round(now - self.last_success, 3),
            "next_attempt_in_s": None if self.next_attempt is None else max(0.0, round(self.next_attempt - now, 3)),
            "failed_versions": [
                {"model": m, "version": str(v), "sha256": sha} for (m, v), sha in sorted(self._failed.items())
            ],
        }

    def wake(self) -> None:
        """Run the next poll now (an operator asked for a sync)."""
        self._wake.set()

    def _take_leadership(self) -> bool:
        """One process per cache directory talks to the source; the file lock goes with the process."""
        if self._lock_file is not None:
            return True
        path = self.cache.root / ".sync.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    async def run_forever(self) -> None:
        """Poll until cancelled; an unreachable source backs off up to ``max_backoff_s``."""
        delay = self.settings.poll_interval_s
        try:
            while True:
                self.leader = self._take_leadership()
                try:
                    if self.leader:
                        await self.sync_once()
                    else:
                        await self.follow_once()
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
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    # -- leader ---------------------------------------------------------------------------------------------------

    async def sync_once(self) -> dict[str, Any]:
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
            report: dict[str, Any] = {"loaded": [], "failed": [], "aliases": [], "refused": []}
            wanted = set(self.settings.models)
            for model in remote:
                if not wanted or model.name in wanted:
                    await self._sync_model(model, report)
        self.state = "ok"
        self.last_error = None
        self.last_success = time.time()
        return report

    async def _sync_model(self, model: RemoteModel, report: dict[str, Any]) -> None:
        root = self.table.repository.root
        model_dir = root / model.name
        new: dict[int, str] = {}
        for version, remote in sorted(model.versions.items()):
            if (model_dir / str(version)).is_dir():
                continue
            key = (model.name, version)
            if key in self._failed and self._failed[key] == remote.sha256:
                continue
            try:
                cached = await asyncio.to_thread(self.cache.store, self.source, remote)
                await asyncio.to_thread(_materialize, cached, model_dir, version, model.config_toml)
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
        local = {v for v in wanted if (model_dir / str(v)).is_dir()}
        if new or (local - loaded_now) or (model.versions and not loaded_now):
            try:
                loaded = await self.table.load(model.name, actor=self.actor, extra=wanted)
            except DriftlineError as exc:
                loaded = []
                _log.error("model %s from %s failed to load: %s", model.name, self.source.url, exc)
            for version, sha in new.items():
                if version in loaded:
                    report["loaded"].append(f"{model.name}/{version}")
                    continue
                reason = self.table.failures(model.name).get(version, "it did not load")
                await asyncio.to_thread(_set_aside, model_dir, version, sha)
                self._failed[(model.name, version)] = model.versions[version].sha256
                report["failed"].append({"model": model.name, "version": str(version), "reason": reason})
        if self.settings.sync_aliases and model.name in self.table.loaded():
            await self._sync_aliases(model, report)

    def _fail(self, name: str, version: int, sha256: str | None, reason: str, report: dict[str, Any]) -> None:
        self._failed[(name, version)] = sha256
        self.table.note_failure(name, version, reason)
        self.audit.record(
            "load_failed", name, actor=self.actor, version_after=str(version), sha256=sha256, reason=reason
        )
        report["failed"].append({"model": name, "version": str(version), "reason": reason})
        _log.error("version %s of %s from %s refused: %s", version, name, self.source.url, reason)

    async def _sync_aliases(self, model: RemoteModel, report: dict[str, Any]) -> None:
        seen = self.lifecycle.store.registry_aliases(self.source.url)
        for alias, version in sorted(model.aliases.items()):
            if seen.get((model.name, alias)) == version:
                continue
            if (model.name, alias, version) in self._refused:
                continue
            try:
                await self.lifecycle.set_alias(model.name, alias, version, self.actor, "moved at the registry")
            except DriftlineError as exc:
                # Tried once per value: the registry has to move the alias again for another attempt.
                self._refused.add((model.name, alias, version))
                report["refused"].append(
                    {"model": model.name, "alias": alias, "version": str(version), "reason": str(exc)}
                )
                continue
            self.lifecycle.store.remember_registry_alias(self.source.url, model.name, alias, version)
            report["aliases"].append({"model": model.name, "alias": alias, "version": str(version)})

    # -- followers ------------------------------------------------------------------------------------------------

    async def follow_once(self) -> None:
        """Load the versions the leader placed in the repository since the last look."""
        self.state = "following"
        root = self.table.repository.root
        changed = []
        for name in self.table.repository.model_names():
            folders = frozenset(p.name for p in (root / name).iterdir() if p.is_dir() and p.name.isdigit())
            if self._seen_folders.get(name) != folders:
                self._seen_folders[name] = folders
                changed.append(name)
        if changed:
            self.lifecycle.refresh()  # the leader's alias moves, so the versions they point at load too
        for name in changed:
            with contextlib.suppress(DriftlineError):
                await self.table.load(name, actor=self.actor)
