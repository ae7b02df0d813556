"""A runner's claims: how many tasks the next one takes, and the claim itself, made on the
writer thread in order with the runner's writes (its outcomes so far land before it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from ._models import ClaimSpec, TaskRecord
from ._registry import REGISTRY
from ._writer import Writer


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
