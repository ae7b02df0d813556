"""Web + workers on PostgreSQL: two app processes that only store tasks, two `afterwork worker`
processes that run them, one worker SIGKILLed mid-run. Every accepted task succeeds and none
runs concurrently with itself."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from ..procs import Server, worker
from .figures import read, unfinished
from .test_chaos import _ended, _load

APP = "tests.chaos.chaos_app:app"


def _both_busy(log: Path, *pids: int) -> bool:
    if not log.exists():
        return False
    started = [json.loads(x)["pid"] for x in log.read_text().splitlines() if '"start"' in x]
    return all(started.count(pid) >= 5 for pid in pids)


def test_two_apps_two_workers_one_killed_on_postgres(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "chaos.jsonl"
    env = {"AFTERWORK_URL": pg_url, "CHAOS_LOG": str(log), "CHAOS_LEASE_SECONDS": "2",
           "CHAOS_RUN_IN_APP": "0"}
    apps = [Server(APP, env, tmp_path / f"app{i}.log") for i in range(2)]
    workers = [worker(APP, env, tmp_path / f"worker{i}.log", "--concurrency", "8") for i in range(2)]
    accepted: set[str] = set()
    lock = threading.Lock()
    try:
        loaders = [threading.Thread(target=_load, args=(app, "job", i * 1000, 150, accepted, lock))
                   for i, app in enumerate(apps)]
        for t in loaders:
            t.start()
        deadline = time.monotonic() + 30  # kill worker 0 once both are busy
        while time.monotonic() < deadline and not _both_busy(log, workers[0].pid, workers[1].pid):
            time.sleep(0.05)
        workers[0].kill()
        unfinished_at_kill = unfinished(pg_url)
        for t in loaders:
            t.join(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and accepted - _ended(log):
            time.sleep(0.2)
    finally:
        for p in [*apps, *workers]:
            p.stop() if p.popen.poll() is None else None
    figures = read(log, accepted)
    pids = {json.loads(x)["pid"] for x in log.read_text().splitlines()}
    with capsys.disabled():
        print(f"\nmany machines: {figures.line(1)}")
    assert figures.accepted == 300
    assert figures.lost == 0, figures
    assert figures.self_overlaps == 0, figures
    assert not figures.unexplained(unfinished_at_kill), figures
    assert pids == {workers[0].pid, workers[1].pid}  # both worked; the web apps ran nothing
