"""arq on Redis.

    prepare: empty the drain's Redis database
    enqueue N: `enqueue_job` 500 at a time
    worker: arq's worker with `max_jobs=BENCH_CONCURRENCY` and `poll_delay=0.01` s (arq's
            default 0.5 s pause between polls, 100 jobs or so a poll, would cap it near
            200 tasks/s); otherwise arq's defaults
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from arq import create_pool, run_worker
from arq.connections import RedisSettings

from benchmarks.drain.work import CONCURRENCY, REDIS_URL, chunks, work_async

REDIS = RedisSettings.from_dsn(REDIS_URL)
POLL_DELAY_SECONDS = float(os.environ.get("BENCH_ARQ_POLL_DELAY", "0.01"))


async def work(ctx: dict[str, Any]) -> None:
    await work_async()


class WorkerSettings:
    functions = (work,)
    redis_settings = REDIS
    max_jobs = CONCURRENCY
    poll_delay = POLL_DELAY_SECONDS


async def flush() -> None:
    pool = await create_pool(REDIS)
    await pool.flushdb()
    await pool.aclose()


async def enqueue(count: int) -> None:
    pool = await create_pool(REDIS)
    try:
        for size in chunks(count, 500):
            await asyncio.gather(*(pool.enqueue_job("work") for _ in range(size)))
    finally:
        await pool.aclose()


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["prepare"]:
            asyncio.run(flush())
        case ["enqueue", count]:
            asyncio.run(enqueue(int(count)))
        case ["worker"]:
            logging.basicConfig(level=logging.WARNING)
            run_worker(WorkerSettings)  # type: ignore[arg-type]
        case _:
            sys.exit("usage: python -m benchmarks.drain.peers.arq_redis prepare|enqueue N|worker")
