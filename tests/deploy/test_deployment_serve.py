"""The Deployment's config (the ConfigMap's TOML with the Secret's keys rendered in) on a real server on
127.0.0.1: probes and /metrics answer without a key, inference needs the predictor key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.deploy.manifests import DEPLOY, one, pod_spec, probes
from tests.e2e.conftest import start_server
from tests.helpers import build_test_repository

from driftline.security.keys import new_key

GOOD = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


# A server start each: 4-12 s on 2 busy cores.
@pytest.mark.slow
@pytest.mark.e2e
def test_the_rendered_config_serves_probes_openly_and_inference_with_the_key(tmp_path: Path, iris_weights):
    keys = tmp_path / "keys"
    keys.mkdir()
    admin, predictor = new_key(), new_key()
    (keys / "admin.admin").write_text(admin)
    (keys / "gateway.predictor").write_text(predictor)
    base = tmp_path / "base.toml"
    base.write_text(one("ConfigMap").body["data"]["config.toml"])
    config = tmp_path / "config.toml"
    render = [sys.executable, str(DEPLOY / "docker" / "render_config.py"), "--keys", str(keys), "--base", str(base)]
    subprocess.run([*render, str(config)], check=True, timeout=60)
    root = build_test_repository(tmp_path / "models", iris_weights)
    server = start_server(root, tmp_path, {"DRIFTLINE_CONFIG": str(config)})
    try:
        container = pod_spec(one("Deployment"))["containers"][0]
        for probe in probes(container).values():
            assert httpx.get(f"{server.url}{probe['httpGet']['path']}", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 200
        url = f"{server.url}/v2/models/iris/infer"
        assert httpx.post(url, json=GOOD, timeout=10).status_code == 401
        answer = httpx.post(url, json=GOOD, headers={"Authorization": f"Bearer {predictor}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        # The admin key reaches the admin API; the predictor's does not.
        keys_url = f"{server.url}/v1/admin/keys"
        assert httpx.get(keys_url, headers={"Authorization": f"Bearer {admin}"}, timeout=10).status_code == 200
        assert httpx.get(keys_url, headers={"Authorization": f"Bearer {predictor}"}, timeout=10).status_code == 403
    finally:
        server.stop()
