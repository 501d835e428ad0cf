"""Versions a registry source places in the model repository: put in atomically, on record, moved aside.

A placed version has a record at ``<model>/.registry/<version>.json`` naming the source and the artifact's sha256,
so only what a sync placed is ever pruned; versions put in the repository by hand have none. A version that failed
to load goes to ``<model>/.failed/``, one deleted at the source to ``<model>/.deleted/`` (as ``<version>-<sha12>``),
so no restart loads it again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import msgspec

from driftline.repository.names import is_version

__all__ = ["Placement", "placed_record"]

_FAILED = ".failed"
_DELETED = ".deleted"
_PLACED = ".registry"
_LINEAGE = "lineage.json"  # repository.lineage.LINEAGE_FILE (that module reads this one's records)


def placed_record(model_dir: Path, version: int) -> dict[str, str] | None:
    """The record a sync kept for a version it placed (``source``, ``sha256``, ``ref``), or None."""
    try:
        return msgspec.json.decode((model_dir / _PLACED / f"{version}.json").read_bytes(), type=dict[str, str])
    except (OSError, msgspec.DecodeError):
        return None


class Placement:
    """The versions one source places under one repository root; it holds no state beyond the two names."""

    def __init__(self, root: Path, source_url: str) -> None:
        """Place versions from ``source_url`` under the repository ``root``."""
        self.root = root
        self.source_url = source_url

    def versions(self, model: str) -> frozenset[int]:
        """The version folders the model has in the repository now, placed or not."""
        folder = self.root / model
        if not folder.is_dir():
            return frozenset()
        return frozenset(int(p.name) for p in folder.iterdir() if p.is_dir() and is_version(p.name))

    def has(self, model: str, version: int) -> bool:
        """Whether the repository holds this version's folder."""
        return (self.root / model / str(version)).is_dir()

    def place(
        self,
        model: str,
        version: int,
        files: Path,
        sha256: str,
        config_toml: str | None,
        *,
        ref: str = "",
        lineage: bytes | None = None,
    ) -> Path:
        """Copy the version's files (hard links where the file system allows) to ``<model>/<version>`` atomically.

        Args:
            model: The model name.
            version: The version number; its folder must not exist yet.
            files: A folder holding the version's files (a verified cache entry); its ``config.toml``, if any,
                becomes the model's config when the model has none.
            sha256: The artifact's digest, kept on record.
            config_toml: The source's config text for the model; it wins over one in ``files``.
            ref: Where the source keeps the version (``models:/iris/3``), kept on record for its lineage.
            lineage: The version's ``lineage.json`` as the source states it. A ``lineage.json`` in ``files`` is
                never used: the cache holds one folder per artifact digest, so it may be another version's.

        Returns:
            The version's folder.
        """
        model_dir = self.root / model
        model_dir.mkdir(parents=True, exist_ok=True)
        placed = model_dir / _PLACED
        placed.mkdir(exist_ok=True)
        # Written before the folder appears: a version in the repository never lacks its record.
        record = {"source": self.source_url, "sha256": sha256, "ref": ref}
        (placed / f"{version}.json").write_bytes(msgspec.json.encode(record))
        staging = model_dir / f".incoming-{version}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        config_in_artifact: Path | None = None
        for item in files.rglob("*"):
            if not item.is_file():
                continue
            relative = item.relative_to(files)
            if relative == Path("config.toml"):
                config_in_artifact = item
                continue
            if relative == Path(_LINEAGE):
                continue
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(item, target)
            except OSError:
                shutil.copy2(item, target)
        config = model_dir / "config.toml"
        if not config.exists():
            # A model new to this repository takes its config from the source; an existing config is never overwritten.
            if config_toml is not None:
                config.write_text(config_toml)
            elif config_in_artifact is not None:
                shutil.copyfile(config_in_artifact, config)
        if lineage is not None:
            (staging / _LINEAGE).write_bytes(lineage)
        final = model_dir / str(version)
        staging.rename(final)
        return final

    def placed(self, model: str) -> dict[int, str]:
        """The versions in the repository that this source placed: version -> sha256."""
        model_dir = self.root / model
        found: dict[int, str] = {}
        for record in (model_dir / _PLACED).glob("*.json"):
            if not is_version(record.stem) or not (model_dir / record.stem).is_dir():
                continue
            with contextlib.suppress(msgspec.DecodeError, OSError):
                placed = msgspec.json.decode(record.read_bytes(), type=dict[str, str])
                if placed.get("source") == self.source_url:
                    found[int(record.stem)] = placed.get("sha256", "")
        return found

    def set_aside(self, model: str, version: int, sha256: str, *, deleted: bool = False) -> None:
        """Move a version out of the repository (a failed load, or ``deleted`` at the source) so no restart loads it."""
        folder = self.root / model / str(version)
        if folder.is_dir():
            aside = self.root / model / (_DELETED if deleted else _FAILED) / f"{version}-{sha256[:12]}"
            shutil.rmtree(aside, ignore_errors=True)
            aside.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(aside)
