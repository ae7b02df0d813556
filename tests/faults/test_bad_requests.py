"""Bad parameters and paths under the API's and the dashboard's prefixes: each gets a 4xx with
a short JSON body (never a 500), and nothing logs a traceback for a client's mistake. Explicit
cases first, then hypothesis fuzzing methods, paths, query parameters and auth against a real
app on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afterwork import Afterwork, BackgroundTasks, TaskRecord, TaskState
from afterwork._models import Changes
from afterwork.testing import wait_for_tasks
from afterwork.web._api import LIST_LIMIT_MAX

from ..dashboard import dash_tasks

TOKEN = "fuzz-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _app(url: str) -> FastAPI:
    app = FastAPI()
    Afterwork(app, url=url, max_attempts=1, dashboard=True, dashboard_token=TOKEN, metrics=True)

    @app.post("/boom")
    def boom(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.boom).id}

    return app


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert not bad, bad[0].getMessage()


def test_bad_parameters_and_paths_get_a_short_json_4xx(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(f"sqlite:///{tmp_path}/a.db")
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.DEBUG):
        for url, status in [
            ("/afterwork/api/tasks?limit=abc", 400), ("/afterwork/api/tasks?limit=nan", 400),
            ("/afterwork/api/tasks?cursor=x/y", 400), ("/afterwork/api/tasks?since=yesterday", 400),
            ("/afterwork/api/tasks?until=1e999", 400), ("/afterwork/api/tasks?state=nope", 400),
            ("/afterwork/api/throughput?minutes=abc", 400), ("/afterwork/api/nothing", 404),
            ("/afterwork/api/tasks/x%00y", 404), (f"/afterwork/api/tasks/{'a' * 5000}", 404),
            (f"/afterwork/api/tasks/{uuid.uuid4()}?wait=inf", 400), ("/afterwork/api/", 404),
            ("/afterwork/nothing/here", 404), ("/afterwork/api/tasks?name=a%00b", 400),
        ]:
            answer = client.get(url, headers=BEARER)
            assert answer.status_code == status, url
            assert answer.headers["content-type"] == "application/json"
            assert len(answer.json()["detail"]) < 300
        assert client.delete("/afterwork/api/tasks", headers=BEARER).status_code == 405
        assert client.put("/afterwork/api/counts").status_code == 405
        assert client.get("/afterwork/api/tasks/x/retry").status_code == 405
        minutes = client.get("/afterwork/api/throughput?minutes=-5", headers=BEARER).json()
        assert len(minutes["minutes"]) == 1  # clamped, not an error
    _no_tracebacks(caplog)


def test_negative_limits_are_clamped_and_never_lift_the_cap(tmp_path: Path) -> None:
    app = _app(f"sqlite:///{tmp_path}/a.db")
    with TestClient(app) as client:
        now = time.time()
        app.state.afterwork.store.apply(Changes(inserts=[
            TaskRecord(id=str(uuid.uuid4()), name="m:f", payload='{"a":[],"k":{}}',
                       state=TaskState.SUCCEEDED, run_at=now, created_at=now + i)
            for i in range(LIST_LIMIT_MAX + 50)]))
        for limit, expected in (("-2", 1), ("-1", 1), ("0", 1), ("99999", LIST_LIMIT_MAX)):
            page = client.get(f"/afterwork/api/tasks?limit={limit}", headers=BEARER).json()
            assert len(page["tasks"]) == expected, limit


_WORDS = st.sampled_from(["tasks", "counts", "throughput", "events", "retry", "cancel", "login",
                          "logout", "metrics", "api", "", ".", "..", "%00", "%2F"])
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
_PARAMS = st.dictionaries(
    st.sampled_from(["limit", "cursor", "state", "name", "since", "until", "minutes", "wait"]) | _TEXT,
    st.sampled_from(["-2", "-1", "0", "nan", "inf", "-inf", "1e999", "99999999999999999999",
                     "queued,failed", "2026-13-45", "0001-01-01", "9999-12-31T23:59:59", "1/2"])
    | _TEXT,
    max_size=4)


def test_fuzzed_requests_never_get_a_5xx_or_log_a_traceback(
    durable_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("afterwork.web._api.STREAM_SECONDS_MAX", 1.0)  # a stream on a live task ends
    app = _app(durable_url)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.DEBUG):
        known = client.post("/boom").json()["id"]
        wait_for_tasks(app)
        segment = _WORDS | _TEXT.map(lambda t: quote(t, safe="")) | st.just(known)

        @settings(max_examples=400, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
               prefix=st.sampled_from(["/afterwork/api", "/afterwork"]),
               segments=st.lists(segment, max_size=4), params=_PARAMS,
               auth=st.sampled_from([{}, BEARER, {"Authorization": "Bearer wrong"},
                                     {"Cookie": "afterwork_session=forged"}]))
        def check(method: str, prefix: str, segments: list[str], params: dict[str, str],
                  auth: dict[str, str]) -> None:
            url = "/".join([prefix, *segments]) + ("?" + urlencode(params) if params else "")
            answer = client.request(method, url, headers=auth)
            assert answer.status_code < 500, (method, url, answer.text[:200])
            if answer.headers.get("content-type") == "application/json":
                assert len(answer.text) < 100_000 or "tasks" in answer.json()

        check()
    _no_tracebacks(caplog)


def test_hostile_arguments_are_shown_safely(tmp_path: Path) -> None:
    app = _app(f"sqlite:///{tmp_path}/a.db")
    deep: Any = "bottom"
    for _ in range(400):
        deep = {"level": [deep]}
    payloads = {
        "deep": '{"a": [], "k": {"x": ' + json.dumps(deep) + "}}",
        "deeper": '{"a": [], "k": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}",  # past any parser
        "broken": "{not json",
        "odd": '{"a": {"not": "a list"}, "k": ["not", "a", "dict"]}',
        "html": '{"a": ["<script>alert(1)</script>"], "k": {"<b>key</b>": "\\u0000\\ud800"}}',
        "huge": '{"a": ["' + "x" * 2_000_000 + '"], "k": {}}',
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        now = time.time()
        app.state.afterwork.store.apply(Changes(inserts=[
            TaskRecord(id=key, name="tests.dashboard.dash_tasks:login_user", payload=payload,
                       state=TaskState.FAILED, run_at=now, created_at=now, finished_at=now,
                       last_error="Traceback ...\nRuntimeError: <b>x</b>", history="{bad json\n")
            for key, payload in payloads.items()]))
        client.post("/afterwork/login", data={"token": TOKEN})
        for key in payloads:
            api = client.get(f"/afterwork/api/tasks/{key}", headers=BEARER)
            page = client.get(f"/afterwork/tasks/{key}")
            assert api.status_code == 200 and page.status_code == 200, key
            # the page has markup of its own (<b>afterwork</b>): the hostile strings must not be raw
            assert "<script>alert" not in page.text and "<b>key</b>" not in page.text, key
            assert "<b>x</b>" not in page.text, key
        assert "[nested too deeply to show]" in client.get("/afterwork/api/tasks/deep",
                                                          headers=BEARER).text
        assert client.get("/afterwork/api/tasks/deeper", headers=BEARER).json()["arguments"] == {
            "args": [], "kwargs": {}, "undecodable": True}
