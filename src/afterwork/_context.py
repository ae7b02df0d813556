"""What code can ask about the task it runs in."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TaskContext:
    """The task being executed: use `id` and `attempt` for idempotency keys downstream."""

    id: str
    name: str
    attempt: int
    max_attempts: int
    steps: Any = field(default=None, repr=False, compare=False)
    """afterwork's own: where this run records its steps (its runner), None where it cannot."""


running_task: ContextVar[TaskContext | None] = ContextVar("afterwork_task", default=None)


def current_task() -> TaskContext | None:
    """The task this code runs in, or None outside a task.

        async def charge(order_id: str) -> None:
            ctx = current_task()
            await payments.charge(order_id, idempotency_key=f"{ctx.id}")
    """
    return running_task.get()
