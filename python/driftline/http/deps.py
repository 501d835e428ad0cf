"""Typed access to what the lifespan puts on the app state, shared by every controller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from litestar import Request

    from driftline.serving.table import ModelTable

__all__ = ["table_of"]


def table_of(request: Request[Any, Any, Any]) -> ModelTable:
    """The live model table."""
    table: ModelTable = request.app.state.table
    return table
