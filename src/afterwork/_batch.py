"""A request's batch: the tasks added while it is handled, stored in one write before its
response starts, handed to the runner after its response ends."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool

from ._enqueue import Planned
from ._handle import TaskHandle
from ._intake import Intake
from ._models import TaskRecord

if TYPE_CHECKING:
    from ._runner import Runner

log = logging.getLogger("afterwork")


class _Phase(enum.Enum):
    OPEN = "open"  # tasks join it
    COMMITTED = "committed"  # stored (or nothing to store): the response may start


class RequestBatch:
    """The tasks of one request. `inline` (a test client's request): after the response,
    every task runs in the request's own call, in order, before the request returns, as FastAPI
    runs them; otherwise stored tasks go to the runner and only in-memory ones run there."""

    def __init__(self, intake: Intake, loop: asyncio.AbstractEventLoop, *, inline: bool = False) -> None:
        self.intake = intake
        self.loop = loop  # the request's
        self.inline = inline
        self.planned: list[Planned] = []
        self.phase = _Phase.OPEN
        self.records: list[TaskRecord] = []
        self.handed_over = False  # rows written leased to this process's runner
        self._given = False  # those rows went to the runner (or run inline)
        self._cursor = 0  # self.planned[:_cursor] ran (or were handed over)
        self._inline_left: list[TaskRecord] | None = None  # inline: leased rows not run yet
        self._memory_ok = self._stored_ok = True  # a failure stops the tasks after it
        self.wake_after = False  # tasks went through the app's own transaction
        self._in_memory = 0  # planned tasks that run in memory (none: nothing runs here)

    def add(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> TaskHandle:
        planned = self.intake.planner.plan(func, args, kwargs)
        if planned.key is not None:  # the store keeps one per key (a later duplicate's id
            # resolves to the live task): no store read here, on the request's path
            twin = next((p for p in self.planned if p.key == planned.key), None)
            if twin is not None:
                return twin.handle
        if self.phase is _Phase.OPEN:
            self.planned.append(planned)
            if planned.payload is None:
                self._in_memory += 1
        elif planned.payload is not None:  # added after the response started: store it at once
            self.intake.store_now([planned])
        else:
            log.warning("afterwork: %s was added after its response was sent and cannot be "
                        "stored; it will not run", planned.handle.name)
        return planned.handle

    def discard(self) -> None:
        """The request failed: what it added so far is not scheduled (as in Starlette).
        Tasks added later (by an exception handler, say) still are."""
        if self.phase is _Phase.OPEN:
            self.planned.clear()

    async def commit(self) -> None:
        """Store the batch (raises StoreError, leaving nothing written)."""
        stored = [p for p in self.planned if p.payload is not None]
        if stored:
            self.records, self.handed_over = await self.intake.commit(stored, self.loop)
        self.phase = _Phase.COMMITTED

    def response_sent(self) -> None:
        """The last body chunk went out: stored tasks may start (unless they run inline)."""
        if not self.inline:
            self.hand_over()

    def hand_over(self) -> None:
        """Stored tasks go to the runner. Also runs when the app failed after the response
        started, so a committed task is never left leased to nobody; idempotent."""
        runner = self.intake.runner
        if runner is not None and self.wake_after:
            runner.wake_threadsafe()
        if self._given or self.phase is _Phase.OPEN or not self.records or runner is None:
            return
        self._given = True
        records = self.records
        if self.handed_over and len(records) == 1:  # most requests: one task, leased to us
            runner.adopt(records)
            return
        if self.handed_over:
            runner.adopt([r for r in records if r.lease_owner == runner.owner])
        if any(r.lease_owner is None for r in records):
            runner.wake_threadsafe()

    def run_here(self, upto: TaskHandle | None = None) -> Coroutine[Any, Any, None] | None:
        """The tasks due here, in order, up to and including `upto` (None: all left): what to
        await to run them, or None when none runs here (the common case: every task stored,
        the runner has them; no coroutine is made for nothing).

        Called where Starlette runs a response's background (FastAPI's and Starlette's
        `BackgroundTasks.__call__` call each task in turn: after the last body chunk, with the
        request's `yield` dependencies still open, inside FastAPI's span for that task), and by
        the middleware once the app returned, for whatever no response carried. In-memory
        tasks run here; stored ones too under a test client (`inline`), else the runner has
        them since the last body chunk."""
        if self.phase is _Phase.OPEN:
            return None
        runner = self.intake.runner
        if self._inline_left is None and not self._given:
            if self.inline and self.handed_over and runner is not None:
                self._given = True
                self._inline_left = [r for r in self.records if r.lease_owner == runner.owner]
                if any(r.lease_owner is None for r in self.records):
                    runner.wake_threadsafe()
            else:
                self.hand_over()
        if self._inline_left is None and not self._in_memory:
            return None  # every task stored, and the runner has them
        end = len(self.planned)
        if upto is not None:
            end = next((i + 1 for i, p in enumerate(self.planned) if p.handle is upto), self._cursor)
        segment, self._cursor = self.planned[self._cursor:end], max(self._cursor, end)
        left = self._inline_left
        if left is None or runner is None:
            in_memory = [p for p in segment if p.payload is None]
            return self._run_all_in_memory(in_memory) if in_memory else None
        return self._run_inline(segment, left, runner) if segment else None

    async def _run_all_in_memory(self, segment: list[Planned]) -> None:
        for planned in segment:
            if self._memory_ok:
                self._memory_ok = await self._run_in_memory(planned)

    async def _run_inline(self, segment: list[Planned], left: list[TaskRecord], runner: Runner) -> None:
        """A test client's request: its stored tasks run here, in order with the others."""
        try:
            for planned in segment:
                record = next((r for r in left if r.id == planned.handle.id), None)
                if planned.payload is None:
                    if self._memory_ok and self._stored_ok:
                        self._memory_ok = await self._run_in_memory(planned)
                elif record is not None:
                    left.remove(record)
                    self._stored_ok = await runner.execute(record, unblock_next=bool(left))
                    if not self._stored_ok:  # the store decides what becomes of the rest
                        runner.release_here(left)
                        left.clear()
        except BaseException:
            runner.release_here(left)
            left.clear()
            raise
        finally:
            await runner.settle()

    async def _run_in_memory(self, p: Planned) -> bool:
        """An unstorable task, exactly as Starlette runs it; a failure stops the ones after."""
        try:
            if is_async_callable(p.func):
                await p.func(*p.args, **p.kwargs)
            else:
                await run_in_threadpool(p.func, *p.args, **p.kwargs)
        except Exception:
            log.exception("afterwork: in-memory task %s failed; the in-memory tasks after it in "
                          "this response are skipped", p.handle.name)
            return False
        return True
