"""Faults of the store and of threads, at the level of one process (the fault suite in
tests/faults makes them with real processes under load)."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from afterwork import BackgroundTasks, StoreError, StoreReplacedError, TaskRecord, TaskState
from afterwork._models import Changes
from afterwork.stores import open_store
from afterwork.testing import wait_for_tasks

from .app_tasks import EVENTS
from .test_reliability import app_on


def _rec(**fields: object) -> TaskRecord:
    values: dict[str, object] = {"state": TaskState.QUEUED, **fields}
    return TaskRecord(id=str(uuid.uuid4()), name="m:f", payload="{}", **values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _clean() -> None:
    EVENTS.clear()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_deleted_or_replaced_sqlite_file_fails_the_write_and_the_next_write_reopens_it(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "afterwork.db"
    store = open_store(f"sqlite:///{path}")
    store.open()
    try:
        kept = _rec()
        store.apply(Changes(inserts=[kept]))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        if how == "replaced":  # an empty SQLite file where the store was
            sqlite3.connect(path).close()
        lost = _rec()
        with pytest.raises(StoreReplacedError, match="deleted or replaced"):
            store.apply(Changes(inserts=[lost]))
        again = _rec()
        store.apply(Changes(inserts=[again]))  # reopened, migrated
        assert store.get(again.id) is not None
        assert store.get(lost.id) is None and store.get(kept.id) is None
    finally:
        store.close()
    with closing(sqlite3.connect(path)) as conn:  # and it is the file at the path that holds it
        assert [r[0] for r in conn.execute("SELECT id FROM afterwork_tasks")] == [again.id]


_HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def _hold_write_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holds the file's write lock for `seconds` (returns once it holds it)."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _let_go(holder: subprocess.Popen[str]) -> None:
    holder.communicate(timeout=10)
    assert holder.returncode == 0


def test_a_write_polls_for_a_lock_another_process_holds_and_fails_past_its_bound(tmp_path: Path) -> None:
    """SQLite's own busy handler sleeps up to 100 ms between tries: while a web app and its
    worker took the lock in turn, a write slept through the other's release and waited again
    (p99 12x that of the same run with polling, docs/performance.md). The writer's connection
    waits one poll in SQLite, and the store tries BEGIN IMMEDIATE again itself until the lock
    is free, then writes; held past the store's bound, the write fails saying so."""
    from afterwork.stores._sqlite_file import WRITE_POLL_MS

    path = tmp_path / "afterwork.db"
    store = open_store(f"sqlite:///{path}?busy_timeout=3")
    store.open()
    try:
        conn = store._write_conn  # type: ignore[attr-defined]
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == WRITE_POLL_MS
        begins: list[str] = []
        conn.set_trace_callback(lambda sql: begins.append(sql) if sql == "BEGIN IMMEDIATE" else None)
        holder = _hold_write_lock(path, 0.3)
        waited = _rec()
        store.apply(Changes(inserts=[waited]))  # lands once the other process lets go
        _let_go(holder)
        assert store.get(waited.id) is not None
        assert len(begins) >= 3  # tried again (one sleep in SQLite would be one BEGIN)
    finally:
        store.close()
    store = open_store(f"sqlite:///{path}?busy_timeout=0.2")
    try:
        store.open()
        holder = _hold_write_lock(path, 3.0)
        try:
            refused = _rec()
            with pytest.raises(StoreError, match="stayed locked past the store timeout"):
                store.apply(Changes(inserts=[refused]))
        finally:
            _let_go(holder)
        store.apply(Changes(inserts=[refused]))  # and writes again once it is free
        assert store.get(refused.id) is not None
    finally:
        store.close()


