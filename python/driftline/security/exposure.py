"""Whether a listening address reaches beyond this machine, and the refusal to do so without any API key."""

from __future__ import annotations

import ipaddress

from driftline.errors import ConfigError

__all__ = ["check_exposure", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` reaches only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to anything
        return False


def check_exposure(host: str, *, has_keys: bool, allow: bool) -> None:
    """Refuse to listen beyond this machine with no API key, unless the operator said so explicitly.

    Without keys Triton's repository routes (load, unload) and the jobs API are open to whoever reaches the port:
    fine on loopback, not on a network.

    Raises:
        ConfigError: ``host`` is not loopback, there is no key, and ``allow`` (auth.allow_unauthenticated) is off.
    """
    if has_keys or allow or is_loopback(host):
        return
    raise ConfigError(
        f"--host {host} is reachable from other machines and no API key exists, so anyone could unload models and "
        "submit jobs: add a key (driftline keys create, or [[auth.keys]]) or pass --allow-unauthenticated "
        "(auth.allow_unauthenticated = true)"
    )
