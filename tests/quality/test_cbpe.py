"""CBPE equals NannyML's on the same reference and analysis chunks; its calibrator equals scikit-learn's.

Warnings: NannyML's chunker warns ("The resulting number of chunks is too low", a UserWarning) when a data set
splits into fewer than six chunks, so the reference and the analysis here have six; the analysis frames carry no
labels, so it computes no realized metric, the source of its other warnings ("contains a single class", "Too few
unique values"). With that, filterwarnings = error needs no exception. Its usage logging, which would try to reach
the network, is switched off by its own environment variable for each test.
"""

import math

import msgspec
import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedShuffleSplit

from driftline.errors import BadRequest
from driftline.quality.calibration import calibrate, fit_isotonic, needs_calibration, stratified_splits
from driftline.quality.cbpe import CBPE, MIN_REFERENCE_ROWS, _roc_auc, estimate, fit_cbpe

nml = pytest.importorskip("nannyml")
nml_calibration = pytest.importorskip("nannyml.calibration")
pd = pytest.importorskip("pandas")

CHUNK = 1000
# Same maths, float64 sums in another order.
TOL = 1e-9
# NannyML rounds its cumulated expected positives and negatives to 5 decimals before the ROC area.
AUC_TOL = 1e-6
METRICS = ["roc_auc", "accuracy", "precision", "recall", "f1", "confusion_matrix"]
COUNTS = ["true_positive", "false_positive", "true_negative", "false_negative"]


@pytest.fixture(autouse=True)
def _no_usage_logging(monkeypatch):
    monkeypatch.setenv("NML_DISABLE_USAGE_LOGGING", "1")


def make(rng, n, shift, sharpness):
    """Rows of a feature x ~ N(shift, 1) whose label is 1 with probability sigmoid(1.5 x); the model's score
    sigmoid(sharpness x + 0.3) is calibrated only at sharpness 1.5 with no offset."""
    x = rng.normal(shift, 1.0, n)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-1.5 * x))).astype(np.int64)
    score = 1.0 / (1.0 + np.exp(-(sharpness * x + 0.3)))
    return pd.DataFrame({"y_true": y, "y_pred_proba": score, "y_pred": (score > 0.5).astype(np.int64)})


def nannyml_estimates(reference, analysis):
    estimator = nml.CBPE(
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_binary",
        metrics=METRICS,
        chunk_size=CHUNK,
    )
    estimator.fit(reference)
    frame = estimator.estimate(analysis.drop(columns="y_true")).filter(period="analysis").to_df()
    return estimator.needs_calibration, frame


def close(ours, theirs, tol=TOL):
    if math.isnan(theirs):
        return math.isnan(ours)
    return abs(ours - theirs) <= tol * max(1.0, abs(theirs))


@pytest.mark.parametrize(
    ("seed", "sharpness"),
    [(0, 2.5), (1, 1.0), (2, 1.5)],
    ids=["overconfident", "underconfident", "nearly calibrated"],
)
def test_estimates_equal_nannyml_chunk_by_chunk(seed, sharpness):
    """A reference at shift 0 (6000 rows: NannyML warns below six chunks), an analysis period shifted to 0.8 (5500
    rows: five chunks and a half one)."""
    rng = np.random.default_rng(seed)
    reference = make(rng, 6000, 0.0, sharpness)
    analysis = make(rng, 5500, 0.8, sharpness)
    calibrated, theirs = nannyml_estimates(reference, analysis)
    cbpe = fit_cbpe(reference["y_true"].to_numpy(), reference["y_pred_proba"].to_numpy(), reference["y_pred"])
    assert (cbpe.calibrator is not None) == calibrated
    assert len(theirs) == 6
    for i in range(len(theirs)):
        part = analysis.iloc[i * CHUNK : (i + 1) * CHUNK]
        ours = estimate(cbpe, part["y_pred_proba"].to_numpy(), part["y_pred"].to_numpy())
        assert ours.n == len(part)
        assert ours.calibrated == calibrated
        assert ours.positive == 1
        fields = {name: getattr(ours, name) for name in ["roc_auc", "accuracy", "precision", "recall", "f1"]}
        fields |= {name: getattr(ours.confusion, name) for name in COUNTS}
        for name, metric in fields.items():
            tol = AUC_TOL if name == "roc_auc" else TOL
            row = theirs[name].iloc[i]
            # NannyML leaves a count's upper bound unclipped; ours stops at the chunk's rows.
            top = len(part) if name in COUNTS else 1.0
            assert close(metric.value, row["value"], tol), (i, name)
            assert close(metric.sampling_error, row["sampling_error"]), (i, name)
            assert close(metric.lower, row["lower_confidence_boundary"], tol), (i, name)
            assert close(metric.upper, min(top, row["upper_confidence_boundary"]), tol), (i, name)
        # The bound, with room to spare.
        assert abs(ours.accuracy.value - theirs["accuracy"].iloc[i]["value"]) < 0.01


