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

from ._app import Afterwork, AfterworkWarning
from ._background import BackgroundTask, BackgroundTasks, TaskHandle, defer
from ._context import TaskContext, current_task
from ._errors import (
    AfterworkError,
    ArgumentsDecodeError,
    ConfigurationError,
    NotInstalledError,
    NotStorableError,
    Retry,
    StoreError,
    StoreReplacedError,
    StoreUnavailableError,
    TaskNotFoundError,
    TaskStateError,
    TaskTooLargeError,
    UnknownTaskError,
)
from ._events import EventKind, TaskEvent
from ._models import TaskRecord, TaskState
from ._registry import Task, task
from ._schedule import periodic
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
    "Retry",
    "StoreError",
    "StoreReplacedError",
    "StoreUnavailableError",
    "Task",
    "TaskContext",
    "TaskEvent",
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
    "task",
]
