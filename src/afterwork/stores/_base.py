"""The narrow seam every store implements; all logic above it is shared."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

from .._models import (
    ANY_TASK,
    Changes,
    ClaimSpec,
    QueueFigures,
    RunnerInfo,
    StepRecord,
    TaskRecord,
    TaskState,
)

LEASE_ERROR = "lease expired: its runner stopped or lost contact, another runner took it over"


class Store(abc.ABC):
    """Where tasks live. Methods are blocking; afterwork calls them off the event loop.

    `apply` writes a `Changes` in one transaction, all or nothing. Every update of a leased
    task names its owner, and a store applies it only while that owner holds the lease (the
    fencing that keeps a runner which lost its lease from completing or failing the task).
    """

    url: str = ""
    timeout_seconds: float = 5.0
    """The longest a write waits for a lock held elsewhere (Afterwork's
    `store_timeout_seconds`); then it fails with StoreUnavailableError."""
    lease_seconds: float = 30.0
    """How long a lease taken or renewed through this store object lasts (Afterwork sets it
    to its `lease_seconds`). Lease times are on the store's clock (`lease_clock`)."""

    @abc.abstractmethod
    def open(self) -> None:
        """Connect, create and migrate the schema. Idempotent."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def exists(self) -> bool:
        """Does the store hold afterwork's schema? Creates nothing (no file, folder or table):
        the CLI's read-only commands ask before they touch a store."""
        return True

    @abc.abstractmethod
    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` task ids that start with `prefix` (the CLI accepts unique prefixes)."""

    @abc.abstractmethod
    def apply(self, changes: Changes, timeout_seconds: float | None = None) -> None:
        """Write `changes` in one transaction, waiting for locks at most `timeout_seconds`
        (None: `self.timeout_seconds`)."""

    @abc.abstractmethod
    def claim(self, owner: str, limit: int, now: float,
              spec: ClaimSpec = ANY_TASK) -> list[TaskRecord]:
        """Lease up to `limit` tasks for `lease_seconds`: ready ones (queued, due by `now`,
        not waiting on another task), or ones whose lease expired on the store's clock and
        that `owner` does not hold itself; highest priority, then oldest run time, first;
        within the queues and limits of `spec`. `now` is the caller's wall clock, used only
        for run times (delays, retries, schedules), never for leases."""

    @abc.abstractmethod
    def lease_clock(self) -> float:
        """Now, on the clock every lease time of this store is written and judged on."""

    @abc.abstractmethod
    def get(self, task_id: str) -> TaskRecord | None: ...

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        """The tasks found among `task_ids`, by id, in one read where the store can (the
        status API's shared watch reads every followed task this way)."""
        found = (self.get(i) for i in task_ids)
        return {r.id: r for r in found if r is not None}

    @abc.abstractmethod
    def active_with_key(self, key: str) -> TaskRecord | None:
        """The queued, leased or running task with this de-duplication key."""

    @abc.abstractmethod
    def query(
        self, *, states: Sequence[TaskState] = (), name: str | None = None, queue: str | None = None,
        limit: int = 100,
        since: float | None = None, until: float | None = None,
        before: tuple[float, str] | None = None, payload_has: str | None = None,
    ) -> list[TaskRecord]:
        """Newest first (by created_at, then id); `since`/`until` bound created_at; `before`
        is a cursor: the (created_at, id) of the last task of the previous page; `payload_has`
        keeps tasks whose stored arguments hold that text (ASCII case ignored on SQLite):
        candidates, which the caller checks against what it may show."""

    @abc.abstractmethod
    def counts(self) -> dict[tuple[str, str], int]:
        """(public state, task name) -> how many tasks."""

    @abc.abstractmethod
    def finished_per_minute(self, since: float) -> list[tuple[int, str, int]]:
        """(minute start, 'succeeded' or 'failed', count) for tasks finished since then."""

    @abc.abstractmethod
    def finished_per_minute_by_queue(self, since: float) -> list[tuple[str, int, str, int]]:
        """(queue, minute start, 'succeeded' or 'failed', count): `finished_per_minute` per
        queue (the dashboard's throughput over time)."""

    @abc.abstractmethod
    def count_pending(self, now: float) -> int:
        """Tasks not final that could run by `now` (queued and due, leased, or running)."""

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` when another process made tasks ready; returns a function that stops
        listening. Stores without notifications return a no-op (runners poll)."""
        return lambda: None

    @abc.abstractmethod
    def runners(self) -> list[RunnerInfo]:
        """Runners by their last heartbeat (a stopped runner removes itself)."""

    @abc.abstractmethod
    def paused_queues(self) -> dict[str, float]:
        """Paused queue -> when it was paused. No runner claims a paused queue's tasks."""

    @abc.abstractmethod
    def set_queue_paused(self, queue: str, paused: bool, at: float) -> None:
        """Pause a queue (every runner's next claim skips it) or resume it; idempotent."""

    @abc.abstractmethod
    def queue_figures(self, now: float, since: float) -> list[QueueFigures]:
        """Each queue that holds unfinished tasks or finished some since `since`."""

    @abc.abstractmethod
    def finished_times(self, since: float, limit: int) -> list[tuple[str, str, float, float | None, float]]:
        """(name, 'succeeded' or 'failed', run_at, started_at, finished_at) of up to `limit`
        tasks finished since `since`, newest first: the dashboard's per-name figures."""

    @abc.abstractmethod
    def purge(self, finished_before: float, limit: int = 10_000) -> int:
        """Delete up to `limit` finished tasks (succeeded, failed, cancelled) that finished
        before that time and no task waits on; the count deleted."""

    @abc.abstractmethod
    def delete(self, task_ids: Sequence[str]) -> list[str]:
        """Delete these tasks, with their results, progress, steps and aliases: queued or
        finished ones only, never one a runner holds (leased, running) nor one another task
        waits on. The ids deleted; the others are left as they are."""

    def forget_results(self, finished_before: float) -> int:
        """Drop the results of tasks that finished before that time (the tasks stay); the
        count dropped. Afterwork's `keep_results_seconds` calls it."""
        return 0

    def steps_of(self, task_id: str) -> list[StepRecord]:
        """The task's step records (`afterwork.step`), in the order the task reached them."""
        return []

    @abc.abstractmethod
    def count_purgeable(self, finished_before: float) -> int:
        """How many tasks `purge` would delete in all."""

    @abc.abstractmethod
    def schema_version(self) -> tuple[int, int]:
        """(applied, newest known) migration versions."""

    @abc.abstractmethod
    def lease_owners(self) -> list[str]:
        """Owners that hold a lease on any task, expired or not."""
