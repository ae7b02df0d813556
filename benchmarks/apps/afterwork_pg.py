"""afterwork on PostgreSQL, tasks run by the in-app runner.

``python -m benchmarks.apps.afterwork_pg prepare`` creates the database if missing and drops
afterwork's tables, which afterwork recreates when the app starts.
"""

import asyncio
import os
import sys
import time

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks
from benchmarks.apps.common import Registered, Server, record_run
from benchmarks.apps.pg import ensure_database

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/afterwork_bench")

app = FastAPI()
Afterwork(app, url=PG_URL, strict=True)  # strict: never fall back to memory


async def notify(hostname: str, message: str, sent_at: float) -> None:
    record_run(sent_at)


@app.post("/abcd")
async def register(server: Server, tasks: BackgroundTasks) -> Registered:
    tasks.add_task(notify, server.hostname, message="registered", sent_at=time.time())
    return Registered(hostname=server.hostname)


async def _prepare() -> None:
    await ensure_database(PG_URL)
    conn = await asyncpg.connect(PG_URL)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'afterwork\\_%'")
        for (table,) in tables:
            await conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    finally:
        await conn.close()


if __name__ == "__main__":
    if sys.argv[1:] != ["prepare"]:
        sys.exit("usage: python -m benchmarks.apps.afterwork_pg prepare")
    asyncio.run(_prepare())
