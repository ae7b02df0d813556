"""What a failed attempt leaves behind: the error shown, a line of the task's history, and
when it is tried again (the task's `Retry(at=|delay=)`, else exponential back-off)."""

from __future__ import annotations

import json
import random
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from typing import Any, Protocol

from ._errors import AfterworkError, Retry
from ._models import Changes, Outcome, TaskRecord
from ._registry import REGISTRY, TaskOptions
from ._results import stored_result

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0


class Poster(Protocol):
    """The writer, as far as posting goes."""

    def post(self, changes: Changes) -> None: ...


def backoff_seconds(attempt: int, options: TaskOptions | None = None) -> float:
    """Exponential back-off, jittered in its upper half: ~1 s, 2 s, 4 s ... capped at 5 min
    (or the task's own `backoff_seconds` / `backoff_max_seconds`)."""
    base = (options and options.backoff_seconds) or BACKOFF_BASE_SECONDS
    cap = (options and options.backoff_max_seconds) or BACKOFF_MAX_SECONDS
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return float(ceiling * (0.5 + random.random() / 2))


def attempt_note(**fields: object) -> str:
    """One line of a task's history: an attempt that did not succeed."""
    return json.dumps(fields, separators=(",", ":")) + "\n"


def failure(exc: BaseException, attempt: int, timeout_seconds: float | None, started: float,
            now: float, options: TaskOptions | None) -> tuple[str, str, float]:
    """What a failed attempt records: (the error shown, the history note, when a retry would
    start: `Retry(at=|delay=)` or the back-off)."""
    timed_out = isinstance(exc, TimeoutError)
    if timed_out:
        error = f"timed out after {timeout_seconds}s (attempt {attempt})"
    else:
        error = "".join(traceback.format_exception(exc)).strip()
    outcome = "timeout" if timed_out else "retry" if isinstance(exc, Retry) else "error"
    note = attempt_note(attempt=attempt, started_at=started, finished_at=now, outcome=outcome,
                        error=f"{type(exc).__name__}: {exc}"[:500])
    if isinstance(exc, Retry) and (exc.at is not None or exc.delay is not None):
        retry_at = exc.at if exc.at is not None else now + (exc.delay or 0.0)
    else:
        retry_at = now + backoff_seconds(attempt, options)
    return error, note, retry_at


def held_outcome(record: TaskRecord, owner: str, attempt: int, started: float,
                 call: Future[Any]) -> Changes:
    """What a `def` task's thread left when it returned after its runner stopped: the same
    record of a success (with its result) or of a failed attempt as any other's."""
    now = time.time()
    exc = call.exception()
    if exc is None:
        value = call.result()
        result = None if value is None else stored_result(REGISTRY.resolve(record.name), record, value)
        return Changes(succeeded=[Outcome(record.id, owner, now, result=result)])
    error, note, retry_at = failure(exc, attempt, record.timeout_seconds, started, now, None)
    if attempt < record.max_attempts:
        return Changes(retried=[Outcome(record.id, owner, now, error, retry_at=retry_at, note=note)])
    return Changes(failed=[Outcome(record.id, owner, now, error, note=note)])


class HeldThreads:
    """A stopped runner's `def` tasks whose threads run on (a thread cannot be stopped): their
    leases are kept (the writer's heartbeat, while any is held) until each returns; then its
    outcome is posted, and with the last one, once the runner's loop is gone, the runner's
    entry ends."""

    def __init__(self, owner: str, writer: Poster, stopped: Callable[[], bool]) -> None:
        self.owner, self.writer, self.stopped = owner, writer, stopped
        self.calls: dict[str, Future[Any]] = {}

    def __len__(self) -> int:
        return len(self.calls)

    def hold(self, record: TaskRecord, attempt: int, started: float, call: Future[Any]) -> None:
        self.calls[record.id] = call
        call.add_done_callback(lambda done: self._returned(record, attempt, started, done))

    def _returned(self, record: TaskRecord, attempt: int, started: float, call: Future[Any]) -> None:
        """On the task's thread (the writer takes posts from any thread)."""
        changes = held_outcome(record, self.owner, attempt, started, call)
        self.calls.pop(record.id, None)
        if not self.calls and self.stopped():
            changes.stopped_runners.append(self.owner)
        with suppress(AfterworkError):  # the writer stopped: the lease decides
            self.writer.post(changes)
