"""The operator API and page: off unless enabled, behind auth, safe from other sites, secrets
redacted; the public single-task endpoints (long-poll, SSE); metrics and traces."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks, ConfigurationError
from afterwork.testing import wait_for_tasks

from . import dash_tasks

TOKEN = "s3cret-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def make(url: str = "memory://", **options: Any) -> FastAPI:
    app = FastAPI()
    # Detached, as under a server: these tests watch tasks before they finish.
    Afterwork(app, url=url, max_attempts=1, inline_in_tests=False, **options)

    @app.post("/login")
    def login(tasks: BackgroundTasks) -> dict[str, str]:
        handle = tasks.add_task(dash_tasks.login_user, "ann", "hunter2",
                                {"api_key": "k-123", "theme": "dark", "nested": {"token": "t"}})
        return {"id": handle.id}

    @app.post("/boom")
    def boom(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.boom).id}

    @app.post("/nap")
    def nap(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.nap, 0.6).id}

    return app


def test_off_unless_enabled_and_enabling_needs_auth() -> None:
    with TestClient(make()) as client:
        assert client.get("/afterwork/").status_code == 404
        assert client.get("/afterwork/api/tasks", headers=BEARER).status_code == 404
        assert client.get("/afterwork/api/counts").status_code == 404
    with pytest.raises(ConfigurationError, match="dashboard_auth"):
        Afterwork(FastAPI(), url="memory://", dashboard=True)


def test_token_and_the_apps_own_check_guard_the_operator_api() -> None:
    with TestClient(make(dashboard=True, dashboard_token=TOKEN)) as client:
        assert client.get("/afterwork/api/tasks").status_code == 401
        assert client.get("/afterwork/api/tasks", headers={"Authorization": "Bearer no"}).status_code == 401
        assert client.get("/afterwork/api/tasks", headers=BEARER).status_code == 200
        assert client.get("/afterwork/", follow_redirects=False).status_code == 303  # to login
        assert client.post("/afterwork/login", data={"token": "no"}).status_code == 401
        client.post("/afterwork/login", data={"token": TOKEN})
        assert client.get("/afterwork/").status_code == 200  # the login cookie

    def only_admins(request: Request) -> bool:
        return request.headers.get("x-user") == "admin"

    with TestClient(make(dashboard=True, dashboard_auth=only_admins)) as client:
        assert client.get("/afterwork/api/counts", headers={"x-user": "eve"}).status_code == 403
        assert client.get("/afterwork/api/counts", headers={"x-user": "admin"}).status_code == 200


def test_state_changes_refuse_other_sites_and_missing_csrf_tokens() -> None:
    app = make(dashboard=True, dashboard_token=TOKEN)
    with TestClient(app) as client:
        task_id = client.post("/boom").json()["id"]
        wait_for_tasks(app)
        client.post("/afterwork/login", data={"token": TOKEN})  # a cookie session
        url = f"/afterwork/api/tasks/{task_id}/retry"
        assert client.post(url).status_code == 403  # no CSRF token
        evil = {"Origin": "https://evil.example", "x-afterwork-csrf": "x"}
        assert client.post(url, headers=evil).status_code == 403
        page = client.get(f"/afterwork/tasks/{task_id}")
        csrf = page.text.split("name='csrf' value='")[1].split("'")[0]
        done = client.post(f"/afterwork/tasks/{task_id}/retry", data={"csrf": csrf},
                           follow_redirects=False)
        assert done.status_code == 303
        wait_for_tasks(app)
        again = client.post(url, headers=BEARER)  # a Bearer token cannot be forged cross-site
        assert again.status_code == 200 and again.json()["state"] == "queued"
        wait_for_tasks(app)
        assert client.post(f"/afterwork/api/tasks/{task_id}/cancel", headers=BEARER).status_code == 409


def test_secret_looking_arguments_are_redacted_in_api_and_page() -> None:
    app = make(dashboard=True, dashboard_token=TOKEN)
    with TestClient(app) as client:
        task_id = client.post("/login").json()["id"]
        wait_for_tasks(app)
        public = client.get(f"/afterwork/api/tasks/{task_id}").json()
        assert "arguments" not in public  # no arguments without the operator's auth
        shown = client.get(f"/afterwork/api/tasks/{task_id}", headers=BEARER).json()["arguments"]
        assert shown["args"][0] == "ann" and shown["args"][1] == "[redacted]"
        assert shown["args"][2] == {"api_key": "[redacted]", "theme": "dark",
                                    "nested": {"token": "[redacted]"}}
        client.post("/afterwork/login", data={"token": TOKEN})
        page = client.get(f"/afterwork/tasks/{task_id}").text
        assert "hunter2" not in page and "k-123" not in page and "[redacted]" in page


def test_long_poll_and_server_sent_events_follow_one_task(tmp_path: Any) -> None:
    app = make(url=f"sqlite:///{tmp_path}/a.db")
    with TestClient(app) as client:
        task_id = client.post("/nap").json()["id"]
        waited = client.get(f"/afterwork/api/tasks/{task_id}?wait=10").json()
        assert waited["state"] == "succeeded"
        second = client.post("/nap").json()["id"]
        with client.stream("GET", f"/afterwork/api/tasks/{second}/events") as stream:
            states = [json.loads(line[6:])["state"] for line in stream.iter_lines()
                      if line.startswith("data: ")]
    assert states[-1] == "succeeded" and len(states) >= 2  # saw it before it finished
    assert states[0] in ("queued", "running")


def test_lists_pages_counts_and_throughput(tmp_path: Any) -> None:
    app = make(url=f"sqlite:///{tmp_path}/a.db", dashboard=True, dashboard_token=TOKEN)
    with TestClient(app) as client:
        for _ in range(3):
            client.post("/login")
        client.post("/boom")
        wait_for_tasks(app)
        first = client.get("/afterwork/api/tasks?limit=2", headers=BEARER).json()
        rest = client.get(f"/afterwork/api/tasks?limit=2&cursor={first['next']}", headers=BEARER).json()
        ids = [t["id"] for t in first["tasks"] + rest["tasks"]]
        assert len(ids) == len(set(ids)) == 4 and rest["next"] is None
        failed = client.get("/afterwork/api/tasks?state=failed", headers=BEARER).json()["tasks"]
        assert [t["name"] for t in failed] == ["tests.dashboard.dash_tasks:boom"]
        assert client.get("/afterwork/api/tasks?state=bogus", headers=BEARER).status_code == 400
        counts = client.get("/afterwork/api/counts", headers=BEARER).json()
        assert counts["by_state"] == {"succeeded": 3, "failed": 1}
        minutes = client.get("/afterwork/api/throughput", headers=BEARER).json()["minutes"]
        assert len(minutes) == 60 and minutes[-1]["succeeded"] + minutes[-2]["succeeded"] == 3
        client.post("/afterwork/login", data={"token": TOKEN})
        page = client.get("/afterwork/?state=failed").text
        assert "<svg" in page and "boom" in page


def test_prometheus_metrics(tmp_path: Any) -> None:
    app = make(url=f"sqlite:///{tmp_path}/a.db", dashboard=True, dashboard_token=TOKEN, metrics=True)
    with TestClient(app) as client:
        client.post("/login")
        client.post("/boom")
        wait_for_tasks(app)
        assert client.get("/afterwork/metrics").status_code == 401
        text = client.get("/afterwork/metrics", headers=BEARER).text
    assert 'afterwork_tasks{state="succeeded"} 1.0' in text
    assert 'afterwork_tasks{state="failed"} 1.0' in text
    assert "afterwork_task_duration_seconds_count" in text
    assert "afterwork_runners_alive" in text and "afterwork_queue_depth" in text


def test_execution_span_is_linked_to_the_request_that_scheduled_it() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    app = make(tracing=True)
    tracer = trace.get_tracer("test")
    with TestClient(app) as client:
        with tracer.start_as_current_span("request") as request_span:  # stands for the server's span
            client.post("/login", headers=_traceparent(request_span))
        wait_for_tasks(app)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    run = spans["afterwork.run"]
    assert run.links and run.links[0].context.trace_id == request_span.get_span_context().trace_id
    assert spans["afterwork.enqueue"].context.trace_id == request_span.get_span_context().trace_id


def _traceparent(span: Any) -> dict[str, str]:
    ctx = span.get_span_context()
    return {"traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01"}


def test_importing_afterwork_imports_no_metrics_or_tracing_library() -> None:
    # FastAPI itself may import OpenTelemetry's API when it is installed: count what afterwork adds.
    code = ("import sys, fastapi, fastapi.testclient; before = set(sys.modules); import afterwork; "
            "bad = [m for m in set(sys.modules) - before if m.startswith("
            "('prometheus_client', 'opentelemetry'))]; print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


Serve = Callable[..., TestClient]
