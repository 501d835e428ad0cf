"""SharedWindows: windows of several processes saved to one store and merged equal one process's on all the traffic."""

import math
import threading

import msgspec
import numpy as np
import polars as pl
import pytest

from driftline import _core
from driftline.config import DriftSettings
from driftline.drift import DriftMonitor, DriftPolicy, LiveWindow, ReferenceProfile, SharedWindows, evaluate
from driftline.drift.recode import recode_window
from driftline.drift.shared import decode_state, encode_state, merge_states
from driftline.errors import DriftInputError
from driftline.store.db import open_database
from driftline.store.drift_windows import DriftWindowStore, SavedWindow


class FakeClock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self):
        return self.now


def assert_same_report(merged, single):
    """Every field of every feature equal (floats bit for bit, NaN matching NaN); only `created` may differ."""
    a, b = msgspec.structs.asdict(merged), msgspec.structs.asdict(single)
    assert {k: v for k, v in a.items() if k not in {"created", "features"}} == {
        k: v for k, v in b.items() if k not in {"created", "features"}
    }
    assert len(merged.features) == len(single.features)
    for fa, fb in zip(merged.features, single.features, strict=True):
        for field in fa.__struct_fields__:
            x, y = getattr(fa, field), getattr(fb, field)
            if isinstance(x, float) and math.isnan(x):
                assert isinstance(y, float), (fa.name, field)
                assert math.isnan(y), (fa.name, field)
            else:
                assert x == y, (fa.name, field, x, y)


@pytest.fixture
def db(store_at):
    d = open_database(store_at("driftline.db"))
    yield d
    d.close()


@pytest.fixture
def traffic(frames):
    """The reference profile and 12 seeded batches of shifted traffic (strings, booleans, new categories)."""
    ref, cur = frames
    return ReferenceProfile.build(ref), [cur.slice(i * 40, 40) for i in range(10)] + [cur.slice(0, 7), cur.slice(7, 1)]


POLICY = DriftPolicy(
    stats={"age": "ks", "income": "wasserstein_norm", "city": "chi2", "member": "psi", "rooms": "jensenshannon"}
)


@pytest.mark.parametrize("policy", [None, POLICY])
def test_three_processes_merged_equal_one_on_all_the_traffic(db, traffic, policy):
    profile, batches = traffic
    single = DriftMonitor(window_rows=None)
    monitors = [DriftMonitor(window_rows=None) for _ in range(3)]
    shared = [SharedWindows(m, DriftWindowStore(db), f"p{i}") for i, m in enumerate(monitors)]
    try:
        single.register("m", "1", profile, policy)
        for m, s in zip(monitors, shared, strict=True):
            m.register("m", "1", profile, policy)
            m.share(s)
        for i, batch in enumerate(batches):
            assert single.submit("m", "1", batch)
            assert monitors[i % 3].submit("m", "1", batch)
        for m in [single, *monitors]:
            m.join()
        for s in shared[1:]:
            assert s.save() == 1
        # The answering process saves its own window first, then merges every process's.
        merged, _ = monitors[0].check("m", "1")
        alone, _ = single.check("m", "1")
        assert merged.n_cur_rows == sum(b.height for b in batches) == alone.n_cur_rows
        assert merged.verdict == "drift"  # the traffic is shifted: the comparison is not of empty windows
        assert_same_report(merged, alone)
        # Each process alone saw only its share.
        own = monitors[1].window("m", "1")
        assert own is not None
        assert own.report(policy).n_cur_rows < merged.n_cur_rows
    finally:
        for m in [single, *monitors]:
            m.close()


def test_time_windows_align_so_every_view_merges_exactly(db, traffic):
    """Windows of 60 s on one clock: after 4 slots with keep=2 the sliding view drops slot 0 in every process."""
    profile, batches = traffic
    clock = FakeClock(6000.0)  # a multiple of 60: slot 100
    make = {"seconds": 60, "keep": 2, "clock": clock, "model": "m", "version": "1"}
    single = LiveWindow(profile, **make)
    procs = [LiveWindow(profile, **make) for _ in range(3)]
    for i, batch in enumerate(batches):
        clock.now = 6000.0 + 20 * i + 1  # 12 batches over slots 100-104
        single.update(batch)
        # Process 2 takes the first two batches only: its open window stays at slot 100, out of every view.
        procs[2 if i < 2 else i % 2].update(batch)
    store = DriftWindowStore(db)
    store.save([SavedWindow(f"p{i}", "m", 1, *encode_state(w), 1) for i, w in enumerate(procs)])
    states = [decode_state(procs[0], row.state) for row in store.read("m", 1, 0)]
    assert all(s is not None for s in states)
    for view in ("current", "last", "sliding"):
        merged = evaluate(profile, merge_states(procs[0], states, view), POLICY)
        alone = evaluate(profile, single.snapshot(view), POLICY)
        assert merged.n_cur_rows > 0, view
        assert_same_report(merged, alone)
    # Slot 100's rows are out of the sliding view in every process, as in one.
    assert merge_states(procs[0], states).n_rows == single.snapshot().n_rows < sum(b.height for b in batches)


