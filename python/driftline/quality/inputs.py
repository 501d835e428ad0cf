"""Checks and conversions of the metrics' array arguments; every failure is a BadRequest naming the argument."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from driftline.errors import BadRequest

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "MAX_CLASSES",
    "PROBABILITY_TOLERANCE",
    "encode",
    "labels",
    "length",
    "probabilities",
    "rows",
    "scores",
    "targets",
]

# A k x k confusion matrix per bootstrap resample: a model with more classes than this is not a classifier whose
# per-class report anyone reads (and is most likely a regression output named as labels).
MAX_CLASSES = 256
PROBABILITY_TOLERANCE = 1e-6


def rows(y_true: Any, y_pred: Any) -> int:
    """The shared row count of y_true and y_pred, from len() before either is converted."""
    n = length(y_true, "y_true")
    if n == 0:
        raise BadRequest("y_true is empty: a metric needs one row at least")
    m = length(y_pred, "y_pred")
    if m != n:
        raise BadRequest(f"y_pred has {m} rows, y_true has {n}")
    return n


def length(values: Any, name: str) -> int:
    """len(values), a BadRequest naming ``name`` when it has none."""
    try:
        return len(values)
    except TypeError:
        raise BadRequest(f"{name} must be a sequence or 1-D array, got {type(values).__name__}") from None


def _array(values: Any, name: str, dtype: type | None = None) -> NDArray[Any]:
    try:
        arr = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise BadRequest(f"{name} is not an array of {'numbers' if dtype else 'labels'}: {e}") from None
    if arr.ndim != 1:
        raise BadRequest(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def targets(values: Any, name: str) -> NDArray[np.float64]:
    """A 1-D float64 array of finite numbers (regression targets or predictions)."""
    arr = _array(values, name, np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise BadRequest(f"{name} has a non-finite value ({arr[bad][0]}) at row {int(np.argmax(bad))}")
    return arr


def labels(values: Any, name: str) -> NDArray[Any]:
    """A 1-D array of class labels: int64 (ints, bools, integral floats) or str."""
    arr = _array(values, name)
    kind = arr.dtype.kind
    if kind in "biu":
        return arr.astype(np.int64)
    if kind == "f":
        nan = np.isnan(arr)
        if nan.any():
            raise BadRequest(f"{name} has NaN (no label) at row {int(np.argmax(nan))}")
        if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise BadRequest(f"{name} must hold ints or strings, got non-integral numbers")
        return arr.astype(np.int64)
    if kind == "U":
        return arr
    if kind == "O" and all(isinstance(v, str) for v in arr):
        return arr.astype(str)
    raise BadRequest(f"{name} must hold ints or strings, got {arr.dtype}")


def _kind(arr: NDArray[Any]) -> str:
    return "strings" if arr.dtype.kind == "U" else "ints"


def encode(
    y_true: NDArray[Any], y_pred: NDArray[Any], classes: Any
) -> tuple[NDArray[Any], NDArray[np.intp], NDArray[np.intp]]:
    """(classes, true codes, predicted codes): each label's position in ``classes``.

    Without ``classes`` they are the sorted union of both label arrays (sklearn's default order).
    """
    if _kind(y_pred) != _kind(y_true):
        raise BadRequest(f"y_pred holds {_kind(y_pred)}, y_true holds {_kind(y_true)}")
    if classes is None:
        both = np.concatenate([y_true, y_pred])
        order, codes = np.unique(both, return_inverse=True)
        _check_count(len(order))
        return order, codes[: len(y_true)].astype(np.intp), codes[len(y_true) :].astype(np.intp)
    _check_count(length(classes, "classes"))
    cls = labels(classes, "classes")
    if len(cls) == 0:
        raise BadRequest("classes is empty")
    if _kind(cls) != _kind(y_true):
        raise BadRequest(f"classes holds {_kind(cls)}, y_true holds {_kind(y_true)}")
    if len(np.unique(cls)) != len(cls):
        raise BadRequest("classes has a repeated label")
    return cls, _codes(cls, y_true, "y_true"), _codes(cls, y_pred, "y_pred")


def _check_count(k: int) -> None:
    if k > MAX_CLASSES:
        raise BadRequest(f"classes: {k} distinct labels, more than the {MAX_CLASSES} a classification report takes")


def _codes(classes: NDArray[Any], values: NDArray[Any], name: str) -> NDArray[np.intp]:
    order = np.argsort(classes, kind="stable")
    ranked = classes[order]
    at = np.minimum(np.searchsorted(ranked, values), len(ranked) - 1)
    missing = ranked[at] != values
    if missing.any():
        raise BadRequest(f"{name} has label {values[missing][0].item()!r}, which is not in classes")
    return order[at].astype(np.intp)


def _numbers(values: Any, n: int, name: str, what: str) -> NDArray[np.float64]:
    """``values`` as float64, after checking from len() alone that it has y_true's n rows."""
    m = length(values, name)
    if m != n:
        raise BadRequest(f"{name} has {m} rows, y_true has {n}")
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise BadRequest(f"{name} is not {what}: {e}") from None


def scores(values: Any, n: int, name: str) -> NDArray[np.float64]:
    """n probabilities of one class (a binary classifier's score), each in [0, 1]."""
    p = _numbers(values, n, name, "an array of probabilities")
    if p.ndim != 1:
        raise BadRequest(f"{name} must be 1-D (the positive class's probability per row), got shape {p.shape}")
    bad = ~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))
    if bad.any():
        row = int(np.argmax(bad))
        raise BadRequest(f"{name} has {float(p[row])!r} at row {row}, not a probability in [0, 1]")
    return p


def probabilities(proba: Any, n: int, k: int) -> NDArray[np.float64]:
    """An n x k float64 array of class probabilities, each row summing to 1 within PROBABILITY_TOLERANCE."""
    arr = _numbers(proba, n, "proba", "an n x k array of numbers")
    if arr.ndim != 2 or arr.shape[1] != k:
        raise BadRequest(f"proba must have shape ({n}, {k}): one column per class, got {arr.shape}")
    bad = ~np.isfinite(arr) | (arr < 0.0)
    if bad.any():
        row = int(np.argmax(bad.any(axis=1)))
        raise BadRequest(f"proba has a value that is not a probability at row {row}")
    off = np.abs(arr.sum(axis=1) - 1.0) > PROBABILITY_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise BadRequest(f"proba row {row} sums to {arr[row].sum():.9g}, not 1 (within {PROBABILITY_TOLERANCE:g})")
    return arr
