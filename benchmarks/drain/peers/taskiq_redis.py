"""Taskiq on Redis (stream broker, acknowledged).

    prepare: empty the drain's Redis database
    enqueue N: declare the consumer group (the broker's start-up; a group made later, by the
               worker, would start after the backlog), then `.kiq()` 500 at a time
    worker: `taskiq worker benchmarks.drain.peers.taskiq_redis:broker --workers 1
            --max-async-tasks BENCH_CONCURRENCY` (otherwise Taskiq's defaults)
"""

from __future__ import annotations

import asyncio
import sys

from redis import Redis
from taskiq_redis import RedisStreamBroker

from benchmarks.drain.work import REDIS_URL, chunks, work_async

broker = RedisStreamBroker(REDIS_URL)


@broker.task(task_name="work")
async def work() -> None:
    await work_async()


async def enqueue(count: int) -> None:
    await broker.startup()
    try:
        for size in chunks(count, 500):
            await asyncio.gather(*(work.kiq() for _ in range(size)))
    finally:
        await broker.shutdown()


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["prepare"]:
            Redis.from_url(REDIS_URL).flushdb()
        case ["enqueue", count]:
            asyncio.run(enqueue(int(count)))
        case _:
            sys.exit("usage: python -m benchmarks.drain.peers.taskiq_redis prepare|enqueue N")
