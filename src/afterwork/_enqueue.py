"""The enqueue path, pure: a function and its arguments -> a planned task -> the rows to store.

Every way in calls it: a request's batch (`_batch`), `defer()` and the transactional enqueue
(through `_intake`), and the periodic scheduler (`_chores`). Nothing here does I/O: encoding,
options, limits and the decision "stored or in memory" (with its one warning per function).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import _codec
from ._errors import AfterworkWarning, NotStorableError, TaskTooLargeError
from ._events import Events
from ._handle import TaskHandle
from ._ids import new_id
from ._models import TaskRecord, TaskState
from ._registry import REGISTRY, Task, why_not_storable
from ._settings import Settings


@dataclass(slots=True)
class Planned:
    """A task accepted by `add_task`: stored when `payload` is set, else run in memory."""

    handle: TaskHandle
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    payload: str | None = None
    max_attempts: int = 1
    timeout_seconds: float | None = None
    meta: str | None = None
    run_at: float | None = None  # None: now
    queue: str = "default"
    priority: int = 0
    key: str | None = None
    rate_limited: bool = False


class Planner:
    """Turns calls into planned tasks and planned tasks into rows, by the settings."""

    def __init__(self, settings: Settings, events: Events) -> None:
        self.settings = settings
        self.events = events
        self._warned: set[object] = set()

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
        limit = self.settings.max_arg_bytes
        if payload is not None:
            size = len(payload) if len(payload) * 4 <= limit else len(payload.encode())
            if size > limit:
                payload = None
                reason = (f"its arguments encode to {size} bytes, over the limit of {limit} "
                          "(Afterwork(max_arg_bytes=...)); store large data elsewhere (a file, a "
                          "table) and pass its key")
                if self.settings.strict:
                    raise TaskTooLargeError(f"task {label}: {reason}")
        if payload is None:
            self._not_storable(label, reason or "unknown")
            return Planned(TaskHandle(new_id(), label, False), func, args, kwargs)
        meta = self.events.meta() if self.events.enqueue_hooks else None
        settings = self.settings
        if not isinstance(func, Task):  # a plain function (most): the settings' defaults
            return Planned(TaskHandle(new_id(), label, True), func, args, kwargs, payload,
                           settings.max_attempts, settings.timeout_seconds,
                           json.dumps(meta) if meta else None, None, "default", 0, None,
                           REGISTRY.rate_limit_of(label) is not None)
        options = func.task_options
        run_at = options.run_at
        if options.delay_seconds is not None:
            run_at = time.time() + options.delay_seconds
        return Planned(
            TaskHandle(new_id(), label, True), func, args, kwargs, payload,
            max_attempts=options.max_attempts or settings.max_attempts,
            timeout_seconds=options.timeout_seconds or settings.timeout_seconds,
            meta=json.dumps(meta) if meta else None, run_at=run_at,
            queue=options.queue or "default", priority=options.priority or 0, key=options.key,
            rate_limited=(options.rate_limit or REGISTRY.rate_limit_of(label)) is not None,
        )

    def storable(self, planned: Planned, where: str) -> Planned:
        """`planned`, or NotStorableError naming `where` (a call that cannot run in memory)."""
        if planned.payload is None:
            raise NotStorableError(
                f"{where}({planned.handle.name}) needs a storable task: a module-level function "
                "with JSON or annotated arguments"
            )
        return planned

    # -- the one warning per function --------------------------------------------------------
    def _not_storable(self, label: str, reason: str) -> None:
        if self.settings.strict:
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


def split_keyed(planned: list[Planned]) -> tuple[list[Planned], list[Planned]]:
    """(the chain, the keyed tasks): a task with a key stands alone, so that a skipped
    duplicate never breaks a chain."""
    return [p for p in planned if p.key is None], [p for p in planned if p.key is not None]


def chain_records(planned: list[Planned], owner: str | None = None,
                  now: float | None = None) -> list[TaskRecord]:
    """Rows for one batch: each waits on the one before it, so they run in order. `owner`: the
    runner they are leased to as they are written (the store starts the lease on its clock)."""
    if now is None:
        now = time.time()
    if len(planned) == 1:  # most requests add one task
        return [record_for(planned[0], now, owner, planned[0].handle.id)]
    batch_id = planned[0].handle.id if planned else None  # the batch is named by its first task
    records = []
    previous: str | None = None
    for seq, p in enumerate(planned):
        records.append(record_for(p, now, owner, batch_id, seq, previous))
        previous = p.handle.id
    return records


def record_for(p: Planned, now: float, owner: str | None = None, batch_id: str | None = None,
               seq: int = 0, waiting_on: str | None = None) -> TaskRecord:
    """The row of one planned task (positional: TaskRecord's fields in order, which
    tests/unit/test_rows.py checks; one is built for every task stored)."""
    handle = p.handle
    return TaskRecord(
        handle.id, handle.name, p.payload or "", TaskState.LEASED if owner else TaskState.QUEUED,
        0, p.max_attempts, p.timeout_seconds, batch_id, seq, waiting_on, owner, None,
        p.run_at if p.run_at is not None else now, now, None, None, None, None, p.meta,
        p.queue, p.priority, p.key, handle.name if p.rate_limited else None,
    )
