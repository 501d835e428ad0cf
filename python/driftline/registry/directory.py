"""A registry that is a folder laid out like the repository, on any filesystem fsspec reaches."""

from __future__ import annotations

import posixpath
import tomllib
from typing import TYPE_CHECKING, Any

import fsspec  # type: ignore[import-untyped]

from driftline.errors import ConfigError
from driftline.registry.source import RegistryUnavailable, RemoteModel, RemoteVersion
from driftline.repository import ARTIFACT_NAMES
from driftline.repository.lineage import LINEAGE_FILE, MAX_LINEAGE_BYTES
from driftline.repository.names import MODEL_NAME, is_version
from driftline.security.digests import is_sha256

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DirectorySource"]


class DirectorySource:
    """A registry folder: ``<root>/<model>/config.toml`` (optional) and ``<root>/<model>/<N>/model.onnx``.

    Aliases come from the config.toml's top-level ``[aliases]`` table (alias -> version) and digests from a
    ``model.onnx.sha256`` sidecar (sha256sum format) beside the artifact. Models and versions that cannot be read
    are skipped and described in `problems`, so one bad folder does not hide the rest of the registry.
    """

    def __init__(self, url: str) -> None:
        """Point at the folder ``url`` (a plain path or an fsspec URL); nothing is read yet.

        Raises:
            ConfigError: The URL names a protocol fsspec does not know or whose package is not installed.
        """
        self.url = url
        self.problems: list[str] = []
        self.unsure: set[str] = set()
        protocol = fsspec.core.split_protocol(url)[0] or "file"
        try:
            fsspec.get_filesystem_class(protocol)
        except (ValueError, ImportError) as e:
            raise ConfigError(f"registry url {url!r}: {e}") from None
        # The filesystem is made on first use: some (ftp, sftp) connect when made, and an unreachable source must
        # be retried with backoff by the sync, not stop the server.
        self._made: tuple[Any, str] | None = None  # (filesystem, root path inside it)

    def _filesystem(self) -> tuple[Any, str]:
        if self._made is None:
            fs, root = fsspec.core.url_to_fs(self.url)
            self._made = fs, root.rstrip("/") or "/"
        return self._made

    @property
    def _fs(self) -> Any:
        return self._filesystem()[0]

    @property
    def _root(self) -> str:
        return self._filesystem()[1]

    def list_models(self) -> list[RemoteModel]:
        """Every model folder with at least one version, sorted by name; `problems` lists what was skipped.

        Raises:
            RegistryUnavailable: The root folder is missing or the filesystem fails.
        """
        problems: list[str] = []
        unsure: set[str] = set()
        try:
            models = self._scan(problems, unsure)
        except RegistryUnavailable:
            raise
        except Exception as e:
            # fsspec backends raise their own error types (OSError, botocore, aiohttp ...): all mean "cannot read".
            where = self._made[1] if self._made else self.url  # the filesystem itself may be what failed
            raise RegistryUnavailable(f"registry {self.url}: cannot list {where}: {e!r}") from e
        self.problems, self.unsure = problems, unsure
        return sorted(models, key=lambda m: m.name)

    def fetch(self, version: RemoteVersion, dest: Path) -> None:
        """Copy every file of the version's folder (subfolders included) into ``dest``.

        Raises:
            RegistryUnavailable: The folder cannot be read.
        """
        try:
            self._copy(version, self._fs._strip_protocol(version.ref).rstrip("/"), dest)
        except RegistryUnavailable:
            raise
        except Exception as e:
            raise RegistryUnavailable(
                f"registry {self.url}: cannot fetch {version.model}/{version.version} from {version.ref}: {e!r}"
            ) from e

    def lineage(self, version: RemoteVersion) -> bytes | None:
        """The version folder's ``lineage.json``, if it has one (one byte past the limit at most: the loader refuses
        an oversized file, so more is never read).

        Raises:
            RegistryUnavailable: The folder cannot be read.
        """
        path = f"{self._fs._strip_protocol(version.ref).rstrip('/')}/{LINEAGE_FILE}"
        try:
            if not self._fs.isfile(path):
                return None
            data: bytes = self._fs.cat_file(path, start=0, end=MAX_LINEAGE_BYTES + 1)
        except Exception as e:  # fsspec backends raise their own error types, as in fetch
            raise RegistryUnavailable(f"registry {self.url}: cannot read {path}: {e!r}") from e
        return data

    def _scan(self, problems: list[str], unsure: set[str]) -> list[RemoteModel]:
        if not self._fs.isdir(self._root):
            raise RegistryUnavailable(f"registry {self.url}: folder {self._root} does not exist")
        return [
            m
            for entry in self._entries(self._root)
            if entry["type"] == "directory" and MODEL_NAME.match(_base(entry["name"]))
            if (m := self._model(entry["name"], problems, unsure)) is not None
        ]

    def _copy(self, version: RemoteVersion, src: str, dest: Path) -> None:
        files: list[str] = self._fs.find(src, withdirs=False, detail=False)
        if not files:
            raise RegistryUnavailable(f"registry {self.url}: {version.model}/{version.version}: {src} is empty")
        dest.mkdir(parents=True, exist_ok=True)
        for remote in files:
            rel = posixpath.relpath(remote, src)
            if rel.startswith("../"):  # never write outside dest, whatever names a backend returns
                continue
            local = dest / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            self._fs.get_file(remote, str(local))

    def _entries(self, path: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self._fs.ls(path, detail=True)
        return entries

    def _model(self, path: str, problems: list[str], unsure: set[str]) -> RemoteModel | None:
        name = _base(path)
        entries = self._entries(path)
        config_toml: str | None = None
        aliases: dict[str, int] = {}
        if any(e["type"] == "file" and _base(e["name"]) == "config.toml" for e in entries):
            raw: bytes = self._fs.cat_file(f"{path}/config.toml")
            try:
                config_toml = raw.decode()
                aliases = _aliases(config_toml)
            except (UnicodeDecodeError, ValueError, TypeError) as e:  # TOMLDecodeError is a ValueError
                problems.append(f"{self.url}: model {name}: config.toml: {e}; model skipped")
                unsure.add(name)
                return None
        versions: dict[int, RemoteVersion] = {}
        for entry in entries:
            folder = _base(entry["name"])
            if entry["type"] != "directory" or not is_version(folder):
                continue
            if folder.startswith("0"):
                # "0" is no version and "03" would collide with "3" once synced; say so rather than guess.
                problems.append(f"{self.url}: model {name}: version folder {folder!r} skipped (want 1, 2, ...)")
                unsure.add(name)
                continue
            version = self._version(name, int(folder), entry["name"], problems, unsure)
            if version is not None:
                versions[version.version] = version
        if not versions:
            return None
        return RemoteModel(name=name, versions=dict(sorted(versions.items())), aliases=aliases, config_toml=config_toml)

    def _version(
        self, model: str, number: int, path: str, problems: list[str], unsure: set[str]
    ) -> RemoteVersion | None:
        files = {_base(e["name"]) for e in self._entries(path) if e["type"] == "file"}
        artifact = next((n for n in ARTIFACT_NAMES if n in files), None)
        if artifact is None:
            return None
        sha256: str | None = None
        if f"{artifact}.sha256" in files:
            tokens = self._fs.cat_file(f"{path}/{artifact}.sha256").decode(errors="replace").split()
            sha256 = tokens[0].lower() if tokens else ""
            if not is_sha256(sha256):
                # A sidecar that says nothing usable must not silently turn off the check: skip the version.
                problems.append(f"{self.url}: {model}/{number}: {artifact}.sha256 holds no sha256 digest; skipped")
                unsure.add(model)
                return None
        return RemoteVersion(model=model, version=number, ref=self._fs.unstrip_protocol(path), sha256=sha256)


def _base(path: str) -> str:
    return posixpath.basename(path.rstrip("/"))


def _aliases(text: str) -> dict[str, int]:
    """The ``[aliases]`` table of a config.toml; ValueError/TypeError when it is not a table of alias = int >= 1."""
    table = tomllib.loads(text).get("aliases", {})
    if not isinstance(table, dict):
        raise TypeError("[aliases] must be a table of alias = version")
    aliases: dict[str, int] = {}
    for alias, version in table.items():
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"aliases.{alias} = {version!r}: want a positive version number")
        aliases[alias] = version
    return aliases
