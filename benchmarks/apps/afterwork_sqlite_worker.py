"""afterwork on its embedded SQLite store, tasks run by a separate ``afterwork worker`` process.

The harness sets ``AFTERWORK_URL`` to a SQLite file in a fresh temporary directory; the worker
is ``python -m afterwork worker benchmarks.apps.afterwork_sqlite_worker:app``.
"""

import time

from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks
from benchmarks.apps.common import Registered, Server, record_run

app = FastAPI()
Afterwork(app, run_in_app=False, strict=True)  # strict: never fall back to memory


async def notify(hostname: str, message: str, sent_at: float) -> None:
    record_run(sent_at)


@app.post("/abcd")
async def register(server: Server, tasks: BackgroundTasks) -> Registered:
    tasks.add_task(notify, server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)
