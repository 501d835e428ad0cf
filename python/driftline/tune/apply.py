"""``driftline tune --apply``: write the recommendation into the model's config.toml, keeping its comments.

The patched text is validated as `load_model_config` would before anything is written, the previous file is kept
as ``config.toml.before-tune``, and the new one replaces it atomically (a temp file renamed in the same folder),
so a server reading the folder never sees half a file. Reloading the model is the caller's job.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from typing import TYPE_CHECKING

import msgspec

from driftline.errors import ConfigError
from driftline.repository.model_config import ModelConfig
from driftline.tune.spec import Candidate, config_patch
from driftline.tune.toml_patch import patch_config_text

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["BACKUP_SUFFIX", "write_config"]

BACKUP_SUFFIX = ".before-tune"


def write_config(repository: Path, model: str, candidate: Candidate, backend: str) -> tuple[Path, Path]:
    """Patch ``repository/model/config.toml`` with ``candidate``; return (the config, its backup).

    Raises:
        ConfigError: no such model folder, or the patched config would not load (nothing is written then).
    """
    folder = repository / model
    if not folder.is_dir():
        raise ConfigError(f"--apply: no model folder {folder}")
    path = folder / "config.toml"
    backup = folder / f"config.toml{BACKUP_SUFFIX}"
    text = path.read_text() if path.exists() else ""
    patched = patch_config_text(text, config_patch(candidate, backend), str(path))
    try:
        msgspec.convert(tomllib.loads(patched), ModelConfig)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"{path}: the tuned config would not load ({exc}); nothing written") from None
    if path.exists():
        shutil.copy2(path, backup)
    else:
        backup.write_text("")
    fd, name = tempfile.mkstemp(prefix=".config.toml.", dir=folder)
    temp = folder / name.rsplit("/", 1)[-1]
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(patched)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path, backup
