"""Triton's own HTTP client against a real driftline server: health, metadata, config, inference, stats, repository."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(server):
    c = httpclient.InferenceServerClient(server.hostport, concurrency=4)
    yield c
    c.close()


def direct_onnx(server, model: str, version: int, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(server.root / model / str(version) / "model.onnx"))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"x": x}), strict=True))


def iris_input(rows: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(5, 1.5, (rows, 4)).astype(np.float32)


def test_health_and_server_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "driftline"
    assert {"binary_tensor_data", "statistics", "model_repository", "model_configuration"} <= set(meta["extensions"])


def test_model_metadata_and_readiness(client):
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", "1")
    assert not client.is_model_ready("iris", "7")
    assert not client.is_model_ready("nope")
    meta = client.get_model_metadata("iris")
    assert meta["versions"] == ["1", "2"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["probabilities", "label"]
    assert meta["parameters"] == {"device": "cpu", "notes": []}


def test_model_config_is_tritons_shape(client):
    cfg = client.get_model_config("iris")
    assert cfg["max_batch_size"] == 16
    assert cfg["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [4]}]
    assert cfg["output"][1] == {"name": "label", "data_type": "TYPE_INT64", "dims": []}
    assert "dynamic_batching" in cfg
    assert cfg["instance_group"][0]["kind"] == "KIND_CPU"


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("version", ["1", "2"])
def test_onnx_inference_equals_direct_run(server, client, binary, version):
    x = iris_input(7, seed=int(version))
    inp = httpclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("probabilities", "label")]
    result = client.infer("iris", [inp], model_version=version, outputs=outputs, request_id="req-42")
    expected = direct_onnx(server, "iris", int(version), x)
    np.testing.assert_array_equal(result.as_numpy("probabilities"), expected["probabilities"])
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])
    response = result.get_response()
    assert response["id"] == "req-42"
    assert response["model_version"] == version


def test_default_version_is_the_newest_and_output_selection(server, client):
    x = iris_input(3)
    inp = httpclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    result = client.infer("iris", [inp], outputs=[httpclient.InferRequestedOutput("label", binary_data=False)])
    assert result.get_response()["model_version"] == "2"
    assert result.as_numpy("probabilities") is None
    np.testing.assert_array_equal(result.as_numpy("label"), direct_onnx(server, "iris", 2, x)["label"])


def test_torch_inference_equals_direct_run(server, client):
    torch = pytest.importorskip("torch")
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        module = torch.jit.load(str(server.root / "iris_torch" / "1" / "model.pt"))
    x = iris_input(6, seed=9)
    with torch.inference_mode():
        probs, label = module(torch.from_numpy(x))
    for binary in (False, True):
        inp = httpclient.InferInput("x", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        result = client.infer("iris_torch", [inp])
        np.testing.assert_array_equal(result.as_numpy("probabilities"), probs.numpy())
        np.testing.assert_array_equal(result.as_numpy("label"), label.numpy())
    assert client.get_model_metadata("iris_torch")["platform"] == "pytorch_libtorch"


def test_concurrent_requests_are_batched_and_answered(server, client):
    xs = [np.random.default_rng(i).normal(size=(1, 32)).astype(np.float32) for i in range(64)]
    pending = []
    for x in xs:
        inp = httpclient.InferInput("x", [1, 32], "FP32")
        inp.set_data_from_numpy(x, binary_data=True)
        pending.append(client.async_infer("mlp", [inp]))
    results = [p.get_result(timeout=60) for p in pending]
    expected = direct_onnx(server, "mlp", 1, np.concatenate(xs))["y"]
    got = np.concatenate([r.as_numpy("y") for r in results])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    stats = client.get_inference_statistics("mlp")["model_stats"][0]
    assert stats["inference_stats"]["success"]["count"] >= 64
    assert stats["inference_count"] >= 64
    assert sum(b["compute_infer"]["count"] for b in stats["batch_stats"]) == stats["execution_count"]


def test_statistics_extension(client):
    x = iris_input(2)
    inp = httpclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    client.infer("iris", [inp], model_version="1")
    stats = client.get_inference_statistics("iris", "1")["model_stats"]
    assert len(stats) == 1
    s = stats[0]["inference_stats"]
    for key in (
        "success",
        "fail",
        "queue",
        "compute_input",
        "compute_infer",
        "compute_output",
        "cache_hit",
        "cache_miss",
    ):
        assert {"count", "ns"} <= set(s[key])
    assert s["success"]["count"] >= 1
    assert s["compute_infer"]["ns"] > 0
    all_stats = client.get_inference_statistics()["model_stats"]
    assert {(m["name"], m["version"]) for m in all_stats} >= {("iris", "1"), ("iris", "2"), ("mlp", "1")}


def test_repository_extension_unload_and_load(client):
    index = {(m["name"], m.get("version")): m["state"] for m in client.get_model_repository_index()}
    assert index[("iris", "1")] == "READY"
    client.unload_model("mlp")
    assert not client.is_model_ready("mlp")
    inp = httpclient.InferInput("x", [1, 32], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 32), np.float32))
    with pytest.raises(InferenceServerException, match="mlp"):
        client.infer("mlp", [inp])
    client.load_model("mlp")
    assert client.is_model_ready("mlp")
    with pytest.raises(InferenceServerException, match="nope"):
        client.load_model("nope")
