"""What each live view shows, read for all open tabs at once.

A tab follows one feed: the overview (with its filter, if any), the queues or the runners.
`Board.read` reads every feed some tab follows in one go (the overview's counters, chart and
failed list once, however many filters are followed) and renders each feed's parts with the
same functions as the page's first load, so that both always look the same."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ._api import per_minute, states_from
from ._board import queues_view, runners_view
from ._chart import per_minute_svg
from ._find import Filter
from ._layout import STATES, Links, task_rows
from ._tables import Tables

if TYPE_CHECKING:
    from ._console import Console

RECENT_SHOWN = 50
FAILED_SHOWN = 20
LIVE_VIEWS = ("overview", "queues", "runners")
Feed = tuple[str, Filter | None]
"""(view, the overview's filter or None)."""


def feed_of(params: Mapping[str, Any]) -> Feed:
    """The feed a live stream's query names (`view=queues`, or the overview's filter fields);
    ValueError says what is wrong."""
    view = params.get("view") or "overview"
    if view not in LIVE_VIEWS:
        raise ValueError(f"view={str(view)[:20]!r}: give one of {', '.join(LIVE_VIEWS)}")
    wanted = Filter.of(params) if view == "overview" else None
    return view, wanted if wanted is not None and wanted.active else None


def live_bar(links: Links, title: str, feed: Feed) -> str:
    """A view's heading with its live status and pause control (board.js follows the feed)."""
    view, wanted = feed
    query = ({"view": view} if view != "overview" else
             {k: v for k, v in asdict(wanted).items() if v} if wanted else {})
    url = links.view("live") + (escape("?" + urlencode(query)) if query else "")
    return (f"<div id='live' data-url='{url}' class='bar'><h1>{escape(title)}</h1>"
            "<button id='pause-live'>Pause live updates</button>"
            "<span id='live-status' class='live'>connecting…</span></div>")


def mark(html: str) -> str:
    """A live part's fingerprint: the page swaps a part in only when it changed, so what the
    operator is reading or about to click is not replaced by its own copy."""
    return hashlib.sha1(html.encode(), usedforsecurity=False).hexdigest()[:16]


def live_part(key: str, html: str) -> str:
    """A live part's id, fingerprint and content (from the end of its opening tag on)."""
    return f" id='live-{key}' data-mark='{mark(html)}'>{html}"


class Board:
    """Each feed's parts: HTML fragments by the id they replace (`live-<key>`)."""

    def __init__(self, console: Console, links: Links, api: str) -> None:
        self.console = console
        self.links = links
        self.tables = Tables(links, api)

    def errors(self, records: list[Any]) -> dict[str, str | None]:
        # Secrets masked in the error lines: off the event loop (it may look functions up).
        return {r.id: self.console.redactor.last_error(r) for r in records if r.last_error}

    def overview(self) -> dict[str, str]:
        """The overview's parts every filter shares: counters, chart, failed tasks (blocks)."""
        tasks = self.console.tasks
        by_state: dict[str, int] = {}
        for (st, _), n in tasks.counts().items():
            by_state[st] = by_state.get(st, 0) + n
        failed = tasks.query(states=states_from("failed"), limit=FAILED_SHOWN)
        counts = "".join(f"<a class='{s}' href='{self.links.view('')}?state={s}'>{s}"
                         f"<b id='count-{s}'>{by_state.get(s, 0)}</b></a>" for s in STATES)
        return {
            "counts": counts,
            "chart": per_minute_svg(per_minute(tasks, 60)),
            "failed": task_rows(self.links, failed, self.errors(failed),
                                empty_text="No failed tasks. Failures show here with their error."),
        }

    def recent(self, wanted: Filter | None) -> str:
        """The newest tasks, or those matching the filter, to pick for bulk actions (blocks)."""
        shown = (wanted.load(self.console, RECENT_SHOWN) if wanted is not None
                 else self.console.tasks.query(limit=RECENT_SHOWN))
        return task_rows(self.links, shown, self.errors(shown), pick=True,
                         empty_text="No tasks yet: add one with tasks.add_task(...) in an "
                                    "endpoint, or widen the filter.")

    def read(self, feeds: set[Feed]) -> dict[Feed, dict[str, str]]:
        """Every feed's parts, each view read once (blocks)."""
        found: dict[Feed, dict[str, str]] = {}
        shared: dict[str, dict[str, str]] = {}

        def once(view: str) -> dict[str, str]:
            if view not in shared:
                shared[view] = (self.overview() if view == "overview" else
                                {"queues": self.tables.queues(queues_view(self.console))}
                                if view == "queues" else
                                {"runners": self.tables.runners(runners_view(self.console))})
            return shared[view]

        for feed in feeds:
            view, wanted = feed
            found[feed] = ({**once(view), "recent": self.recent(wanted)} if view == "overview"
                           else once(view))
        return found
