"""Module-level tasks that return things and report progress (stored, recovered by name)."""

from __future__ import annotations

import datetime as dt
import decimal
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from afterwork import current_task, progress, task


class Line(BaseModel):
    label: str
    amount: decimal.Decimal


class Report(BaseModel):
    month: str
    lines: list[Line]
    total: decimal.Decimal
    made_at: dt.datetime


MADE_AT = dt.datetime(2024, 5, 31, 23, 59, 58, 123456, tzinfo=dt.timezone.utc)


@task
async def build_report(month: str) -> Report:
    lines = [Line(label="rent", amount=decimal.Decimal("1200.10")),
             Line(label="power", amount=decimal.Decimal("0.30"))]
    return Report(month=month, lines=lines, total=sum((x.amount for x in lines), decimal.Decimal()),
                  made_at=MADE_AT)


@task
def zoned_time() -> dt.datetime:
    return dt.datetime(2024, 3, 10, 2, 30, tzinfo=ZoneInfo("Europe/Paris"))


@task
async def untyped_decimal():  # type: ignore[no-untyped-def]  # no annotation: tagged as stored
    return decimal.Decimal("3.14159265358979323846")


@task
async def returns_nothing() -> None:
    return None


@task
async def returns_a_lock() -> Any:
    import threading

    return threading.Lock()


@task(public_result=True)
async def public_answer(question: str) -> dict[str, str]:
    return {"question": question, "answer": "42"}


@task
async def private_answer(question: str) -> dict[str, str]:
    return {"question": question, "secret": "s3cr3t-result"}


@task(max_attempts=1)
async def always_fails() -> int:
    raise ValueError("the report's data source is gone")


@task
async def counts_a_lot(times: int) -> int:
    for i in range(times):
        progress(i + 1, total=times, note="counting")
    return times


@task(max_attempts=2, backoff_seconds=0.05)
async def fails_once_midway(total: int) -> str:
    ctx = current_task()
    assert ctx is not None
    progress(3 if ctx.attempt == 1 else 7, total=total, note=f"try {ctx.attempt}")
    if ctx.attempt == 1:
        raise ConnectionError("first attempt drops")
    return "done"


@task(public_result=True)
async def in_steps(steps: int, pause: float) -> str:
    import asyncio

    for i in range(steps):
        await asyncio.sleep(pause)
        progress(i + 1, total=steps, note=f"step {i + 1}")
    return f"{steps} steps"


@task
def waits_for_file(path: str) -> Report:
    deadline = time.monotonic() + 30
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return Report(month="2024-05", lines=[], total=decimal.Decimal("9.99"), made_at=MADE_AT)


if __name__ == "__main__":  # another process waits by id: python -m ... URL TASK_ID
    from afterwork import Afterwork

    aw = Afterwork(url=sys.argv[1], run_in_app=False)
    found = aw.result_sync(sys.argv[2], timeout=30)
    print(type(found).__name__, found.model_dump_json() if isinstance(found, BaseModel) else found,
          flush=True)
