"""The one way the web side (status API, dashboard, metrics) reaches afterwork's core.

Everything the web code reads or does goes through a `Console`: the option values it
reads, the store's reads, the operator's actions and the events stream. The core builds one
in one place (`Afterwork.console`, which it hands to `afterwork.web.mount`). The web code
knows the core only through these types and the core's plain data (`_models`, `_events`,
`_errors`, the `_redact.Redactor`): it never imports `_app`, the runner, the writer or the
stores, and the core never imports it (`tests/unit/test_layers.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .._events import TaskEvent
from .._models import QueueFigures, RunnerInfo, StepRecord, TaskRecord, TaskState
from .._redact import Redactor

if TYPE_CHECKING:
    from starlette.requests import Request


class WebSettings(Protocol):
    """The options the web side reads (their meaning: the README's options table)."""

    @property
    def api_prefix(self) -> str: ...  # "" turns the status API off
    @property
    def dashboard_prefix(self) -> str: ...  # no trailing slash
    @property
    def dashboard(self) -> bool: ...
    @property
    def dashboard_token(self) -> str | None: ...
    @property
    def dashboard_auth(self) -> Callable[[Request], Any] | None: ...
    @property
    def metrics(self) -> bool: ...
    @property
    def queue_limits(self) -> Mapping[str, int]: ...
    @property
    def max_streams(self) -> int: ...
    @property
    def api_threads(self) -> int: ...


class TaskReads(Protocol):
    """The store's reads the web side makes (a `Store` is one); each may block: call them
    through the API's own threads (`_watch.Reads`)."""

    def get(self, task_id: str) -> TaskRecord | None: ...
    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]: ...
    def query(self, *, states: Sequence[TaskState] = (), name: str | None = None,
              queue: str | None = None, limit: int = 100, since: float | None = None,
              until: float | None = None,
              before: tuple[float, str] | None = None, payload_has: str | None = None,
              ) -> list[TaskRecord]: ...
    def counts(self) -> dict[tuple[str, str], int]: ...
    def finished_per_minute(self, since: float) -> list[tuple[int, str, int]]: ...
    def finished_per_minute_by_queue(self, since: float) -> list[tuple[str, int, str, int]]: ...
    def count_pending(self, now: float) -> int: ...
    def runners(self) -> list[RunnerInfo]: ...
    def lease_owners(self) -> list[str]: ...
    def ids_starting_with(self, prefix: str, limit: int) -> list[str]: ...
    def finished_times(self, since: float, limit: int
                       ) -> list[tuple[str, str, float, float | None, float]]: ...
    def paused_queues(self) -> dict[str, float]: ...
    def queue_figures(self, now: float, since: float) -> list[QueueFigures]: ...
    def steps_of(self, task_id: str) -> list[StepRecord]: ...


Listener = Callable[[TaskEvent], None]


@dataclass(frozen=True, slots=True)
class Console:
    """What the web side may see and do of one Afterwork."""

    settings: WebSettings
    tasks: TaskReads
    redactor: Redactor
    """Masks secrets in what operators see."""
    retry: Callable[[str], TaskRecord]
    """Run a failed or cancelled task again (TaskNotFoundError, TaskStateError, StoreError);
    blocks: call it off the event loop."""
    cancel: Callable[[str], TaskRecord]
    """Cancel a queued task (same errors); blocks."""
    subscribe: Callable[[Listener], Callable[[], None]]
    """Follow the events stream; returns the function that stops following."""
    pause_queue: Callable[[str, bool], None]
    """Pause (True) or resume (False) a queue for every runner; blocks."""
    schedules: Callable[[], list[dict[str, Any]]]
    """Each periodic schedule: timing, next tick, its newest task and state; blocks."""
    run_schedule: Callable[[str], str]
    """Add one run of a periodic schedule now (TaskNotFoundError); its task id; blocks."""

    delete: Callable[[Sequence[str]], list[str]]
    """Delete queued or finished tasks (never held ones, nor one another waits on); the ids
    deleted; blocks."""
    rate_limits: Callable[[], Mapping[str, Mapping[str, tuple[int, float]]]]
    """Queue -> {task name: (starts, per seconds)} of the registered rate-limited tasks."""

    def action(self, name: str) -> Callable[[str], TaskRecord]:
        """`retry` or `cancel` by name (KeyError for anything else)."""
        return {"retry": self.retry, "cancel": self.cancel}[name]
