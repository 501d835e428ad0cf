"""A registry that is MLflow's Model Registry, read through `mlflow.MlflowClient` (imported only when used)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftline.errors import ConfigError
from driftline.registry.source import RegistryUnavailable, RemoteModel, RemoteVersion
from driftline.repository import ARTIFACT_NAMES
from driftline.repository.layout import find_artifact
from driftline.repository.lineage import MAX_LINEAGE_BYTES, Dataset, RunRecord, encode_record, finite_metrics
from driftline.repository.names import MODEL_NAME
from driftline.security.digests import is_sha256

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["MlflowSource"]

_PAGE = 1000
_SCHEMES = ("mlflow+http://", "mlflow+https://")


class MlflowSource:
    """Registered models of an MLflow tracking server; READY versions only, aliases as the registry states them.

    The digest of a version is its ``sha256`` tag. The client's own defaults retry a dead server for minutes (7
    retries, exponential backoff, 120 s timeouts), which would stall the sync; this source's calls run with
    ``max_retries`` retries and a ``timeout_s`` timeout instead, so an unreachable registry fails fast and the
    next poll tries again.
    """

    def __init__(self, url: str, *, timeout_s: int = 10, max_retries: int = 0) -> None:
        """Point at ``mlflow+http://host:port`` (or ``mlflow+https://``); nothing is contacted yet.

        Raises:
            ConfigError: The URL is not an mlflow+http(s) URL, or the mlflow package is not installed.
        """
        if not url.startswith(_SCHEMES):
            raise ConfigError(f"registry url {url!r}: want mlflow+http://host:port or mlflow+https://...")
        if importlib.util.find_spec("mlflow") is None:
            raise ConfigError(f"registry url {url!r}: the mlflow package is not installed (driftline[mlflow])")
        self.url = url
        self.tracking_uri = url.removeprefix("mlflow+")
        self.problems: list[str] = []
        self.unsure: set[str] = set()
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._client: Any = None

    def list_models(self) -> list[RemoteModel]:
        """Every registered model with at least one READY version, sorted by name; `problems` lists what was skipped.

        Raises:
            RegistryUnavailable: The server cannot be reached or answers with an error.
        """
        problems: list[str] = []
        unsure: set[str] = set()
        with self._call("list models"):
            client = self._mlflow_client()
            registered = _all_pages(lambda token: client.search_registered_models(max_results=_PAGE, page_token=token))
            # One paged search for every version beats one search per model (N+1 requests per poll).
            versions = _all_pages(lambda token: client.search_model_versions(max_results=_PAGE, page_token=token))
        by_model: dict[str, dict[int, RemoteVersion]] = {}
        for mv in versions:
            if mv.status != "READY":  # PENDING_REGISTRATION / FAILED_REGISTRATION have no usable artifact
                continue
            number = int(mv.version)
            digest = (mv.tags or {}).get("sha256")
            if digest is not None:
                digest = digest.strip().lower()
                if not is_sha256(digest):
                    problems.append(f"{self.url}: {mv.name}/{number}: tag sha256 is not a sha256 digest; skipped")
                    unsure.add(mv.name)
                    continue
            by_model.setdefault(mv.name, {})[number] = RemoteVersion(
                model=mv.name,
                version=number,
                ref=f"models:/{mv.name}/{number}",
                sha256=digest,
                created=_iso(mv.creation_timestamp),
            )
        models: list[RemoteModel] = []
        for rm in registered:
            if not MODEL_NAME.match(rm.name):
                problems.append(f"{self.url}: registered model {rm.name!r} is not a valid model name; skipped")
                unsure.add(rm.name)
                continue
            found = by_model.get(rm.name)
            if not found:
                continue
            # MLflow states alias targets as version strings.
            aliases = {alias: int(v) for alias, v in (rm.aliases or {}).items()}
            models.append(
                RemoteModel(name=rm.name, versions=dict(sorted(found.items())), aliases=aliases, config_toml=None)
            )
        self.problems, self.unsure = problems, unsure
        return sorted(models, key=lambda m: m.name)

    def fetch(self, version: RemoteVersion, dest: Path) -> None:
        """Download the version's artifacts into ``dest``, with the model file at its top level.

        Raises:
            RegistryUnavailable: The server cannot be reached, or the version or its artifacts are gone.
        """
        label = f"{version.model}/{version.version}"
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=dest))
        try:
            with self._call(f"fetch {label}"):
                import mlflow.artifacts

                client = self._mlflow_client()
                # NOTE: not download_artifacts("models:/name/N"): MLflow resolves models:/ URIs with the
                # process-wide registry URI, ignoring the registry_uri argument; the version's own artifact URI
                # (runs:/ or mlflow-artifacts:/) is resolved with the tracking_uri we pass.
                uri = client.get_model_version_download_uri(version.model, str(version.version))
                local = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=uri, dst_path=str(staging), tracking_uri=self.tracking_uri
                    )
                )
            if local.is_file():
                local.rename(dest / local.name)
            else:
                for child in local.iterdir():
                    child.rename(dest / child.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _hoist_artifact(dest)

    def lineage(self, version: RemoteVersion) -> bytes | None:
        """The version's run as a ``lineage.json``: run id, parameters, metrics (latest values), dataset inputs.

        Raises:
            RegistryUnavailable: The server cannot be reached, or the version is gone.
        """
        from mlflow.exceptions import MlflowException

        with self._call(f"read the lineage of {version.model}/{version.version}"):
            client = self._mlflow_client()
            mv = client.get_model_version(version.model, str(version.version))
            if not mv.run_id:
                return encode_record(RunRecord(artifact_uri=mv.source or None))
            try:
                run = client.get_run(mv.run_id)
            except MlflowException as e:
                if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                # A deleted run must not keep the version out for good: its id is what is left to show.
                note = "the run is not at the registry any more"
                return encode_record(RunRecord(run_id=mv.run_id, artifact_uri=mv.source or None, notes=note))
        inputs = run.inputs.dataset_inputs if run.inputs is not None else []
        record = RunRecord(
            run_id=mv.run_id,
            params={str(k): str(v) for k, v in run.data.params.items()},
            metrics=finite_metrics(run.data.metrics),
            datasets=[Dataset(d.dataset.name, d.dataset.digest or "", d.dataset.source or "") for d in inputs],
            artifact_uri=mv.source or None,
        )
        return _bounded(record)

    def _mlflow_client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            # Both URIs given explicitly: nothing here reads or sets MLflow's process-wide tracking URI.
            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        import requests
        from mlflow.exceptions import MlflowException

        with _short_requests(self._timeout_s, self._max_retries):
            try:
                yield
            except (MlflowException, requests.RequestException, OSError) as e:
                raise RegistryUnavailable(f"registry {self.url}: cannot {what}: {_short(str(e))}") from e


# MLflow reads its HTTP settings from the environment on every request and offers no per-client knob, so the
# source sets them while any of its calls is in flight and restores them when the last call ends.
_env_lock = threading.Lock()
_env_users = 0
_env_saved: dict[str, str | None] = {}


@contextlib.contextmanager
def _short_requests(timeout_s: int, max_retries: int) -> Iterator[None]:
    global _env_users, _env_saved  # the reference count of the shared override
    overrides = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s),
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    with _env_lock:
        if _env_users == 0:
            _env_saved = {k: os.environ.get(k) for k in overrides}
            os.environ.update(overrides)
        _env_users += 1
    try:
        yield
    finally:
        with _env_lock:
            _env_users -= 1
            if _env_users == 0:
                for key, value in _env_saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value


def _all_pages(search: Callable[[str | None], Any]) -> list[Any]:
    items: list[Any] = []
    token: str | None = None
    while True:
        page = search(token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def _hoist_artifact(dest: Path) -> None:
    """Move the folder holding the shallowest model file up to ``dest`` when it is not there already.

    MLflow model directories keep the model file at their root, but a plain artifact folder logged with
    log_artifacts may nest it (``model/onnx/model.onnx``); the repository wants ``<N>/model.onnx``.
    """
    if find_artifact(dest) is not None:
        return
    found = sorted(
        (p for n in ARTIFACT_NAMES for p in dest.rglob(n) if p.is_file()), key=lambda p: (len(p.parts), str(p))
    )
    if not found:
        return  # the cache reports "no model file"; nothing to guess here
    holder = Path(tempfile.mkdtemp(prefix=".hoist-", dir=dest))
    folder = found[0].parent
    moved = holder / "files"
    folder.rename(moved)  # out of the way first, in case a child shares a name with one of its ancestors
    for child in moved.iterdir():
        target = dest / child.name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        child.rename(target)
    shutil.rmtree(holder)


def _bounded(record: RunRecord) -> bytes:
    """``record`` as a ``lineage.json`` the loader accepts: a run with thousands of parameters is kept without
    them (and says so) rather than refused for its size."""
    data = encode_record(record)
    if len(data) <= MAX_LINEAGE_BYTES:
        return data
    note = f"params, metrics and datasets left out: over {MAX_LINEAGE_BYTES} bytes (see the run at the registry)"
    return encode_record(RunRecord(run_id=record.run_id, artifact_uri=record.artifact_uri, notes=note))


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
