"""The baseline: FastAPI's own in-memory BackgroundTasks, with an ``async def`` task."""

import time

from fastapi import BackgroundTasks, FastAPI

from benchmarks.apps.common import Registered, Server, finish_run

app = FastAPI()


async def notify(hostname: str, message: str, sent_at: float) -> None:
    await finish_run(sent_at)


@app.post("/abcd")
async def register(server: Server, tasks: BackgroundTasks) -> Registered:
    tasks.add_task(notify, server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)
