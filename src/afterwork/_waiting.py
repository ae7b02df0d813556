"""Waiting for a task's result, by handle or by id, in this process or another.

Waiting reads the store: at once, then again whenever this process's events stream says the
task moved (the event comes a little before its write commits: read again shortly after), and
otherwise every WAIT_POLL_SECONDS at most (a task run by another process).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import anyio.to_thread

from . import _locate
from ._errors import NotInstalledError, ResultTimeoutError, TaskNotFoundError
from ._events import EventKind, Events, TaskEvent
from ._models import FINAL_STATES, TaskRecord
from ._results import outcome
from .stores import Store

WAIT_POLL_SECONDS = 0.5  # the longest between two reads while waiting (another process runs it)
WAIT_FIRST_SECONDS = 0.05  # after an event: read again this soon, then back off to the above
NOT_FOUND_GRACE_SECONDS = 5.0  # a handle's task may not be written yet: the store's timeout
_MOVES = (EventKind.SUCCEEDED, EventKind.FAILED, EventKind.RETRIED, EventKind.RELEASED)


def _parts(task_id: str) -> tuple[Store, Events, Any]:
    found = _locate.find()
    if found is None:
        raise NotInstalledError(f"waiting for task {task_id}'s result needs an Afterwork in this "
                                "process: construct Afterwork(url=...) with the app's store URL")
    return found.store, found.events, found.open_storage


class _Wait:
    """One wait's bookkeeping, the same for the async and the blocking loop: which task (an
    alias's id gives way to the live task's), until when, and how long until the next read."""

    def __init__(self, task_id: str, timeout: float | None) -> None:
        self.task_id, self.timeout = task_id, timeout
        self.began = time.monotonic()
        self.deadline = None if timeout is None else self.began + timeout
        self.pause = WAIT_FIRST_SECONDS

    def read(self, store: Store) -> TaskRecord | None:
        """The task; None while it may not be written yet (`add_task` and `defer` on an event
        loop return before their write); TaskNotFoundError after that."""
        record = store.get(self.task_id)
        if record is None and time.monotonic() - self.began > NOT_FOUND_GRACE_SECONDS:
            raise TaskNotFoundError(f"no task {self.task_id!r}: never stored, or purged (results "
                                    "go with their task)")
        return record

    def seconds_to_wait(self, record: TaskRecord | None) -> float:
        """After a read that found no final task: how long to wait for an event before the
        next read; ResultTimeoutError (TaskNotFoundError) when the time is up."""
        if record is not None:
            self.task_id = record.id
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if left is None:
            return self.pause
        if left > 0:
            return min(self.pause, left)
        if record is None:
            raise TaskNotFoundError(f"no task {self.task_id!r} within {self.timeout}s: never "
                                    "stored, or purged")
        raise ResultTimeoutError(f"task {self.task_id} was not finished within {self.timeout}s; "
                                 "it may still run: wait again, or look it up (afterwork show)")

    def woken(self, by_event: bool) -> None:
        """An event says the task moved: read again soon (its write may not have committed
        yet); else back off towards WAIT_POLL_SECONDS."""
        self.pause = WAIT_FIRST_SECONDS if by_event else min(self.pause * 2, WAIT_POLL_SECONDS)


async def wait_result(task_id: str, timeout: float | None = None) -> Any:
    """`await`s the task's result (see `TaskHandle.result`)."""
    store, events, open_storage = _parts(task_id)
    await anyio.to_thread.run_sync(open_storage)
    loop = asyncio.get_running_loop()
    moved = asyncio.Event()
    wait = _Wait(task_id, timeout)

    def on_event(event: TaskEvent) -> None:
        if event.task.id == wait.task_id and event.kind in _MOVES:
            loop.call_soon_threadsafe(moved.set)

    unsubscribe = events.subscribe(on_event)
    try:
        while True:
            record = await anyio.to_thread.run_sync(wait.read, store)
            if record is not None and record.state in FINAL_STATES:
                return outcome(record)
            with anyio.move_on_after(wait.seconds_to_wait(record)):
                await moved.wait()
            wait.woken(moved.is_set())
            moved.clear()
    finally:
        unsubscribe()


def wait_result_sync(task_id: str, timeout: float | None = None) -> Any:
    """Blocks for the task's result (see `TaskHandle.result_sync`); never on an event loop."""
    store, events, open_storage = _parts(task_id)
    open_storage()
    moved = threading.Event()
    wait = _Wait(task_id, timeout)

    def on_event(event: TaskEvent) -> None:
        if event.task.id == wait.task_id and event.kind in _MOVES:
            moved.set()

    unsubscribe = events.subscribe(on_event)
    try:
        while True:
            record = wait.read(store)
            if record is not None and record.state in FINAL_STATES:
                return outcome(record)
            wait.woken(moved.wait(wait.seconds_to_wait(record)))
            moved.clear()
    finally:
        unsubscribe()
