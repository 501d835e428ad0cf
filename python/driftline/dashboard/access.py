"""Which dashboard views a role sees (issue 14's mapping): viewer -> business; predictor -> business and data
science; operator -> operations too; admin -> the audit trail too. Roles are ordered (security/keys.py), so each
view needs a least role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from driftline.security.keys import Principal

__all__ = ["OPEN", "VIEWS", "View", "visible"]


@dataclass(frozen=True, slots=True)
class View:
    """One page of the dashboard: its path under /ui, its title and the least role that may see it."""

    slug: str
    title: str
    role: str
    about: str


#: In the order the navigation lists them.
VIEWS: Final = (
    View("operations", "Operations", "operator", "traffic, latency, errors, queues, SLOs, workers, registry sync"),
    View("science", "Data science", "predictor", "drift per feature, live and estimated quality, shadows, experiments"),
    View("business", "Business", "viewer", "KPIs per version over time, traffic per version"),
    View("audit", "Audit trail", "admin", "every change: who, what, when and why"),
)

#: Who a server without keys shows the dashboard to: everyone sees everything (the server listens on loopback only).
OPEN: Final = Principal("anonymous", "admin")


def visible(principal: Principal) -> list[View]:
    """The views ``principal``'s role may see (and the only ones linked for it)."""
    return [v for v in VIEWS if principal.allows(v.role)]
