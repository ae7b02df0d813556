"""Locks held by someone else under concurrent load: a SQLite write transaction held open by
another process, and PostgreSQL's `LOCK TABLE` held 10 s. Every request is answered within
the store timeout plus a margin (a 503 while the lock is held, never a hang), nothing is
half-written (a request's two tasks are both stored or neither), nothing accepted is lost, and
requests succeed again once the lock is gone.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from ..procs import Server
from .conftest import APP, app_env
from .runs import (
    FaultRun,
    accepted,
    executions,
    overlapping,
    summary,
    under_fault,
    wait_until_ended,
)

STORE_TIMEOUT_SECONDS = 1.0
MARGIN_SECONDS = 2.5  # a busy 2-core machine: scheduling, the HTTP round trip
PATH = "/job/{n}?seconds=0.05&chain=2"  # two tasks a request: both stored or neither


def _count_rows(url: str) -> int:
    sql = "SELECT COUNT(*) FROM afterwork_tasks"
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return int(conn.execute(sql).fetchone()[0])
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


def _check(name: str, url: str, run: FaultRun, log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = accepted(run.answers)
    missing = wait_until_ended(log, ids, 60)
    rows = _count_rows(url)
    runs = executions(log)
    with capsys.disabled():
        print(summary(name, accepted=len(ids), lost=len(missing), overlaps=overlapping(runs),
                      unavailable=run.unavailable, duplicates=len(runs) - len(ids),
                      recovered_seconds=run.recovered_seconds(),
                      extra=f"slowest answer {run.slowest():.1f}s (store timeout "
                            f"{STORE_TIMEOUT_SECONDS:.0f}s), {rows} rows for {len(ids)} accepted"))
    assert run.unavailable > 0, "no request met the lock: the test proved nothing"
    assert run.other_errors == [], run.other_errors
    assert run.slowest() < STORE_TIMEOUT_SECONDS + MARGIN_SECONDS
    assert rows == len(ids)  # no half-written request, no row for a 503
    assert run.recovered_seconds() is not None
    assert missing == set()
    assert overlapping(runs) == 0


@pytest.mark.timeout(180)
def test_a_held_sqlite_write_lock_gets_503s_within_the_store_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/afterwork.db"
    log = tmp_path / "tasks.jsonl"
    server = Server(APP, app_env(url, log, lease_seconds=2, store_timeout_seconds=STORE_TIMEOUT_SECONDS),
                    tmp_path / "app.log")
    holder = sqlite3.connect(f"{tmp_path}/afterwork.db", isolation_level=None)
    try:
        run = under_fault(server.url, lambda: holder.execute("BEGIN IMMEDIATE"),
                          lambda: holder.execute("ROLLBACK"), fault_seconds=5.0, path=PATH)
        _check("SQLite write lock held 5s", url, run, log, capsys)
    finally:
        holder.close()
        server.stop()


@pytest.mark.timeout(180)
def test_lock_table_on_postgres_gets_503s_within_the_store_timeout(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    log = tmp_path / "tasks.jsonl"
    server = Server(APP, app_env(pg_url, log, lease_seconds=2,
                                 store_timeout_seconds=STORE_TIMEOUT_SECONDS), tmp_path / "app.log")
    holder = psycopg.connect(pg_url, autocommit=True)
    try:
        def lock() -> None:
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE afterwork_tasks IN ACCESS EXCLUSIVE MODE")

        run = under_fault(server.url, lock, lambda: holder.execute("ROLLBACK"),
                          fault_seconds=10.0, path=PATH)
        _check("PostgreSQL LOCK TABLE held 10s", pg_url, run, log, capsys)
    finally:
        holder.close()
        server.stop()
