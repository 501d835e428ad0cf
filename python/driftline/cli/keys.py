"""``driftline keys create|hash``: make the first admin key in the local store, or hash one for config.toml."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING, Any

from driftline.errors import BadRequest

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser"]


def local_actor() -> str:
    """Who ran a local command, for the audit log (there is no API key on this path)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry and no $USER (a bare container)
        return f"cli:uid={os.getuid()}"


def _keys_create(args: argparse.Namespace) -> int:
    from driftline.config import load_settings
    from driftline.store.db import open_database
    from driftline.store.keys import KeyStore

    settings = load_settings(args.config, {"database": args.database} if args.database else None)
    db = open_database(settings.database)
    try:
        reserved = [k.name for k in settings.auth.keys]
        key = KeyStore(db).create_key(args.name, args.role, reserved, actor=local_actor())
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    finally:
        db.close()
    print(key)
    return 0


def _keys_hash(args: argparse.Namespace) -> int:
    from driftline.security.keys import hash_key

    print(hash_key(args.key))
    return 0


def add_parser(sub: Any) -> None:
    """``driftline keys create|hash``, under ``sub`` (the main parser's subparsers)."""
    keys = sub.add_parser("keys", help="API keys: create one in the local store, or hash one for config.toml")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key in the server's SQLite store and print it once")
    create.add_argument("name")
    create.add_argument("--role", required=True, help="viewer, predictor, operator or admin")
    create.add_argument(
        "--database", help="the server's store: a SQLite file or a postgresql:// URL (default from the config)"
    )
    create.add_argument("--config", help="server TOML file")
    create.set_defaults(func=_keys_create)
    hashing = keys_sub.add_parser("hash", help="print the sha256 to put in config.toml's [[auth.keys]]")
    hashing.add_argument("key")
    hashing.set_defaults(func=_keys_hash)
