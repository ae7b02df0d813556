"""A runner's waiting chains: the next task of each chain it holds, by the task it waits on.
A request's tasks run in order; the runner keeps each one's successor here until it succeeds
(then the successor is ready), fails (the store cancels the rest: the copies go) or is handed
back (the rest goes back with it)."""

from __future__ import annotations

from ._models import Outcome, TaskRecord


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
