"""The workload every system serves, and the record each executed task leaves.

Every task execution appends one 8-byte float to the file named by ``BENCH_RECORD_FILE``:
the seconds between the request scheduling the task and the task starting. The harness
counts executions by the file's size and reads the enqueue-to-start delays from it; the
append is one ``write`` on an ``O_APPEND`` descriptor, so it works the same whether the
task runs in the app process or in a separate worker, and costs the task next to nothing.
"""

from __future__ import annotations

import os
import struct
import time
from ipaddress import IPv4Address

from fastapi import FastAPI
from pydantic import BaseModel

from afterwork import Afterwork, BackgroundTasks  # module level: FastAPI resolves annotations here

RECORD = struct.Struct("<d")
_RECORD_FD = os.open(
    os.environ.get("BENCH_RECORD_FILE", os.devnull), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
)


class Server(BaseModel):
    """The request body: details of a server to register."""

    hostname: str
    ip: IPv4Address
    cpus: int
    memory_gb: float
    os: str
    tags: list[str] = []


class Registered(BaseModel):
    """The response body."""

    hostname: str
    accepted: bool = True


def record_run(sent_at: float) -> None:
    """Record that a task started, and how long after ``sent_at`` (a ``time.time()``)."""
    os.write(_RECORD_FD, RECORD.pack(time.time() - sent_at))


async def notify(hostname: str, message: str, sent_at: float) -> None:
    """The task every afterwork variant schedules (module level: stored by name)."""
    record_run(sent_at)


def afterwork_app(**options: object) -> FastAPI:
    """The workload on afterwork; `options` go to `Afterwork` (url, run_in_app, ...).
    strict=True: a task that cannot be stored fails its request instead of running in memory."""
    app = FastAPI()
    Afterwork(app, strict=True, **options)  # type: ignore[arg-type]

    @app.post("/abcd")
    async def register(server: Server, tasks: BackgroundTasks) -> Registered:
        tasks.add_task(notify, server.hostname, message="registered", sent_at=time.time())
        return Registered(hostname=server.hostname)

    return app
