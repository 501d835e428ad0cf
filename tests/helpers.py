"""Test helpers: building repositories of toy models."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

from driftline.repository.demo import (
    CLASSIFIER_TORCH_SIGNATURE,
    build_classifier_onnx,
    build_classifier_torchscript,
    build_mlp_onnx,
)


def write_config(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(textwrap.dedent(text))


def build_test_repository(root: Path, weights, *, torch: bool = False, slow: bool = False) -> Path:
    """`iris` (ONNX classifier, versions 1 and 2), `mlp` (32 -> 4), optionally `iris_torch` and a slow `heavy` model."""
    w, b = weights
    build_classifier_onnx(root / "iris" / "1" / "model.onnx", w, b)
    build_classifier_onnx(root / "iris" / "2" / "model.onnx", w * 2, b)
    write_config(root / "iris", 'max_batch_size = 16\nversion_policy = { policy = "all" }\n')
    build_mlp_onnx(root / "mlp" / "1" / "model.onnx", 32, 64, 2, 4, seed=1)
    write_config(root / "mlp", "max_batch_size = 32\n[batching]\nmax_queue_delay_us = 200\n")
    if torch:
        build_classifier_torchscript(root / "iris_torch" / "1" / "model.pt", w, b)
        write_config(root / "iris_torch", TORCH_CONFIG)
    if slow:
        # Big enough that one 64-row batch keeps the single instance busy for milliseconds.
        build_mlp_onnx(root / "heavy" / "1" / "model.onnx", 256, 1024, 3, 16, seed=2)
        write_config(root / "heavy", "max_batch_size = 64\n[batching]\nmax_queue_size = 2\nmax_queue_delay_us = 0\n")
    return root


TORCH_CONFIG = "max_batch_size = 16\n" + CLASSIFIER_TORCH_SIGNATURE


ADMIN_KEY = "dl_test_admin_key"
VIEWER_KEY, PREDICTOR_KEY = "dl_test_viewer_key", "dl_test_predictor_key"


def viewer_and_predictor_keys() -> str:
    """``[[auth.keys]]`` tables of a viewer (VIEWER_KEY) and a predictor (PREDICTOR_KEY), for a server TOML that
    write_server_config gives its admin key."""
    from driftline.security.keys import hash_key

    return "".join(
        f'[[auth.keys]]\nname = "{role}"\nrole = "{role}"\nsha256 = "{hash_key(key)}"\n'
        for role, key in (("viewer", VIEWER_KEY), ("predictor", PREDICTOR_KEY))
    )


def write_server_config(path: Path, extra: str = "") -> Path:
    """A server TOML with one admin key (``ADMIN_KEY``) and ``extra`` appended."""
    from driftline.security.keys import hash_key

    path.write_text(f'{extra}\n[[auth.keys]]\nname = "admin"\nrole = "admin"\nsha256 = "{hash_key(ADMIN_KEY)}"\n')
    return path


def assert_one_line_refusal(out, *words: str) -> str:
    """A CLI refusal as the house rule has it: exit 2, nothing on stdout, one ``driftline: error:`` line on
    stderr naming ``words``. Returns the line."""
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("driftline: error: ")
    for word in words:
        assert word in lines[0]
    return lines[0]


def build_evaluation_repository(root: Path, weights) -> Path:
    """Models with a ``[quality]`` table, for ``driftline evaluate``: ``iris`` (three classes, versions 1 and 2),
    ``binary`` (two classes, positive 1), ``reg`` (a regressor: ``x`` [-1, 4] -> ``y`` [-1, 1]) and ``mlp``
    (no ``[quality]``)."""
    w, b = weights
    build_test_repository(root, weights)
    write_config(root / "iris", IRIS_QUALITY)
    build_classifier_onnx(root / "binary" / "1" / "model.onnx", w[:, :2], b[:2])
    write_config(root / "binary", BINARY_QUALITY)
    build_mlp_onnx(root / "reg" / "1" / "model.onnx", 4, 8, 1, 1, seed=4)
    write_config(root / "reg", '[quality]\ntask = "regression"\nlabel_output = "y"\n')
    return root


IRIS_QUALITY = """\
max_batch_size = 16
version_policy = { policy = "all" }
[quality]
task = "classification"
label_output = "label"
score_output = "probabilities"
classes = [0, 1, 2]
"""
BINARY_QUALITY = """\
[quality]
task = "classification"
label_output = "label"
score_output = "probabilities"
classes = [0, 1]
positive = 1
"""


def metric(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of one sample of a Prometheus exposition: ``name`` with exactly ``labels`` (None when absent)."""
    want = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    for line in text.splitlines():
        if line.startswith(name + want + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def exited_unreaped(proc: subprocess.Popen[Any], timeout: float = 0.0) -> bool:
    """Whether ``proc`` exits within ``timeout`` seconds, without reaping it.

    A process started with ``start_new_session`` leads a group whose id is its pid. Its zombie keeps that number
    until ``wait()``; after a reap the number is free, and a ``killpg`` reaches whatever new group took it: on a busy
    run of the suite that was another test's MLflow server. So signal the group first, reap after.
    """
    deadline = time.monotonic() + timeout
    while True:
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
