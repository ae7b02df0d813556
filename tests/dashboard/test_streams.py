"""Server-Sent Event streams: keep-alive comments, a cap on open streams (429 above it), and
one shared store read per round for every follower, however many streams are open."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks, task

from . import dash_tasks
from .live import serve


def _app(url: str, **options: Any) -> FastAPI:
    app = FastAPI()
    Afterwork(app, url=url, max_attempts=1, inline_in_tests=False, **options)  # as under a server

    @app.post("/later")
    def later(tasks: BackgroundTasks) -> dict[str, str]:  # queued for a minute: streams stay open
        return {"id": tasks.add_task(task(dash_tasks.nap).options(delay=60), 0.0).id}

    @app.post("/nap")
    def nap(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.nap, 1.0).id}

    return app


def test_a_quiet_stream_sends_keep_alive_comments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("afterwork.web._api.KEEPALIVE_SECONDS", 0.2)
    app = _app(f"sqlite:///{tmp_path}/a.db")
    with TestClient(app) as client:
        task_id = client.post("/nap").json()["id"]
        with client.stream("GET", f"/afterwork/api/tasks/{task_id}/events") as stream:
            lines = list(stream.iter_lines())
    assert ": keep-alive" in lines
    assert [x for x in lines if x.startswith("data: ")][-1].count('"succeeded"') == 1


def _open_stream(base: str, task_id: str, opened: list[int], stop: threading.Event) -> None:
    with httpx.Client(timeout=30) as client, \
            client.stream("GET", f"{base}/afterwork/api/tasks/{task_id}/events") as answer:
        opened.append(answer.status_code)
        if answer.status_code == 200:
            for _ in answer.iter_lines():
                if stop.is_set():
                    return


def _wait_for(check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_streams_above_the_cap_get_429(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("afterwork.web._api.KEEPALIVE_SECONDS", 0.3)  # the clients notice `stop`
    app = _app(f"sqlite:///{tmp_path}/a.db", max_streams=2)
    stop = threading.Event()
    with serve(app) as base:
        task_id = httpx.post(f"{base}/later").json()["id"]
        opened: list[int] = []
        threads = [threading.Thread(target=_open_stream, args=(base, task_id, opened, stop))
                   for _ in range(2)]
        for t in threads:
            t.start()
        _wait_for(lambda: len(opened) == 2)
        third = httpx.get(f"{base}/afterwork/api/tasks/{task_id}/events", timeout=30)
        assert third.status_code == 429 and "too many event streams" in third.json()["detail"]
        assert third.headers["retry-after"]
        stop.set()
        for t in threads:
            t.join(30)
    assert opened == [200, 200]


def test_many_streams_share_one_store_read_per_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("afterwork.web._api.KEEPALIVE_SECONDS", 0.3)  # the clients notice `stop`
    app = _app(f"sqlite:///{tmp_path}/a.db")
    aw = app.state.afterwork
    streams = 30
    stop = threading.Event()
    with serve(app) as base:
        ids = [httpx.post(f"{base}/later").json()["id"] for _ in range(streams)]
        opened: list[int] = []
        threads = [threading.Thread(target=_open_stream, args=(base, i, opened, stop)) for i in ids]
        for t in threads:
            t.start()
        _wait_for(lambda: len(opened) == streams)
        time.sleep(0.5)  # let the shared watch take up every follower
        calls: dict[str, list[int]] = {"get": [], "get_many": []}
        real_get, real_many = aw.store.get, aw.store.get_many

        def get(task_id: str) -> Any:
            calls["get"].append(1)
            return real_get(task_id)

        def get_many(task_ids: list[str]) -> Any:
            calls["get_many"].append(len(task_ids))
            return real_many(task_ids)

        aw.store.get, aw.store.get_many = get, get_many
        try:
            time.sleep(2.0)
        finally:
            aw.store.get, aw.store.get_many = real_get, real_many
            stop.set()
        for t in threads:
            t.join(30)
    assert opened == [200] * streams
    assert calls["get"] == []  # no read per client
    assert 1 <= len(calls["get_many"]) <= 10  # one round each WATCH_EVERY_SECONDS (0.5 s)
    assert all(n == streams for n in calls["get_many"])  # every follower in each round


def test_a_change_made_here_reaches_the_stream_without_waiting_for_the_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("afterwork.web._watch.WATCH_EVERY_SECONDS", 600.0)  # the poll never comes
    app = _app(f"sqlite:///{tmp_path}/a.db")
    with TestClient(app) as client:
        task_id = client.post("/nap").json()["id"]
        started = time.monotonic()
        with client.stream("GET", f"/afterwork/api/tasks/{task_id}/events") as stream:
            states = [x for x in stream.iter_lines() if x.startswith("data: ")]
        took = time.monotonic() - started
    assert '"succeeded"' in states[-1]
    assert took < 300  # the runner's events woke the watch; its poll (600 s) never ran
