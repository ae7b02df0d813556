"""Afterwork: the composition root. It holds the settings, builds the parts (store, writer,
planner, intake, runner; the web side), hands each what it needs, starts and stops them, and
offers the public verbs. Nothing else in the package imports this module.

The path of one task, downwards: `_background`/`_compat` (FastAPI's and Starlette's classes)
-> `_batch` (the request's tasks) -> `_enqueue` (plan, rows) -> `_intake` (write, hand over)
-> `_writer` -> `stores` ... and back up from the store: `_runner` claims or adopts the rows,
runs them and records each outcome through the writer.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import ASGIApp

from . import _compat, _locate, web
from ._asgi import AfterworkMiddleware
from ._background import BackgroundTasks
from ._enqueue import Planner
from ._errors import ConfigurationError
from ._events import Events
from ._handle import TaskHandle
from ._intake import Intake
from ._models import Changes, TaskRecord
from ._operations import steer
from ._redact import Redactor
from ._registry import REGISTRY
from ._runner import Runner
from ._schedule import run_now, schedules_view
from ._settings import STORE_TIMEOUT_SECONDS, Settings
from ._signals import exit_on_signal
from ._transaction import InTransaction
from ._writer import Writer
from .stores import Store, open_store

log = logging.getLogger("afterwork")


class Afterwork:
    """Durable background tasks for a FastAPI (or Starlette) app, in one line.

        app = FastAPI()
        Afterwork(app)  # SQLite file ./afterwork.db; or url=..., or AFTERWORK_URL

    Options (each with its default and meaning in the README's options table): `run_in_app`,
    `strict`, `concurrency`, `sync_threads`, `max_attempts`, `timeout_seconds`, `lease_seconds`,
    `poll_seconds`, `grace_seconds`, `store_timeout_seconds`, `max_arg_bytes`, `api_prefix`,
    `dashboard`, `dashboard_token`, `dashboard_auth`, `dashboard_prefix`, `metrics`, `redact`,
    `max_streams`, `api_threads`, `tracing`, `packages`, `queue_limits`, `run_queues`,
    `keep_results_seconds` (results of finished tasks dropped after that; None: with the task),
    `inline_in_tests` (under Starlette's TestClient a request's tasks run before it returns).
    """

    def __init__(
        self,
        app: ASGIApp | None = None,
        url: str | None = None,
        *,
        run_in_app: bool = True,
        strict: bool = False,
        concurrency: int = 32,
        sync_threads: int = 8,
        max_attempts: int = 3,
        timeout_seconds: float | None = None,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        grace_seconds: float = 10.0,
        store_timeout_seconds: float = STORE_TIMEOUT_SECONDS,
        max_arg_bytes: int = 256 * 1024,
        local_backlog: int = 1000,
        api_prefix: str = "/afterwork/api",
        packages: Iterable[str] = (),
        queue_limits: Mapping[str, int] | None = None,
        run_queues: Iterable[str] | None = None,
        dashboard: bool = False,
        dashboard_token: str | None = None,
        dashboard_auth: Callable[[Request], Any] | None = None,
        dashboard_prefix: str = "/afterwork",
        metrics: bool = False,
        tracing: bool = False,
        inline_in_tests: bool = True,
        redact: Iterable[str] = (),
        max_streams: int = 500,
        api_threads: int = 4,
        freeze_gc: bool = True,
        keep_results_seconds: float | None = None,
    ) -> None:
        self.settings = Settings.from_options(
            url, run_in_app=run_in_app, strict=strict, concurrency=concurrency,
            sync_threads=sync_threads, max_attempts=max_attempts, timeout_seconds=timeout_seconds,
            lease_seconds=lease_seconds, poll_seconds=poll_seconds, grace_seconds=grace_seconds,
            store_timeout_seconds=store_timeout_seconds, max_arg_bytes=max_arg_bytes,
            local_backlog=local_backlog, api_prefix=api_prefix, packages=tuple(packages),
            queue_limits=dict(queue_limits or {}),
            run_queues=tuple(run_queues) if run_queues is not None else None,
            dashboard=dashboard, dashboard_token=dashboard_token, dashboard_auth=dashboard_auth,
            dashboard_prefix=dashboard_prefix, metrics=metrics, tracing=tracing,
            inline_in_tests=inline_in_tests, redact=tuple(redact), max_streams=max_streams,
            api_threads=api_threads, freeze_gc=freeze_gc, keep_results_seconds=keep_results_seconds)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        REGISTRY.allow_packages([caller, *packages])
        self.events = Events()
        if tracing:
            from .web._tracing import install_tracing

            install_tracing(self.events)
        self._lock = threading.Lock()
        self._storage_started = False
        self._draining: list[Runner] = []  # stopped runners whose `def` tasks still run
        self._build_parts()
        _locate.set_default(self.intake)
        if app is not None:
            self.install(app)

    def _build_parts(self) -> None:
        """The store, writer, planner and intake for the current settings."""
        settings = self.settings
        self.store: Store = open_store(settings.url)
        self.store.lease_seconds = settings.lease_seconds
        self.store.timeout_seconds = settings.store_timeout_seconds
        self.writer = Writer(self.store, tick_seconds=settings.lease_seconds / 3,
                             on_tick=self._tick, timeout_seconds=settings.store_timeout_seconds)
        self.redactor = Redactor(settings.redact)  # also masks the same values in tracebacks
        self.planner = Planner(settings, self.events)
        self.intake = Intake(settings, self.planner, self.store, self.writer, self.events,
                             self.open_storage)

    def configure(self, **changes: Any) -> None:
        """New settings before start-up (the `afterwork worker` command's flags, a test
        helper): the parts are built anew from them. Refused once the store is open."""
        if self._storage_started:
            raise ConfigurationError("Afterwork.configure(): the store is open already; "
                                     "configure before start-up")
        self.settings = self.settings.replace(**changes)
        self._build_parts()
        _locate.set_default(self.intake)

    @property
    def url(self) -> str:
        return self.settings.url

    @property
    def runner(self) -> Runner | None:
        """This process's runner, while one runs."""
        return self.intake.runner

    def __repr__(self) -> str:
        return f"Afterwork(url={self.url!r}, run_in_app={self.settings.run_in_app})"

    # -- installation ---------------------------------------------------------------------
    def install(self, app: ASGIApp) -> None:
        """Add the middleware, serve the status API (and dashboard) as the app's first route,
        make FastAPI inject afterwork's BackgroundTasks, and make the app's exception handlers
        drop the tasks of a failed request."""
        if not isinstance(app, Starlette):
            raise ConfigurationError(
                f"Afterwork(app) needs a FastAPI or Starlette app, got {type(app).__name__}"
            )
        _compat.install(BackgroundTasks)  # Starlette's and FastAPI's own classes join batches
        app.add_middleware(AfterworkMiddleware, afterwork=self)
        web.mount(app, self.console)
        app.state.afterwork = self
        build = app.build_middleware_stack

        def build_with_discarding_handlers() -> ASGIApp:
            for key, handler in list(app.exception_handlers.items()):
                if key not in (500, Exception) and not getattr(handler, "_afterwork", False):
                    app.exception_handlers[key] = _compat.discarding(handler)
            return build()

        app.build_middleware_stack = build_with_discarding_handlers  # type: ignore[method-assign]

    def console(self) -> web.Console:
        """All that the web side (status API, dashboard, metrics) may see and do of this
        Afterwork: its settings, the store's reads, retry and cancel, the events stream."""
        return web.Console(settings=self.settings, tasks=self.store, redactor=self.redactor,
                           retry=self.retry, cancel=self.cancel, subscribe=self.events.subscribe,
                           pause_queue=self.pause_queue, schedules=self._schedules,
                           run_schedule=self._run_schedule, delete=self._delete,
                           rate_limits=REGISTRY.rate_limits_by_queue)

    # -- life -----------------------------------------------------------------------------
    def open_storage(self) -> None:
        """Open the store (created and migrated on first use) and start the writer thread;
        idempotent. `startup` does it; a script that only adds tasks may call it alone."""
        with self._lock:
            if not self._storage_started:
                self.store.open()
                self.writer.start()
                self._storage_started = True

    async def startup(self, *, run_tasks: bool | None = None) -> None:
        """Open the store (created and migrated on first use) and start the runner (unless
        the settings say `run_in_app=False`; `run_tasks=True` starts one all the same)."""
        _compat.require_asyncio()
        if not self._storage_started:
            await anyio.to_thread.run_sync(self.open_storage)
        if not (self.settings.run_in_app if run_tasks is None else run_tasks):
            return
        loop = asyncio.get_running_loop()
        runner = self.intake.runner
        if runner is not None and runner.loop is loop:
            return
        if runner is not None:  # its loop ended without a shutdown (a test client, say)
            runner.stop_listening()
            self.writer.post(Changes(expire_owners=[runner.owner]))
        runner = Runner(self.settings, self.writer, self.store, self.events, self.planner)
        self.intake.runner = runner
        token = _locate.current.set(self.intake)  # its tasks' defer() means this Afterwork
        try:
            await runner.start()
        finally:
            _locate.current.reset(token)

    def started_on(self) -> asyncio.AbstractEventLoop | None:
        """The running loop, if started for a request there: the store open and, when tasks
        run in the app, its runner on this loop (the check every request makes, without a
        coroutine). None: `ensure_started()` first (or it says what is wrong)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio: ensure_started() says what to do
            return None
        runner = self.intake.runner
        if self._storage_started and (
                not self.settings.run_in_app or (runner is not None and runner.loop is loop)):
            return loop
        return None

    async def ensure_started(self) -> None:
        _compat.require_asyncio()
        runner = self.intake.runner
        if not self._storage_started or (
            self.settings.run_in_app
            and (runner is None or runner.loop is not asyncio.get_running_loop())
        ):
            await self.startup()

    async def stop_runner(self) -> Runner | None:
        """Stop this process's runner (see `shutdown`); the store stays open."""
        runner = self.intake.runner
        if runner is None:
            return None
        with exit_on_signal():
            await runner.stop(self.settings.grace_seconds)
        self.intake.runner = None
        if runner.held:
            self._draining.append(runner)
        return runner

    async def shutdown(self) -> None:
        """Stop claiming, let running tasks finish (up to `grace_seconds`), hand back the rest.

        Returns within `grace_seconds` + 1 s (`CANCEL_WAIT_SECONDS`) + `store_timeout_seconds` (the
        last writes). A `def` task still running then is not handed back: its lease stays
        renewed while the process lives, and the store stays open for its outcome. A second
        SIGINT/SIGTERM meanwhile exits the process at once (see `_signals`)."""
        await self.stop_runner()
        self._draining = [r for r in self._draining if r.held]
        if self._storage_started and not self._draining:
            await anyio.to_thread.run_sync(self.writer.stop,
                                           self.settings.store_timeout_seconds + 1.0)
            self.store.close()
            self._storage_started = False

    def _tick(self) -> Changes | None:
        runner = self.intake.runner
        for stopped in self._draining:  # their held tasks' leases, until the threads return
            beat = stopped.heartbeat()
            if beat is not None and stopped is not runner:
                self.writer.post(beat)
        return runner.heartbeat() if runner is not None else None

    # -- the public verbs -----------------------------------------------------------------
    def retry(self, task_id: str) -> TaskRecord:
        """Run a failed or cancelled task again, with fresh attempts (and the tasks after it in
        its response that were cancelled because of it). TaskNotFoundError, TaskStateError."""
        self.open_storage()
        after = steer(self.store, task_id, "retry")[1]
        if self.intake.runner is not None:
            self.intake.runner.wake_threadsafe()
        return after

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a queued task (and the tasks after it in its response)."""
        self.open_storage()
        return steer(self.store, task_id, "cancel")[1]

    def pause_queue(self, queue: str, paused: bool = True) -> None:
        """Pause a queue: no runner, in any process, starts its tasks (from each runner's next
        claim on) until `pause_queue(queue, False)` resumes it. Its tasks wait, stored."""
        self.open_storage()
        self.store.set_queue_paused(queue, paused, time.time())
        if self.intake.runner is not None:  # this process's runner knows at once; others
            self.intake.runner.note_paused(queue, paused)  # at their next claim

    def _delete(self, task_ids: Sequence[str]) -> list[str]:
        self.open_storage()
        return self.store.delete(task_ids)

    def _schedules(self) -> list[dict[str, Any]]:
        self.open_storage()

        def newest(name: str) -> TaskRecord | None:
            return next(iter(self.store.query(name=name, limit=1)), None)

        return schedules_view(newest, time.time())

    def _run_schedule(self, name: str) -> str:
        handle = run_now(name, lambda func, kwargs: self.intake.enqueue_now(func, (), kwargs))
        if self.intake.runner is not None:
            self.intake.runner.wake_threadsafe()
        return handle.id

    def transaction(self, connection: Any) -> InTransaction:
        """Add tasks through the application's own connection, in its open transaction:
        `aw.transaction(conn).add_task(fn, ...)`. See `afterwork.in_transaction`."""
        return InTransaction(self.intake, connection)

    def defer(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> TaskHandle:
        """`afterwork.defer` on this Afterwork: stored at once, outside any request."""
        return self.intake.enqueue_now(func, args, kwargs)

    async def result(self, task_id: str, timeout: float | None = None) -> Any:
        """Wait for the result of the task with this id, run by any process on this store
        (see `TaskHandle.result`)."""
        return await TaskHandle(task_id, "", True).result(timeout)

    def result_sync(self, task_id: str, timeout: float | None = None) -> Any:
        """`result` for synchronous code: blocks the thread."""
        return TaskHandle(task_id, "", True).result_sync(timeout)

    def active_with_key(self, key: str) -> TaskHandle | None:
        """The queued or running task with this de-duplication key, if any (a store read)."""
        return self.intake.active_with_key(key)


def afterwork_of(target: Starlette | Afterwork) -> Afterwork:
    """The Afterwork installed on an app (or the Afterwork itself)."""
    if isinstance(target, Afterwork):
        return target
    aw = getattr(target.state, "afterwork", None)
    if not isinstance(aw, Afterwork):
        raise ConfigurationError(f"{target!r} has no Afterwork installed: call Afterwork(app)")
    return aw
