"""afterwork on PostgreSQL, tasks run by the in-app runner.

``python -m benchmarks.apps.afterwork_pg prepare`` creates the database if missing and drops
afterwork's tables, which afterwork recreates when the app starts.
"""

import asyncio
import os
import sys

import asyncpg  # type: ignore[import-untyped]

from benchmarks.apps.common import afterwork_app
from benchmarks.apps.pg import ensure_database

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/afterwork_bench")

app = afterwork_app(url=PG_URL)


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
