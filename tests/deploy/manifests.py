"""What the deploy/ tests read: every YAML document under deploy/, the Dockerfile's stages and variables, and the
containers' environment as the settings loader would see it."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
# What a secretKeyRef stands for when a test builds the settings (the real value lives in the cluster).
SECRET_SAMPLES = {("driftline-database", "url"): "postgresql://driftline:pw@postgres.test:5432/driftline"}


@dataclass(frozen=True)
class Doc:
    path: Path
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def label(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.kind or 'values'}/{self.body.get('metadata', {}).get('name', '')}"


def documents() -> list[Doc]:
    """Every YAML document under deploy/, in path order."""
    docs = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        docs.extend(Doc(path, body) for body in yaml.safe_load_all(path.read_text()) if body is not None)
    return docs


def one(kind: str, under: str = "") -> Doc:
    """The one document of ``kind`` (below deploy/``under``)."""
    found = [d for d in documents() if d.kind == kind and d.path.is_relative_to(DEPLOY / under)]
    assert len(found) == 1, f"expected one {kind} under deploy/{under}, found {[d.label for d in found]}"
    return found[0]


def stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions per stage (continuation lines joined), keyed by the stage's name."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if match := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.I):
            current = match.group(1)
        out.setdefault(current, []).append(line)
    return out


def image_env() -> dict[str, str]:
    """The run stage's ENV variables."""
    env: dict[str, str] = {}
    for line in stages()["run"]:
        if line.startswith("ENV "):
            env.update(item.split("=", 1) for item in shlex.split(line[4:]))
    return env


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """A container's env as strings: literal values, and SECRET_SAMPLES for secretKeyRef entries."""
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = SECRET_SAMPLES[(ref["name"], ref["key"])]
    return env


def pod_spec(doc: Doc) -> dict[str, Any]:
    """The pod template's spec of a Deployment."""
    return doc.body["spec"]["template"]["spec"]


def probes(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The container's probes by kind (startupProbe, livenessProbe, readinessProbe)."""
    return {k: v for k, v in container.items() if k.endswith("Probe")}
