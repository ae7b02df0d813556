"""The runner: takes tasks (handed over after their request committed, or claimed from the
store), runs them (`async def` on the event loop, `def` on afterwork's own threads) and records
each outcome. The writer thread keeps leases fresh, so a task blocking the loop keeps its own.
A `def` task still running past its timeout or the shutdown's grace keeps its lease until its
thread returns (a thread cannot be stopped); if the process exits first, the lease decides.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from . import _codec
from ._attempts import HeldThreads, attempt_note, failure
from ._calling import call_attempt, plain_coroutine
from ._chains import hand_back_at_stop, released, rest_of_chain
from ._claiming import ClaimLoop
from ._context import Attempt, running_task
from ._enqueue import Planner
from ._errors import AfterworkError, StepError
from ._events import EventKind, Events
from ._leases import LeaseWatch
from ._models import Changes, Heartbeat, Outcome, TaskRecord
from ._owners import new_owner
from ._progress import ProgressSink
from ._registry import REGISTRY, Task, TaskOptions
from ._results import stored_result
from ._settings import Settings
from ._threads import DaemonThreads
from ._writer import Writer
from .stores import Store

log = logging.getLogger("afterwork")

CANCEL_WAIT_SECONDS = 1.0  # after the grace: how long cancelled `async def` tasks get to unwind


class Runner:
    """Runs the tasks of one process on one event loop. It reads the settings, and writes
    only through the writer; the store itself serves it change notifications (`listen`)."""

    def __init__(self, settings: Settings, writer: Writer, store: Store, events: Events,
                 planner: Planner) -> None:
        self.settings = settings
        self.writer = writer
        self.store = store
        self.events = events
        self.planner = planner
        self.kind = settings.runner_kind
        self.queues = settings.run_queues
        self.owner = new_owner()
        self.host = socket.gethostname()
        self._ready: deque[TaskRecord] = deque()
        self._waiting: dict[str, TaskRecord] = {}  # predecessor id -> the next task of its chain
        self.claimed: set[str] = set()  # ids of tasks it claimed and has not finished
        self.leases = LeaseWatch(settings.lease_seconds)
        writer.renewed = self._renewed
        self._running: set[asyncio.Task[bool]] = set()
        self._dispatch_wanted = asyncio.Event()  # ready tasks or free slots changed: dispatch
        self._context: contextvars.Context | None = None  # the runner's own, while it dispatches
        self.stopping = False
        self.finished_count = 0  # tasks finished so far (claims size their prefetch by it)
        self.claims = ClaimLoop(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: list[asyncio.Task[None]] = []
        self._threads = DaemonThreads(settings.sync_threads)
        self._in_thread: dict[str, Future[Any]] = {}  # task id -> its `def` call, while it runs
        self.held = HeldThreads(self.owner, writer, lambda: self._loop is None)
        self._outbox: Changes | None = None
        self._progress = ProgressSink(self.owner, writer.post, events.progress)
        self._stop_listening: Callable[[], None] = lambda: None

    # -- intake ---------------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        return len(self._ready) + len(self._waiting) + len(self._running)

    def runs(self, queue: str) -> bool:
        """Whether this runner takes `queue`'s tasks now (its queues, and not paused as of
        its last claim: a paused queue's tasks go through the store, which holds them)."""
        return (self.queues is None or queue in self.queues) and queue not in self.claims.paused

    def accepts_handover(self) -> bool:
        return not self.stopping and self._loop is not None and self.backlog < self.settings.local_backlog

    def adopt(self, records: Iterable[TaskRecord], since: float | None = None) -> None:
        """Take tasks already leased to this runner (call on the runner's loop); `since`:
        time.monotonic() before their leases began (a claim's), else now (a hand-over: their
        rows were written a moment ago)."""
        if since is None:
            since = time.monotonic()
        held = self.leases.since
        for record in records:
            held[record.id] = since
            if record.waiting_on is None:
                self._ready.append(record)
            else:
                self._waiting[record.waiting_on] = record
        self._start_ready()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this runner runs on, while it runs."""
        return self._loop

    def more_in_store(self) -> None:
        """Tasks were stored for a claim (call on the runner's loop): claim when free."""
        self.claims.more = True

    def wake_threadsafe(self) -> None:
        """Claim soon, from any thread (after tasks were queued elsewhere)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.claims.want)

    def heartbeat(self) -> Changes | None:
        """Called by the writer thread every tick: keep this runner's leases fresh (after it
        stopped too, while threads of its tasks still run)."""
        if self._loop is None and not self.held:
            return None
        return Changes(heartbeat=Heartbeat(self.owner, time.time(), self.kind, self.host,
                                           os.getpid(), self.queues, self.settings.concurrency))

    # -- life -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.stopping = False
        # Record this runner now, not at the writer's first tick (a third of a lease away):
        # `afterwork check` run right after start-up must see it alive.
        beat = self.heartbeat()
        if beat is not None:
            try:
                await asyncio.wrap_future(self.writer.submit(beat))
            except AfterworkError as exc:
                log.warning("afterwork: recording this runner failed (%s); the next heartbeat "
                            "will", exc)
        self._stop_listening = self.store.listen(self.wake_threadsafe)
        self._main = [
            asyncio.create_task(self._dispatch(), name="afterwork-dispatch"),
            asyncio.create_task(self.claims.run(), name="afterwork-poll"),
        ]

    def stop_listening(self) -> None:
        """Its loop ended without a shutdown (a test client's request): hear no more."""
        self._stop_listening()

    async def stop(self, grace_seconds: float) -> None:
        """Stop taking tasks; let running ones finish up to the grace period; hand back what
        never started and the `async def` tasks that stopped when cancelled. A `def` task
        whose thread still runs is not handed back: it stays in `held`, its lease renewed
        until the thread returns or the process exits (then the lease decides)."""
        self.stopping = True
        self._stop_listening()
        for main in self._main:
            main.cancel()
        # Bounded even so: a loop that ignored its cancel must not hold the process forever
        # (it would see `stopping` at its next turn; the wake-ups make that turn now).
        self._dispatch_wanted.set()
        self.claims.wanted.set()
        _, stuck = (await asyncio.wait(self._main, timeout=self.settings.store_timeout_seconds + 1.0)
                    if self._main else (None, ()))
        if stuck:
            log.warning("afterwork: %s did not stop when cancelled; shutting down without it",
                        ", ".join(t.get_name() for t in stuck))
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace_seconds)
            for t in late:
                t.cancel()
            if late:
                await asyncio.wait(late, timeout=CANCEL_WAIT_SECONDS)
        self.flush()
        if self.held:
            log.warning("afterwork: %d def task(s) still running after the %ss grace: their "
                        "threads cannot be stopped, so they keep their leases until they return "
                        "or this process exits (another runner takes them after the lease)",
                        len(self.held), grace_seconds)
        self.writer.post(hand_back_at_stop(self._ready, self._waiting, self.owner, bool(self.held)))
        self.leases.since.clear()
        self._loop = None

    # -- the loops ------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        self._context = contextvars.copy_context()
        try:
            while not self.stopping:
                self._start_ready()
                self._dispatch_wanted.clear()
                await self._dispatch_wanted.wait()
        finally:
            self._context = None

    def _start_ready(self) -> None:
        """Start ready tasks while slots are free, at once (call on the runner's loop): a
        hand-over, a claim or a finished task does not wait for the dispatcher's next turn.
        Each task runs in an asyncio task of its own, in a copy of the runner's context, never
        of the caller's (a request hands its tasks over from inside its own context: its
        context variables must not follow them)."""
        context, loop = self._context, self._loop  # the loop's own create_task: no lookup of
        # the running loop (on Python 3.11 a system call: it compares the process id)
        if context is None or loop is None:  # the dispatcher is not running (yet): it starts them
            self._dispatch_wanted.set()
            return
        limit = self.settings.concurrency
        now = time.monotonic()
        while self._ready and len(self._running) < limit and not self.stopping:
            record = self._ready.popleft()
            if not self.leases.may_start(record.id, now):
                self._lapsed(record)
                continue
            task = context.copy().run(loop.create_task, self.execute(record))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _renewed(self, owner: str, began: float) -> None:
        """(The writer thread.) A heartbeat was written: whose leases it renewed, and when."""
        if owner == self.owner:
            self.leases.renewed(began)

    def _lapsed(self, record: TaskRecord) -> None:
        """A task that waited for a slot while its lease may have run out (its heartbeats did
        not reach the store for most of a lease) does not start: another runner may have taken
        it and run it meanwhile. It goes back (fenced by the lease: only if it is still ours)."""
        log.warning("afterwork: task %s (%s) was not started: this runner's heartbeats did not "
                    "reach the store for most of a lease while it waited, so its lease may have "
                    "run out and another runner may have it; handed back to the store",
                    record.id, record.name)
        self._release(record)
        self.claims.more = True

    def _finished(self, task: asyncio.Task[bool]) -> None:
        self._running.discard(task)
        self.finished_count += 1
        self._start_ready()
        if self.claims.more and self.claims.room() > 0:
            self.claims.wanted.set()

    def note_paused(self, queue: str, paused: bool) -> None:
        """This process paused or resumed `queue`: take no more of its tasks by hand-over now,
        rather than from the next claim on (call on any thread)."""
        self.claims.note_paused(queue, paused)
        if not paused:
            self.wake_threadsafe()

    # -- a test client's request: its chain, run in the request's own call -------------------
    def release_here(self, records: list[TaskRecord]) -> None:
        """Hand back tasks leased to this runner that will not run here; the store decides
        (a chain after a failure is cancelled already, after a retry it waits)."""
        self._out().released.extend(released(records, self.owner, time.time()))

    async def settle(self) -> None:
        """Return once every outcome so far is written (a test reads them next)."""
        self.flush()
        await asyncio.wrap_future(self.writer.call(lambda store: None))

    # -- one task -------------------------------------------------------------------------
    async def execute(self, record: TaskRecord, *, unblock_next: bool = False) -> bool:
        """Run one task leased to this runner; True if it succeeded. `unblock_next`: the next
        task of its chain waits in the store on this one (a test client's chain, run inline)."""
        attempt = record.attempts + 1
        try:
            func = REGISTRY.resolve(record.name)
            args, kwargs = _codec.decode(func, record.payload)
        except AfterworkError as exc:
            log.error("afterwork: task %s (%s) cannot run: %s", record.id, record.name, exc)
            self._forget_chain(record.id)
            self._out().failed.append(Outcome(record.id, self.owner, time.time(), str(exc)))
            self.events.task(EventKind.FAILED, record, attempt, error=str(exc))
            return False
        started = time.time()
        lost = ""
        if record.attempts and record.attempts > (record.history or "").count("\n"):
            # the last attempt left no word
            lost = attempt_note(attempt=record.attempts, started_at=record.started_at, outcome="lost",
                         error="its runner stopped or lost its lease before it finished")
        self._out().started.append(Outcome(record.id, self.owner, started, note=lost))
        if self.events.active:
            self.events.task(EventKind.STARTED, record, attempt)
        token = running_task.set(Attempt(record, attempt, self, self._progress))
        try:
            if self.events.around_task:
                with self.events.around(record):
                    value = await call_attempt(record, func, args, kwargs, record.timeout_seconds,
                                               self._threads, self._in_thread)
            elif (target := plain_coroutine(func, record.timeout_seconds)) is not None:
                value = await target(*args, **kwargs)
            else:
                value = await call_attempt(record, func, args, kwargs, record.timeout_seconds,
                                           self._threads, self._in_thread)
        except asyncio.CancelledError:
            call = self._in_thread.get(record.id)
            if call is not None and not call.done():
                self.claimed.discard(record.id)
                self._release_chain(record.id)
                self.held.hold(record, attempt, started, call)
            else:
                self._release(record)
                self.events.task(EventKind.RELEASED, record, attempt, started)
            raise
        except (Exception, SystemExit) as exc:
            if self._progress:
                self._last_progress(record.id)
            options = func.task_options if isinstance(func, Task) else None
            self._after_error(record, attempt, started, exc, options)
            return False
        else:
            if self._progress:
                self._last_progress(record.id)
            result = None if value is None else stored_result(func, record, value)
            self._after_success(record, unblock_next, result)
            if self.events.active:
                self.events.task(EventKind.SUCCEEDED, record, attempt, started)
            return True
        finally:
            running_task.reset(token)
            self._in_thread.pop(record.id, None)

    def _last_progress(self, task_id: str) -> None:
        """Its last report, if not written yet, goes before its outcome (fenced by the lease)."""
        last = self._progress.finish(task_id)
        if last is not None:
            self._out().progress.append(last)

    def _after_success(self, record: TaskRecord, unblock_next: bool = False,
                       result: str | None = None) -> None:
        successor = self._waiting.pop(record.id, None)
        claimed = record.id in self.claimed
        if claimed:
            # Its successor (if any) is not ours: the next claim may take it. That claim goes
            # to the writer after this success (a claim flushes first), and the writer
            # applies the outcomes queued before a call ahead of it: the success is written,
            # or kept for a retry, by then.
            self.claimed.discard(record.id)
            self.claims.more = True
        # A task handed over with its request's chain has its successor here or none at all.
        unblock = successor is not None or claimed or unblock_next
        self._out().succeeded.append(Outcome(record.id, self.owner, time.time(), unblock=unblock,
                                             result=result))
        if successor is not None:
            self._ready.append(successor)
            self._start_ready()

    def _after_error(self, record: TaskRecord, attempt: int, started: float, exc: BaseException,
                     options: TaskOptions | None) -> None:
        self.claimed.discard(record.id)
        now = time.time()
        error, note, retry_at = failure(exc, attempt, record.timeout_seconds, started, now, options)
        if attempt < record.max_attempts and not isinstance(exc, StepError):
            log.warning("afterwork: task %s (%s) failed on attempt %d/%d, retrying in %.1fs: %r",
                        record.id, record.name, attempt, record.max_attempts, retry_at - now, exc)
            self._release_chain(record.id)
            self._out().retried.append(Outcome(record.id, self.owner, now, error,
                                               retry_at=retry_at, note=note))
            self.events.task(EventKind.RETRIED, record, attempt, started, error)
            self._poll_soon(retry_at - now)
        else:
            log.error("afterwork: task %s (%s) failed for good after %d attempt(s): %r",
                      record.id, record.name, attempt, exc)
            self._forget_chain(record.id)
            self._out().failed.append(Outcome(record.id, self.owner, now, error, note=note))
            self.events.task(EventKind.FAILED, record, attempt, started, error)

    def _out(self) -> Changes:
        """Outcomes of this loop iteration, written as one post when it ends (a handful of
        tasks finishing together cost the writer one hand-off, not one each)."""
        if self._outbox is None:
            self._outbox = Changes()
            if self._loop is not None:
                self._loop.call_soon(self.flush)
        return self._outbox

    def flush(self) -> None:
        outbox, self._outbox = self._outbox, None
        if outbox:
            self.writer.post(outbox)

    def _poll_soon(self, delay: float) -> None:
        if self._loop is not None and delay < self.settings.poll_seconds:
            self._loop.call_later(max(0.0, delay), self.claims.wanted.set)

    def _release(self, record: TaskRecord) -> None:
        self.claimed.discard(record.id)
        self._release_chain(record.id)
        self._out().released.append(Outcome(record.id, self.owner, time.time()))

    def _release_chain(self, task_id: str) -> None:
        """The rest of its chain leaves this runner too: whoever runs it next claims them."""
        rest = self.leases.forget(rest_of_chain(self._waiting, task_id))
        if rest:
            self._out().released.extend(released(rest, self.owner, time.time()))

    def _forget_chain(self, task_id: str) -> None:
        """The store cancels the rest of a failed chain; drop our copies."""
        self.leases.forget(rest_of_chain(self._waiting, task_id))
