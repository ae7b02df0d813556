"""The dashboard page at `{dashboard_prefix}/`: server-rendered HTML, no build step."""

from __future__ import annotations

import json
import re
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .._errors import AfterworkError, StoreError, public_detail
from ._api import per_minute, states_from, steps_json
from ._auth import (
    CSRF_COOKIE,
    cross_site,
    deny,
    end_session,
    new_csrf,
    other_site,
    set_session,
    token_matches,
)
from ._bars import progress_bar, result_section
from ._chart import per_minute_svg
from ._watch import Reads

if TYPE_CHECKING:
    from ._console import Console

EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Retry)\b")
STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}.succeeded{color:#2e9e5b}
.failed{color:#d64545}.running{color:#1f6fd1}.cancelled{color:#a07000}pre{background:#f6f6f6;
padding:8px;overflow:auto;max-width:1000px}button{margin-right:8px}.counts td{font-size:18px}"""


def _absent(value: Any) -> str:
    return "-" if value is None else str(value)  # never the word None on the page


def error_summary(error: str | None) -> str:
    """The exception line of a traceback (its last "Name: message" line), else its last line."""
    lines = (error or "").strip().splitlines()
    found = [x for x in lines if EXCEPTION_LINE.match(x)]
    return (found or lines or [""])[-1]


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (the page's own small forms; no multipart library needed)."""
    fields = parse_qs((await request.body()).decode(errors="replace"))
    return {k: v[-1] for k, v in fields.items()}


def _page(title: str, body: str, csrf: str) -> HTMLResponse:
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")
    response = HTMLResponse(html)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict")
    return response


def _unavailable(exc: AfterworkError) -> HTMLResponse:
    return HTMLResponse(f"<p>{escape(public_detail(exc))}; retry later.</p>", status_code=503,
                        headers={"Retry-After": "5"})


STEP_COLUMNS = ("seq", "name", "state", "runs", "attempt", "started_at", "duration_seconds", "error")


def steps_table(steps: list[dict[str, Any]]) -> str:
    """The task's steps (`afterwork.step`) with timings and outcome; nothing for a task
    without steps."""
    if not steps:
        return ""
    head = "".join(f"<th>{escape(c.removesuffix('_seconds').removesuffix('_at'))}</th>"
                   for c in STEP_COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td class='{escape(str(s['state']))}'>"
                                    f"{escape(_absent(s[c]))}</td>" if c == "state" else
                                    f"<td>{escape(_absent(s[c]))}</td>" for c in STEP_COLUMNS)
                   + "</tr>" for s in steps)
    return f"<h2>Steps</h2><table id='steps'><tr>{head}</tr>{rows}</table>"


