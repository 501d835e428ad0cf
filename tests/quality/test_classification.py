"""classification_quality equals scikit-learn on random data: binary, multi-class, string labels, absent classes."""

import math

import msgspec
import numpy as np
import pytest
from sklearn import metrics

from driftline.quality import ClassificationQuality, classification_quality

TOL = 1e-12
SEEDS = [0, 1, 2]


def close(a, b):
    return abs(a - b) <= TOL * max(1.0, abs(b))


def make(seed, classes, n=400, present=None):
    """Labels drawn from ``present`` (default all classes), predictions right ~60% of the time, and probabilities
    (one column per class) that favour the prediction."""
    rng = np.random.default_rng(seed)
    present = classes if present is None else present
    true = rng.choice(np.asarray(present, dtype=object), n)
    pred = np.where(rng.random(n) < 0.6, true, rng.choice(np.asarray(present, dtype=object), n))
    proba = rng.random((n, len(classes))) + 2.0 * (pred[:, None] == np.asarray(classes, dtype=object)[None, :])
    proba /= proba.sum(axis=1, keepdims=True)
    kind = str if isinstance(classes[0], str) else int
    return [kind(v) for v in true], [kind(v) for v in pred], proba


def check_against_sklearn(q: ClassificationQuality, true, pred, proba, classes):
    assert q.n == len(true)
    assert close(q.accuracy.value, metrics.accuracy_score(true, pred))
    p, r, f, s = metrics.precision_recall_fscore_support(true, pred, labels=classes, average=None, zero_division=0)
    assert [c.label for c in q.classes] == list(classes)
    for j, c in enumerate(q.classes):
        assert close(c.precision.value, p[j])
        assert close(c.recall.value, r[j])
        assert close(c.f1.value, f[j])
        assert c.support == s[j]
    pm, rm, fm, _ = metrics.precision_recall_fscore_support(
        true, pred, labels=classes, average="macro", zero_division=0
    )
    assert close(q.precision_macro.value, pm)
    assert close(q.recall_macro.value, rm)
    assert close(q.f1_macro.value, fm)
    assert q.confusion.labels == list(classes)
    assert q.confusion.counts == metrics.confusion_matrix(true, pred, labels=classes).tolist()
    if proba is not None:
        assert close(q.log_loss.value, metrics.log_loss(true, y_proba=proba, labels=classes))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("classes", [[0, 1], [0, 1, 2, 3], ["cat", "dog", "emu"]])
def test_metrics_equal_sklearn(seed, classes):
    true, pred, proba = make(seed, classes)
    q = classification_quality(true, pred, proba, classes=classes, resamples=50, seed=seed)
    check_against_sklearn(q, true, pred, proba, classes)
    if len(classes) == 2:
        assert q.positive == classes[1]
        assert close(q.roc_auc.value, metrics.roc_auc_score(np.asarray(true) == classes[1], proba[:, 1]))
    else:
        assert q.roc_auc is None


@pytest.mark.parametrize("seed", SEEDS)
def test_labels_only_default_order_is_sorted_union(seed):
    true, pred, _ = make(seed, ["b", "a", "c"])
    q = classification_quality(true, pred, resamples=20)
    check_against_sklearn(q, true, pred, None, ["a", "b", "c"])
    assert q.log_loss is None
    assert q.roc_auc is None


@pytest.mark.parametrize("seed", SEEDS)
def test_absent_classes_count_as_zero(seed):
    """A class in `classes` that no row holds, and one that is true but never predicted: sklearn's zeros."""
    classes = [0, 1, 2, 3, 4]
    true, pred, proba = make(seed, classes, present=[0, 1, 2])
    pred = [0 if v == 2 else v for v in pred]  # class 2 is never predicted: its precision divides by zero
    q = classification_quality(true, pred, proba, classes=classes, resamples=20)
    check_against_sklearn(q, true, pred, proba, classes)
    absent = q.classes[4]
    assert (absent.support, absent.precision.n, absent.recall.n, absent.f1.n) == (0, 0, 0, 0)
    assert (absent.precision.lower, absent.precision.upper) == (0.0, 1.0)
    assert q.classes[2].precision.value == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_auc_of_either_positive_class(seed):
    true, pred, proba = make(seed, ["no", "yes"])
    q = classification_quality(true, pred, proba, classes=["no", "yes"], positive="no", resamples=20)
    assert q.positive == "no"
    assert close(q.roc_auc.value, metrics.roc_auc_score(np.asarray(true) == "no", proba[:, 0]))


def test_auc_with_ties_equals_sklearn():
    rng = np.random.default_rng(5)
    true = rng.integers(0, 2, 300).tolist()
    p1 = rng.integers(0, 5, 300) / 4.0  # five distinct scores: many ties
    proba = np.stack([1 - p1, p1], axis=1)
    q = classification_quality(true, (p1 > 0.5).astype(int), proba, classes=[0, 1], resamples=20)
    assert close(q.roc_auc.value, metrics.roc_auc_score(true, p1))


def test_single_class_auc_is_nan_and_log_loss_clips():
    true = [1, 1, 1]
    proba = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]  # a zero probability of the true class is clipped to eps
    q = classification_quality(true, [1, 0, 1], proba, classes=[0, 1], resamples=20)
    assert math.isnan(q.roc_auc.value)
    assert math.isnan(q.roc_auc.lower)
    assert close(q.log_loss.value, metrics.log_loss(true, y_proba=proba, labels=[0, 1]))


def test_integral_float_and_bool_labels_are_ints():
    q = classification_quality(np.array([0.0, 1.0, 1.0]), np.array([False, True, False]), resamples=10)
    assert q.confusion.labels == [0, 1]
    assert q.confusion.counts == [[1, 0], [1, 1]]


def test_intervals_contain_values_and_name_their_rows():
    true, pred, proba = make(3, [0, 1])
    q = classification_quality(true, pred, proba, classes=[0, 1], resamples=200)
    estimates = [q.accuracy, q.precision_macro, q.recall_macro, q.f1_macro, q.log_loss, q.roc_auc]
    for c in q.classes:
        estimates += [c.precision, c.recall, c.f1]
    for e in estimates:
        assert e.lower <= e.value <= e.upper
    assert q.accuracy.method == "wilson"
    assert q.f1_macro.method == "bootstrap"
    cm = np.array(q.confusion.counts)
    assert q.classes[1].precision.n == cm[:, 1].sum()
    assert q.classes[1].recall.n == cm[1].sum()
    assert q.classes[1].f1.n == cm[1].sum() + cm[:, 1].sum() - cm[1, 1]


def test_report_round_trips_through_json():
    true, pred, proba = make(4, ["a", "b"])
    q = classification_quality(true, pred, proba, classes=["a", "b"], resamples=20)
    assert msgspec.json.decode(msgspec.json.encode(q), type=ClassificationQuality) == q
