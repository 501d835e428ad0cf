"""``/ui``: the dashboard (server-rendered HTML, no script), signed in with an API key.

``POST /ui/login`` checks the key in the form body against the key ring and sets a signed, expiring session cookie
(dashboard/session.py: HttpOnly, SameSite=Strict, Path=/ui); every page checks the signature, the expiry and that
the key is still in the ring, so a revoked key's session ends at the next key reload (refresh_interval_s). The role
decides which views are linked and served (dashboard/access.py); another view is a 403 page. On a server without
keys every view is open, under a banner saying so.

CSRF: the cookie is SameSite=Strict, so no other site's form or link carries it; and a POST (sign-in, sign-out) must
come with an Origin, or else a Referer, of this server's own origin, or it is refused (403).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie

from driftline.dashboard.access import OPEN, VIEWS, visible
from driftline.dashboard.audit import parse_filter, render_audit
from driftline.dashboard.layout import SECURITY_HEADERS, document, login_page, message_page
from driftline.dashboard.session import COOKIE, SECRET_NAME, SESSION_TTL_S, SessionInvalid, holder, issue, verify
from driftline.errors import BadRequest, DriftlineError, Unauthorized
from driftline.http.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations at run time
from driftline.security.keys import Principal, hash_key
from driftline.store.secrets import secret

if TYPE_CHECKING:
    from driftline.server.services import Services

__all__ = ["MAX_HOURS", "DashboardController"]

#: The longest history a page draws (``?hours=``).
MAX_HOURS: Final = 72
_DEFAULT_HOURS: Final = 3
_MAX_KEY: Final = 512


def _html(body: str, status: int = 200, cookies: list[Cookie] | None = None) -> Response[str]:
    return Response(body, status_code=status, media_type="text/html", headers=SECURITY_HEADERS, cookies=cookies)


def _redirect(to: str, cookies: list[Cookie] | None = None) -> Response[str]:
    return Response(
        "", status_code=303, media_type="text/html", headers={**SECURITY_HEADERS, "location": to}, cookies=cookies
    )


def _secret(request: Request[Any, Any, Any], services: Services) -> bytes:
    """The session-signing secret, read from the store once per process (every worker reads the same one)."""
    state = request.app.state
    value: bytes | None = state.get("dashboard_secret")
    if value is None:
        value = secret(services.traffic.store.db, SECRET_NAME)
        state["dashboard_secret"] = value
    return value


def _principal(request: Request[Any, Any, Any], services: Services) -> Principal | None:
    """Who the session cookie says is signed in (None: nobody, or a session no longer valid); OPEN without keys."""
    if not len(services.keys):
        return OPEN
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    key = _secret(request, services)
    try:
        session = verify(key, token, time.time())
    except SessionInvalid:
        return None
    if not holder(key, session, services.keys.entries()):
        return None  # the key was revoked (or its role changed) since the sign-in
    return Principal(session.name, session.role)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _same_origin(request: Request[Any, Any, Any], public_url: str | None) -> bool:
    """Whether a POST comes from a page of this server: its Origin (or, without one, its Referer) names the
    address it was sent to, or ``http.public_url``'s (behind a proxy that ends TLS the scheme differs)."""
    host = request.headers.get("host", "")
    expected = {f"{request.url.scheme}://{host}"} if host else set()
    if public_url:
        expected.add(_origin_of(public_url))
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return False
        origin = _origin_of(referer)
    return origin in expected


def _cookie(value: str, max_age: int, secure: bool) -> Cookie:
    return Cookie(key=COOKIE, value=value, path="/ui", httponly=True, samesite="strict", max_age=max_age, secure=secure)


def _hours(request: Request[Any, Any, Any]) -> int:
    raw = request.query_params.get("hours")
    if raw is None:
        return _DEFAULT_HOURS
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_HOURS):
        raise BadRequest(f"query parameter 'hours' must be a whole number from 1 to {MAX_HOURS}, got {raw[:20]!r}")
    return int(raw)


def _overview(principal: Principal) -> list[str]:
    links = "".join(
        f"<a href='/ui/{v.slug}' id='view-{v.slug}'><b>{v.title}</b><span class='sub'>{v.about}</span></a>"
        for v in visible(principal)
    )
    return [
        f"<div class='sub'>Signed in as a {principal.role}: the views this role may see.</div>",
        f"<div class='views'>{links}</div>",
    ]


