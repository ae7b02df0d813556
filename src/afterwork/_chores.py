"""What a runner does between claims: store the periodic tasks' due ticks, and take over
the leases of runners that died on this machine. Functions of the parts they use, so the
runner stays about running tasks."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from ._enqueue import Planner, record_for
from ._errors import AfterworkError, StoreUnavailableError
from ._models import Changes
from ._owners import owner_is_dead
from ._schedule import Scheduler
from ._writer import Writer

log = logging.getLogger("afterwork")


HISTORY_LOOKUP = 100  # a schedule's newest tasks looked at for a tick (run-now tasks are not)


async def store_due_ticks(scheduler: Scheduler, writer: Writer, planner: Planner) -> bool:
    """Periodic tasks: store each due tick under its unique tick key (a no-op if another
    runner stored it first). True when ticks were stored."""
    unknown = scheduler.unknown()
    if unknown:
        # "Ran before" means a tick of it was stored: an operator's "run now" (an ordinary task
        # of the same name, perhaps stored before this runner's first look) is not a tick, and
        # must not make it catch up the tick it missed before it started.
        future = writer.call(lambda store: {
            n: any(r.tick_key is not None for r in store.query(name=n, limit=HISTORY_LOOKUP))
            for n in unknown})
        try:
            history: dict[str, bool] = await asyncio.wrap_future(future)
            scheduler.ran_before.update(history)
        except AfterworkError as exc:
            _failed(writer, "reading periodic tasks' history", exc)
            return False
    now = time.time()
    due = scheduler.due(now)
    if not due:
        return False
    records = []
    for schedule, tick in due:
        record = record_for(planner.plan(schedule.task, (), schedule.kwargs), now)
        records.append(dataclasses.replace(record, tick_key=schedule.tick_key(tick), run_at=tick))
    try:
        await asyncio.wrap_future(writer.submit(Changes(inserts_if_absent=records)))
    except AfterworkError as exc:
        _failed(writer, "storing periodic ticks", exc)
        return False
    return True


async def forget_old_results(writer: Writer, keep_seconds: float | None) -> None:
    """Results of tasks finished more than `keep_seconds` ago are dropped (the tasks stay)."""
    if keep_seconds is None:
        return
    before = time.time() - keep_seconds
    try:
        await asyncio.wrap_future(writer.call(lambda store: store.forget_results(before)))
    except AfterworkError as exc:
        log.warning("afterwork: dropping old results failed (%s); will retry", exc)


async def expire_dead_owners(writer: Writer) -> None:
    """Runners of this machine whose process is gone: their leases end now."""
    try:
        owners: list[str] = await asyncio.wrap_future(writer.call(lambda store: store.lease_owners()))
    except AfterworkError:
        return
    dead = [o for o in owners if owner_is_dead(o)]
    if dead:
        log.info("afterwork: taking over the tasks of stopped runners %s", ", ".join(dead))
        try:
            await asyncio.wrap_future(writer.submit(Changes(expire_owners=dead)))
        except AfterworkError as exc:  # locked, full, gone: the next check tries again
            _failed(writer, "expiring the leases of stopped runners", exc)


def _failed(writer: Writer, doing: str, exc: AfterworkError) -> None:
    """A chore failed: a lost store is said once for the whole runner; anything else here."""
    if isinstance(exc, StoreUnavailableError):
        writer.contact.failed(doing, exc)
    else:
        log.warning("afterwork: %s failed (%s); will retry", doing, exc)
