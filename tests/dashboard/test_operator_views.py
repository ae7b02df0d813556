"""The operator's views and actions through the API: a paused queue that real runners (two
apps on one store) leave alone until it is resumed; queue and runner figures, a dead runner
flagged with what it held; bulk retry with its count first; the live stream."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks, task
from afterwork._models import Changes, Heartbeat
from afterwork.stores import open_store
from afterwork.testing import afterwork_of, wait_for_tasks

from . import dash_tasks
from .live import serve

TOKEN = "views-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
API = "/afterwork/api"


def make(url: str, **options: Any) -> FastAPI:
    app = FastAPI()
    Afterwork(app, url=url, max_attempts=1, inline_in_tests=False, poll_seconds=0.05,
              dashboard=True, dashboard_token=TOKEN, **options)

    @app.post("/hook/{n}")
    def hook(n: int, tasks: BackgroundTasks, queue: str = "hooks") -> dict[str, str]:
        return {"id": tasks.add_task(task(dash_tasks.nap).options(queue=queue), 0).id}

    @app.post("/boom")
    def boom(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.boom).id}

    return app


def _states(client: TestClient, ids: list[str]) -> list[str]:
    return [client.get(f"{API}/tasks/{i}").json()["state"] for i in ids]


def test_a_paused_queue_is_left_alone_by_every_runner_until_resumed(durable_url: str) -> None:
    adder, other = make(durable_url), make(durable_url)  # two runners, as two processes
    with TestClient(adder) as client, TestClient(other):
        assert client.post(f"{API}/queues/hooks/pause", headers=BEARER).json() == {
            "queue": "hooks", "paused": True}
        ids = [client.post(f"/hook/{n}").json()["id"] for n in range(3)]
        time.sleep(1.0)  # twenty claim rounds of each runner
        assert _states(client, ids) == ["queued"] * 3
        queues = {q["queue"]: q for q in client.get(f"{API}/queues", headers=BEARER).json()["queues"]}
        assert queues["hooks"]["paused"] and queues["hooks"]["waiting"] == 3
        assert client.post(f"{API}/queues/hooks/resume", headers=BEARER).status_code == 200
        wait_for_tasks(adder, timeout=30)
        assert _states(client, ids) == ["succeeded"] * 3
        assert not client.get(f"{API}/queues", headers=BEARER).json()["queues"][-1]["paused"]


def test_pausing_needs_the_operator_and_this_site(tmp_path: Any) -> None:
    with TestClient(make(f"sqlite:///{tmp_path}/aw.db")) as client:
        assert client.post(f"{API}/queues/hooks/pause").status_code == 401
        refused = client.post(f"{API}/queues/hooks/pause",
                              headers={**BEARER, "Origin": "https://evil.example"})
        assert refused.status_code == 403
        assert client.post(f"{API}/queues/hooks/explode", headers=BEARER).status_code == 404


def test_queue_figures_and_runners_with_a_dead_one_flagged(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/aw.db"
    app = make(url, queue_limits={"hooks": 4}, run_queues=("default", "hooks"))
    with TestClient(app) as client:
        client.post("/boom")
        client.post("/hook/1")
        wait_for_tasks(app)
        store = open_store(url)
        store.open()
        long_ago = time.time() - 3600
        gone = Heartbeat("gone-host:4242:x", long_ago, "worker", "gone-host", 4242, ("hooks",), 2)
        store.apply(Changes(heartbeat=gone))
        held_id = client.post("/hook/2?queue=elsewhere").json()["id"]  # no live runner takes it
        wait = time.monotonic() + 10
        while not (held := store.claim("gone-host:4242:x", 1, time.time())) and time.monotonic() < wait:
            time.sleep(0.05)  # the task is written after the response
        assert [r.id for r in held] == [held_id]
        store.close()

        queues = {q["queue"]: q for q in client.get(f"{API}/queues", headers=BEARER).json()["queues"]}
        assert queues["default"]["failed_last_hour"] == 1 and queues["default"]["failure_rate"] == 1.0
        assert queues["hooks"]["limit"] == 4 and queues["hooks"]["succeeded_last_hour"] == 1
        assert queues["elsewhere"]["running"] == 1  # the dead runner's lease, until it expires
        runners = client.get(f"{API}/runners", headers=BEARER).json()["runners"]
        mine = next(r for r in runners if r["pid"] == os.getpid())
        assert mine["alive"] and mine["concurrency"] > 0
        dead = next(r for r in runners if r["host"] == "gone-host")
        assert not dead["alive"] and dead["held"] == [held_id] and dead["queues"] == ["hooks"]
        assert mine["queues"] == ["default", "hooks"]


def test_bulk_retry_counts_first_then_acts_on_all_that_match(tmp_path: Any) -> None:
    app = make(f"sqlite:///{tmp_path}/aw.db")
    with TestClient(app) as client:
        ids = [client.post("/boom").json()["id"] for _ in range(3)]
        wait_for_tasks(app)
        bulk = f"{API}/tasks/bulk"
        match = {"action": "retry", "match": {"state": "failed"}}
        assert client.post(bulk, json={**match, "preview": True}, headers=BEARER).json()["count"] == 3
        assert _states(client, ids) == ["failed"] * 3  # a preview changes nothing
        assert client.post(bulk, json=match).status_code == 401
        assert client.post(bulk, json={"action": "delete-all"}, headers=BEARER).status_code == 400
        done = client.post(bulk, json=match, headers=BEARER).json()
        assert done == {"done": 3, "refused": []}
        wait_for_tasks(app)
        again = client.post(bulk, json={"action": "cancel", "ids": ids}, headers=BEARER).json()
        assert again["done"] == 0 and len(again["refused"]) == 3  # failed again: not cancellable


def test_the_live_stream_brings_a_change_to_every_open_tab_from_one_shared_read(tmp_path: Any) -> None:
    app = make(f"sqlite:///{tmp_path}/aw.db")
    aw = afterwork_of(app)
    tab_count = 8
    with serve(app) as base, httpx.Client(base_url=base, headers=BEARER, timeout=20) as http:
        streams = [http.stream("GET", "/afterwork/live") for _ in range(tab_count)]
        tabs = [s.__enter__() for s in streams]
        reads: list[int] = []
        real_counts = aw.store.counts
        try:
            lines = [t.iter_lines() for t in tabs]

            def next_board(it: Any) -> dict[str, str]:
                for line in it:
                    if line.startswith("data: "):
                        return {k: part["html"] for k, part in json.loads(line[6:]).items()}
                raise AssertionError("the stream ended")

            firsts = [next_board(it) for it in lines]
            assert all("id='count-failed'>0<" in f["counts"] for f in firsts)

            def counted() -> Any:
                reads.append(1)
                return real_counts()

            aw.store.counts = counted  # type: ignore[method-assign]
            http.post("/boom")
            for it in lines:
                board = next_board(it)
                while "id='count-failed'>1<" not in board["counts"]:
                    board = next_board(it)
        finally:
            aw.store.counts = real_counts  # type: ignore[method-assign]
            for s in streams:
                s.__exit__(None, None, None)
    assert 1 <= len(reads) < tab_count  # shared: not one read per tab


def test_schedules_show_next_and_last_run_and_run_one_now(tmp_path: Any) -> None:
    from afterwork import periodic
    from afterwork._schedule import SCHEDULES

    nightly = periodic(cron="0 3 * * *", kwargs={"seconds": 0})(dash_tasks.nap)
    try:
        app = make(f"sqlite:///{tmp_path}/aw.db")
        with TestClient(app) as client:
            (shown,) = client.get(f"{API}/schedules", headers=BEARER).json()["schedules"]
            assert shown["cron"] == "0 3 * * *" and shown["next_at"].endswith("T03:00:00+00:00")
            assert shown["last_id"] is None  # a new schedule does not run its past tick
            assert client.post(f"{API}/schedules/{shown['name']}/run").status_code == 401
            assert client.post(f"{API}/schedules/nope/run", headers=BEARER).status_code == 404
            ran = client.post(f"{API}/schedules/{shown['name']}/run", headers=BEARER).json()["id"]
            wait_for_tasks(app)
            (shown,) = client.get(f"{API}/schedules", headers=BEARER).json()["schedules"]
            assert shown["last_id"] == ran and shown["last_state"] == "succeeded"
            assert ran in client.get("/afterwork/schedules", headers=BEARER).text
    finally:
        SCHEDULES[:] = [s for s in SCHEDULES if s.task is not nightly]


def test_per_name_counts_failure_rates_and_percentiles(tmp_path: Any) -> None:
    app = make(f"sqlite:///{tmp_path}/aw.db")

    @app.post("/slow")
    def slow(tasks: BackgroundTasks) -> None:
        tasks.add_task(dash_tasks.nap, 0.2)

    with TestClient(app) as client:
        for _ in range(2):
            client.post("/boom")
            client.post("/slow")
        wait_for_tasks(app)
        assert client.get(f"{API}/names?window=2y", headers=BEARER).status_code == 400
        shown = client.get(f"{API}/names?window=15m", headers=BEARER).json()
        names = {n["name"].rsplit(":", 1)[-1]: n for n in shown["names"]}
        assert names["boom"]["count"] == 2 and names["boom"]["failure_rate"] == 1.0
        assert names["nap"]["failure_rate"] == 0.0
        assert names["nap"]["run_p50"] >= 0.2 and names["nap"]["run_p95"] >= names["nap"]["run_p50"]
        assert names["nap"]["wait_p50"] >= 0.0
        page = client.get("/afterwork/names?window=15m", headers=BEARER).text
        assert "dash_tasks:nap" in page and "<svg" in page


def test_search_by_an_arguments_value_never_by_a_secret_one(durable_url: str) -> None:
    app = make(durable_url)

    @app.post("/login")
    def login(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.login_user, "ann_100%", "hunter2", {"theme": "dark"}).id}

    with TestClient(app) as client:
        task_id = client.post("/login").json()["id"]
        client.post("/boom")
        wait_for_tasks(app)

        def found(arg: str) -> int:
            preview = {"action": "retry", "match": {"arg": arg}, "preview": True}
            count: int = client.post(f"{API}/tasks/bulk", json=preview, headers=BEARER).json()["count"]
            return count

        assert found("ann_100%") == 1 and found("dark") == 1  # LIKE's own characters, escaped
        assert found("hunter2") == 0 and found("hunter") == 0  # the password is masked
        assert found("ann_1000") == 0
        assert task_id in client.get("/afterwork/?arg=ann_100%25", headers=BEARER).text
        assert task_id not in client.get("/afterwork/?arg=hunter2", headers=BEARER).text
        assert task_id in client.get(f"/afterwork/?id={task_id[:20]}", headers=BEARER).text
        assert client.post(f"{API}/tasks/bulk", headers=BEARER, json={
            "action": "retry", "match": {"since": "yesterday"}}).status_code == 400
