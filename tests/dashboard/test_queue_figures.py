"""The queues view's rate limits and its throughput and failures over time, and the live
feeds of the queues, runners and a filtered task list (one shared read, as the overview's)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi.testclient import TestClient

from afterwork.testing import wait_for_tasks

from .live import serve
from .test_operator_views import API, BEARER, make


def test_each_queue_shows_its_names_rate_limits_and_five_minute_buckets(durable_url: str) -> None:
    app = make(durable_url)
    with TestClient(app) as client:
        for n in range(3):
            client.post(f"/hook/{n}")
        client.post("/boom")
        wait_for_tasks(app)
        queues = {q["queue"]: q for q in client.get(f"{API}/queues", headers=BEARER).json()["queues"]}
        assert queues["hooks"]["rate_limits"] == [
            {"name": "tests.dashboard.dash_tasks:rated_hook", "starts": 2, "per_seconds": 60.0}]
        # the registry is the process's: other test modules' tasks may be listed, never ours
        assert not [r for r in queues["default"]["rate_limits"] if "dash_tasks" in r["name"]]
        hooks, default = queues["hooks"]["per_5_minutes"], queues["default"]["per_5_minutes"]
        assert len(hooks) == 12 and hooks[0]["minute"] < hooks[-1]["minute"]  # oldest first
        assert [sum(b[k] for b in hooks) for k in ("succeeded", "failed")] == [3, 0]
        assert [sum(b[k] for b in default) for k in ("succeeded", "failed")] == [0, 1]
        assert hooks[-1]["succeeded"] + hooks[-2]["succeeded"] == 3  # finished just now
        client.post("/afterwork/login", data={"token": "views-token"})
        page = client.get("/afterwork/queues").text
        assert "rated_hook: 2 / 60 s" in page  # other queues list other modules' tasks, or "none"
        assert page.count("class=\"chart spark\"") == len(queues)
        assert "0 succeeded, 1 failed" in page  # a bar's figures on hover


def _boards(http: httpx.Client, query: str) -> Iterator[dict[str, str]]:
    with http.stream("GET", f"/afterwork/live{query}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                yield {k: part["html"] for k, part in json.loads(line[6:]).items()}


def _until(boards: Iterator[dict[str, str]], key: str, text: str) -> dict[str, str]:
    deadline = time.monotonic() + 30
    for board in boards:
        if text in board[key] or time.monotonic() > deadline:
            assert text in board[key], board[key]
            return board
    raise AssertionError("the stream ended")


def test_the_queues_runners_and_a_filtered_list_arrive_live(tmp_path: Any) -> None:
    app = make(f"sqlite:///{tmp_path}/aw.db")
    with serve(app) as base, httpx.Client(base_url=base, headers=BEARER, timeout=30) as http:
        assert http.get("/afterwork/live?view=elsewhere").status_code == 400
        queues, runners = _boards(http, "?view=queues"), _boards(http, "?view=runners")
        failed = _boards(http, "?state=failed")
        try:
            assert set(next(queues)) == {"queues"} and "alive" in next(runners)["runners"]
            assert "No tasks yet" in next(failed)["recent"]
            http.post(f"{API}/queues/hooks/pause")
            http.post("/hook/1")
            _until(queues, "queues", "id='resume-hooks'")
            task_id = http.post("/boom").json()["id"]
            board = _until(failed, "recent", task_id)
            assert "id='count-failed'>1<" in board["counts"]  # the overview's parts come along
        finally:
            for stream in (queues, runners, failed):
                stream.close()


def test_a_quiet_live_stream_sends_the_newest_parts_again(tmp_path: Any, monkeypatch: Any) -> None:
    """A tab that missed an update (a reconnect, a busy page) heals at the next keep-alive:
    the keep-alive carries the feed's newest parts again (the page applies changed ones only)."""
    monkeypatch.setattr("afterwork.web._live.KEEPALIVE_SECONDS", 0.3)
    app = make(f"sqlite:///{tmp_path}/aw.db")
    with serve(app) as base, httpx.Client(base_url=base, headers=BEARER, timeout=30) as http:
        queues = _boards(http, "?view=queues")
        try:
            first, again = next(queues), next(queues)  # nothing changed in between
            assert set(first) == {"queues"} and again == first
        finally:
            queues.close()
