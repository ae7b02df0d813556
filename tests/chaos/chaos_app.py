"""The service the chaos suite kills: each task logs its start and end with its pid."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time

from fastapi import FastAPI

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
