"""The dashboard's queues, queue, runners and schedules pages (their figures: `_board`; the
queues' and runners' tables: `_tables`, updated live through `_feeds`)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .._errors import AfterworkError
from ._auth import deny, new_csrf
from ._board import check_queue, queues_view
from ._feeds import Board, live_bar, live_part
from ._layout import empty, page, task_rows, unavailable, when
from ._watch import Reads

if TYPE_CHECKING:
    from ._console import Console

QUEUE_TASKS_SHOWN = 50


def build_views(console: Console, reads: Reads, board: Board) -> list[BaseRoute]:
    settings = console.settings
    base = settings.dashboard_prefix
    links = board.links
    tables = board.tables
    api = settings.api_prefix.rstrip("/")
    logout = bool(settings.dashboard_token)

    async def guarded(request: Request) -> Response | None:
        if (refused := await deny(settings, request)) is not None:
            return RedirectResponse(f"{base}/login", 303) if refused.status_code == 401 else refused
        return None

    def queues_body(parts: dict[str, str]) -> str:
        return (live_bar(links, "Queues", ("queues", None))
                + f"<div class='scroll'{live_part('queues', parts['queues'])}</div>"
                + "<p class='empty'>A paused queue keeps its tasks; no runner in any process starts "
                  "them until it is resumed. Limits are the app's <code>queue_limits</code>; rate "
                  "limits, its task names' <code>@task(rate_limit=...)</code>, shown under the queue "
                  "each name was declared with.</p>")

    async def one_queue(request: Request) -> Response:
        if (refused := await guarded(request)) is not None:
            return refused
        try:
            name = check_queue(request.path_params["queue"])
        except ValueError as exc:
            return HTMLResponse(f"<p>{escape(str(exc))}</p>", status_code=400)

        def load() -> tuple[list[dict[str, Any]], list[Any], dict[str, str | None]]:
            found = [q for q in queues_view(console) if q["queue"] == name]
            records = console.tasks.query(queue=name, limit=QUEUE_TASKS_SHOWN)
            return found, records, {r.id: console.redactor.last_error(r) for r in records if r.last_error}

        try:
            found, records, errors = await reads.run(load)
        except AfterworkError as exc:
            return unavailable(exc)
        body = (f"<h1>Queue {escape(name)}</h1><div class='scroll'>{tables.queues(found)}</div>"
                + "<h2>Its newest tasks</h2><div class='scroll'>"
                + task_rows(links, records, errors, empty_text="No task in this queue.")
                + f"</div><p><a href='{links.view('')}?queue={quote(name)}'>find and act on its "
                  "tasks</a></p>")
        return page(links, f"afterwork: queue {name}", body, new_csrf(), current="queues", logout=logout)

    def runners_body(parts: dict[str, str]) -> str:
        return (live_bar(links, "Runners", ("runners", None))
                + f"<div class='scroll'{live_part('runners', parts['runners'])}</div>")

    def schedule_row(s: dict[str, Any]) -> str:
        timing = escape(s["cron"] or f"every {s['every_seconds']:g} s")
        last = (f"<a href='{links.task(s['last_id'])}'>{when(s['last_at'])}</a>" if s["last_id"] else "never")
        state = escape(s["last_state"] or "")
        url = escape(f"{api}/schedules/{quote(s['name'], safe='')}/run")
        return (f"<tr><td>{escape(s['name'])}</td><td>{timing}</td><td>{when(s['next_at'])}</td>"
                f"<td>{last}</td><td class='{state}'>{state or '-'}</td>"
                f"<td><button data-post='{url}' class='run-now'>run now</button></td></tr>")

    def schedules_body(shown: list[dict[str, Any]]) -> str:
        head = ("<tr><th>task</th><th>when (UTC)</th><th>next run</th><th>last run</th>"
                "<th>its outcome</th><th></th></tr>")
        rows = "".join(map(schedule_row, shown)) or empty(
            6, "No periodic schedules: declare one with @periodic(cron=...) or @periodic(every=...).")
        return ("<h1>Periodic schedules</h1>"
                f"<div class='scroll'><table id='schedules'>{head}{rows}</table></div>")

    def view(name: str, load: Callable[[], Any], body: Callable[[Any], str]) -> Callable[[Request], Any]:
        """A page showing what `load` reads (on the API's threads), rendered by `body`."""

        async def endpoint(request: Request) -> Response:
            if (refused := await guarded(request)) is not None:
                return refused
            try:
                shown = await reads.run(load)
            except AfterworkError as exc:
                return unavailable(exc)
            return page(links, f"afterwork: {name}", body(shown), new_csrf(), current=name,
                        logout=logout)

        return endpoint

    def live(view_name: str) -> Callable[[], dict[str, str]]:
        return lambda: board.read({(view_name, None)})[(view_name, None)]

    return [
        Route(f"{base}/schedules", view("schedules", console.schedules, schedules_body), methods=["GET"]),
        Route(f"{base}/queues", view("queues", live("queues"), queues_body), methods=["GET"]),
        Route(f"{base}/queues/{{queue}}", one_queue, methods=["GET"]),
        Route(f"{base}/runners", view("runners", live("runners"), runners_body), methods=["GET"]),
    ]
