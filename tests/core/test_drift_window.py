"""`driftline._core.ReferenceProfile` and `DriftWindow`: profiles, live windows, merging, serialization."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from driftline import _core

STATS = ["ks", "wasserstein", "psi", "jensenshannon", "hellinger", "kl", "chi2", "chi2_gof", "cramervonmises"]


def _data(rows: int, seed: int, shift: float = 0.0) -> np.ndarray:
    r = np.random.default_rng(seed)
    out = np.empty((rows, 3))
    out[:, 0] = r.normal(shift, 1.0, rows)
    out[:, 1] = np.where(r.random(rows) < 0.05, np.nan, r.exponential(1.0 + shift, rows))
    out[:, 2] = r.integers(0, 3 + int(shift > 0), rows)
    return out


@pytest.fixture
def profile() -> _core.ReferenceProfile:
    return _core.ReferenceProfile.build(_data(500, 1), ["x", "y", "c"], [False, False, True])


def test_profile_accessors(profile: _core.ReferenceProfile) -> None:
    ref = _data(500, 1)
    assert profile.names == ["x", "y", "c"]
    assert profile.categorical == [False, False, True]
    assert (profile.n_rows, profile.bins) == (500, 10)
    np.testing.assert_array_equal(profile.nan_counts(), np.isnan(ref).sum(axis=0))
    y = ref[:, 1][~np.isnan(ref[:, 1])]
    np.testing.assert_array_equal(profile.sorted_values(1), np.sort(y))
    np.testing.assert_array_equal(profile.edges(1), np.quantile(y, np.arange(1, 10) / 10))
    np.testing.assert_array_equal(
        profile.histogram(1), np.bincount(np.searchsorted(profile.edges(1), y, "right"), minlength=10)
    )
    np.testing.assert_array_equal(profile.categories(2), [0.0, 1.0, 2.0])
    assert profile.histogram(2).sum() == 500
    assert profile.edges(2).size == 0
    with pytest.raises(_core.DriftInputError, match="out of range"):
        profile.edges(3)


def test_profile_bytes_round_trip(profile: _core.ReferenceProfile) -> None:
    blob = profile.to_bytes()
    back = _core.ReferenceProfile.from_bytes(blob)
    assert back.names == profile.names
    cur = _data(300, 2, 0.3)
    a, b = profile.compare(cur, STATS), back.compare(cur, STATS)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(_core.DriftInputError):
        _core.ReferenceProfile.from_bytes(blob[:-3])
    with pytest.raises(_core.DriftInputError, match="magic"):
        _core.ReferenceProfile.from_bytes(b"x" * 64)


def test_window_under_cap_equals_array_compare(profile: _core.ReferenceProfile) -> None:
    cur = _data(300, 2, 0.3)
    w = _core.DriftWindow(profile, sample_cap=10_000, seed=3)
    for chunk in np.array_split(cur, 7):
        w.update(chunk)
    assert w.n_rows == 300
    from_window = profile.compare(w, STATS)
    from_array = profile.compare(cur, STATS)
    for k in from_array:
        np.testing.assert_allclose(from_window[k], from_array[k], rtol=1e-12, atol=0, equal_nan=True, err_msg=k)
    np.testing.assert_array_equal(from_window["sampled"], [0.0, 0.0, 0.0])


def test_window_contents(profile: _core.ReferenceProfile) -> None:
    cur = _data(200, 4, 0.5)
    w = _core.DriftWindow(profile, sample_cap=50, seed=1)
    w.update(cur)
    y = cur[:, 1][~np.isnan(cur[:, 1])]
    np.testing.assert_array_equal(
        w.histogram(1), np.bincount(np.searchsorted(profile.edges(1), y, "right"), minlength=10)
    )
    count, mean, std, lo, hi = w.moments(1)
    assert count == y.size
    np.testing.assert_allclose([mean, std, lo, hi], [y.mean(), y.std(), y.min(), y.max()], rtol=1e-12)
    assert w.new_categories(2) == {3.0: int((cur[:, 2] == 3).sum())}
    np.testing.assert_array_equal(w.histogram(2), [(cur[:, 2] == k).sum() for k in range(3)])
    sample = w.sample(0)
    assert sample.size == 50
    assert set(sample) <= set(cur[:, 0])
    assert profile.compare(w, ["ks", "psi"])["sampled"].tolist() == [1.0, 1.0, 0.0]
    assert w.moments(0)[0] == 200


def test_reservoir_is_uniform() -> None:
    p = _core.ReferenceProfile.build(np.arange(100.0)[:, None], ["x"], [False])
    hits = np.zeros(1000)
    for seed in range(200):
        w = _core.DriftWindow(p, sample_cap=100, seed=seed)
        w.update(np.arange(1000.0)[:, None])
        hits[w.sample(0).astype(int)] += 1
    # each value kept with probability 0.1 -> 20 expected hits in 200 runs
    first, last = hits[:500].mean(), hits[500:].mean()
    assert abs(first - 20) < 2.5
    assert abs(last - 20) < 2.5


def test_merge_reset_and_bytes(profile: _core.ReferenceProfile) -> None:
    a_rows, b_rows = _data(150, 5, 0.2), _data(250, 6, 0.2)
    a = _core.DriftWindow(profile, sample_cap=1000, seed=1)
    b = _core.DriftWindow(profile, sample_cap=1000, seed=2)
    a.update(a_rows)
    b.update(b_rows)
    a.merge(b)
    both = np.vstack([a_rows, b_rows])
    whole = _core.DriftWindow(profile, sample_cap=1000, seed=9)
    whole.update(both)
    assert a.n_rows == 400
    for j in range(3):
        np.testing.assert_array_equal(a.histogram(j), whole.histogram(j))
        np.testing.assert_allclose(a.moments(j), whole.moments(j), rtol=1e-12)
        np.testing.assert_array_equal(np.sort(a.sample(j)), np.sort(whole.sample(j)))
    assert a.new_categories(2) == whole.new_categories(2)
    back = _core.DriftWindow.from_bytes(profile, a.to_bytes())
    assert back.n_rows == 400
    np.testing.assert_array_equal(back.sample(0), a.sample(0))
    a.merge(a)  # merging with itself doubles counts and does not deadlock
    assert a.n_rows == 800
    a.reset()
    assert a.n_rows == 0
    assert a.histogram(0).sum() == 0
    assert np.isnan(a.moments(0)[1])


def test_capped_merge_keeps_cap(profile: _core.ReferenceProfile) -> None:
    a = _core.DriftWindow(profile, sample_cap=40, seed=1)
    b = _core.DriftWindow(profile, sample_cap=40, seed=2)
    a.update(_data(100, 7))
    b.update(_data(300, 8))
    a.merge(b)
    assert a.sample(0).size == 40
    assert a.moments(0)[0] == 400


def test_window_errors(profile: _core.ReferenceProfile) -> None:
    w = _core.DriftWindow(profile)
    with pytest.raises(_core.DriftInputError, match="expected 3 features"):
        w.update(np.zeros((2, 2)))
    with pytest.raises(_core.DriftInputError, match="expected 3 features"):
        profile.compare(np.zeros((2, 4)), ["ks"])
    other = _core.ReferenceProfile.build(np.zeros((3, 2)), ["a", "b"], [False, False])
    with pytest.raises(_core.DriftInputError, match="different"):
        w.merge(_core.DriftWindow(other))
    with pytest.raises(_core.DriftInputError):
        _core.DriftWindow.from_bytes(profile, b"garbage")


def test_updates_from_threads(profile: _core.ReferenceProfile) -> None:
    w = _core.DriftWindow(profile, sample_cap=100_000)
    batch = _data(64, 11)

    def feed() -> None:
        for _ in range(50):
            w.update(batch)
            profile.compare(w, ["psi"])

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.n_rows == 4 * 50 * 64
    assert w.histogram(2).sum() == 4 * 50 * 64
