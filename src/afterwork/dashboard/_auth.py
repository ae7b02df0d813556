"""Who may see and steer: a token (Bearer header or the login cookie) or the app's own check;
and no state change from another site (Origin / Sec-Fetch-Site, plus a double-submit token for
cookie sessions)."""

from __future__ import annotations

import hmac
import inspect
import secrets
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from .._app import Afterwork

TOKEN_COOKIE = "afterwork_token"
CSRF_COOKIE = "afterwork_csrf"
CSRF_HEADER = "x-afterwork-csrf"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


async def deny(aw: Afterwork, request: Request) -> Response | None:
    """None when the operator is allowed; else the 401 or 403 to answer."""
    if not aw.dashboard:
        return JSONResponse({"detail": "the afterwork dashboard is off"}, status_code=404)
    token = aw.dashboard_token
    if token and (_same(_bearer(request), token) or _same(request.cookies.get(TOKEN_COOKIE), token)):
        return None
    if aw.dashboard_auth is not None:
        try:
            allowed = aw.dashboard_auth(request)
            if inspect.isawaitable(allowed):
                allowed = await allowed
        except HTTPException as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        if allowed:
            return None
        return JSONResponse({"detail": "not allowed to use the afterwork dashboard"}, status_code=403)
    return JSONResponse({"detail": "log in: a Bearer token, or the dashboard's login page"},
                        status_code=401, headers={"WWW-Authenticate": "Bearer"})


def cross_site(request: Request, form_token: str | None = None) -> Response | None:
    """A 403 for a state-changing request that another site could have made."""
    origin = request.headers.get("origin")
    host = request.headers.get("host", "")
    if origin is not None and origin.split("://", 1)[-1] != host:
        return JSONResponse({"detail": f"cross-site request from {origin} refused"}, status_code=403)
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return JSONResponse({"detail": "cross-site request refused"}, status_code=403)
    if _bearer(request) is not None:
        return None  # a browser cannot send a Bearer header across sites on its own
    expected = request.cookies.get(CSRF_COOKIE)
    offered = form_token or request.headers.get(CSRF_HEADER)
    if not _same(offered, expected):
        return JSONResponse({"detail": "missing or wrong CSRF token: reload the page"}, status_code=403)
    return None


def new_csrf() -> str:
    return secrets.token_urlsafe(24)
