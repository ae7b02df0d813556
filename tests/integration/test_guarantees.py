"""The guarantees on a real SQLite file and a real PostgreSQL, in process (the e2e tier adds uvicorn)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import (
    Afterwork,
    AfterworkWarning,
    BackgroundTasks,
    NotStorableError,
    TaskRecord,
    TaskState,
    TaskTooLargeError,
    defer,
)
from afterwork._models import Changes
from afterwork._registry import Registry
from afterwork.stores import open_store
from afterwork.testing import wait_for_tasks

from . import app_tasks
from .app_tasks import EVENTS


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    EVENTS.clear()
    yield
    EVENTS.clear()
    app_tasks.GATE.set()


def make_app(url: str, **options: object) -> tuple[FastAPI, Afterwork]:
    app = FastAPI()
    # The server's path: tasks detached from the request (a TestClient's request would run
    # them inline, before returning; tests/integration/test_fastapi_classes.py covers that).
    options.setdefault("inline_in_tests", False)
    aw = Afterwork(app, url=url, **options)  # type: ignore[arg-type]
    return app, aw


def db_rows(url: str) -> list[tuple[str, str, str | None]]:
    """Every stored task, read back through a fresh store: (name, state, last_error)."""
    store = open_store(url)
    store.open()
    try:
        records = sorted(store.query(limit=1000), key=lambda r: (r.created_at, r.seq))
    finally:
        store.close()
    return [(r.name, r.state.value, r.last_error) for r in records]


def refuse_payloads_containing(url: str, marker: str) -> None:
    """Make the real database itself refuse some inserts (as a full disk would: an error)."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON afterwork_tasks "
                f"WHEN NEW.payload LIKE '%{marker}%' BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
            )
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.payload LIKE '%{marker}%' THEN RAISE EXCEPTION 'disk says no'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON afterwork_tasks "
                     "FOR EACH ROW EXECUTE FUNCTION refuse()")


def test_g1_store_refusal_answers_503_and_writes_nothing(durable_url: str) -> None:
    app, _aw = make_app(durable_url)

    @app.post("/two")
    def two(tasks: BackgroundTasks, refuse: bool = False) -> dict[str, str]:
        tasks.add_task(app_tasks.record, "first")
        tasks.add_task(app_tasks.record, "refused" if refuse else "second")
        return {"ok": "yes"}

    with TestClient(app) as client:
        refuse_payloads_containing(durable_url, "refused")
        refused = client.post("/two?refuse=true")
        assert refused.status_code == 503
        assert "could not be stored" in refused.json()["detail"]
        assert "disk says no" not in refused.json()["detail"]  # the reason goes to the log only
        ok = client.post("/two")
        assert ok.status_code == 200
        wait_for_tasks(app)
    assert EVENTS == [("first",), ("second",)]
    assert [r[0] for r in db_rows(durable_url)] == ["tests.integration.app_tasks:record"] * 2


def test_g4_order_kept_and_a_failure_stops_the_rest_with_the_reason(durable_url: str) -> None:
    app, _ = make_app(durable_url, max_attempts=1)

    @app.get("/chain")
    def chain(tasks: BackgroundTasks) -> None:
        tasks.add_task(app_tasks.sleepy, "one", 0.1)
        tasks.add_task(app_tasks.record, "two")
        tasks.add_task(app_tasks.fail, "three")
        tasks.add_task(app_tasks.record, "four")
        defer(app_tasks.record, "five")

    with TestClient(app) as client:
        client.get("/chain")
        wait_for_tasks(app)
    assert EVENTS == [("one",), ("two",), ("three",)]
    states = [(r[1], r[2]) for r in db_rows(durable_url)]
    assert [s for s, _ in states] == ["succeeded", "succeeded", "failed", "cancelled", "cancelled"]
    assert "three failed on purpose" in (states[2][1] or "")
    assert "before it in the same response failed" in (states[3][1] or "")


def test_g6_a_stored_name_outside_the_app_never_runs(durable_url: str) -> None:
    app, aw = make_app(durable_url)
    with TestClient(app):
        now = time.time()
        evil = TaskRecord(id="evil", name="os:system", state=TaskState.QUEUED, run_at=now,
                          created_at=now, payload='{"a":["touch /tmp/afterwork-pwned"],"k":{}}')
        aw.store.apply(Changes(inserts=[evil]))
        aw.runner.wake_threadsafe()  # type: ignore[union-attr]
        wait_for_tasks(app)
    record = aw.store.get("evil")
    assert record is not None and record.state.value == "failed"
    assert "not registered" in (record.last_error or "")
    assert not Path("/tmp/afterwork-pwned").exists()


def test_g6_module_level_function_of_the_app_resolves_after_a_restart() -> None:
    fresh = Registry()  # a new process: nothing was added yet
    fresh.allow_packages(["tests.integration.test_guarantees"])
    assert fresh.resolve("tests.integration.app_tasks:record") is app_tasks.record
    assert fresh.resolve("tests.integration.app_tasks:flaky") is app_tasks.flaky
    with pytest.raises(Exception, match="not registered"):
        fresh.resolve("os:system")
    with pytest.raises(Exception, match="not a function"):
        fresh.resolve("tests.integration.app_tasks:EVENTS")


def test_g7_unstorable_task_runs_in_memory_with_one_warning(durable_url: str) -> None:
    app, _ = make_app(durable_url)
    ran: list[str] = []

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> dict[str, bool]:
        handle = tasks.add_task(lambda: ran.append("lambda"))
        return {"stored": handle.stored}

    with TestClient(app) as client:
        with pytest.warns(AfterworkWarning, match="lambda"):
            assert client.get("/").json() == {"stored": False}
        client.get("/")  # named once: no second warning (warnings are errors here)
    assert ran == ["lambda", "lambda"]
    assert db_rows(durable_url) == []


