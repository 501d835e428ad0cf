"""Every bad argument is a BadRequest (HTTP 400) whose message starts with the argument's name; sizes first."""

import re

import numpy as np
import pytest

from driftline.errors import BadRequest
from driftline.quality import classification_quality, regression_quality, wilson
from driftline.quality.inputs import MAX_CLASSES
from driftline.quality.intervals import MAX_RESAMPLES

P2 = [[0.5, 0.5], [0.2, 0.8], [1.0, 0.0]]
CLASSIFICATION = {
    "lengths differ": ("y_pred", dict(y_true=[0, 1, 1], y_pred=[0, 1])),
    "empty": ("y_true", dict(y_true=[], y_pred=[])),
    "not a sequence": ("y_true", dict(y_true=3, y_pred=[0])),
    "NaN target": ("y_true", dict(y_true=[0.0, np.nan, 1.0], y_pred=[0, 1, 1])),
    "NaN prediction": ("y_pred", dict(y_true=[0, 1, 1], y_pred=[0.0, 1.0, np.nan])),
    "non-integral labels": ("y_true", dict(y_true=[0.5, 1.0, 1.0], y_pred=[0, 1, 1])),
    "2-D labels": ("y_true", dict(y_true=[[0], [1], [1]], y_pred=[0, 1, 1])),
    "object labels": ("y_true", dict(y_true=np.array([0, "a", None], dtype=object), y_pred=[0, 1, 1])),
    "mixed kinds": ("y_pred", dict(y_true=[0, 1, 1], y_pred=["a", "b", "b"])),
    "label not in classes": ("y_true", dict(y_true=[0, 1, 2], y_pred=[0, 1, 1], classes=[0, 1])),
    "prediction not in classes": ("y_pred", dict(y_true=[0, 1, 1], y_pred=[0, 1, 7], classes=[0, 1])),
    "repeated class": ("classes", dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], classes=[0, 1, 1])),
    "empty classes": ("classes", dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], classes=[])),
    "classes of another kind": ("classes", dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], classes=["0", "1"])),
    "proba without classes": ("classes", dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], proba=P2)),
    "proba rows": ("proba", dict(y_true=[0, 1], y_pred=[0, 1], proba=P2, classes=[0, 1])),
    "proba width": ("proba", dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], proba=np.eye(3), classes=[0, 1])),
    "proba 1-D": ("proba", dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], proba=[0.5, 0.8, 0.0], classes=[0, 1])),
    "proba ragged": ("proba", dict(y_true=[0, 1], y_pred=[0, 1], proba=[[0.5, 0.5], [1.0]], classes=[0, 1])),
    "proba sum": (
        "proba",
        dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], proba=[[0.5, 0.5], [0.2, 0.8 + 2e-6], [1.0, 0.0]], classes=[0, 1]),
    ),
    "proba negative": (
        "proba",
        dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], proba=[[0.5, 0.5], [1.2, -0.2], [1.0, 0.0]], classes=[0, 1]),
    ),
    "proba NaN": (
        "proba",
        dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], proba=[[0.5, 0.5], [np.nan, 1.0], [1.0, 0.0]], classes=[0, 1]),
    ),
    "positive not present": (
        "positive",
        dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], proba=P2, classes=[0, 1], positive=2),
    ),
    "positive of another kind": ("positive", dict(y_true=[0, 1, 1], y_pred=[0, 1, 1], positive="1")),
    "confidence": ("confidence", dict(y_true=[0, 1], y_pred=[0, 1], confidence=1.0)),
    "resamples zero": ("resamples", dict(y_true=[0, 1], y_pred=[0, 1], resamples=0)),
    "resamples float": ("resamples", dict(y_true=[0, 1], y_pred=[0, 1], resamples=10.0)),
    "seed not an integer": ("seed", dict(y_true=[0, 1], y_pred=[0, 1], seed="7")),
}
REGRESSION = {
    "lengths differ": ("y_pred", dict(y_true=[1.0, 2.0], y_pred=[1.0])),
    "empty": ("y_true", dict(y_true=np.array([]), y_pred=np.array([]))),
    "NaN target": ("y_true", dict(y_true=[1.0, np.nan], y_pred=[1.0, 2.0])),
    "infinite prediction": ("y_pred", dict(y_true=[1.0, 2.0], y_pred=[1.0, np.inf])),
    "strings": ("y_true", dict(y_true=["a", "b"], y_pred=[1.0, 2.0])),
    "2-D": ("y_pred", dict(y_true=[1.0, 2.0], y_pred=[[1.0], [2.0]])),
    "confidence": ("confidence", dict(y_true=[1.0, 2.0], y_pred=[1.0, 2.0], confidence=0.0)),
    "resamples over the cap": ("resamples", dict(y_true=[1.0], y_pred=[1.0], resamples=MAX_RESAMPLES + 1)),
    "negative seed": ("seed", dict(y_true=[1.0], y_pred=[1.0], seed=-1)),
}


def raises_naming(name):
    return pytest.raises(BadRequest, match=rf"^{re.escape(name)}\b")


@pytest.mark.parametrize("case", CLASSIFICATION)
def test_classification_bad_input(case):
    name, kwargs = CLASSIFICATION[case]
    with raises_naming(name) as info:
        classification_quality(**kwargs)
    assert info.value.http_status == 400


@pytest.mark.parametrize("case", REGRESSION)
def test_regression_bad_input(case):
    name, kwargs = REGRESSION[case]
    with raises_naming(name):
        regression_quality(**kwargs)


def test_wilson_bad_input():
    with raises_naming("successes"):
        wilson(11, 10)
    with raises_naming("confidence"):
        wilson(1, 10, confidence=-0.5)
    with raises_naming("confidence"):  # below 1, but too close to it for a finite normal quantile
        wilson(1, 10, confidence=0.9999999999999999)


def test_too_many_classes_is_refused_before_anything_is_allocated():
    """A billion named classes: refused from len() alone (converting them would take gigabytes)."""
    with raises_naming("classes"):
        classification_quality([0, 1], [0, 1], classes=range(10**9))
    labels = list(range(MAX_CLASSES + 1))
    with raises_naming("classes"):
        classification_quality(labels, labels)
