"""Ground-truth feedback: parsing labels (bodies, files), joining them to captured rows, live quality per window."""

from driftline.feedback.body import parse_feedback
from driftline.feedback.files import read_feedback_file
from driftline.feedback.targets import Task

__all__ = ["Task", "parse_feedback", "read_feedback_file"]
