"""PgQueuer on PostgreSQL.

    prepare: create the database and PgQueuer's schema if missing, empty its queue and logs
    enqueue N: `Queries.enqueue` with lists of 1,000 jobs
    worker: what `pgq run benchmarks.drain.peers.pgqueuer_pg:factory` runs, with
            `max_concurrent_tasks=BENCH_CONCURRENCY` (otherwise PgQueuer's defaults)
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
import pgqueuer
from pgqueuer import AsyncpgPoolDriver, Job, PgQueuer, Queries

from benchmarks.apps.pg import ensure_database
from benchmarks.drain.work import CONCURRENCY, PG_URL, chunks, work_async


@asynccontextmanager
async def factory() -> AsyncIterator[PgQueuer]:
    async with asyncpg.create_pool(PG_URL, min_size=2, max_size=4) as pool:
        pgq = PgQueuer.from_asyncpg_pool(pool)

        @pgq.entrypoint("work")
        async def work(job: Job) -> None:
            await work_async()

        yield pgq


async def prepare() -> None:
    await ensure_database(PG_URL)
    async with asyncpg.create_pool(PG_URL, min_size=1, max_size=2) as pool:
        queries = Queries(AsyncpgPoolDriver(pool))
        if not await queries.schema_is_installed():
            await queries.install()
        await queries.clear_queue()
        await queries.clear_queue_log()
        await queries.clear_statistics_log()


async def enqueue(count: int) -> None:
    async with asyncpg.create_pool(PG_URL, min_size=1, max_size=2) as pool:
        queries = Queries(AsyncpgPoolDriver(pool))
        for size in chunks(count):
            await queries.enqueue(["work"] * size, [None] * size, [0] * size)


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["prepare"]:
            asyncio.run(prepare())
        case ["enqueue", count]:
            asyncio.run(enqueue(int(count)))
        case ["worker"]:
            logging.getLogger("pgqueuer").setLevel(logging.WARNING)
            asyncio.run(pgqueuer.run(factory, max_concurrent_tasks=CONCURRENCY))
        case _:
            sys.exit("usage: python -m benchmarks.drain.peers.pgqueuer_pg prepare|enqueue N|worker")
