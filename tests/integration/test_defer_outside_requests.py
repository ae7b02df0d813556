"""`defer()` outside a request: which Afterwork it means, and that in async code it never
blocks the event loop on the store (here: a SQLite file whose write lock another connection
holds), yet the task lands and runs once the store lets it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from fastapi import FastAPI

from afterwork import Afterwork, defer

from . import app_tasks


def _stored(path: Path, task_id: str) -> bool:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT 1 FROM afterwork_tasks WHERE id = ?", (task_id,)).fetchone() is not None


def test_defer_in_async_code_returns_while_the_store_is_locked_and_the_task_lands_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tasks.db"
    aw = Afterwork(FastAPI(), url=f"sqlite:///{path}", store_timeout_seconds=1.0, poll_seconds=0.05)
    app_tasks.EVENTS.clear()

    async def scenario() -> None:
        await aw.startup()
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # the write lock, held past the store timeout
            loop_ticks = 0

            async def ticking() -> None:
                nonlocal loop_ticks
                while True:
                    loop_ticks += 1
                    await asyncio.sleep(0.01)

            ticker = asyncio.create_task(ticking())
            handle = defer(app_tasks.record, "deferred on the loop")  # must not wait for the lock
            assert handle.stored
            await asyncio.sleep(1.5)  # longer than the store timeout: a blocking write gave up
            assert loop_ticks > 50, "the event loop was blocked while the store was locked"
            assert not _stored(path, handle.id)  # still waiting for the lock, kept by the writer
            ticker.cancel()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        deadline = time.monotonic() + 30
        while ("deferred on the loop",) not in app_tasks.EVENTS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert _stored(path, handle.id)
        await aw.shutdown()

    asyncio.run(scenario())
    assert app_tasks.EVENTS == [("deferred on the loop",)]


def test_defer_outside_requests_means_the_afterwork_of_the_running_task(tmp_path: Path) -> None:
    """Two Afterworks in one process: a task run by the first defers into the first's store,
    though the second was made later (it would be "the latest" without a context)."""
    first = Afterwork(FastAPI(), url=f"sqlite:///{tmp_path / 'first.db'}", poll_seconds=0.05)
    Afterwork(FastAPI(), url=f"sqlite:///{tmp_path / 'second.db'}")
    app_tasks.EVENTS.clear()

    async def scenario() -> None:
        await first.startup()
        first.defer(app_tasks.defers_a_follow_up, "chained")
        deadline = time.monotonic() + 30
        while len(app_tasks.EVENTS) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await first.shutdown()

    asyncio.run(scenario())
    assert app_tasks.EVENTS == [("chained",), ("chained: follow-up",)]
    assert not (tmp_path / "second.db").exists()
