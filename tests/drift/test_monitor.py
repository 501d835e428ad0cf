"""DriftMonitor: batches fed by the drift thread, reports and alerts per model version."""

import logging
import sys

import numpy as np
import pytest

from driftline.drift import AlertManager, DriftMonitor, ReferenceProfile


@pytest.fixture
def monitor():
    m = DriftMonitor(AlertManager(), window_rows=200, keep=2)
    yield m
    m.close()


def test_submit_feeds_windows_and_check_alerts(monitor, rng):
    profile = ReferenceProfile.build(rng.normal(0, 1, (300, 2)))
    monitor.register("iris", "1", profile)
    assert not monitor.submit("iris", "9", np.zeros((1, 2)))  # not watched
    for _ in range(10):
        assert monitor.submit("iris", "1", rng.normal(3, 1, (16, 2)))
    monitor.join()
    window = monitor.window("iris", "1")
    assert window is not None
    assert window.snapshot().n_rows == 160
    report, event = monitor.check("iris", "1")
    assert report.verdict == "drift"
    assert event is not None
    assert (event.model, event.version, event.state) == ("iris", "1", "drift")
    monitor.unregister("iris", "1")
    with pytest.raises(KeyError):
        monitor.check("iris", "1")


def test_bad_batches_do_not_kill_the_thread(monitor, rng, caplog):
    profile = ReferenceProfile.build(rng.normal(0, 1, (300, 2)))
    monitor.register("m", "1", profile)
    with caplog.at_level(logging.ERROR, logger="driftline.drift.monitor"):
        monitor.submit("m", "1", np.zeros((4, 3)))
        monitor.submit("m", "1", np.zeros((4, 2)))
        monitor.join()
    assert "drift update failed for m/1" in caplog.text
    window = monitor.window("m", "1")
    assert window is not None
    assert window.n_rows == 4


def test_full_queue_drops_instead_of_blocking(rng):
    m = DriftMonitor(max_pending=1)
    try:
        m.register("m", "1", ReferenceProfile.build(rng.normal(0, 1, (50, 1))))
        results = [m.submit("m", "1", np.zeros((1, 1))) for _ in range(200)]
        m.join()
        assert m.dropped == results.count(False)
    finally:
        m.close()


@pytest.mark.timeout(60)
def test_dropped_counts_every_drop_from_many_threads(rng):
    import inspect
    import threading
    import time

    m = DriftMonitor(max_pending=1)

    source, first = inspect.getsourcelines(DriftMonitor.submit)
    counting = {first + i for i, line in enumerate(source) if "dropped +=" in line}
    assert counting

    def yield_between_opcodes(frame, event, arg):
        # Give the GIL away between the opcodes of the counter's read-add-write: when no lock guards it, another
        # thread's increment lands in between and is lost (as it is on a free-threaded build without this help).
        if event == "opcode" and frame.f_lineno in counting:
            time.sleep(0)
        return yield_between_opcodes

    def tracer(frame, event, arg):
        if frame.f_code is DriftMonitor.submit.__code__:
            frame.f_trace_opcodes = True
            return yield_between_opcodes
        return None

    try:
        m.register("m", "1", ReferenceProfile.build(rng.normal(0, 1, (50, 1))))
        batch = np.zeros((1, 1))
        refused = [0] * 6

        def submit(i: int) -> None:
            sys.settrace(tracer)
            try:
                refused[i] = sum(not m.submit("m", "1", batch) for _ in range(300))
            finally:
                sys.settrace(None)

        threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(refused))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        m.join()
        assert sum(refused) > 0
        assert m.dropped == sum(refused)
    finally:
        m.close()
