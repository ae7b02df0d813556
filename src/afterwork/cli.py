"""The `afterwork` command: a thin loader and the operator's view of the store.

    afterwork worker examples.server_details:app --concurrency 16
    afterwork list --state failed
    afterwork retry 3f0c5a        # a full id, or a unique start of one

Every command imports what it needs when it runs (FastAPI, rich, the runner), so `--help`
and `list` start in a fraction of a second. Commands other than `worker` and `migrate` never
create a store: a wrong URL is an error that names it (exit 4).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from ._settings import DEFAULT_URL

if TYPE_CHECKING:
    from .stores import Store

app = typer.Typer(help="Durable background tasks for FastAPI: run workers, inspect and steer tasks.",
                  no_args_is_help=True, add_completion=False)

UrlOption = Annotated[str | None, typer.Option(
    "--url", envvar="AFTERWORK_URL", help=f"Store URL [default: {DEFAULT_URL}]", show_default=False)]
AppOption = Annotated[str | None, typer.Option(
    "--app", help="Take the store from an app's Afterwork: MODULE:ATTR")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON lines: one compact object a line")]
PURGE_BATCH = 1000  # rows per purge transaction: short write locks, a moving progress bar
EXIT_REFUSED = 1  # retry/cancel: some task was not in a state the action applies to
EXIT_BAD_INPUT = 2  # as click's usage errors: unknown state, no such task, bad age
EXIT_NO_STORE = 4  # no store at the URL, or it cannot be reached
EXIT_SCHEMA_BEHIND = 5


def _say_error(message: str) -> None:
    # Plain text, never rich markup: the message may quote the store ("[/]" in an error).
    sys.stderr.write(f"error: {message}\n")


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    _say_error(message)
    return typer.Exit(code)


def _store(url: str | None, app_target: str | None, *, current: bool = True) -> Store:
    from ._cli_store import SchemaBehindError, existing_store
    from ._errors import AfterworkError

    try:
        return existing_store(url, app_target, current=current)
    except SchemaBehindError as exc:
        raise _fail(str(exc), EXIT_SCHEMA_BEHIND) from exc
    except AfterworkError as exc:
        raise _fail(str(exc), EXIT_NO_STORE) from exc


def _full_id(store: Store, text: str) -> str:
    from ._cli_store import full_id
    from ._errors import AfterworkError

    try:
        return full_id(store, text)
    except AfterworkError as exc:
        raise _fail(str(exc)) from exc


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
    import asyncio
    import logging

    from ._errors import AfterworkError
    from ._worker import load, run_worker

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        web_app, aw = load(target)
    except AfterworkError as exc:
        raise _fail(str(exc)) from exc
    flags = {"concurrency": concurrency, "sync_threads": sync_threads, "grace_seconds": grace,
             "run_queues": tuple(queue) if queue else None}
    try:
        aw.configure(**{name: value for name, value in flags.items() if value is not None})
    except AfterworkError as exc:
        raise _fail(str(exc)) from exc
    try:
        asyncio.run(run_worker(web_app, aw, lifespan=lifespan))
    except AfterworkError as exc:  # the store refused at start-up: say why, no traceback
        raise _fail(str(exc), EXIT_NO_STORE) from exc


@app.command("list")
def list_tasks(
    url: UrlOption = None, app_target: AppOption = None,
    state: Annotated[list[str] | None, typer.Option(help="queued, running, succeeded, failed, "
                                                               "cancelled")] = None,
    name: Annotated[str | None, typer.Option(help="Task name, module:function")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List tasks, newest first (full ids: show, retry and cancel also take a unique prefix)."""
    from ._cli_output import json_line, print_table
    from ._models import TaskState

    wanted = set(state or [])
    unknown = wanted - {s.public for s in TaskState}
    if unknown:
        raise _fail(f"unknown state {', '.join(sorted(unknown))}: use queued, running, "
                    "succeeded, failed, cancelled")
    store = _store(url, app_target)
    records = store.query(states=[s for s in TaskState if s.public in wanted], name=name, limit=limit)
    if as_json:
        from ._redact import DEFAULT

        for r in records:
            json_line(DEFAULT.list_view(r))  # as the status API's list shows it
    else:
        print_table(records)


