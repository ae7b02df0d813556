"""An app whose single task slot is busy for a second per task: accepted tasks pile up in its
store, which is what the memory measurement needs (100,000 queued tasks)."""

import asyncio
import os

from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks
from benchmarks.apps.common import Registered, Server

app = FastAPI()
Afterwork(app, concurrency=1, url=os.environ["AFTERWORK_URL"])


async def slow(hostname: str) -> None:
    await asyncio.sleep(1.0)


@app.post("/abcd")
async def register(server: Server, tasks: BackgroundTasks) -> Registered:
    tasks.add_task(slow, server.hostname)
    return Registered(hostname=server.hostname)
