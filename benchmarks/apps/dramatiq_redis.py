"""Dramatiq on Redis: the endpoint sends a message with ``.send()``; a separate Dramatiq worker
runs it.

``python -m benchmarks.apps.dramatiq_redis prepare`` empties the benchmark's Redis database;
the worker is ``python -m dramatiq benchmarks.apps.dramatiq_redis --processes 1`` (one worker
process with Dramatiq's default 8 threads). ``.send()`` is Dramatiq's only enqueue call:
synchronous, so from an ``async def`` endpoint it holds the event loop for the Redis round
trip, as Celery's ``.delay()`` does.
"""

import os
import sys
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from fastapi import FastAPI
from redis import Redis

from benchmarks.apps.common import Registered, Server, record_run

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
dramatiq.set_broker(RedisBroker(url=REDIS_URL))


@dramatiq.actor(actor_name="notify")
def notify(hostname: str, message: str, sent_at: float) -> None:
    record_run(sent_at)


app = FastAPI()


@app.post("/abcd")
async def register(server: Server) -> Registered:
    notify.send(server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)


if __name__ == "__main__":
    if sys.argv[1:] != ["prepare"]:
        sys.exit("usage: python -m benchmarks.apps.dramatiq_redis prepare")
    Redis.from_url(REDIS_URL).flushdb()
