"""Whether this runner still holds the leases of the tasks it keeps: a task claimed (or handed
over) and waiting for a free slot must not start once its lease may have run out (another
runner may have taken it and run it meanwhile: a link cut off longer than a lease, say).

A lease is renewed by the writer's heartbeat, from the moment its transaction began (the store
adds the lease to its own clock later still, so the estimate is on the safe side), and by
nothing else. A task this runner came to hold at `since` is surely still its own while no gap
between two renewals (or between `since` and the first renewal after it) was longer than
SAFE_SHARE of the lease, and the last renewal (or `since`) is less than that ago."""

from __future__ import annotations

from ._models import TaskRecord

SAFE_SHARE = 0.8  # of the lease: heartbeats come every third of it, so two may fail in a row


class LeaseWatch:
    """Renewals of one runner's leases (told by the writer thread) and, on the runner's loop,
    when it came to hold each task it has not started (`since`, by task id) and whether it may
    start it. Two floats, each written whole: the thread writes `lapsed_before` before
    `renewed_at`, and the loop reads them in the other order."""

    def __init__(self, lease_seconds: float) -> None:
        self.safe_seconds = lease_seconds * SAFE_SHARE
        self.renewed_at = float("-inf")  # time.monotonic() when the last renewal began
        self.lapsed_before = float("-inf")  # tasks held since before this may have lapsed
        self.since: dict[str, float] = {}  # task id -> time.monotonic() it came to be held

    def renewed(self, began: float) -> None:
        """A heartbeat that began at `began` was written."""
        if began - self.renewed_at > self.safe_seconds:  # a gap: what was held then may be gone
            self.lapsed_before = max(self.lapsed_before, began - self.safe_seconds)
        self.renewed_at = max(self.renewed_at, began)

    def may_start(self, task_id: str, now: float) -> bool:
        """Is the held task `task_id` surely still this runner's at `now`? (It leaves `since`.)"""
        return self.held(self.since.pop(task_id, now), now)

    def forget(self, records: list[TaskRecord]) -> list[TaskRecord]:
        """`records` are no longer held (handed back, or cancelled by the store); returned."""
        for r in records:
            self.since.pop(r.id, None)
        return records

    def held(self, since: float, now: float) -> bool:
        """Is a task held since `since` surely still this runner's at `now`?"""
        renewed_at = self.renewed_at
        return since > self.lapsed_before and now - max(since, renewed_at) < self.safe_seconds
