"""afterwork on its embedded SQLite store, tasks run by the in-app runner.

The harness sets ``AFTERWORK_URL`` to a SQLite file in a fresh temporary directory. Every
afterwork app here uses ``strict=True``: a task that cannot be stored fails its request
instead of running in memory, so each accepted task in the table was stored first.
"""

import time

from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks
from benchmarks.apps.common import Registered, Server, record_run

app = FastAPI()
Afterwork(app, strict=True)  # strict: never fall back to memory


async def notify(hostname: str, message: str, sent_at: float) -> None:
    record_run(sent_at)


@app.post("/abcd")
async def register(server: Server, tasks: BackgroundTasks) -> Registered:
    tasks.add_task(notify, server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)
