"""The queues and runners tables: rendered the same for a page's first load and for each of
its live updates (`_feeds`)."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from ._chart import spark_svg
from ._layout import Links, absent, empty, when


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _per(seconds: float) -> str:
    return "s" if seconds == 1 else f"{seconds:g} s"


def rate_limits_text(limits: list[dict[str, Any]]) -> str:
    """Each rate-limited task name of a queue as "name: 10 / s", or "none"."""
    if not limits:
        return "none"
    return "<br>".join(f"{escape(r['name'])}: {r['starts']} / {_per(r['per_seconds'])}" for r in limits)


class Tables:
    """The queues and runners tables, with links under the dashboard and buttons posting to
    the operator API."""

    def __init__(self, links: Links, api: str) -> None:
        self.links = links
        self.api = api

    def pause_button(self, q: dict[str, Any]) -> str:
        action = "resume" if q["paused"] else "pause"
        url = escape(f"{self.api}/queues/{quote(q['queue'], safe='')}/{action}")
        return f"<button data-post='{url}' id='{action}-{escape(q['queue'])}'>{action}</button>"

    def queue_row(self, q: dict[str, Any]) -> str:
        state = ("<span class='paused'>paused</span>" if q["paused"] else "taking tasks")
        chart = spark_svg(q["per_5_minutes"], f"queue {q['queue']}: succeeded and failed per 5 minutes")
        return (f"<tr><td><a href='{self.links.queue(q['queue'])}'>{escape(q['queue'])}</a></td>"
                f"<td>{state}</td><td class='num'>{q['waiting']}</td>"
                f"<td class='num'>{_age(q['oldest_wait_seconds'])}</td>"
                f"<td class='num'>{q['running']} / {absent(q['limit'])}</td>"
                f"<td class='rates'>{rate_limits_text(q['rate_limits'])}</td>"
                f"<td class='num'>{q['succeeded_last_hour']}</td><td class='num'>{q['failed_last_hour']}</td>"
                f"<td class='num'>{_rate(q['failure_rate'])}</td><td>{chart}</td>"
                f"<td>{self.pause_button(q)}</td></tr>")

    def queues(self, shown: list[dict[str, Any]]) -> str:
        head = ("<tr><th>queue</th><th>state</th><th class='num'>waiting</th>"
                "<th class='num'>oldest wait</th><th class='num'>running / limit</th>"
                "<th>rate limits</th><th class='num'>succeeded (1 h)</th>"
                "<th class='num'>failed (1 h)</th><th class='num'>failure rate</th>"
                "<th>last hour, per 5 min</th><th></th></tr>")
        rows = "".join(map(self.queue_row, shown)) or empty(11, "No queues yet: tasks go to the "
                                                              "'default' queue unless given one.")
        return f"<table id='queues'>{head}{rows}</table>"

    def runner_row(self, r: dict[str, Any]) -> str:
        alive = ("alive" if r["alive"] else
                 f"<span class='dead'>dead</span> (held {len(r['held'])}: "
                 + ", ".join(f"<a href='{self.links.task(i)}'>{escape(i)}</a>" for i in r["held"][:20])
                 + ")")
        queues = escape(", ".join(r["queues"])) if r["queues"] else "all"
        return (f"<tr><td>{escape(r['host'])}</td><td class='num'>{int(r['pid'])}</td>"
                f"<td>{escape(r['kind'])}</td><td>{queues}</td>"
                f"<td class='num'>{r['running']} / {absent(r['concurrency'])}</td>"
                f"<td>{when(r['started_at'])}</td><td>{when(r['heartbeat_at'])}</td><td>{alive}</td></tr>")

    def runners(self, shown: list[dict[str, Any]]) -> str:
        head = ("<tr><th>host</th><th class='num'>pid</th><th>kind</th><th>queues</th>"
                "<th class='num'>running / concurrency</th><th>started</th><th>last heartbeat</th>"
                "<th>state</th></tr>")
        rows = "".join(map(self.runner_row, shown)) or empty(
            8, "No runner has reported: start the app (its runner starts with it) or `afterwork worker`.")
        return f"<table id='runners'>{head}{rows}</table>"
