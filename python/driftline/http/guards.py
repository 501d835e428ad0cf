"""Litestar guards that check API keys and roles (see :mod:`driftline.security.keys` for the roles)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftline.http.deps import services_of

if TYPE_CHECKING:
    from litestar import Request
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

__all__ = ["actor", "require_role", "require_role_when_keyed"]


def _role(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> str:
    role: str | None = handler.opt.get("role")
    if role is None:
        role = "viewer" if connection.scope.get("method") in {"GET", "HEAD"} else "operator"
    return role


def require_role(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Always: the request's key must carry the handler's ``opt["role"]`` (401 / 403 otherwise)."""
    principal = services_of(connection.app.state).keys.authenticate(
        connection.scope["headers"], _role(connection, handler)
    )
    connection.scope["state"]["principal"] = principal


def actor(request: Request[Any, Any, Any]) -> str:
    """Who made a request, as the audit log names them: ``key:<name>``, the key a guard authenticated, or
    ``anonymous`` on a route a server without keys leaves open (``require_role_when_keyed``)."""
    principal = request.scope["state"].get("principal")
    return f"key:{principal.name}" if principal is not None else "anonymous"


def require_role_when_keyed(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Once the server has any key: reads need ``viewer``, changes ``operator`` (or the handler's ``opt["role"]``).

    Without keys these routes stay open, as Triton's and the jobs API were before keys existed.
    """
    if len(services_of(connection.app.state).keys):
        require_role(connection, handler)
