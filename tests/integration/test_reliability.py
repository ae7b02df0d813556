"""Leases, heartbeats, retries and faults, with real runners on real stores."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks, TaskRecord, TaskState
from afterwork._models import Changes
from afterwork.testing import wait_for_tasks

from . import app_tasks
from .app_tasks import EVENTS


@pytest.fixture(autouse=True)
def _clean() -> None:
    EVENTS.clear()


OPERATOR = {"Authorization": "Bearer t"}


def app_on(url: str, **options: object) -> tuple[FastAPI, Afterwork]:
    app = FastAPI()
    # The server's path: tasks detached from the request (a TestClient's request would run
    # them inline, before returning; tests/integration/test_fastapi_classes.py covers that).
    options.setdefault("inline_in_tests", False)
    aw = Afterwork(app, url=url, **options)  # type: ignore[arg-type]

    @app.get("/add/{fn}")
    def add(fn: str, tasks: BackgroundTasks, label: str = "x", seconds: float = 0.0) -> dict[str, str]:
        func = getattr(app_tasks, fn)
        args = (label, seconds) if fn in ("blocks_the_loop", "sleepy") else (label,)
        return {"id": tasks.add_task(func, *args).id}

    return app, aw


def test_a_task_that_blocks_the_loop_keeps_its_lease(durable_url: str) -> None:
    """Lease 1 s, a task blocking its runner's loop for 2.5 s, a second runner polling the same
    store every 0.1 s: the heartbeat (a thread, not the loop) keeps the task from being taken."""
    app_a, _ = app_on(durable_url, lease_seconds=1.0)
    app_b, _ = app_on(durable_url, lease_seconds=1.0, poll_seconds=0.1)
    with TestClient(app_a) as a, TestClient(app_b):
        task_id = a.get("/add/blocks_the_loop?label=once&seconds=2.5").json()["id"]
        time.sleep(0.2)
        wait_for_tasks(app_a, timeout=15)
        wait_for_tasks(app_b, timeout=15)
        state = a.get(f"/afterwork/api/tasks/{task_id}").json()
    assert EVENTS == [("once",)]
    assert state["state"] == "succeeded" and state["attempts"] == 1


def test_a_task_can_ask_for_a_retry_at_a_chosen_time_and_history_says_so(durable_url: str) -> None:
    app, _ = app_on(durable_url, dashboard=True, dashboard_token="t")  # operators see history
    with TestClient(app) as client:
        task_id = client.get("/add/asks_for_retry?label=r").json()["id"]
        wait_for_tasks(app)
        state = client.get(f"/afterwork/api/tasks/{task_id}", headers=OPERATOR).json()
    assert [e[1] for e in EVENTS] == [1, 2]
    assert EVENTS[1][2] - EVENTS[0][2] >= 0.3
    assert state["state"] == "succeeded" and state["attempts"] == 2
    [first] = state["history"]
    assert first["attempt"] == 1 and first["outcome"] == "retry" and "not yet" in first["error"]


def test_every_failed_attempt_is_kept_with_start_end_and_error(
    durable_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("afterwork._attempts.BACKOFF_BASE_SECONDS", 0.01)
    app, _ = app_on(durable_url, max_attempts=3, dashboard=True, dashboard_token="t")
    with TestClient(app) as client:
        task_id = client.get("/add/fail?label=f").json()["id"]
        wait_for_tasks(app)
        state = client.get(f"/afterwork/api/tasks/{task_id}", headers=OPERATOR).json()
    assert state["state"] == "failed" and state["attempts"] == 3
    assert "Traceback" in state["last_error"] and "f failed on purpose" in state["last_error"]
    history = state["history"]
    assert [h["attempt"] for h in history] == [1, 2, 3]
    assert all(h["outcome"] == "error" and h["finished_at"] >= h["started_at"] for h in history)


def test_arguments_that_no_longer_decode_fail_the_task_with_the_reason(durable_url: str) -> None:
    app, aw = app_on(durable_url)
    with TestClient(app):
        now = time.time()
        aw.store.apply(Changes(inserts=[TaskRecord(
            id="old", name="tests.integration.app_tasks:typed_task", state=TaskState.QUEUED,
            payload='{"a":["not a date"],"k":{},"t":1}', run_at=now, created_at=now)]))
        assert aw.runner is not None
        aw.runner.wake_threadsafe()
        app.get("/add/record")
        wait_for_tasks(app)
    record = aw.store.get("old")
    assert record is not None and record.state is TaskState.FAILED
    assert "no longer decode" in (record.last_error or "")


def test_a_locked_store_answers_503_and_recovers_with_it(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/locked.db?busy_timeout=0.3"
    app, _ = app_on(url)
    with TestClient(app) as client:
        client.get("/add/record?label=warm-up")
        wait_for_tasks(app)
        holder = sqlite3.connect(f"{tmp_path}/locked.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        refused = client.get("/add/record?label=refused")
        assert refused.status_code == 503 and "busy" in refused.json()["detail"]
        holder.execute("COMMIT")  # the store recovers: so does the app
        assert client.get("/add/record?label=after").status_code == 200
        wait_for_tasks(app)
    holder.close()
    assert [e[0] for e in EVENTS] == ["warm-up", "after"]


def test_outcomes_written_while_the_store_is_locked_are_kept_and_land_later(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/locked.db?busy_timeout=0.2"
    app, aw = app_on(url)
    with TestClient(app) as client:
        task_id = client.get("/add/sleepy?label=slow&seconds=0.5").json()["id"]
        holder = sqlite3.connect(f"{tmp_path}/locked.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # locked while the task finishes
        time.sleep(1.2)
        holder.execute("COMMIT")
        holder.close()
        wait_for_tasks(app, timeout=40)
    record = aw.store.get(task_id)
    assert EVENTS == [("slow",)]
    assert record is not None and record.state is TaskState.SUCCEEDED


def test_a_failed_task_can_be_retried_and_a_queued_one_cancelled_from_code(durable_url: str) -> None:
    from afterwork import TaskNotFoundError, TaskStateError, task

    app, aw = app_on(durable_url, max_attempts=1)
    app_tasks.FLAKY_FAILURES.clear()

    @app.get("/later")
    def later(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(task(app_tasks.record).options(delay=60), "later").id}

    with TestClient(app) as client:
        failed_id = client.get("/add/fail?label=once").json()["id"]
        wait_for_tasks(app)
        with pytest.raises(TaskStateError, match="only queued tasks"):
            aw.cancel(failed_id)
        assert aw.retry(failed_id).state is TaskState.QUEUED
        wait_for_tasks(app)
        again = aw.store.get(failed_id)
        assert again is not None and again.state is TaskState.FAILED and again.attempts == 1
        later_id = client.get("/later").json()["id"]
        assert aw.cancel(later_id).state is TaskState.CANCELLED
        with pytest.raises(TaskNotFoundError):
            aw.retry("no-such-task")
    assert [e[0] for e in EVENTS] == ["once", "once"]  # ran again after the retry


def test_the_claim_loop_outlives_an_unexpected_error(tmp_path: object,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection at the chores' seam: one poll fails with an error nobody planned for;
    the runner logs it and claims again (before, the claim loop ended silently and nothing
    stored was ever claimed again until a restart)."""
    import afterwork._claiming

    real = afterwork._claiming.store_due_ticks
    failures = [RuntimeError("an error nobody planned for")]

    async def fails_once(*args: Any) -> bool:
        if failures:
            raise failures.pop()
        return await real(*args)

    monkeypatch.setattr(afterwork._claiming, "store_due_ticks", fails_once)
    app = FastAPI()
    aw = Afterwork(app, url=f"sqlite:///{tmp_path}/t.db", poll_seconds=0.05)
    with TestClient(app):
        deadline = time.monotonic() + 10
        while failures and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not failures  # the first poll failed
        handle = aw.defer(app_tasks.record, "claimed after the failure")  # through the store
        wait_for_tasks(app)
        record = aw.store.get(handle.id)
    assert record is not None and record.state is TaskState.SUCCEEDED
    assert ("claimed after the failure",) in EVENTS
