"""A real Prometheus (Debian's `prometheus` package) on 127.0.0.1, scraping given targets every second."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import free_port

SCRAPE_INTERVAL_S = 1.0


def require(binary: str) -> str:
    """The path of ``binary`` (prometheus or promtool); skip the test when the package is not installed."""
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed (make tools, or apt-get install prometheus)")
    return path


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    http: httpx.Client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant query's result vector (``[{"metric": {...}, "value": [t, "v"]}, ...]``)."""
        r = self.http.get("/api/v1/query", params={"query": promql})
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def scalar(self, promql: str) -> float | None:
        """The value of a query that yields one series (None: no series)."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def wait_for_scrape_after(self, job: str, moment: float, timeout: float = 30) -> None:
        """Wait until every target of ``job`` was scraped after ``moment`` (Unix seconds), and the scrape is in."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stamps = [float(s["value"][1]) for s in self.query(f'timestamp(up{{job="{job}"}} == 1)')]
            if stamps and min(stamps) > moment:
                return
            time.sleep(SCRAPE_INTERVAL_S / 4)
        raise AssertionError(f"no scrape of {job} after {moment} within {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_prometheus(
    workdir: Path, targets: dict[str, list[str]], rule_files: list[Path] | None = None, timeout: float = 30
) -> Prometheus:
    """Start Prometheus scraping ``targets`` (job name -> ``host:port`` list) every second; optional alerting or
    recording ``rule_files``. Skips when the binary is missing."""
    binary = require("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [f"global:\n  scrape_interval: {SCRAPE_INTERVAL_S:g}s\n  evaluation_interval: {SCRAPE_INTERVAL_S:g}s\n"]
    if rule_files:
        lines.append("rule_files:\n" + "".join(f"  - {p}\n" for p in rule_files))
    lines.append("scrape_configs:\n")
    for job, hosts in targets.items():
        lines.append(f"  - job_name: {job}\n    static_configs:\n      - targets: [{', '.join(hosts)}]\n")
    config = workdir / "prometheus.yml"
    config.write_text("".join(lines))
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    prom = Prometheus(proc, port, log, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if prom.http.get("/-/ready").status_code == 200:
                return prom
        time.sleep(0.1)
    prom.stop()
    raise RuntimeError(f"prometheus not ready after {timeout}s:\n{log.read_text()}")
