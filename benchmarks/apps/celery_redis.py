"""Celery on Redis: the endpoint sends a task with ``.delay()``; a separate Celery worker runs it.

``python -m benchmarks.apps.celery_redis prepare`` empties the benchmark's Redis database; the
worker is ``python -m celery -A benchmarks.apps.celery_redis:celery_app worker --concurrency 1
--loglevel WARNING`` (one pool process, otherwise Celery's defaults). ``.delay()`` is
Celery's usual call from FastAPI: synchronous, so it holds the event loop for the Redis
round trip.
"""

import os
import sys
import time

from celery import Celery  # type: ignore[import-untyped]
from fastapi import FastAPI
from redis import Redis

from benchmarks.apps.common import Registered, Server, record_run

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
celery_app = Celery("bench", broker=REDIS_URL)


@celery_app.task  # type: ignore[untyped-decorator]
def notify(hostname: str, message: str, sent_at: float) -> None:
    record_run(sent_at)


app = FastAPI()


@app.post("/abcd")
async def register(server: Server) -> Registered:
    notify.delay(server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)


if __name__ == "__main__":
    if sys.argv[1:] != ["prepare"]:
        sys.exit("usage: python -m benchmarks.apps.celery_redis prepare")
    Redis.from_url(REDIS_URL).flushdb()
