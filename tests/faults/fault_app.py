"""The service the fault suite breaks: each task logs its start, a tick every 0.2 s while it
runs, and its end, with its pid, on the machine's boot clock (`at`: real elapsed time, the
same in every process whatever their wall clocks say) and on the process's wall clock
(`wall`: shows a faked clock is in effect).

Settings come from FAULT_* environment variables; only those given are passed, so the app
also starts on an afterwork without them (to measure the old behaviour).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from typing import Any

from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks, current_task

app = FastAPI()
_options: dict[str, Any] = {
    "run_in_app": os.environ.get("FAULT_RUN_IN_APP", "1") == "1",
    "lease_seconds": float(os.environ.get("FAULT_LEASE_SECONDS", "2")),
    "poll_seconds": float(os.environ.get("FAULT_POLL_SECONDS", "0.2")),
    "max_attempts": 5,
}
_known = inspect.signature(Afterwork).parameters  # an older afterwork lacks some: measure it too
for env, option, kind in (("FAULT_GRACE_SECONDS", "grace_seconds", float),
                          ("FAULT_STORE_TIMEOUT_SECONDS", "store_timeout_seconds", float),
                          ("FAULT_LOCAL_BACKLOG", "local_backlog", int)):
    if os.environ.get(env) and option in _known:
        _options[option] = kind(os.environ[env])
Afterwork(app, **_options)
LOG = os.environ.get("FAULT_LOG", "faults.jsonl")
TICK_SECONDS = 0.2


def boot_clock() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _log(event: str, **fields: object) -> None:
    ctx = current_task()
    assert ctx is not None
    line = json.dumps({"event": event, "id": ctx.id, "pid": os.getpid(), "at": boot_clock(),
                       "wall": time.time(), "attempt": ctx.attempt, **fields}) + "\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)  # one write: lines never interleave
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def work(n: int, seconds: float, blob: str = "") -> None:
    _log("start", n=n)
    end = boot_clock() + seconds
    while boot_clock() < end:
        await asyncio.sleep(min(TICK_SECONDS, max(0.0, end - boot_clock())))
        _log("tick", n=n)
    _log("end", n=n)


def sync_work(n: int, seconds: float, blob: str = "") -> None:
    _log("start", n=n)
    end = boot_clock() + seconds
    while boot_clock() < end:
        time.sleep(min(TICK_SECONDS, max(0.0, end - boot_clock())))
        _log("tick", n=n)
    _log("end", n=n)


@app.post("/job/{n}")
async def job(n: int, tasks: BackgroundTasks, seconds: float = 0.05, sync: bool = False,
              pad: int = 0, chain: int = 1) -> dict[str, list[str]]:
    """`chain` tasks in one response (they run in order); `pad` bytes of argument each."""
    func = sync_work if sync else work
    return {"ids": [tasks.add_task(func, n, seconds, "x" * pad).id for _ in range(chain)]}
