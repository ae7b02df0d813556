"""What code can ask about the task it runs in."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._models import TaskRecord


@dataclass(frozen=True, slots=True)
class TaskContext:
    """The task being executed: use `id` and `attempt` for idempotency keys downstream."""

    id: str
    name: str
    attempt: int
    max_attempts: int
    steps: Any = field(default=None, repr=False, compare=False)
    """afterwork's own: where this run records its steps (its runner), None where it cannot."""


class ProgressReports(Protocol):
    """Where an attempt's progress goes (`_progress.ProgressSink`)."""

    def report(self, record: TaskRecord, attempt: int, done: float, total: float | None,
               note: str, from_step: bool = False) -> None: ...


class Attempt:
    """The attempt of a stored task that code runs in, as its runner sets it (one context
    variable for everything a task may ask: `current_task()`, `progress()`, steps). The public
    view, a TaskContext, is made when first asked for: most tasks never ask."""

    __slots__ = ("_view", "attempt", "record", "runner", "sink")

    def __init__(self, record: TaskRecord, attempt: int, runner: Any, sink: ProgressReports) -> None:
        self.record, self.attempt, self.runner, self.sink = record, attempt, runner, sink
        self._view: TaskContext | None = None

    def view(self) -> TaskContext:
        view = self._view
        if view is None:
            record = self.record
            view = self._view = TaskContext(record.id, record.name, self.attempt,
                                            record.max_attempts, self.runner)
        return view


running_task: ContextVar[Attempt | None] = ContextVar("afterwork_task", default=None)


def current_task() -> TaskContext | None:
    """The task this code runs in, or None outside a task.

        async def charge(order_id: str) -> None:
            ctx = current_task()
            await payments.charge(order_id, idempotency_key=f"{ctx.id}")
    """
    running = running_task.get()
    return None if running is None else running.view()
