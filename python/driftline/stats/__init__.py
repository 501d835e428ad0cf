"""Statistics of experiments: intervals that survive peeking, fixed-horizon intervals, paired tests, sample-ratio
checks and multiple-testing corrections (docs/statistics.md). Pure numpy/scipy: no I/O, no server state."""

from driftline.stats.corrections import Correction, adjust
from driftline.stats.paired import mcnemar, paired_fixed, paired_sequential
from driftline.stats.quantiles import quantile_interval
from driftline.stats.ratio import SRM_THRESHOLD, SampleRatio, sample_ratio
from driftline.stats.samples import Interval, Sample
from driftline.stats.twosample import Comparison, fixed_horizon, sequential

__all__ = [
    "SRM_THRESHOLD",
    "Comparison",
    "Correction",
    "Interval",
    "Sample",
    "SampleRatio",
    "adjust",
    "fixed_horizon",
    "mcnemar",
    "paired_fixed",
    "paired_sequential",
    "quantile_interval",
    "sample_ratio",
    "sequential",
]
