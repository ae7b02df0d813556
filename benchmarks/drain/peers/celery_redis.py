"""Celery on Redis.

    prepare: empty the drain's Redis database
    enqueue N: `.delay()` N times
    worker: `celery -A benchmarks.drain.peers.celery_redis:celery_app worker --pool threads
            --concurrency BENCH_CONCURRENCY --without-gossip --without-mingle --without-heartbeat`
            (one process, its tasks on threads, as Dramatiq's; otherwise Celery's defaults)
"""

from __future__ import annotations

import sys

from celery import Celery  # type: ignore[import-untyped]
from redis import Redis

from benchmarks.drain.work import REDIS_URL, work_sync

celery_app = Celery("drain", broker=REDIS_URL)


@celery_app.task(name="work")  # type: ignore[untyped-decorator]
def work() -> None:
    work_sync()


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["prepare"]:
            Redis.from_url(REDIS_URL).flushdb()
        case ["enqueue", count]:
            for _ in range(int(count)):
                work.delay()
        case _:
            sys.exit("usage: python -m benchmarks.drain.peers.celery_redis prepare|enqueue N")
