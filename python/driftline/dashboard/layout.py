"""The dashboard's page shell: the drift report's styles plus a navigation bar listing only the views the role may
see, the open-access banner, the sign-in form, and the headers every page is sent with."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Final

from driftline.dashboard.access import visible
from driftline.drift.html import PAGE_CSS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from driftline.security.keys import Principal

__all__ = ["SECURITY_HEADERS", "document", "login_page", "message_page", "table"]

#: No script runs and nothing is fetched from anywhere but the page itself; styles are inline (the charts colour
#: their legend with style attributes), images are inline SVG.
SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}

_CSS: Final = """
nav{display:flex;gap:4px;align-items:center;background:#1f2430;padding:0 24px;height:46px}
nav a{color:#d0d5dd;text-decoration:none;padding:6px 12px;border-radius:6px;font-weight:500}
nav a.on,nav a:hover{background:#344054;color:#fff}
nav .who{margin-left:auto;color:#98a2b3;font-size:13px;display:flex;gap:10px;align-items:center}
nav form{margin:0}nav button{background:none;border:1px solid #475467;color:#d0d5dd;border-radius:6px;
 padding:3px 10px;cursor:pointer}
.banner{background:#fffaeb;border:1px solid #fedf89;color:#93370d;border-radius:10px;padding:10px 14px;margin:0 0 16px}
.error{background:#fef3f2;border:1px solid #fecdca;color:#b42318;border-radius:10px;padding:10px 14px;margin:12px 0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure.chart{margin:0}figure.chart svg{display:block}
.legend span{margin-right:10px}.legend i{margin-left:0}
form.filters{display:flex;gap:8px;flex-wrap:wrap;align-items:end;margin:12px 0}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#475467}
input,select{font:inherit;padding:5px 8px;border:1px solid #d0d5dd;border-radius:6px;background:#fff}
button.primary{font:inherit;background:#1f2430;color:#fff;border:0;border-radius:6px;padding:7px 16px;cursor:pointer}
.login{max-width:420px;margin:60px auto;background:#fff;border:1px solid #e4e7ec;border-radius:12px;padding:24px}
.login input{width:100%;margin:8px 0 14px}
.views a{display:block;background:#fff;border:1px solid #e4e7ec;border-radius:10px;padding:12px 16px;margin:0 0 10px;
 color:inherit;text-decoration:none}.views a b{display:block;font-size:15px}
.pager{margin:12px 0;display:flex;gap:12px}
.scroll{overflow-x:auto;margin:0 0 8px}
td{overflow-wrap:anywhere}
"""


def _nav(principal: Principal | None, active: str, keyed: bool) -> str:
    if principal is None:
        return "<nav><a href='/ui'>driftline</a></nav>"
    links = [f"<a href='/ui' class='{'on' if active == 'home' else ''}'>driftline</a>"]
    links += [
        f"<a href='/ui/{v.slug}' class='{'on' if active == v.slug else ''}'>{escape(v.title)}</a>"
        for v in visible(principal)
    ]
    who = f"<span>{escape(principal.name)} · {escape(principal.role)}</span>"
    if keyed:
        who += "<form method='post' action='/ui/logout'><button type='submit'>Sign out</button></form>"
    return f"<nav>{''.join(links)}<span class='who'>{who}</span></nav>"


def document(title: str, parts: Sequence[str], principal: Principal | None, active: str, *, keyed: bool) -> str:
    """A whole page: navigation for ``principal`` (None: signed out), the open-access banner on a server without
    keys, the ``title`` heading (escaped) and ``parts`` (HTML, escaped by their makers)."""
    banner = (
        "<div class='banner' id='open-access'>This server has no API keys: the dashboard is open to anyone who "
        "can reach it (it listens on the loopback interface only). Configure keys to require a sign-in.</div>"
        if not keyed and principal is not None
        else ""
    )
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            '<link rel="icon" href="data:,">',  # no request for /favicon.ico (a 404 in the console otherwise)
            f"<title>{escape(title)} · driftline</title><style>{PAGE_CSS}{_CSS}</style></head><body>",
            _nav(principal, active, keyed),
            f"<main>{banner}<h1>{escape(title)}</h1>",
            *parts,
            "</main></body></html>",
        ]
    )


def login_page(error: str | None = None) -> str:
    """The sign-in form: the API key goes in the POST body, never in the URL."""
    problem = f"<div class='error' id='login-error'>{escape(error)}</div>" if error else ""
    form = (
        "<div class='login'><h2>Sign in</h2><div class='sub'>with a driftline API key; its role decides what the "
        f"dashboard shows.</div>{problem}<form method='post' action='/ui/login'>"
        "<label for='key'>API key</label><input id='key' name='key' type='password' autocomplete='off' required>"
        "<button class='primary' type='submit' id='sign-in'>Sign in</button></form></div>"
    )
    return document("Dashboard", [form], None, "login", keyed=True)


def message_page(title: str, text: str, principal: Principal | None, *, keyed: bool) -> str:
    """A page that only says something (403, 404, a refused form)."""
    return document(title, [f"<div class='error' id='message'>{escape(text)}</div>"], principal, "", keyed=keyed)


def table(head: Sequence[str], rows: Sequence[Sequence[str]], table_id: str = "", empty: str = "none") -> str:
    """A table; ``head`` is plain text (escaped here), ``rows`` cells are HTML (escaped by the caller). A cell
    starting with a digit, a sign or a dash is right-aligned as a number."""
    if not rows:
        return f"<div class='sub'>{escape(empty)}</div>"
    th = "".join(f"<th>{escape(h)}</th>" for h in head)

    def cell(c: str) -> str:
        numeric = c[:1].isdigit() or (c[:1] in "-+" and c[1:2].isdigit()) or c == "-"
        return f"<td class='num'>{c}</td>" if numeric else f"<td>{c}</td>"

    body = "".join("<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in rows)
    ident = f" id='{escape(table_id)}'" if table_id else ""
    return f"<div class='scroll'><table{ident}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"
