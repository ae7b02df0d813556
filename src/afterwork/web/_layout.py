"""The dashboard's page frame and the small pieces every view renders: navigation, times,
states, task rows. Styles and script are files of the package (static/), served by the app
itself: nothing is loaded from outside it."""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .._errors import AfterworkError, public_detail
from .._models import iso
from ._auth import CSRF_COOKIE
from ._bars import progress_bar

EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Retry)\b")
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
VIEWS = (("", "Overview"), ("queues", "Queues"), ("names", "Task names"), ("runners", "Runners"),
         ("schedules", "Schedules"))
STATIC = {"board.css": "text/css", "board.js": "text/javascript"}


def absent(value: Any) -> str:
    return "-" if value is None else str(value)  # never the word None on the page


def error_summary(error: str | None) -> str:
    """The exception line of a traceback (its last "Name: message" line), else its last line."""
    lines = (error or "").strip().splitlines()
    found = [x for x in lines if EXCEPTION_LINE.match(x)]
    return (found or lines or [""])[-1]


def when(at: float | str | None) -> str:
    """A time: UTC in the page (and on hover), the viewer's zone once the script ran."""
    if at is None:
        return "-"
    text = escape(at if isinstance(at, str) else iso(at) or "")
    return f"<time datetime='{text}' title='{text}'>{text}</time>"


def empty(colspan: int, what: str) -> str:
    """A table row that says why the table is empty and what to do."""
    return f"<tr><td colspan='{colspan}' class='empty'>{escape(what)}</td></tr>"


class Links:
    """URLs under the dashboard's prefix, quoted and escaped for attributes."""

    def __init__(self, base: str) -> None:
        self.base = base

    def view(self, name: str = "") -> str:
        return escape(f"{self.base}/{name}")

    def task(self, task_id: str, action: str = "") -> str:
        return escape(f"{self.base}/tasks/{quote(task_id, safe='')}{'/' + action if action else ''}")

    def queue(self, queue: str) -> str:
        return escape(f"{self.base}/queues/{quote(queue, safe='')}")


def task_rows(links: Links, records: Iterable[Any], errors: dict[str, str | None], *,
              pick: bool = False, empty_text: str = "No tasks here.") -> str:
    """A table of tasks; with `pick`, a checkbox per row for bulk actions."""
    head = ("<tr>" + ("<th><input type='checkbox' id='pick-all' aria-label='select all shown'></th>"
                      if pick else "")
            + "<th>task</th><th>name</th><th>queue</th><th>state</th><th>attempts</th>"
              "<th>created</th><th>last error</th></tr>")
    rows = []
    for t in records:
        state = escape(t.state.public)
        box = f"<td><input type='checkbox' class='pick' value='{escape(t.id)}'></td>" if pick else ""
        rows.append(f"<tr>{box}<td class='id'><a href='{links.task(t.id)}'>{escape(t.id)}</a></td>"
                    f"<td>{escape(t.name)}</td>"
                    f"<td><a href='{links.queue(t.queue)}'>{escape(t.queue)}</a></td>"
                    f"<td class='{state}'>{state}"
                    f"{' ' + progress_bar(t.progress_json()) if state == 'running' else ''}</td>"
                    f"<td>{t.attempts}/{t.max_attempts}</td>"
                    f"<td>{when(t.created_at)}</td>"
                    f"<td>{escape(error_summary(errors.get(t.id))[:100])}</td></tr>")
    return (f"<table class='tasks'>{head}"
            f"{''.join(rows) or empty(8 if pick else 7, empty_text)}</table>")


def page(links: Links, title: str, body: str, csrf: str, *, current: str = "",
         logout: bool = False) -> HTMLResponse:
    nav = "".join(f"<a href='{links.view(name)}'{' aria-current=page' if name == current else ''}>"
                  f"{label}</a>" for name, label in VIEWS)
    out = (f"<form method='post' action='{links.view('logout')}'><button id='logout'>log out"
           "</button></form>" if logout else "")
    html = ("<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<meta name='csrf' content='{escape(csrf)}'><title>{escape(title)}</title>"
            f"<link rel='stylesheet' href='{links.view('static/board.css')}'>"
            f"<script defer src='{links.view('static/board.js')}'></script></head><body>"
            f"<header><b>afterwork</b><nav>{nav}</nav>{out}</header><main>{body}</main></body></html>")
    response = HTMLResponse(html)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict")
    return response


def unavailable(exc: AfterworkError) -> HTMLResponse:
    return HTMLResponse(f"<p>{escape(public_detail(exc))}; retry later.</p>", status_code=503,
                        headers={"Retry-After": "5"})


def static_route(base: str) -> Route:
    """The page's stylesheet and script, from the package (cached by the browser an hour)."""
    folder = importlib.resources.files(__package__).joinpath("static")
    files = {name: folder.joinpath(name).read_bytes() for name in STATIC}

    async def serve(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            return Response("no such file", status_code=404, media_type="text/plain")
        return Response(files[name], media_type=STATIC[name],
                        headers={"Cache-Control": "private, max-age=3600"})

    return Route(f"{base}/static/{{name}}", serve, methods=["GET"])