def test_string_labels_estimate_as_their_positive_class():
    rng = np.random.default_rng(3)
    reference, analysis = make(rng, 2000, 0.0, 2.0), make(rng, 800, 0.5, 2.0)
    names = np.array(["ham", "spam"])
    numeric = fit_cbpe(reference["y_true"], reference["y_pred_proba"], reference["y_pred"])
    named = fit_cbpe(names[reference["y_true"]], reference["y_pred_proba"], names[reference["y_pred"]], positive="spam")
    assert named.classes == ["ham", "spam"]
    a = estimate(numeric, analysis["y_pred_proba"], analysis["y_pred"])
    b = estimate(named, analysis["y_pred_proba"], names[analysis["y_pred"]])
    assert b.positive == "spam"
    assert msgspec.structs.replace(b, positive=1) == a


def test_positive_zero_swaps_the_classes():
    """positive=0: the estimates are those of the flipped problem (labels 1 - y, scores 1 - p)."""
    rng = np.random.default_rng(4)
    reference, analysis = make(rng, 2000, 0.0, 2.0), make(rng, 700, -0.4, 2.0)
    zero = fit_cbpe(reference["y_true"], 1.0 - reference["y_pred_proba"], reference["y_pred"], positive=0)
    assert zero.classes == [1, 0]
    flipped = fit_cbpe(1 - reference["y_true"], 1.0 - reference["y_pred_proba"], 1 - reference["y_pred"])
    a = estimate(zero, 1.0 - analysis["y_pred_proba"], analysis["y_pred"])
    b = estimate(flipped, 1.0 - analysis["y_pred_proba"], 1 - analysis["y_pred"])
    assert msgspec.structs.replace(a, positive=1) == b


def test_bool_labels_are_ints():
    y, p = reference_rows()
    assert fit_cbpe(y.astype(bool), p, positive=True) == fit_cbpe(y, p)


def test_default_predictions_are_the_argmax_rule():
    rng = np.random.default_rng(5)
    reference, analysis = make(rng, 1500, 0.0, 2.0), make(rng, 600, 0.3, 2.0)
    explicit = fit_cbpe(reference["y_true"], reference["y_pred_proba"], reference["y_pred"])
    implicit = fit_cbpe(reference["y_true"], reference["y_pred_proba"])
    assert explicit == implicit
    assert estimate(implicit, analysis["y_pred_proba"]) == estimate(
        explicit, analysis["y_pred_proba"], analysis["y_pred"]
    )


def test_fitted_cbpe_survives_json():
    rng = np.random.default_rng(6)
    reference, analysis = make(rng, 3000, 0.0, 2.5), make(rng, 900, 0.6, 2.5)
    cbpe = fit_cbpe(reference["y_true"], reference["y_pred_proba"], reference["y_pred"])
    assert cbpe.calibrator is not None
    again = msgspec.json.decode(msgspec.json.encode(cbpe), type=CBPE)
    assert again == cbpe
    assert estimate(again, analysis["y_pred_proba"]) == estimate(cbpe, analysis["y_pred_proba"])


@pytest.mark.parametrize("seed", range(8))
def test_isotonic_equals_sklearn(seed):
    """Knots equal, predictions within 1e-12, on scores with and without ties (rounded to two decimals)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    scores = rng.random(n)
    if seed % 2:
        scores = np.round(scores, 2)
    labels = (rng.random(n) < scores**2).astype(np.float64)
    reference = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(scores, labels)
    ours = fit_isotonic(scores, labels)
    assert np.array_equal(ours.x, reference.X_thresholds_)
    assert np.abs(np.asarray(ours.y) - reference.y_thresholds_).max() <= 1e-12
    new = rng.random(1000) * 1.4 - 0.2  # beyond both ends too: clipped
    assert np.abs(calibrate(ours, new) - reference.predict(new)).max() <= 1e-12


def test_isotonic_of_one_distinct_score_is_constant():
    ours = fit_isotonic(np.full(5, 0.3), np.array([0.0, 1.0, 1.0, 0.0, 1.0]))
    assert ours.x == [0.3]
    assert ours.y == [0.6]
    assert calibrate(ours, np.array([0.0, 0.3, 1.0])).tolist() == [0.6, 0.6, 0.6]


@pytest.mark.parametrize("n", [100, 997, 4000])
def test_splits_equal_sklearns_stratified_shuffle_split(n):
    rng = np.random.default_rng(n)
    y = (rng.random(n) < 0.3).astype(np.int64)
    theirs = StratifiedShuffleSplit(n_splits=10, test_size=0.1, random_state=42).split(np.zeros(n), y)
    for (train, test), (our_train, our_test) in zip(theirs, stratified_splits(y), strict=True):
        assert np.array_equal(train, our_train)
        assert np.array_equal(test, our_test)


@pytest.mark.parametrize("seed", range(6))
def test_needs_calibration_decides_as_nannyml(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(200, 3000))
    scores = rng.random(n)
    # Calibrated (labels drawn at the score), over- and under-confident scores, in turn.
    truth = scores if seed % 3 == 0 else scores**2 if seed % 3 == 1 else np.sqrt(scores)
    labels = (rng.random(n) < truth).astype(np.int64)
    assert needs_calibration(labels, scores) == nml_calibration.needs_calibration(
        labels, scores, nml_calibration.IsotonicCalibrator()
    )


def test_no_calibration_when_scores_separate_the_classes():
    labels = np.array([0] * 60 + [1] * 60)
    assert not needs_calibration(labels, np.linspace(0.0, 1.0, 120))
    assert fit_cbpe(labels, np.linspace(0.0, 1.0, 120)).calibrator is None


def test_estimated_auc_of_certain_probabilities_is_the_realized_auc_ties_included():
    """Probabilities of 0 and 1 are the labels: the expected ROC curve is then the realized one. Tied scores form
    one step, as in scikit-learn's curve (NannyML would step through them in sort order)."""
    rng = np.random.default_rng(7)
    scores = np.round(rng.random(500), 1)
    labels = (rng.random(500) < scores).astype(np.float64)
    assert abs(_roc_auc(labels, scores) - roc_auc_score(labels, scores)) <= 1e-12


