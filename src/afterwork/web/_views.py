"""The dashboard's queues, queue and runners pages (their figures: `_board`)."""

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
from ._board import check_queue, queues_view, runners_view
from ._layout import Links, absent, empty, page, task_rows, unavailable, when
from ._watch import Reads

if TYPE_CHECKING:
    from ._console import Console

QUEUE_TASKS_SHOWN = 50


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def build_views(console: Console, reads: Reads) -> list[BaseRoute]:
    settings = console.settings
    base = settings.dashboard_prefix
    links = Links(base)
    api = settings.api_prefix.rstrip("/")
    logout = bool(settings.dashboard_token)

    def pause_button(q: dict[str, Any]) -> str:
        action = "resume" if q["paused"] else "pause"
        url = escape(f"{api}/queues/{quote(q['queue'], safe='')}/{action}")
        return f"<button data-post='{url}' id='{action}-{escape(q['queue'])}'>{action}</button>"

    def queue_row(q: dict[str, Any]) -> str:
        state = ("<span class='paused'>paused</span>" if q["paused"] else "taking tasks")
        limit = absent(q["limit"])
        return (f"<tr><td><a href='{links.queue(q['queue'])}'>{escape(q['queue'])}</a></td>"
                f"<td>{state}</td><td class='num'>{q['waiting']}</td>"
                f"<td class='num'>{_age(q['oldest_wait_seconds'])}</td>"
                f"<td class='num'>{q['running']} / {limit}</td>"
                f"<td class='num'>{q['succeeded_last_hour']}</td><td class='num'>{q['failed_last_hour']}</td>"
                f"<td class='num'>{_rate(q['failure_rate'])}</td><td>{pause_button(q)}</td></tr>")

    def queue_table(shown: list[dict[str, Any]]) -> str:
        head = ("<tr><th>queue</th><th>state</th><th class='num'>waiting</th>"
                "<th class='num'>oldest wait</th><th class='num'>running / limit</th>"
                "<th class='num'>succeeded (1 h)</th><th class='num'>failed (1 h)</th>"
                "<th class='num'>failure rate</th><th></th></tr>")
        rows = "".join(map(queue_row, shown)) or empty(9, "No queues yet: tasks go to the "
                                                         "'default' queue unless given one.")
        return f"<div class='scroll'><table id='queues'>{head}{rows}</table></div>"

    async def guarded(request: Request) -> Response | None:
        if (refused := await deny(settings, request)) is not None:
            return RedirectResponse(f"{base}/login", 303) if refused.status_code == 401 else refused
        return None

    def queues_body(shown: list[dict[str, Any]]) -> str:
        return ("<h1>Queues</h1>" + queue_table(shown)
                + "<p class='empty'>A paused queue keeps its tasks; no runner in any process starts "
                  "them until it is resumed. Limits are the app's <code>queue_limits</code>.</p>")

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
        body = (f"<h1>Queue {escape(name)}</h1>" + queue_table(found)
                + "<h2>Its newest tasks</h2><div class='scroll'>"
                + task_rows(links, records, errors, empty_text="No task in this queue.")
                + f"</div><p><a href='{links.view('')}?queue={quote(name)}'>find and act on its "
                  "tasks</a></p>")
        return page(links, f"afterwork: queue {name}", body, new_csrf(), current="queues", logout=logout)

    def runner_row(r: dict[str, Any]) -> str:
        alive = ("alive" if r["alive"] else
                 f"<span class='dead'>dead</span> (held {len(r['held'])}: "
                 + ", ".join(f"<a href='{links.task(i)}'>{escape(i)}</a>" for i in r["held"][:20])
                 + ")")
        queues = escape(", ".join(r["queues"])) if r["queues"] else "all"
        return (f"<tr><td>{escape(r['host'])}</td><td class='num'>{int(r['pid'])}</td>"
                f"<td>{escape(r['kind'])}</td><td>{queues}</td>"
                f"<td class='num'>{r['running']} / {absent(r['concurrency'])}</td>"
                f"<td>{when(r['started_at'])}</td><td>{when(r['heartbeat_at'])}</td><td>{alive}</td></tr>")

    def runners_body(shown: list[dict[str, Any]]) -> str:
        head = ("<tr><th>host</th><th class='num'>pid</th><th>kind</th><th>queues</th>"
                "<th class='num'>running / concurrency</th><th>started</th><th>last heartbeat</th>"
                "<th>state</th></tr>")
        rows = "".join(map(runner_row, shown)) or empty(
            8, "No runner has reported: start the app (its runner starts with it) or `afterwork worker`.")
        return f"<h1>Runners</h1><div class='scroll'><table id='runners'>{head}{rows}</table></div>"

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

    def view(name: str, load: Callable[[], list[dict[str, Any]]],
             body: Callable[[list[dict[str, Any]]], str]) -> Callable[[Request], Any]:
        """A page listing what `load` reads (on the API's threads), rendered by `body`."""

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

    return [
        Route(f"{base}/schedules", view("schedules", console.schedules, schedules_body), methods=["GET"]),
        Route(f"{base}/queues", view("queues", lambda: queues_view(console), queues_body), methods=["GET"]),
        Route(f"{base}/queues/{{queue}}", one_queue, methods=["GET"]),
        Route(f"{base}/runners", view("runners", lambda: runners_view(console), runners_body),
              methods=["GET"]),
    ]