@app.command()
def show(
    task_id: Annotated[str, typer.Argument(help="A task id, or a unique start of one")],
    url: UrlOption = None, app_target: AppOption = None, as_json: JsonOption = False,
    reveal: Annotated[bool, typer.Option(
        "--reveal", help="Show argument values whose names look like secrets")] = False,
) -> None:
    """One task: state, times (ISO 8601, UTC), arguments, history, its steps (timings and
    outcome), last error's traceback. Argument values whose names look like secrets show as
    [redacted] unless --reveal."""
    from ._cli_output import print_task

    store = _store(url, app_target)
    record = store.get(_full_id(store, task_id))
    if record is None:  # purged between the two reads
        raise _fail(f"no task {task_id}")
    print_task(record, store.steps_of(record.id), reveal=reveal, as_json=as_json)


def _steer(task_ids: list[str], url: str | None, app_target: str | None, action: str) -> None:
    from ._errors import AfterworkError
    from ._operations import steer

    store = _store(url, app_target)
    failed = False
    for t in task_ids:
        try:
            before, after = steer(store, _full_id(store, t), action)
        except AfterworkError as exc:
            _say_error(str(exc))
            failed = True
        else:
            print(f"{after.id}: {before.state.public} -> {after.state.public}")
    if failed:
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def retry(task_ids: Annotated[list[str], typer.Argument(help="Task ids or unique starts of them")],
          url: UrlOption = None, app_target: AppOption = None) -> None:
    """Run failed or cancelled tasks again (with fresh attempts)."""
    _steer(task_ids, url, app_target, "retry")


@app.command()
def cancel(task_ids: Annotated[list[str], typer.Argument(help="Task ids or unique starts of them")],
           url: UrlOption = None, app_target: AppOption = None) -> None:
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
    from rich.progress import Progress

    from ._cli_output import console

    cutoff = time.time() - _age(older_than)
    store = _store(url, app_target)
    total = store.count_purgeable(cutoff)
    deleted = 0
    err = console(stderr=True)
    with Progress(console=err, transient=not err.is_terminal) as progress:
        bar = progress.add_task("purging", total=total)
        while deleted < total:
            step = store.purge(cutoff, limit=PURGE_BATCH)
            if step == 0:
                break
            deleted += step
            progress.update(bar, completed=deleted)
    print(f"deleted {deleted} finished task(s) older than {older_than}")


@app.command()
def migrate(url: UrlOption = None, app_target: AppOption = None) -> None:
    """Create or upgrade the store's schema (the app also does this when it starts)."""
    from ._errors import AfterworkError
    from .stores import open_store

    try:
        if app_target:
            from ._worker import load

            store = load(app_target)[1].store
        else:
            store = open_store(url or DEFAULT_URL)
        store.open()
        applied, newest = store.schema_version()
    except AfterworkError as exc:
        raise _fail(str(exc), EXIT_NO_STORE) from exc
    print(f"schema at version {applied} (newest {newest})")


@app.command()
def check(url: UrlOption = None, app_target: AppOption = None, as_json: JsonOption = False) -> None:
    """Is the store there, its schema current, a runner alive? Exit 0 ready, 1 runners dead,
    3 no runner yet (starting), 4 no store or unreachable, 5 schema behind."""
    from ._cli_output import Health, json_line
    from ._cli_output import check as run_check

    try:
        store = _store(url, app_target, current=False)
    except typer.Exit:
        if as_json:
            json_line({"state": "no_store", "exit_code": int(Health.NO_STORE)})
        raise
    raise typer.Exit(int(run_check(store, as_json)))


def main() -> None:
    os.environ.setdefault("COLUMNS", "160")  # tables stay readable when piped
    app()
