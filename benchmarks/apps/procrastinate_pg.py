"""Procrastinate on PostgreSQL: the endpoint defers a job; a separate Procrastinate worker runs it.

``python -m benchmarks.apps.procrastinate_pg prepare`` creates the database and Procrastinate's
schema if missing and empties its jobs; ``python -m benchmarks.apps.procrastinate_pg worker``
runs one worker (Procrastinate's defaults, logging at WARNING).
"""

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI
from procrastinate import App, PsycopgConnector

from benchmarks.apps.common import Registered, Server, finish_run
from benchmarks.apps.pg import ensure_database

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/afterwork_bench")
queue = App(connector=PsycopgConnector(conninfo=PG_URL))


@queue.task(name="notify")
async def notify(hostname: str, message: str, sent_at: float) -> None:
    await finish_run(sent_at)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with queue.open_async():
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/abcd")
async def register(server: Server) -> Registered:
    await notify.defer_async(hostname=server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)


async def _prepare() -> None:
    await ensure_database(PG_URL)
    conn = await asyncpg.connect(PG_URL)
    try:
        installed = await conn.fetchval("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        if installed:
            await conn.execute("TRUNCATE procrastinate_jobs CASCADE")
    finally:
        await conn.close()
    if not installed:
        async with queue.open_async():
            await queue.schema_manager.apply_schema_async()


async def _worker() -> None:
    async with queue.open_async():
        await queue.run_worker_async()


if __name__ == "__main__":
    if sys.argv[1:] == ["prepare"]:
        asyncio.run(_prepare())
    elif sys.argv[1:] == ["worker"]:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(_worker())
    else:
        sys.exit("usage: python -m benchmarks.apps.procrastinate_pg prepare|worker")
