"""deploy/Dockerfile's install steps, run here as the image runs them (no Docker engine needed): the build stage's
script builds the wheel with maturin from the files the stage copies, the run stage's script installs it into a
clean virtualenv, and that virtualenv's `driftline serve` answers readiness and the image's HEALTHCHECK.

The Rust build reuses cargo's target directory (CARGO_TARGET_DIR, else the checkout's target/): with the
dependencies compiled there, the build is the driftline crate alone (about 30 s on 2 cores); the install downloads
the wheel's dependencies (onnxruntime, polars, pyarrow, scipy, psycopg, ...) unless pip's cache has them."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
from tests.deploy.manifests import DEPLOY, ROOT, image_env, stages
from tests.e2e.conftest import Server, free_port, wait_until_answering

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _copied_sources() -> list[str]:
    """What the build stage COPYs from the context (its scripts aside), as paths in the repository."""
    sources = []
    for line in stages()["build"]:
        if line.startswith("COPY ") and "--from" not in line:
            *srcs, _dest = shlex.split(line)[1:]
            sources += [s for s in srcs if not s.startswith("deploy/")]
    return sources


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> str:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _clean_env(bin_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh container: no PYTHONPATH (the installed wheel must be what runs), no
    DRIFTLINE_* of the test run, the venv first on PATH (as the image's python is)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLINE_", "PYTHON", "VIRTUAL_ENV"))}
    return {**keep, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **extra}


@pytest.mark.timeout(1800)
def test_the_image_steps_build_install_and_serve(tmp_path: Path):
    if shutil.which("cargo") is None:
        pytest.skip("no Rust toolchain on PATH: the build stage installs one, this machine has none")
    build, run = stages()["build"], stages()["run"]
    assert any("build-wheel.sh /wheels" in line for line in build if line.startswith("RUN"))
    assert any('install-wheel.sh /wheels "${EXTRAS}"' in line for line in run if line.startswith("RUN"))
    extras = next(re.match(r"ARG EXTRAS=(\S+)", line) for line in run if line.startswith("ARG EXTRAS")).group(1)

    # The build context as the build stage sees it: only what it copies (.dockerignore keeps *.so out as well).
    context = tmp_path / "src"
    context.mkdir()
    for source in _copied_sources():
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        else:
            shutil.copy2(src, context / source)
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))

    builder = tmp_path / "build-venv"
    venv.create(builder, with_pip=True)
    env = _clean_env(builder / "bin", CARGO_TARGET_DIR=target)
    _run(["sh", str(DEPLOY / "docker" / "build-wheel.sh"), str(tmp_path / "wheels")], env, context, 1200)
    assert len(list((tmp_path / "wheels").glob("driftline-*.whl"))) == 1

    runner = tmp_path / "run-venv"
    venv.create(runner, with_pip=True)
    env = _clean_env(runner / "bin")
    _run(["sh", str(DEPLOY / "docker" / "install-wheel.sh"), str(tmp_path / "wheels"), extras], env, tmp_path, 900)
    python = str(runner / "bin" / "python")
    where = _run([python, "-c", "import driftline._core, psycopg; print(driftline._core.__file__)"], env, tmp_path, 60)
    assert where.strip().startswith(str(runner)), where  # the wheel's extension, not the checkout's
    assert "serve" in _run([str(runner / "bin" / "driftline"), "--help"], env, tmp_path, 60)

    # The image's variables as they are: 0.0.0.0 without a key is refused before anything loads.
    work = tmp_path / "work"
    work.mkdir()
    image = {**image_env(), "DRIFTLINE_REPOSITORY": str(work / "models")}
    refused = subprocess.run(
        [str(runner / "bin" / "driftline"), "serve", "--demo"],
        env={**env, **image},
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "no API key exists" in refused.stderr

    # On loopback (what the image's 0.0.0.0 becomes here) the installed server serves the demo models.
    port = free_port()
    serve_env = {**env, **image, "DRIFTLINE_HTTP__HOST": "127.0.0.1", "DRIFTLINE_HTTP__PORT": str(port)}
    log = work / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(runner / "bin" / "driftline"), "serve", "--demo"],
            env=serve_env,
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, port, work / "models", log)
    try:
        wait_until_answering(server, "/v2/health/ready", timeout=120)
        healthcheck = next(line for line in run if line.startswith("HEALTHCHECK"))
        command = re.search(r"CMD (\[.*\])", healthcheck).group(1)
        _run([python if arg == "python" else arg for arg in json.loads(command)], serve_env, work, 30)
    finally:
        server.stop()
    # SIGTERM drains and stops it cleanly (uvicorn then re-raises the signal, so the exit status says SIGTERM).
    assert "Application shutdown complete" in log.read_text()