async def _body(view: str, request: Request[Any, Any, Any], services: Services) -> list[str]:
    """The page body of ``view``, rendered off the event loop (the renderers read the store)."""
    if view == "audit":
        params = {k: request.query_params.get(k, "") for k in ("actor", "action", "model", "since", "until", "before")}
        return await asyncio.to_thread(render_audit, services.audit, parse_filter(params))
    hours = _hours(request)
    # Imported here: each view pulls in what it reads (polars for KPIs), and a view nobody opens costs nothing.
    if view == "operations":
        from driftline.dashboard.operations import render_operations

        return await asyncio.to_thread(render_operations, services, hours)
    if view == "science":
        from driftline.dashboard.science import render_science

        return await asyncio.to_thread(render_science, services, hours)
    from driftline.dashboard.business import render_business

    return await asyncio.to_thread(render_business, services, hours)


class DashboardController(Controller):
    """The dashboard's pages and its sign-in; not part of the API schema (HTML for people)."""

    path = "/ui"
    include_in_schema = False

    @get("/")
    async def home(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[str]:
        """The overview: links to the views the role may see."""
        principal = _principal(request, services)
        if principal is None:
            return _redirect("/ui/login")
        return _html(document("Dashboard", _overview(principal), principal, "home", keyed=bool(len(services.keys))))

    @get("/login")
    async def login_form(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[str]:
        """The sign-in form (straight to the overview when already signed in, or when the server has no keys)."""
        if _principal(request, services) is not None:
            return _redirect("/ui")
        return _html(login_page())

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[str]:
        """Check the form's ``key`` against the key ring; a known key gets a session cookie and the overview."""
        if not _same_origin(request, services.settings.http.public_url):
            return _html(
                message_page("Refused", "this form must be sent from this server's own page", None, keyed=True), 403
            )
        if not len(services.keys):
            return _redirect("/ui")
        form = await request.form()
        key = form.get("key")
        if not isinstance(key, str) or not key.strip():
            return _html(login_page("form field 'key' is required: paste an API key"), 400)
        key = key.strip()
        if len(key) > _MAX_KEY:
            return _html(login_page(f"form field 'key' is longer than any API key ({_MAX_KEY} characters)"), 400)
        try:
            principal = services.keys.authenticate([(b"x-api-key", key.encode("utf-8"))], "viewer")
        except Unauthorized as exc:
            return _html(login_page(str(exc)), 401)
        token = issue(
            _secret(request, services), principal.name, principal.role, hash_key(key), time.time(), SESSION_TTL_S
        )
        secure = services.settings.http.base_url().startswith("https")
        return _redirect("/ui", [_cookie(token, SESSION_TTL_S, secure)])

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any], services: ServicesDep) -> Response[str]:
        """End the session: the cookie is cleared (a copy of the token stays valid until it expires)."""
        if not _same_origin(request, services.settings.http.public_url):
            return _html(
                message_page("Refused", "this form must be sent from this server's own page", None, keyed=True), 403
            )
        secure = services.settings.http.base_url().startswith("https")
        return _redirect("/ui/login", [_cookie("", 0, secure)])

    @get("/{view:str}")
    async def view(self, request: Request[Any, Any, Any], services: ServicesDep, view: str) -> Response[str]:
        """One view; one the role may not see is a 403 page, an unknown one a 404 page."""
        keyed = bool(len(services.keys))
        principal = _principal(request, services)
        if principal is None:
            return _redirect("/ui/login")
        found = next((v for v in VIEWS if v.slug == view), None)
        if found is None:
            return _html(message_page("Not found", "no such dashboard view", principal, keyed=keyed), 404)
        if not principal.allows(found.role):
            text = f"the {found.title} view needs the role {found.role!r} or above; you are a {principal.role!r}"
            return _html(message_page("Forbidden", text, principal, keyed=keyed), 403)
        try:
            body = await _body(view, request, services)
        except DriftlineError as exc:
            return _html(message_page("Refused", str(exc), principal, keyed=keyed), exc.http_status)
        return _html(document(found.title, body, principal, found.slug, keyed=keyed))
