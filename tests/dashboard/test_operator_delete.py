"""Deleting tasks as an operator: in bulk (counted first) and one at a time, on both durable
stores; queued and finished tasks go with their results, a task a runner holds stays."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from afterwork import BackgroundTasks
from afterwork.stores import open_store
from afterwork.testing import wait_for_tasks

from . import dash_tasks
from .test_operator_views import API, BEARER, TOKEN, make


def _outputs_of(url: str, task_id: str) -> int:
    store = open_store(url)
    store.open()
    try:
        with store._read() as cur:  # type: ignore[attr-defined]
            cur.execute(store._sql("SELECT COUNT(*) FROM afterwork_task_outputs WHERE task_id = ?"),  # type: ignore[attr-defined]
                        (task_id,))
            return int(cur.fetchone()[0])
    finally:
        store.close()


def test_bulk_delete_counts_first_then_deletes_all_but_what_a_runner_holds(durable_url: str) -> None:
    app = make(durable_url, run_queues=("default", "hooks"))

    @app.post("/answer")
    def add_answer(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.answer).id}

    with TestClient(app) as client:
        failed = [client.post("/boom").json()["id"] for _ in range(2)]
        answered = client.post("/answer").json()["id"]
        wait_for_tasks(app)
        assert _outputs_of(durable_url, answered) == 1
        client.post(f"{API}/queues/hooks/pause", headers=BEARER)
        waiting = client.post("/hook/1").json()["id"]
        held = client.post("/hook/2?queue=elsewhere").json()["id"]  # no runner of the app takes it
        store = open_store(durable_url)
        store.open()
        deadline = time.monotonic() + 10
        while not store.claim("other-host:1:x", 1, time.time()) and time.monotonic() < deadline:
            time.sleep(0.05)  # the task is written after the response
        store.close()

        bulk = f"{API}/tasks/bulk"
        preview = {"action": "delete", "match": {"state": "failed"}, "preview": True}
        assert client.post(bulk, json=preview, headers=BEARER).json()["count"] == 2
        assert [client.get(f"{API}/tasks/{i}").status_code for i in failed] == [200, 200]
        assert client.post(bulk, json={"action": "delete", "ids": failed}).status_code == 401
        ids = [*failed, answered, waiting, held, "no-such-task"]
        done: dict[str, Any] = client.post(bulk, json={"action": "delete", "ids": ids},
                                           headers=BEARER).json()
        assert done["done"] == 4
        assert [r["id"] for r in done["refused"]] == [held, "no-such-task"]
        assert "held by a runner" in done["refused"][0]["detail"]
        assert [client.get(f"{API}/tasks/{i}").status_code for i in ids] == [404] * 4 + [200, 404]
        assert _outputs_of(durable_url, answered) == 0  # its result went with it


def test_one_task_is_deleted_from_its_page_after_a_confirmation(tmp_path: Any) -> None:
    app = make(f"sqlite:///{tmp_path}/aw.db")
    with TestClient(app) as client:
        task_id = client.post("/boom").json()["id"]
        wait_for_tasks(app)
        client.post("/afterwork/login", data={"token": TOKEN})
        page = client.get(f"/afterwork/tasks/{task_id}")
        assert "id='delete'" in page.text and "data-confirm=" in page.text
        gone = client.post(f"/afterwork/tasks/{task_id}/delete",
                           data={"csrf": client.cookies.get("afterwork_csrf")}, follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"] == "/afterwork/"
        assert client.get(f"{API}/tasks/{task_id}").status_code == 404
