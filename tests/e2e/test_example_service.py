"""The example service and a small test app under a real uvicorn, with a real HTTP client."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from ..procs import Server

EXAMPLE = "examples.server_details:app"
THREADS = "tests.e2e.thread_app:app"


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_for_lines(path: Path, count: int, timeout: float = 20.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = lines(path)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{path} has {len(lines(path))} lines, expected {count}")


@pytest.fixture
def example(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    notes = tmp_path / "notifications.jsonl"
    env = {"AFTERWORK_URL": f"sqlite:///{tmp_path}/aw.db", "NOTIFICATIONS_FILE": str(notes),
           "NOTIFY_DELAY_SECONDS": "1"}
    server = Server(EXAMPLE, env, tmp_path / "server.log")
    yield server, notes
    server.stop()


@pytest.mark.parametrize("path", ["/param/hi", "/json/hi", "/attr/hi", "/single/hi", "/hi", "POST /abcd"])
def test_each_variant_runs_its_task_after_the_response(example: tuple[Server, Path], path: str) -> None:
    server, notes = example
    started = time.monotonic()
    if path.startswith("POST"):
        body = {"hostname": "db1", "ip": "10.0.0.7", "cpus": 8, "memory_gb": 32}
        r = httpx.post(f"{server.url}/abcd", json=body, timeout=10)
        assert r.status_code == 201 and r.json()["status"] == "registered"
    else:
        r = httpx.get(f"{server.url}{path}", timeout=10)
        assert r.status_code == 200
    elapsed = time.monotonic() - started
    assert elapsed < 0.8, f"a 1 s notification delayed the response: {elapsed:.2f}s"
    task_id = r.json()["notification_task"]
    assert lines(notes) == []  # not yet: it sleeps 1 s first
    [note] = wait_for_lines(notes, 1)
    assert note["at"] > started  # type: ignore[operator]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = httpx.get(f"{server.url}/afterwork/api/tasks/{task_id}").json()
        if state["state"] == "succeeded":
            break
        time.sleep(0.05)
    assert state["state"] == "succeeded"


def test_abcd_status_codes_and_validation(example: tuple[Server, Path]) -> None:
    server, notes = example
    body = {"hostname": "db2", "ip": "10.0.0.8", "cpus": 4, "memory_gb": 8}
    assert httpx.post(f"{server.url}/abcd", json=body).status_code == 201
    assert httpx.post(f"{server.url}/abcd", json=body).status_code == 200  # known now
    assert httpx.post(f"{server.url}/abcd", json={**body, "cpus": 99999}).status_code == 422
    assert httpx.post(f"{server.url}/abcd", json={**body, "ip": "nope"}).status_code == 422
    assert len(wait_for_lines(notes, 2)) == 2
    time.sleep(1.5)
    assert len(lines(notes)) == 2  # the refused requests scheduled nothing


@pytest.fixture
def threads_app(tmp_path: Path) -> Iterator[tuple[Server, Path, Path]]:
    log = tmp_path / "e2e.jsonl"
    env = {"AFTERWORK_URL": f"sqlite:///{tmp_path}/aw.db", "E2E_LOG": str(log)}
    server = Server(THREADS, env, tmp_path / "server.log")
    yield server, log, tmp_path / "aw.db"
    server.stop()


def test_async_on_the_loop_thread_sync_off_it(threads_app: tuple[Server, Path, Path]) -> None:
    server, log, _ = threads_app
    httpx.get(f"{server.url}/threads")
    found = {e["label"]: e for e in wait_for_lines(log, 2)}
    assert found["async"]["thread"] == found["async"]["loop_thread"]
    assert found["sync"]["thread"] != found["sync"]["loop_thread"]


def test_order_is_kept_within_a_response(threads_app: tuple[Server, Path, Path]) -> None:
    server, log, _ = threads_app
    httpx.get(f"{server.url}/order")
    assert [e["label"] for e in wait_for_lines(log, 3)] == ["first", "second", "third"]


def test_a_raising_endpoint_schedules_nothing(threads_app: tuple[Server, Path, Path]) -> None:
    server, log, db = threads_app
    assert httpx.get(f"{server.url}/http-error").status_code == 409
    assert httpx.get(f"{server.url}/crash").status_code == 500
    httpx.get(f"{server.url}/threads")  # a marker that runs after them
    wait_for_lines(log, 2)
    time.sleep(0.3)
    assert {e["label"] for e in lines(log)} == {"async", "sync"}
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM afterwork_tasks").fetchone()[0] == 2


def test_two_hundred_tasks_survive_sigkill_with_a_backlog(tmp_path: Path) -> None:
    """200 accepted tasks, the server SIGKILLed right after the last response while most are
    still queued, restarted on the same file: every task runs at least once."""
    notes = tmp_path / "notifications.jsonl"
    env = {"AFTERWORK_URL": f"sqlite:///{tmp_path}/aw.db", "NOTIFICATIONS_FILE": str(notes),
           "NOTIFY_DELAY_SECONDS": "0.2"}
    server = Server(EXAMPLE, env, tmp_path / "server.log")
    accepted = set()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for n in range(200):
            r = client.get(f"/param/m{n}")
            assert r.status_code == 200
            accepted.add(f"param: m{n}")
    server.kill()
    with closing(sqlite3.connect(tmp_path / "aw.db")) as conn:
        done, = conn.execute("SELECT COUNT(*) FROM afterwork_tasks WHERE state = 'succeeded'").fetchone()
        total, = conn.execute("SELECT COUNT(*) FROM afterwork_tasks").fetchone()
    assert total == 200
    assert done < 150, f"only {200 - done} left at the kill: no real backlog"
    server = Server(EXAMPLE, env, tmp_path / "server2.log")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and {n["message"] for n in lines(notes)} < accepted:
            time.sleep(0.2)
    finally:
        server.stop()
    assert {n["message"] for n in lines(notes)} >= accepted


QUESTION = "tests.e2e.question_app:app"
ANSWER_WAYS = ["param", "json", "attr", "single"]


def test_each_way_of_the_question_survives_kill_9_mid_task_with_only_afterwork_added(tmp_path: Path) -> None:
    """FastAPI's own classes, made wherever the answer makes them: stored before the response,
    so a server killed while the tasks run loses none of them."""
    notes = tmp_path / "notes.jsonl"
    env = {"AFTERWORK_URL": f"sqlite:///{tmp_path}/aw.db", "NOTES_FILE": str(notes),
           "NOTIFY_SECONDS": "30"}
    first = Server(QUESTION, env, tmp_path / "first.log")
    try:
        for way in ANSWER_WAYS:
            assert httpx.post(f"{first.url}/{way}", timeout=10).json() == {"way": way}
        started = wait_for_lines(notes, len(ANSWER_WAYS))
        assert sorted(n["way"] for n in started) == sorted(ANSWER_WAYS)
        assert {n["event"] for n in started} == {"start"}
    finally:
        first.kill()  # SIGKILL while every notification is half-way
    second = Server(QUESTION, {**env, "NOTIFY_SECONDS": "0"}, tmp_path / "second.log")
    try:
        found = wait_for_lines(notes, 3 * len(ANSWER_WAYS), timeout=60)
    finally:
        second.stop()
    done = [n for n in found if n["event"] == "done"]
    assert sorted(n["way"] for n in done) == sorted(ANSWER_WAYS)
    assert {n["pid"] for n in done} == {second.pid}


def test_the_examples_get_msg_route_leaves_the_dashboards_paths_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notifications.jsonl"
    env = {"AFTERWORK_URL": f"sqlite:///{tmp_path}/aw.db", "NOTIFICATIONS_FILE": str(notes),
           "AFTERWORK_DASHBOARD_TOKEN": "example-token"}
    server = Server(EXAMPLE, env, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            to_page = client.get("/afterwork")  # GET /{msg} would take it and notify "afterwork"
            assert to_page.status_code == 307 and to_page.headers["location"].endswith("/afterwork/")
            assert client.get("/afterwork/login").status_code == 200
            task_id = client.get("/hello").json()["notification_task"]
            assert client.get(f"/afterwork/api/tasks/{task_id}").json()["id"] == task_id
        assert [note["subject"] for note in wait_for_lines(notes, 1)] == ["hello"]
    finally:
        server.stop()
