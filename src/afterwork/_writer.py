"""One thread owns the store's writes and groups them: the commits of concurrent requests,
completions and heartbeats share transactions, so there is one commit per group, not per task.

Every write a caller waits for (a request's batch) has a deadline: the store timeout from when
it was queued. A write not yet tried at its deadline is answered with StoreUnavailableError
(nothing written) by a small watchdog thread, even while the writer is stuck on a locked store;
a group is tried with a lock wait no longer than what is left to its oldest waiter. So a
request waits about `store_timeout_seconds` at most (plus the watchdog's 0.1 s), whatever the
group size and whatever ran before it, then gets its 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from ._contact import StoreContact
from ._errors import StoreError, StoreUnavailableError
from ._models import Changes
from .stores import Store

log = logging.getLogger("afterwork")
T = TypeVar("T")

class _Waiter(Protocol):
    """A concurrent Future, or a `_LoopFuture`."""

    def set_running_or_notify_cancel(self) -> bool: ...
    def set_result(self, value: Any, /) -> None: ...
    def set_exception(self, exc: BaseException, /) -> None: ...


_Done = tuple["asyncio.Future[Any]", Any, "BaseException | None"]
RETRY_SECONDS_MAX = 30.0  # back-off cap while the store refuses runner writes
WATCH_SECONDS = 0.1  # how often the watchdog looks for waiters past their deadline
FOLD_SECONDS = 0.05  # the longest a posted outcome waits for a group to ride with
LINGER_SECONDS = 0.5  # after a group, the writer wakes at least every FOLD_SECONDS this long
_STOP = object()
_WAITING, _STARTED, _EXPIRED = 0, 1, 2


class _Item:
    """A queued write or call, its waiter (None: posted), its deadline, and whether the writer
    started it or the watchdog answered it (each under the writer's lock)."""

    __slots__ = ("deadline", "future", "item", "state")

    def __init__(self, item: Any, future: _Waiter | None, deadline: float) -> None:
        self.item, self.future, self.deadline, self.state = item, future, deadline, _WAITING


class Writer:
    """Applies `Changes` on a thread of its own. `submit` waits-able, `post` fire-and-forget.

    A group that fails is split: every waiting submitter gets its own outcome (one refused
    request batch does not fail its neighbours), and posted runner writes are kept and retried
    with back-off until the store takes them, so no outcome is lost while the store is down.
    """

    def __init__(self, store: Store, *, tick_seconds: float, on_tick: Callable[[], Changes | None],
                 timeout_seconds: float = 5.0):
        self.store = store
        self._tick_seconds = tick_seconds
        self._on_tick = on_tick
        self.timeout_seconds = timeout_seconds
        self._queue: list[_Item] = []
        self._batch: list[_Item] = []  # taken from the queue, not all started yet
        # The queue's lock, taken as a plain lock (C, no Python frames: a request takes it once)
        # and as the condition the writer sleeps on.
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._busy = threading.Event()  # set while the writer works: the watchdog watches
        self._thread: threading.Thread | None = None
        self._retry: list[Changes] = []
        self._retry_delay = 0.0
        # Retries of runner writes come at least once a tick: a runner whose store is back
        # renews its leases before they run out.
        self.contact = StoreContact(min(RETRY_SECONDS_MAX, tick_seconds))
        self._deliveries: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
        self._urgent = 0  # queued items that wake the writer (all but posted outcomes)
        self._fold_until: float | None = None  # posted outcomes queued: written by then
        self._sleeping = False  # the writer waits without a bound of FOLD_SECONDS
        self._last_group = 0.0
        # Told when a heartbeat was written (its owner, and time.monotonic() as its write
        # began): the runner's leases were renewed (see `_leases`).
        self.renewed: Callable[[str, float], None] = lambda owner, began: None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="afterwork-writer", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch, args=(self._thread,), name="afterwork-writer-watchdog",
                         daemon=True).start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the thread."""
        if self._thread is None:
            return
        with self._mutex:
            self._queue.append(_Item(_STOP, None, 0.0))
            self._urgent += 1
            self._cond.notify()
        self._thread.join(timeout)
        self._thread = None
        self._busy.set()  # let the watchdog see the writer is gone

    def submit(self, changes: Changes) -> Future[None]:
        future: Future[None] = Future()
        self._put(changes, future)
        return future

    def submit_async(self, changes: Changes, loop: asyncio.AbstractEventLoop | None = None
                     ) -> asyncio.Future[None]:
        """`submit` for the event loop (`loop`: the running one, if the caller has it): the
        writer resolves every future of a group with one wake-up of the loop, instead of
        one per request."""
        loop = loop or asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._put(changes, _LoopFuture(loop, future, self._deliveries), wake_from=loop)
        return future

    def post(self, changes: Changes) -> None:
        self._put(changes, None)

    def call(self, fn: Callable[[Store], T]) -> Future[T]:
        """Run `fn(store)` on the writer thread, in order with the writes (claims do this)."""
        future: Future[T] = Future()
        self._put(fn, future)
        return future

    def _put(self, item: Any, future: _Waiter | None,
             wake_from: asyncio.AbstractEventLoop | None = None) -> None:
        """Queue `item`. From an event loop (`wake_from`), the writer is woken by a callback
        of that loop, after the requests it is handling now have queued theirs: one wake-up
        and one group for all of them. Woken at once, on a server's single core the writer
        would preempt the loop only to wait for the GIL the loop holds (two context switches
        for nothing, several per group)."""
        now = time.monotonic()
        deadline = now + self.timeout_seconds if future is not None else 0.0
        with self._mutex:
            if self._thread is None:
                raise StoreError("afterwork is not running (its writer was stopped)")
            self._queue.append(_Item(item, future, deadline))
            if future is None and _foldable(item):
                # Outcomes ride with the next group (a request's rows, say): one commit
                # instead of two. They wait for one at most FOLD_SECONDS.
                if self._fold_until is None:
                    self._fold_until = now + FOLD_SECONDS
                    if self._sleeping:
                        self._cond.notify()
                return
            self._urgent += 1
            if self._urgent == 1:  # else the writer is awake already, or will be: spare a wake-up
                if wake_from is None:
                    self._cond.notify()
                else:
                    wake_from.call_soon(self._wake)

    def _wake(self) -> None:
        with self._mutex:
            if self._urgent:
                self._cond.notify()

    def _run(self) -> None:
        next_tick = time.monotonic() + self._tick_seconds
        while True:
            with self._mutex:
                began = time.monotonic()
                while not self._urgent:
                    now = time.monotonic()
                    due = next_tick
                    if self._retry:
                        due = min(due, began + self._retry_delay)
                    if self._fold_until is not None:
                        due = min(due, self._fold_until)
                    if now >= due:
                        break
                    wait = due - now
                    if self._fold_until is None and now - self._last_group < LINGER_SECONDS:
                        # Busy lately: outcomes are posted without a wake-up (the next group
                        # takes them along), so look at least this often meanwhile.
                        wait = min(wait, FOLD_SECONDS)
                    self._sleeping = wait > FOLD_SECONDS  # a posted outcome wakes it
                    self._cond.wait(wait)
                    self._sleeping = False
                items, self._queue = self._queue, []
                self._urgent, self._fold_until = 0, None
                self._last_group = time.monotonic()
                self._batch = items
                self._busy.set()
            stop = any(i.item is _STOP for i in items)
            try:
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self._tick_seconds
                    tick = self._on_tick()
                    if tick:
                        items.append(_Item(tick, None, 0.0))
                self._process([i for i in items if i.item is not _STOP])
            except Exception:  # the writer must outlive any bug: it carries every outcome
                log.exception("afterwork: writer error")
            with self._mutex:
                self._batch = []
                self._busy.clear()
            self._deliver()
            if stop:
                return

    def _start(self, items: list[_Item]) -> list[_Item]:
        """The items the writer may now try: not answered by the watchdog, and not given up by
        their waiter (a request that was cancelled takes its write with it)."""
        with self._mutex:
            live = [i for i in items if i.state == _WAITING]
            for i in live:
                i.state = _STARTED
        return [i for i in live if i.future is None or i.future.set_running_or_notify_cancel()]

    def _watch(self, writer: threading.Thread) -> None:
        """Answer waiters past their deadline while the writer is stuck (on a held lock, say):
        their writes were never tried, so nothing of them is written."""
        while writer.is_alive():
            self._busy.wait()
            time.sleep(WATCH_SECONDS)
            now = time.monotonic()
            with self._mutex:
                late = [i for i in (*self._batch, *self._queue)
                        if i.future is not None and i.state == _WAITING and i.deadline <= now]
                for i in late:
                    i.state = _EXPIRED
            for i in late:
                exc = StoreUnavailableError(
                    f"the store did not take the write within {self.timeout_seconds}s "
                    "(store_timeout_seconds): it is locked or slow; nothing was written")
                if isinstance(i.future, _LoopFuture):
                    done: list[_Done] = [(i.future.future, None, exc)]
                    with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits
                        i.future.loop.call_soon_threadsafe(_resolve_all, done)
                elif i.future is not None and i.future.set_running_or_notify_cancel():
                    i.future.set_exception(exc)

    def _process(self, items: list[_Item]) -> None:
        # Changes first, as one group (the requests waiting on it are answered soonest), then
        # the calls, in order.
        self._apply_grouped([i for i in items if isinstance(i.item, Changes)])
        self._deliver()  # answer the requests now, not after the calls
        for i in items:
            if not isinstance(i.item, Changes):
                for started in self._start([i]):
                    self._call(started.item, started.future)

    def _apply_grouped(self, items: list[_Item]) -> None:
        waited: list[tuple[Changes, _Waiter, float]] = []
        posted = Changes()
        for i in self._start(items):
            if i.future is None:
                posted.extend(i.item)
            else:
                waited.append((i.item, i.future, i.deadline))
        group = Changes()
        for retry in self._retry:
            group.extend(retry)
        group.extend(posted)
        for changes, _, _ in waited:
            group.extend(changes)
        if not group:
            return
        try:
            self._apply(group, _left(waited))
        except Exception as exc:
            self._after_failure(waited, posted, exc)
            return
        self._retry, self._retry_delay = [], 0.0
        self.contact.succeeded()
        for _, future, _ in waited:
            future.set_result(None)

    def _after_failure(
        self, waited: list[tuple[Changes, _Waiter, float]], posted: Changes, exc: Exception
    ) -> None:
        # A store that is locked, full, gone or replaced refuses every part alike: trying
        # each alone would only multiply the wait. Another refusal (a duplicate key, say)
        # may be one batch's own: alone, each batch succeeds or fails on its own.
        unavailable = isinstance(exc, StoreUnavailableError)
        if unavailable:
            self.contact.failed("writing", exc)
        for changes, future, deadline in waited:
            if unavailable:
                future.set_exception(exc)
                continue
            try:
                self._apply(changes, _left([(changes, future, deadline)]))
            except Exception as own:
                future.set_exception(own if isinstance(own, StoreError) else StoreError(str(own)))
            else:
                future.set_result(None)
        pending = Changes()
        for retry in self._retry:
            pending.extend(retry)
        pending.extend(posted)
        if pending:
            try:
                if unavailable:
                    raise exc  # retried after a back-off, not at once
                self._apply(pending)
            except Exception:
                self._retry = [pending]
                self._retry_delay = min(self.contact.cap_seconds, max(0.1, self._retry_delay * 2))
                if not unavailable:  # a lost store said so once (`contact`); this is another refusal
                    log.warning("afterwork: the store refused runner writes (%s); retrying in "
                                "%.1fs", exc, self._retry_delay)
            else:
                self._retry, self._retry_delay = [], 0.0
                self.contact.succeeded()

    def _apply(self, changes: Changes, timeout_seconds: float | None = None) -> None:
        """Write `changes` (raises what the store raises); a heartbeat among them is told to
        `renewed` with the time its write began."""
        began = time.monotonic()
        self.store.apply(changes, timeout_seconds)
        if changes.heartbeat is not None:
            self.renewed(changes.heartbeat.owner, began)

    def _deliver(self) -> None:
        while self._deliveries:
            loop, done = self._deliveries.popitem()
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_resolve_all, done)

    def _call(self, fn: Callable[[Store], Any], future: _Waiter | None) -> None:
        try:
            result = fn(self.store)
        except Exception as exc:
            if future is not None:
                future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)


def _foldable(item: Any) -> bool:
    """Posted runner outcomes only (started, succeeded, failed, retried, released): they may
    wait a little for a group to share. Rows, heartbeats and the rest go at once."""
    return isinstance(item, Changes) and not (
        item.inserts or item.inserts_if_absent or item.heartbeat or item.expire_owners
        or item.requeued or item.cancelled or item.stopped_runners)


def _left(waited: list[tuple[Changes, _Waiter, float]]) -> float | None:
    """How long the group may wait for locks: what is left to its oldest waiter (None: no
    one waits, the store's own timeout)."""
    if not waited:
        return None
    return max(0.0, min(d for _, _, d in waited) - time.monotonic())


class _LoopFuture:
    """Stands in for a concurrent Future on the writer thread; resolutions are gathered per
    event loop and delivered together (`Writer._deliver`)."""

    __slots__ = ("deliveries", "future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
                 deliveries: dict[asyncio.AbstractEventLoop, list[_Done]]) -> None:
        self.loop, self.future, self.deliveries = loop, future, deliveries

    def set_running_or_notify_cancel(self) -> bool:
        return not self.future.cancelled()

    def set_result(self, value: Any) -> None:
        self.deliveries.setdefault(self.loop, []).append((self.future, value, None))

    def set_exception(self, exc: BaseException) -> None:
        self.deliveries.setdefault(self.loop, []).append((self.future, None, exc))


def _resolve_all(done: list[_Done]) -> None:
    for future, value, exc in done:
        if future.done():
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)
