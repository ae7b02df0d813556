"""One event for every operation on a task: logging, metrics, traces and the dashboard all
read the same stream, and nothing is computed while nobody listens.

    def count(event: TaskEvent) -> None:
        if event.kind is EventKind.FAILED:
            failures.inc()

    aw.events.subscribe(count)

Listeners run on the thread that emits (the event loop for runner events): keep them cheap.
`around_task` hooks wrap each execution (a tracing span, say); `enqueue_hooks` add context to
each stored task's `meta` (a trace context, say), which the task's record carries.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._models import TaskRecord

log = logging.getLogger("afterwork")


class EventKind(str, enum.Enum):
    ENQUEUED = "enqueued"
    """Stored (with its request's batch, or by defer)."""
    STARTED = "started"
    SUCCEEDED = "succeeded"
    RETRIED = "retried"
    """An attempt failed and another is scheduled."""
    FAILED = "failed"
    """Failed for good (or could not run at all)."""
    RELEASED = "released"
    """Handed back unfinished (shutdown): another runner takes it."""
    PROGRESS = "progress"
    """A running task reported how far it has got (throttled: see `afterwork.progress`)."""


@dataclass(frozen=True, slots=True)
class TaskEvent:
    kind: EventKind
    task: TaskRecord
    at: float
    attempt: int = 0
    duration_seconds: float | None = None
    error: str | None = None
    progress: str | None = None
    """PROGRESS: the report as stored (JSON: done, total, note, attempt, at)."""


class Events:
    def __init__(self) -> None:
        self._listeners: list[Callable[[TaskEvent], None]] = []
        self.around_task: list[Callable[[TaskRecord], contextlib.AbstractContextManager[Any]]] = []
        self.enqueue_hooks: list[Callable[[], dict[str, Any]]] = []

    @property
    def active(self) -> bool:
        return bool(self._listeners)

    def subscribe(self, listener: Callable[[TaskEvent], None]) -> Callable[[], None]:
        """Call `listener` for every event; returns a function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, event: TaskEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break task execution
                log.exception("afterwork: event listener %r failed", listener)

    def task(self, kind: EventKind, record: TaskRecord, attempt: int, started: float | None = None,
             error: str | None = None) -> None:
        """Emit `kind` for one attempt of `record` (its duration from `started`), if anyone
        listens."""
        if self._listeners:
            now = time.time()
            duration = now - started if started is not None else None
            self.emit(TaskEvent(kind, record, now, attempt, duration, error))

    def progress(self, record: TaskRecord, attempt: int, progress: str) -> None:
        """A running task's progress report was posted (from any thread), if anyone listens."""
        if self._listeners:
            self.emit(TaskEvent(EventKind.PROGRESS, record, time.time(), attempt, progress=progress))

    @contextlib.contextmanager
    def around(self, record: TaskRecord) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for hook in self.around_task:
                stack.enter_context(hook(record))
            yield

    def meta(self) -> dict[str, Any] | None:
        if not self.enqueue_hooks:
            return None
        merged: dict[str, Any] = {}
        for hook in self.enqueue_hooks:
            merged.update(hook())
        return merged
