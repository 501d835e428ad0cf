"""The on-disk model repository: ``<repo>/<model>/config.toml`` plus numbered version folders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from driftline.errors import ConfigError, ModelNotFound
from driftline.repository.model_config import ModelConfig, load_model_config
from driftline.repository.names import MODEL_NAME, is_version

__all__ = ["ARTIFACT_NAMES", "ModelSource", "Repository", "find_artifact"]

# Recognised artifact file names, in lookup order, and the backend each implies.
ARTIFACT_NAMES: dict[str, str] = {"model.onnx": "onnx", "model.pt": "torch", "model.pt2": "torch"}

_log = logging.getLogger("driftline.repository")


def find_artifact(folder: Path) -> Path | None:
    """A version folder's model file: the first of `ARTIFACT_NAMES` that is a file there, or None."""
    return next((folder / n for n in ARTIFACT_NAMES if (folder / n).is_file()), None)


@dataclass(frozen=True, slots=True)
class ModelSource:
    """One model as found on disk: its folder, validated config and version artifacts."""

    name: str
    path: Path
    config: ModelConfig
    artifacts: dict[int, Path]
    notes: tuple[str, ...] = ()  # what a user should know about the folder (shown in the model's metadata)

    @property
    def backend(self) -> str:
        """The backend named in config.toml, else the one the artifact's file name implies."""
        if self.config.backend:
            return self.config.backend
        first = next(iter(self.artifacts.values()), None)
        return ARTIFACT_NAMES.get(first.name, "onnx") if first else "onnx"

    def versions_to_load(self) -> list[int]:
        """The versions the model's version policy selects, ascending."""
        return self.config.version_policy.select(list(self.artifacts))


class Repository:
    """Reads a model repository directory; it holds no state beyond the path (and which warnings it logged)."""

    def __init__(self, root: str | Path) -> None:
        """Point at a repository root (which need not exist yet)."""
        self.root = Path(root)
        self._warned: set[Path] = set()

    def _notes(self, folder: Path) -> tuple[str, ...]:
        pbtxt = folder / "config.pbtxt"
        if not pbtxt.is_file():
            return ()
        # A Triton repository brought over as is: its config.pbtxt would silently not apply, so say so.
        note = f"{pbtxt} is not read: driftline reads config.toml only (Triton's config.pbtxt is not supported)"
        if pbtxt not in self._warned:
            self._warned.add(pbtxt)
            _log.warning("%s", note)
        return (note,)

    def model_names(self) -> list[str]:
        """Names of the folders that look like models, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and MODEL_NAME.match(p.name))

    def require(self, name: str) -> None:
        """Raise ModelNotFound (``model 'x' is not in the repository``) unless ``name`` is one of `model_names`.

        The same test as `model_names` makes, for one name: a valid name and a folder (one stat, not a listing).
        """
        if not (MODEL_NAME.match(name) and (self.root / name).is_dir()):
            raise ModelNotFound(f"model {name!r} is not in the repository")

    def model(self, name: str) -> ModelSource:
        """Read one model's folder.

        Raises:
            ModelNotFound: no such folder.
            ConfigError: a bad config.toml, or no loadable version.
        """
        if not MODEL_NAME.match(name):
            raise ModelNotFound(f"model {name!r} is not a valid model name")
        folder = self.root / name
        if not folder.is_dir():
            raise ModelNotFound(f"model {name!r} is not in the repository {self.root}")
        config = load_model_config(folder / "config.toml")
        artifacts: dict[int, Path] = {}
        for child in folder.iterdir():
            if child.is_dir() and is_version(child.name):
                artifact = find_artifact(child)
                if artifact is not None:
                    artifacts[int(child.name)] = artifact
        if not artifacts:
            raise ConfigError(
                f"{folder}: no version folder with {' or '.join(ARTIFACT_NAMES)} (expected {folder}/1/model.onnx)"
            )
        return ModelSource(
            name=name,
            path=folder,
            config=config,
            artifacts=dict(sorted(artifacts.items())),
            notes=self._notes(folder),
        )
