"""De-duplication keys without a store read on the request's path: a duplicate's handle
resolves to the live task (two racing requests included), and an `async def` endpoint adding a
keyed task never blocks the event loop on the store (PostgreSQL with the table locked)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import httpx
from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks, task
from afterwork.testing import drain

from . import app_tasks


def _keyed_app(url: str, key: str, **options: Any) -> tuple[FastAPI, Afterwork]:
    app = FastAPI()
    aw = Afterwork(app, url=url, **options)

    @app.post("/signup")
    async def signup(tasks: BackgroundTasks) -> dict[str, str]:
        keyed = task(app_tasks.stamp).options(key=key, delay=2.0)
        return {"id": tasks.add_task(keyed, "welcome").id}

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return app, aw


def test_racing_requests_with_one_new_key_store_one_task_and_every_handle_finds_it(
    durable_url: str,
) -> None:
    app, aw = _keyed_app(durable_url, f"welcome:{uuid.uuid4().hex}")
    app_tasks.EVENTS.clear()

    async def scenario() -> tuple[list[str], list[dict[str, Any]]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answers = await asyncio.gather(*(client.post("/signup") for _ in range(8)))
            ids = [a.json()["id"] for a in answers]
            shown = [(await client.get(f"/afterwork/api/tasks/{i}")).json() for i in ids]
            await drain(aw, timeout=30)
        await aw.shutdown()
        return ids, shown

    ids, shown = asyncio.run(scenario())
    assert len(set(ids)) == 8  # each request got its own handle, before the store was asked
    assert len({s["id"] for s in shown}) == 1, shown  # ... and all name the one stored task
    assert [e[0] for e in app_tasks.EVENTS] == ["welcome"]


def test_a_keyed_add_task_never_blocks_the_loop_while_the_store_is_locked(pg_url: str) -> None:
    import psycopg

    app, aw = _keyed_app(pg_url, "welcome:locked", store_timeout_seconds=3.0)
    locked, release = threading.Event(), threading.Event()

    def hold_the_table() -> None:
        with psycopg.connect(pg_url) as conn, conn.transaction():
            conn.execute("LOCK TABLE afterwork_tasks IN ACCESS EXCLUSIVE MODE")  # reads wait too
            locked.set()
            release.wait(10)

    async def scenario() -> tuple[int, int, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
            assert (await client.get("/ping")).status_code == 200  # started: schema made
            holder = threading.Thread(target=hold_the_table)
            holder.start()
            await asyncio.to_thread(locked.wait, 10)
            try:
                signup = asyncio.create_task(client.post("/signup"))
                await asyncio.sleep(0.1)  # the request is waiting for the store now
                started = time.monotonic()
                ping = await client.get("/ping")  # served while it waits: the loop is free
                ping_seconds = time.monotonic() - started
                answer = await signup
            finally:
                release.set()
                await asyncio.to_thread(holder.join, 10)
        await aw.shutdown()
        return ping.status_code, answer.status_code, ping_seconds

    ping_status, signup_status, ping_seconds = asyncio.run(scenario())
    assert ping_status == 200
    assert signup_status == 503  # the lock outlived the store timeout: refused, not hung
    assert ping_seconds < 1.5, (f"a plain request took {ping_seconds:.1f}s while a keyed "
                                "add_task waited for the store: the event loop was blocked")

