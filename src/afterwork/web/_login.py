"""The dashboard's login and logout, when it is guarded by `dashboard_token`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ._auth import end_session, new_csrf, other_site, set_session, token_matches
from ._layout import Links, page
from ._page import form_fields

if TYPE_CHECKING:
    from ._console import Console


def build_login(console: Console) -> list[BaseRoute]:
    settings = console.settings
    base = settings.dashboard_prefix

    async def leave(request: Request) -> Response:
        if (refused := other_site(request)) is not None:
            return refused
        response = RedirectResponse(f"{base}/login", 303)
        end_session(response, settings)
        return response

    async def login(request: Request) -> Response:
        if request.method == "POST":
            if (refused := other_site(request)) is not None:
                return refused
            token = (await form_fields(request)).get("token", "")
            if not token_matches(settings, token):
                return HTMLResponse("<p>Wrong token. <a href='login'>Again</a></p>", status_code=401)
            response = RedirectResponse(f"{base}/", 303)
            set_session(response, settings, request)
            return response
        body = ("<h1>Log in</h1><form method='post' class='bar'><label>token <input type='password' "
                "name='token' id='token' autofocus></label> <button id='login'>log in</button></form>"
                "<p class='empty'>The token is the application's <code>dashboard_token</code> "
                "(or AFTERWORK_DASHBOARD_TOKEN).</p>")
        return page(Links(base), "afterwork: log in", body, new_csrf())

    return [
        Route(f"{base}/login", login, methods=["GET", "POST"]),
        Route(f"{base}/logout", leave, methods=["POST"]),
    ]
