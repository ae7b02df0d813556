"""The dashboard's task names page: per name, count, failure rate, run time and wait p50/p95
over a chosen window, as a table and as charts (figures: `_board.names_view`)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .._errors import AfterworkError
from ._auth import deny, new_csrf
from ._board import WINDOWS, names_view
from ._chart import seconds_text, spread_svg
from ._layout import Links, empty, page, unavailable
from ._watch import Reads

if TYPE_CHECKING:
    from ._console import Console


def _seconds(value: float | None) -> str:
    return "-" if value is None else seconds_text(value)


def build_names(console: Console, reads: Reads) -> list[BaseRoute]:
    settings = console.settings
    base = settings.dashboard_prefix
    links = Links(base)

    def row(n: dict[str, Any]) -> str:
        return (f"<tr><td><a href='{links.view('')}?name={escape(n['name'])}'>{escape(n['name'])}</a></td>"
                f"<td class='num'>{n['count']}</td><td class='num'>{n['failure_rate']:.0%}</td>"
                + "".join(f"<td class='num'>{_seconds(n[k])}</td>"
                          for k in ("run_p50", "run_p95", "wait_p50", "wait_p95")) + "</tr>")

    async def names(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return RedirectResponse(f"{base}/login", 303) if refused.status_code == 401 else refused
        window = request.query_params.get("window", "1h")
        window = window if window in WINDOWS else "1h"
        try:
            shown = await reads.run(names_view, console, window)
        except AfterworkError as exc:
            return unavailable(exc)
        choices = "".join(f"<a href='?window={w}'{' aria-current=page' if w == window else ''}>{w}</a>"
                          for w in WINDOWS)
        head = ("<tr><th>task</th><th class='num'>finished</th><th class='num'>failure rate</th>"
                "<th class='num'>run p50</th><th class='num'>run p95</th>"
                "<th class='num'>wait p50</th><th class='num'>wait p95</th></tr>")
        rows = "".join(map(row, shown["names"])) or empty(7, "No task finished in this window: "
                                                             "choose a longer one.")
        partial = ("<p class='empty'>Computed over the newest finished tasks only (many finished "
                   "in this window).</p>" if shown["partial"] else "")
        body = (f"<h1>Task names</h1><p class='bar' id='windows'>finished in the last {choices}</p>"
                f"<div class='scroll'><table id='names'>{head}{rows}</table></div>{partial}"
                "<h2>Run time (p50 inside p95)</h2>"
                + spread_svg(shown["names"], "run_p50", "run_p95", "run time per task name")
                + "<h2>Wait from due to started (p50 inside p95)</h2>"
                + spread_svg(shown["names"], "wait_p50", "wait_p95", "wait per task name"))
        return page(links, "afterwork: task names", body, new_csrf(), current="names",
                    logout=bool(settings.dashboard_token))

    return [Route(f"{base}/names", names, methods=["GET"])]
