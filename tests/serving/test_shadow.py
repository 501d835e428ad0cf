"""Comparing a primary's and a shadow's outputs."""

from __future__ import annotations

import msgspec
import numpy as np

from driftline.serving.shadow import compare_outputs
from driftline.store.shadow_stats import ShadowPair


def test_discrete_outputs_decide_agreement():
    a = {"label": np.array([0, 1, 2, 1]), "probabilities": np.array([[0.9, 0.1]] * 4, dtype=np.float32)}
    b = {"label": np.array([0, 1, 0, 1]), "probabilities": np.array([[0.8, 0.2]] * 4, dtype=np.float32)}
    rows, agree, abs_sum, count = compare_outputs(a, b)
    assert (rows, agree) == (4, 3)
    assert count == 8
    assert abs(abs_sum - 0.8) < 1e-6  # |0.9 - 0.8| + |0.1 - 0.2| on each of 4 rows


def test_score_vectors_compare_by_argmax():
    a = {"scores": np.array([[0.1, 0.9], [0.6, 0.4]], dtype=np.float32)}
    b = {"scores": np.array([[0.2, 0.8], [0.3, 0.7]], dtype=np.float32)}
    rows, agree, _, _ = compare_outputs(a, b)
    assert (rows, agree) == (2, 1)


def test_regression_outputs_compare_by_closeness():
    a = {"y": np.array([1.0, 2.0, 3.0])}
    b = {"y": np.array([1.0, 2.0000001, 3.5])}
    rows, agree, abs_sum, count = compare_outputs(a, b)
    assert (rows, agree, count) == (3, 2, 3)
    assert abs(abs_sum - 0.5000001) < 1e-9


def test_nothing_shared_compares_nothing():
    assert compare_outputs({"a": np.zeros(3)}, {"b": np.zeros(3)}) == (0, 0, 0.0, 0)
    assert compare_outputs({"a": np.zeros(3)}, {"a": np.zeros(4)})[0] == 0


def test_pair_summary():
    pair = ShadowPair("m", 1, 2, requests=4, compared_rows=10, agreeing_rows=9, shadow_errors=1)
    pair.primary_latency_s = 0.004
    pair.shadow_latency_s = 0.006
    out = msgspec.to_builtins(pair.summary())
    assert out["agreement"] == 0.9
    assert out["primary_latency_ms"] == 1.0
    assert out["shadow_latency_ms"] == 2.0
