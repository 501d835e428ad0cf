"""Version references as users write them: a number or an alias, resolved to a version; and a version as text."""

from __future__ import annotations

from driftline.errors import ModelNotFound
from driftline.repository.names import is_version

__all__ = ["resolve_version", "version_text"]


def resolve_version(aliases: dict[str, int], name: str, ref: str | None, default_alias: str | None) -> str | None:
    """A job's model reference as a version number: an alias is looked up; no reference means the default alias
    when the model has one (as for a request), else None (the newest version).

    Raises:
        ModelNotFound: the alias is not set.
    """
    if ref is not None and not is_version(ref):
        if ref not in aliases:
            known = ", ".join(f"{a}={v}" for a, v in sorted(aliases.items())) or "none"
            raise ModelNotFound(f"model {name!r} has no alias {ref!r} (aliases: {known})")
        return str(aliases[ref])
    if ref is None and default_alias is not None and default_alias in aliases:
        return str(aliases[default_alias])
    return ref


def version_text(version: int | None) -> str | None:
    """A version as the API shows it (a string), None staying None."""
    return None if version is None else str(version)
