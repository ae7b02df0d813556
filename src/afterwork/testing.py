"""Helpers for your own tests. FastAPI's TestClient used to wait for background tasks; with
afterwork they run detached, so wait for them explicitly:

    from afterwork.testing import wait_for_tasks

    def test_signup_sends_mail(client):      # client = TestClient(app), inside `with`
        client.post("/signup", json={...})
        wait_for_tasks(app)                  # every runnable task has finished
        assert outbox == [...]

Without a running runner (a TestClient used without `with`), `wait_for_tasks` runs the
pending tasks itself, on a private event loop, before it returns.
"""

from __future__ import annotations

import asyncio
import time

from starlette.applications import Starlette

from ._app import Afterwork, afterwork_of

POLL_SECONDS = 0.01


def _pending(aw: Afterwork, deadline: float) -> int:
    """Tasks in hand or due before the deadline (a retry due in 1 s counts; a task delayed
    by an hour does not)."""
    runner = aw.runner
    local = runner.backlog if runner is not None else 0
    return local + aw.store.count_pending(time.time() + (deadline - time.monotonic()))


def wait_for_tasks(target: Starlette | Afterwork, timeout: float = 10.0) -> None:
    """Block until no task is queued (and due before the timeout), leased or running;
    TimeoutError otherwise."""
    aw = afterwork_of(target)
    deadline = time.monotonic() + timeout
    runner = aw.runner
    if runner is None or runner.loop is None or not runner.loop.is_running():
        asyncio.run(drain(aw, timeout))
        return
    while (left := _pending(aw, deadline)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} afterwork task(s) still pending after {timeout}s")
        time.sleep(POLL_SECONDS)


async def drain(target: Starlette | Afterwork, timeout: float = 10.0) -> None:
    """In async tests: run (or wait for) every runnable task on this event loop."""
    aw = afterwork_of(target)
    deadline = time.monotonic() + timeout
    own_runner = aw.runner is None or aw.runner.loop is not asyncio.get_running_loop()
    if own_runner:
        await aw.startup(run_tasks=True)
    try:
        while (left := _pending(aw, deadline)) > 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{left} afterwork task(s) still pending after {timeout}s")
            assert aw.runner is not None
            aw.runner.wake_threadsafe()
            await asyncio.sleep(POLL_SECONDS)
    finally:
        if own_runner:
            await aw.stop_runner()
