"""Afterwork: configuration, store, writer and runner; installs itself on the app."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import ASGIApp

from . import _codec, _compat
from ._api import build_app
from ._asgi import AfterworkMiddleware
from ._background import BackgroundTasks, TaskHandle, _installed
from ._batch import Planned, chain_records, record_for
from ._errors import ConfigurationError, NotStorableError, TaskTooLargeError
from ._events import EventKind, Events, TaskEvent
from ._ids import new_id
from ._models import Changes, ClaimSpec, TaskRecord
from ._operations import steer
from ._redact import Redactor
from ._registry import REGISTRY, Task, TaskOptions, why_not_storable
from ._runner import Runner
from ._signals import exit_on_signal
from ._transaction import InTransaction
from ._writer import Writer
from .stores import Store, open_store

log = logging.getLogger("afterwork")

DEFAULT_URL = "sqlite:///./afterwork.db"
STORE_TIMEOUT_SECONDS = 5.0  # the default bound on a wait for the store (store_timeout_seconds)
DEFER_WAIT_SECONDS_MAX = 60.0  # a safety net only: the writer answers within the store timeout


class AfterworkWarning(UserWarning):
    """A task runs in memory only (it cannot be stored); named once per function."""


class Afterwork:
    """Durable background tasks for a FastAPI (or Starlette) app, in one line.

        app = FastAPI()
        Afterwork(app)  # SQLite file ./afterwork.db; or url=..., or AFTERWORK_URL

    Options (each with its default and meaning in the README's options table): `run_in_app`,
    `strict`, `concurrency`, `sync_threads`, `max_attempts`, `timeout_seconds`, `lease_seconds`,
    `poll_seconds`, `grace_seconds`, `store_timeout_seconds`, `max_arg_bytes`, `api_prefix`,
    `dashboard`, `dashboard_token`, `dashboard_auth`, `dashboard_prefix`, `metrics`, `redact`,
    `max_streams`, `api_threads`, `tracing`, `packages`, `queue_limits`, `run_queues`,
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
    ) -> None:
        for label, value in (("concurrency", concurrency), ("sync_threads", sync_threads),
                             ("max_attempts", max_attempts), ("max_arg_bytes", max_arg_bytes),
                             ("lease_seconds", lease_seconds), ("poll_seconds", poll_seconds),
                             ("max_streams", max_streams), ("api_threads", api_threads),
                             ("store_timeout_seconds", store_timeout_seconds)):
            if value <= 0:
                raise ConfigurationError(f"Afterwork({label}={value!r}): it must be above 0")
        self.url = url or os.environ.get("AFTERWORK_URL") or DEFAULT_URL
        self.store: Store = open_store(self.url)
        self.store.lease_seconds = lease_seconds
        self.store.timeout_seconds = store_timeout_seconds
        self.store_timeout_seconds = store_timeout_seconds
        self.run_in_app = run_in_app
        self.strict = strict
        self.concurrency = concurrency
        self.sync_threads = sync_threads
        self.max_attempts = max_attempts
        self.timeout_seconds = timeout_seconds
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.max_arg_bytes = max_arg_bytes
        self.local_backlog = local_backlog
        self.api_prefix = api_prefix
        self.dashboard_token = dashboard_token or os.environ.get("AFTERWORK_DASHBOARD_TOKEN")
        self.dashboard_auth = dashboard_auth
        if dashboard and not (self.dashboard_token or dashboard_auth):
            raise ConfigurationError(
                "Afterwork(dashboard=True) needs dashboard_auth= (your check: a callable taking "
                "the request, returning True to allow) or dashboard_token= (or the "
                "AFTERWORK_DASHBOARD_TOKEN environment variable): it lets operators retry and "
                "cancel tasks and read their arguments"
            )
        if metrics and not (self.dashboard_token or dashboard_auth):
            raise ConfigurationError(
                "Afterwork(metrics=True) needs dashboard_auth= or dashboard_token= (or the "
                "AFTERWORK_DASHBOARD_TOKEN environment variable): the scraper sends the token "
                "as a Bearer header, or your check decides"
            )
        self.dashboard = dashboard
        self.dashboard_prefix = dashboard_prefix.rstrip("/")
        self.metrics = metrics
        self.inline_in_tests = inline_in_tests
        self.redactor = Redactor(redact)  # also masks the same values in tracebacks
        self.max_streams = max_streams
        self.api_threads = api_threads
        self.queue_limits = dict(queue_limits or {})
        self.run_queues = tuple(run_queues) if run_queues is not None else None
        caller = sys._getframe(1).f_globals.get("__name__", "")
        REGISTRY.allow_packages([caller, *packages])
        self.events = Events()
        if tracing:
            from .dashboard._tracing import install_tracing

            install_tracing(self.events)
        self.writer = Writer(self.store, tick_seconds=lease_seconds / 3, on_tick=self._tick,
                             timeout_seconds=store_timeout_seconds)
        self.runner: Runner | None = None
        self._draining: list[Runner] = []  # stopped runners whose `def` tasks still run
        self.runner_kind = "app"
        self._lock = threading.Lock()
        self._storage_started = False
        self._warned: set[object] = set()
        if app is not None:
            self.install(app)
        _installed.append(self)

    def __repr__(self) -> str:
        return f"Afterwork(url={self.url!r}, run_in_app={self.run_in_app})"

    # -- installation ---------------------------------------------------------------------
    def install(self, app: ASGIApp) -> None:
        """Add the middleware, make FastAPI inject afterwork's BackgroundTasks, and make the
        app's exception handlers drop the tasks of a failed request."""
        if not isinstance(app, Starlette):
            raise ConfigurationError(
                f"Afterwork(app) needs a FastAPI or Starlette app, got {type(app).__name__}"
            )
        app.add_middleware(AfterworkMiddleware, afterwork=self)
        app.state.afterwork = self
        _compat.install(BackgroundTasks)  # Starlette's and FastAPI's own classes join batches
        build = app.build_middleware_stack

        def build_with_discarding_handlers() -> ASGIApp:
            for key, handler in list(app.exception_handlers.items()):
                if key not in (500, Exception) and not getattr(handler, "_afterwork", False):
                    app.exception_handlers[key] = _compat.discarding(handler)
            return build()

        app.build_middleware_stack = build_with_discarding_handlers  # type: ignore[method-assign]

    def api_app(self) -> ASGIApp:
        return build_app(self)

    def mounted_prefixes(self) -> list[str]:
        """The paths the middleware answers itself (the API; the dashboard and metrics)."""
        found = [self.api_prefix.rstrip("/")] if self.api_prefix else []
        if self.dashboard or self.metrics:
            found.append(self.dashboard_prefix)
        return found

    # -- life -----------------------------------------------------------------------------
    def _start_storage(self) -> None:
        with self._lock:
            if not self._storage_started:
                self.store.open()
                self.writer.start()
                self._storage_started = True

    async def startup(self) -> None:
        """Open the store (created and migrated on first use) and start the runner."""
        _compat.require_asyncio()
        if not self._storage_started:
            await anyio.to_thread.run_sync(self._start_storage)
        if not self.run_in_app:
            return
        loop = asyncio.get_running_loop()
        runner = self.runner
        if runner is not None and runner._loop is loop:
            return
        if runner is not None:  # its loop ended without a shutdown (a test client, say)
            self.writer.post(Changes(expire_owners=[runner.owner]))
        self.runner = Runner(self, kind=self.runner_kind)
        await self.runner.start()

    async def ensure_started(self) -> None:
        _compat.require_asyncio()
        runner = self.runner
        if not self._storage_started or (
            self.run_in_app and (runner is None or runner._loop is not asyncio.get_running_loop())
        ):
            await self.startup()

    async def shutdown(self) -> None:
        """Stop claiming, let running tasks finish (up to `grace_seconds`), hand back the rest.

        Returns within `grace_seconds` + 1 s (`CANCEL_WAIT_SECONDS`) + `store_timeout_seconds` (the
        last writes). A `def` task still running then is not handed back: its lease stays
        renewed while the process lives, and the store stays open for its outcome. A second
        SIGINT/SIGTERM meanwhile exits the process at once (see `_signals`)."""
        runner = self.runner
        if runner is not None:
            with exit_on_signal():
                await runner.stop(self.grace_seconds)
            self.runner = None
            if runner.held:
                self._draining.append(runner)
        self._draining = [r for r in self._draining if r.held]
        if self._storage_started and not self._draining:
            await anyio.to_thread.run_sync(self.writer.stop, self.store_timeout_seconds + 1.0)
            self.store.close()
            self._storage_started = False

    def _tick(self) -> Changes | None:
        runner = self.runner
        for stopped in self._draining:  # their held tasks' leases, until the threads return
            beat = stopped.heartbeat()
            if beat is not None and stopped is not runner:
                self.writer.post(beat)
        return runner.heartbeat() if runner is not None else None

    # -- accepting tasks ------------------------------------------------------------------
    def plan(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Planned:
        """Encode a task for storing, or decide it runs in memory (or refuse it if strict)."""
        name = REGISTRY.name_for(func)
        reason = why_not_storable(func) if name is None else None
        payload = None
        if name is not None:
            try:
                payload = _codec.encode(func, args, kwargs)
            except NotStorableError as exc:
                reason = str(exc)
            except Exception as exc:  # whatever the argument, it must never fail the request
                reason = f"its arguments do not encode as JSON ({type(exc).__name__}: {exc})"
        label = name or getattr(func, "__qualname__", None) or repr(func)
        if payload is not None:
            size = len(payload) if len(payload) * 4 <= self.max_arg_bytes else len(payload.encode())
            if size > self.max_arg_bytes:
                payload = None
                reason = (f"its arguments encode to {size} bytes, over the limit of "
                          f"{self.max_arg_bytes} (Afterwork(max_arg_bytes=...)); store large data "
                          "elsewhere (a file, a table) and pass its key")
                if self.strict:
                    raise TaskTooLargeError(f"task {label}: {reason}")
        if payload is None:
            self._not_storable(label, reason or "unknown")
            return Planned(TaskHandle(new_id(), label, False), func, args, kwargs)
        options = func.task_options if isinstance(func, Task) else TaskOptions()
        meta = self.events.meta() if self.events.enqueue_hooks else None
        run_at = options.run_at
        if options.delay_seconds is not None:
            run_at = time.time() + options.delay_seconds
        return Planned(
            TaskHandle(new_id(), label, True), func, args, kwargs, payload,
            max_attempts=options.max_attempts or self.max_attempts,
            timeout_seconds=options.timeout_seconds or self.timeout_seconds,
            meta=json.dumps(meta) if meta else None, run_at=run_at,
            queue=options.queue or "default", priority=options.priority or 0, key=options.key,
            rate_limited=(options.rate_limit or REGISTRY.rate_limit_of(label)) is not None,
        )

    def retry(self, task_id: str) -> TaskRecord:
        """Run a failed or cancelled task again, with fresh attempts (and the tasks after it in
        its response that were cancelled because of it). TaskNotFoundError, TaskStateError."""
        self._start_storage()
        after = steer(self.store, task_id, "retry")[1]
        if self.runner is not None:
            self.runner.wake_threadsafe()
        return after

    def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a queued task (and the tasks after it in its response)."""
        self._start_storage()
        return steer(self.store, task_id, "cancel")[1]

    def transaction(self, connection: Any) -> InTransaction:
        """Add tasks through the application's own connection, in its open transaction:
        `aw.transaction(conn).add_task(fn, ...)`. See `afterwork.in_transaction`."""
        return InTransaction(self, connection)

    def active_with_key(self, key: str) -> TaskHandle | None:
        """The queued or running task with this de-duplication key, if any (a store read)."""
        self._start_storage()
        found = self.store.active_with_key(key)
        return TaskHandle(found.id, found.name, True) if found else None

    def claim_spec(self, queues: tuple[str, ...] | None) -> ClaimSpec:
        return ClaimSpec(queues=queues, queue_limits=dict(self.queue_limits),
                         rate_limits=REGISTRY.rate_limits())

    def _can_hand_over(self, p: Planned, now: float) -> bool:
        """Straight to this process's runner, or through the store (delays, limits, keys)?"""
        runner = self.runner
        return (runner is not None and (p.run_at is None or p.run_at <= now)
                and p.queue not in self.queue_limits and runner.runs(p.queue) and not p.rate_limited)

    def enqueued(self, records: list[TaskRecord]) -> None:
        if self.events.active:
            now = time.time()
            for record in records:
                self.events.emit(TaskEvent(EventKind.ENQUEUED, record, now))

    def _not_storable(self, label: str, reason: str) -> None:
        if self.strict:
            raise NotStorableError(
                f"task {label} cannot be stored: {reason}. Without strict=True such a task runs "
                "in memory, as Starlette runs it"
            )
        self._warn_once(label, f"afterwork: task {label} cannot be stored ({reason}); it runs "
                        "in memory after the response, as in Starlette, and is lost if the "
                        "process stops", stacklevel=6)

    def warn_not_covered(self, func: Callable[..., Any]) -> None:
        """A task object made outside the request it runs in: Starlette's, in memory."""
        label = getattr(func, "__qualname__", None) or repr(func)
        self._warn_once(("outside", label), f"afterwork: task {label} was made outside the "
                        "request whose response runs it (at import time, or in an earlier "
                        "request), so it was not stored: it runs in memory, as in Starlette. Make "
                        "the BackgroundTask inside the endpoint or helper to have it stored",
                        stacklevel=4)

    def _warn_once(self, key: object, message: str, stacklevel: int) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, AfterworkWarning, stacklevel=stacklevel)

    def records_for(self, planned: list[Planned], *, handover: bool
                    ) -> tuple[list[TaskRecord], list[TaskRecord], str | None]:
        """(chained rows, keyed rows, the runner they are leased to or None). Tasks with a key
        stand alone (a skipped duplicate must not break a chain); a chain goes straight to this
        process's runner only if every task in it can."""
        now = time.time()
        chained = [p for p in planned if p.key is None]
        keyed = [record_for(p, now) for p in planned if p.key is not None]
        runner = self.runner
        owner = None
        if (handover and chained and runner is not None and runner.accepts_handover()
                and all(self._can_hand_over(p, now) for p in chained)):
            owner = runner.owner
        # No lease time: the store starts the lease on its own clock as it writes the rows.
        return chain_records(chained, owner, None), keyed, owner

    def store_now(self, planned: list[Planned]) -> None:
        """Store tasks outside a request's batch and wait until they are written."""
        self._start_storage()
        chained, keyed, _ = self.records_for(planned, handover=False)
        self.writer.submit(Changes(inserts=chained, inserts_if_absent=keyed)).result(
            timeout=DEFER_WAIT_SECONDS_MAX)
        self.enqueued(chained + keyed)
        if self.runner is not None:
            self.runner.store_has_more = True
            self.runner.wake_threadsafe()

    def enqueue_now(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> TaskHandle:
        planned = self.plan(func, args, kwargs)
        if planned.key is not None and (existing := self.active_with_key(planned.key)):
            return existing
        if planned.payload is None:
            raise NotStorableError(
                f"defer({planned.handle.name}) outside a request needs a storable task: a "
                "module-level function with JSON or annotated arguments"
            )
        self.store_now([planned])
        return planned.handle


def afterwork_of(target: Starlette | Afterwork) -> Afterwork:
    """The Afterwork installed on an app (or the Afterwork itself)."""
    if isinstance(target, Afterwork):
        return target
    aw = getattr(target.state, "afterwork", None)
    if not isinstance(aw, Afterwork):
        raise ConfigurationError(f"{target!r} has no Afterwork installed: call Afterwork(app)")
    return aw
