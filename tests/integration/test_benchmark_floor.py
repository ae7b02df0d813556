"""The benchmarks' durable floor (benchmarks/apps/durable_floor.py) is a reference the docs
compare afterwork with: it must do the durable work it claims, or the comparison flatters
afterwork. Each request's row is committed to the SQLite file (seen from another connection)
by the time its task starts, after the response, and each task's success is written."""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

BODY = {"hostname": "db-1", "ip": "10.0.0.1", "cpus": 4, "memory_gb": 8.0, "os": "linux"}
COUNT = {"durable_floor": "SELECT COUNT(*) FROM tasks",
         "durable_floor_table": "SELECT COUNT(*) FROM afterwork_tasks WHERE state = 'leased'",
         "durable_floor_pg": "SELECT COUNT(*) FROM afterwork_floor"}
DONE = {"durable_floor": "SELECT COUNT(*) FROM tasks",  # deleted on success: none left
        "durable_floor_table": "SELECT COUNT(*) FROM afterwork_tasks WHERE state != 'succeeded'",
        "durable_floor_pg": "SELECT COUNT(*) FROM afterwork_floor"}


@pytest.mark.parametrize("name", ["durable_floor", "durable_floor_table", "durable_floor_pg"])
def test_each_row_is_committed_before_the_response_and_its_success_written(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    monkeypatch.setenv("BENCH_RECORD_FILE", str(tmp_path / "runs"))
    if name.endswith("_pg"):
        url = request.getfixturevalue("pg_database")
        monkeypatch.setenv("BENCH_PG_URL", url)

        def other() -> Any:  # another connection sees only what committed
            import psycopg

            return psycopg.connect(url)
    else:
        db = tmp_path / "floor.db"
        monkeypatch.setenv("AFTERWORK_URL", f"sqlite:///{db}")

        def other() -> Any:
            return closing(sqlite3.connect(db))
    module = importlib.import_module(f"benchmarks.apps.{name}")
    seen: list[int] = []

    def count_committed(*args: object) -> None:  # the task's first step: the row is there
        with other() as conn:
            seen.append(conn.execute(COUNT[name]).fetchone()[0])

    monkeypatch.setattr("benchmarks.apps.durable_floor.finish_run", _async(count_committed))
    with TestClient(module.app) as client:
        for n in range(1, 4):
            assert client.post("/abcd", json=BODY).status_code == 200
            assert len(seen) == n and seen[-1] >= 1  # its task ran, and saw its own row committed
    with other() as conn:  # the app stopped: every success is written
        assert conn.execute(DONE[name]).fetchone()[0] == 0


def _async(fn: Callable[..., None]) -> Callable[..., Awaitable[None]]:
    async def call(*args: object) -> None:
        fn(*args)
    return call
