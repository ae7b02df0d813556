"""The service the chaos suite kills: each task logs its start and end with its pid; a stepped
task also logs each call of each of its three steps."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time

from fastapi import FastAPI

import afterwork
from afterwork import Afterwork, BackgroundTasks, current_task

app = FastAPI()
Afterwork(app, lease_seconds=float(os.environ.get("CHAOS_LEASE_SECONDS", "2")),
          run_in_app=os.environ.get("CHAOS_RUN_IN_APP", "1") == "1")
LOG = os.environ.get("CHAOS_LOG", "chaos.jsonl")


def _log(**fields: object) -> None:
    line = (json.dumps(fields) + "\n").encode()
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # one write: lines never interleave
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


async def work(n: int, max_seconds: float) -> None:
    ctx = current_task()
    assert ctx is not None
    _log(event="start", id=ctx.id, n=n, pid=os.getpid(), at=time.time(), attempt=ctx.attempt)
    await asyncio.sleep(random.uniform(0, max_seconds))
    _log(event="end", id=ctx.id, n=n, pid=os.getpid(), at=time.time())


@app.post("/job/{n}")
async def job(n: int, tasks: BackgroundTasks, max_seconds: float = 0.05) -> dict[str, str]:
    return {"id": tasks.add_task(work, n, max_seconds).id}


STEPS = ("one", "two", "three")


async def _step_call(task_id: str, name: str, max_seconds: float) -> str:
    _log(event="step", id=task_id, step=name, pid=os.getpid(), at=time.time())
    await asyncio.sleep(random.uniform(0, max_seconds))
    return name


async def stepped_work(n: int, max_seconds: float) -> None:
    """Three steps, each a third of the work's time; a re-run replays the finished ones."""
    ctx = current_task()
    assert ctx is not None
    _log(event="start", id=ctx.id, n=n, pid=os.getpid(), at=time.time(), attempt=ctx.attempt)
    for name in STEPS:
        await afterwork.step(name, _step_call, ctx.id, name, max_seconds / len(STEPS))
    _log(event="end", id=ctx.id, n=n, pid=os.getpid(), at=time.time())


@app.post("/stepped/{n}")
async def stepped(n: int, tasks: BackgroundTasks, max_seconds: float = 0.05) -> dict[str, str]:
    return {"id": tasks.add_task(stepped_work, n, max_seconds).id}
