"""The dashboard's overview and task pages at `{dashboard_prefix}/`: server-rendered HTML, no
build step. The overview's parts, its filtered list too, update live (`_live`); the same
functions render them for the first load and for every update (`_feeds`), so both always
look the same."""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .._errors import AfterworkError, StoreError, TaskStateError
from ._api import StreamSlots, steps_json
from ._auth import cross_site, deny, new_csrf
from ._bars import progress_bar, result_section
from ._feeds import Board, feed_of, live_bar, live_part
from ._find import Filter
from ._layout import STATES, absent, page, unavailable, when
from ._live import Pulse, live_route
from ._ops_api import BULK_ACTIONS, delete_tasks
from ._watch import Reads

if TYPE_CHECKING:
    from ._console import Console

async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form (the page's own small forms; no multipart library needed)."""
    fields = parse_qs((await request.body()).decode(errors="replace"))
    return {k: v[-1] for k, v in fields.items()}


STEP_COLUMNS = ("seq", "name", "state", "runs", "attempt", "started_at", "duration_seconds", "error")


def steps_table(steps: list[dict[str, Any]]) -> str:
    """The task's steps (`afterwork.step`) with timings and outcome; nothing for a task
    without steps."""
    if not steps:
        return ""
    head = "".join(f"<th>{escape(c.removesuffix('_seconds').removesuffix('_at'))}</th>"
                   for c in STEP_COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td class='{escape(str(s['state']))}'>"
                                    f"{escape(absent(s[c]))}</td>" if c == "state" else
                                    f"<td>{escape(absent(s[c]))}</td>" for c in STEP_COLUMNS)
                   + "</tr>" for s in steps)
    return f"<h2>Steps</h2><table id='steps'><tr>{head}</tr>{rows}</table>"


def _filter_form(f: Filter) -> str:
    options = "".join(f"<option{' selected' if s == (f.state or '') else ''}>{s}</option>"
                      for s in ("", *STATES))

    def field(key: str, label: str, value: str | None, hint: str = "") -> str:
        return (f"<label>{label} <input name='{key}' value='{escape(value or '')}' "
                f"placeholder='{escape(hint)}' size='12'></label>")

    return ("<form method='get' class='bar' id='filter'>"
            f"<label>state <select name='state'>{options}</select></label>"
            + field("name", "name", f.name, "module.function") + field("queue", "queue", f.queue)
            + field("id", "id starts with", f.id) + field("arg", "argument", f.arg, "a value")
            + field("since", "since", f.since, "2026-01-31T14:00")
            + field("until", "until", f.until, "UTC unless zoned")
            + "<button>filter</button></form>")