def test_row_windows_merge_each_process_own_views(db, traffic):
    """Row windows have no shared index: each view takes each process's own window of that view."""
    profile, batches = traffic
    procs = [LiveWindow(profile, rows=50, keep=1) for _ in range(2)]
    for i, batch in enumerate(batches[:6]):
        procs[i % 2].update(batch)  # 120 rows each: 2 closed windows of 50 (1 kept) and 20 open
    states = [decode_state(procs[0], encode_state(w)[0]) for w in procs]
    assert all(s is not None and s.closed == 2 for s in states)
    assert merge_states(procs[0], states, "current").n_rows == 40
    assert merge_states(procs[0], states, "last").n_rows == 100
    assert merge_states(procs[0], states, "sliding").n_rows == 140


def test_other_profiles_settings_and_damage_do_not_merge(traffic, rng):
    profile, batches = traffic
    window = LiveWindow(profile, rows=100)
    window.update(batches[0])
    state, rows = encode_state(window)
    assert rows == 40
    other = ReferenceProfile.build(pl.DataFrame({"age": rng.normal(0, 1, 50)}))
    assert decode_state(LiveWindow(other, rows=100), state) is None
    assert decode_state(LiveWindow(profile, rows=200), state) is None  # other window settings
    with pytest.raises(DriftInputError):
        decode_state(window, b"nope")
    with pytest.raises(DriftInputError):
        decode_state(window, state[:-3])


def test_stale_processes_leave_reports_and_the_table(db, traffic):
    profile, batches = traffic
    clock = FakeClock(1_000.0)
    monitors = [DriftMonitor(window_rows=None) for _ in range(2)]
    shared = [SharedWindows(m, DriftWindowStore(db), f"p{i}", retain_s=60, clock=clock) for i, m in enumerate(monitors)]
    try:
        for m, s in zip(monitors, shared, strict=True):
            m.register("m", "1", profile)
            m.share(s)
            m.submit("m", "1", batches[0])
            m.join()
        monitors[1].close()  # a clean shutdown saves its final window
        assert monitors[0].check("m", "1")[0].n_cur_rows == 80
        clock.now += 50  # p0 keeps saving (an unchanged window is only marked fresh); p1 has gone quiet
        assert shared[0].save() == 0
        assert monitors[0].check("m", "1")[0].n_cur_rows == 80  # p1's last window still counts
        clock.now += 20
        shared[0].save()
        assert monitors[0].check("m", "1")[0].n_cur_rows == 40
        assert [r.process for r in DriftWindowStore(db).read("m", 1, 0)] == ["p0"]  # p1's row was deleted
    finally:
        monitors[0].close()


def test_a_full_reservoir_merges_to_a_sample_with_exact_counts(db, traffic):
    profile, batches = traffic
    monitors = [DriftMonitor(window_rows=None, sample_cap=30) for _ in range(2)]
    shared = [SharedWindows(m, DriftWindowStore(db), f"p{i}") for i, m in enumerate(monitors)]
    try:
        for m, s, batch in zip(monitors, shared, batches, strict=False):
            m.register("m", "1", profile, POLICY)
            m.share(s)
            m.submit("m", "1", batch)
            m.join()
            s.save()
        report, _ = monitors[0].check("m", "1")
        age = report.feature("age")
        assert age.sampled
        assert sum(age.histogram.current) == 80  # histograms stay exact
    finally:
        for m in monitors:
            m.close()


def test_saved_state_is_what_the_window_holds(traffic):
    profile, batches = traffic
    window = LiveWindow(profile, rows=30, keep=3)
    for batch in batches[:3]:
        window.update(batch)
    state = decode_state(window, encode_state(window)[0])
    assert state is not None
    assert [i for i, _ in state.windows] == [1, 2, 3, 4]  # windows 0..3 closed (keep 3), 4 open
    assert sum(int(w.n_rows) for _, w in state.windows) == window.snapshot().n_rows == 120 - 30
    assert np.array_equal(state.windows[-1][1].histogram(0), window.snapshot("current").histogram(0))


