"""LiveWindow: tumbling by rows and time, sliding view, bounded memory, threads, same numbers as batch."""

import threading

import numpy as np
import pytest

from driftline.drift import DriftPolicy, LiveWindow, ReferenceProfile, compute_drift
from driftline.errors import DriftInputError


@pytest.fixture
def profile(rng):
    return ReferenceProfile.build(rng.normal(0, 1, (500, 3)))


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_row_windows_split_batches_at_the_boundary(profile, rng):
    window = LiveWindow(profile, rows=100, keep=2)
    window.update(rng.normal(0, 1, (250, 3)))
    assert window.windows_closed == 2
    assert window.n_rows == 50
    assert window.snapshot("last").n_rows == 100
    assert window.snapshot("current").n_rows == 50
    assert window.snapshot("sliding").n_rows == 250
    window.update(rng.normal(0, 1, (120, 3)))
    assert window.windows_closed == 3
    # keep=2: only the last two closed windows plus the open one.
    assert window.snapshot("sliding").n_rows == 2 * 100 + 70


def test_time_windows_with_a_fake_clock(profile, rng):
    clock = FakeClock()
    window = LiveWindow(profile, seconds=60, keep=3, clock=clock)
    window.update(rng.normal(0, 1, (10, 3)))
    clock.now = 59
    assert not window.tick()
    clock.now = 61
    assert window.tick()
    window.update(rng.normal(0, 1, (5, 3)))
    assert (window.windows_closed, window.n_rows) == (1, 5)
    clock.now = 125
    window.update(rng.normal(0, 1, (7, 3)))
    assert (window.windows_closed, window.n_rows) == (2, 7)
    assert window.snapshot().n_rows == 22


def test_window_report_equals_batch_report(profile, rng):
    cur = rng.normal(0.4, 1, (300, 3))
    window = LiveWindow(profile, model="iris", version="2")
    for chunk in np.array_split(cur, 7):
        window.update(chunk)
    policy = DriftPolicy(stats={"f0": "ks", "f1": "psi", "f2": "wasserstein_norm"})
    live = window.report(policy)
    batch = compute_drift(profile, cur, stats={"f0": "ks", "f1": "psi", "f2": "wasserstein_norm"})
    assert (live.model, live.version, live.n_cur_rows) == ("iris", "2", 300)
    for a, b in zip(live.features, batch.features, strict=True):
        assert a.stat == b.stat
        assert a.value == pytest.approx(b.value, rel=1e-9, abs=1e-12)
        assert a.histogram == b.histogram
        assert not a.sampled


def test_sample_cap_marks_sampled(profile, rng):
    window = LiveWindow(profile, sample_cap=50)
    window.update(rng.normal(0, 1, (200, 3)))
    report = window.report(DriftPolicy(stat="ks"))
    assert all(f.sampled for f in report.features)
    assert all(f.n_cur == 200 for f in report.features) or all(f.n_cur == 50 for f in report.features)
    assert sum(report.features[0].histogram.current) == 200  # histograms stay exact


def test_concurrent_updates_lose_nothing(profile, rng):
    window = LiveWindow(profile, rows=1000, keep=100)
    batch = rng.normal(0, 1, (32, 3))

    def feed():
        for _ in range(50):
            window.update(batch)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert window.snapshot().n_rows == 4 * 50 * 32
    assert window.windows_closed == 6


def test_reset_and_validation(profile, rng):
    window = LiveWindow(profile, rows=10)
    window.update(rng.normal(0, 1, (25, 3)))
    window.reset()
    assert window.snapshot().n_rows == 0
    with pytest.raises(DriftInputError):
        window.update(rng.normal(0, 1, (5, 4)))
    with pytest.raises(DriftInputError):
        LiveWindow(profile, rows=0)
    with pytest.raises(DriftInputError):
        LiveWindow(profile, keep=0)


def test_frames_with_strings_feed_the_window(frames):
    ref, cur = frames
    profile = ReferenceProfile.build(ref)
    window = LiveWindow(profile)
    window.update(cur.head(200))
    window.update(cur.tail(200))
    live = window.report()
    batch = compute_drift(profile, cur)
    assert live.feature("city").value == pytest.approx(batch.feature("city").value, rel=1e-12)
    assert live.feature("rooms").histogram == batch.feature("rooms").histogram