def reference_rows(n=200):
    rng = np.random.default_rng(8)
    p = rng.random(n)
    return (rng.random(n) < p).astype(np.int64), p


REFUSED_FITS = {
    "three classes": ("y_true", lambda y, p: dict(y_true=np.where(p > 0.9, 2, y), y_proba=p)),
    "one class": ("y_true", lambda y, p: dict(y_true=np.ones_like(y), y_proba=p)),
    "floats that are not labels": ("y_true", lambda y, p: dict(y_true=p, y_proba=p)),
    "too few rows": (
        "y_true",
        lambda y, p: dict(y_true=y[: MIN_REFERENCE_ROWS - 1], y_proba=p[: MIN_REFERENCE_ROWS - 1]),
    ),
    "too few of one class": ("y_true", lambda y, p: dict(y_true=(np.arange(len(y)) < 5).astype(int), y_proba=p)),
    "probability above 1": ("y_proba", lambda y, p: dict(y_true=y, y_proba=np.where(np.arange(len(p)) == 3, 1.2, p))),
    "negative probability": ("y_proba", lambda y, p: dict(y_true=y, y_proba=-p)),
    "NaN probability": ("y_proba", lambda y, p: dict(y_true=y, y_proba=np.where(p > 0.5, np.nan, p))),
    "two scores per row": ("y_proba", lambda y, p: dict(y_true=y, y_proba=np.stack([1 - p, p], axis=1))),
    "lengths differ": ("y_proba", lambda y, p: dict(y_true=y, y_proba=p[:-1])),
    "positive absent": ("positive", lambda y, p: dict(y_true=y, y_proba=p, positive=2)),
    "positive of another kind": ("positive", lambda y, p: dict(y_true=y, y_proba=p, positive="1")),
    "prediction not a class": ("y_pred", lambda y, p: dict(y_true=y, y_proba=p, y_pred=np.full(len(y), 7))),
    "predictions of another kind": ("y_pred", lambda y, p: dict(y_true=y, y_proba=p, y_pred=["a"] * len(y))),
    "not a sequence": ("y_true", lambda y, p: dict(y_true=3, y_proba=p)),
}


@pytest.mark.parametrize("case", REFUSED_FITS)
def test_fit_refusals_name_the_field(case):
    name, build = REFUSED_FITS[case]
    with pytest.raises(BadRequest, match=rf"^{name}\b") as info:
        fit_cbpe(**build(*reference_rows()))
    assert info.value.http_status == 400


def test_estimate_refusals_name_the_field():
    cbpe = fit_cbpe(*reference_rows())
    for name, kwargs in [
        ("y_proba", dict(y_proba=[])),
        ("y_proba", dict(y_proba=[0.2, 1.5])),
        ("y_proba", dict(y_proba=[0.2, "x"])),
        ("y_pred", dict(y_proba=[0.2, 0.7], y_pred=[0, 1, 1])),
        ("y_pred", dict(y_proba=[0.2, 0.7], y_pred=[0, 3])),
    ]:
        with pytest.raises(BadRequest, match=rf"^{name}\b"):
            estimate(cbpe, **kwargs)


def test_a_chunk_without_expected_negatives_has_no_auc():
    cbpe = fit_cbpe(*reference_rows())
    one = estimate(cbpe, [1.0, 1.0])
    assert math.isnan(one.roc_auc.value)
    assert math.isnan(one.roc_auc.lower)
    assert one.accuracy.value == pytest.approx((one.confusion.true_positive.value + 0.0) / 2)
