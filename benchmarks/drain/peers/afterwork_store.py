"""afterwork, on the store `AFTERWORK_URL` names (SQLite file or PostgreSQL).

    prepare: PostgreSQL only, drop afterwork's tables (recreated on open); SQLite starts fresh
    enqueue N: store N tasks in batches of 1,000 (no runner in this process)
    worker: `python -m afterwork worker benchmarks.drain.peers.afterwork_store:aw`
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from afterwork import Afterwork, defer
from benchmarks.drain.work import CONCURRENCY, chunks, work_async

aw = Afterwork(url=os.environ.get("AFTERWORK_URL"), run_in_app=False, concurrency=CONCURRENCY)


async def work() -> None:
    await work_async()


def enqueue(count: int) -> None:
    """N independent tasks (a batch made in one request would run in order, one at a time)."""
    try:  # 1,000 rows a transaction, through the store's writer: not public API, so a fallback
        from afterwork._enqueue import record_for
        from afterwork._models import Changes

        aw.open_storage()
        for size in chunks(count):
            now = time.time()
            rows = [record_for(aw.planner.plan(work, (), {}), now) for _ in range(size)]
            aw.writer.submit(Changes(inserts=rows)).result(timeout=120)
    except (ImportError, AttributeError, TypeError):
        with ThreadPoolExecutor(32) as pool:  # public: one task a call, commits grouped
            list(pool.map(lambda _: defer(work), range(count)))
    finally:
        aw.writer.stop()
        aw.store.close()


async def drop_tables() -> None:
    import asyncpg  # type: ignore[import-untyped]

    from benchmarks.apps.pg import ensure_database

    url = aw.url
    await ensure_database(url)
    conn = await asyncpg.connect(url)
    try:
        for (table,) in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename LIKE 'afterwork\\_%'"
        ):
            await conn.execute(f'DROP TABLE IF EXISTS "{table}" CASCADE')
    finally:
        await conn.close()


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["prepare"]:
            if aw.url.startswith("postgres"):
                asyncio.run(drop_tables())
        case ["enqueue", count]:
            enqueue(int(count))
        case _:
            sys.exit("usage: python -m benchmarks.drain.peers.afterwork_store prepare|enqueue N")
