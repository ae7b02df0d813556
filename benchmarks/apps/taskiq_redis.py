"""Taskiq on Redis (stream broker, acknowledged): the endpoint kicks a task; a separate
``taskiq worker`` runs it.

``python -m benchmarks.apps.taskiq_redis prepare`` empties the benchmark's Redis database;
the worker is ``python -m taskiq worker benchmarks.apps.taskiq_redis:broker --workers 1
--log-level WARNING`` (one worker process, otherwise Taskiq's defaults).
"""

import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis import Redis
from taskiq_redis import RedisStreamBroker

from benchmarks.apps.common import Registered, Server, finish_run

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
broker = RedisStreamBroker(REDIS_URL)


@broker.task
async def notify(hostname: str, message: str, sent_at: float) -> None:
    await finish_run(sent_at)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await broker.startup()
    yield
    await broker.shutdown()


app = FastAPI(lifespan=lifespan)


@app.post("/abcd")
async def register(server: Server) -> Registered:
    await notify.kiq(server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)


if __name__ == "__main__":
    if sys.argv[1:] != ["prepare"]:
        sys.exit("usage: python -m benchmarks.apps.taskiq_redis prepare")
    Redis.from_url(REDIS_URL).flushdb()
