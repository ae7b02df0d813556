"""A slow, locked or dropped store: API reads run on afterwork's own few threads (the app's
endpoints keep theirs), faults answer 503, and no answer names the store's file, host,
database or password (the log has the reason, with the password masked)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks

from . import dash_tasks
from .live import serve

TOKEN = "fault-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
API_READS = 50  # more than the 40 threads of the app's shared pool


def _app(url: str, **options: Any) -> FastAPI:
    app = FastAPI()
    Afterwork(app, url=url, max_attempts=1, dashboard=True, dashboard_token=TOKEN,
              inline_in_tests=False, **options)  # as under a server

    @app.get("/plain")
    def plain() -> dict[str, bool]:  # a `def` endpoint: it needs a thread of the app's pool
        return {"ok": True}

    @app.post("/nap")
    def nap(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.nap, 0.0).id}

    return app


def test_a_hung_store_leaves_the_apps_own_endpoints_free(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    app = _app(pg_url)
    answers: list[tuple[int, str]] = []

    def api_reads(base: str, count: int) -> list[threading.Thread]:
        def read() -> None:
            answer = httpx.get(f"{base}/afterwork/api/tasks", headers=BEARER, timeout=60)
            answers.append((answer.status_code, answer.text))

        threads = [threading.Thread(target=read) for _ in range(count)]
        for t in threads:
            t.start()
        return threads

    with serve(app) as base:
        httpx.post(f"{base}/nap")
        with psycopg.connect(pg_url) as holder:
            holder.execute("LOCK TABLE afterwork_tasks IN ACCESS EXCLUSIVE MODE")  # reads hang
            readers = api_reads(base, API_READS)
            time.sleep(0.5)  # the API reads have started: on the API's threads, or waiting for one
            plain = httpx.get(f"{base}/plain", timeout=60)
            answered_before_the_plain_endpoint = list(answers)
            holder.rollback()
        for t in readers:
            t.join(60)
        assert plain.status_code == 200
        assert answered_before_the_plain_endpoint == []  # they were all still waiting
        assert [code for code, _ in answers] == [200] * API_READS  # and all answer once it is free

        answers.clear()
        monkeypatch.setattr("afterwork.web._watch.READ_WAIT_SECONDS", 0.5)
        with psycopg.connect(pg_url) as holder:
            holder.execute("LOCK TABLE afterwork_tasks IN ACCESS EXCLUSIVE MODE")
            readers = api_reads(base, 8)  # 4 hold the API's threads, 4 wait for one and give up
            deadline = time.monotonic() + 30
            while len(answers) < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            busy = list(answers)
            holder.rollback()
        for t in readers:
            t.join(60)
    assert len(busy) >= 4 and {code for code, _ in busy} == {503}  # while the lock was held
    for _, text in busy:
        assert "too slow" in text and "127.0.0.1" not in text and "search_path" not in text


def test_reads_right_after_a_connection_drop_answer_503_or_200_never_500(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg

    name = f"aw-drop-{uuid.uuid4().hex[:8]}"  # only this app's connections are dropped
    url = pg_url + f"&password=hunter2-in-the-url&application_name={name}"  # trust ignores it
    app = _app(url)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.WARNING):
        task_id = client.post("/nap").json()["id"]
        for _ in range(3):
            with psycopg.connect(pg_url, autocommit=True) as admin:
                dropped = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                        "WHERE application_name = %s", (name,)).fetchall()
            assert dropped, "the app's connections were not found to drop"
            for path in ("/afterwork/api/tasks", "/afterwork/api/counts", f"/afterwork/api/tasks/{task_id}"):
                answer = client.get(path, headers=BEARER)
                assert answer.status_code in (200, 503), (path, answer.text)
                assert "hunter2" not in answer.text and "127.0.0.1" not in answer.text
        assert client.get("/afterwork/api/counts", headers=BEARER).status_code == 200  # recovered
    assert "hunter2" not in caplog.text


def test_a_503_for_a_locked_file_does_not_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "secret-place" / "a.db"
    app = _app(f"sqlite:///{path}?busy_timeout=0.3")
    with TestClient(app) as client:
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # the write lock: storing the request's task fails
            refused = client.post("/nap")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert refused.status_code == 503 and "could not be stored" in refused.json()["detail"]
        assert "secret-place" not in refused.text and str(tmp_path) not in refused.text
        assert client.post("/nap").status_code == 200  # recovered