@pytest.mark.parametrize(("interval", "retain"), [(0, 900), (-1, 900), (10, 5)])
def test_persist_settings_are_validated(interval, retain):
    with pytest.raises(ValueError, match="persist_interval_s"):
        DriftSettings(persist_interval_s=interval, retain_s=retain)
    assert DriftSettings().persist_interval_s == 5.0


def test_saves_from_several_threads_while_traffic_flows(db, traffic):
    profile, batches = traffic
    monitor = DriftMonitor(window_rows=100, keep=50)
    shared = SharedWindows(monitor, DriftWindowStore(db), "p0")
    monitor.register("m", "1", profile)
    monitor.register("m", "2", profile)
    monitor.share(shared)
    errors: list[BaseException] = []

    def save_often():
        try:
            for _ in range(20):
                shared.save()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=save_often) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(5):
        for batch in batches:
            monitor.submit("m", "1", batch)
            monitor.submit("m", "2", batch)
    for t in threads:
        t.join()
    monitor.close()  # applies what is queued, then saves a last time
    assert errors == []
    rows = {r.version: r.rows for r in DriftWindowStore(db).read("m", 1, 0) + DriftWindowStore(db).read("m", 2, 0)}
    assert rows == {1: 5 * 408, 2: 5 * 408}


def test_strings_the_reference_never_saw_keep_their_names_across_processes(db, frames):
    """Each process numbers unseen strings in the order it met them; merged, every string keeps its own counts."""
    ref, cur = frames
    data = ReferenceProfile.build(ref).to_bytes()
    single = LiveWindow(ReferenceProfile.from_bytes(data), model="m", version="1")
    procs = [LiveWindow(ReferenceProfile.from_bytes(data), model="m", version="1") for _ in range(3)]
    batches = []
    for i, order in enumerate([["rome", "oslo"], ["oslo", "bern", "rome"], ["bern"], ["oslo"], ["kyiv", "rome"]]):
        batch = cur.slice(i * 20, 20 + i).with_columns(
            city=pl.Series([order[k % len(order)] if k % 3 else "paris" for k in range(20 + i)])
        )
        batches.append(batch)
        single.update(batch)
        procs[i % 3].update(batch)
    assert procs[0].profile.encoder.new_strings(2) != procs[1].profile.encoder.new_strings(2)  # "rome" 3 vs "oslo" 3
    store = DriftWindowStore(db)
    store.save([SavedWindow(f"p{i}", "m", 1, *encode_state(w), 1) for i, w in enumerate(procs)])
    states = [decode_state(procs[0], row.state) for row in store.read("m", 1, 0)]
    merged = evaluate(procs[0].profile, merge_states(procs[0], states), POLICY)
    alone = evaluate(single.profile, single.snapshot(), POLICY)
    city, expected = merged.feature("city"), alone.feature("city")
    counts = dict(zip(city.histogram.labels, city.histogram.current, strict=True))
    assert counts == dict(zip(expected.histogram.labels, expected.histogram.current, strict=True))
    assert {"rome", "oslo", "bern", "kyiv"} <= set(counts)
    assert city.value == pytest.approx(expected.value, rel=1e-9)
    assert city.pvalue == pytest.approx(expected.pvalue, rel=1e-9)
    for name in ("age", "income", "member", "rooms"):
        assert merged.feature(name) == alone.feature(name)


def test_recoding_adds_counts_of_codes_that_meet(traffic):
    profile, _ = traffic
    window = _core_window_with_new_codes(profile)
    data = window.to_bytes()
    assert recode_window(data, {}) is data
    moved = _core.DriftWindow.from_bytes(profile.core, recode_window(data, {4: {7.0: 8.0, 9.0: 8.0}}))
    assert moved.new_categories(4) == {8.0: 3}
    with pytest.raises(DriftInputError):
        recode_window(data[:-5], {4: {7.0: 8.0}})


def _core_window_with_new_codes(profile):
    window = _core.DriftWindow(profile.core, 100, 0)
    rows = np.zeros((3, len(profile.names)))
    rows[:, 4] = [7.0, 9.0, 9.0]  # "rooms" is categorical on 1..3: 7 and 9 are unseen
    window.update(rows)
    return window
