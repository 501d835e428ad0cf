"""driftline: a production inference server with a Rust core for batching and drift."""

from driftline._core import __version__

__all__ = ["__version__"]
