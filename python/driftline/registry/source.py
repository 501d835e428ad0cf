"""What a model registry source is: the listing types and the `RegistrySource` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

# Re-exported so the registry package names every error it raises.
from driftline.errors import IntegrityError, RegistryUnavailable

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "IntegrityError",
    "RegistrySource",
    "RegistryUnavailable",
    "RemoteModel",
    "RemoteVersion",
]


@dataclass(frozen=True, slots=True)
class RemoteVersion:
    """One version of a model as a registry source lists it.

    Attributes:
        model: The model name.
        version: The positive version number.
        ref: A source-specific locator: the folder URL for directories, ``models:/name/3`` for MLflow.
        sha256: The digest the source states for the artifact file (lower-case hex), or None.
        created: When the source says the version was created, as text, if it says.
    """

    model: str
    version: int
    ref: str
    sha256: str | None
    created: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteModel:
    """A model as a registry source lists it: its versions, aliases and config text."""

    name: str
    versions: dict[int, RemoteVersion]
    aliases: dict[str, int]
    config_toml: str | None


class RegistrySource(Protocol):
    """A place models are published to, which the sync mirrors into the local repository."""

    url: str
    # What the last listing skipped and why (a bad config.toml, a sha256 that is no digest ...); empty at first.
    problems: list[str]
    # The models the last listing skipped something of: the sync mirrors no deletion of theirs (a skipped version
    # looks deleted), while the other models' deletions go on being mirrored.
    unsure: set[str]

    def list_models(self) -> list[RemoteModel]:
        """Every model the source holds; raises RegistryUnavailable when it cannot be reached or read."""
        ...

    def fetch(self, version: RemoteVersion, dest: Path) -> None:
        """Write the files of ``version`` into the empty folder ``dest``; raises RegistryUnavailable on I/O failure."""
        ...

    def lineage(self, version: RemoteVersion) -> bytes | None:
        """The version's ``lineage.json`` text as the source states it (None: it states none); the loader checks it.

        Raises:
            RegistryUnavailable: The source cannot be reached or read.
        """
        ...
