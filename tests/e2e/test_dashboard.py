"""The dashboard on a real keyed server with capture on, after real traffic, labels and KPIs went through the API:
sign-in and its cookie session (signed, expiring, ended by a revoked key), CSRF refusals, which views each role is
linked and served, bad input answered 4xx, the audit filters; then real headless Chromium (network cut off) signs
in as each role, renders each page without a console error, and the numbers on the page are the API's.
Screenshots land in $DRIFTLINE_TEST_ARTIFACTS or test-artifacts/ui/."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import polars as pl
import pytest
from tests.e2e.chromium import CHROMIUM, Browser
from tests.e2e.conftest import start_server
from tests.helpers import IRIS_QUALITY, build_test_repository, write_config

from driftline.repository.demo import IRIS_FEATURES, iris_like_data
from driftline.security.keys import hash_key

pytestmark = pytest.mark.e2e

KEYS = {role: f"dl_dash_{role}_key" for role in ("viewer", "predictor", "operator", "admin")}
#: The views each role must be linked and served (the contract's mapping); every other view is a 403.
SEES = {
    "viewer": {"business"},
    "predictor": {"business", "science"},
    "operator": {"operations", "science", "business"},
    "admin": {"operations", "science", "business", "audit"},
}
VIEWS = ("operations", "science", "business", "audit")
REQUESTS = {1: 40, 2: 16}  # requests per iris version (v1 closes a drift window of 30 rows)
ARTIFACTS = Path(os.environ.get("DRIFTLINE_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts") / "ui"


def _auth(role: str) -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[role]}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("dashboard")
    root = build_test_repository(workdir / "models", iris_weights)
    write_config(root / "iris", IRIS_QUALITY)
    x_ref, _ = iris_like_data(1000, seed=11)
    pl.DataFrame({n: x_ref[:, i] for i, n in enumerate(IRIS_FEATURES)}).write_parquet(
        root / "iris" / "reference.parquet"
    )
    lines = [
        "refresh_interval_s = 0.2",
        "[drift]",
        "window_rows = 30",
        "[capture]",
        "enabled = true",
        f'directory = "{workdir / "captures"}"',
        "segment_seconds = 3600",
    ]
    for role, key in KEYS.items():
        lines += ["[[auth.keys]]", f'name = "{role}"', f'role = "{role}"', f'sha256 = "{hash_key(key)}"']
    config = workdir / "server.toml"
    config.write_text("\n".join(lines) + "\n")
    srv = start_server(root, workdir, {"DRIFTLINE_CONFIG": str(config)})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def traffic(server, client):
    """Inference on both iris versions, one refused request, labels for every row and a KPI for most of them."""
    x, y = iris_like_data(sum(REQUESTS.values()), seed=5)
    labels, kpis, i = [], [], 0
    for version, n in REQUESTS.items():
        for _ in range(n):
            rid = f"r{i}"
            body = {"id": rid, "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": x[i].tolist()}]}
            r = client.post(f"/v2/models/iris/versions/{version}/infer", json=body, headers=_auth("predictor"))
            assert r.status_code == 200, r.text
            labels.append({"id": rid, "row": 0, "target": int(y[i])})
            if i % 4:
                kpis.append({"id": rid, "name": "revenue", "value": float(i % 7)})
            i += 1
    bad = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    assert client.post("/v2/models/iris/infer", json=bad, headers=_auth("predictor")).status_code == 400
    # Erasing an entity nobody has writes every queued capture first, so labels and KPIs find their rows.
    assert client.delete("/v1/captures", params={"entity": "nobody"}, headers=_auth("admin")).status_code == 200
    r = client.post("/v1/models/iris/feedback", json={"feedback": labels}, headers=_auth("predictor"))
    assert r.status_code == 200, r.text
    r = client.post("/v1/models/iris/kpi", json={"kpi": kpis}, headers=_auth("predictor"))
    assert r.status_code == 200, r.text
    for name in ("dash-a", "dash-b"):
        r = client.post("/v1/admin/keys", json={"name": name, "role": "viewer"}, headers=_auth("admin"))
        assert r.status_code in (200, 201), r.text
    return len(labels)


def _origin(server) -> dict[str, str]:
    return {"origin": server.url}


def _login(client: httpx.Client, data: dict[str, str] | None = None, **kw) -> httpx.Response:
    """POST /ui/login; the client keeps no cookie from it (each test says which session it sends)."""
    r = client.post("/ui/login", data=data, **kw)
    client.cookies.clear()
    return r


def sign_in(client: httpx.Client, server, key: str) -> str:
    r = _login(client, {"key": key}, headers=_origin(server))
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/ui"
    return r.cookies["driftline_session"]


def _page(client: httpx.Client, path: str, token: str | None) -> httpx.Response:
    return client.get(path, headers={"cookie": f"driftline_session={token}"} if token else None)


def test_sign_in_sets_a_strict_http_only_cookie_and_refuses_bad_forms(server, client):
    r = client.get("/ui")
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login"
    form = client.get("/ui/login")
    assert form.status_code == 200
    assert "name='key'" in form.text
    csp = form.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "http" not in csp
    assert form.headers["x-content-type-options"] == "nosniff"
    assert form.headers["referrer-policy"]
    # CSRF: a form posted from no page, or from another site's page, is refused before the key is looked at.
    assert _login(client, {"key": KEYS["admin"]}).status_code == 403
    evil = {"origin": "http://evil.example"}
    assert _login(client, {"key": KEYS["admin"]}, headers=evil).status_code == 403
    referer = {"referer": "http://evil.example/ui/login"}
    assert _login(client, {"key": KEYS["admin"]}, headers=referer).status_code == 403
    assert client.post("/ui/logout", headers=evil).status_code == 403
    ok_referer = {"referer": f"{server.url}/ui/login"}
    assert _login(client, {"key": KEYS["viewer"]}, headers=ok_referer).status_code == 303
    r = _login(client, {"key": "dl_not_a_key"}, headers=_origin(server))
    assert r.status_code == 401
    assert "not known" in r.text
    assert "set-cookie" not in r.headers
    assert _login(client, {}, headers=_origin(server)).status_code == 400
    assert _login(client, {"key": "x" * 600}, headers=_origin(server)).status_code == 400
    r = _login(client, content=b"\xff\xfe", headers={**_origin(server), "content-type": "text/plain"})
    assert r.status_code == 400
    r = _login(client, {"key": KEYS["operator"]}, headers=_origin(server))
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/ui" in cookie
    assert "max-age=" in cookie
    token = r.cookies["driftline_session"]
    assert _page(client, "/ui", token).status_code == 200
    # Anything changed in the token is no session: back to the sign-in form.
    body, mac = token.split(".")
    for forged in (f"{body}x.{mac}", f"{body}.{mac[:-1]}", "garbage", "a" * 4000):
        r = _page(client, "/ui/operations", forged)
        assert r.status_code == 303, forged[:40]
        assert r.headers["location"] == "/ui/login", forged[:40]
    out = client.post("/ui/logout", headers={**_origin(server), "cookie": f"driftline_session={token}"})
    assert out.status_code == 303
    assert "max-age=0" in out.headers["set-cookie"].lower()


def test_each_role_is_linked_and_served_only_its_views(server, client, traffic):
    for role, sees in SEES.items():
        token = sign_in(client, server, KEYS[role])
        home = _page(client, "/ui", token)
        assert home.status_code == 200
        linked = set(re.findall(r"href='/ui/(\w+)'", home.text))
        assert linked == sees, (role, linked)
        assert f"· {role}<" in home.text
        for view in VIEWS:
            r = _page(client, f"/ui/{view}", token)
            assert r.status_code == (200 if view in sees else 403), (role, view, r.text[:300])
            assert "content-security-policy" in r.headers
            if view not in sees:
                assert "needs the role" in r.text
    assert _page(client, "/ui/nope", sign_in(client, server, KEYS["admin"])).status_code == 404


def test_bad_query_parameters_are_4xx_pages(server, client, traffic):
    token = sign_in(client, server, KEYS["admin"])
    for path in (
        "/ui/operations?hours=0",
        "/ui/operations?hours=100000",
        "/ui/business?hours=abc",
        "/ui/science?hours=-1",
        "/ui/science?hours=%C2%B2",  # "²": a digit to str.isdigit, not to int()
        "/ui/audit?action=nope",
        "/ui/audit?since=yesterday",
        "/ui/audit?before=-3",
        "/ui/audit?actor=" + "a" * 300,
    ):
        r = _page(client, path, token)
        assert r.status_code == 400, (path, r.status_code, r.text[:200])
        assert r.headers["content-type"].startswith("text/html")
        assert "query parameter" in r.text


def test_the_audit_trail_filters(server, client, traffic):
    token = sign_in(client, server, KEYS["admin"])
    api = client.get("/v1/admin/audit", params={"action": "key_created"}, headers=_auth("admin")).json()
    expected = {str(e["id"]) for e in api["events"]} if isinstance(api, dict) else {str(e["id"]) for e in api}
    page = _page(client, "/ui/audit?action=key_created", token).text
    ids = set(re.findall(r"<tr><td class='num'>(\d+)</td>", page))
    assert ids == expected
    assert len(ids) == 2
    page = _page(client, "/ui/audit?actor=key:admin&model=nothing-here", token).text
    assert "no event matches" in page
    future = _page(client, "/ui/audit?since=2999-01-01T00:00Z", token).text
    assert "no event matches" in future
    assert re.findall(r"<tr><td class='num'>(\d+)</td>", _page(client, "/ui/audit?actor=key:admin", token).text)


def test_a_revoked_keys_session_stops_working(server, client, traffic):
    r = client.post("/v1/admin/keys", json={"name": "leaving", "role": "operator"}, headers=_auth("admin"))
    key = r.json()["key"]
    deadline = time.monotonic() + 10
    while _login(client, {"key": key}, headers=_origin(server)).status_code != 303:
        assert time.monotonic() < deadline, "the new key never reached the dashboard's key ring"
        time.sleep(0.1)
    token = sign_in(client, server, key)
    assert _page(client, "/ui/operations", token).status_code == 200
    assert client.delete("/v1/admin/keys/leaving", headers=_auth("admin")).status_code == 200
    deadline = time.monotonic() + 10
    while _page(client, "/ui/operations", token).status_code == 200:
        assert time.monotonic() < deadline, "the revoked key's session still works"
        time.sleep(0.1)
    assert _page(client, "/ui/operations", token).headers["location"] == "/ui/login"


def test_a_server_without_keys_shows_every_view_under_an_open_access_banner(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("dashboard-open")
    # Behind a proxy that ends TLS, the browser's Origin is the public address, not the one the server listens on.
    public = {"DRIFTLINE_HTTP__PUBLIC_URL": "https://dash.example/"}
    srv = start_server(build_test_repository(workdir / "models", iris_weights), workdir, public)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert c.post("/ui/logout", headers={"origin": "https://dash.example"}).status_code == 303
            assert c.post("/ui/logout", headers={"referer": "https://dash.example/ui"}).status_code == 303
            assert c.post("/ui/logout", headers={"origin": "http://dash.example"}).status_code == 403
            home = c.get("/ui")
            assert home.status_code == 200
            assert "id='open-access'" in home.text
            assert set(re.findall(r"href='/ui/(\w+)'", home.text)) == set(VIEWS)
            for view in VIEWS:
                r = c.get(f"/ui/{view}")
                assert r.status_code == 200, (view, r.text[:300])
                assert "id='open-access'" in r.text
            assert "Sign out" not in home.text
            r = c.post("/ui/login", data={"key": "anything"}, headers={"origin": srv.url})
            assert r.status_code == 303
            assert r.headers["location"] == "/ui"
            assert "set-cookie" not in r.headers
    finally:
        srv.stop()


@pytest.mark.slow
def test_a_session_holds_on_every_worker_and_across_a_restart(tmp_path_factory, iris_weights):
    workdir = tmp_path_factory.mktemp("dashboard-workers")
    root = build_test_repository(workdir / "models", iris_weights)
    config = workdir / "server.toml"
    config.write_text(f'[[auth.keys]]\nname = "ops"\nrole = "operator"\nsha256 = "{hash_key(KEYS["operator"])}"\n')
    args = ["--config", str(config)]
    srv = start_server(root, workdir, extra_args=[*args, "--workers", "2"])
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            token = sign_in(c, srv, KEYS["operator"])
        # Fresh connections spread over both workers; each checks the token with the secret in the store.
        for _ in range(16):
            with httpx.Client(base_url=srv.url, timeout=30) as fresh:
                assert _page(fresh, "/ui/operations", token).status_code == 200
        # Each worker saves its CPU and memory every few seconds: both are in the history soon.
        deadline = time.monotonic() + 15
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            while True:
                workers = _page(c, "/ui/operations", token).text.split("id='workers'")[1].split("</table>")[0]
                if workers.count("<tr>") - 1 == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        assert workers.count("<tr>") - 1 == 2, workers
    finally:
        srv.stop()
    srv = start_server(root, workdir, extra_args=args)
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            assert _page(c, "/ui/operations", token).status_code == 200  # the same secret after the restart
    finally:
        srv.stop()


def _number(text: str | None) -> float:
    assert text is not None
    return float(text.replace(",", "").strip())


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make tools installs it)")
def test_chromium_renders_each_roles_pages_with_the_apis_numbers(server, client, traffic, tmp_path):
    stats = {
        v: client.get(f"/v2/models/iris/versions/{v}/stats", headers=_auth("viewer")).json()["model_stats"][0]
        for v in REQUESTS
    }
    kpi = client.get("/v1/models/iris/kpi", headers=_auth("viewer")).json()
    quality = client.get("/v1/models/iris/quality", headers=_auth("viewer")).json()
    browser = Browser(tmp_path / "profile")
    try:
        # Sign in through the form once, as a person would.
        browser.open(f"{server.url}/ui/login")
        browser.evaluate(f"document.getElementById('key').value = {KEYS['admin']!r}")
        since = len(browser.events)
        browser.evaluate("document.querySelector('form').submit()")
        browser._wait_for("Page.loadEventFired", since)
        assert browser.evaluate("location.pathname") == "/ui"
        assert set(browser.texts("nav a")) >= {"Operations", "Data science", "Business", "Audit trail"}
        for role, sees in SEES.items():
            browser.clear_cookies()
            browser.set_cookie("driftline_session", sign_in(client, server, KEYS[role]), server.url)
            since = len(browser.events)
            browser.open(f"{server.url}/ui")
            linked = {
                h.rsplit("/", 1)[1]
                for h in browser.evaluate("[...document.querySelectorAll('nav a')].map(a => a.href)")
            }
            assert linked - {"ui"} == sees, (role, linked)
            for view in sorted(sees):
                browser.open(f"{server.url}/ui/{view}")
                assert browser.text("h1"), (role, view)
                drawn = browser.evaluate("document.querySelectorAll('figure.chart svg :is(polyline, circle)').length")
                assert drawn >= {"operations": 5, "science": 1, "business": 2, "audit": 0}[view], (view, drawn)
                browser.screenshot(ARTIFACTS / f"{role}-{view}.png")
                if view == "operations":
                    rows = browser.rows("#versions")
                    shown = {int(r[1]): int(r[2].replace(",", "")) for r in rows if r[0] == "iris"}
                    for v, s in stats.items():
                        answered = s["inference_stats"]["success"]["count"] + s["inference_stats"]["fail"]["count"]
                        assert shown[v] == answered == REQUESTS[v], (shown, v)
                    slos = browser.rows("#slos")
                    api = client.get("/v1/ops/slo", headers=_auth("viewer")).json()
                    assert [(r[0], r[1].split()[0]) for r in slos] == [(a["model"], a["kind"]) for a in api]
                    assert [r[4] for r in slos] == ["-" if a["sli"] is None else f"{a['sli']:.2%}" for a in api]
                    assert browser.texts("#workers tbody tr"), "no worker's CPU and memory"
                if view == "business":
                    for version in kpi["kpis"][0]["versions"]:
                        cells = browser.rows("#kpi-iris-revenue")
                        row = next(c for c in cells if c[0] == f"v{version['version']}")
                        assert int(row[1].replace(",", "")) == version["events"]
                        assert abs(_number(row[2]) - version["sum"]) < 1e-3
                    traffic_rows = browser.texts("#traffic-iris tbody tr td:nth-child(2)")
                    assert sorted(int(t.replace(",", "")) for t in traffic_rows) == sorted(REQUESTS.values())
                if view == "science":
                    cells = browser.rows("#quality-iris")
                    labeled = {int(c[0]): int(c[2].replace(",", "")) for c in cells}
                    assert labeled == {v["version"]: v["labeled"] for v in quality["versions"]}
                    assert sum(labeled.values()) == traffic
                    assert browser.texts("#drift-iris-1 tbody tr td:first-child")[:4] == list(IRIS_FEATURES)
            assert browser.errors(since) == [], role
    finally:
        browser.close()
    assert (ARTIFACTS / "admin-operations.png").stat().st_size > 10_000
