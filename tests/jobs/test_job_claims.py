"""Jobs on a store several processes share (workers, replicas; both stores): each job runs once, a dead owner's
job is adopted when its lease runs out, and a cancel asked of any process stops the job where it runs."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from tests.jobs.test_runner import job, wait_until, write_input

from driftline.jobs.roots import Roots
from driftline.jobs.runner import JobRunner
from driftline.jobs.store import JobStore
from driftline.store.db import open_database

_DONE = ("succeeded", "failed", "cancelled")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    write_input(root / "in.parquet", rows=2000)
    return root


def test_two_processes_run_each_job_once(repo, root, store_at):
    stores = [JobStore(open_database(store_at("jobs.db"))) for _ in range(2)]
    runners = [JobRunner(s, Roots([root]), lease_s=3.0) for s in stores]
    runners[0].start()
    ids = [runners[0].submit(job(repo, [root / "in.parquet"], root / f"out{i}")) for i in range(4)]
    runners[1].start()  # adopts the queued ones: both race for each claim, one wins each
    try:
        wait_until(lambda: all(stores[1].get(i).state in _DONE for i in ids))
        assert [stores[1].get(i).state for i in ids] == ["succeeded"] * 4
        for i in ids:  # one set of output parts each: no job ran twice into its folder
            assert len(list((root / f"out{ids.index(i)}").glob("part-*"))) >= 1
    finally:
        for runner in runners:
            runner.stop()


def test_a_dead_owners_job_is_adopted_after_its_lease(repo, root, store_at):
    location = store_at("jobs.db")
    store = JobStore(open_database(location))
    orphan = store.create(job(repo, [root / "in.parquet"], root / "orphan"))
    # Another process claimed it and died: its lease (1 s) runs out without a renewal.
    assert store.claim(orphan, "dead-process", lease_s=1.0)
    assert not store.claim(orphan, "someone-else", lease_s=1.0)  # held while the lease lasts
    survivor = JobRunner(JobStore(open_database(location)), Roots([root]), lease_s=1.2)
    survivor.start()
    try:
        wait_until(lambda: store.get(orphan).state in _DONE, timeout=60)
        assert store.get(orphan).state == "succeeded"
    finally:
        survivor.stop()


def test_a_cancel_asked_of_another_process_stops_the_job(repo, root, store_at):
    location = store_at("jobs.db")
    big = root / "big.parquet"
    write_input(big, rows=400_000)
    owner = JobRunner(JobStore(open_database(location)), Roots([root]), lease_s=1.2)
    other = JobRunner(JobStore(open_database(location)), Roots([root]), lease_s=1.2)
    owner.start()
    try:
        # Small parts: the cancel is seen at the next part, long before the last (2.4M rows in 300 parts).
        job_id = owner.submit(msgspec.structs.replace(job(repo, [big] * 6, root / "big-out"), chunk_rows=8192))
        store = JobStore(open_database(location))
        wait_until(lambda: store.get(job_id).state == "running", timeout=30)
        assert other.cancel(job_id)  # `other` never ran it: the flag reaches the owner at its next renewal
        wait_until(lambda: store.get(job_id).state in _DONE, timeout=30)
        record = store.get(job_id)
        assert record.state == "cancelled", record
        assert record.rows_done < 6 * 400_000
        assert not other.cancel(job_id)  # finished now
    finally:
        owner.stop()
        other.stop()
