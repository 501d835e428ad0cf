"""ArtifactCache against real folders served by DirectorySource."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from driftline.registry import (
    ArtifactCache,
    DirectorySource,
    IntegrityError,
    RegistryUnavailable,
    RemoteVersion,
)
from driftline.repository.demo import build_mlp_onnx


def version_folder(root: Path, model: str, n: int, seed: int) -> Path:
    folder = root / model / str(n)
    build_mlp_onnx(folder / "model.onnx", 4, 8, 1, 3, seed=seed)
    (folder / "config.txt").write_text(f"seed {seed}\n")
    return folder


def remote(source: DirectorySource, folder: Path, sha256: str | None = None) -> RemoteVersion:
    return RemoteVersion(model=folder.parent.name, version=int(folder.name), ref=str(folder), sha256=sha256)


def entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def cache(tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache")


def test_store_verifies_and_reuses_same_content(registry: Path, cache: ArtifactCache):
    one = version_folder(registry, "iris", 1, seed=7)
    three = version_folder(registry, "iris", 3, seed=7)  # same bytes as version 1
    digest = hashlib.sha256((one / "model.onnx").read_bytes()).hexdigest()
    source = DirectorySource(str(registry))
    first = cache.store(source, remote(source, one, sha256=digest))
    assert first.sha256 == digest
    assert first.path == cache.root / digest
    assert first.artifact == first.path / "model.onnx"
    assert first.artifact.read_bytes() == (one / "model.onnx").read_bytes()
    assert (first.path / "config.txt").read_text() == "seed 7\n"
    second = cache.store(source, remote(source, three))  # no stated digest: stored on its computed one
    assert second == first
    assert entries(cache.root) == [digest]  # one folder, and no temp folder left behind
    assert cache.has(digest) == first


def test_different_content_gets_different_folders(registry: Path, cache: ArtifactCache):
    source = DirectorySource(str(registry))
    a = cache.store(source, remote(source, version_folder(registry, "iris", 1, seed=1)))
    b = cache.store(source, remote(source, version_folder(registry, "iris", 2, seed=2)))
    assert a.sha256 != b.sha256
    assert entries(cache.root) == sorted([a.sha256, b.sha256])


def test_has_unknown_or_malformed_digest(cache: ArtifactCache):
    assert cache.has("0" * 64) is None
    assert cache.has("../../etc") is None
    assert cache.has("") is None


def test_sha256_mismatch_is_refused_and_leaves_nothing(registry: Path, cache: ArtifactCache):
    folder = version_folder(registry, "iris", 3, seed=1)
    actual = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    stated = "ab" * 32
    source = DirectorySource(str(registry))
    with pytest.raises(IntegrityError, match=f"iris/3: sha256 mismatch: registry says {stated}, artifact is {actual}"):
        cache.store(source, remote(source, folder, sha256=stated))
    assert entries(cache.root) == []
    assert cache.has(actual) is None


def test_truncated_artifact_is_refused(registry: Path, cache: ArtifactCache):
    """The registry states the digest of the whole file (sidecar) but the file it serves is cut short."""
    folder = version_folder(registry, "iris", 2, seed=1)
    data = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  model.onnx\n")
    (folder / "model.onnx").write_bytes(data[: len(data) // 2])
    source = DirectorySource(str(registry))
    version = source.list_models()[0].versions[2]
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        cache.store(source, version)
    assert entries(cache.root) == []


def test_empty_artifact_is_refused(registry: Path, cache: ArtifactCache):
    folder = registry / "iris" / "1"
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"")
    source = DirectorySource(str(registry))
    with pytest.raises(IntegrityError, match=r"iris/1: model.onnx is empty"):
        cache.store(source, remote(source, folder))
    assert entries(cache.root) == []


def test_version_without_artifact_is_refused(registry: Path, cache: ArtifactCache):
    folder = registry / "iris" / "3"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("weights are elsewhere\n")
    source = DirectorySource(str(registry))
    with pytest.raises(IntegrityError, match=r"registry version iris/3 has no model.onnx, model.pt or model.pt2") as e:
        cache.store(source, remote(source, folder))
    assert e.value.http_status == 409
    assert entries(cache.root) == []


def test_fetch_failure_leaves_nothing(registry: Path, cache: ArtifactCache):
    registry.mkdir()
    source = DirectorySource(str(registry))
    with pytest.raises(RegistryUnavailable):
        cache.store(source, remote(source, registry / "iris" / "9"))
    assert entries(cache.root) == []


def test_torch_artifact_is_found(registry: Path, cache: ArtifactCache):
    folder = registry / "net" / "1"
    folder.mkdir(parents=True)
    (folder / "model.pt2").write_bytes(b"not really a torch program, but bytes are bytes")
    source = DirectorySource(str(registry))
    cached = cache.store(source, remote(source, folder))
    assert cached.artifact.name == "model.pt2"


class BarrierSource:
    """A real DirectorySource whose fetches all start together, so the stores overlap for sure."""

    def __init__(self, inner: DirectorySource, parties: int) -> None:
        self.url = inner.url
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=30)

    def list_models(self):
        return self.inner.list_models()

    def fetch(self, version: RemoteVersion, dest: Path) -> None:
        self.barrier.wait()
        self.inner.fetch(version, dest)


def test_concurrent_stores_from_four_threads(registry: Path, cache: ArtifactCache):
    # Versions 1 and 2 hold the same bytes, so two threads race to create the same folder.
    folders = [version_folder(registry, "m", n, seed=seed) for n, seed in [(1, 1), (2, 1), (3, 3), (4, 4)]]
    source = BarrierSource(DirectorySource(str(registry)), parties=4)
    for _ in range(3):  # the second and third rounds hit the "already cached" path concurrently
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda f: cache.store(source, remote(source.inner, f)), folders))
        assert results[0] == results[1]
        assert len({r.sha256 for r in results}) == 3
        for folder, result in zip(folders, results, strict=True):
            assert result.artifact.read_bytes() == (folder / "model.onnx").read_bytes()
        assert entries(cache.root) == sorted({r.sha256 for r in results})
