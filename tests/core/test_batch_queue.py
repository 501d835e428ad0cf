"""driftline._core.BatchQueue through Python: API, errors, GIL release, drain, priorities, expiry, stress."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline._core import Batch, BatchQueue, CoreError, QueueClosed, QueueFull

# ----------------------------------------------------------------------------------------------------------
# helpers


def take(q: BatchQueue, timeout_ms: int = 1000) -> Batch:
    """next_batch that must return a batch, then marks the instance idle again."""
    batch = q.next_batch(timeout_ms)
    assert batch is not None
    q.task_done()
    return batch


def check_offsets(batch: Batch) -> None:
    assert len(batch.offsets) == len(batch.tickets) + 1
    assert batch.offsets[0] == 0
    assert batch.rows == batch.offsets[-1]
    assert all(a < b for a, b in zip(batch.offsets, batch.offsets[1:], strict=False))
    assert len(batch.queue_us) == len(batch.tickets)


# ----------------------------------------------------------------------------------------------------------
# the basic cycle


def test_submit_then_next_batch_gives_tickets_offsets_and_counters() -> None:
    q = BatchQueue(8, max_queue_delay_us=0)
    tickets = [q.submit(rows) for rows in (2, 3, 1)]
    assert len(set(tickets)) == 3
    assert len(q) == 3
    batch = q.next_batch(timeout_ms=1000)
    assert batch is not None
    assert batch.tickets == tickets
    assert batch.offsets == [0, 2, 5, 6]
    assert batch.rows == 6
    assert batch.expired == []
    assert batch.seq == 0
    assert batch.shape_key == 0
    assert all(us >= 0 for us in batch.queue_us)
    assert "rows=6" in repr(batch)
    stats = q.stats()
    assert stats["busy_instances"] == 1
    q.task_done()
    assert q.stats() == {
        "queued_requests": 0,
        "queued_rows": 0,
        "busy_instances": 0,
        "submitted": 3,
        "dispatched_requests": 3,
        "dispatched_batches": 1,
        "expired": 0,
        "cancelled": 0,
        "rejected_full": 0,
    }
    assert q.next_batch(timeout_ms=0) is None
    assert len(q) == 0


def test_sequence_numbers_count_up() -> None:
    q = BatchQueue(1)
    for _ in range(3):
        q.submit(1)
    assert [take(q).seq for _ in range(3)] == [0, 1, 2]


# ----------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_batch_size": -1}, "max_batch_size must be >= 0"),
        ({"max_batch_size": 4, "preferred_batch_sizes": [8]}, r"must be in 1..=max_batch_size \(4\), got 8"),
        ({"max_batch_size": 4, "preferred_batch_sizes": [0]}, "preferred_batch_sizes"),
        ({"max_batch_size": 4, "priority_levels": 0}, "priority_levels must be >= 1"),
        ({"max_batch_size": 4, "priority_levels": 2, "default_priority_level": 3}, "default_priority_level"),
        ({"max_batch_size": 4, "max_queue_delay_us": -5}, "max_queue_delay_us must be >= 0"),
    ],
)
def test_bad_settings_raise_value_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BatchQueue(**kwargs)  # type: ignore[arg-type]


def test_submit_errors_name_the_problem() -> None:
    q = BatchQueue(4, max_queue_size=2, priority_levels=2)
    with pytest.raises(ValueError, match=r"rows must be >= 1, got 0"):
        q.submit(0)
    with pytest.raises(ValueError, match=r"rows must be >= 1, got -3"):
        q.submit(-3)
    with pytest.raises(ValueError, match=r"rows \(5\) exceeds max_batch_size \(4\)"):
        q.submit(5)
    with pytest.raises(ValueError, match=r"priority must be in 0..=2"):
        q.submit(1, priority=3)
    with pytest.raises(ValueError, match=r"priority must be >= 0"):
        q.submit(1, priority=-1)
    with pytest.raises(ValueError, match=r"timeout_us must be >= 0"):
        q.submit(1, timeout_us=-1)
    q.submit(1)
    q.submit(1)
    with pytest.raises(QueueFull, match=r"queue is full \(2 requests queued"):
        q.submit(1)
    assert q.stats()["rejected_full"] == 1
    assert issubclass(QueueFull, CoreError)
    with pytest.raises(ValueError, match="timeout_ms must be >= 0"):
        q.next_batch(-1)
    with pytest.raises(OverflowError):
        q.submit(1, shape_key=2**64)


def test_huge_timeouts_do_not_overflow() -> None:
    q = BatchQueue(4, default_timeout_us=2**63 - 1)
    ticket = q.submit(1, timeout_us=2**63 - 1)
    batch = q.next_batch(timeout_ms=2**63 - 1)
    assert batch is not None
    assert batch.tickets == [ticket]
    assert batch.expired == []


def test_close_refuses_submits_and_is_idempotent() -> None:
    q = BatchQueue(4)
    assert not q.closed
    q.close()
    q.close()
    assert q.closed
    with pytest.raises(QueueClosed, match="queue is closed"):
        q.submit(1)
    assert q.next_batch() is None


# ----------------------------------------------------------------------------------------------------------
# GIL release


@pytest.mark.timeout(20)
def test_next_batch_releases_the_gil() -> None:
    q = BatchQueue(4)
    blocker = threading.Thread(target=q.next_batch, kwargs={"timeout_ms": 400})
    blocker.start()
    time.sleep(0.02)
    # Pure-Python work while the other thread sits in next_batch: were the GIL held there, this thread could
    # not run until next_batch returned, and the count would stay near 0.
    progress = 0
    while blocker.is_alive() and progress < 200_000:
        progress += 1
    still_blocked = blocker.is_alive()
    blocker.join()
    assert still_blocked, "next_batch returned before the counter finished"
    assert progress == 200_000


# ----------------------------------------------------------------------------------------------------------
# policy through Python


@pytest.mark.timeout(20)
def test_idle_fast_path_sends_at_once_and_busy_instances_wait_for_the_delay() -> None:
    q = BatchQueue(8, max_queue_delay_us=300_000)
    q.submit(1)
    start = time.perf_counter()
    first = q.next_batch(timeout_ms=5000)
    assert first is not None
    assert time.perf_counter() - start < 0.15, "nothing in flight: no delay"
    # The first batch is still running (no task_done): a new request waits for company up to the delay.
    q.submit(1)
    q.submit(2)
    start = time.perf_counter()
    second = q.next_batch(timeout_ms=5000)
    assert second is not None
    assert time.perf_counter() - start >= 0.25
    assert second.rows == 3
    q.task_done()
    q.task_done()
    assert q.stats()["busy_instances"] == 0


def test_the_queue_takes_no_instance_count_it_counts_the_busy_ones() -> None:
    # The rule needs only how many instances are busy (each worker's next_batch/task_done says so); an
    # `instances` setting was validated and then ignored, so it is gone.
    with pytest.raises(TypeError, match="instances"):
        BatchQueue(4, instances=2)  # type: ignore[call-arg]
    q = BatchQueue(4, max_queue_delay_us=10_000_000)
    for _ in range(3):
        q.submit(1)
        assert take(q).rows == 1, "a lone request on an idle queue never waits"
    assert q.stats()["busy_instances"] == 0


def test_busy_queue_sends_a_full_or_preferred_batch_without_waiting() -> None:
    q = BatchQueue(8, preferred_batch_sizes=[4], max_queue_delay_us=10_000_000)
    q.submit(1)
    assert take(q).rows == 1
    q.submit(1)
    assert q.next_batch(timeout_ms=0) is not None  # idle again: fast path, now one batch is in flight
    for rows in (2, 2, 1):
        q.submit(rows)
    batch = q.next_batch(timeout_ms=1000)
    assert batch is not None
    assert batch.rows == 4, "preferred size 4 reached, the extra row waits"
    assert len(q) == 1


def test_task_done_lets_a_waiting_worker_take_the_idle_fast_path() -> None:
    q = BatchQueue(8, max_queue_delay_us=10_000_000)
    q.submit(1)
    assert q.next_batch(timeout_ms=0) is not None
    q.submit(1)
    assert q.next_batch(timeout_ms=20) is None, "busy: waits for the (long) delay"
    q.task_done()
    assert q.next_batch(timeout_ms=1000) is not None


def test_priorities_go_first_and_default_level_is_the_lowest() -> None:
    q = BatchQueue(1, priority_levels=3)
    low = q.submit(1)
    mid = q.submit(1, priority=2)
    high = q.submit(1, priority=1)
    low2 = q.submit(1, priority=3)
    assert [take(q).tickets[0] for _ in range(4)] == [high, mid, low, low2]
    q2 = BatchQueue(4, priority_levels=3, default_priority_level=1)
    a = q2.submit(1, priority=2)
    b = q2.submit(1)
    assert take(q2).tickets == [b, a]


def test_shape_keys_never_share_a_batch() -> None:
    q = BatchQueue(8)
    key = hash((3, 224, 224))
    a = q.submit(1, shape_key=key)
    b = q.submit(1, shape_key=7)
    c = q.submit(1, shape_key=key)
    first = take(q)
    assert (first.tickets, first.shape_key) == ([a, c], key)
    second = take(q)
    assert (second.tickets, second.shape_key) == ([b], 7)


def test_batching_off_sends_each_request_alone_whatever_its_rows() -> None:
    q = BatchQueue(0, max_queue_delay_us=1_000_000)
    a = q.submit(100)
    b = q.submit(3)
    first = q.next_batch(timeout_ms=1000)
    assert first is not None
    assert (first.tickets, first.offsets) == ([a], [0, 100])
    second = q.next_batch(timeout_ms=1000)
    assert second is not None
    assert (second.tickets, second.offsets) == ([b], [0, 3])


def test_cancel_removes_only_queued_requests() -> None:
    q = BatchQueue(4)
    a = q.submit(1)
    b = q.submit(1)
    assert q.cancel(b) is True
    assert q.cancel(b) is False
    assert q.cancel(123_456) is False
    assert take(q).tickets == [a]
    assert q.cancel(a) is False
    assert q.stats()["cancelled"] == 1


def test_expired_requests_come_back_in_expired_never_in_tickets() -> None:
    q = BatchQueue(4, max_queue_delay_us=10_000_000, default_timeout_us=1_000)
    q.submit(1)
    assert q.next_batch(timeout_ms=0) is not None  # one batch in flight: the next request must wait
    dying = q.submit(1)
    living = q.submit(1, timeout_us=60_000_000)
    batch = q.next_batch(timeout_ms=2000)
    assert batch is not None
    assert batch.expired == [dying]
    assert batch.tickets == []
    assert q.stats()["expired"] == 1
    q.task_done()
    q.task_done()
    assert take(q).tickets == [living]


# ----------------------------------------------------------------------------------------------------------
# close / drain with several waiters


@pytest.mark.timeout(20)
def test_close_drains_then_every_waiter_gets_none() -> None:
    q = BatchQueue(2, max_queue_delay_us=10_000_000)
    tickets = [q.submit(1) for _ in range(5)]
    got: list[int] = []
    finished = []
    lock = threading.Lock()
    q.next_batch(timeout_ms=0)  # take [t0, t1]; keep it busy so the rest would wait for the delay

    def worker() -> None:
        while (batch := q.next_batch()) is not None:
            with lock:
                got.extend(batch.tickets)
            q.task_done()
        with lock:
            finished.append(True)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    q.close()
    for t in threads:
        t.join(timeout=10)
    assert len(finished) == 4
    assert sorted(got) == tickets[2:]
    assert len(q) == 0


# ----------------------------------------------------------------------------------------------------------
# concurrency stress: every ticket out exactly once


@pytest.mark.timeout(60)
def test_stress_every_ticket_dispatched_expired_or_cancelled_exactly_once() -> None:
    submitters, per_submitter, max_rows = 4, 2000, 16
    q = BatchQueue(max_rows, preferred_batch_sizes=[8], max_queue_delay_us=200, priority_levels=2)
    submitted: list[tuple[int, int]] = []
    cancelled: list[int] = []
    dispatched: list[int] = []
    expired: list[int] = []
    lock = threading.Lock()

    def submit(seed: int) -> None:
        mine: list[tuple[int, int]] = []
        gone: list[int] = []
        for i in range(per_submitter):
            rows = 1 + (seed + i) % 4
            timeout = 1 if i % 50 == 0 else 0
            ticket = q.submit(rows, priority=1 + i % 2, timeout_us=timeout, shape_key=i % 3)
            mine.append((ticket, rows))
            if i % 97 == 0 and q.cancel(ticket):
                gone.append(ticket)
        with lock:
            submitted.extend(mine)
            cancelled.extend(gone)

    def work() -> None:
        while (batch := q.next_batch()) is not None:
            check_offsets(batch)
            assert batch.rows <= max_rows
            with lock:
                dispatched.extend(batch.tickets)
                expired.extend(batch.expired)
            q.task_done()

    workers = [threading.Thread(target=work) for _ in range(2)]
    producers = [threading.Thread(target=submit, args=(s,)) for s in range(submitters)]
    for t in workers + producers:
        t.start()
    for t in producers:
        t.join(timeout=30)
    q.close()
    for t in workers:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in workers + producers)

    everyone = [t for t, _ in submitted]
    assert len(everyone) == submitters * per_submitter == len(set(everyone))
    outcomes = Counter(dispatched + expired + cancelled)
    assert set(outcomes) == set(everyone)
    assert max(outcomes.values()) == 1
    stats = q.stats()
    assert stats["dispatched_requests"] == len(dispatched)
    assert stats["expired"] == len(expired)
    assert stats["cancelled"] == len(cancelled)
    assert stats["busy_instances"] == 0
    assert stats["queued_requests"] == stats["queued_rows"] == 0


# ----------------------------------------------------------------------------------------------------------
# hypothesis: random operation sequences keep the invariants

operation = st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 5), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("next"), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("done"), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("cancel"), st.integers(0, 40), st.just(0), st.just(0)),
)


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(operation, max_size=60),
    max_batch_size=st.integers(0, 6),
    delay_us=st.sampled_from([0, 10_000_000]),
)
def test_random_operations_keep_the_invariants(
    ops: list[tuple[str, int, int, int]], max_batch_size: int, delay_us: int
) -> None:
    q = BatchQueue(max_batch_size, max_queue_delay_us=delay_us, priority_levels=3)
    queued: dict[int, tuple[int, int, int]] = {}  # ticket -> (rows, level, shape_key)
    out: set[int] = set()
    busy = 0
    for op, a, b, c in ops:
        if op == "submit":
            if max_batch_size and a > max_batch_size:
                with pytest.raises(ValueError):
                    q.submit(a, priority=b, shape_key=c)
                continue
            ticket = q.submit(a, priority=b, shape_key=c)
            assert ticket not in queued
            assert ticket not in out
            queued[ticket] = (a, b or 3, c)
        elif op == "next":
            batch = q.next_batch(timeout_ms=0)
            if batch is None:
                assert not queued or (delay_us and busy and max_batch_size), "a ready batch was held back"
                continue
            busy += 1
            check_offsets(batch)
            assert batch.expired == []
            assert batch.tickets, "nothing expires here, so a batch has work"
            if max_batch_size:
                assert batch.rows <= max_batch_size
            else:
                assert len(batch.tickets) == 1
            order = [(queued[t][1], t) for t in batch.tickets]
            assert order == sorted(order), "priority level first, then FIFO"
            for i, ticket in enumerate(batch.tickets):
                rows, _, key = queued.pop(ticket)
                assert ticket not in out
                out.add(ticket)
                assert batch.offsets[i + 1] - batch.offsets[i] == rows
                assert key == batch.shape_key
        elif op == "done":
            q.task_done()
            busy = max(0, busy - 1)
        else:
            assert q.cancel(a) is (a in queued)
            queued.pop(a, None)
        assert len(q) == len(queued)
        assert q.stats()["queued_rows"] == sum(rows for rows, _, _ in queued.values())
        assert q.stats()["busy_instances"] == busy
