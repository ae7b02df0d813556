"""Beyond "after the response": delays, periodic tasks, queues and limits, de-duplication,
and enqueue inside the application's own transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks, in_transaction, periodic, task
from afterwork._chores import store_due_ticks
from afterwork._enqueue import Planner, record_for
from afterwork._events import Events
from afterwork._models import Changes
from afterwork._schedule import SCHEDULES, Schedule, Scheduler
from afterwork._settings import Settings
from afterwork._writer import Writer
from afterwork.stores import open_store
from afterwork.testing import wait_for_tasks

from . import app_tasks
from .app_tasks import EVENTS


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    EVENTS.clear()
    yield
    EVENTS.clear()


def test_a_delayed_task_waits_for_its_time(durable_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=durable_url, poll_seconds=0.1)

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(task(app_tasks.stamp).options(delay=0.6), "delayed")
        at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=0.3)
        tasks.add_task(task(app_tasks.stamp).options(run_at=at), "at")  # after "delayed": chained
        return {"queued": "yes"}

    with TestClient(app) as client:
        asked = time.time()
        client.get("/")
        time.sleep(0.3)
        assert EVENTS == []
        wait_for_tasks(app)
    assert [e[0] for e in EVENTS] == ["delayed", "at"]
    assert EVENTS[0][1] - asked >= 0.6


def test_the_latest_missed_tick_runs_once_and_skip_drops_it() -> None:
    every = Schedule(task(app_tasks.tick), every_seconds=60)
    scheduler = Scheduler()
    scheduler.started = 1000.0
    SCHEDULES.append(every)
    try:
        fresh = Scheduler()
        fresh.started = 4600.0
        fresh.ran_before[every.task.name] = False  # a new schedule: no catch-up on first deploy
        assert fresh.due(4601.0) == []
        scheduler.ran_before[every.task.name] = True
        assert [t for _, t in scheduler.due(1000.0 + 3600)] == [4560.0]  # an hour down: one tick
        assert scheduler.due(4600.0) == []  # same tick: nothing more
        assert [t for _, t in scheduler.due(4621.0)] == [4620.0]
        skip = Scheduler()
        skip.started = 5000.0
        skip.ran_before[every.task.name] = True
        every.missed = "skip"
        assert skip.due(5001.0) == []  # 4980 was before this scheduler started
    finally:
        SCHEDULES.remove(every)


def test_a_run_now_stored_before_a_runners_first_look_is_not_a_tick(tmp_path: Path) -> None:
    """An operator's "run now" of a periodic task is an ordinary task of its name. Stored before
    a runner first looks at the schedule's history, it must not make the runner believe the
    schedule ran before, and so catch up the tick it missed before it started (a second task);
    a tick stored before does."""
    hourly = Schedule(task(app_tasks.tick), every_seconds=3600)  # its latest tick: before now
    SCHEDULES.append(hourly)
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    store.open()
    writer = Writer(store, tick_seconds=30, on_tick=lambda: None)
    writer.start()
    try:
        planner = Planner(Settings(), Events())
        run_now = record_for(planner.plan(hourly.task, (), {}), time.time())
        writer.submit(Changes(inserts=[run_now])).result(5)
        first_look = Scheduler()
        first_look.started = time.time()  # after the latest tick
        assert asyncio.run(store_due_ticks(first_look, writer, planner)) is False
        assert store.query(name=hourly.task.name) == [run_now]  # no tick stored beside it

        tick = dataclasses.replace(record_for(planner.plan(hourly.task, (), {}), time.time()),
                                   tick_key=hourly.tick_key(hourly.latest_tick(time.time()) - 3600))
        writer.submit(Changes(inserts=[tick])).result(5)
        after_a_tick = Scheduler()
        after_a_tick.started = time.time()
        assert asyncio.run(store_due_ticks(after_a_tick, writer, planner)) is True  # caught up
        assert len(store.query(name=hourly.task.name)) == 3
    finally:
        SCHEDULES.remove(hourly)
        writer.stop()
        store.close()


def test_cron_ticks_are_computed_in_utc() -> None:
    nightly = Schedule(task(app_tasks.tick), cron="0 3 * * *")
    now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc).timestamp()
    assert nightly.latest_tick(now) == dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.timezone.utc).timestamp()


def test_each_tick_runs_once_with_two_runners(durable_url: str) -> None:
    decorated = periodic(every=0.5)(app_tasks.tick)
    try:
        apps = [FastAPI(), FastAPI()]
        for app in apps:
            Afterwork(app, url=durable_url, poll_seconds=0.05)
        with TestClient(apps[0]), TestClient(apps[1]):
            time.sleep(2.2)
        ids = [e[1] for e in EVENTS]
    finally:
        SCHEDULES[:] = [s for s in SCHEDULES if s.task is not decorated]
    assert 3 <= len(ids) <= 6  # a tick each 0.5 s for about 2 s
    assert len(ids) == len(set(ids)), "a tick ran twice"


def test_a_queue_limit_holds_across_runners(durable_url: str) -> None:
    app_tasks.PEAK[0] = 0
    apps = [FastAPI(), FastAPI()]
    for app in apps:
        Afterwork(app, url=durable_url, queue_limits={"hooks": 2}, poll_seconds=0.05)

        @app.get("/{n}")
        def endpoint(n: int, tasks: BackgroundTasks) -> None:
            tasks.add_task(task(app_tasks.in_limited_queue).options(queue="hooks"), f"h{n}")

    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        for n in range(8):  # eight independent tasks, through both apps
            (a if n % 2 else b).get(f"/{n}")
        wait_for_tasks(apps[0], timeout=30)
        wait_for_tasks(apps[1], timeout=30)
    assert len(EVENTS) == 8
    assert app_tasks.PEAK[0] <= 2  # never more than the limit, though each runner could run 32


def test_a_rate_limited_task_starts_at_most_n_per_window(durable_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=durable_url, poll_seconds=0.05)

    @app.get("/{n}")
    def endpoint(n: int) -> None:
        BackgroundTasks().add_task(app_tasks.rate_limited, f"r{n}")

    with TestClient(app) as client:
        for n in range(5):
            client.get(f"/{n}")
        wait_for_tasks(app, timeout=30)
    starts = sorted(e[1] for e in EVENTS)
    assert len(starts) == 5
    for i in range(len(starts) - 2):
        assert starts[i + 2] - starts[i] >= 0.9, f"3 starts within 1 s: {starts}"


def test_a_second_task_with_a_live_key_resolves_to_the_first(durable_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=durable_url)

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> dict[str, str]:
        keyed = task(app_tasks.stamp).options(key="welcome:42", delay=0.5)
        return {"id": tasks.add_task(keyed, "welcome").id}

    with TestClient(app) as client:
        first = client.get("/").json()["id"]
        second = client.get("/").json()["id"]  # the first is still queued: nothing new stored
        assert client.get(f"/afterwork/api/tasks/{second}").json()["id"] == first
        wait_for_tasks(app)
        again = client.get("/").json()["id"]  # the first has run: a new one
        wait_for_tasks(app)
        assert client.get(f"/afterwork/api/tasks/{again}").json()["id"] == again
    assert again not in (first, second)
    assert [e[0] for e in EVENTS] == ["welcome", "welcome"]


def test_enqueue_in_the_apps_sqlite_transaction_commits_and_rolls_back_with_it(tmp_path: object) -> None:
    path = f"{tmp_path}/app.db"
    app = FastAPI()
    aw = Afterwork(app, url=f"sqlite:///{path}", poll_seconds=0.05)

    @app.post("/orders/{n}")
    def order(n: int, fail: bool = False) -> dict[str, str]:
        with closing(sqlite3.connect(path)) as conn, conn:  # the app's own connection and transaction
            conn.execute("CREATE TABLE IF NOT EXISTS orders (n INTEGER)")
            conn.execute("INSERT INTO orders VALUES (?)", (n,))
            handle = in_transaction(conn).add_task(app_tasks.stamp, f"receipt-{n}")
            if fail:
                raise RuntimeError("payment declined")  # rolls back the order and the task
        return {"id": handle.id}

    with TestClient(app, raise_server_exceptions=False) as client:
        kept = client.post("/orders/1").json()["id"]
        assert client.post("/orders/2?fail=true").status_code == 500
        wait_for_tasks(app)
    assert [e[0] for e in EVENTS] == ["receipt-1"]
    assert aw.store.get(kept) is not None
    assert [r.name for r in aw.store.query()] == ["tests.integration.app_tasks:stamp"]


def test_enqueue_in_a_sqlalchemy_session_and_a_psycopg_transaction(pg_url: str) -> None:
    import psycopg
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    app = FastAPI()
    aw = Afterwork(app, url=pg_url, poll_seconds=0.05)
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    with TestClient(app):
        with Session(engine) as session, session.begin():
            session.execute(text("CREATE TABLE orders (n INTEGER)"))
            in_transaction(session).add_task(app_tasks.stamp, "sqlalchemy-committed")
        with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
            in_transaction(session).add_task(app_tasks.stamp, "sqlalchemy-rolled-back")
            raise RuntimeError("rollback")
        with psycopg.connect(pg_url) as conn:  # commits on leaving the block
            aw.transaction(conn).add_task(app_tasks.stamp, "psycopg-committed")
        wait_for_tasks(app)
    engine.dispose()
    assert sorted(e[0] for e in EVENTS) == ["psycopg-committed", "sqlalchemy-committed"]
