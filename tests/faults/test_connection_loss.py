"""PostgreSQL connections killed under load (`pg_terminate_backend` of every connection of
the app, three times a second apart), with a worker running the tasks: the app and the
worker reconnect, nothing accepted is lost, nothing runs twice at once, requests succeed
again at once. A request whose connection died under it gets a 503 (its commit may or may
not have happened: the client's retry is then a second task, never a lost one)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from ..procs import Server, runners_alive, wait_for, worker
from .conftest import APP, app_env
from .runs import accepted, executions, overlapping, summary, under_fault, wait_until_ended

KILLS = 3


@pytest.mark.timeout(180)
def test_terminated_postgres_connections_lose_nothing_and_recover(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    name = f"aw-fault-{uuid.uuid4().hex[:8]}"  # only our processes' connections are killed
    url = f"{pg_url}&application_name={name}"
    log = tmp_path / "tasks.jsonl"
    env = app_env(url, log, lease_seconds=2, store_timeout_seconds=2, run_in_app=0)
    server = Server(APP, env, tmp_path / "app.log")
    runner = worker(APP, env, tmp_path / "worker.log", "--concurrency", "16")
    killed: list[int] = []
    try:
        wait_for(lambda: runners_alive(pg_url) >= 1, 30, "the worker to report")
        admin = psycopg.connect(pg_url, autocommit=True)

        def kill_all() -> None:
            for n in range(KILLS):
                if n:
                    time.sleep(1.0)
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid()", (name,)).fetchall()
                killed.append(len(rows))

        try:
            run = under_fault(server.url, kill_all, lambda: None, fault_seconds=0.0,
                              path="/job/{n}?seconds=0.05&chain=2")
        finally:
            admin.close()
        ids = accepted(run.answers)
        missing = wait_until_ended(log, ids, 60)
    finally:
        server.stop()
        runner.stop()
    runs = executions(log)
    overlaps = overlapping(runs)
    with capsys.disabled():
        print(summary("pg_terminate_backend of the app's and worker's connections",
                      accepted=len(ids), lost=len(missing), overlaps=overlaps,
                      unavailable=run.unavailable, duplicates=len(runs) - len(ids),
                      recovered_seconds=run.recovered_seconds(),
                      extra=f"connections killed: {'+'.join(map(str, killed))}"))
    assert sum(killed) >= KILLS, "no connection was killed: the test proved nothing"
    assert run.other_errors == [], run.other_errors
    assert run.recovered_seconds() is not None
    assert missing == set()
    assert overlaps == 0
