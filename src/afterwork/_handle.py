"""What `add_task` and `defer` return: the task's id, and the way to wait for its result.

Plain data that the planner makes for every task: the waiting machinery (`_waiting`, which
reads the store) is imported by a wait when it is called, not by every module that makes a
handle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import NotStorableError


@dataclass(frozen=True, slots=True)
class TaskHandle:
    """What `add_task` and `defer` return. `id` is unguessable: a page may hold it."""

    id: str
    name: str
    stored: bool
    """False when the task runs in memory only (not storable, or no Afterwork installed)."""

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for what the task returned (rebuilt through its return annotation), up to
        `timeout` seconds (None: as long as it takes). TaskFailedError, TaskCancelledError,
        ResultTimeoutError; NotStorableError when what it returned could not be stored."""
        from ._waiting import wait_result

        return await wait_result(self._stored_id(), timeout)

    def result_sync(self, timeout: float | None = None) -> Any:
        """`result` for synchronous code (a script, a `def` endpoint): blocks the thread, so
        never call it on an event loop."""
        from ._waiting import wait_result_sync

        return wait_result_sync(self._stored_id(), timeout)

    def _stored_id(self) -> str:
        if not self.stored:
            raise NotStorableError(f"task {self.id} ({self.name}) ran in memory only (it could "
                                   "not be stored), so its result is not stored either")
        return self.id
