"""Serving the web side as a route of the app, so the app's own middleware runs for it.

`mount(app, console)` puts one route at the front of the app's routes. It takes every
request whose path is under `api_prefix` (the status API) or, when the dashboard or metrics
are on, under `dashboard_prefix`, and hands it to afterwork's own small router. Being a
route, it runs inside the app's middleware stack: sessions, CORS, authentication and
logging that the app adds, before or after `Afterwork(app)`, apply to it as to the app's own
endpoints (`dashboard_auth` can read `request.session`).

Why one route at the front, rather than `app.mount(...)` at the end:
- the prefixes stay afterwork's whatever routes the app declares (`GET /{msg}` would
  otherwise take `GET /afterwork`, a catch-all route everything under it);
- every path under a prefix is answered by afterwork, with afterwork's own JSON 404 and 405,
  never by a route of the app that happens to match;
- the routes keep their full paths (no `root_path` change), so links, redirects and cookie
  paths are the same wherever the request came in.
It is not in FastAPI's OpenAPI schema (only FastAPI's own routes are).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from starlette._utils import get_route_path
from starlette.applications import Starlette
from starlette.datastructures import URLPath
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import StoreError
from ._api import StreamSlots, build_api, store_fault
from ._console import Console
from ._watch import Reads, Watch

log = logging.getLogger("afterwork")


def mount(app: Starlette, console: Callable[[], Console]) -> None:
    """Serve the status API (and the dashboard and metrics, when on) on `app`, as its first
    route. `console` gives the Console at the app's first request: by then the Afterwork's
    parts are final (it may still be configured anew between `Afterwork(app)` and then)."""
    if console().settings.metrics:
        from ._metrics import require_prometheus

        require_prometheus()  # now, at Afterwork(app), rather than at the first request
    app.router.routes.insert(0, AfterworkRoutes(console))


def served_prefixes(console: Console) -> tuple[str, ...]:
    """The paths afterwork answers under (each without a trailing slash)."""
    settings = console.settings
    found = [settings.api_prefix.rstrip("/")] if settings.api_prefix else []
    if settings.dashboard or settings.metrics:
        found.append(settings.dashboard_prefix.rstrip("/"))
    return tuple(found)


def web_app(console: Console) -> ASGIApp:
    """afterwork's router: every endpoint under its full path, JSON answers for the rest."""
    reads = Reads(console.settings.api_threads)
    slots = StreamSlots(console.settings.max_streams)  # the status API's and the page's streams
    routes: list[BaseRoute] = []
    if console.settings.dashboard and console.settings.api_prefix:
        from ._ops_api import build_ops_api

        routes += build_ops_api(console, reads)
    if console.settings.api_prefix:
        routes += build_api(console, reads, Watch(console, reads), slots)
    if console.settings.dashboard:
        from ._feeds import Board
        from ._layout import Links, static_route
        from ._live import Pulse
        from ._login import build_login
        from ._names import build_names
        from ._page import build_pages
        from ._views import build_views

        board = Board(console, Links(console.settings.dashboard_prefix),
                      console.settings.api_prefix.rstrip("/"))
        pulse = Pulse(console, reads, board.read)  # one shared read for every live tab
        routes += [*build_pages(console, reads, slots, board, pulse), *build_login(console),
                   *build_views(console, reads, board), *build_names(console, reads),
                   static_route(console.settings.dashboard_prefix)]
    if console.settings.metrics:
        from ._metrics import build_metrics

        routes += build_metrics(console, reads)
    return JsonErrors(Router(routes=routes, default=_not_found))


class AfterworkRoutes(BaseRoute):
    """One route for everything under afterwork's prefixes (see the module's docstring),
    built from the Console at the first request it sees. No prefixes (`api_prefix=""`, no
    dashboard or metrics): it matches nothing."""

    def __init__(self, console: Callable[[], Console]) -> None:
        self._console = console
        # (the prefixes, each followed by "/", the app under them)
        self._built: tuple[tuple[str, ...], tuple[str, ...], ASGIApp] | None = None
        self._lock = threading.Lock()

    def _parts(self) -> tuple[tuple[str, ...], tuple[str, ...], ASGIApp]:
        if self._built is None:
            with self._lock:  # two test clients' loops may meet the first request together
                if self._built is None:
                    console = self._console()
                    prefixes = served_prefixes(console)
                    self._built = prefixes, tuple(p + "/" for p in prefixes), web_app(console)
        return self._built

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Asked first on every request of the app (it comes before the app's own routes, so
        that a catch-all route of the app cannot hide it): one lookup and one `startswith`."""
        if scope["type"] == "http":
            prefixes, under, _ = self._parts()
            path = get_route_path(scope)
            if path in prefixes or path.startswith(under):
                return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._parts()[2](scope, receive, send)

    def __repr__(self) -> str:
        return f"AfterworkRoutes(prefixes={list(self._built[0]) if self._built else '(not built yet)'})"


class JsonErrors:
    """Whatever goes wrong under the prefixes is a short JSON answer: an unknown path or a wrong
    method (which Starlette raises as HTTPException, and which would otherwise reach the
    app's exception handlers) a 404/405; afterwork's own bug a logged 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
            return
        except HTTPException as exc:
            if started:
                raise
            answer: Response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                            headers=exc.headers)
        except StoreError as exc:
            if started:
                raise
            answer = store_fault(exc)
        except Exception:
            if started:
                raise
            log.exception("afterwork: the API failed on %s %s", scope.get("method"), scope.get("path"))
            answer = JSONResponse({"detail": "afterwork failed on this request (see the "
                                             "server's log)"}, status_code=500)
        await answer(scope, receive, send)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    path = str(scope.get("path", ""))[:200]
    await JSONResponse({"detail": f"no afterwork endpoint at {path!r}"}, status_code=404)(
        scope, receive, send)
