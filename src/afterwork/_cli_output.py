"""What the CLI prints: tables, JSON lines, `show` and `check`. Store text is always printed as
text (rich markup and emoji codes in an error message are shown as they are).
"""

from __future__ import annotations

import enum
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from ._models import RUNNER_ALIVE_SECONDS, RunnerInfo, StepRecord, TaskRecord, iso, progress_text

if TYPE_CHECKING:
    from rich.console import Console

    from .stores import Store

LIST_ERROR_CHARS = 60  # the table shows the exception line of a traceback, cut to this
STATE_STYLES = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}
STEP_STYLES = {"finished": "green", "failed": "red", "started": "cyan"}


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console  # rich costs ~80 ms to import: only when printing tables

    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)


def json_line(data: Any) -> None:
    """One compact JSON object on a line of its own (JSON lines: `jq`, `grep`, `wc -l`)."""
    sys.stdout.write(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n")


def short_time(epoch: float | None) -> str:
    """ISO 8601 in UTC to the second, for tables: 2026-12-01T07:52:33Z."""
    text = iso(None if epoch is None else int(epoch))
    return "-" if text is None else text.replace("+00:00", "Z")


def last_line(error: str | None) -> str:
    lines = (error or "").strip().splitlines()
    return lines[-1] if lines else ""


def print_table(records: list[TaskRecord]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ._redact import DEFAULT

    table = Table("id", "name", "state", "attempts", "created", "finished", "last error")
    widest = max((len(r.id) for r in records), default=2)
    table.columns[0].no_wrap = True  # an id is never cut: it is what users copy
    table.columns[0].min_width = widest
    for r in records:
        public = r.state.public
        table.add_row(r.id, Text(r.name), Text(public, style=STATE_STYLES.get(public, "")),
                      f"{r.attempts}/{r.max_attempts}", short_time(r.created_at),
                      short_time(r.finished_at),
                      Text(last_line(DEFAULT.last_error(r))[:LIST_ERROR_CHARS]))
    console().print(table)


def task_json(record: TaskRecord, *, reveal: bool) -> dict[str, Any]:
    """The task as the status API shows it to operators (`TaskRecord.to_json` plus
    `arguments`): secrets masked in the arguments, the last error and the history, unless
    `reveal`."""
    from ._redact import task_view

    if not reveal:
        return task_view(record)
    data = record.to_json()
    try:
        payload = json.loads(record.payload)
        data["arguments"] = {"args": list(payload.get("a", [])), "kwargs": dict(payload.get("k", {}))}
    except (ValueError, TypeError, AttributeError, RecursionError):
        data["arguments"] = {"args": [], "kwargs": {}, "undecodable": True}
    return data


def print_task(record: TaskRecord, steps: list[StepRecord], *, reveal: bool, as_json: bool) -> None:
    data = task_json(record, reveal=reveal)
    data["steps"] = [s.to_json() for s in steps]
    if as_json:
        json_line(data)
        return
    error = data.pop("last_error")
    shown = data.pop("steps")
    print(json.dumps(data, indent=2, ensure_ascii=False))
    if data.get("progress"):
        print(f"progress: {progress_text(data['progress'])}")
    if shown:
        print_steps(shown)
    if error:
        print("last error:")
        print(error)


def print_steps(steps: list[dict[str, Any]]) -> None:
    """The steps a task recorded, in order: outcome, calls, timings, why one raised."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="steps", title_justify="left", box=None)
    for column in ("#", "name", "state", "runs", "attempt", "started", "seconds", "error"):
        table.add_column(column)
    for s in steps:
        state = str(s["state"])
        seconds = s["duration_seconds"]
        table.add_row(str(s["seq"] + 1), Text(s["name"]),
                      Text(state + (" (once)" if s["once"] else ""),
                           style=STEP_STYLES.get(state, "")),
                      str(s["runs"]), str(s["attempt"]),
                      str(s["started_at"]).replace("+00:00", "Z"),
                      "-" if seconds is None else f"{seconds:.3f}",
                      Text(str(s["error"] or "")[:LIST_ERROR_CHARS]))
    console().print(table)


class Health(enum.IntEnum):
    """`afterwork check`'s verdict; the value is its exit code (documented in the README)."""

    READY = 0
    """The store is reachable, its schema current, and a runner was heard from lately."""
    DEAD = 1
    """Runners recorded themselves, but none was heard from within RUNNER_ALIVE_SECONDS."""
    STARTING = 3
    """No runner has recorded itself: the app or worker is still starting, or none runs."""
    NO_STORE = 4
    """No store at the URL, or it cannot be reached."""
    SCHEMA_BEHIND = 5
    """The store's schema is older than this afterwork's: `afterwork migrate`."""


def check(store: Store, as_json: bool) -> Health:
    now = time.time()
    applied, newest = store.schema_version()
    runners = store.runners()
    alive = [r for r in runners if r.alive(now)]
    if applied < newest:
        health = Health.SCHEMA_BEHIND
        why = f"schema at version {applied} of {newest}: run `afterwork migrate`"
    elif alive:
        health, why = Health.READY, f"{len(alive)} runner(s) alive"
    elif runners:
        health, why = Health.DEAD, ("no runner heard from lately: they stopped without saying "
                                    "so (killed, hung, or cut off from the store)")
    else:
        health, why = Health.STARTING, ("no runner has recorded itself yet: the app or "
                                        "`afterwork worker` is starting, or none is running")
    pending = store.count_pending(now)
    if as_json:
        json_line({"state": health.name.lower(), "exit_code": int(health), "reason": why,
                   "schema": {"applied": applied, "newest": newest}, "pending": pending,
                   "runners": [{"owner": r.owner, "kind": r.kind, "alive": r.alive(now),
                                "host": r.host, "pid": r.pid,
                                "queues": None if r.queues is None else list(r.queues),
                                "concurrency": r.concurrency, "running": r.running,
                                "started_at": iso(r.started_at), "heartbeat_at": iso(r.heartbeat_at)}
                               for r in runners]})
        return health
    out = console()
    out.print(f"store      {store_label(store)}: reachable")
    out.print(f"schema     version {applied} of {newest}")
    for r in runners:
        out.print(f"runner     {runner_line(r, now)}")
    out.print(f"pending    {pending} task(s)")
    out.print(f"state      {health.name.lower()} (exit {int(health)}): {why}")
    return health


def runner_line(r: RunnerInfo, now: float) -> str:
    """One runner for `check`: where it runs, what it takes, how busy, and whether it is
    dead (silent past RUNNER_ALIVE_SECONDS: killed, hung, or cut off from the store)."""
    silent = now - r.heartbeat_at
    status = "alive" if r.alive(now) else (
        f"DEAD (silent for {silent:.0f}s, over {RUNNER_ALIVE_SECONDS:.0f}s)")
    queues = "all queues" if r.queues is None else "queues " + ",".join(r.queues)
    where = f"host {r.host or '?'}, pid {r.pid or '?'}"
    return (f"{r.owner} ({r.kind}) {status}: {where}, {queues}, {r.running} of "
            f"{r.concurrency or '?'} running, started {short_time(r.started_at)}, "
            f"last heard {silent:.0f}s ago")


def store_label(store: Store) -> str:
    from ._cli_store import masked

    return masked(store.url)
