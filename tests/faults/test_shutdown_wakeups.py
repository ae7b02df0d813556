"""A runner's shutdown never hangs on a wake-up that lands with its cancel.

Before Python 3.12, `asyncio.wait_for` swallows a cancellation delivered in the loop step
where the awaited event completes (CPython gh-86296). The runner's poll loop waited that way,
and PostgreSQL's LISTEN wake-ups set its event often, so now and then the loop survived its
cancel and the app's shutdown (a TestClient's exit, a deploy's SIGTERM) waited forever. This
test lands a wake-up at every loop step around the cancel, on the real runner and a real
SQLite file; on an affected Python it hung at one of them before the fix.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fastapi import FastAPI

from afterwork import Afterwork

STEPS_AROUND_CANCEL = 8  # wake-up to cancel: 0..7 loop steps, covering the whole window
ROUNDS = 3
SHUTDOWN_BOUND_SECONDS = 4.0  # far below the runner's own give-up bound (store timeout + 1 s)


async def _cycles(aw: Afterwork) -> list[int]:
    hung = []
    for _ in range(ROUNDS):
        for steps in range(STEPS_AROUND_CANCEL):
            await aw.startup()
            await asyncio.sleep(0.02)  # the poll loop is in its timed wait now
            aw.runner.wake_threadsafe()
            for _ in range(steps):
                await asyncio.sleep(0)
            try:
                await asyncio.wait_for(aw.shutdown(), SHUTDOWN_BOUND_SECONDS)
            except asyncio.TimeoutError:
                hung.append(steps)
                return hung  # the runner is wedged; nothing more to learn from this app
            left = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("afterwork-")]
            assert left == [], f"runner loops still alive after shutdown: {left}"
    return hung


def test_shutdown_returns_whenever_a_wake_up_meets_the_cancel(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    aw = Afterwork(FastAPI(), url=f"sqlite:///{tmp_path / 'tasks.db'}", poll_seconds=5.0,
                   store_timeout_seconds=5.0)
    with caplog.at_level(logging.WARNING, logger="afterwork"):
        hung = asyncio.run(_cycles(aw))
    assert hung == [], (f"shutdown hung when the wake-up came {hung[0]} loop step(s) before the "
                        "cancel: a runner loop swallowed its cancellation")
    assert "did not stop when cancelled" not in caplog.text
