"""The records that cross the Store interface, and the states a task moves through."""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass, field
from typing import Any


class TaskState(str, enum.Enum):
    """A task's public state, as the status API and `TaskRecord.public_state` show it."""

    QUEUED = "queued"
    """Stored and waiting: for its turn in its response's chain, its run time, or a runner."""
    LEASED = "leased"
    """Internal: handed to one runner (its lease) but not started yet. Shown as `queued`."""
    RUNNING = "running"
    """A runner started it and holds a lease that its heartbeat keeps fresh."""
    SUCCEEDED = "succeeded"
    """Its function returned."""
    FAILED = "failed"
    """It raised on its last allowed attempt, or could not be run at all; `last_error` says why."""
    CANCELLED = "cancelled"
    """It will not run: cancelled, or a task before it in the same response failed for good."""

    @property
    def public(self) -> str:
        return "queued" if self is TaskState.LEASED else self.value


def iso(epoch: Any) -> str | None:
    """Epoch seconds as ISO 8601 in UTC: the one time format of the API, the CLI and the page."""
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc).isoformat()


TIMESTAMPS = ("created_at", "run_at", "started_at", "finished_at")
HISTORY_LINE_CHARS_SHOWN = 200  # of a history line that is not a JSON object
RUNNER_ALIVE_SECONDS = 90.0  # three heartbeats of the default 30 s lease, and then some
ACTIVE_STATES = (TaskState.QUEUED, TaskState.LEASED, TaskState.RUNNING)
FINAL_STATES = (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)


@dataclass(slots=True)
class TaskRecord:
    """One stored task, as the store returns it. Times are Unix epoch seconds.

    Read-only by convention (`dataclasses.replace` makes a changed copy), not frozen: a
    frozen dataclass sets each of its 26 fields through `object.__setattr__`, three times the
    cost of building it, and one is built for every task stored and every task claimed."""

    id: str
    name: str
    payload: str
    state: TaskState
    attempts: int = 0
    max_attempts: int = 1
    timeout_seconds: float | None = None
    batch_id: str | None = None
    seq: int = 0
    waiting_on: str | None = None
    lease_owner: str | None = None
    lease_until: float | None = None
    """On the store's lease clock (`Store.lease_clock`), not necessarily Unix time."""
    run_at: float = 0.0
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    last_error: str | None = None
    history: str | None = None
    """Attempts that did not succeed, one JSON object a line (see `attempt_history`)."""
    meta: str | None = None
    """A JSON object of context captured at enqueue time (see `Events.enqueue_hooks`)."""
    queue: str = "default"
    priority: int = 0
    """Higher runs first among the ready tasks of a claim."""
    dedup_key: str | None = None
    """While a task with this key is queued or running, no second one is stored."""
    rate_key: str | None = None
    """The task's name when it has a rate limit (its starts are counted), else None."""
    tick_key: str | None = None
    """A periodic task's `name@tick`: unique, so each tick is stored once (its id is random)."""
    result: str | None = None
    """What it returned, as stored (see `stored_result`); None: nothing (or None) returned."""
    progress: str | None = None
    """Its latest progress report, as stored (see `progress_json`); None: none reported."""

    def stored_result(self) -> dict[str, Any] | None:
        """The stored result: `{"value": ..., "public": bool}`, or `{"unstorable": why, ...}`
        for a value that could not be stored; None when the task returned nothing."""
        return _json_object(self.result)

    def progress_json(self) -> dict[str, Any] | None:
        """The latest progress report: done, total (None: unknown), note, attempt, at (ISO)."""
        found = _json_object(self.progress)
        if found is not None and isinstance(found.get("at"), int | float):
            found["at"] = iso(found["at"])
        return found

    def attempt_history(self) -> list[dict[str, object]]:
        """The attempts that did not succeed, oldest first, as stored (times in epoch
        seconds). A line that is not a JSON object (a damaged or hostile row) comes back as
        `{"undecodable": <its start>}` instead of failing the whole read."""
        entries: list[dict[str, object]] = []
        for line in (self.history or "").splitlines():
            if not line:
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                entry = None
            entries.append(entry if isinstance(entry, dict)
                           else {"undecodable": line[:HISTORY_LINE_CHARS_SHOWN]})
        return entries

    def to_json(self) -> dict[str, Any]:
        """The one JSON form of a task, everywhere: the status API and the dashboard (which
        add `arguments` and mask secrets, see `afterwork._redact`), and the CLI's `list
        --json` and `show`. Times are ISO 8601 in UTC, in the history too."""
        history = [{k: iso(v) if k.endswith("_at") and isinstance(v, int | float) else v
                    for k, v in h.items()} for h in self.attempt_history()]
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state.public,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            **{key: iso(getattr(self, key)) for key in TIMESTAMPS},
            "last_error": self.last_error,
            "history": history,
            "queue": self.queue,
            "priority": self.priority,
            "key": self.dedup_key,
            "progress": self.progress_json(),
            **result_fields(self),
        }


