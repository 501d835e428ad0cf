"""The one home of the naming rules: what a model name, a version and an alias may be.

Every place that takes a name checks it here: the repository layout, registry sources, config.toml's aliases,
the lifecycle, the OpenAPI path patterns and ``driftline score MODEL@ALIAS``. (Two alias rules once disagreed:
the server accepted alias ``2024q1`` and the CLI refused ``iris@2024q1``.)
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "ALIAS_MAX_LENGTH",
    "ALIAS_PATTERN",
    "MODEL_NAME",
    "MODEL_NAME_PATTERN",
    "VERSION_PATTERN",
    "check_alias_name",
    "is_alias_name",
    "is_version",
]

#: A model name: a letter or digit, then letters, digits, ``_``, ``.`` or ``-``; at most 128 characters.
MODEL_NAME_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
MODEL_NAME: Final = re.compile(rf"\A{MODEL_NAME_PATTERN}\Z")  # \Z: "$" would let a trailing newline through

#: A version, in a URL, a reference or a folder name: ASCII digits. (``str.isdigit`` also takes ``"²"``, which
#: ``int`` refuses: a request for version ``²`` was a 500 and a folder named ``²`` stopped the repository listing.)
VERSION_PATTERN: Final = r"[0-9]+"
_VERSION: Final = re.compile(rf"\A{VERSION_PATTERN}\Z")

#: An alias: letters, digits, ``_``, ``.`` or ``-``, not starting with ``-`` and never only digits (a number is a
#: version). Written without look-ahead, so the OpenAPI schema can carry it as it is (ECMA regex, and schema
#: test generators that read it).
ALIAS_PATTERN: Final = r"(?:[A-Za-z_.][A-Za-z0-9_.-]*|[0-9]+[A-Za-z_.-][A-Za-z0-9_.-]*)"
ALIAS_MAX_LENGTH: Final = 64
_ALIAS: Final = re.compile(rf"\A{ALIAS_PATTERN}\Z")


def is_version(text: str) -> bool:
    """Whether ``text`` names a version number (then ``int(text)`` is that number)."""
    return _VERSION.match(text) is not None


def is_alias_name(alias: str) -> bool:
    """Whether ``alias`` may name an alias."""
    return len(alias) <= ALIAS_MAX_LENGTH and _ALIAS.match(alias) is not None


def check_alias_name(alias: str) -> None:
    """An alias is a name, never a number (numbers are versions).

    Raises:
        ValueError: naming the alias.
    """
    if not is_alias_name(alias):
        raise ValueError(
            f"alias {alias!r} must be 1-{ALIAS_MAX_LENGTH} letters, digits, '_', '-' or '.', not starting with '-', "
            "and not a number"
        )
