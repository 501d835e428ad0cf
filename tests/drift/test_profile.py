"""Reference profiles: built from every input kind, saved and loaded, found next to a model's data."""

import os

import numpy as np
import polars as pl
import pytest

from driftline.drift import ReferenceProfile, compute_drift
from driftline.drift.profile import PROFILE_FILE, REFERENCE_FILE
from driftline.errors import DriftInputError


def test_build_from_frame(frames):
    ref, _ = frames
    profile = ReferenceProfile.build(ref)
    assert profile.names == ["age", "income", "city", "member", "rooms"]
    assert profile.n_rows == 600
    kinds = [(c.name, c.kind, c.declared) for c in profile.schema.columns]
    assert kinds[2] == ("city", "categorical", "string")
    assert kinds[3] == ("member", "categorical", "bool")
    assert kinds[4] == ("rooms", "categorical", "numeric")  # 3 distinct values: tested like a category
    assert profile.schema.columns[2].vocabulary == ["lyon", "nice", "paris"]
    assert profile.bin_labels(2) == ["lyon", "nice", "paris"]
    assert len(profile.bin_labels(0)) == 10
    assert profile.core.histogram(0).sum() == 600


def test_files_and_arrays_give_the_same_profile(frames, tmp_path):
    ref, cur = frames
    ref.write_parquet(tmp_path / "r.parquet")
    ref.write_csv(tmp_path / "r.csv")
    base = compute_drift(ReferenceProfile.build(ref), cur)
    for source in (tmp_path / "r.parquet", str(tmp_path / "r.csv")):
        report = compute_drift(ReferenceProfile.build(source), cur)
        assert [f.value for f in report.features] == [f.value for f in base.features]
    numeric = ref.select("age", "income").to_numpy()
    profile = ReferenceProfile.build(numeric)
    assert profile.names == ["f0", "f1"]
    assert np.array_equal(profile.core.sorted_values(0), np.sort(numeric[:, 0]))


def test_save_load_round_trip(frames, tmp_path):
    ref, cur = frames
    profile = ReferenceProfile.build(ref, categorical=["rooms"], bins=5)
    path = tmp_path / "p.profile"
    profile.save(path)
    loaded = ReferenceProfile.load(path)
    assert loaded.schema == profile.schema
    assert loaded.core.bins == 5
    a, b = compute_drift(profile, cur), compute_drift(loaded, cur)
    assert a.features == b.features


def test_damaged_profiles_are_rejected(tmp_path):
    with pytest.raises(DriftInputError, match="bad magic"):
        ReferenceProfile.from_bytes(b"hello")
    with pytest.raises(DriftInputError, match="cannot read"):
        ReferenceProfile.load(tmp_path / "missing.profile")
    good = ReferenceProfile.build(np.ones((4, 1))).to_bytes()
    with pytest.raises(Exception):  # noqa: B017 - a DriftInputError from Python or Rust, whichever notices
        ReferenceProfile.from_bytes(good[:-3])


def test_for_model_builds_once_then_loads(frames, tmp_path):
    ref, _ = frames
    assert ReferenceProfile.for_model(tmp_path) is None
    ref.write_parquet(tmp_path / REFERENCE_FILE)
    first = ReferenceProfile.for_model(tmp_path)
    saved = tmp_path / PROFILE_FILE
    assert first is not None
    assert saved.exists()
    mtime = saved.stat().st_mtime_ns
    second = ReferenceProfile.for_model(tmp_path)
    assert second is not None
    assert second.schema == first.schema
    assert saved.stat().st_mtime_ns == mtime  # loaded, not rebuilt
    # Newer training data: rebuilt.
    pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}).write_parquet(tmp_path / REFERENCE_FILE)
    future = saved.stat().st_mtime + 10
    os.utime(tmp_path / REFERENCE_FILE, (future, future))
    third = ReferenceProfile.for_model(tmp_path)
    assert third is not None
    assert third.names == ["x"]


def test_unknown_inputs_are_named(frames):
    ref, _ = frames
    with pytest.raises(DriftInputError, match="zip"):
        ReferenceProfile.build(ref, features=["age", "zip"])
    with pytest.raises(DriftInputError, match="zap"):
        ReferenceProfile.build(ref, categorical=["zap"])
    with pytest.raises(DriftInputError, match="no such file"):
        ReferenceProfile.build("/nonexistent/ref.parquet")
    with pytest.raises(DriftInputError, match="unknown file type"):
        ReferenceProfile.build("ref.xlsx")
    profile = ReferenceProfile.build(ref)
    with pytest.raises(DriftInputError, match="city"):
        profile.encode(ref.with_columns(pl.col("city").cast(pl.Categorical).to_physical().cast(pl.Float64)))
