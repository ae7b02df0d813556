"""examples/features.py does what docs/*.md say it does."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from afterwork._schedule import SCHEDULES
from afterwork.testing import wait_for_tasks


@pytest.fixture
def features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AFTERWORK_URL", f"sqlite:///{tmp_path}/features.db")
    monkeypatch.setenv("FEATURES_OUTBOX", str(tmp_path / "outbox.jsonl"))
    before = list(SCHEDULES)
    module = importlib.import_module("examples.features")
    module = importlib.reload(module)
    yield module, tmp_path / "outbox.jsonl"
    SCHEDULES[:] = before


def outbox(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_signup_sends_now_and_schedules_one_nudge(features) -> None:  # type: ignore[no-untyped-def]
    module, box = features
    with TestClient(module.app) as client:
        first = client.post("/signup?email=a@example.com").json()
        second = client.post("/signup?email=a@example.com").json()
        wait_for_tasks(module.app)
        nudge = client.get(f"/afterwork/api/tasks/{first['nudge']}").json()
        again = client.get(f"/afterwork/api/tasks/{second['nudge']}").json()
    assert again["id"] == nudge["id"] == first["nudge"]  # de-duplicated while queued
    assert nudge["state"] == "queued"  # ten minutes away
    assert [e["template"] for e in outbox(box)] == ["welcome", "welcome"]


def test_an_order_and_its_receipt_commit_or_roll_back_together(features) -> None:  # type: ignore[no-untyped-def]
    module, box = features
    with TestClient(module.app) as client:
        ok = client.post("/orders?item=book")
        declined = client.post("/orders?item=lamp&fail=true")
        wait_for_tasks(module.app)
    assert ok.status_code == 200 and declined.status_code == 402
    assert [e["template"] for e in outbox(box)] == ["book"]


def test_periodic_tasks_are_declared_with_their_schedules(features) -> None:  # type: ignore[no-untyped-def]
    _module, _ = features
    names = {s.task.name: s for s in SCHEDULES}
    nightly = names["examples.features:nightly_report"]
    assert nightly.cron == "0 3 * * *"
    assert names["examples.features:hourly_cleanup"].every_seconds == 3600
    assert nightly.latest_tick(time.time()) <= time.time()
