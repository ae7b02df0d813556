"""A runner's waiting chains: the next task of each chain it holds, by the task it waits on.
A request's tasks run in order; the runner keeps each one's successor here until it succeeds
(then the successor is ready), fails (the store cancels the rest: the copies go) or is handed
back (the rest goes back with it)."""

from __future__ import annotations

import time
from collections import deque

from ._models import Changes, Outcome, TaskRecord


def rest_of_chain(waiting: dict[str, TaskRecord], task_id: str) -> list[TaskRecord]:
    """The tasks after `task_id` in its chain, in order, taken out of `waiting`."""
    rest = []
    while (nxt := waiting.pop(task_id, None)) is not None:
        rest.append(nxt)
        task_id = nxt.id
    return rest


def released(records: list[TaskRecord], owner: str, at: float) -> list[Outcome]:
    """Hand-backs of `records`, held by `owner`, as of `at`."""
    return [Outcome(r.id, owner, at) for r in records]


def hand_back_at_stop(ready: deque[TaskRecord], waiting: dict[str, TaskRecord], owner: str,
                      holding: bool) -> Changes:
    """What a stopping runner writes: the tasks it holds that never started go back (`ready`
    and `waiting` are emptied). Unless it still `holding` running `def` tasks (whose leases it
    keeps), its leases end and its entry goes: whatever a cancelled claim leased to it without
    its seeing it is released too."""
    handed = released([*ready, *waiting.values()], owner, time.time())
    ready.clear()
    waiting.clear()
    if holding:
        return Changes(released=handed)
    return Changes(released=handed, expire_owners=[owner], stopped_runners=[owner])
