"""A content-addressed cache of fetched registry artifacts: ``<root>/<sha256>/`` holds one version's files."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.registry.source import IntegrityError
from driftline.repository import ARTIFACT_NAMES
from driftline.repository.layout import find_artifact
from driftline.security.digests import file_sha256, is_sha256

if TYPE_CHECKING:
    from driftline.registry.source import RegistrySource, RemoteVersion

__all__ = ["ArtifactCache", "CachedArtifact"]

_ARTIFACTS = ", ".join(list(ARTIFACT_NAMES)[:-1]) + " or " + list(ARTIFACT_NAMES)[-1]  # "model.onnx, ... or ..."


@dataclass(frozen=True, slots=True)
class CachedArtifact:
    """A verified version in the cache.

    Attributes:
        path: The cache folder ``<root>/<sha256>/`` holding the version's files.
        artifact: The model file inside it (model.onnx, model.pt or model.pt2, the first found).
        sha256: The digest of the artifact file.
    """

    path: Path
    artifact: Path
    sha256: str


class ArtifactCache:
    """Fetches registry versions into ``root``, checks their digest and keeps them under it.

    A folder under ``root`` is only ever created whole, by one atomic rename of a verified temporary folder, so a
    reader never sees half a version and two threads storing the same content end up sharing one folder.
    """

    def __init__(self, root: Path) -> None:
        """Use ``root`` (created on first store) as the cache folder."""
        self.root = Path(root)

    def has(self, sha256: str) -> CachedArtifact | None:
        """The cached version whose artifact has this digest, or None."""
        if not is_sha256(sha256):  # also keeps a hostile digest from naming a path outside root
            return None
        return _cached(self.root / sha256, sha256)

    def store(self, source: RegistrySource, version: RemoteVersion) -> CachedArtifact:
        """Fetch ``version`` from ``source``, verify it, and keep it under ``root/<sha256>/``.

        Returns:
            The cache entry; an existing one when the same content was stored before.

        Raises:
            IntegrityError: The version has no model file, an empty one, or one whose digest differs from the
                digest the registry states.
            RegistryUnavailable: The source failed while fetching (from ``source.fetch``).
        """
        label = f"{version.model}/{version.version}"
        self.root.mkdir(parents=True, exist_ok=True)
        # The temp folder sits under root so the final rename never crosses a filesystem.
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            source.fetch(version, tmp)
            digest = _verify(tmp, version)
            final = self.root / digest
            try:
                tmp.rename(final)
            except OSError:
                # Already there (stored before, or by another thread just now): same content, keep the first.
                if not final.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                final.chmod(0o755)  # mkdtemp made it 0700; the loader may run as another user
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        cached = _cached(final, digest)
        if cached is None:  # pragma: no cover - only if someone empties the folder under us
            raise IntegrityError(f"{label}: cache folder {final} lost its artifact")
        return cached


def _verify(folder: Path, version: RemoteVersion) -> str:
    """The digest of the fetched model file, once it is there, non-empty and matches what the registry states."""
    label = f"{version.model}/{version.version}"
    artifact = find_artifact(folder)
    if artifact is None:
        raise IntegrityError(f"registry version {label} has no {_ARTIFACTS}")
    if artifact.stat().st_size == 0:
        raise IntegrityError(f"{label}: {artifact.name} is empty")
    digest = file_sha256(artifact)
    if version.sha256 is not None and version.sha256.lower() != digest:
        raise IntegrityError(f"{label}: sha256 mismatch: registry says {version.sha256}, artifact is {digest}")
    return digest


def _cached(folder: Path, sha256: str) -> CachedArtifact | None:
    artifact = find_artifact(folder)
    return None if artifact is None else CachedArtifact(path=folder, artifact=artifact, sha256=sha256)
