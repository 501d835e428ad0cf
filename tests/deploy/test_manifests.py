"""deploy/: every Kubernetes document validates offline, the CRDs carry their required fields, and the manifests
agree with driftline itself: probe paths are routes, ports match, variables are settings, the config loads."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from tests.deploy.manifests import (
    DEPLOY,
    ROOT,
    Doc,
    container_env,
    documents,
    image_env,
    one,
    pod_spec,
    probes,
    stages,
)

from driftline.config import HttpSettings, ServerSettings, load_settings
from driftline.errors import ConfigError

# The oldest Kubernetes the manifests target (lifecycle, probes, HPA v2, PDB v1 all hold there) and the newest.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version()]
_BUILTIN_GROUPS = {"apps", "policy", "autoscaling"}
RENDER = DEPLOY / "docker" / "render_config.py"


def _is_builtin(doc: Doc) -> bool:
    api = str(doc.body.get("apiVersion", ""))
    return bool(api) and ("/" not in api or api.split("/")[0] in _BUILTIN_GROUPS)


BUILTIN = [d for d in documents() if _is_builtin(d)]
CUSTOM = [d for d in documents() if not _is_builtin(d)]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("doc", BUILTIN, ids=lambda d: d.label)
def test_every_kubernetes_document_validates_strictly(doc: Doc, version: str):
    kubernetes_validate.validate(doc.body, version, strict=True)


def test_the_documents_are_the_expected_set():
    kinds = sorted(d.kind for d in BUILTIN)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Namespace",
            "PersistentVolumeClaim",
            "PodDisruptionBudget",
            "Secret",
            "Secret",
            "Service",
        ]
    )
    assert sorted(d.kind or "values" for d in CUSTOM) == sorted(
        ["ClusterServingRuntime", "InferenceService", "InferenceService", "Kustomization", "ScaledObject", "values"]
    )


def test_the_kustomization_lists_every_manifest_beside_it():
    kustomization = one("Kustomization")
    listed = kustomization.body["resources"]
    beside = sorted(p.name for p in kustomization.path.parent.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == beside
    deployment = pod_spec(one("Deployment"))
    images = {c["image"].rsplit(":", 1)[0] for c in [*deployment["containers"], *deployment["initContainers"]]}
    assert images == {i["name"] for i in kustomization.body["images"]}


def test_kustomize_builds_the_manifests_into_one_namespace():
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (and its kustomize) is not on PATH")
    built = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "kubernetes")], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(built) if d]
    assert len(docs) == len(one("Kustomization").body["resources"]) + 1  # secret.yaml holds two Secrets
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "driftline", doc["metadata"]["name"]


def test_the_runtime_has_the_fields_kserve_requires_and_its_pod_validates():
    runtime = one("ClusterServingRuntime").body
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    spec = runtime["spec"]
    assert spec["protocolVersions"] == ["v2"]
    assert {f["name"] for f in spec["supportedModelFormats"]} == {"onnx", "pytorch"}
    assert all(isinstance(f["version"], str) for f in spec["supportedModelFormats"])
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"  # the name KServe merges the predictor's settings into
    # containers and volumes are core types: validate them as the pod KServe makes of them.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "runtime"},
        "spec": {"containers": spec["containers"], "volumes": spec["volumes"]},
    }
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)
    volumes = {v["name"] for v in spec["volumes"]}
    assert {m["name"] for m in container["volumeMounts"]} <= volumes


@pytest.mark.parametrize("doc", [d for d in CUSTOM if d.kind == "InferenceService"], ids=lambda d: d.label)
def test_each_inference_service_names_the_runtime_and_a_format_it_serves(doc: Doc):
    runtime = one("ClusterServingRuntime").body
    assert doc.body["apiVersion"] == "serving.kserve.io/v1beta1"
    model = doc.body["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert re.match(r"\A[a-z0-9]+://", model["storageUri"])
    # The model is served under the InferenceService's name: it must be a driftline model name.
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", doc.body["metadata"]["name"])


def test_the_scaled_object_and_the_adapter_rule_have_their_required_fields_and_agree_with_the_hpa():
    scaled = one("ScaledObject").body
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == one("Deployment").body["metadata"]["name"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "Value"  # an average already: not to be divided by the replicas
    meta = trigger["metadata"]
    assert meta["serverAddress"].startswith("http")
    float(meta["threshold"])  # KEDA takes it as a string holding a number
    for family in ("driftline_queue_seconds_sum", "driftline_queue_seconds_count"):
        assert family in meta["query"]

    values = next(d for d in CUSTOM if d.kind == "").body
    (rule,) = values["rules"]["custom"]
    assert set(rule) >= {"seriesQuery", "resources", "name", "metricsQuery"}
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    for placeholder in ("<<.LabelMatchers>>", "<<.GroupBy>>"):
        assert placeholder in rule["metricsQuery"]
    (metric,) = one("HorizontalPodAutoscaler").body["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == rule["name"]["as"]
    assert re.search(rule["name"]["matches"], "driftline_queue_seconds_count")
    # KEDA's threshold and the HPA's target are the same seconds (20m = 0.020).
    target = metric["pods"]["target"]["averageValue"]
    assert float(target.removesuffix("m")) / 1000 == float(meta["threshold"])


def _openapi_paths() -> set[str]:
    from driftline.http.app import create_app

    return set(create_app(ServerSettings()).openapi_schema.paths or {})


# In-process, building the app raises Litestar's deprecation of the inferred path-parameter style (filterwarnings =
# error), as in tests/e2e/test_http_surface.py; a served app only logs it.
@pytest.mark.filterwarnings("ignore::litestar.exceptions.LitestarDeprecationWarning")
def test_every_probe_and_the_healthcheck_ask_a_route_driftline_serves():
    routes = _openapi_paths()
    deployment = pod_spec(one("Deployment"))["containers"][0]
    runtime = one("ClusterServingRuntime").body["spec"]["containers"][0]
    paths = {p["httpGet"]["path"] for c in (deployment, runtime) for p in probes(c).values()}
    healthcheck = next(i for i in stages()["run"] if i.startswith("HEALTHCHECK"))
    paths |= set(re.findall(r"/v2/health/\w+", healthcheck))
    assert paths == {"/v2/health/live", "/v2/health/ready"}
    assert paths <= routes
    assert probes(deployment)["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert set(probes(deployment)) == {"startupProbe", "livenessProbe", "readinessProbe"}


def _settings_of(container: dict) -> ServerSettings:
    """The settings the Deployment's server starts with: image variables, then the container's, no config file."""
    env = {**image_env(), **container_env(container)}
    env.pop("DRIFTLINE_CONFIG")
    if "drain_delay_s" not in HttpSettings.__struct_fields__:
        env.pop("DRIFTLINE_HTTP__DRAIN_DELAY_S")
    return load_settings(environ=env)


def test_the_ports_agree_from_the_image_to_the_service():
    deployment = one("Deployment").body
    container = pod_spec(one("Deployment"))["containers"][0]
    (port,) = container["ports"]
    settings = _settings_of(container)
    assert port["containerPort"] == settings.http.port
    assert settings.http.host == "0.0.0.0"  # the container's address, reached through the Service
    assert f"EXPOSE {settings.http.port}" in stages()["run"]
    assert {p["httpGet"]["port"] for p in probes(container).values()} == {port["name"]}
    (service_port,) = one("Service").body["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    assert one("Service").body["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port["containerPort"])


def test_the_runtime_ports_agree():
    runtime = one("ClusterServingRuntime").body["spec"]
    container = runtime["containers"][0]
    args = container["args"]
    port = int(args[args.index("--port") + 1])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert {p["httpGet"]["port"] for p in probes(container).values()} == {port}
    assert runtime["annotations"]["prometheus.kserve.io/port"] == str(port)
    assert args[0] == "{{.Name}}"  # KServe's template: the model is named as the InferenceService


def _manifest_variables() -> dict[str, str]:
    containers = [
        *pod_spec(one("Deployment"))["containers"],
        *pod_spec(one("Deployment"))["initContainers"],
        *one("ClusterServingRuntime").body["spec"]["containers"],
    ]
    found = dict(image_env())
    for container in containers:
        found.update(container_env(container))
    return {k: v for k, v in found.items() if k.startswith("DRIFTLINE_")}


def test_every_driftline_variable_is_a_setting_the_loader_accepts():
    variables = _manifest_variables()
    assert variables.pop("DRIFTLINE_CONFIG") == "/run/driftline/config.toml"  # the file, not a setting
    if "drain_delay_s" not in HttpSettings.__struct_fields__:
        variables.pop("DRIFTLINE_HTTP__DRAIN_DELAY_S")  # test_drain_timing says why
    assert len(variables) >= 6
    for name, value in variables.items():
        load_settings(environ={name: value})  # an unknown name or a bad value is a ConfigError
    with pytest.raises(ConfigError):  # and the loader does refuse one that is not a setting
        load_settings(environ={"DRIFTLINE_HTTP__DRAIN_DELAY": "10"})


def test_drain_timing_fits_the_grace_period():
    if "drain_delay_s" not in HttpSettings.__struct_fields__:
        pytest.skip("[http] drain_delay_s is not a setting yet (it arrives with the drain branch)")
    spec = pod_spec(one("Deployment"))
    container = spec["containers"][0]
    env = container_env(container)
    drain = load_settings(environ={"DRIFTLINE_HTTP__DRAIN_DELAY_S": env["DRIFTLINE_HTTP__DRAIN_DELAY_S"]})
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    serve = (ROOT / "python" / "driftline" / "cli" / "serve.py").read_text()
    graceful = int(re.search(r"timeout_graceful_shutdown=(\d+)", serve).group(1))
    needed = int(pre_stop[1]) + drain.http.drain_delay_s + graceful
    assert spec["terminationGracePeriodSeconds"] >= needed
    # Readiness must fail within the drain delay, or the delay ends before the endpoints drop the pod.
    ready = probes(container)["readinessProbe"]
    assert ready["periodSeconds"] * ready["failureThreshold"] < drain.http.drain_delay_s


def test_the_pod_is_locked_down():
    spec = pod_spec(one("Deployment"))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["runAsUser"] == 10001
    assert "--uid 10001" in " ".join(stages()["run"])
    writable = {"/run/driftline", "/var/lib/driftline", "/tmp"}  # emptyDirs, the pod's own
    for container in [*spec["containers"], *spec["initContainers"]]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]
    mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert writable <= mounts
    assert "WORKDIR /var/lib/driftline" in stages()["run"]


def _render(tmp_path: Path, keys: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run render_config.py as the init container does, over the ConfigMap's TOML and these key files."""
    base = tmp_path / "base.toml"
    base.write_text(one("ConfigMap").body["data"]["config.toml"])
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    for name, key in keys.items():
        (keys_dir / name).write_text(key)
    (keys_dir / "..data").mkdir()  # a Secret volume's machinery, skipped
    return subprocess.run(
        [sys.executable, str(RENDER), "--keys", str(keys_dir), "--base", str(base), str(tmp_path / "config.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_configmap_renders_into_the_config_the_server_loads(tmp_path: Path):
    from driftline.security.keys import hash_key, new_key

    keys = {"admin.admin": new_key(), "gateway.predictor": new_key()}
    done = _render(tmp_path, keys)
    assert done.returncode == 0, done.stderr
    container = pod_spec(one("Deployment"))["containers"][0]
    env = {**image_env(), **container_env(container)}
    env["DRIFTLINE_CONFIG"] = str(tmp_path / "config.toml")
    if "drain_delay_s" not in HttpSettings.__struct_fields__:
        env.pop("DRIFTLINE_HTTP__DRAIN_DELAY_S")
    settings = load_settings(environ=env)
    assert settings.database.startswith("postgresql://")
    assert settings.repository == "/models"
    assert settings.auth.require_for_inference is True
    assert {(k.name, k.role, k.sha256) for k in settings.auth.keys} == {
        ("admin", "admin", hash_key(keys["admin.admin"])),
        ("gateway", "predictor", hash_key(keys["gateway.predictor"])),
    }
    assert settings.capture.directory.startswith("/var/lib/driftline/shared/")
    mounts = {m["mountPath"] for m in container["volumeMounts"] if "subPath" in m}
    assert mounts == {"/models", "/var/lib/driftline/shared"}


def test_no_configmap_key_is_overridden_by_a_variable():
    import tomllib

    from driftline.config import _env_overrides

    toml = tomllib.loads(one("ConfigMap").body["data"]["config.toml"])
    container = pod_spec(one("Deployment"))["containers"][0]
    env = _env_overrides({**image_env(), **container_env(container)})

    def leaves(tree: dict, prefix: str = "") -> set[str]:
        return {
            path
            for key, value in tree.items()
            for path in (leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"})
        }

    assert not leaves(toml) & leaves(env), "a variable wins over the file: the file's value would be dead"


def test_the_secret_placeholders_and_bad_key_files_are_refused(tmp_path: Path):
    secret = next(d for d in BUILTIN if d.kind == "Secret" and d.body["metadata"]["name"] == "driftline-api-keys")
    placeholders = secret.body["stringData"]
    assert all(v.startswith("REPLACE") for v in placeholders.values())
    for case in "abc":
        (tmp_path / case).mkdir()
    done = _render(tmp_path / "a", placeholders)
    assert done.returncode == 2
    assert "placeholder" in done.stderr
    assert not (tmp_path / "a" / "config.toml").exists()
    done = _render(tmp_path / "b", {"admin.root": "x" * 40})
    assert done.returncode == 2
    assert "unknown role 'root'" in done.stderr
    done = _render(tmp_path / "c", {})
    assert done.returncode == 2
    assert "holds no key" in done.stderr