def test_leases_written_under_another_boot_are_expired_when_the_store_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/afterwork.db"
    store = open_store(url)
    store.open()
    held = _rec(state=TaskState.RUNNING, lease_owner="before-reboot", lease_until=1e12)
    store.apply(Changes(inserts=[held]))
    store.close()
    # as if written by another boot (`with conn` commits; only closing() closes)
    with closing(sqlite3.connect(f"{tmp_path}/afterwork.db")) as conn, conn:
        conn.execute("UPDATE afterwork_clock SET value = 'boottime:another-boot'")
    store = open_store(url)
    store.open()
    try:
        assert [r.id for r in store.claim("after-reboot", 10, 0.0)] == [held.id]
    finally:
        store.close()


def test_a_store_opened_again_on_the_same_boot_keeps_live_leases(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/afterwork.db"
    first = open_store(url)
    first.open()
    held = _rec(state=TaskState.RUNNING, lease_owner="alive", lease_until=first.lease_clock() + 60)
    first.apply(Changes(inserts=[held]))
    second = open_store(url)  # another process starting on this machine
    second.open()
    try:
        assert second.claim("other", 10, 0.0) == []
    finally:
        first.close()
        second.close()


def test_a_timed_out_def_tasks_retry_waits_for_its_thread(sqlite_url: str) -> None:
    app, aw = app_on(sqlite_url, poll_seconds=0.05)

    @app.get("/overrun")
    def overrun(tasks: BackgroundTasks) -> dict[str, str]:
        from .app_tasks import overruns

        return {"id": tasks.add_task(overruns, "o", 1.0).id}

    with TestClient(app) as client:
        task_id = client.get("/overrun").json()["id"]
        wait_for_tasks(app, timeout=20)
    try:
        record = aw.store.get(task_id)
    finally:  # the app leaves its store open while a def task's thread may still run
        aw.store.close()
    starts = [e for e in EVENTS if e[1] == "start"]
    ends = [e for e in EVENTS if e[1] == "end"]
    assert [e[2] for e in starts] == [1, 2]
    assert starts[1][3] >= ends[0][3], "the retry started while the first attempt's thread ran"
    assert record is not None and record.state is TaskState.FAILED
    assert "timed out" in (record.last_error or "")



def test_postgres_connections_carry_the_store_timeout_as_lock_and_statement_timeouts(
    pg_url: str,
) -> None:
    from afterwork.stores.postgres import PostgresStore

    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    store.timeout_seconds = 2.5
    store.open()
    try:
        with store._read() as cur:
            cur.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')")
            assert cur.fetchone() == ("2500ms", "2500ms")
    finally:
        store.close()


def test_a_dead_runners_tasks_are_taken_over_after_the_store_refused_the_first_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's look for dead runners of this machine meets a locked store: it looks
    again later, and its claims go on (the refused write must not end its claim loop)."""
    monkeypatch.setattr("afterwork._claiming.DEAD_OWNER_CHECK_EVERY", 1)
    path = tmp_path / "afterwork.db"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead_owner = f"{socket.gethostname()}:{gone.pid}:0000dead"
    app, _ = app_on(f"sqlite:///{path}?busy_timeout=0.1", poll_seconds=0.05,
                    store_timeout_seconds=0.3)
    with TestClient(app), closing(sqlite3.connect(path, isolation_level=None)) as holder:
        now = time.time()
        holder.execute("BEGIN IMMEDIATE")
        holder.execute(
            "INSERT INTO afterwork_tasks (id, name, payload, state, attempts, max_attempts, "
            "lease_owner, lease_until, run_at, created_at) VALUES ('orphan', ?, ?, 'running', "
            "1, 3, ?, 1e12, ?, ?)",
            ("tests.integration.app_tasks:record", '{"a":["orphan"],"k":{},"t":1}',
             dead_owner, now, now))
        holder.execute("COMMIT")
        holder.execute("BEGIN IMMEDIATE")  # at once: the runner sees the row, cannot expire it
        time.sleep(1.0)
        holder.execute("COMMIT")
        deadline = time.monotonic() + 10
        while ("orphan",) not in EVENTS and time.monotonic() < deadline:
            time.sleep(0.05)
    assert ("orphan",) in EVENTS, "the dead runner's task was never taken over"
