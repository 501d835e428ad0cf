"""The store opened by several processes at once: one migrates, the others wait and find the schema done."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from driftline.store.db import MIGRATIONS, Database

# Each process imports first, then waits for a shared start instant, so the opens really overlap.
OPEN = (
    "import sys, time; from driftline.store.db import Database; "
    "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); Database(sys.argv[1]).close()"
)


def test_worker_processes_open_a_fresh_store_at_once(tmp_path: Path):
    for attempt in range(3):
        path = tmp_path / f"fresh-{attempt}.db"
        start = str(time.time() + 2.0)
        procs = [
            subprocess.Popen([sys.executable, "-c", OPEN, str(path), start], stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        db = Database(path)
        assert db.query("PRAGMA user_version")[0][0] == len(MIGRATIONS)
        db.close()
