"""Serving: the live model table, the data plane of one inference, the batcher over the Rust queue, statistics."""
