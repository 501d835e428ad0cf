"""The store opened by several processes at once: one migrates, the others wait and find the schema done (both
stores); SQLite's own failure modes."""

from __future__ import annotations

import subprocess
import sys
import time

from driftline.store.db import open_database
from driftline.store.migrations import MIGRATIONS

# Each process imports first, then waits for a shared start instant, so the opens really overlap.
OPEN = (
    "import sys, time; from driftline.store.db import open_database; "
    "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); open_database(sys.argv[1]).close()"
)


def test_worker_processes_open_a_fresh_store_at_once(store_at):
    for attempt in range(3):
        path = store_at(f"fresh-{attempt}.db")
        start = str(time.time() + 2.0)
        procs = [
            subprocess.Popen([sys.executable, "-c", OPEN, str(path), start], stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        db = open_database(path)
        assert db.schema_version() == len(MIGRATIONS)
        db.close()
