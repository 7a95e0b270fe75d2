"""The app's web server: Streamlit's ASGI app (`st.App`) plus one middleware for the session cookie.

`streamlit run workbench/ui/server.py` (what `workbench serve` does) finds `app` below and serves
workbench/ui/app.py through it. A Streamlit script cannot set an HTTP header, and a cookie written
by JavaScript cannot be HttpOnly, so the cookies are set here, on the HTTP response of a page load:

- `wb_bind`: a random value that names this browser (HttpOnly, SameSite=Strict). Signing in, which
  happens over the websocket, creates a session bound to its hash.
- `wb_session`: the session token (HttpOnly, SameSite=Strict, Secure over HTTPS). The first page
  load after signing in swaps the binding for a fresh token (services.sessions.adopt); a page load
  with a token that no longer names a live session deletes it.

Tokens never appear in a URL, a page or a log; the database keeps only their SHA-256.
"""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from streamlit.starlette import App

from workbench.ui.cookies import (
    BIND_COOKIE,
    BIND_MAX_AGE_S,
    ENDED_CODES,
    ENDED_COOKIE,
    SESSION_COOKIE,
)

HERE = Path(__file__).resolve().parent
# Streamlit's own paths: assets, websocket, health, media, components, auth. Everything else that
# asks for HTML is a page load of the app.
_NOT_PAGES = (
    "/_stcore/",
    "/static/",
    "/media/",
    "/component/",
    "/app/static/",
    "/auth/",
    "/oauth2callback",
    "/favicon",
)

_workbench: Any = None


def _services() -> Any:
    global _workbench
    if _workbench is None:
        from workbench.config import database_url
        from workbench.services import Workbench

        _workbench = Workbench.open(database_url())
    return _workbench


def _cookie_header(name: str, value: str, *, max_age: int, secure: bool) -> bytes:
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("latin-1")


def _is_page_load(scope: dict) -> bool:
    if scope.get("method") != "GET":
        return False
    path = scope.get("path", "")
    if any(path.startswith(prefix) for prefix in _NOT_PAGES):
        return False
    accept = dict(scope.get("headers") or []).get(b"accept", b"")
    return b"text/html" in accept


def _cookies(scope: dict) -> dict[str, str]:
    jar = SimpleCookie()
    for key, value in scope.get("headers") or []:
        if key == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is ignored, not fatal
                continue
    return {name: morsel.value for name, morsel in jar.items()}


def _secure(scope: dict) -> bool:
    headers = dict(scope.get("headers") or [])
    return scope.get("scheme") == "https" or headers.get(b"x-forwarded-proto", b"") == b"https"


def cookies_for_page_load(cookies: dict[str, str], *, secure: bool) -> list[bytes]:
    """The Set-Cookie headers a page load gets: a binding for a new browser, the session cookie for
    a sign-in waiting for this browser, a deletion for a token that names no live session."""
    from workbench.services.sessions import SessionEnded

    headers = []
    bind = cookies.get(BIND_COOKIE)
    if not bind:
        bind = secrets.token_urlsafe(32)
        headers.append(_cookie_header(BIND_COOKIE, bind, max_age=BIND_MAX_AGE_S, secure=secure))
    wb = _services()
    issued = wb.sessions.adopt(bind)
    if issued is not None:
        headers.append(_cookie_header(SESSION_COOKIE, issued.token, max_age=issued.max_age_s, secure=secure))
        return headers
    token = cookies.get(SESSION_COOKIE)
    if token:
        try:
            live, ended = wb.sessions.resolve(token) is not None, None
        except SessionEnded as exc:
            live, ended = False, ENDED_CODES.get(exc.reason or "")
        if not live:
            headers.append(_cookie_header(SESSION_COOKIE, "", max_age=0, secure=secure))
            if ended and ended != ENDED_CODES["signed out"]:  # the page says why, once
                headers.append(_cookie_header(ENDED_COOKIE, ended, max_age=120, secure=secure))
    return headers


class SessionCookies:
    """Pure ASGI middleware: adds the session cookies to the response of every page load."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or not _is_page_load(scope):
            await self.app(scope, receive, send)
            return
        try:
            extra = await run_in_threadpool(cookies_for_page_load, _cookies(scope), secure=_secure(scope))
        except Exception:  # a database fault must not take the page down; the app says why
            extra = []

        async def send_with_cookies(message: dict) -> None:
            if message["type"] == "http.response.start" and extra:
                message = {
                    **message,
                    "headers": [*message.get("headers", []), *((b"set-cookie", value) for value in extra)],
                }
            await send(message)

        await self.app(scope, receive, send_with_cookies)


app = App(str(HERE / "app.py"), middleware=[Middleware(SessionCookies)])
