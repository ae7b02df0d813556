"""What a page may see and what operators see: the public endpoint shows state, attempts and
timestamps only; operators see everything with secrets masked (by parameter name in any
process, in tracebacks, URL passwords); the login cookie is not the token; HTML is escaped."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks, ConfigurationError, TaskRecord, TaskState
from afterwork._models import Changes
from afterwork._redact import HIDDEN, Redactor
from afterwork.testing import wait_for_tasks
from afterwork.web._api import PUBLIC_FIELDS

from . import dash_tasks
from .test_dashboard import BEARER, TOKEN, make

ROOT = Path(__file__).resolve().parents[2]


def _leaky(url: str = "memory://", **options: Any) -> FastAPI:
    app = make(url, **options)

    @app.post("/leaky")
    def leaky(tasks: BackgroundTasks) -> dict[str, str]:
        dsn = "postgresql://app:db-pa55word@db.internal:5432/prod"
        return {"id": tasks.add_task(dash_tasks.leaky_login, "ann", "hunter2-secret", dsn).id}

    return app


def test_public_endpoint_shows_only_what_a_waiting_page_needs(tmp_path: Path) -> None:
    app = _leaky(f"sqlite:///{tmp_path}/a.db", dashboard=True, dashboard_token=TOKEN)
    with TestClient(app) as client:
        task_id = client.post("/leaky").json()["id"]
        wait_for_tasks(app)
        for url in (f"/afterwork/api/tasks/{task_id}", f"/afterwork/api/tasks/{task_id}?wait=5"):
            public = client.get(url)
            assert public.status_code == 200 and set(public.json()) == set(PUBLIC_FIELDS)
            assert public.json()["state"] == "failed" and public.json()["attempts"] == 1
            for hidden in ("Traceback", "hunter2", "leaky_login", "history", "db.internal"):
                assert hidden not in public.text
        with client.stream("GET", f"/afterwork/api/tasks/{task_id}/events") as stream:
            events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
        assert [set(e) for e in events] == [set(PUBLIC_FIELDS)]
        assert events[0]["finished_at"].endswith("+00:00")  # ISO 8601, UTC


def test_operators_see_everything_with_secrets_masked_in_tracebacks(tmp_path: Path) -> None:
    app = _leaky(f"sqlite:///{tmp_path}/a.db", dashboard=True, dashboard_token=TOKEN)
    with TestClient(app) as client:
        task_id = client.post("/leaky").json()["id"]
        wait_for_tasks(app)
        full = client.get(f"/afterwork/api/tasks/{task_id}", headers=BEARER)
        with client.stream("GET", f"/afterwork/api/tasks/{task_id}/events", headers=BEARER) as s:
            streamed = [json.loads(x[6:]) for x in s.iter_lines() if x.startswith("data: ")]
        listed = client.get("/afterwork/api/tasks", headers=BEARER)
        client.post("/afterwork/login", data={"token": TOKEN})
        page = client.get(f"/afterwork/tasks/{task_id}").text
        overview = client.get("/afterwork/").text
    data = full.json()
    assert listed.json()["tasks"][0]["last_error"] == data["last_error"]
    assert data["name"] == "tests.dashboard.dash_tasks:leaky_login"
    assert "Traceback" in data["last_error"] and "could not log ann in" in data["last_error"]
    assert data["arguments"] == {"args": ["ann", HIDDEN, HIDDEN], "kwargs": {}}
    assert streamed[-1]["last_error"] == data["last_error"]
    for text in (full.text, json.dumps(streamed), page, listed.text, overview):
        assert "hunter2-secret" not in text and "db-pa55word" not in text
    assert HIDDEN in page and "could not log ann in" in page
    assert f"could not log ann in with {HIDDEN}" in overview  # the failed list's error line


def test_a_positional_secret_is_hidden_in_a_process_that_never_ran_the_function(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    app = make(url)
    with TestClient(app) as client:
        task_id = client.post("/login").json()["id"]
        wait_for_tasks(app)

    def view_in_a_new_process(packages: list[str]) -> dict[str, Any]:
        code = textwrap.dedent(f"""
            import json
            from fastapi import FastAPI
            from fastapi.testclient import TestClient
            from afterwork import Afterwork
            app = FastAPI()
            Afterwork(app, url={url!r}, dashboard=True, dashboard_token="t",
                      packages={packages!r}, run_in_app=False)
            with TestClient(app) as client:
                answer = client.get("/afterwork/api/tasks/{task_id}",
                                    headers={{"Authorization": "Bearer t"}})
            print(json.dumps(answer.json()["arguments"]))
        """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=ROOT, timeout=60, check=True)
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    known = view_in_a_new_process(["tests"])  # the app's package: the signature is found
    assert known["args"][0] == "ann" and known["args"][1] == HIDDEN
    unknown = view_in_a_new_process([])  # not found here: every positional value is hidden
    assert "hunter2" not in json.dumps(unknown) and "ann" not in json.dumps(unknown["args"])
    assert unknown["kwargs"] == {}


def test_the_default_list_covers_common_secret_names_and_url_passwords() -> None:
    redactor = Redactor()
    for name in ("pwd", "passwd", "password", "auth", "Authorization", "session_id", "dsn",
                 "token", "client_secret", "api_key", "credentials", "cookie"):
        assert redactor.is_secret(name), name
    assert not redactor.is_secret("user") and not redactor.is_secret("amount")
    payload = json.dumps({"a": [], "k": {"url": "https://bob:s3cr3t-pw@example.com/x",
                                         "note": "plain", "nested": [{"pwd": "p"}]}})
    shown, _ = redactor.arguments("m:f", payload, resolve=lambda _: None)
    assert shown["kwargs"] == {"url": "https://bob:***@example.com/x", "note": "plain",
                               "nested": [{"pwd": HIDDEN}]}
    assert redactor.text("failed at https://bob:s3cr3t-pw@example.com/x", []) == \
        "failed at https://bob:***@example.com/x"


def test_more_secret_names_are_configured_on_afterwork() -> None:
    app = make(dashboard=True, dashboard_token=TOKEN, redact=["iban"])

    @app.post("/pay")
    def pay(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.with_iban, "DE89370400440532013000", 5).id}

    with TestClient(app) as client:
        task_id = client.post("/pay").json()["id"]
        wait_for_tasks(app)
        shown = client.get(f"/afterwork/api/tasks/{task_id}", headers=BEARER).json()["arguments"]
    assert shown == {"args": [HIDDEN, 5], "kwargs": {}}


def test_login_cookie_holds_a_derived_session_and_logout_ends_it() -> None:
    app = make(dashboard=True, dashboard_token=TOKEN)
    with TestClient(app, base_url="https://testserver") as client:
        login = client.post("/afterwork/login", data={"token": TOKEN}, follow_redirects=False)
        cookie = login.headers["set-cookie"]
        assert TOKEN not in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
        assert client.get("/afterwork/").status_code == 200
        assert client.get("/afterwork/api/counts").status_code == 200  # the same session
        assert client.post("/afterwork/logout", follow_redirects=False).status_code == 303
        assert client.get("/afterwork/api/counts").status_code == 401
        evil = client.post("/afterwork/login", data={"token": TOKEN},
                           headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403
    with TestClient(make(dashboard=True, dashboard_token=TOKEN)) as plain:  # http: no Secure
        cookie = plain.post("/afterwork/login", data={"token": TOKEN},
                            follow_redirects=False).headers["set-cookie"]
        assert "Secure" not in cookie


def test_a_broken_auth_check_refuses_operators_and_leaves_the_public_endpoint_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: Request) -> bool:
        raise KeyError("x-user")

    app = make(dashboard=True, dashboard_auth=broken)
    with TestClient(app) as client, caplog.at_level(logging.WARNING):
        task_id = client.post("/nap").json()["id"]
        assert client.get(f"/afterwork/api/tasks/{task_id}").status_code == 200
        assert client.get("/afterwork/api/counts").status_code == 403
        assert client.get("/afterwork/").status_code == 403
        wait_for_tasks(app)
    assert not [r for r in caplog.records if r.exc_info]
    assert "dashboard_auth raised KeyError" in caplog.text


def test_metrics_alone_sit_behind_the_same_token() -> None:
    with pytest.raises(ConfigurationError, match="metrics=True"):
        Afterwork(FastAPI(), url="memory://", metrics=True)
    with TestClient(make(metrics=True, dashboard_token=TOKEN)) as client:
        assert client.get("/afterwork/metrics").status_code == 401
        answer = client.get("/afterwork/metrics", headers=BEARER)
        assert answer.status_code == 200 and "afterwork_tasks" in answer.text
        assert client.get("/afterwork/api/counts", headers=BEARER).status_code == 404  # no dashboard


def test_every_value_put_into_html_is_escaped(tmp_path: Path) -> None:
    app = make(f"sqlite:///{tmp_path}/a.db", dashboard=True, dashboard_token=TOKEN)
    evil_id = "x'><iframe onload=alert(1)>"  # no slash: it stays one path segment
    with TestClient(app) as client:
        aw = app.state.afterwork
        now = time.time()
        aw.store.apply(Changes(inserts=[TaskRecord(
            id=evil_id, name="<script>alert(2)</script>", state=TaskState.FAILED, run_at=now,
            created_at=now, finished_at=now,
            payload=json.dumps({"a": [], "k": {"html": "<img src=x onerror=alert(3)>"}}))]))
        client.post("/afterwork/login", data={"token": TOKEN})
        pages = [client.get("/afterwork/").text,
                 client.get(f"/afterwork/tasks/{quote(evil_id)}").text]
        csrf = pages[1].split("name='csrf' value='")[1].split("'")[0]  # the retry button's form
        refused = client.post(f"/afterwork/tasks/{quote(evil_id)}/cancel", data={"csrf": csrf})
        assert refused.status_code == 409
        pages.append(refused.text)
    for page in pages:
        assert "<script>" not in page and "<img" not in page and "<iframe" not in page
    assert "href='/afterwork/tasks/x%27%3E%3Ciframe" in pages[2]  # the 409 page's link
