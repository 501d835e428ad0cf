"""Set keys in a config.toml's text, keeping its comments and layout: the tuner's temporary configs and `--apply`.

Python reads TOML but has no writer, and a writer would drop the user's comments anyway. The patch is small and
flat (top-level keys and keys of one-level tables with ints, strings and lists of ints), so it is applied line by
line: an existing ``key = ...`` line is replaced, a missing key goes at the end of its table (top-level ones
before the first table), a missing table is appended. The result is parsed again and checked key by key.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from driftline.errors import ConfigError

__all__ = ["patch_config_text", "toml_value"]

_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")


def toml_value(value: Any) -> str:
    """A patch value as TOML: bool, int, float, str, or a list of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _key_line(key: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(key)}\s*=")


def _sections(lines: list[str]) -> list[tuple[str | None, int, int]]:
    """(table name or None for the top level, first line, end line) of each section, in file order."""
    out: list[tuple[str | None, int, int]] = []
    name: str | None = None
    start = 0
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m:
            out.append((name, start, i))
            name, start = m.group(1).strip(), i + 1
    out.append((name, start, len(lines)))
    return out


def _set(lines: list[str], table: str | None, key: str, value: Any) -> list[str]:
    rendered = f"{key} = {toml_value(value)}"
    sections = [s for s in _sections(lines) if s[0] == table]
    for _name, start, end in sections:
        for i in range(start, end):
            if _key_line(key).match(lines[i]):
                return [*lines[:i], rendered, *lines[i + 1 :]]
    if sections:
        _name, start, end = sections[0]
        # After the table's last non-blank line, so a blank line before the next header stays where it was.
        at = end
        while at > start and not lines[at - 1].strip():
            at -= 1
        return [*lines[:at], rendered, *lines[at:]]
    return [*lines, *([""] if lines and lines[-1].strip() else []), f"[{table}]", rendered]


def patch_config_text(text: str, patch: dict[str, Any], where: str = "config.toml") -> str:
    """``text`` with every key of ``patch`` set (nested dicts are tables); comments and other keys untouched.

    Raises:
        ConfigError: the text is not TOML, or it sets a patched key in a form this cannot edit (a dotted key, an
            inline table), naming the key: edit it by hand.
    """
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None
    lines = text.splitlines()
    for key, value in patch.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                lines = _set(lines, key, sub, subvalue)
        else:
            # Top-level keys must come before the first table header.
            first = next((i for i, line in enumerate(lines) if _HEADER.match(line)), len(lines))
            head, rest = lines[:first], lines[first:]
            top = _set(head, None, key, value)
            lines = (
                top + ([""] if rest and top and top[-1].strip() else []) + rest if len(top) > len(head) else top + rest
            )
    patched = "\n".join(lines) + "\n"
    try:
        parsed = tomllib.loads(patched)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: cannot set the tuned keys in this file ({exc}); set them by hand") from None
    for key, value in patch.items():
        wanted = value if isinstance(value, dict) else {None: value}
        for sub, subvalue in wanted.items():
            got = parsed.get(key) if sub is None else parsed.get(key, {}).get(sub)
            expect = list(subvalue) if isinstance(subvalue, tuple) else subvalue
            if got != expect:
                name = key if sub is None else f"{key}.{sub}"
                raise ConfigError(
                    f"{where}: {name} is set in a form the tuner cannot edit; set it to {expect!r} by hand"
                )
    return patched
