"""A reference, not a product: the least work that keeps afterwork's promise on SQLite.

Each task is one row written before the response starts and committed with
`synchronous=FULL` (afterwork's default), its success recorded afterwards, and nothing
else: no ids handed back, no leases, retries, timeouts, queues, ordering, events, status or
recovery. What is measured is the price of the durable write itself on this machine and
server stack, so a ratio of afterwork to this app says what afterwork's features cost on
top of it, and this app's ratio to FastAPI's in-memory tasks says what no design with the
same guarantee can beat by much.

The write is the cheapest found in the measurements behind the request-path issue: one
writer thread, woken once per turn of the event loop (so the requests of that turn share a
commit), an integer key (the table's rowid, always appended at the end), the row deleted on
success in the next group's transaction (so the table stays small). The task runs in the
request's own task after the response, as Starlette runs it. The harness sets
``AFTERWORK_URL`` (sqlite:///PATH) to a file in a fresh temporary directory.

`durable_floor_table` is the same write into afterwork's own table instead (made by its
migrations: a text key, the indexes a running task is in), with afterwork's time-ordered ids
and its success UPDATE: the difference between the two is what the storage layout costs.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from typing import Any

from fastapi import BackgroundTasks, FastAPI

from benchmarks.apps.common import Registered, Server, finish_run


class FloorWriter:
    """One thread commits every row queued since its last commit, and the successes."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.db = layout.connect()
        self.lock = threading.Condition()
        self.rows: list[tuple[str, str, asyncio.Future[Any]]] = []
        self.done: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wake_queued = False
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="floor-writer")
        self.thread.start()

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.lock.notify()
        self.thread.join()
        self.db.close()

    def insert(self, name: str, payload: str) -> asyncio.Future[Any]:
        loop = self.loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self.lock:  # uncontended: the thread holds it only to swap the lists
            self.rows.append((name, payload, future))
        if not self.wake_queued:  # wake the thread after this turn of the loop: one group
            self.wake_queued = True
            loop.call_soon(self._wake)
        return future

    def succeeded(self, row_id: Any) -> None:
        with self.lock:
            self.done.append(row_id)  # rides with the next group

    def _wake(self) -> None:
        self.wake_queued = False
        with self.lock:
            self.lock.notify()

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.rows and not self.stopping:
                    self.lock.wait()
                rows, self.rows = self.rows, []
                done, self.done = self.done, []
                last = self.stopping
            cur = self.db.cursor()
            cur.execute(self.layout.BEGIN)
            ids = self.layout.insert(cur, [row[:2] for row in rows]) if rows else []
            if done:
                self.layout.succeeded(cur, done)
            cur.execute("COMMIT")
            if rows:
                assert self.loop is not None
                self.loop.call_soon_threadsafe(_resolve, [row[2] for row in rows], ids)
            if last:  # the successes of the last tasks are written too
                return


def _resolve(futures: list[asyncio.Future[Any]], ids: list[Any]) -> None:
    for future, row_id in zip(futures, ids, strict=True):
        if not future.done():
            future.set_result(row_id)


class Layout:
    """The bare table: an integer key (the rowid), the row deleted on success."""

    BEGIN = "BEGIN IMMEDIATE"

    def connect(self) -> Any:
        """The writer's connection (made on the app's start), its table there."""
        path = os.environ.get("AFTERWORK_URL", "sqlite:///floor.db").removeprefix("sqlite:///")
        self.create(path)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def create(self, path: str) -> None:
        with closing(sqlite3.connect(path, isolation_level=None)) as db:  # autocommit, closed
            db.execute("CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, name TEXT, payload TEXT)")

    def insert(self, cur: sqlite3.Cursor, rows: list[tuple[str, str]]) -> list[Any]:
        return [cur.execute("INSERT INTO tasks (name, payload) VALUES (?, ?)", row).lastrowid
                for row in rows]

    def succeeded(self, cur: sqlite3.Cursor, done: list[Any]) -> None:
        cur.execute(f"DELETE FROM tasks WHERE id IN ({','.join(map(str, done))})")


class AfterworkTable(Layout):
    """afterwork's table and indexes (its migrations), its ids, its success UPDATE: rows
    written leased to one owner, as a request's tasks handed to the in-app runner are."""

    OWNER = "floor"

    def create(self, path: str) -> None:
        from afterwork.stores import open_store

        store = open_store(f"sqlite:///{path}")
        store.open()
        store.close()

    def insert(self, cur: sqlite3.Cursor, rows: list[tuple[str, str]]) -> list[Any]:
        from afterwork._ids import new_id

        now = time.time()
        ids = [new_id() for _ in rows]
        cur.executemany(
            "INSERT INTO afterwork_tasks (id, name, payload, state, attempts, max_attempts, seq, "
            "lease_owner, lease_until, run_at, created_at, queue, priority) "
            "VALUES (?, ?, ?, 'leased', 0, 1, 0, ?, ?, ?, ?, 'default', 0)",
            [(i, name, payload, self.OWNER, now + 30, now, now)
             for i, (name, payload) in zip(ids, rows, strict=True)])
        return ids

    def succeeded(self, cur: sqlite3.Cursor, done: list[Any]) -> None:
        from afterwork.stores._statements import MARK_STARTED_AND_SUCCEEDED_SQL

        now = time.time()
        cur.executemany(MARK_STARTED_AND_SUCCEEDED_SQL, [(now, now, "", i, self.OWNER) for i in done])


class PostgresTable(Layout):
    """The bare write on PostgreSQL (its default, full durability): a `bigserial` key, one
    INSERT a group (the rows as arrays), the rows deleted on success. The table is
    `afterwork_floor`, emptied on start; the database is the afterwork_pg system's."""

    BEGIN = "BEGIN"

    def connect(self) -> Any:
        import psycopg

        db = psycopg.connect(os.environ.get("BENCH_PG_URL", PG_URL), autocommit=True)
        db.execute("CREATE TABLE IF NOT EXISTS afterwork_floor "
                   "(id bigserial PRIMARY KEY, name text, payload text)")
        db.execute("TRUNCATE afterwork_floor")
        return db

    def insert(self, cur: Any, rows: list[tuple[str, str]]) -> list[Any]:
        cur.execute("INSERT INTO afterwork_floor (name, payload) "
                    "SELECT * FROM unnest(%s::text[], %s::text[]) RETURNING id",
                    ([r[0] for r in rows], [r[1] for r in rows]))
        return [r[0] for r in cur.fetchall()]

    def succeeded(self, cur: Any, done: list[Any]) -> None:
        cur.execute("DELETE FROM afterwork_floor WHERE id = ANY(%s)", (done,))


PG_URL = "postgresql://postgres@127.0.0.1:5432/afterwork_bench"
writer: FloorWriter | None = None


def make_app(layout: Layout) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        global writer
        writer = FloorWriter(layout)
        gc.collect()
        gc.freeze()  # what afterwork does at start-up (Afterwork(freeze_gc=True), its default)
        yield
        writer.stop()

    app = FastAPI(lifespan=lifespan)
    app.post("/abcd")(register)
    return app


async def notify(row_id: Any, hostname: str, message: str, sent_at: float) -> None:
    await finish_run(sent_at)
    assert writer is not None
    writer.succeeded(row_id)


async def register(server: Server, tasks: BackgroundTasks) -> Registered:
    assert writer is not None
    sent_at = time.time()
    row_id = await writer.insert("notify", json.dumps([server.hostname, "registered", sent_at]))
    tasks.add_task(notify, row_id, server.hostname, message="registered", sent_at=sent_at)
    return Registered(hostname=server.hostname)


app = make_app(Layout())
