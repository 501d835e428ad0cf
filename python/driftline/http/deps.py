"""The one reader of the app state: the services the lifespan opened, typed, for handlers, guards and the fast path."""

from __future__ import annotations

from litestar.datastructures import State  # noqa: TC002 - Litestar reads the provider's annotations at run time
from litestar.di import NamedDependency
from litestar.params import SkipValidation

from driftline.server.services import Services

__all__ = ["ServicesDep", "services_of"]

# A handler's ``services: ServicesDep`` parameter: injected as it is (validating it would walk the whole server).
ServicesDep = NamedDependency[SkipValidation[Services]]


def services_of(state: State) -> Services:
    """The running server's services (set once by the lifespan, before any request is served); also the provider
    that injects them into handlers."""
    services: Services = state.services
    return services
