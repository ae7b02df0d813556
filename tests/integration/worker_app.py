"""A web app that does not run tasks itself (run_in_app=False): `afterwork worker` does."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks

STARTED: list[str] = []


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    STARTED.append("yes")  # the worker runs the app's lifespan too
    yield


app = FastAPI(lifespan=lifespan)
aw = Afterwork(app, url=os.environ.get("AFTERWORK_URL", "memory://"), run_in_app=False,
               lease_seconds=float(os.environ.get("AFTERWORK_TEST_LEASE", "30")),
               poll_seconds=float(os.environ.get("AFTERWORK_TEST_POLL", "1")))


def write_line(path: str, text: str, seconds: float = 0.0) -> None:
    """Record start and end of each execution with this process's pid."""
    from afterwork import current_task

    ctx = current_task()
    start = time.time()
    time.sleep(seconds)
    with open(path, "a") as f:
        f.write(json.dumps({"text": text, "pid": os.getpid(), "task": ctx and ctx.id,
                            "start": start, "end": time.time(), "lifespan": bool(STARTED)}) + "\n")


@app.post("/work")
def work(path: str, text: str, tasks: BackgroundTasks, seconds: float = 0.0) -> dict[str, str]:
    return {"id": tasks.add_task(write_line, path, text, seconds).id}
