"""Bulk scoring: Parquet/CSV in, predictions out, in bounded memory, resumable after a crash."""

from driftline.jobs.checkpoint import JobDir, PartRecord
from driftline.jobs.local import JobCancelled, JobSummary, run_local
from driftline.jobs.spec import JobSpec, parse_model_ref

__all__ = ["JobCancelled", "JobDir", "JobSpec", "JobSummary", "PartRecord", "parse_model_ref", "run_local"]