def build_pages(console: Console, reads: Reads) -> list[BaseRoute]:
    settings = console.settings
    base = settings.dashboard_prefix
    home = escape(f"{base}/")

    def task_href(task_id: str, action: str = "") -> str:
        """A task's page (or action) as an attribute value: the id quoted and escaped."""
        return escape(f"{base}/tasks/{quote(task_id, safe='')}{'/' + action if action else ''}")

    def row(t: Any, errors: dict[str, str | None]) -> str:
        state = escape(t.state.public)
        error = escape(error_summary(errors.get(t.id))[:100])
        return (f"<tr><td><a href='{task_href(t.id)}'>{escape(t.id[:8])}</a></td>"
                f"<td>{escape(t.name)}</td><td class='{state}'>{state}"
                f"{' ' + progress_bar(t.progress_json()) if state == 'running' else ''}</td>"
                f"<td>{t.attempts}/{t.max_attempts}</td><td>{error}</td></tr>")

    def table(records: list[Any], errors: dict[str, str | None]) -> str:
        head = "<tr><th>task</th><th>name</th><th>state</th><th>attempts</th><th>last error</th></tr>"
        return f"<table>{head}{''.join(row(r, errors) for r in records)}</table>"

    async def overview(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return RedirectResponse(f"{base}/login", 303) if refused.status_code == 401 else refused
        state, name = request.query_params.get("state") or None, request.query_params.get("name") or None

        def load() -> tuple[Any, ...]:
            recent = console.tasks.query(states=states_from(state), name=name, limit=50)
            failed = console.tasks.query(states=states_from("failed"), limit=20)
            # Secrets masked in the error lines: off the event loop (it may look functions up).
            errors = {r.id: console.redactor.last_error(r) for r in recent + failed if r.last_error}
            return console.tasks.counts(), per_minute(console.tasks, 60), recent, failed, errors

        try:
            states_from(state)
            if not (name or "").isprintable():
                raise ValueError("name= holds control characters: give a task's name")
        except ValueError as exc:
            return HTMLResponse(f"<p>{escape(str(exc))}</p>", status_code=400)
        try:
            counts, minutes, recent, failed, errors = await reads.run(load)
        except AfterworkError as exc:
            return _unavailable(exc)
        by_state: dict[str, int] = {}
        for (st, _), n in counts.items():
            by_state[st] = by_state.get(st, 0) + n
        cells = "".join(f"<td class='{s}'>{s}<br><b>{by_state.get(s, 0)}</b></td>"
                        for s in ("queued", "running", "succeeded", "failed", "cancelled"))
        options = "".join(f"<option{' selected' if s == state else ''}>{s}</option>"
                          for s in ("", "queued", "running", "succeeded", "failed", "cancelled"))
        body = (f"<h1>afterwork</h1>{logout()}<table class='counts'><tr>{cells}</tr></table>"
                f"<h2>Tasks per minute, last hour</h2>{per_minute_svg(minutes)}"
                f"<h2>Failed</h2>{table(failed, errors)}"
                f"<h2>Recent</h2><form method='get'>state <select name='state'>{options}</select> "
                f"name <input name='name' value='{escape(name or '')}'> <button>filter</button></form>"
                f"{table(recent, errors)}")
        return _page("afterwork", body, new_csrf())

    async def detail(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return RedirectResponse(f"{base}/login", 303) if refused.status_code == 401 else refused
        task_id = request.path_params["task_id"]
        try:
            record = await reads.run(console.tasks.get, task_id) if task_id.isprintable() else None
            info = await reads.run(console.redactor.task_view, record) if record is not None else None
            steps = await reads.run(steps_json, console.tasks, record.id) if record is not None else []
        except AfterworkError as exc:
            return _unavailable(exc)
        if record is None or info is None:
            return HTMLResponse(f"<p>No task {escape(task_id[:200])}.</p>", status_code=404)
        history = "".join(f"<tr><td>{escape(_absent(h.get('attempt')))}</td>"
                          f"<td>{escape(_absent(h.get('outcome')))}</td>"
                          f"<td>{escape(str(h.get('error', '')))}</td></tr>"
                          for h in info["history"] if isinstance(h, dict))
        csrf = new_csrf()
        applies = {"failed": "retry", "cancelled": "retry", "queued": "cancel"}  # as steer() allows
        buttons = "".join(
            f"<form method='post' action='{task_href(record.id, action)}' style='display:inline'>"
            f"<input type='hidden' name='csrf' value='{escape(csrf)}'>"
            f"<button id='{action}'>{action}</button></form>"
            for action in ("retry", "cancel") if applies.get(record.state.public) == action)
        fields = "".join(f"<tr><th>{escape(k)}</th><td class='{escape(str(v))}'>"
                         f"{escape(_absent(v))}</td></tr>" for k, v in info.items()
                         if k not in ("history", "last_error", "arguments", "progress", "result",
                                      "result_error"))
        bar = progress_bar(info.get("progress"))
        body = (f"<p><a href='{home}'>afterwork</a></p>{logout()}<h1>{escape(record.name)}</h1>"
                f"<table id='task'>{fields}</table><p>{buttons}</p>"
                f"{'<h2>Progress</h2><p>' + bar + '</p>' if bar else ''}{result_section(info)}"
                f"{steps_table(steps)}"
                f"<h2>Arguments</h2><pre>{escape(json.dumps(info['arguments'], indent=2))}</pre>"
                f"<h2>Attempts that did not succeed</h2><table><tr><th>attempt</th><th>outcome</th>"
                f"<th>error</th></tr>{history}</table>"
                f"<h2>Last error</h2><pre>{escape(info['last_error'] or '-')}</pre>")
        return _page(record.name, body, csrf)

    async def act(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return refused
        form = await _form(request)
        if (refused := cross_site(request, form.get("csrf"))) is not None:
            return refused
        task_id, action = request.path_params["task_id"], request.path_params["action"]
        if action not in ("retry", "cancel"):
            return HTMLResponse("retry or cancel", status_code=404)
        try:
            await reads.run(console.action(action), task_id)
        except StoreError as exc:
            return _unavailable(exc)
        except AfterworkError as exc:
            return HTMLResponse(f"<p>{escape(str(exc))}</p><p><a href='{task_href(task_id)}'>back</a></p>",
                                status_code=409)
        return RedirectResponse(f"{base}/tasks/{quote(task_id, safe='')}", 303)

    def logout() -> str:
        if not settings.dashboard_token:
            return ""  # the app's own check decides; it has its own way out
        return (f"<form method='post' action='{escape(base)}/logout' style='float:right'>"
                "<button id='logout'>log out</button></form>")

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
            token = (await _form(request)).get("token", "")
            if not token_matches(settings, token):
                return HTMLResponse("<p>Wrong token. <a href='login'>Again</a></p>", status_code=401)
            response = RedirectResponse(f"{base}/", 303)
            set_session(response, settings, request)
            return response
        body = ("<h1>afterwork</h1><form method='post'><label>token <input type='password' "
                "name='token' id='token'></label> <button id='login'>log in</button></form>")
        return _page("afterwork: log in", body, new_csrf())

    return [
        Route(f"{base}/", overview, methods=["GET"]),
        Route(f"{base}/login", login, methods=["GET", "POST"]),
        Route(f"{base}/logout", leave, methods=["POST"]),
        Route(f"{base}/tasks/{{task_id}}", detail, methods=["GET"]),
        Route(f"{base}/tasks/{{task_id}}/{{action}}", act, methods=["POST"]),
    ]


