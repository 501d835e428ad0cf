"""Drift core benchmarks: Rust statistics vs scipy/numpy, whole reports vs Evidently, window updates.

N rows x 20 numeric (+5 categorical) features on each side; N = 1,000,000 with BENCH_FULL=1, else
20,000 so the normal suite (which runs each benchmark once under --benchmark-disable) stays quick.
Ratios are taken against baselines measured in the same run: compare the groups' means.
"""

import warnings

import numpy as np
import polars as pl
import pytest
from benchmarks.conftest import FULL
from scipy import stats

from driftline.drift import LiveWindow, ReferenceProfile, compute_drift, evaluate

N = 1_000_000 if FULL else 20_000
NUMERIC, CATEGORICAL = 20, 5
pytestmark = pytest.mark.benchmark


def _frame(rng, shift):
    cols = {f"x{i}": rng.normal(shift * (i % 3) * 0.1, 1 + 0.05 * i, N) for i in range(NUMERIC)}
    cols.update({f"c{i}": rng.integers(0, 8 + i, N).astype(np.float64) for i in range(CATEGORICAL)})
    return pl.DataFrame(cols)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    ref, cur = _frame(rng, 0.0), _frame(rng, 1.0)
    categorical = [f"c{i}" for i in range(CATEGORICAL)]
    profile = ReferenceProfile.build(ref, categorical=categorical)
    return {
        "ref": ref,
        "cur": cur,
        "categorical": categorical,
        "profile": profile,
        "ref_np": ref.to_numpy(),
        "cur_np": profile.encode(cur),
    }


def _pedantic(benchmark, fn, rounds=3):
    # Heavy cases run a fixed few rounds; pytest-benchmark's calibration would repeat them for minutes.
    return benchmark.pedantic(fn, rounds=rounds if FULL else 1, iterations=1, warmup_rounds=0)


@pytest.mark.benchmark(group="drift-profile-build")
def test_profile_build(benchmark, data):
    def build():
        return ReferenceProfile.build(data["ref"], categorical=data["categorical"])

    profile = _pedantic(benchmark, build)
    assert profile.n_rows == N


@pytest.mark.parametrize("stat", ["ks", "wasserstein", "psi"])
def test_driftline_stat(benchmark, data, stat):
    benchmark.group = f"drift-{stat}"
    result = _pedantic(benchmark, lambda: data["profile"].compare(data["cur_np"], [stat]), rounds=10)
    assert np.isfinite(result[stat][:NUMERIC]).all()


def _scipy_ks(ref, cur):
    return [stats.ks_2samp(ref[:, j], cur[:, j]).pvalue for j in range(NUMERIC)]


def _scipy_wasserstein(ref, cur):
    return [stats.wasserstein_distance(ref[:, j], cur[:, j]) for j in range(NUMERIC)]


def _numpy_psi(ref, cur, bins=10):
    """Vectorised PSI over all numeric features (quantile edges, searchsorted, 1e-4 floor)."""
    r, c = ref[:, :NUMERIC], cur[:, :NUMERIC]
    edges = np.quantile(r, np.arange(1, bins) / bins, axis=0)  # (bins-1, features)
    out = np.empty(NUMERIC)
    for j in range(NUMERIC):
        p = np.bincount(np.searchsorted(edges[:, j], r[:, j], side="right"), minlength=bins) / r.shape[0]
        q = np.bincount(np.searchsorted(edges[:, j], c[:, j], side="right"), minlength=bins) / c.shape[0]
        p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        out[j] = np.sum((q - p) * np.log(q / p))
    return out


BASELINES = {"ks": _scipy_ks, "wasserstein": _scipy_wasserstein, "psi": _numpy_psi}


@pytest.mark.parametrize("stat", ["ks", "wasserstein", "psi"])
def test_baseline_stat(benchmark, data, stat):
    benchmark.group = f"drift-{stat}"
    fn = BASELINES[stat]
    result = _pedantic(benchmark, lambda: fn(data["ref_np"], data["cur_np"]))
    ours = data["profile"].compare(data["cur_np"], [stat])
    key = "ks_pvalue" if stat == "ks" else stat
    np.testing.assert_allclose(ours[key][:NUMERIC], result, rtol=1e-9, atol=1e-12)


@pytest.mark.benchmark(group="drift-report")
def test_report_profile_prebuilt(benchmark, data):
    report = _pedantic(benchmark, lambda: evaluate(data["profile"], data["profile"].encode(data["cur"])))
    assert len(report.features) == NUMERIC + CATEGORICAL


@pytest.mark.benchmark(group="drift-report")
def test_report_from_frames(benchmark, data):
    report = _pedantic(benchmark, lambda: compute_drift(data["ref"], data["cur"], categorical=data["categorical"]))
    assert report.verdict in ("drift", "ok")


@pytest.mark.benchmark(group="drift-report")
def test_report_evidently(benchmark, data):
    evidently = pytest.importorskip("evidently")
    from evidently.presets import DataDriftPreset

    definition = evidently.DataDefinition(
        numerical_columns=[f"x{i}" for i in range(NUMERIC)], categorical_columns=data["categorical"]
    )
    ref = evidently.Dataset.from_pandas(data["ref"].to_pandas(), data_definition=definition)
    cur = evidently.Dataset.from_pandas(data["cur"].to_pandas(), data_definition=definition)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return evidently.Report([DataDriftPreset()]).run(cur, ref)

    snapshot = _pedantic(benchmark, run, rounds=1)
    assert snapshot is not None


@pytest.fixture(scope="module")
def window_data():
    rng = np.random.default_rng(1)
    profile = ReferenceProfile.build(rng.normal(0, 1, (10_000, NUMERIC)))
    return profile, rng.normal(0, 1, (32, NUMERIC))


@pytest.mark.benchmark(group="drift-window-update")
def test_window_update_core(benchmark, window_data):
    from driftline import _core

    profile, batch = window_data
    window = _core.DriftWindow(profile.core, 100_000, 0)
    benchmark(window.update, batch)
    assert window.n_rows > 0


@pytest.mark.benchmark(group="drift-window-update")
def test_window_update_live(benchmark, window_data):
    profile, batch = window_data
    window = LiveWindow(profile, rows=100_000, keep=2)
    benchmark(window.update, batch)
    assert window.snapshot().n_rows > 0
