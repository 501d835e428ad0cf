"""Ground-truth feedback: parsing labels (bodies, files), joining them to captured rows, live quality per window."""

from driftline.feedback.body import parse_feedback
from driftline.feedback.files import read_feedback_file
from driftline.feedback.join import Joined, join
from driftline.feedback.report import QualityReport, VersionQuality, WindowQuality, quality_of

__all__ = [
    "Joined",
    "QualityReport",
    "VersionQuality",
    "WindowQuality",
    "join",
    "parse_feedback",
    "quality_of",
    "read_feedback_file",
]