def test_g7_strict_refuses_unstorable_tasks_naming_them(durable_url: str) -> None:
    app, _ = make_app(durable_url, strict=True)

    def closure() -> None:
        pass

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> None:
        tasks.add_task(closure)

    with TestClient(app) as client, pytest.raises(NotStorableError, match="closure"):
        client.get("/")


def test_arguments_over_the_size_limit_run_in_memory_with_a_warning(durable_url: str) -> None:
    app, _ = make_app(durable_url, max_arg_bytes=100)

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> dict[str, bool]:
        return {"stored": tasks.add_task(app_tasks.record, "x" * 200).stored}

    with TestClient(app) as client, pytest.warns(AfterworkWarning, match=r"record.*2\d\d bytes"):
        assert client.get("/").json() == {"stored": False}
    assert EVENTS == [("x" * 200,)]  # it ran all the same, in memory
    assert db_rows(durable_url) == []


def test_arguments_over_the_size_limit_are_refused_when_strict(durable_url: str) -> None:
    app, _ = make_app(durable_url, max_arg_bytes=100, strict=True)

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> None:
        tasks.add_task(app_tasks.record, "x" * 200)

    with TestClient(app) as client, pytest.raises(TaskTooLargeError, match=r"record.*2\d\d bytes"):
        client.get("/")


def test_retry_with_backoff_then_success_and_task_knows_id_and_attempt(
    durable_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("afterwork._attempts.BACKOFF_BASE_SECONDS", 0.01)
    app, _aw = make_app(durable_url)

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(app_tasks.flaky, "f", 2).id}

    with TestClient(app) as client:
        task_id = client.get("/").json()["id"]
        wait_for_tasks(app)
        state = client.get(f"/afterwork/api/tasks/{task_id}").json()
    assert [("f", task_id, 1), ("f", task_id, 2), ("f", task_id, 3)] == EVENTS
    assert state["state"] == "succeeded" and state["attempts"] == 3


def test_timeout_and_sys_exit_are_recorded_and_the_runner_survives(durable_url: str) -> None:
    app, _aw = make_app(durable_url, max_attempts=1)

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> None:
        defer(app_tasks.hangs)
        BackgroundTasks().add_task(app_tasks.exits)

    @app.get("/after")
    def after(tasks: BackgroundTasks) -> None:
        tasks.add_task(app_tasks.record, "still-running")

    with TestClient(app) as client:
        client.get("/")
        wait_for_tasks(app)
        client.get("/after")
        wait_for_tasks(app)
    rows = db_rows(durable_url)
    assert rows[0][1] == "failed" and "timed out" in (rows[0][2] or "")
    assert rows[1][1] == "cancelled"  # after the timed-out task in the same response
    assert EVENTS == [("still-running",)]


def test_sys_exit_in_a_task_is_recorded(durable_url: str) -> None:
    app, _ = make_app(durable_url, max_attempts=1)

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> None:
        tasks.add_task(app_tasks.exits)

    with TestClient(app) as client:
        client.get("/")
        wait_for_tasks(app)
    assert db_rows(durable_url)[0][1] == "failed"
    assert "SystemExit" in (db_rows(durable_url)[0][2] or "")


def test_sync_tasks_use_afterworks_own_bounded_threads(durable_url: str) -> None:
    app, _ = make_app(durable_url, sync_threads=2)
    app_tasks.GATE.clear()
    app_tasks.PEAK_SYNC[0] = 0

    @app.get("/block/{n}")
    def block(n: int, tasks: BackgroundTasks) -> None:
        tasks.add_task(app_tasks.blocking, f"b{n}")

    @app.get("/ping")
    def ping() -> dict[str, str]:  # a sync endpoint: needs the request thread pool
        return {"pong": "yes"}

    with TestClient(app) as client:
        for n in range(5):
            client.get(f"/block/{n}")
        time.sleep(0.3)
        assert client.get("/ping").json() == {"pong": "yes"}  # not starved
        assert app_tasks.PEAK_SYNC[0] == 2
        app_tasks.GATE.set()
        wait_for_tasks(app)
    assert sorted(e[0] for e in EVENTS) == [f"b{n}" for n in range(5)]


def test_shutdown_hands_back_unfinished_tasks_and_the_next_start_runs_them(durable_url: str) -> None:
    app, _ = make_app(durable_url, grace_seconds=0.2)

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> None:
        tasks.add_task(app_tasks.sleepy, "long", 1.0)
        tasks.add_task(app_tasks.record, "after-long")

    with TestClient(app) as client:
        client.get("/")
        time.sleep(0.1)
    rows = db_rows(durable_url)
    assert [r[1] for r in rows] == ["queued", "queued"], rows  # handed back, not lost
    assert EVENTS == []
    app2, _ = make_app(durable_url)
    with TestClient(app2):
        wait_for_tasks(app2)
    assert EVENTS == [("long",), ("after-long",)]


def test_defer_outside_a_request_stores_at_once(durable_url: str) -> None:
    app, aw = make_app(durable_url)
    with TestClient(app):
        handle = defer(app_tasks.record, "deferred")
        assert aw.store.get(handle.id) is not None
        wait_for_tasks(app)
    assert EVENTS == [("deferred",)]


def test_unknown_task_id_is_404(durable_url: str) -> None:
    app, _ = make_app(durable_url)
    with TestClient(app) as client:
        assert client.get("/afterwork/api/tasks/nope").status_code == 404
        assert client.get("/afterwork/api/tasks").status_code == 404  # operator API: off
