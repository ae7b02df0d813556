"""Intake: where planned tasks become stored rows and reach a runner.

A request's batch (`_batch`), `defer()` outside a request and the transactional enqueue
(`_transaction`) all come here: the rows of `_enqueue` are written by the writer thread (never
on the event loop), announced to event listeners, and handed to this process's runner when it
can take them at once, else left for a claim. `defer()` finds its intake through `current`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from . import _locate
from ._aio import on_event_loop
from ._enqueue import Planned, Planner, chain_records, record_for, split_keyed
from ._events import EventKind, Events, TaskEvent
from ._handle import TaskHandle
from ._models import Changes, TaskRecord
from ._runner import Runner
from ._settings import Settings
from ._writer import Writer
from .stores import Store

DEFER_WAIT_SECONDS_MAX = 60.0  # a safety net only: the writer answers within the store timeout


class Intake:
    """Accepts planned tasks for one `Afterwork`: writes their rows, hands them over."""

    def __init__(self, settings: Settings, planner: Planner, store: Store, writer: Writer,
                 events: Events, open_storage: Callable[[], None]) -> None:
        self.settings = settings
        self.planner = planner
        self.store = store
        self.writer = writer
        self.events = events
        self.open_storage = open_storage  # idempotent: the store opened, the writer running
        self.runner: Runner | None = None  # this process's runner, while one runs

    # -- rows -----------------------------------------------------------------------------
    def records_for(self, planned: list[Planned], *, handover: bool
                    ) -> tuple[list[TaskRecord], list[TaskRecord], str | None]:
        """(chained rows, keyed rows, the runner they are leased to or None). A chain goes
        straight to this process's runner only if every task in it can."""
        now = time.time()
        keyed: list[Planned] = []
        if len(planned) == 1 and planned[0].key is None:  # most requests: one task, no key
            chained = planned
        else:
            chained, keyed = split_keyed(planned)
        runner = self.runner
        owner = None
        if handover and chained and runner is not None and runner.accepts_handover():
            for p in chained:
                if not self._can_hand_over(runner, p, now):
                    break
            else:
                owner = runner.owner
        return chain_records(chained, owner, now), [record_for(p, now) for p in keyed], owner

    def _can_hand_over(self, runner: Runner, p: Planned, now: float) -> bool:
        """Straight to this process's runner, or through the store (delays, limits, keys)?"""
        return ((p.run_at is None or p.run_at <= now) and p.queue not in self.settings.queue_limits
                and runner.runs(p.queue) and not p.rate_limited)

    async def commit(self, planned: list[Planned], loop: asyncio.AbstractEventLoop
                     ) -> tuple[list[TaskRecord], bool]:
        """Write a request's stored tasks (raises StoreError, nothing written); `loop`: the
        running one. Returns the rows and whether they are leased to this process's runner."""
        chained, keyed, owner = self.records_for(planned, handover=True)
        await self.writer.submit_async(Changes(inserts=chained, inserts_if_absent=keyed), loop)
        records = chained + keyed if keyed else chained
        if self.events.active:
            self.enqueued(records)
        if (owner is None or keyed) and self.runner is not None:
            self.runner.more_in_store()
        return records, owner is not None

    def store_now(self, planned: list[Planned]) -> None:
        """Store tasks outside a request's batch. From a thread without an event loop this
        returns once they are written. On an event loop's thread it never blocks the loop: the
        write is posted to the writer thread, which keeps and retries it until it lands (as
        it does the runner's outcomes), and this returns at once."""
        self.open_storage()
        chained, keyed, _ = self.records_for(planned, handover=False)
        changes = Changes(inserts=chained, inserts_if_absent=keyed)
        if on_event_loop():
            self.writer.post(changes)  # a claim, also made by the writer, comes after it
        else:
            self.writer.submit(changes).result(timeout=DEFER_WAIT_SECONDS_MAX)
        self.enqueued(chained + keyed)
        if self.runner is not None:
            self.runner.wake_threadsafe()

    def enqueue_now(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
                    ) -> TaskHandle:
        """`defer()` outside a request: a storable task, stored at once (see `store_now`)."""
        planned = self.planner.storable(self.planner.plan(func, args, kwargs), "defer")
        self.store_now([planned])  # a key's duplicate: its id resolves to the live task
        return planned.handle

    def active_with_key(self, key: str) -> TaskHandle | None:
        """The queued or running task with this de-duplication key, if any (a store read)."""
        self.open_storage()
        found = self.store.active_with_key(key)
        return TaskHandle(found.id, found.name, True) if found else None

    def enqueued(self, records: list[TaskRecord]) -> None:
        if self.events.active:
            now = time.time()
            for record in records:
                self.events.emit(TaskEvent(EventKind.ENQUEUED, record, now))


# -- which Afterwork `defer()` and `in_transaction()` mean (see `_locate`) ------------------------
def find() -> Intake | None:
    """The intake `defer()` means here: the context's, else the latest one still alive."""
    return cast("Intake | None", _locate.find())
