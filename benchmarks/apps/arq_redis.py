"""arq on Redis: the endpoint enqueues a job; a separate arq worker runs it.

``python -m benchmarks.apps.arq_redis prepare`` empties the benchmark's Redis database;
``python -m benchmarks.apps.arq_redis worker`` runs arq's worker (defaults, logging at WARNING).
"""

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq import ArqRedis, create_pool, run_worker
from arq.connections import RedisSettings
from fastapi import FastAPI, Request

from benchmarks.apps.common import Registered, Server, finish_run

REDIS = RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"))


async def notify(ctx: dict[str, Any], hostname: str, message: str, sent_at: float) -> None:
    await finish_run(sent_at)


class WorkerSettings:
    functions = (notify,)
    redis_settings = REDIS


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.arq = await create_pool(REDIS)
    yield
    await app.state.arq.aclose()


app = FastAPI(lifespan=lifespan)


@app.post("/abcd")
async def register(server: Server, request: Request) -> Registered:
    pool: ArqRedis = request.app.state.arq
    await pool.enqueue_job("notify", server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)


async def _flush() -> None:
    pool = await create_pool(REDIS)
    await pool.flushdb()
    await pool.aclose()


if __name__ == "__main__":
    if sys.argv[1:] == ["prepare"]:
        asyncio.run(_flush())
    elif sys.argv[1:] == ["worker"]:
        logging.basicConfig(level=logging.WARNING)
        run_worker(WorkerSettings)  # type: ignore[arg-type]
    else:
        sys.exit("usage: python -m benchmarks.apps.arq_redis prepare|worker")
