"""What `Afterwork(app)` changes in FastAPI and Starlette, each internal named and checked.

One line of set-up must make every task durable, whichever class added it and wherever the
object was made. So, once per process, Starlette's own `BackgroundTask` and `BackgroundTasks`
learn to join the current request's batch:

- a `BackgroundTask` made while a request is handled (directly, or by `add_task` of
  Starlette's, FastAPI's or afterwork's `BackgroundTasks`) joins that request's batch, which
  the middleware stores before the response starts;
- calling a bound task (Starlette's `Response.__call__` calls its background after the last
  body chunk, with the request's `yield` dependencies still open; `BackgroundTasks.__call__`
  calls each task in turn, FastAPI's inside a telemetry span) runs the batch up to that task
  there: its in-memory tasks, or, under a test client, all of them;
- outside a request (no batch), and in a process where `Afterwork` was never constructed, the
  classes behave exactly as Starlette's: nothing here runs.

`add_task` during a request makes the bound task directly (`add_bound`: the attributes
Starlette's `__init__` sets, then the batch's), not through Starlette's `add_task`, the
`BackgroundTask` constructor and the binding around it: the same object, a quarter of the
calls (docs/performance.md). `BackgroundTask.is_async` is then worked out when first read
(`_IsAsync`): a task bound to its request's batch runs through the batch and never reads it.
Both are checked against Starlette's code at start-up, and left out (the constructor path
kept) if it changed.

FastAPI builds a plain `fastapi.BackgroundTasks()` for a parameter typed as any subclass; it
looks the class up as `fastapi.dependencies.utils.BackgroundTasks`, which is pointed at
afterwork's subclass so that `add_task` returns a handle there too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import fastapi
import fastapi.dependencies.utils
import starlette
import starlette.background
from starlette._utils import is_async_callable

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._batch import RequestBatch
    from ._handle import TaskHandle

current_batch: ContextVar[RequestBatch | None] = ContextVar("afterwork_batch", default=None)

_Task = starlette.background.BackgroundTask
_Tasks = starlette.background.BackgroundTasks
_ORIGINAL_TASK_INIT = _Task.__init__
_ORIGINAL_TASK_CALL = _Task.__call__
_ORIGINAL_TASKS_INIT = _Tasks.__init__
_ORIGINAL_TASKS_CALL = _Tasks.__call__
_ORIGINAL_TASKS_ADD = _Tasks.add_task
_lock = threading.Lock()
_patched = False
_direct = False  # add_bound makes tasks itself (Starlette's constructor and add_task as checked)
# What Starlette's `BackgroundTask.__init__` and `BackgroundTasks.add_task` refer to, when
# add_bound may stand in for them.
_TASK_INIT_NAMES = {"func", "args", "kwargs", "is_async", "is_async_callable"}
_TASKS_ADD_NAMES = {"BackgroundTask", "tasks", "append"}

BATCH_ATTR = "_afterwork_batch"
HANDLE_ATTR = "_afterwork_handle"


def _bind(task: starlette.background.BackgroundTask, batch: RequestBatch) -> None:
    setattr(task, BATCH_ATTR, batch)
    setattr(task, HANDLE_ATTR, batch.add(task.func, task.args, task.kwargs))


def add_bound(tasks: Any, batch: RequestBatch, func: Callable[..., Any], args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> TaskHandle:
    """`tasks.add_task(func, *args, **kwargs)` during a request: the `BackgroundTask` Starlette's
    `add_task` would make, bound to `batch`, appended; returns its handle."""
    if not _direct:
        _ORIGINAL_TASKS_ADD(tasks, func, *args, **kwargs)
        handle: TaskHandle = handle_of(tasks.tasks[-1])
        return handle
    task = _Task.__new__(_Task)
    attrs = task.__dict__
    attrs["func"], attrs["args"], attrs["kwargs"] = func, args, kwargs
    attrs[HANDLE_ATTR] = handle = batch.add(func, args, kwargs)  # a twin's, for a repeated key
    attrs[BATCH_ATTR] = batch
    tasks.tasks.append(task)
    return handle


class _IsAsync:
    """`BackgroundTask.is_async` for a task made by `add_bound`, worked out when first read
    (Starlette's `__init__` sets it on the instance, which takes precedence)."""

    def __get__(self, task: Any, owner: type | None = None) -> Any:
        if task is None:
            return self
        if "func" not in task.__dict__:
            raise AttributeError("is_async")
        value = task.__dict__["is_async"] = is_async_callable(task.func)
        return value


def _tasks_add(self: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    batch = current_batch.get()
    if batch is None:
        _ORIGINAL_TASKS_ADD(self, func, *args, **kwargs)
    else:
        add_bound(self, batch, func, args, kwargs)


def _task_init(self: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    _ORIGINAL_TASK_INIT(self, func, *args, **kwargs)
    batch = current_batch.get()
    if batch is not None:
        _bind(self, batch)


async def _task_call(self: Any) -> None:
    batch: RequestBatch | None = self.__dict__.get(BATCH_ATTR)
    current = current_batch.get()
    if batch is not None and batch is current:
        if (due := batch.run_here(self.__dict__.get(HANDLE_ATTR))) is not None:
            await due
        return
    if current is not None:  # made outside this request (at import, say): never silent
        current.intake.planner.warn_not_covered(self.func)
    await _ORIGINAL_TASK_CALL(self)


def _tasks_init(self: Any, tasks: Sequence[starlette.background.BackgroundTask] | None = None) -> None:
    _ORIGINAL_TASKS_INIT(self, tasks)
    batch = current_batch.get()
    if batch is not None:
        self.__dict__[BATCH_ATTR] = batch
        for task in self.tasks:  # made before the request, handed in now: they join it
            if task.__dict__.get(BATCH_ATTR) is not batch:
                _bind(task, batch)


_Call = Callable[[Any], Coroutine[Any, Any, None]]


def _running_the_rest(original: _Call) -> _Call:
    """`BackgroundTasks.__call__` (Starlette's, or FastAPI's with its span per task) as it is:
    each bound task runs the batch up to itself; then, if this object belongs to the request,
    the rest of the batch (tasks that came by `defer()` or objects no response carried)."""

    async def call(self: Any) -> None:
        await original(self)
        batch: RequestBatch | None = self.__dict__.get(BATCH_ATTR)
        due = batch.run_here() if batch is not None and batch is current_batch.get() else None
        if due is not None:
            await due

    return call


def handle_of(task: starlette.background.BackgroundTask) -> Any:
    """The handle `batch.add` gave a bound task, or None."""
    return task.__dict__.get(HANDLE_ATTR)


def install(injected: type[fastapi.BackgroundTasks]) -> None:
    """Patch Starlette's classes and FastAPI's injection, once per process (idempotent).

    Each internal relied on is checked first; a FastAPI or Starlette that moved one fails
    here, at start-up, with the versions named, never with tasks silently left in memory."""
    global _patched, _direct
    with _lock:
        if _patched:
            return
        _check_internals()
        _direct = (set(_ORIGINAL_TASK_INIT.__code__.co_names) == _TASK_INIT_NAMES
                   and set(_ORIGINAL_TASKS_ADD.__code__.co_names) == _TASKS_ADD_NAMES
                   and "is_async" not in vars(_Task))
        if _direct:
            _Task.is_async = _IsAsync()  # type: ignore[assignment]
        _Tasks.add_task = _tasks_add  # type: ignore[method-assign]
        _Task.__init__ = _task_init  # type: ignore[method-assign]
        _Task.__call__ = _task_call  # type: ignore[method-assign]
        _Tasks.__init__ = _tasks_init  # type: ignore[method-assign]
        _Tasks.__call__ = _running_the_rest(_ORIGINAL_TASKS_CALL)  # type: ignore[method-assign,assignment]
        fastapi.BackgroundTasks.__call__ = _running_the_rest(  # type: ignore[method-assign,assignment]
            fastapi.BackgroundTasks.__call__)
        fastapi.dependencies.utils.BackgroundTasks = injected  # type: ignore[attr-defined]
        _patched = True


def _check_internals() -> None:
    missing = []
    if getattr(fastapi.dependencies.utils, "BackgroundTasks", None) is not fastapi.BackgroundTasks:
        missing.append("fastapi.dependencies.utils.BackgroundTasks (the class FastAPI injects)")
    if not issubclass(fastapi.BackgroundTasks, _Tasks):
        missing.append("fastapi.BackgroundTasks subclassing starlette.background.BackgroundTasks")
    if "add_task" not in vars(_Tasks) or "tasks" not in _ORIGINAL_TASKS_INIT.__code__.co_names:
        missing.append("starlette.background.BackgroundTasks.add_task/.tasks")
    if missing:
        raise ConfigurationError(
            f"afterwork cannot make this FastAPI {fastapi.__version__} / Starlette "
            f"{starlette.__version__} durable: it relies on {'; '.join(missing)}, which "
            "changed. Pin the versions afterwork supports (see its pyproject.toml) or upgrade "
            "afterwork"
        )


def require_asyncio() -> None:
    """afterwork's runner lives on asyncio's loop: anything else is refused, saying so."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio, anyio's other backend
        raise ConfigurationError(
            "afterwork runs on asyncio, and this app is served on another event loop (trio?): its runner, "
            "writer hand-offs and leases use asyncio's loop. Serve the app on asyncio (uvicorn "
            "and hypercorn's default; TestClient(app, backend='asyncio')), or remove "
            "Afterwork(app) to keep Starlette's in-memory tasks"
        ) from None


def discarding(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an exception handler: the request it answers failed, so its tasks are dropped."""

    def discard() -> None:
        batch = current_batch.get()
        if batch is not None:
            batch.discard()

    if is_async_callable(handler):
        async def async_handler(request: Any, exc: Exception) -> Any:
            discard()
            return await handler(request, exc)

        wrapped: Callable[..., Any] = async_handler
    else:
        def sync_handler(request: Any, exc: Exception) -> Any:
            discard()
            return handler(request, exc)

        wrapped = sync_handler
    wrapped._afterwork = True  # type: ignore[attr-defined]
    return wrapped



