"""Procrastinate on PostgreSQL.

    prepare: create the database and Procrastinate's schema if missing, empty its jobs
    enqueue N: `batch_defer_async` of 1,000 jobs at a time
    worker: one `run_worker_async(concurrency=BENCH_CONCURRENCY)` (otherwise its defaults)
"""

from __future__ import annotations

import asyncio
import logging
import sys

import asyncpg  # type: ignore[import-untyped]
from procrastinate import App, PsycopgConnector

from benchmarks.apps.pg import ensure_database
from benchmarks.drain.work import CONCURRENCY, PG_URL, chunks, work_async

queue = App(connector=PsycopgConnector(conninfo=PG_URL))


@queue.task(name="work")
async def work() -> None:
    await work_async()


async def prepare() -> None:
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


async def enqueue(count: int) -> None:
    async with queue.open_async():
        for size in chunks(count):
            await work.batch_defer_async(*({} for _ in range(size)))


async def worker() -> None:
    async with queue.open_async():
        await queue.run_worker_async(concurrency=CONCURRENCY)


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["prepare"]:
            asyncio.run(prepare())
        case ["enqueue", count]:
            asyncio.run(enqueue(int(count)))
        case ["worker"]:
            logging.basicConfig(level=logging.WARNING)
            asyncio.run(worker())
        case _:
            sys.exit("usage: python -m benchmarks.drain.peers.procrastinate_pg prepare|enqueue N|worker")
