"""A runner's claims: the loop that takes ready tasks from the store when the runner has room
(at its poll, when woken, back to back while the store holds more), its chores, and which
queues are paused. Claims are made on the writer thread, in order with the runner's writes
(its outcomes so far land before it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Protocol

from ._aio import wait_event
from ._chores import expire_dead_owners, forget_old_results, store_due_ticks
from ._enqueue import Planner
from ._errors import AfterworkError, StoreUnavailableError
from ._models import ClaimSpec, TaskRecord
from ._registry import REGISTRY
from ._schedule import Scheduler
from ._settings import Settings
from ._writer import Writer

log = logging.getLogger("afterwork")

DEAD_OWNER_CHECK_EVERY = 10  # polls between checks for dead runners on this host


class Claimant(Protocol):
    """What the claim loop needs of its runner."""

    settings: Settings
    writer: Writer
    planner: Planner
    owner: str
    queues: tuple[str, ...] | None
    stopping: bool
    finished_count: int  # tasks finished so far (a claim sizes its prefetch by it)
    claimed: set[str]  # ids of tasks it claimed and has not finished

    @property
    def backlog(self) -> int: ...
    def adopt(self, records: Iterable[TaskRecord], since: float | None = None) -> None: ...
    def flush(self) -> None: ...


class ClaimLoop:
    """Claims for one runner. `more`: the store may hold tasks ready for it (claim when it has
    room); `wanted`: claim now; `paused`: the paused queues, as of the last claim."""

    def __init__(self, runner: Claimant) -> None:
        self.runner = runner
        self.wanted = asyncio.Event()
        self.more = True
        self.paused: frozenset[str] = frozenset()
        self._pause_changes = 0  # note_paused() calls
        self._prefetch = 0  # tasks claimed beyond `concurrency`: see `room`
        self._next_dead_owner_check = 0.0  # time.monotonic()
        self._scheduler = Scheduler()

    def want(self) -> None:
        """Claim now (call on the runner's loop)."""
        self.more = True
        self.wanted.set()

    def room(self) -> int:
        """How many tasks the next claim takes (see `claim_room`): `concurrency` running plus
        the prefetch waiting, as many as finished during the last claim's round trip."""
        return claim_room(self.runner.settings.concurrency + self._prefetch, self.runner.backlog)

    async def run(self) -> None:
        polls = 0
        runner = self.runner
        while not runner.stopping:
            try:
                more = await self.once(polls)
            except Exception:  # the loop that claims must outlive any one failure
                log.exception("afterwork: the runner's claim loop failed; it goes on after "
                              "poll_seconds")
                more = False
            polls += 1
            if not more:
                self.wanted.clear()
                await wait_event(self.wanted, runner.writer.contact.backoff(runner.settings.poll_seconds))

    async def once(self, polls: int) -> bool:
        """Chores, then one claim; True when the store may hold more for us right now."""
        runner, writer = self.runner, self.runner.writer
        now = time.monotonic()
        if polls % DEAD_OWNER_CHECK_EVERY == 0 and now >= self._next_dead_owner_check:
            # and not more often than idle polling would: a drain polls back to back
            self._next_dead_owner_check = now + DEAD_OWNER_CHECK_EVERY * runner.settings.poll_seconds
            await expire_dead_owners(writer)
            await forget_old_results(writer, runner.settings.keep_results_seconds)
        if await store_due_ticks(self._scheduler, writer, runner.planner):
            self.more = True
        room = self.room()
        if room <= 0:
            return False
        finished = runner.finished_count
        sent = time.monotonic()  # the claim's leases begin later, on the store's clock
        try:
            claimed = await self._claim(room)
        except StoreUnavailableError as exc:
            writer.contact.failed("claiming tasks", exc)
            claimed = []
        except AfterworkError as exc:
            log.warning("afterwork: claiming tasks failed (%s); will retry", exc)
            claimed = []
        else:
            writer.contact.succeeded()
        self._prefetch = min(runner.settings.concurrency, runner.finished_count - finished)
        runner.claimed.update(r.id for r in claimed)
        runner.adopt(claimed, sent)
        self.more = len(claimed) == room
        return self.more

    async def _claim(self, limit: int) -> list[TaskRecord]:
        runner = self.runner
        runner.flush()  # outcomes so far are written before the claim (a chain's next task)
        changes = self._pause_changes
        paused, claimed = await claim(runner.writer, runner.owner, limit, runner.queues,
                                      runner.settings.queue_limits)
        if changes == self._pause_changes:  # else this process paused or resumed meanwhile:
            self.paused = frozenset(paused)  # what it noted is newer than what the claim read
        return claimed

    def note_paused(self, queue: str, paused: bool) -> None:
        """This process paused or resumed `queue` (call on any thread; a set is swapped
        whole): take no more of its tasks by hand-over now, rather than from the next claim
        on. The caller wakes the runner after a resume."""
        self.paused = self.paused | {queue} if paused else self.paused - {queue}
        self._pause_changes += 1


def claim_room(target: int, backlog: int) -> int:
    """How many tasks the next claim takes; 0: none yet. `target`: the tasks a runner keeps
    (running, plus a prefetch: none for long tasks, whose waiting would hold back other
    runners; up to its concurrency for short ones, which would otherwise idle while the claim
    travels); `backlog`: those it holds. It claims once a quarter of that is free, so one
    claim serves many tasks."""
    room = target - backlog
    return room if room * 4 >= target or not backlog else 0


async def claim(writer: Writer, owner: str, limit: int, queues: tuple[str, ...] | None,
                queue_limits: Mapping[str, int]) -> tuple[dict[str, float], list[TaskRecord]]:
    """(the paused queues, up to `limit` ready tasks leased to `owner`), read in one go."""
    now = time.time()  # for run times only: the store judges leases on its own clock
    spec = ClaimSpec(queues=queues, queue_limits=dict(queue_limits), rate_limits=REGISTRY.rate_limits())
    future = writer.call(lambda store: (store.paused_queues(), store.claim(owner, limit, now, spec)))
    return await asyncio.wrap_future(future)
