"""The live model table: which model versions are loaded, ready and routable, and their load/unload lifecycle."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from driftline.backends import load_backend
from driftline.errors import ConfigError, DriftlineError, ModelNotFound, ModelNotReady
from driftline.serving.batcher import Batcher
from driftline.serving.stats import ModelStats
from driftline.serving.watch import unwatch_version, watch_version

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt

    from driftline.backends.base import Backend, TensorSpec
    from driftline.drift import DriftMonitor
    from driftline.repository.layout import ModelSource, Repository
    from driftline.store.audit import AuditLog

__all__ = ["LoadedModel", "ModelTable"]

_log = logging.getLogger("driftline.serving")
_WARMUP_DTYPES = {"BOOL": np.bool_, "BYTES": np.object_}


@dataclass(slots=True)
class LoadedModel:
    """One ready model version: its instances, its batcher and its counters."""

    name: str
    version: int
    source: ModelSource
    backends: list[Backend]
    batcher: Batcher
    sha256: str
    stats: ModelStats = field(default_factory=ModelStats)

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """The input signature (every instance has the same)."""
        return self.backends[0].inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """The output signature."""
        return self.backends[0].outputs

    @property
    def max_batch_size(self) -> int:
        """Rows per batch; 0 when batching is off."""
        return self.source.config.max_batch_size


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _warmup(backend: Backend, batching: bool) -> None:
    """Run one inference on zeros so the first real request does not pay for lazy initialisation."""
    feed: dict[str, npt.NDArray[np.generic]] = {}
    for spec in backend.inputs:
        shape = tuple(1 if d < 0 else d for d in spec.shape)
        if batching and shape:
            shape = (1, *shape[1:])
        dtype = _WARMUP_DTYPES.get(spec.datatype) or np.dtype(spec.datatype.replace("FP", "float").lower())
        feed[spec.name] = np.full(shape, b"", dtype=object) if dtype is np.object_ else np.zeros(shape, dtype)
    backend.infer(feed)


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
        self._locks: dict[str, asyncio.Lock] = {}

    # -- lookups (event loop, hot path) --------------------------------------------------------------------------

    def get(self, name: str, version: str | None = None) -> LoadedModel:
        """The model version a request names, or the newest loaded version.

        Raises:
            ModelNotFound: unknown model or version.
            ModelNotReady: the model exists in the repository but is not loaded.
        """
        versions = self._models.get(name)
        if not versions:
            if name in self._errors:
                raise ModelNotReady(f"model {name!r} is not ready: {self._errors[name]}")
            raise ModelNotFound(f"model {name!r} not found")
        if version is None or version == "":
            return versions[max(versions)]
        try:
            return versions[int(version)]
        except (ValueError, KeyError):
            raise ModelNotFound(f"model {name!r} has no loaded version {version!r}") from None

    def loaded(self) -> dict[str, dict[int, LoadedModel]]:
        """A snapshot of every loaded model and its versions."""
        return {name: dict(versions) for name, versions in self._models.items()}

    def index(self) -> list[dict[str, str]]:
        """Triton's repository index: every model in the repository with its state."""
        rows: list[dict[str, str]] = []
        for name in sorted(set(self.repository.model_names()) | set(self._models)):
            versions = self._models.get(name)
            if versions:
                rows.extend({"name": name, "version": str(v), "state": "READY"} for v in sorted(versions))
            elif name in self._errors:
                rows.append({"name": name, "state": "UNAVAILABLE", "reason": self._errors[name]})
            else:
                rows.append({"name": name, "state": "UNAVAILABLE", "reason": "unloaded"})
        return rows

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def load_all(self) -> None:
        """Load every model in the repository; a model that fails is reported and the rest still load."""
        for name in self.repository.model_names():
            try:
                await self.load(name)
            except DriftlineError as exc:
                _log.error("model %s failed to load: %s", name, exc)

    async def load(self, name: str) -> list[int]:
        """(Re)load a model's versions per its version policy; the old ones keep serving until the new are ready.

        Returns:
            The versions now loaded.

        Raises:
            ModelNotFound / ConfigError: the model folder or its config is unusable; nothing changes.
        """
        async with self._locks.setdefault(name, asyncio.Lock()):
            fresh: dict[int, LoadedModel] = {}
            try:
                source = await asyncio.to_thread(self.repository.model, name)
                for version in source.versions_to_load():
                    fresh[version] = await self._load_version(source, version)
            except DriftlineError as exc:
                self._errors[name] = str(exc)
                self._record("load_failed", name, reason=str(exc))
                for model in fresh.values():
                    await self._retire(model)
                raise
            old = self._models.get(name, {})
            self._models[name] = fresh
            self._errors.pop(name, None)
            for version, model in fresh.items():
                before = str(version) if version in old else None
                self._record("load", name, before=before, after=str(version), sha256=model.sha256)
            for model in old.values():
                await self._retire(model)
                if model.version not in fresh:
                    self._unwatch(model)
                    self._record("unload", name, before=str(model.version), reason="not selected by version policy")
            return sorted(fresh)

    async def unload(self, name: str) -> None:
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
                self._record("unload", name, before=str(model.version), reason="unload requested")

    async def close(self) -> None:
        """Unload everything, answering every accepted request first."""
        models = [m for versions in self._models.values() for m in versions.values()]
        self._models.clear()
        await asyncio.gather(*(self._retire(m) for m in models))

    async def _load_version(self, source: ModelSource, version: int) -> LoadedModel:
        config = source.config
        path = source.artifacts[version]

        def build() -> tuple[list[Backend], str]:
            digest = _sha256(path)
            backends: list[Backend] = []
            try:
                for _ in range(config.instances):
                    backend = load_backend(source.backend, path, config)
                    if config.warmup:
                        _warmup(backend, config.max_batch_size > 0)
                    backends.append(backend)
            except ConfigError:
                for b in backends:
                    b.close()
                raise
            except Exception as exc:  # noqa: BLE001 - warm-up failures and runtime errors of any kind
                for b in backends:
                    b.close()
                raise ConfigError(f"{path}: warm-up inference failed: {exc}") from None
            return backends, digest

        backends, digest = await asyncio.to_thread(build)
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
        return LoadedModel(source.name, version, source, backends, batcher, digest, stats)

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
        action: str,
        name: str,
        *,
        before: str | None = None,
        after: str | None = None,
        sha256: str | None = None,
        reason: str | None = None,
    ) -> None:
        if self._audit is not None:
            self._audit.record(action, name, version_before=before, version_after=after, sha256=sha256, reason=reason)
