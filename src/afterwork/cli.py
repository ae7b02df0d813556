"""The `afterwork` command: a thin loader and the operator's view of the store.

    afterwork worker examples.server_details:app --concurrency 16
    afterwork list --state failed
    afterwork retry 3f0c...
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ._api import task_json
from ._app import DEFAULT_URL
from ._errors import AfterworkError
from ._models import TaskState
from ._operations import steer
from .stores import Store, open_store

app = typer.Typer(help="Durable background tasks for FastAPI: run workers, inspect and steer tasks.",
                  no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)

UrlOption = Annotated[str | None, typer.Option(
    "--url", envvar="AFTERWORK_URL", help=f"Store URL [default: {DEFAULT_URL}]", show_default=False)]
AppOption = Annotated[str | None, typer.Option(
    "--app", help="Take the store from an app's Afterwork: MODULE:ATTR")]
PURGE_BATCH = 1000  # rows per purge transaction: short write locks, a moving progress bar


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _store(url: str | None, app_target: str | None) -> Store:
    try:
        if app_target:
            from ._worker import load

            store = load(app_target)[1].store
        else:
            store = open_store(url or DEFAULT_URL)
        store.open()
    except AfterworkError as exc:
        raise _fail(str(exc)) from exc
    return store


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


@app.command()
def worker(
    target: Annotated[str, typer.Argument(help="The app or Afterwork object: MODULE:ATTR")],
    concurrency: Annotated[int | None, typer.Option(help="Tasks at once")] = None,
    sync_threads: Annotated[int | None, typer.Option(help="Threads for def tasks")] = None,
    grace: Annotated[float | None, typer.Option(help="Seconds to finish on SIGTERM")] = None,
    lifespan: Annotated[bool, typer.Option(help="Run the app's lifespan (start-up code)")] = True,
    queue: Annotated[list[str] | None, typer.Option(help="Only these queues (repeat); default all")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Run tasks in this process (pair with Afterwork(app, run_in_app=False) in the web app)."""
    from ._worker import load, run_worker

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        web_app, aw = load(target)
    except AfterworkError as exc:
        raise _fail(str(exc)) from exc
    if concurrency is not None:
        aw.concurrency = concurrency
    if sync_threads is not None:
        aw.sync_threads = sync_threads
    if grace is not None:
        aw.grace_seconds = grace
    if queue:
        aw.run_queues = tuple(queue)
    asyncio.run(run_worker(web_app, aw, lifespan=lifespan))


@app.command("list")
def list_tasks(
    url: UrlOption = None, app_target: AppOption = None,
    state: Annotated[list[str] | None, typer.Option(help="queued, running, succeeded, failed, "
                                                               "cancelled")] = None,
    name: Annotated[str | None, typer.Option(help="Task name, module:function")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """List tasks, newest first."""
    wanted = set(state or [])
    unknown = wanted - {s.public for s in TaskState}
    if unknown:
        raise _fail(f"unknown state {', '.join(sorted(unknown))}: use queued, running, "
                    "succeeded, failed, cancelled")
    store = _store(url, app_target)
    records = store.query(states=[s for s in TaskState if s.public in wanted], name=name, limit=limit)
    if as_json:
        for r in records:
            out.print_json(json.dumps(task_json(r)))
        return
    table = Table("id", "name", "state", "attempts", "created", "finished", "last error")
    colors = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}
    for r in records:
        public = r.state.public
        error = (r.last_error or "").strip().splitlines()[-1:] or [""]
        table.add_row(r.id, r.name, f"[{colors.get(public, 'white')}]{public}[/]",
                      f"{r.attempts}/{r.max_attempts}", _when(r.created_at), _when(r.finished_at),
                      error[0][:60])
    out.print(table)


@app.command()
def show(task_id: str, url: UrlOption = None, app_target: AppOption = None) -> None:
    """One task with its arguments and its last error's traceback."""
    record = _store(url, app_target).get(task_id)
    if record is None:
        raise _fail(f"no task {task_id}")
    data = task_json(record)
    data["arguments"] = json.loads(record.payload)
    error = data.pop("last_error")
    out.print_json(json.dumps(data))
    if error:
        out.print("[bold]last error[/bold]")
        out.print(error, markup=False, highlight=False)


def _steer(task_ids: list[str], url: str | None, app_target: str | None, action: str) -> None:
    store = _store(url, app_target)
    failed = False
    for t in task_ids:
        try:
            before, after = steer(store, t, action)
        except AfterworkError as exc:
            err.print(str(exc))
            failed = True
        else:
            out.print(f"{t}: {before.state.public} -> {after.state.public}")
    if failed:
        raise typer.Exit(1)


@app.command()
def retry(task_ids: list[str], url: UrlOption = None, app_target: AppOption = None) -> None:
    """Run failed or cancelled tasks again (with fresh attempts)."""
    _steer(task_ids, url, app_target, "retry")


@app.command()
def cancel(task_ids: list[str], url: UrlOption = None, app_target: AppOption = None) -> None:
    """Cancel queued tasks (and the tasks after them in their response)."""
    _steer(task_ids, url, app_target, "cancel")


def _age(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise _fail(f"--older-than {text!r}: write a number and a unit, e.g. 30m, 12h, 7d") from None


@app.command()
def purge(
    older_than: Annotated[str, typer.Option(help="Age of finished tasks to delete: 30m, 12h, 7d")] = "7d",
    url: UrlOption = None, app_target: AppOption = None,
) -> None:
    """Delete finished tasks (succeeded, failed, cancelled) older than --older-than."""
    cutoff = time.time() - _age(older_than)
    store = _store(url, app_target)
    total = store.count_purgeable(cutoff)
    deleted = 0
    with Progress(console=err, transient=not err.is_terminal) as progress:
        bar = progress.add_task("purging", total=total)
        while deleted < total:
            step = store.purge(cutoff, limit=PURGE_BATCH)
            if step == 0:
                break
            deleted += step
            progress.update(bar, completed=deleted)
    out.print(f"deleted {deleted} finished task(s) older than {older_than}")


@app.command()
def migrate(url: UrlOption = None, app_target: AppOption = None) -> None:
    """Create or upgrade the store's schema (also done on first use)."""
    applied, newest = _store(url, app_target).schema_version()
    out.print(f"schema at version {applied} (newest {newest})")


@app.command()
def check(url: UrlOption = None, app_target: AppOption = None) -> None:
    """Is the store reachable, its schema current, and is any runner alive? Exit 1 if not."""
    store = _store(url, app_target)
    problems = []
    applied, newest = store.schema_version()
    out.print(f"store      {store.url.split('@')[-1]}: reachable")
    out.print(f"schema     version {applied} of {newest}")
    if applied < newest:
        problems.append("schema behind: run `afterwork migrate`")
    now = time.time()
    runners = store.runners()
    alive = [r for r in runners if r.alive(now)]
    for r in runners:
        status = "alive" if r in alive else "[red]silent[/red]"
        out.print(f"runner     {r.owner} ({r.kind}) {status}, last seen {now - r.heartbeat_at:.0f}s ago")
    if not alive:
        problems.append("no runner alive: start the app or `afterwork worker MODULE:ATTR`")
    pending = store.count_pending(now)
    out.print(f"pending    {pending} task(s)")
    for p in problems:
        err.print(f"[red]problem:[/red] {p}")
    raise typer.Exit(1 if problems else 0)


def main() -> None:
    os.environ.setdefault("COLUMNS", "160")  # tables stay readable when piped
    app()
