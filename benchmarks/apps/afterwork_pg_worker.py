"""afterwork on PostgreSQL, web-only app; tasks run by a separate ``afterwork worker``.

The worker is ``python -m afterwork worker benchmarks.apps.afterwork_pg_worker:app``; prepare
with ``python -m benchmarks.apps.afterwork_pg prepare``.
"""

import time

from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks
from benchmarks.apps.afterwork_pg import PG_URL
from benchmarks.apps.common import Registered, Server, record_run

app = FastAPI()
Afterwork(app, url=PG_URL, run_in_app=False, strict=True)


async def notify(hostname: str, message: str, sent_at: float) -> None:
    record_run(sent_at)


@app.post("/abcd")
async def register(server: Server, tasks: BackgroundTasks) -> Registered:
    tasks.add_task(notify, server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)
