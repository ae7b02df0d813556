"""The task page offers only the actions that apply to the task's state, and shows "-", never
"None", for what a task does not have (yet)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks, task
from afterwork.testing import wait_for_tasks

from . import dash_tasks

TOKEN = "page-token"


def test_retry_only_for_failed_cancel_only_for_queued_and_no_none() -> None:
    app = FastAPI()
    Afterwork(app, url="memory://", max_attempts=1, dashboard=True, dashboard_token=TOKEN)

    @app.post("/{kind}")
    def add(kind: str, tasks: BackgroundTasks) -> dict[str, str]:
        if kind == "boom":
            return {"id": tasks.add_task(dash_tasks.boom).id}
        if kind == "later":
            return {"id": tasks.add_task(task(dash_tasks.nap).options(delay=3600), 0.0).id}
        return {"id": tasks.add_task(dash_tasks.nap, 0.0).id}

    with TestClient(app) as client:
        failed, later, done = (client.post(f"/{k}").json()["id"] for k in ("boom", "later", "ok"))
        wait_for_tasks(app)
        client.post("/afterwork/login", data={"token": TOKEN})
        pages = {name: client.get(f"/afterwork/tasks/{task_id}").text
                 for name, task_id in (("failed", failed), ("queued", later), ("succeeded", done))}
    assert "id='retry'" in pages["failed"] and "id='cancel'" not in pages["failed"]
    assert "id='cancel'" in pages["queued"] and "id='retry'" not in pages["queued"]
    assert "id='retry'" not in pages["succeeded"] and "id='cancel'" not in pages["succeeded"]
    for page in pages.values():
        assert ">None<" not in page
    assert "<th>key</th>" in pages["succeeded"] and ">-</td>" in pages["succeeded"]
