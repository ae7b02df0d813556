"""BackgroundTasks, BackgroundTask and defer: Starlette's API, bound to the current request.

Inside a request (under `Afterwork(app)`) every task added, wherever the object was created,
joins that request's batch; the middleware stores the batch before the response starts.
Starlette's and FastAPI's own classes do the same once `Afterwork` is constructed (see
`_compat`): these subclasses add only a handle. Outside a request, or without `Afterwork`
installed, the classes behave exactly as Starlette's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec

import fastapi
import starlette.background

from . import _intake
from ._compat import add_bound, current_batch, handle_of
from ._errors import NotInstalledError
from ._handle import TaskHandle
from ._ids import new_id

P = ParamSpec("P")


class BackgroundTask(starlette.background.BackgroundTask):
    """Starlette's `BackgroundTask`; created during a request, it is stored with that request.

        response.background = BackgroundTask(notify, "db1", message="up")
    """

    def __init__(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
        super().__init__(func, *args, **kwargs)
        self.handle: TaskHandle = handle_of(self) or _unstored(func)


class BackgroundTasks(fastapi.BackgroundTasks):
    """FastAPI's `BackgroundTasks`, durable under `Afterwork(app)`.

    As an endpoint or dependency parameter, or created anywhere during a request (a helper
    needs nothing passed down or returned):

        def server_details(host: str) -> None:
            BackgroundTasks().add_task(notify, host, message="seen")
    """

    def add_task(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> TaskHandle:  # type: ignore[override]
        """Schedule `func(*args, **kwargs)` after the response; returns the task's handle."""
        batch = current_batch.get()
        if batch is not None and _ADDS_AS_STARLETTE:  # FastAPI's add_task would only call Starlette's
            return add_bound(self, batch, func, args, kwargs)
        super().add_task(func, *args, **kwargs)
        return handle_of(self.tasks[-1]) or _unstored(func)


def defer(func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
    """Schedule a task from anywhere.

    Inside a request it joins the request's batch (stored before the response starts, run
    after it). Outside a request it is stored at once: from a thread without an event loop
    this call returns once it is; in async code it never blocks the loop (the write is queued
    to afterwork's writer thread and done within its next group). Outside a request, the
    Afterwork meant is the one whose task or lifespan is running, else the one made last.

        defer(send_report, user_id=42)
    """
    batch = current_batch.get()
    if batch is not None:
        return batch.add(func, args, kwargs)
    intake = _intake.find()
    if intake is None:
        raise NotInstalledError(
            "defer() needs afterwork installed: call Afterwork(app) at start-up (or use "
            "BackgroundTasks inside a request)"
        )
    return intake.enqueue_now(func, args, kwargs)


# FastAPI's `BackgroundTasks.add_task` only passes the call on to Starlette's (0.115 to 0.165):
# afterwork's subclass goes to the request's batch directly, or through it if that changed.
_ADDS_AS_STARLETTE = set(fastapi.BackgroundTasks.add_task.__code__.co_names) <= {"super", "add_task"}


def _unstored(func: Callable[..., Any]) -> TaskHandle:
    return TaskHandle(new_id(), getattr(func, "__qualname__", repr(func)), False)
