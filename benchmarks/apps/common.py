"""The workload every system serves, and the record each executed task leaves.

Every task execution appends one 8-byte float to the file named by ``BENCH_RECORD_FILE``:
the seconds between the request scheduling the task and the task starting. The harness
counts executions by the file's size and reads the enqueue-to-start delays from it; the
append is one ``write`` on an ``O_APPEND`` descriptor, so it works the same whether the
task runs in the app process or in a separate worker, and costs the task next to nothing.
"""

from __future__ import annotations

import asyncio
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


TASK_SECONDS = float(os.environ.get("BENCH_TASK_SECONDS", "0"))  # work each task does (crash runs)


async def finish_run(sent_at: float) -> None:
    """`record_run` for `async def` tasks: after `BENCH_TASK_SECONDS` of awaited work, if set."""
    if TASK_SECONDS:
        await asyncio.sleep(TASK_SECONDS)
    record_run(sent_at)


def record_run(sent_at: float) -> None:
    """Record that a task started, and how long after ``sent_at`` (a ``time.time()``)."""
    if TASK_SECONDS and _in_thread():
        time.sleep(TASK_SECONDS)  # a `def` task: its work blocks its thread
    os.write(_RECORD_FD, RECORD.pack(time.time() - sent_at))


async def notify(hostname: str, message: str, sent_at: float) -> None:
    """The task every afterwork variant schedules (module level: stored by name)."""
    await finish_run(sent_at)


def _in_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


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
