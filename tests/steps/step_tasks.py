"""Tasks made of steps, for the step tests (module level: storable, found again by name).
Each step function appends a line to a JSONL file per call, so the tests count real calls;
the tasks choose how an attempt goes from their arguments and `current_task().attempt`."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass

import afterwork
from afterwork import current_task, task


def called(path: str, step: str, seconds: float = 0.0) -> str:
    """A step's effect: one line per call (the task, the attempt, this process), then a pause
    (the window a test kills the process in)."""
    ctx = current_task()
    with open(path, "a") as f:
        f.write(json.dumps({"step": step, "task": ctx and ctx.id, "attempt": ctx and ctx.attempt,
                            "pid": os.getpid(), "at": time.time()}) + "\n")
    time.sleep(seconds)
    return f"{step}-done"


async def called_async(path: str, step: str, seconds: float = 0.0) -> str:
    return called(path, step, seconds)


@dataclass
class Receipt:
    number: int
    at: dt.datetime


def receipt(path: str) -> Receipt:
    called(path, "receipt")
    return Receipt(7, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc))


@task(max_attempts=3, backoff_seconds=0.01)
async def three_steps(path: str, fail_second_on: int = 0, seconds: float = 0.0,
                      once: bool = False) -> None:
    """Steps one, two, three; `fail_second_on`: step two raises on that attempt; `seconds`:
    step two takes that long (a test kills the process meanwhile); `once`: step two runs at
    most once."""
    attempt = current_task().attempt  # type: ignore[union-attr]
    first = await afterwork.step("one", called_async, path, "one")
    assert first == "one-done"

    async def two(path: str) -> str:
        result = called(path, "two", seconds)
        if attempt == fail_second_on:
            raise ConnectionError(f"step two fails on attempt {attempt}")
        return result

    await afterwork.step("two", two, path, once=once)
    await afterwork.step("three", called_async, path, "three")


@task(max_attempts=3, backoff_seconds=0.01)
def three_steps_sync(path: str, fail_second_on: int = 0, seconds: float = 0.0,
                     once: bool = False) -> None:
    """`three_steps` as a `def` task, with step_sync."""
    attempt = current_task().attempt  # type: ignore[union-attr]
    afterwork.step_sync("one", called, path, "one")

    def two(path: str) -> str:
        result = called(path, "two", seconds)
        if attempt == fail_second_on:
            raise ConnectionError(f"step two fails on attempt {attempt}")
        return result

    afterwork.step_sync("two", two, path, once=once)
    afterwork.step_sync("three", called, path, "three")


@task(max_attempts=3, backoff_seconds=0.01)
async def renamed_between_attempts(path: str) -> None:
    """The code 'changes' between attempts: attempt 1 calls 'reserve', later ones 'charge'."""
    attempt = current_task().attempt  # type: ignore[union-attr]
    await afterwork.step("reserve" if attempt == 1 else "charge", called_async, path, "first")
    if attempt == 1:
        raise ConnectionError("the first attempt fails after its step")


@task(max_attempts=3, backoff_seconds=0.01)
async def typed_result(path: str) -> None:
    """A step returning a dataclass with a datetime: the task gets the same value whether the
    step ran or was replayed."""
    attempt = current_task().attempt  # type: ignore[union-attr]
    got = await afterwork.step("receipt", receipt, path)
    assert isinstance(got, Receipt) and got.at.tzinfo is not None, got
    with open(path, "a") as f:
        f.write(json.dumps({"seen": got.number, "at": got.at.isoformat(), "attempt": attempt}) + "\n")
    if attempt == 1:
        raise ConnectionError("fail after the step, to replay it")


@task(max_attempts=2, backoff_seconds=0.01)
async def step_retries(path: str) -> None:
    """A step with its own retries: its first two calls raise, the third returns."""
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        called(path, "flaky")
        if calls["n"] < 3:
            raise ConnectionError(f"call {calls['n']} fails")
        return "ok"

    assert await afterwork.step("flaky", flaky, retries=2, retry_delay=0.01) == "ok"


async def no_steps(path: str) -> None:
    called(path, "plain")


async def steps_and_own_progress(path: str) -> None:
    """Two steps, then the task's own progress report, which wins over the steps'."""
    await afterwork.step("one", called_async, path, "one")
    await afterwork.step("two", called_async, path, "two")
    afterwork.progress(7, total=9, note="own")
