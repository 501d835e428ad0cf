"""Statistics of experiments: intervals that survive peeking, fixed-horizon intervals, paired tests, sample-ratio
checks and multiple-testing corrections (docs/experiments.md)."""