def build_pages(console: Console, reads: Reads, slots: StreamSlots, board: Board, pulse: Pulse
                ) -> list[BaseRoute]:
    settings = console.settings
    base = settings.dashboard_prefix
    links = board.links
    bulk_url = escape(f"{settings.api_prefix.rstrip('/')}/tasks/bulk")

    async def overview(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return RedirectResponse(f"{base}/login", 303) if refused.status_code == 401 else refused
        try:
            feed = feed_of({**request.query_params, "view": "overview"})
        except ValueError as exc:
            return HTMLResponse(f"<p>{escape(str(exc))}</p>", status_code=400)
        wanted = feed[1] or Filter()
        try:
            parts = (await reads.run(board.read, {feed}))[feed]
        except AfterworkError as exc:
            return unavailable(exc)
        bulk = ("".join(f"<button data-bulk='{a}' data-url='{bulk_url}' id='bulk-{a}'>{a} selected"
                        "</button>" for a in BULK_ACTIONS)
                + f"<label><input type='checkbox' id='all-matching' data-match='{wanted.match()}'> "
                  "all that match the filter</label><span id='bulk-result' role='status'></span>")
        body = (live_bar(links, "Overview", feed)
                + f"<div class='counts'{live_part('counts', parts['counts'])}</div>"
                f"<h2>Tasks per minute, last hour</h2><div{live_part('chart', parts['chart'])}</div>"
                f"<h2>Failed</h2><div class='scroll'{live_part('failed', parts['failed'])}</div>"
                f"<h2>{'Tasks matching the filter' if wanted.active else 'Recent'}</h2>"
                f"{_filter_form(wanted)}<div class='bar'>{bulk}</div>"
                f"<div class='scroll'{live_part('recent', parts['recent'])}</div>")
        return page(links, "afterwork", body, new_csrf(), logout=bool(settings.dashboard_token))

    async def detail(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return RedirectResponse(f"{base}/login", 303) if refused.status_code == 401 else refused
        task_id = request.path_params["task_id"]
        try:
            record = await reads.run(console.tasks.get, task_id) if task_id.isprintable() else None
            info = await reads.run(console.redactor.task_view, record) if record is not None else None
            steps = await reads.run(steps_json, console.tasks, record.id) if record is not None else []
        except AfterworkError as exc:
            return unavailable(exc)
        if record is None or info is None:
            return HTMLResponse(f"<p>No task {escape(task_id[:200])}.</p>", status_code=404)
        history = "".join(f"<tr><td>{escape(absent(h.get('attempt')))}</td>"
                          f"<td>{escape(absent(h.get('outcome')))}</td>"
                          f"<td>{escape(str(h.get('error', '')))}</td></tr>"
                          for h in info["history"] if isinstance(h, dict))
        csrf = new_csrf()
        applies = {"failed": "retry", "cancelled": "retry", "queued": "cancel"}  # as steer() allows
        shown: list[str] = [a for a in ("retry", "cancel") if applies.get(record.state.public) == a]
        if record.state.value in ("queued", "succeeded", "failed", "cancelled"):  # as delete allows
            shown.append("delete")
        asks = {"delete": " data-confirm='Delete this task, its result and its steps?'"}
        buttons = "".join(
            f"<form method='post' action='{links.task(record.id, action)}' class='inline'"
            f"{asks.get(action, '')}><input type='hidden' name='csrf' value='{escape(csrf)}'>"
            f"<button id='{action}'>{action}</button></form>" for action in shown)
        fields = "".join(
            f"<tr><th>{escape(k)}</th><td class='{escape(str(v))}'>"
            f"{when(v) if k.endswith('_at') and v else escape(absent(v))}</td></tr>"
            for k, v in info.items()
            if k not in ("history", "last_error", "arguments", "progress", "result", "result_error"))
        bar = progress_bar(info.get("progress"))
        body = (f"<h1>{escape(record.name)}</h1><div class='scroll'><table id='task'>{fields}</table></div>"
                f"<p>{buttons}</p>{'<h2>Progress</h2><p>' + bar + '</p>' if bar else ''}"
                f"{result_section(info)}"
                f"{steps_table(steps)}"
                f"<h2>Arguments</h2><pre>{escape(json.dumps(info['arguments'], indent=2))}</pre>"
                f"<h2>Attempts that did not succeed</h2><table><tr><th>attempt</th><th>outcome</th>"
                f"<th>error</th></tr>{history}</table>"
                f"<h2>Last error</h2><pre>{escape(info['last_error'] or '-')}</pre>")
        return page(links, record.name, body, csrf, current="task",
                    logout=bool(settings.dashboard_token))

    async def act(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return refused
        form = await form_fields(request)
        if (refused := cross_site(request, form.get("csrf"))) is not None:
            return refused
        task_id, action = request.path_params["task_id"], request.path_params["action"]
        if action not in ("retry", "cancel", "delete"):
            return HTMLResponse("retry, cancel or delete", status_code=404)
        try:
            if action == "delete":
                refused = (await reads.run(delete_tasks, console, [task_id]))["refused"]
                if refused:
                    raise TaskStateError(refused[0]["detail"])
            else:
                await reads.run(console.action(action), task_id)
        except StoreError as exc:
            return unavailable(exc)
        except AfterworkError as exc:
            return HTMLResponse(f"<p>{escape(str(exc))}</p><p><a href='{links.task(task_id)}'>back</a></p>",
                                status_code=409)
        pulse.kick()
        gone = action == "delete"  # back to the overview: the task's page is no more
        return RedirectResponse(f"{base}/" if gone else f"{base}/tasks/{quote(task_id, safe='')}", 303)

    return [
        Route(f"{base}/", overview, methods=["GET"]),
        Route(f"{base}/live", live_route(console, pulse, slots), methods=["GET"]),
        Route(f"{base}/tasks/{{task_id}}", detail, methods=["GET"]),
        Route(f"{base}/tasks/{{task_id}}/{{action}}", act, methods=["POST"]),
    ]
