"""afterwork on its embedded SQLite store, tasks run by the in-app runner.

The harness sets ``AFTERWORK_URL`` to a SQLite file in a fresh temporary directory.
"""

import time

from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks
from benchmarks.apps.common import Registered, Server, record_run

app = FastAPI()
Afterwork(app)


async def notify(hostname: str, message: str, sent_at: float) -> None:
    record_run(sent_at)


@app.post("/abcd")
async def register(server: Server, tasks: BackgroundTasks) -> Registered:
    tasks.add_task(notify, server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)
