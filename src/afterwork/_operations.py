"""Operator actions on stored tasks, shared by `Afterwork`, the CLI and the API."""

from __future__ import annotations

import time

from ._errors import TaskNotFoundError, TaskStateError
from ._models import Changes, Outcome, TaskRecord, TaskState
from .stores import Store

_ALLOWED = {
    "retry": ((TaskState.FAILED, TaskState.CANCELLED), "failed or cancelled"),
    "cancel": ((TaskState.QUEUED, TaskState.LEASED), "queued"),
}


def steer(store: Store, task_id: str, action: str) -> tuple[TaskRecord, TaskRecord]:
    """Retry (failed/cancelled -> queued, fresh attempts, its chain back with it) or cancel
    (queued -> cancelled, its chain with it). Returns (before, after)."""
    states, label = _ALLOWED[action]
    before = store.get(task_id)
    if before is None:
        raise TaskNotFoundError(f"no task {task_id}: check the id (finished tasks are purged)")
    if before.state not in states:
        raise TaskStateError(
            f"task {task_id} is {before.state.public}: only {label} tasks can be "
            f"{'retried' if action == 'retry' else 'cancelled'}"
        )
    change = [Outcome(task_id, "", time.time())]
    store.apply(Changes(requeued=change) if action == "retry" else Changes(cancelled=change))
    after = store.get(task_id)
    if after is None or after.state == before.state:  # a runner took it meanwhile
        raise TaskStateError(f"task {task_id} changed state meanwhile; look again")
    return before, after
