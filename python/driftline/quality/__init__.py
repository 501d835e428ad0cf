"""Live model quality: classification and regression metrics with confidence intervals (docs/quality.md)."""

from driftline.quality.classification import ClassificationQuality, ClassQuality, Confusion, classification_quality
from driftline.quality.intervals import Estimate, bootstrap, wilson
from driftline.quality.regression import RegressionQuality, regression_quality

__all__ = [
    "ClassQuality",
    "ClassificationQuality",
    "Confusion",
    "Estimate",
    "RegressionQuality",
    "bootstrap",
    "classification_quality",
    "regression_quality",
    "wilson",
]
