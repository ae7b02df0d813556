"""afterwork: FastAPI's BackgroundTasks, durable.

    from fastapi import FastAPI
    from afterwork import Afterwork, BackgroundTasks

    app = FastAPI()
    Afterwork(app)

    @app.post("/servers")
    async def register(host: str, tasks: BackgroundTasks) -> dict[str, str]:
        handle = tasks.add_task(notify, host, message="registered")
        return {"task": handle.id}
"""

# Names are imported on first use (PEP 562): `afterwork --help` and `afterwork list` need
# neither FastAPI nor the runner, and importing them would triple the command's start-up.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import Afterwork
    from ._background import BackgroundTask, BackgroundTasks, defer
    from ._context import TaskContext, current_task
    from ._errors import (
        AfterworkError,
        AfterworkWarning,
        ArgumentsDecodeError,
        ConfigurationError,
        NotInstalledError,
        NotStorableError,
        ResultTimeoutError,
        Retry,
        StepError,
        StepMismatchError,
        StepNotRepeatedError,
        StoreError,
        StoreReplacedError,
        StoreUnavailableError,
        TaskCancelledError,
        TaskFailedError,
        TaskNotFoundError,
        TaskStateError,
        TaskTooLargeError,
        UnknownTaskError,
    )
    from ._events import EventKind, TaskEvent
    from ._handle import TaskHandle
    from ._models import TaskRecord, TaskState
    from ._progress import progress
    from ._registry import Task, task
    from ._schedule import periodic
    from ._steps import step, step_sync
    from ._transaction import InTransaction, in_transaction

__all__ = [
    "Afterwork",
    "AfterworkError",
    "AfterworkWarning",
    "ArgumentsDecodeError",
    "BackgroundTask",
    "BackgroundTasks",
    "ConfigurationError",
    "EventKind",
    "InTransaction",
    "NotInstalledError",
    "NotStorableError",
    "ResultTimeoutError",
    "Retry",
    "StepError",
    "StepMismatchError",
    "StepNotRepeatedError",
    "StoreError",
    "StoreReplacedError",
    "StoreUnavailableError",
    "Task",
    "TaskCancelledError",
    "TaskContext",
    "TaskEvent",
    "TaskFailedError",
    "TaskHandle",
    "TaskNotFoundError",
    "TaskRecord",
    "TaskState",
    "TaskStateError",
    "TaskTooLargeError",
    "UnknownTaskError",
    "current_task",
    "defer",
    "in_transaction",
    "periodic",
    "progress",
    "step",
    "step_sync",
    "task",
]

_WHERE = {
    "Afterwork": "_app", "AfterworkWarning": "_errors",
    "BackgroundTask": "_background", "BackgroundTasks": "_background", "TaskHandle": "_handle",
    "defer": "_background",
    "TaskContext": "_context", "current_task": "_context",
    "EventKind": "_events", "TaskEvent": "_events",
    "TaskRecord": "_models", "TaskState": "_models",
    "Task": "_registry", "task": "_registry",
    "periodic": "_schedule", "progress": "_progress",
    "step": "_steps", "step_sync": "_steps",
    "InTransaction": "_transaction", "in_transaction": "_transaction",
    **dict.fromkeys(["AfterworkError", "ArgumentsDecodeError", "ConfigurationError", "NotInstalledError",
                     "NotStorableError", "ResultTimeoutError", "Retry", "StepError", "StepMismatchError",
                     "StepNotRepeatedError", "StoreError", "StoreReplacedError",
                     "StoreUnavailableError",
                     "TaskCancelledError", "TaskFailedError",
                     "TaskNotFoundError", "TaskStateError", "TaskTooLargeError", "UnknownTaskError"],
                    "_errors"),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'afterwork' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
