"""Structured logs: the log settings, the JSON line format, request ids and the sampled access log.

Imports nothing else of driftline, so the settings (config/) and every front end can use it.
"""
