"""A task's steps are visible: `afterwork show` (the real command, text and --json) and the
dashboard (the operator's JSON API and the task's page), with timings and outcome, on SQLite and
PostgreSQL; a task without steps shows none and the public API shows none."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, TaskState

from ..integration.test_cli import cli
from . import step_tasks
from .test_steps import Stepped

TOKEN = "steps-operator-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_show_and_the_dashboard_list_the_steps(durable_url: str, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    runs = Stepped(durable_url)
    try:
        stepped = runs.run(step_tasks.three_steps, str(path), 1)
        failed = runs.run(step_tasks.three_steps, str(path), 1, 0.0, True)
        plain = runs.run(step_tasks.no_steps, str(path))
    finally:
        runs.close()
    assert stepped.state is TaskState.SUCCEEDED and failed.state is TaskState.FAILED

    shown = json.loads(cli("show", stepped.id, "--json", url=durable_url).stdout)
    steps = shown["steps"]
    assert [(s["seq"], s["name"], s["state"], s["runs"], s["attempt"]) for s in steps] == [
        (0, "one", "finished", 1, 1), (1, "two", "finished", 2, 2), (2, "three", "finished", 1, 2)]
    assert all(s["duration_seconds"] >= 0 and s["started_at"] and s["finished_at"] for s in steps)
    assert "result" not in steps[0]  # a step's value is the task's business, not the listing's
    text = cli("show", failed.id, url=durable_url).stdout
    assert "steps" in text and "failed (once)" in text and "ConnectionError" in text
    assert json.loads(cli("show", plain.id, "--json", url=durable_url).stdout)["steps"] == []

    app = FastAPI()
    Afterwork(app, url=durable_url, dashboard=True, dashboard_token=TOKEN, run_in_app=False)
    with TestClient(app) as client:
        api = client.get(f"/afterwork/api/tasks/{stepped.id}", headers=BEARER)
        assert api.status_code == 200
        assert api.json()["steps"] == shown["steps"]  # the API and `show --json` agree
        assert "steps" not in client.get(f"/afterwork/api/tasks/{stepped.id}").json()  # public
        page = client.get(f"/afterwork/tasks/{failed.id}", headers=BEARER).text
        assert "<table id='steps'>" in page and "ConnectionError" in page
        assert "<td class='failed'>failed</td>" in page
        assert "id='steps'" not in client.get(f"/afterwork/tasks/{plain.id}", headers=BEARER).text
