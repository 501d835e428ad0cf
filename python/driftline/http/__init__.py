"""The HTTP front end: the Litestar app factory and one controller module per route group."""

from driftline.http.app import create_app, create_app_from_env, create_server_app

__all__ = ["create_app", "create_app_from_env", "create_server_app"]