def progress_text(progress: dict[str, Any] | None) -> str:
    """A progress report in words, the same in the CLI and the dashboard: "attempt 2, 3 of 10:
    note" (a count alone when the total is unknown)."""
    if not progress or "done" not in progress:
        return ""
    done, total = progress.get("done"), progress.get("total")
    text = f"attempt {progress.get('attempt', 1)}, {_number(done)}"
    if total is not None:
        text += f" of {_number(total)}"
    return text + (f": {progress['note']}" if progress.get("note") else "")


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def result_fields(record: TaskRecord) -> dict[str, Any]:
    """`result` (the value returned, as JSON) and `result_error` (why a value returned could
    not be stored, else None): what operators see, and the public when the task allows it."""
    stored = record.stored_result() or {}
    return {"result": stored.get("value"), "result_error": stored.get("unstorable")}


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        return {"undecodable": text[:HISTORY_LINE_CHARS_SHOWN]}
    return found if isinstance(found, dict) else None


@dataclass(slots=True)
class Outcome:
    """What one attempt of a leased task came to; applied only while `owner` holds the lease."""

    task_id: str
    owner: str
    at: float
    error: str | None = None
    retry_at: float | None = None  # set: back to queued for another attempt at this time
    note: str = ""  # a JSON line appended to the task's history (attempts that did not succeed)
    unblock: bool = True  # a success may have a next task in its chain waiting on it
    result: str | None = None  # a success's stored result (see TaskRecord.result); None: none


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """The latest progress of a running task, written while `owner` holds its lease."""

    task_id: str
    owner: str
    progress: str  # JSON, see TaskRecord.progress


STEP_STARTED, STEP_FINISHED, STEP_FAILED = "started", "finished", "failed"


@dataclass(slots=True)
class StepWrite:
    """One step's record, written while `owner` holds the task's lease (fenced like an
    outcome). `runs` is added to the calls recorded so far (1 for a call, 0 for the finish of
    a call whose start was written already). The store sets `applied`: False when the lease
    was lost, so the write did nothing."""

    task_id: str
    owner: str
    seq: int
    name: str
    state: str  # STEP_STARTED, STEP_FINISHED or STEP_FAILED
    attempt: int
    started_at: float
    finished_at: float | None = None
    result: str | None = None  # JSON text of what the step returned (finished)
    error: str | None = None  # why it raised (failed)
    once: bool = False
    runs: int = 1
    applied: bool = False


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a task, as stored: its place (`seq`, from 0), its name and how it ended."""

    task_id: str
    seq: int
    name: str
    state: str
    once: bool
    attempt: int
    runs: int
    started_at: float
    finished_at: float | None
    result: str | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        """The step as the CLI's `show` and the dashboard's task page list it (the result is
        the operators' to see: the step's function returned it inside the task)."""
        duration = (None if self.finished_at is None
                    else round(max(0.0, self.finished_at - self.started_at), 6))
        return {"seq": self.seq, "name": self.name, "state": self.state, "once": self.once,
                "attempt": self.attempt, "runs": self.runs, "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at), "duration_seconds": duration,
                "error": self.error}


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A runner is alive at `at` (its wall clock, for display): its leases are renewed for the
    store's `lease_seconds`, on the store's clock."""

    owner: str
    at: float
    kind: str = "app"  # "app" (in-app runner) or "worker"
    host: str = ""
    pid: int = 0
    queues: tuple[str, ...] | None = None  # None: every queue
    concurrency: int = 0


