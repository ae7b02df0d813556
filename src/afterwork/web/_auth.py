"""Who may see and steer: a token (Bearer header or the login cookie) or the app's own check;
and no state change from another site (Origin / Sec-Fetch-Site, plus a double-submit token for
cookie sessions).

The login cookie never holds the token itself: it holds a session value derived from it
(HMAC-SHA256 keyed by the token), so a cookie read from a browser's storage or a log is not
the token that also opens the API; changing the token ends every session. Every comparison of
secrets is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
import secrets
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._errors import mask_passwords

if TYPE_CHECKING:
    from ._console import WebSettings

log = logging.getLogger("afterwork")

SESSION_COOKIE = "afterwork_session"
TOKEN_COOKIE = SESSION_COOKIE  # the old name, kept for imports
CSRF_COOKIE = "afterwork_csrf"
CSRF_HEADER = "x-afterwork-csrf"
_SESSION_PURPOSE = b"afterwork dashboard session v1"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def session_value(token: str) -> str:
    """The login cookie's value for `token` (derived, not the token)."""
    return hmac.new(token.encode(), _SESSION_PURPOSE, hashlib.sha256).hexdigest()


def token_matches(settings: WebSettings, offered: str | None) -> bool:
    return bool(settings.dashboard_token) and _same(offered, settings.dashboard_token)


def set_session(response: Response, settings: WebSettings, request: Request) -> None:
    assert settings.dashboard_token
    response.set_cookie(SESSION_COOKIE, session_value(settings.dashboard_token), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https",
                        path=settings.dashboard_prefix or "/")
    if settings.api_prefix and not settings.api_prefix.startswith(settings.dashboard_prefix or "/"):
        response.set_cookie(SESSION_COOKIE, session_value(settings.dashboard_token), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https",
                            path=settings.api_prefix)


def end_session(response: Response, settings: WebSettings) -> None:
    for path in {settings.dashboard_prefix or "/", settings.api_prefix or "/"}:
        response.delete_cookie(SESSION_COOKIE, path=path, httponly=True, samesite="strict")


async def _check(settings: WebSettings, request: Request) -> Response | None:
    token = settings.dashboard_token
    if token and (_same(_bearer(request), token)
                  or _same(request.cookies.get(SESSION_COOKIE), session_value(token))):
        return None
    if settings.dashboard_auth is not None:
        try:
            allowed = settings.dashboard_auth(request)
            if inspect.isawaitable(allowed):
                allowed = await allowed
        except HTTPException as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        except Exception as exc:  # the app's check is broken: refuse, and say so once per call
            log.warning("afterwork: dashboard_auth raised %s (%s); refusing with 403",
                        type(exc).__name__, mask_passwords(str(exc))[:200])
            return JSONResponse({"detail": "the dashboard's auth check failed"}, status_code=403)
        if allowed:
            return None
        return JSONResponse({"detail": "not allowed to use the afterwork dashboard"}, status_code=403)
    return JSONResponse({"detail": "log in: a Bearer token, or the dashboard's login page"},
                        status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def deny(settings: WebSettings, request: Request, *, feature: str = "dashboard") -> Response | None:
    """None when the operator is allowed; else the 401, 403 or 404 to answer. `feature` is
    "dashboard" (the page and the operator API) or "metrics" (which `metrics=True` turns on
    alone, behind the same token or check)."""
    if not (settings.dashboard or (feature == "metrics" and settings.metrics)):
        return JSONResponse({"detail": "the afterwork dashboard is off"}, status_code=404)
    return await _check(settings, request)


async def is_operator(settings: WebSettings, request: Request) -> bool:
    """Whether the request carries the operator's auth; never raises (a public endpoint asks
    this, and a broken check must not break it)."""
    if not settings.dashboard:
        return False
    try:
        return await _check(settings, request) is None
    except Exception:  # _check logs and refuses already; anything else: not an operator
        return False


def other_site(request: Request) -> Response | None:
    """A 403 when the browser says the request comes from another site."""
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and origin.split("://", 1)[-1] != host:
        return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
    return None


def cross_site(request: Request, form_token: str | None = None) -> Response | None:
    """A 403 for a state-changing request that another site could have made."""
    if (refused := other_site(request)) is not None:
        return refused
    if _bearer(request) is not None:
        return None  # a browser cannot send a Bearer header across sites on its own
    expected = request.cookies.get(CSRF_COOKIE)
    offered = form_token or request.headers.get(CSRF_HEADER)
    if not _same(offered, expected):
        return JSONResponse({"detail": "missing or wrong CSRF token: reload the page"}, status_code=403)
    return None


def new_csrf() -> str:
    return secrets.token_urlsafe(24)
