"""Segments are visible whole or not at all: temp files are never listed, and after a crash (kill -9 included)
reconcile makes the index match the finished files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from tests.capture.conftest import batch

from driftline.capture import CaptureReader, CaptureWriter
from driftline.store.captures import FOREIGN_TEMP_S, CaptureIndex, Reconciled, describe_segment, temp_name
from driftline.store.db import open_database


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def _write(root: Path, index: CaptureIndex, *ids: str) -> None:
    writer = CaptureWriter(root, index, queue_rows=100, segment_rows=1, segment_seconds=3600)
    for request_id in ids:
        assert writer.submit(batch(request_id))
        assert writer.flush(30)
    assert writer.close(30)


def test_reconcile_after_a_simulated_crash(root: Path, index: CaptureIndex):
    _write(root, index, "a", "b", "c")
    a, b, c = index.segments("iris")
    folder = (root / a.path).parent
    # A crash mid-write leaves a temp file (here: a finished segment's bytes under a dead writer's temp name).
    dead_temp = folder / f".{'0' * 32}.{_dead_pid()}.tmp"
    dead_temp.write_bytes((root / a.path).read_bytes())
    # A live writer of another process is still writing this one: it must stay.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_temp = folder / f".{'1' * 32}.{sleeper.pid}.tmp"
        live_temp.write_bytes(b"PAR1 half")
        # A crash between rename and insert: the file is whole, the index does not know it.
        unindexed = (root / b.path).with_name("f" * 32 + ".parquet")
        unindexed.write_bytes((root / b.path).read_bytes())
        # A file deleted outside the index (or a crash between retention's unlink and its delete).
        (root / c.path).unlink()
        # A file that is no Parquet at all.
        broken = folder / ("e" * 32 + ".parquet")
        broken.write_bytes(b"not parquet")

        reader = CaptureReader(root, index)
        assert set(reader.frame("iris")["request_id"].to_list()) == {"a", "b"}  # temp and unindexed not read

        assert index.reconcile(root) == Reconciled(added=1, removed=1, temp_deleted=1, quarantined=1)
        assert not dead_temp.exists()
        assert live_temp.exists()
        assert not broken.exists()
        assert broken.with_name(broken.name + ".corrupt").exists()
        assert sorted(reader.frame("iris")["request_id"].to_list()) == ["a", "a", "b", "b", "b", "b"]
        assert index.reconcile(root) == Reconciled()  # nothing left to change
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)


def test_temp_files_of_replicas_on_other_hosts_are_kept_until_stale(root: Path, index: CaptureIndex):
    """A capture directory shared by replicas on several hosts: another host's pid says nothing here, so its temp
    file is deleted only once older than any write takes; this host's go by pid, old names and new."""
    _write(root, index, "a")
    (a,) = index.segments("iris")
    folder = (root / a.path).parent
    writing = folder / f".{'2' * 32}.1.replica-on-another-host.tmp"  # pid 1 there: alive or not, not ours to ask
    writing.write_bytes(b"PAR1 half")
    stale = folder / f".{'3' * 32}.1.replica-on-another-host.tmp"
    stale.write_bytes(b"PAR1 half")
    old = time.time() - FOREIGN_TEMP_S - 60
    os.utime(stale, (old, old))
    ours = folder / temp_name("4" * 32).replace(f".{os.getpid()}.", f".{_dead_pid()}.")  # this host, writer gone
    ours.write_bytes(b"PAR1 half")
    assert index.reconcile(root) == Reconciled(temp_deleted=2)
    assert writing.exists()
    assert not stale.exists()
    assert not ours.exists()


def test_a_rewrite_whose_index_update_was_lost_is_described_again(root: Path, index: CaptureIndex):
    _write(root, index, "a")
    (segment,) = index.segments("iris")
    table = pq.read_table(root / segment.path).slice(0, 1)
    pq.write_table(table, root / segment.path)  # as erase_entity's rename, without its index update
    assert index.reconcile(root) == Reconciled(updated=1)
    assert index.segments("iris") == [describe_segment(root, segment.path)]
    assert index.segments("iris")[0].rows == 1


WRITE_FOREVER = """
import sys, time
from pathlib import Path
from driftline.capture import CaptureWriter
from driftline.store.captures import CaptureIndex
from driftline.store.db import open_database
from tests.capture.conftest import batch

writer = CaptureWriter(Path(sys.argv[1]), CaptureIndex(open_database(sys.argv[2])), queue_rows=4000,
                       segment_rows=500, segment_seconds=0.05)
i = 0
while True:
    if not writer.submit(batch(f"r{i}", rows=50, seed=i)):
        time.sleep(0.001)
    i += 1
"""


def test_kill_9_while_writing_leaves_no_half_segment_and_reconcile_matches_the_files(tmp_path: Path):
    root, db_path = tmp_path / "captures", tmp_path / "driftline.db"
    open_database(db_path).close()  # migrated before the writer process starts
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", WRITE_FOREVER, str(root), str(db_path)], env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list(root.glob("model=*/version=*/day=*/*.parquet"))) < 5 and time.monotonic() < deadline:
            assert proc.poll() is None, "the writer process ended"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    db = open_database(db_path)
    try:
        index = CaptureIndex(db)
        index.reconcile(root)
        files = {p.relative_to(root).as_posix() for p in root.glob("model=*/version=*/day=*/*")}
        assert len(files) >= 5
        assert all(f.endswith(".parquet") for f in files)
        segments = index.segments("iris")
        assert {s.path for s in segments} == files
        for segment in segments:
            assert describe_segment(root, segment.path) == segment  # every listed file reads whole, as indexed
        frame = CaptureReader(root, index).frame("iris")
        assert frame.height == sum(s.rows for s in segments) > 0
    finally:
        db.close()
