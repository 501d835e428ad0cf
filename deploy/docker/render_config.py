"""Write the server's config.toml: a base TOML file plus one ``[[auth.keys]]`` entry per mounted API key.

driftline's config holds only each key's sha256 (security/keys.py), while clients need the key itself, so the
Kubernetes Secret holds the keys and this script, run before the server (an init container, or the KServe
runtime's command), hashes them into the config the server reads. Each file in the keys directory is one key:
its name is ``<key name>.<role>`` (e.g. ``gateway.predictor``) and its content the key. A key that is still the
placeholder, or too short to be a generated one, stops the start with a message instead of serving with it.

Usage: python render_config.py --keys DIR [--base FILE] OUT
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from driftline.config import load_settings
from driftline.errors import ConfigError
from driftline.security.keys import check_role, hash_key

# A Secret's data key is [-._a-zA-Z0-9]+; the role is what follows the last dot.
_FILE_NAME = re.compile(r"\A(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)\.(?P<role>[a-z]+)\Z")
# `driftline keys create` makes 256-bit keys; anything this short was typed by hand.
_MIN_KEY_LENGTH = 32


def key_entries(keys_dir: Path) -> str:
    """The ``[[auth.keys]]`` tables for every key file in ``keys_dir``, sorted by file name.

    Raises:
        ConfigError: a file name is not ``<name>.<role>``, a role is unknown, a key is a placeholder or short.
    """
    tables = []
    # Secret volumes hold each key through a symlink to a ..data folder; the dot-files are that machinery.
    for path in sorted(p for p in keys_dir.iterdir() if not p.name.startswith(".")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise ConfigError(f"{path}: a key file is named <key name>.<role>, e.g. admin.admin")
        try:
            role = check_role(match["role"])
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        key = path.read_text().strip()
        if key.upper().startswith("REPLACE") or len(key) < _MIN_KEY_LENGTH:
            raise ConfigError(
                f"{path}: the key is a placeholder or shorter than {_MIN_KEY_LENGTH} characters: put a generated "
                'key in the Secret (python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        name = json.dumps(match["name"])  # a TOML basic string: the name is plain ASCII
        tables.append(f'\n[[auth.keys]]\nname = {name}\nrole = "{role}"\nsha256 = "{hash_key(key)}"\n')
    if not tables:
        raise ConfigError(f"{keys_dir} holds no key: the server listens beyond loopback and needs one")
    return "".join(tables)


def render(base: Path | None, keys_dir: Path, out: Path) -> None:
    """Write ``out``: ``base`` (or nothing), then the key tables; the result is checked by the settings loader."""
    text = base.read_text() if base else ""
    out.write_text(f"{text.rstrip()}\n{key_entries(keys_dir)}")
    load_settings(out, environ={})  # the file alone must be valid; DRIFTLINE_* variables apply on top later


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and render; a refusal is one line on stderr and exit status 2."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=Path, required=True, help="directory of <name>.<role> key files")
    parser.add_argument("--base", type=Path, help="the config TOML the keys are added to")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        render(args.base, args.keys, args.out)
    except (ConfigError, OSError) as exc:
        print(f"render_config: {exc}", file=sys.stderr)  # noqa: T201 - the init container's one message
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
