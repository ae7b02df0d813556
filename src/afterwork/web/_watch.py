"""How the API reads the store without hurting the app: its own small thread pool, and one
shared watch for every client following a task.

Reads run on a pool of `api_threads` threads of their own (an anyio CapacityLimiter), never
on the app's shared thread pool: a hung store then holds at most those few threads, the app's
own `def` endpoints keep theirs, and an API read that cannot get a thread within
READ_WAIT_SECONDS answers 503.

Long-polls and Server-Sent Event streams do not poll the store each: one watch per process
reads every watched task in one go, every WATCH_EVERY_SECONDS (tasks run by other
processes), and at once when this process's runner reports a change on the events stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

from .._errors import AfterworkError, StoreUnavailableError
from .._events import TaskEvent
from .._models import TaskRecord

if TYPE_CHECKING:
    from ._console import Console

T = TypeVar("T")
READ_WAIT_SECONDS = 10.0  # longest wait for one of the API's threads before a 503
WATCH_EVERY_SECONDS = 0.5  # how often the shared watch reads the watched tasks
SETTLE_SECONDS = (0.05, 0.2, 1.0, 3.0)  # reads again after an event, until its write has committed


class ReadsBusy(StoreUnavailableError):
    """Every thread of the API's pool is taken (the store is slow or hung)."""

    public_detail = "the task store is too slow to answer right now; retry later"


class Reads:
    """The API's own pool: `await reads.run(store.get, task_id)`."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._limiters: dict[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = {}

    def _limiter(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        limiter = self._limiters.get(loop)
        if limiter is None:
            for old in [old for old in self._limiters if old.is_closed()]:
                del self._limiters[old]  # test clients come and go with their loops
            limiter = self._limiters[loop] = anyio.CapacityLimiter(self.threads)
        return limiter

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        # Waiting for a thread ends after READ_WAIT_SECONDS; a read already on its thread is
        # not abandoned (its thread is freed only when the store answers, so the pool stays
        # bounded), and one that outlasts the wait is answered 503 too.
        try:
            with anyio.fail_after(READ_WAIT_SECONDS):
                return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter())
        except TimeoutError:
            raise ReadsBusy(f"no afterwork API read finished within {READ_WAIT_SECONDS:g} s "
                            f"(its {self.threads} threads wait on the store)") from None


def fingerprint(record: TaskRecord | None) -> str:
    return "" if record is None else json.dumps(record.to_json(), sort_keys=True, default=str)


class Watch:
    """Followers of tasks share one store read per round (see the module's docstring)."""

    def __init__(self, console: Console, reads: Reads) -> None:
        self._console = console
        self._reads = reads
        self._followers: dict[str, list[asyncio.Event]] = {}
        self.latest: dict[str, TaskRecord | None] = {}
        self._seen: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def followers(self) -> int:
        return sum(len(v) for v in self._followers.values())

    @contextmanager
    def follow(self, task_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the task may have changed; `latest[task_id]` has it."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._task is None or self._task.done():
            self._loop = loop
            self._kick = asyncio.Event()
            self._task = loop.create_task(self._run())
        changed = asyncio.Event()
        self._followers.setdefault(task_id, []).append(changed)
        if self._unsubscribe is None:  # listen only while someone follows: the events stream
            self._unsubscribe = self._console.subscribe(self._on_event)  # costs nothing then
        try:
            yield changed
        finally:
            found = self._followers.get(task_id, [])
            if changed in found:
                found.remove(changed)
            if not found:
                self._followers.pop(task_id, None)
                self.latest.pop(task_id, None)
                self._seen.pop(task_id, None)
            if not self._followers and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

    def _on_event(self, event: TaskEvent) -> None:
        loop, kick = self._loop, self._kick
        if loop is None or kick is None or event.task.id not in self._followers:
            return
        with contextlib.suppress(RuntimeError):  # RuntimeError: that loop is closed
            loop.call_soon_threadsafe(kick.set)  # events come from the loop or other threads

    async def _run(self) -> None:
        kick = self._kick
        assert kick is not None
        settle: list[float] = []
        while True:
            await asyncio.sleep(0)  # let a new follower register before the first read
            ids = list(self._followers)
            if not ids:
                with anyio.move_on_after(WATCH_EVERY_SECONDS):
                    await kick.wait()
                kick.clear()
                if not self._followers:
                    return
                continue
            if kick.is_set():
                # An event comes when the runner decides, a little before its write commits
                # (writes are grouped): read now, and again shortly after.
                settle = list(SETTLE_SECONDS)
                kick.clear()
            try:
                found: dict[str, TaskRecord] | None = await self._reads.run(self._console.tasks.get_many, ids)
            except AfterworkError:
                found = None  # the store is down: followers keep waiting (keep-alives)
            for task_id in ids if found is not None else ():
                record = found.get(task_id) if found is not None else None
                mark = fingerprint(record)
                if self._seen.get(task_id) != mark:
                    self._seen[task_id] = mark
                    self.latest[task_id] = record
                    for changed in self._followers.get(task_id, []):
                        changed.set()
            with anyio.move_on_after(settle.pop(0) if settle else WATCH_EVERY_SECONDS):
                await kick.wait()
