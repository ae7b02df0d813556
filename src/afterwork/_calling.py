"""One attempt's call of a task's function: `async def` on the event loop, `def` on
afterwork's own threads, each under the task's timeout. A `def` call past its timeout keeps
running (a thread cannot be stopped): the attempt waits for it, so no retry runs beside it."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from contextlib import nullcontext
from typing import Any

import anyio
from starlette._utils import is_async_callable

from ._models import TaskRecord
from ._registry import Task
from ._threads import DaemonThreads

log = logging.getLogger("afterwork")

_IS_ASYNC: dict[Any, bool] = {}  # function -> async def? (Starlette's test, cached)


def plain_coroutine(func: Any, timeout: float | None) -> Any:
    """The function to await directly, without `call_attempt`'s frame and scopes: an `async
    def` with no timeout (most tasks). None: call `call_attempt`."""
    if timeout is not None:
        return None
    target = func.func if isinstance(func, Task) else func
    return target if _is_async(target) else None


def _is_async(target: Any) -> bool:
    is_async = _IS_ASYNC.get(target)
    if is_async is None:
        is_async = _IS_ASYNC[target] = is_async_callable(target)
    return is_async


async def call_attempt(
    record: TaskRecord, func: Any, args: list[Any], kwargs: dict[str, Any],
    timeout: float | None, threads: DaemonThreads, in_thread: dict[str, Future[Any]],
) -> Any:
    """The attempt's call; what the function returned. A `def` call is in `in_thread` (by
    task id) while it runs; the caller removes it."""
    target = func.func if isinstance(func, Task) else func
    is_async = _is_async(target)
    if timeout is None and is_async:
        return await target(*args, **kwargs)  # the common case, without a scope to enter
    if is_async:
        with anyio.fail_after(timeout) if timeout else nullcontext():
            return await target(*args, **kwargs)
    call = in_thread[record.id] = threads.submit(target, *args, **kwargs)
    try:
        with anyio.fail_after(timeout) if timeout else nullcontext():
            return await asyncio.wrap_future(call)  # cancelled before it started: never runs
    except TimeoutError:
        if not call.done():
            # The thread runs on: the attempt's outcome waits for it, lease kept, so
            # that no retry (here or elsewhere) runs beside it.
            log.warning("afterwork: task %s (%s) timed out after %ss but its thread cannot "
                        "be stopped; its retry waits until the thread returns",
                        record.id, record.name, timeout)
            await asyncio.wait([asyncio.wrap_future(call)])
        raise
