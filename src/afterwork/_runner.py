"""The runner: takes tasks (handed over after their request committed, or claimed from the
store), runs them (`async def` on the event loop, `def` on afterwork's own bounded threads),
and records each outcome. Leases are kept fresh by the writer thread, not the loop, so a task
that blocks the loop cannot make its own lease expire.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import nullcontext, suppress
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette._utils import is_async_callable

from . import _codec
from ._batch import record_for
from ._context import TaskContext, _current_task
from ._errors import AfterworkError, Retry
from ._events import EventKind, TaskEvent
from ._models import Changes, Heartbeat, Outcome, TaskRecord
from ._outcomes import attempt_note, backoff_seconds, new_owner, owner_is_dead
from ._registry import REGISTRY, Task, TaskOptions
from ._schedule import Scheduler

if TYPE_CHECKING:
    from ._app import Afterwork

log = logging.getLogger("afterwork")

DEAD_OWNER_CHECK_EVERY = 10  # polls between checks for dead runners on this host
_IS_ASYNC: dict[Any, bool] = {}  # function -> async def? (Starlette's test, cached)


class Runner:
    def __init__(self, aw: Afterwork, kind: str = "app") -> None:
        self.aw = aw
        self.kind = kind
        self.queues = aw.run_queues
        self.owner = new_owner()
        self._ready: deque[TaskRecord] = deque()
        self._waiting: dict[str, TaskRecord] = {}  # predecessor id -> the next task of its chain
        self._claimed: set[str] = set()
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._poll_now = asyncio.Event()
        self._stopping = False
        self.store_has_more = True  # the store may hold tasks ready for us: poll when free
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: list[asyncio.Task[None]] = []
        self._limiter = anyio.CapacityLimiter(aw.sync_threads)
        self._scheduler = Scheduler()
        self._outbox: Changes | None = None
        self._stop_listening: Callable[[], None] = lambda: None

    # -- intake ---------------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        return len(self._ready) + len(self._waiting) + len(self._running)

    def runs(self, queue: str) -> bool:
        return self.queues is None or queue in self.queues

    def accepts_handover(self) -> bool:
        return not self._stopping and self._loop is not None and self.backlog < self.aw.local_backlog

    def adopt(self, records: Iterable[TaskRecord]) -> None:
        """Take tasks already leased to this runner (call on the runner's loop)."""
        for record in records:
            if record.waiting_on is None:
                self._ready.append(record)
            else:
                self._waiting[record.waiting_on] = record
        self._wake.set()

    def wake_threadsafe(self) -> None:
        """Ask for a claim soon, from any thread (after tasks were queued elsewhere)."""
        self.store_has_more = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._poll_now.set)

    def heartbeat(self) -> Changes | None:
        """Called by the writer thread every tick: keep this runner's leases fresh."""
        if self._loop is None:
            return None
        now = time.time()
        return Changes(heartbeat=Heartbeat(self.owner, now + self.aw.lease_seconds, now, self.kind))

    # -- life -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        # Record this runner now, not at the writer's first tick (a third of a lease away):
        # `afterwork check` run right after start-up must see it alive.
        beat = self.heartbeat()
        if beat is not None:
            try:
                await asyncio.wrap_future(self.aw.writer.submit(beat))
            except AfterworkError as exc:
                log.warning("afterwork: recording this runner failed (%s); the next heartbeat "
                            "will", exc)
        self._stop_listening = self.aw.store.listen(self.wake_threadsafe)
        self._main = [
            asyncio.create_task(self._dispatch(), name="afterwork-dispatch"),
            asyncio.create_task(self._poll(), name="afterwork-poll"),
        ]

    async def stop(self, grace_seconds: float) -> None:
        """Stop taking tasks; let running ones finish up to the grace period; hand back the rest."""
        self._stopping = True
        self._stop_listening()
        for main in self._main:
            main.cancel()
        await asyncio.gather(*self._main, return_exceptions=True)
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace_seconds)
            for t in late:
                t.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        self._flush()
        handed_back = [*self._ready, *self._waiting.values()]
        self._ready.clear()
        self._waiting.clear()
        now = time.time()
        released = [Outcome(r.id, self.owner, now) for r in handed_back]
        # and whatever a cancelled claim leased to us without our seeing it
        self.aw.writer.post(Changes(released=released, expire_owners=[self.owner],
                                    stopped_runners=[self.owner]))
        self._loop = None

    # -- the loops ------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        limit = self.aw.concurrency
        while True:
            while self._ready and len(self._running) < limit:
                record = self._ready.popleft()
                task = asyncio.create_task(self._execute(record))
                self._running.add(task)
                task.add_done_callback(self._finished)
            self._wake.clear()
            await self._wake.wait()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()
        if self.store_has_more and self.backlog < self.aw.concurrency:
            self._poll_now.set()

    async def _poll(self) -> None:
        polls = 0
        while True:
            if polls % DEAD_OWNER_CHECK_EVERY == 0:
                await self._expire_dead_owners()
            polls += 1
            await self._store_due_ticks()
            free = self.aw.concurrency - self.backlog
            if free > 0:
                try:
                    claimed = await self._claim(free)
                except AfterworkError as exc:
                    log.warning("afterwork: claiming tasks failed (%s); will retry", exc)
                    claimed = []
                self._claimed.update(r.id for r in claimed)
                self.adopt(claimed)
                self.store_has_more = len(claimed) == free
                if self.store_has_more:
                    continue
            self._poll_now.clear()
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._poll_now.wait(), self.aw.poll_seconds)

    async def _claim(self, limit: int) -> list[TaskRecord]:
        now = time.time()
        until = now + self.aw.lease_seconds
        owner = self.owner
        spec = self.aw.claim_spec(self.queues)
        future = self.aw.writer.call(lambda store: store.claim(owner, limit, now, until, spec))
        return await asyncio.wrap_future(future)

    async def _store_due_ticks(self) -> None:
        """Periodic tasks: store each due tick under its derived id (a no-op if another runner
        stored it first)."""
        unknown = self._scheduler.unknown()
        if unknown:
            future = self.aw.writer.call(
                lambda store: {n: bool(store.query(name=n, limit=1)) for n in unknown})
            try:
                history: dict[str, bool] = await asyncio.wrap_future(future)
                self._scheduler.ran_before.update(history)
            except AfterworkError as exc:
                log.warning("afterwork: reading periodic tasks' history failed (%s)", exc)
                return
        now = time.time()
        due = self._scheduler.due(now)
        if not due:
            return
        records = []
        for schedule, tick in due:
            planned = self.aw.plan(schedule.task, (), schedule.kwargs)
            record = record_for(planned, now)
            records.append(dataclasses.replace(record, id=schedule.tick_id(tick), run_at=tick))
        try:
            await asyncio.wrap_future(self.aw.writer.submit(Changes(inserts_if_absent=records)))
        except AfterworkError as exc:
            log.warning("afterwork: storing periodic ticks failed (%s); will retry", exc)
            return
        self.store_has_more = True

    async def _expire_dead_owners(self) -> None:
        try:
            future = self.aw.writer.call(lambda store: store.lease_owners())
            owners: list[str] = await asyncio.wrap_future(future)
        except AfterworkError:
            return
        dead = [o for o in owners if owner_is_dead(o)]
        if dead:
            log.info("afterwork: taking over the tasks of stopped runners %s", ", ".join(dead))
            await asyncio.wrap_future(self.aw.writer.submit(Changes(expire_owners=dead)))

    # -- one task -------------------------------------------------------------------------
    async def _execute(self, record: TaskRecord) -> None:
        attempt = record.attempts + 1
        try:
            func = REGISTRY.resolve(record.name)
            args, kwargs = _codec.decode(func, record.payload)
        except AfterworkError as exc:
            log.error("afterwork: task %s (%s) cannot run: %s", record.id, record.name, exc)
            self._forget_chain(record.id)
            self._out().failed.append(Outcome(record.id, self.owner, time.time(), str(exc)))
            self._emit(EventKind.FAILED, record, attempt, error=str(exc))
            return
        started = time.time()
        lost = ""
        if record.attempts > (record.history or "").count("\n"):  # the last attempt left no word
            lost = attempt_note(attempt=record.attempts, started_at=record.started_at, outcome="lost",
                         error="its runner stopped or lost its lease before it finished")
        self._out().started.append(Outcome(record.id, self.owner, started, note=lost))
        self._emit(EventKind.STARTED, record, attempt)
        token = _current_task.set(TaskContext(record.id, record.name, attempt, record.max_attempts))
        try:
            if self.aw.events.around_task:
                with self.aw.events.around(record):
                    await self._call(func, args, kwargs, record.timeout_seconds)
            else:
                await self._call(func, args, kwargs, record.timeout_seconds)
        except asyncio.CancelledError:
            self._release(record)
            self._emit(EventKind.RELEASED, record, attempt, started)
            raise
        except (Exception, SystemExit) as exc:
            options = func.task_options if isinstance(func, Task) else None
            self._after_error(record, attempt, started, exc, options)
        else:
            self._after_success(record)
            self._emit(EventKind.SUCCEEDED, record, attempt, started)
        finally:
            _current_task.reset(token)

    def _emit(self, kind: EventKind, record: TaskRecord, attempt: int, started: float | None = None,
              error: str | None = None) -> None:
        if self.aw.events.active:
            now = time.time()
            duration = now - started if started is not None else None
            self.aw.events.emit(TaskEvent(kind, record, now, attempt, duration, error))

    async def _call(
        self, func: Any, args: list[Any], kwargs: dict[str, Any], timeout: float | None
    ) -> None:
        target = func.func if isinstance(func, Task) else func
        is_async = _IS_ASYNC.get(target)
        if is_async is None:
            is_async = _IS_ASYNC[target] = is_async_callable(target)
        if timeout is None and is_async:
            await target(*args, **kwargs)  # the common case, without a scope to enter
            return
        with anyio.fail_after(timeout) if timeout else nullcontext():
            if is_async:
                await target(*args, **kwargs)
            else:
                await anyio.to_thread.run_sync(
                    partial(target, *args, **kwargs), limiter=self._limiter,
                    abandon_on_cancel=True,
                )

    def _after_success(self, record: TaskRecord) -> None:
        successor = self._waiting.pop(record.id, None)
        # A task handed over with its request's chain has its successor here or none at all.
        unblock = successor is not None or record.id in self._claimed
        done = Outcome(record.id, self.owner, time.time(), unblock=unblock)
        if successor is not None:
            self._out().succeeded.append(done)
            self._ready.append(successor)
            self._wake.set()
        elif record.id in self._claimed:
            # Its successor (if any) is not ours: claim it once the success is written.
            self._claimed.discard(record.id)
            self._flush()
            future = self.aw.writer.submit(Changes(succeeded=[done]))
            future.add_done_callback(lambda _: self.wake_threadsafe())
        else:
            self._out().succeeded.append(done)

    def _after_error(self, record: TaskRecord, attempt: int, started: float, exc: BaseException,
                     options: TaskOptions | None) -> None:
        self._claimed.discard(record.id)
        now = time.time()
        if isinstance(exc, TimeoutError):
            error = f"timed out after {record.timeout_seconds}s (attempt {attempt})"
        else:
            error = "".join(traceback.format_exception(exc)).strip()
        outcome = ("timeout" if isinstance(exc, TimeoutError)
                   else "retry" if isinstance(exc, Retry) else "error")
        note = attempt_note(attempt=attempt, started_at=started, finished_at=now, outcome=outcome,
                     error=f"{type(exc).__name__}: {exc}"[:500])
        if attempt < record.max_attempts:
            if isinstance(exc, Retry) and (exc.at is not None or exc.delay is not None):
                retry_at = exc.at if exc.at is not None else now + (exc.delay or 0.0)
            else:
                retry_at = now + backoff_seconds(attempt, options)
            log.warning("afterwork: task %s (%s) failed on attempt %d/%d, retrying in %.1fs: %r",
                        record.id, record.name, attempt, record.max_attempts, retry_at - now, exc)
            self._release_chain(record.id)
            self._out().retried.append(Outcome(record.id, self.owner, now, error,
                                               retry_at=retry_at, note=note))
            self._emit(EventKind.RETRIED, record, attempt, started, error)
            self._poll_soon(retry_at - now)
        else:
            log.error("afterwork: task %s (%s) failed for good after %d attempt(s): %r",
                      record.id, record.name, attempt, exc)
            self._forget_chain(record.id)
            self._out().failed.append(Outcome(record.id, self.owner, now, error, note=note))
            self._emit(EventKind.FAILED, record, attempt, started, error)

    def _out(self) -> Changes:
        """Outcomes of this loop iteration, written as one post when it ends (a handful of
        tasks finishing together cost the writer one hand-off, not one each)."""
        if self._outbox is None:
            self._outbox = Changes()
            if self._loop is not None:
                self._loop.call_soon(self._flush)
        return self._outbox

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, None
        if outbox:
            self.aw.writer.post(outbox)

    def _poll_soon(self, delay: float) -> None:
        if self._loop is not None and delay < self.aw.poll_seconds:
            self._loop.call_later(max(0.0, delay), self._poll_now.set)

    def _release(self, record: TaskRecord) -> None:
        self._claimed.discard(record.id)
        self._release_chain(record.id)
        self._out().released.append(Outcome(record.id, self.owner, time.time()))

    def _release_chain(self, task_id: str) -> None:
        """The rest of its chain leaves this runner too: whoever runs it next claims them."""
        now = time.time()
        released = []
        while (nxt := self._waiting.pop(task_id, None)) is not None:
            released.append(Outcome(nxt.id, self.owner, now))
            task_id = nxt.id
        if released:
            self._out().released.extend(released)

    def _forget_chain(self, task_id: str) -> None:
        """The store cancels the rest of a failed chain; drop our copies."""
        while (nxt := self._waiting.pop(task_id, None)) is not None:
            task_id = nxt.id
