"""A worker cut off from PostgreSQL for several leases (its database refuses connections and
its sessions are terminated): it retries with back-off and logs one line when it loses the
store and one when the store is back, not one per attempt; then it reports again."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ..procs import runners_alive, wait_for, worker
from .conftest import APP, app_env

CUT_SECONDS = 8.0  # four leases of 2 s, a dozen heartbeat ticks, forty polls
LOST = "afterwork: lost the store"
BACK = "afterwork: the store is back"


def _set_reachable(admin_url: str, database: str, reachable: bool) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS {str(reachable).lower()}")
        if not reachable:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))


def _last_heartbeat(url: str) -> float:
    import psycopg

    with psycopg.connect(url, connect_timeout=2) as conn:
        row = conn.execute("SELECT MAX(heartbeat_at) FROM afterwork_runners").fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


@pytest.mark.timeout(120)
def test_a_worker_that_lost_the_store_says_so_once_and_once_when_it_is_back(
        pg_server: str, pg_database: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    database = urlsplit(pg_database).path.lstrip("/")
    env = app_env(pg_database, tmp_path / "tasks.jsonl", lease_seconds=2, poll_seconds=0.2,
                  store_timeout_seconds=2)
    runner = worker(APP, env, tmp_path / "worker.log")
    try:
        wait_for(lambda: runners_alive(pg_database) >= 1, 30, "the worker to report")
        _set_reachable(pg_server, database, False)
        try:
            time.sleep(CUT_SECONDS)
        finally:
            _set_reachable(pg_server, database, True)
        restored = time.time()
        wait_for(lambda: BACK in runner.output(), 30, "the worker to say the store is back")
        wait_for(lambda: _last_heartbeat(pg_database) > restored, 30, "a heartbeat after")
    finally:
        runner.stop()
    lines = runner.output().splitlines()
    lost = [line for line in lines if LOST in line]
    back = [line for line in lines if BACK in line]
    per_attempt = [line for line in lines if "failed (" in line or "refused runner writes" in line]
    failed_attempts = int(back[0].split("(")[1].split()[0]) if back else 0
    with capsys.disabled():
        print(f"\nfaults: store cut for {CUT_SECONDS:.0f}s: {len(lost)} 'lost' line(s), "
              f"{len(back)} 'back' line(s), {failed_attempts} failed attempts retried silently")
    assert len(lost) == 1, "\n".join(lines)
    assert len(back) == 1, "\n".join(lines)
    assert per_attempt == [], "\n".join(per_attempt)
    assert failed_attempts >= 3, "the cut was not noticed more than once: it proved nothing"
