"""PgQueuer on PostgreSQL: the endpoint enqueues a job; a separate PgQueuer worker runs it.

``python -m benchmarks.apps.pgqueuer_pg prepare`` creates the database and PgQueuer's schema if
missing and empties its queue and logs; ``python -m benchmarks.apps.pgqueuer_pg worker`` runs
what ``pgq run benchmarks.apps.pgqueuer_pg:worker`` runs (PgQueuer's defaults, logging at
WARNING).
"""

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
import pgqueuer
from fastapi import FastAPI, Request
from pgqueuer import AsyncpgPoolDriver, Job, PgQueuer, Queries

from benchmarks.apps.common import Registered, Server, finish_run
from benchmarks.apps.pg import ensure_database

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/afterwork_bench")


@asynccontextmanager
async def worker() -> AsyncIterator[PgQueuer]:
    """The worker factory (as for ``pgq run``): one queue manager with a ``notify`` entrypoint."""
    async with asyncpg.create_pool(PG_URL, min_size=2, max_size=4) as pool:
        pgq = PgQueuer.from_asyncpg_pool(pool)

        @pgq.entrypoint("notify")
        async def notify(job: Job) -> None:
            await finish_run(json.loads(job.payload or b"{}")["sent_at"])

        yield pgq


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with asyncpg.create_pool(PG_URL, min_size=4, max_size=10) as pool:
        app.state.queries = Queries(AsyncpgPoolDriver(pool))
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/abcd")
async def register(server: Server, request: Request) -> Registered:
    payload = {"hostname": server.hostname, "message": "registered", "sent_at": time.time()}
    await request.app.state.queries.enqueue("notify", json.dumps(payload).encode())
    return Registered(hostname=server.hostname)


async def _prepare() -> None:
    await ensure_database(PG_URL)
    async with asyncpg.create_pool(PG_URL, min_size=1, max_size=2) as pool:
        queries = Queries(AsyncpgPoolDriver(pool))
        if not await queries.schema_is_installed():
            await queries.install()
        await queries.clear_queue()
        await queries.clear_queue_log()
        await queries.clear_statistics_log()


if __name__ == "__main__":
    if sys.argv[1:] == ["prepare"]:
        asyncio.run(_prepare())
    elif sys.argv[1:] == ["worker"]:
        logging.getLogger("pgqueuer").setLevel(logging.WARNING)
        asyncio.run(pgqueuer.run(worker))
    else:
        sys.exit("usage: python -m benchmarks.apps.pgqueuer_pg prepare|worker")
