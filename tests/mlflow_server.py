"""A real `mlflow server` (SQLite backend, proxied artifacts) for registry tests, and a way to publish ONNX to it.

Used by tests/registry and by the end-to-end registry sync tests. Nothing here touches MLflow's process-wide
tracking URI: the server gets its settings on its command line, clients get the URL in their constructor.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.e2e.conftest import free_port
from tests.helpers import exited_unreaped

COMPUTED = object()  # publish_onnx_version's default: tag the version with the digest of the file
EXPERIMENT = "driftline-tests"


@dataclass
class MlflowServer:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    log: Path

    @property
    def url(self) -> str:
        """The tracking URI, ``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def registry_url(self) -> str:
        """The URL driftline's registry settings take, ``mlflow+http://127.0.0.1:<port>``."""
        return f"mlflow+{self.url}"

    def stop(self, timeout: float = 20) -> None:
        """Stop the server and the processes it started (uvicorn worker, job runner): its whole process group."""
        if self.proc.returncode is not None:
            return  # stopped (and reaped) before: its group id may be another process's now
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        exited_unreaped(self.proc, timeout)
        # Children may outlive the leader by a moment; the group is ours alone (start_new_session), and stays ours
        # while the leader is not reaped.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def start_mlflow_server(workdir: Path, timeout: float = 60) -> MlflowServer:
    """Start ``mlflow server`` on a free port of 127.0.0.1 and wait until ``GET /health`` answers 200.

    The backend is ``<workdir>/mlflow.db`` and artifacts are proxied by the server (``--serve-artifacts``) into
    ``<workdir>/artifacts``, so clients fetch them over HTTP as they would from a remote registry.

    Raises:
        RuntimeError: It exited, or was not healthy within ``timeout`` seconds; the message holds its log.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / f"mlflow-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log.open("wb") as out:
        # Its own session, so stop() can end the worker and job-runner children it spawns with one killpg.
        proc = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = MlflowServer(proc, port, workdir, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"mlflow server not healthy after {timeout}s:\n{log.read_text()}")


def mlflow_client(url: str):
    """An MlflowClient for ``url`` (``http://...`` or ``mlflow+http://...``), both URIs explicit."""
    from mlflow import MlflowClient

    url = url.removeprefix("mlflow+")
    return MlflowClient(tracking_uri=url, registry_uri=url)


def log_model_run(client, files: dict[str, bytes]) -> tuple[str, str]:
    """Log ``files`` (relative path -> bytes) as plain artifacts of a new run; returns (run id, artifact URI)."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = client.create_experiment(EXPERIMENT) if experiment is None else experiment.experiment_id
    run = client.create_run(experiment_id)
    with tempfile.TemporaryDirectory() as folder:
        for rel, data in files.items():
            path = Path(folder) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        client.log_artifacts(run.info.run_id, folder)
    client.set_terminated(run.info.run_id)
    return run.info.run_id, run.info.artifact_uri


def register_version(
    client, name: str, source: str, run_id: str, timeout: int = 60, tags: dict[str, str] | None = None
) -> int:
    """Create a version of ``name`` (and the registered model if missing) and wait until it is READY."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    # Tags go in with the version, so no reader ever sees it without them (a sync must not meet an untagged version).
    mv = client.create_model_version(name, source=source, run_id=run_id, tags=tags, await_creation_for=timeout)
    deadline = time.monotonic() + timeout
    while mv.status != "READY":
        if time.monotonic() > deadline or mv.status == "FAILED_REGISTRATION":
            raise RuntimeError(f"model version {name}/{mv.version} is {mv.status}: {mv.status_message}")
        time.sleep(0.2)
        mv = client.get_model_version(name, mv.version)
    return int(mv.version)


def publish_onnx_version(
    url: str,
    name: str,
    onnx_path: Path,
    *,
    sha256: str | object | None = COMPUTED,
    aliases: tuple[str, ...] | list[str] = (),
    config_toml: str | None = None,
) -> int:
    """Publish an ONNX file as a new version of registered model ``name`` and return the version number.

    The file is logged as ``model/model.onnx`` (plus ``model/config.toml`` when given) of a new run, as plain
    artifacts (no MLflow flavor), and the version's source is ``<run artifact URI>/model``. The version is tagged
    ``sha256`` with the file's digest by default, with ``sha256`` when it is a string, and not at all when None.
    Each alias in ``aliases`` is pointed at the new version.
    """
    client = mlflow_client(url)
    data = Path(onnx_path).read_bytes()
    files = {"model/model.onnx": data}
    if config_toml is not None:
        files["model/config.toml"] = config_toml.encode()
    run_id, artifact_uri = log_model_run(client, files)
    digest = hashlib.sha256(data).hexdigest() if sha256 is COMPUTED else sha256
    tags = {"sha256": str(digest)} if digest is not None else None
    version = register_version(client, name, f"{artifact_uri}/model", run_id, tags=tags)
    for alias in aliases:
        client.set_registered_model_alias(name, alias, str(version))
    return version


__all__ = [
    "COMPUTED",
    "MlflowServer",
    "log_model_run",
    "mlflow_client",
    "publish_onnx_version",
    "register_version",
    "start_mlflow_server",
]
