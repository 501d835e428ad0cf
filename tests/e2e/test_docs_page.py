"""/docs renders in a real headless Chromium that can reach nothing but the loopback interface: the UI's scripts and
styles come from the server itself (driftline/http/ui), never from a CDN."""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def srv(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("docs")
    server = start_server(build_test_repository(workdir / "models", iris_weights), workdir)
    yield server
    server.stop()


def test_the_page_names_no_outside_address(srv):
    page = httpx.get(f"{srv.url}/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    assert urls, "the page loads no assets?"
    assert all(u.startswith("/docs/ui/") for u in urls), urls
    for url in urls:
        asset = httpx.get(f"{srv.url}{url}", timeout=10)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make tools installs it)")
def test_the_page_renders_the_api_with_the_network_cut_off(srv, tmp_path):
    # Every name but 127.0.0.1 fails to resolve, and every non-loopback request goes to a proxy that is not there.
    command = [
        str(CHROMIUM),
        *("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"),
        *("--disable-background-networking", "--disable-component-update", "--no-first-run"),
        f"--user-data-dir={tmp_path / 'profile'}",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=20000",
        "--dump-dom",
        f"{srv.url}/docs",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    dom = run.stdout
    # Swagger UI has run: the operations of the schema are in the rendered page, not just in its inline JSON.
    summaries = set(re.findall(r'opblock-summary-description">([^<]+)<', dom))
    assert {"Inference", "Server liveness", "Prometheus metrics"} <= summaries, sorted(summaries)[:20]
    assert "Authorize" in dom  # the API-key schemes are offered