@dataclass(frozen=True, slots=True)
class RunnerInfo:
    """A runner as the store last heard of it."""

    owner: str
    kind: str
    started_at: float
    heartbeat_at: float
    host: str = ""
    pid: int = 0
    queues: tuple[str, ...] | None = None  # None: every queue
    concurrency: int = 0
    running: int = 0  # tasks it holds leases on now (leased or running)

    def alive(self, now: float) -> bool:
        """Heard from within RUNNER_ALIVE_SECONDS (heartbeats come every third of a lease)."""
        return now - self.heartbeat_at < RUNNER_ALIVE_SECONDS


@dataclass(slots=True)
class QueueFigures:
    """A queue as the dashboard shows it: what waits and runs now, what finished lately."""

    queue: str
    waiting: int = 0  # queued (due or not)
    oldest_due_at: float | None = None  # run time of the longest-waiting due task
    running: int = 0  # leased or running
    succeeded: int = 0  # finished since the figures' start
    failed: int = 0


@dataclass(slots=True)
class Changes:
    """Writes the store applies in one transaction (grouped across requests by the writer)."""

    inserts: list[TaskRecord] = field(default_factory=list)
    # skipped if the id exists or the key is active (periodic ticks, de-duplicated tasks):
    inserts_if_absent: list[TaskRecord] = field(default_factory=list)
    started: list[Outcome] = field(default_factory=list)
    succeeded: list[Outcome] = field(default_factory=list)
    failed: list[Outcome] = field(default_factory=list)
    retried: list[Outcome] = field(default_factory=list)
    released: list[Outcome] = field(default_factory=list)
    expire_owners: list[str] = field(default_factory=list)
    requeued: list[Outcome] = field(default_factory=list)  # operator: run failed/cancelled again
    cancelled: list[Outcome] = field(default_factory=list)  # operator: queued tasks will not run
    heartbeat: Heartbeat | None = None
    stopped_runners: list[str] = field(default_factory=list)
    progress: list[ProgressReport] = field(default_factory=list)
    steps: list[StepWrite] = field(default_factory=list)  # a task's step records, lease-fenced

    def extend(self, other: Changes) -> None:
        """Add `other`'s writes to these. (Each list tested first: the writer extends a group
        by every request's changes, which hold one or two of the thirteen.)"""
        if other.inserts:
            self.inserts.extend(other.inserts)
        if other.inserts_if_absent:
            self.inserts_if_absent.extend(other.inserts_if_absent)
        if other.started:
            self.started.extend(other.started)
        if other.succeeded:
            self.succeeded.extend(other.succeeded)
        if other.failed:
            self.failed.extend(other.failed)
        if other.retried:
            self.retried.extend(other.retried)
        if other.released:
            self.released.extend(other.released)
        if other.expire_owners:
            self.expire_owners.extend(other.expire_owners)
        if other.requeued:
            self.requeued.extend(other.requeued)
        if other.cancelled:
            self.cancelled.extend(other.cancelled)
        if other.stopped_runners:
            self.stopped_runners.extend(other.stopped_runners)
        if other.progress:
            self.progress.extend(other.progress)
        if other.steps:
            self.steps.extend(other.steps)
        if other.heartbeat is not None:
            self.heartbeat = other.heartbeat

    def __bool__(self) -> bool:
        return bool(
            self.inserts or self.inserts_if_absent or self.started or self.succeeded or self.failed
            or self.retried or self.released or self.expire_owners or self.heartbeat or self.requeued
            or self.cancelled or self.stopped_runners or self.progress or self.steps
        )


@dataclass(frozen=True, slots=True)
class ClaimSpec:
    """What a runner may claim: its queues, and the limits every runner shares."""

    queues: tuple[str, ...] | None = None
    """None: every queue."""
    queue_limits: dict[str, int] = field(default_factory=dict)
    """Queue -> most tasks leased or running at once, across all runners."""
    rate_limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    """Task name -> (starts, per seconds), across all runners."""


ANY_TASK = ClaimSpec()  # every queue, no limits
