"""The task every system runs in the side-by-side drain (`benchmarks.drain.compare`), and how
its completions are counted.

Each task first does its work (`BENCH_TASK_SECONDS`: 0 for a no-op, 0.01 for 10 ms of awaited
sleep, or blocking sleep in the thread-based peers), then appends one 8-byte float, the
`time.time()` it finished, to the file named by `BENCH_RECORD_FILE` (one `write` on an
`O_APPEND` descriptor: atomic, from any process or thread). The harness counts completions by
the file's size and takes the rate from the first and last timestamps, the same way for every
system, whatever its store.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time

RECORD = struct.Struct("<d")
TASK_SECONDS = float(os.environ.get("BENCH_TASK_SECONDS", "0"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "64"))  # tasks at once per worker process
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/afterwork_drain")
_FD = os.open(os.environ.get("BENCH_RECORD_FILE", os.devnull), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def record() -> None:
    os.write(_FD, RECORD.pack(time.time()))


async def work_async() -> None:
    """The task body for asyncio systems."""
    if TASK_SECONDS:
        await asyncio.sleep(TASK_SECONDS)
    record()


def work_sync() -> None:
    """The task body for thread-based systems (Celery, Dramatiq): the sleep blocks its thread."""
    if TASK_SECONDS:
        time.sleep(TASK_SECONDS)
    record()


def chunks(count: int, size: int = 1000) -> list[int]:
    """`count` split into batches of at most `size` (enqueueing in batches keeps it quick)."""
    return [min(size, count - start) for start in range(0, count, size)]
