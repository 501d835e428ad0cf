"""The README's replicas block, run as printed: two `driftline serve` replicas on a real PostgreSQL database
(DATABASE_URL, as the block's reader has one), an alias moved through one and answered by the other."""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tests.postgres import start_postgres
from tests.readme.conftest import link_checkout, user_env

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from pathlib import Path

    from tests.readme.blocks import Block


@contextmanager
def replicas_root(checkout: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the root ("after make serve once": the demo exists), and the user's environment with a fresh
    PostgreSQL database as DATABASE_URL; the server is stopped afterwards."""
    root = link_checkout(checkout.with_name(checkout.name + "-replicas"))
    shutil.copytree(checkout / "demo-models", root / "demo-models")
    server = start_postgres()
    try:
        yield root, {**user_env(root, venv_on_path=False), "DATABASE_URL": server.new_database()}
    finally:
        server.stop()


def check_replicas_block(block: Block, root: Path, proc: subprocess.CompletedProcess[str]) -> None:
    """What the block's comments say it shows."""
    logs = "".join((root / f"replica-{i}.log").read_text() for i in (1, 2) if (root / f"replica-{i}.log").exists())
    assert proc.returncode == 0, f"{block.label} failed:\n{proc.stdout[-4000:]}\n{proc.stderr}\n{logs[-3000:]}"
    assert "Traceback" not in proc.stderr + logs
    out = proc.stdout
    assert '"model_version":"1"' in out, out  # the replica the alias was not moved through answers with it
    assert re.search(r"alias_set\s+iris\s+2 -> 1", out), out  # and its audit log holds the move
    assert not (root / "driftline.db").exists()  # the store was PostgreSQL, not a SQLite file
