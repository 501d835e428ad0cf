"""The live model table: which model versions are loaded, ready and routable, and their load/unload lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from driftline.errors import ConfigError, DriftlineError, ModelNotFound, ModelNotReady
from driftline.repository.lineage import lineage_of, read_run_record
from driftline.repository.names import is_version
from driftline.serving.batcher import Batcher
from driftline.serving.instances import build_instances
from driftline.serving.instances import fingerprint as artifact_fingerprint
from driftline.serving.loaded import LoadedModel
from driftline.serving.routing import ModelRoutes
from driftline.serving.shadow import ShadowComparisons
from driftline.serving.stats import ModelStats
from driftline.serving.watch import unwatch_version, watch_version
from driftline.store.audit import AuditAction

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from driftline.drift import DriftMonitor
    from driftline.repository.layout import ModelSource, Repository
    from driftline.store.audit import AuditLog

__all__ = ["ModelTable"]

_NO_ROUTES = ModelRoutes()


class ModelTable:
    """Owns every loaded model version; loads run in threads so the event loop never blocks."""

    def __init__(
        self,
        repository: Repository,
        loop: asyncio.AbstractEventLoop,
        audit: AuditLog | None = None,
        drift: DriftMonitor | None = None,
    ) -> None:
        """Create an empty table over a repository; with a drift monitor, versions with reference data are watched."""
        self.repository = repository
        self.drift = drift
        self._loop = loop
        self._audit = audit
        self._models: dict[str, dict[int, LoadedModel]] = {}
        self._errors: dict[str, str] = {}
        self._failures: dict[str, dict[int, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._routes: dict[str, ModelRoutes] = {}
        self._pins: dict[str, set[int]] = {}
        # Versions in the repository at each model's last load: a request for one that is not loaded gets 503.
        self._known: dict[str, set[int]] = {}
        self.shadows = ShadowComparisons()

    # -- lookups (event loop, hot path) --------------------------------------------------------------------------

    def get(self, name: str, version: str | None = None) -> LoadedModel:
        """The model version a request names (a number or an alias), or the default version.

        Raises:
            ModelNotFound: unknown model, version or alias.
            ModelNotReady: a known model, version or alias whose version is not loaded (see :meth:`_version`).
        """
        versions = self._loaded_versions(name)
        routes = self._routes.get(name, _NO_ROUTES)
        if not version:
            return self._version(name, versions, routes.default(versions), "its default version", known=True)
        return self._named(name, versions, routes, version)

    def route(
        self,
        name: str,
        version: str | None,
        parameters: Mapping[str, object] | None,
        headers: Sequence[tuple[bytes, bytes]],
    ) -> tuple[LoadedModel, LoadedModel | None]:
        """The version that answers a request and the one that gets a shadow copy of it (or None).

        A request that names a version or an alias is pinned to it; one that names none meets the canary or split
        policy, then the default alias. Errors as :meth:`get`.
        """
        versions = self._loaded_versions(name)
        routes = self._routes.get(name, _NO_ROUTES)
        if not version:
            chosen = routes.pick(versions, parameters, headers)
            model = self._version(name, versions, chosen, "its default version", known=True)
        else:
            model = self._named(name, versions, routes, version)
        shadow = routes.shadow_of(model.version, versions)
        return model, versions[shadow] if shadow is not None else None

    def require(self, name: str) -> None:
        """Raise the right error when a model has no loaded version (404 unknown, 503 known but not loaded)."""
        self._loaded_versions(name)

    def require_known(self, name: str) -> None:
        """Raise ModelNotFound unless the model is loaded or in the repository: what was stored about a model
        (its experiments, its KPI events) may be read while none of its versions is loaded. The repository is
        read only for a model that is not loaded."""
        if not self._models.get(name):
            self.repository.require(name)

    def _loaded_versions(self, name: str) -> dict[int, LoadedModel]:
        versions = self._models.get(name)
        if not versions:
            if name in self._errors:
                raise ModelNotReady(f"model {name!r} is not ready: {self._errors[name]}")
            # Unloaded since its last load: present, so 503. What the loads saw decides, never a listing of the
            # repository: a flood of requests for unknown names must cost no disk I/O.
            if name in self._known:
                raise ModelNotReady(f"model {name!r} is not loaded")
            raise ModelNotFound(f"model {name!r} not found")
        return versions

    def _named(self, name: str, versions: dict[int, LoadedModel], routes: ModelRoutes, ref: str) -> LoadedModel:
        chosen = routes.resolve(ref)
        if chosen is None:
            raise ModelNotFound(f"model {name!r} has no version or alias {ref!r}")
        if is_version(ref):
            return self._version(name, versions, chosen, f"version {ref!r}", known=False)
        return self._version(name, versions, chosen, f"alias {ref!r} (version {chosen})", known=True)

    def _version(
        self, name: str, versions: dict[int, LoadedModel], chosen: int | None, what: str, known: bool
    ) -> LoadedModel:
        """The one rule for a version that is not loaded: 503 when the model knows it (an alias or the default
        points at it, it is in the repository, or it failed to load; the reason is given), 404 otherwise."""
        model = versions.get(chosen) if chosen is not None else None
        if model is not None:
            return model
        failure = self._failures.get(name, {}).get(chosen) if chosen is not None else None
        if failure is not None:
            raise ModelNotReady(f"model {name!r}: {what} failed to load: {failure}")
        if known or chosen in self._known.get(name, ()):
            raise ModelNotReady(f"model {name!r}: {what} is not loaded")
        raise ModelNotFound(f"model {name!r} has no {what}")

    def routes(self, name: str) -> ModelRoutes:
        """A model's routing state (empty when it has none)."""
        return self._routes.get(name, _NO_ROUTES)

    def set_routes(self, name: str, routes: ModelRoutes) -> None:
        """Swap a model's routing state in one store: the next request sees all of it or none of it."""
        self._routes[name] = routes

    def set_pins(self, name: str, versions: set[int]) -> None:
        """Versions loaded on request, kept beside what the version policy selects."""
        self._pins[name] = set(versions)

    def failures(self, name: str) -> dict[int, str]:
        """Versions that failed to load, with the reason (they never take traffic)."""
        return dict(self._failures.get(name, {}))

    def note_failure(self, name: str, version: int, reason: str) -> None:
        """Record a version that failed before it reached the table (a refused download)."""
        self._failures.setdefault(name, {})[version] = reason

    def error(self, name: str) -> str | None:
        """Why a model has no loaded version at all, if it failed."""
        return self._errors.get(name)

    def knows(self, name: str) -> tuple[bool, frozenset[int]]:
        """Whether the model is loaded or was in the repository at the last load, and its loaded version numbers.

        Cheap (no repository listing, no snapshot): error answers are counted with it, and an unknown name is
        what a flood of bad requests would send.
        """
        versions = self._models.get(name)
        loaded = frozenset(versions) if versions else frozenset()
        return bool(versions) or name in self._known or name in self._errors, loaded

    def loaded(self) -> dict[str, dict[int, LoadedModel]]:
        """A snapshot of every loaded model and its versions."""
        return {name: dict(versions) for name, versions in self._models.items()}

    def index(self) -> list[dict[str, str]]:
        """Triton's repository index: every model with its state; a version that failed is UNAVAILABLE with why."""
        rows: list[dict[str, str]] = []
        for name in sorted(set(self.repository.model_names()) | set(self._models) | set(self._failures)):
            versions = self._models.get(name, {})
            failed = {v: why for v, why in self._failures.get(name, {}).items() if v not in versions}
            rows.extend({"name": name, "version": str(v), "state": "READY"} for v in sorted(versions))
            unavailable = {"name": name, "state": "UNAVAILABLE"}
            rows.extend({**unavailable, "version": str(v), "reason": why} for v, why in sorted(failed.items()))
            if not versions and not failed:
                rows.append({**unavailable, "reason": self._errors.get(name, "unloaded")})
        return rows

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def load_all(self) -> None:
        """Load every model in the repository; a model that fails is recorded (:meth:`error`) and the rest still load.

        Nothing is logged here: the start-up summary names every model, with what failed and why, once.
        """
        for name in self.repository.model_names():
            with contextlib.suppress(DriftlineError):
                await self.load(name)

    async def load(self, name: str, actor: str = "system", extra: set[int] | None = None) -> list[int]:
        """Bring a model's loaded versions in line with the repository; nothing stops serving on the way.

        The wanted versions are those the version policy selects plus those an alias, the routing policy or a
        load request pins, plus ``extra`` (the versions a registry is about to point aliases at). A version
        already loaded from the same file and config keeps running; a new one is loaded and warmed up before it
        becomes routable; one that fails never takes traffic and its failure is kept (see :meth:`failures`).
        Versions no longer wanted are retired only once every wanted version loaded, after their queues drain.

        Returns:
            The versions now loaded.

        Raises:
            ModelNotFound / ConfigError: the model folder or its config is unusable and nothing of it is loaded.
        """
        async with self._locks.setdefault(name, asyncio.Lock()):
            old = self._models.get(name, {})
            try:
                source = await asyncio.to_thread(self.repository.model, name)
            except DriftlineError as exc:
                self._record(AuditAction.LOAD_FAILED, name, reason=str(exc), actor=actor)
                if not old:
                    self._errors[name] = str(exc)
                raise
            self._known[name] = set(source.artifacts)
            wanted = sorted(set(source.versions_to_load()) | (self.held(name, extra) & set(source.artifacts)))
            fresh: dict[int, LoadedModel] = {}
            failures: dict[int, str] = {}
            for version in wanted:
                current = old.get(version)
                if (
                    current is not None
                    and current.source.config == source.config
                    and current.fingerprint == artifact_fingerprint(source.artifacts[version])
                ):
                    fresh[version] = current
                    continue
                try:
                    fresh[version] = await self._load_version(source, version)
                except DriftlineError as exc:
                    failures[version] = str(exc)
                    self._record(AuditAction.LOAD_FAILED, name, after=str(version), reason=str(exc), actor=actor)
                    if current is not None:
                        fresh[version] = current  # the running copy keeps serving
            # A version that loads now clears its earlier failure; failures of versions no longer in the
            # repository (set aside by the registry sync) stay on show.
            kept = {v: e for v, e in self._failures.get(name, {}).items() if v not in wanted}
            self._failures[name] = {**kept, **failures}
            if failures:
                # Keep every old version too: what was serving goes on serving until a clean load replaces it.
                fresh = {**old, **fresh}
            # An alias or route may have moved to an old version while the new ones loaded: it stays. Nothing
            # awaits from here to the swap, so no move can slip in between.
            still = self.held(name, extra)
            fresh.update({v: m for v, m in old.items() if v in still and v not in fresh})
            if not fresh:
                self._errors[name] = "; ".join(f"version {v}: {e}" for v, e in sorted(failures.items()))
                raise ConfigError(f"model {name!r}: no version could be loaded: {self._errors[name]}")
            self._models[name] = fresh
            self._errors.pop(name, None)
            for version, model in fresh.items():
                if old.get(version) is not model:
                    before = str(version) if version in old else None
                    self._record(
                        AuditAction.LOAD, name, before=before, after=str(version), sha256=model.sha256, actor=actor
                    )
            for version, model in old.items():
                if fresh.get(version) is not model:
                    await self._retire(model)
                    if version not in fresh:
                        self._unwatch(model)
                        policy = version in source.artifacts
                        why = "not selected by version policy" if policy else "removed from the repository"
                        self._record(AuditAction.UNLOAD, name, before=str(version), reason=why, actor=actor)
            return sorted(fresh)

    def held(self, name: str, extra: set[int] | None = None) -> set[int]:
        """Versions that stay loaded whatever the version policy says: pinned, pointed at, or about to be."""
        return self._pins.get(name, set()) | self.routes(name).referenced() | (extra or set())

    async def unload(self, name: str, actor: str = "system") -> None:
        """Stop routing to a model, drain its queues, then free its instances.

        Raises:
            ModelNotFound: the model is not loaded.
        """
        async with self._locks.setdefault(name, asyncio.Lock()):
            versions = self._models.pop(name, None)
            if not versions:
                raise ModelNotFound(f"model {name!r} is not loaded")
            for model in versions.values():
                await self._retire(model)
                self._unwatch(model)
                self._record(
                    AuditAction.UNLOAD, name, before=str(model.version), reason="unload requested", actor=actor
                )

    async def close(self) -> None:
        """Unload everything, answering every accepted request first."""
        models = [m for versions in self._models.values() for m in versions.values()]
        self._models.clear()
        await asyncio.gather(*(self._retire(m) for m in models))

    async def _load_version(self, source: ModelSource, version: int) -> LoadedModel:
        config = source.config
        path = source.artifacts[version]
        fingerprint = artifact_fingerprint(path)
        # Read first: a bad lineage.json fails the version before any instance is built.
        record = await asyncio.to_thread(read_run_record, path.parent)
        backends, digest = await asyncio.to_thread(build_instances, source, version)
        lineage = lineage_of(record, source.path, version, path, digest)  # one small file read at most
        on_batch = None
        if self.drift is not None:
            try:
                on_batch = await asyncio.to_thread(watch_version, self.drift, source, version, backends[0].inputs)
            except ConfigError:
                for b in backends:
                    b.close()
                raise
        stats = ModelStats()
        batcher = Batcher(f"{source.name}:{version}", backends, config, stats, self._loop, on_batch)
        return LoadedModel(source.name, version, source, backends, batcher, digest, stats, fingerprint, lineage)

    def _unwatch(self, model: LoadedModel) -> None:
        if self.drift is not None:
            unwatch_version(self.drift, model.name, model.version)

    async def _retire(self, model: LoadedModel) -> None:
        model.batcher.close()
        await asyncio.to_thread(model.batcher.join)
        for backend in model.backends:
            backend.close()

    def _record(
        self,
        action: AuditAction,
        name: str,
        *,
        before: str | None = None,
        after: str | None = None,
        sha256: str | None = None,
        reason: str | None = None,
        actor: str = "system",
    ) -> None:
        if self._audit is not None:
            self._audit.record(
                action,
                name,
                actor=actor,
                version_before=before,
                version_after=after,
                sha256=sha256,
                reason=reason,
            )
