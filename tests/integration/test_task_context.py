"""A task handed over by its request runs in the runner's context, not the request's: context
variables the request set do not follow its tasks (each task starts from a copy of the
runner's own context, as a task the runner creates on its own loop turn would)."""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks
from afterwork.testing import wait_for_tasks

REQUEST_USER: ContextVar[str] = ContextVar("request_user", default="none")
SEEN: list[str] = []


async def record_user() -> None:
    SEEN.append(REQUEST_USER.get())


def test_a_requests_context_variables_do_not_follow_its_tasks(tmp_path: Path) -> None:
    app = FastAPI()
    Afterwork(app, url=f"sqlite:///{tmp_path}/a.db", inline_in_tests=False)

    @app.post("/as/{user}")
    async def as_user(user: str, tasks: BackgroundTasks) -> dict[str, str]:
        REQUEST_USER.set(user)
        tasks.add_task(record_user)
        return {}

    SEEN.clear()
    with TestClient(app) as client:
        for user in ("ann", "bob"):
            client.post(f"/as/{user}")
        wait_for_tasks(app)
    assert SEEN == ["none", "none"]
