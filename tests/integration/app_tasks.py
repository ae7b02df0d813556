"""Module-level tasks for the integration tests (storable, recovered by name)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import threading
import time
from typing import Any

from afterwork import current_task, task

EVENTS: list[tuple[Any, ...]] = []
GATE = threading.Event()
RUNNING_SYNC: list[int] = []
PEAK_SYNC: list[int] = [0]
_lock = threading.Lock()


async def record(label: str) -> None:
    EVENTS.append((label,))


async def fail(label: str) -> None:
    EVENTS.append((label,))
    raise RuntimeError(f"{label} failed on purpose")


FLAKY_FAILURES: dict[str, int] = {}


@task(max_attempts=3)
async def flaky(label: str, failures: int) -> None:
    ctx = current_task()
    assert ctx is not None
    EVENTS.append((label, ctx.id, ctx.attempt))
    if ctx.attempt <= failures:
        raise ConnectionError(f"attempt {ctx.attempt} of {label} fails")


@task(timeout_seconds=0.2, max_attempts=1)
async def hangs() -> None:
    await asyncio.sleep(30)


def exits() -> None:
    sys.exit(3)


def blocking(label: str) -> None:
    with _lock:
        RUNNING_SYNC.append(1)
        PEAK_SYNC[0] = max(PEAK_SYNC[0], len(RUNNING_SYNC))
    GATE.wait(10)
    with _lock:
        RUNNING_SYNC.pop()
    EVENTS.append((label,))


async def sleepy(label: str, seconds: float) -> None:
    await asyncio.sleep(seconds)
    EVENTS.append((label,))


def slow_sync(label: str, seconds: float) -> None:
    time.sleep(seconds)
    EVENTS.append((label,))


async def blocks_the_loop(label: str, seconds: float) -> None:
    time.sleep(seconds)  # deliberately blocking: the loop stalls, the lease must not lapse
    EVENTS.append((label,))


@task(max_attempts=3)
async def asks_for_retry(label: str) -> None:
    from afterwork import Retry

    ctx = current_task()
    assert ctx is not None
    EVENTS.append((label, ctx.attempt, time.time()))
    if ctx.attempt == 1:
        raise Retry("not yet", delay=0.3)


def typed_task(when: dt.datetime) -> None:
    EVENTS.append(("typed", when))


CONCURRENT: list[int] = [0]
PEAK: list[int] = [0]


async def in_limited_queue(label: str) -> None:
    CONCURRENT[0] += 1
    PEAK[0] = max(PEAK[0], CONCURRENT[0])
    await asyncio.sleep(0.2)
    CONCURRENT[0] -= 1
    EVENTS.append((label, time.time()))


@task(rate_limit=(2, 1.0))
async def rate_limited(label: str) -> None:
    EVENTS.append((label, time.time()))


async def stamp(label: str) -> None:
    EVENTS.append((label, time.time()))


def tick() -> None:
    ctx = current_task()
    assert ctx is not None
    EVENTS.append(("tick", ctx.id, os.getpid(), threading.get_ident()))


@task(timeout_seconds=0.3, max_attempts=2)
def overruns(label: str, seconds: float) -> None:
    """A def task that outlives its timeout: its thread cannot be stopped."""
    ctx = current_task()
    assert ctx is not None
    EVENTS.append((label, "start", ctx.attempt, time.monotonic()))
    time.sleep(seconds)
    EVENTS.append((label, "end", ctx.attempt, time.monotonic()))


async def defers_a_follow_up(label: str) -> None:
    """Defers another task from inside a task: it goes to the Afterwork running this one."""
    from afterwork import defer

    EVENTS.append((label,))
    defer(record, f"{label}: follow-up")
