"""Dramatiq on Redis.

    prepare: empty the drain's Redis database
    enqueue N: `.send()` N times
    worker: `dramatiq benchmarks.drain.peers.dramatiq_redis --processes 1 --threads
            BENCH_CONCURRENCY` (one worker process, its tasks on threads; otherwise defaults)
"""

from __future__ import annotations

import sys

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from redis import Redis

from benchmarks.drain.work import REDIS_URL, work_sync

dramatiq.set_broker(RedisBroker(url=REDIS_URL))


@dramatiq.actor(actor_name="work")
def work() -> None:
    work_sync()


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["prepare"]:
            Redis.from_url(REDIS_URL).flushdb()
        case ["enqueue", count]:
            for _ in range(int(count)):
                work.send()
        case _:
            sys.exit("usage: python -m benchmarks.drain.peers.dramatiq_redis prepare|enqueue N")
