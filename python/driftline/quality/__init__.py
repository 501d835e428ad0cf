"""Live model quality: classification and regression metrics with confidence intervals, and CBPE's estimates
without labels (docs/quality.md)."""

from driftline.quality.cbpe import (
    CBPE,
    EstimatedConfusion,
    EstimatedMetric,
    EstimatedQuality,
    estimate,
    fit_cbpe,
)
from driftline.quality.classification import ClassificationQuality, ClassQuality, Confusion, classification_quality
from driftline.quality.intervals import Estimate, bootstrap, wilson
from driftline.quality.regression import RegressionQuality, regression_quality

__all__ = [
    "CBPE",
    "ClassQuality",
    "ClassificationQuality",
    "Confusion",
    "Estimate",
    "EstimatedConfusion",
    "EstimatedMetric",
    "EstimatedQuality",
    "RegressionQuality",
    "bootstrap",
    "classification_quality",
    "estimate",
    "fit_cbpe",
    "regression_quality",
    "wilson",
]
