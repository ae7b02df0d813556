"""The status API and dashboard are routes of the app: the app's own middleware (sessions,
CORS, its own http middleware) runs for them whether it was added before or after
`Afterwork(app)`, and no route of the app (`GET /{msg}`, a catch-all) takes their paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware

from afterwork import Afterwork, BackgroundTasks
from afterwork.testing import wait_for_tasks

from . import dash_tasks
from .live import serve

SHOP = "https://shop.example"


def _with_middleware(order: str, add: Callable[[FastAPI], None], **options: Any) -> FastAPI:
    """An app with the user's middleware added before or after Afterwork(app)."""
    app = FastAPI()
    if order == "before":
        add(app)
    Afterwork(app, url="memory://", max_attempts=1, **options)
    if order == "after":
        add(app)

    @app.post("/boom")
    def boom(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.boom).id}

    return app


def _sessions(app: FastAPI) -> None:
    app.add_middleware(SessionMiddleware, secret_key="session-secret-for-tests")

    @app.post("/sign-in/{user}")
    def sign_in(user: str, request: Request) -> dict[str, str]:
        request.session["user"] = user
        return {"user": user}


def _is_admin(request: Request) -> bool:
    return bool(request.session.get("user") == "admin")


@pytest.mark.parametrize("order", ["before", "after"])
def test_dashboard_auth_reads_the_session_of_the_apps_middleware(order: str) -> None:
    app = _with_middleware(order, _sessions, dashboard=True, dashboard_auth=_is_admin)
    with TestClient(app) as client:
        task_id = client.post("/boom").json()["id"]
        assert client.get("/afterwork/api/counts").status_code == 403  # no session yet
        client.post("/sign-in/eve")
        assert client.get("/afterwork/api/counts").status_code == 403
        assert "name" not in client.get(f"/afterwork/api/tasks/{task_id}").json()  # public view
        client.post("/sign-in/admin")
        assert client.get("/afterwork/api/counts").json()["by_state"] == {"failed": 1}
        assert client.get(f"/afterwork/api/tasks/{task_id}").json()["name"] == (
            "tests.dashboard.dash_tasks:boom")  # the operator's view, from the session
        page = client.get("/afterwork/")
        assert page.status_code == 200 and "boom on purpose" in page.text
        csrf = {"x-afterwork-csrf": client.cookies["afterwork_csrf"]}
        retried = client.post(f"/afterwork/api/tasks/{task_id}/retry", headers=csrf)
        assert retried.status_code == 200, retried.text
        wait_for_tasks(app)


def _cors(app: FastAPI) -> None:
    app.add_middleware(CORSMiddleware, allow_origins=[SHOP], allow_methods=["*"],
                       allow_headers=["*"])

    @app.middleware("http")
    async def stamp(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["x-served-by"] = "the app's own middleware"
        return response


@pytest.mark.parametrize("order", ["before", "after"])
def test_the_apps_cors_and_http_middleware_apply_to_the_status_api(order: str) -> None:
    app = _with_middleware(order, _cors)
    with TestClient(app) as client:
        task_id = client.post("/boom").json()["id"]
        wait_for_tasks(app)
        answer = client.get(f"/afterwork/api/tasks/{task_id}", headers={"Origin": SHOP})
        assert answer.json()["state"] == "failed"
        assert answer.headers["access-control-allow-origin"] == SHOP
        assert answer.headers["x-served-by"] == "the app's own middleware"
        missing = client.get("/afterwork/api/nothing-here", headers={"Origin": SHOP})
        assert missing.status_code == 404 and "no afterwork endpoint" in missing.json()["detail"]
        assert missing.headers["access-control-allow-origin"] == SHOP
        preflight = client.options(f"/afterwork/api/tasks/{task_id}/events", headers={
            "Origin": SHOP, "Access-Control-Request-Method": "GET"})
        assert preflight.status_code == 200  # CORS answers it, not afterwork's 405
        assert preflight.headers["access-control-allow-origin"] == SHOP
        other = client.get(f"/afterwork/api/tasks/{task_id}", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_an_event_stream_carries_the_apps_cors_headers_under_a_real_server() -> None:
    app = _with_middleware("after", _cors)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        task_id = client.post("/boom").json()["id"]
        with client.stream("GET", f"/afterwork/api/tasks/{task_id}/events",
                           headers={"Origin": SHOP}) as stream:
            assert stream.headers["access-control-allow-origin"] == SHOP
            assert stream.headers["content-type"].startswith("text/event-stream")
            data = [line for line in stream.iter_lines() if line.startswith("data: ")]
        assert '"failed"' in data[-1]


def test_the_apps_routes_never_take_afterworks_paths() -> None:
    app = FastAPI()
    taken: list[str] = []

    # Declared before Afterwork(app), as greedy as routes get: the example's GET /{msg}, and
    # a catch-all for every method.
    @app.get("/{msg}", name="msg")
    def by_msg(msg: str) -> dict[str, str]:
        taken.append(msg)
        return {"msg": msg}

    @app.api_route("/{rest:path}", methods=["GET", "POST", "DELETE"], include_in_schema=False)
    def catch_all(rest: str) -> dict[str, str]:
        taken.append(rest)
        return {"rest": rest}

    Afterwork(app, url="memory://", dashboard=True, dashboard_token="tok")
    bearer = {"Authorization": "Bearer tok"}
    with TestClient(app) as client:
        to_page = client.get("/afterwork", follow_redirects=False)
        assert to_page.status_code in (307, 308)  # afterwork's page, not GET /{msg}
        assert to_page.headers["location"].endswith("/afterwork/")
        assert client.get("/afterwork/", headers=bearer).status_code == 200
        assert client.get("/afterwork/api/tasks", headers=bearer).json() == {"tasks": [], "next": None}
        unknown = client.get("/afterwork/api/tasks/no-such-id")
        assert unknown.status_code == 404 and unknown.json() == {"detail": "no task 'no-such-id'"}
        assert client.get("/afterwork/api/elsewhere").json()["detail"].startswith("no afterwork endpoint")
        wrong_method = client.delete("/afterwork/api/counts")
        assert wrong_method.status_code == 405 and wrong_method.json() == {"detail": "Method Not Allowed"}
        assert taken == []
        assert client.get("/hello").json() == {"msg": "hello"}  # the app's own routes still answer
        assert client.get("/afterworks/x").json() == {"rest": "afterworks/x"}  # not a prefix of ours
        assert taken == ["hello", "afterworks/x"]
        schema = client.get("/openapi.json").json()
        assert list(schema["paths"]) == ["/{msg}"]  # afterwork's endpoints are not in it
    assert app.url_path_for("msg", msg="hi") == "/hi"



def test_the_api_reads_the_store_of_an_afterwork_configured_anew_after_install(tmp_path: Any) -> None:
    app = FastAPI()
    aw = Afterwork(app, url=f"sqlite:///{tmp_path}/first.db", max_attempts=1)
    aw.configure(url=f"sqlite:///{tmp_path}/second.db")  # as `afterwork worker`'s flags do

    @app.post("/boom")
    def boom(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.boom).id}

    with TestClient(app) as client:
        task_id = client.post("/boom").json()["id"]
        wait_for_tasks(app)
        assert client.get(f"/afterwork/api/tasks/{task_id}").json()["state"] == "failed"
    assert not (tmp_path / "first.db").exists()
