"""The real CLI as a subprocess, against real SQLite files and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from afterwork._models import Changes, Outcome, TaskRecord, TaskState
from afterwork.stores import open_store

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, url: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AFTERWORK_URL": url, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "afterwork", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"afterwork {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def seed(url: str) -> dict[str, str]:
    """One task in each interesting state; returns their ids by label."""
    store = open_store(url)
    store.open()
    now = time.time()

    def rec(label: str, state: TaskState, **kw: object) -> TaskRecord:
        fields: dict[str, object] = {"run_at": now, "created_at": now, **kw}
        return TaskRecord(id=f"{label}-{int(now * 1000)}", name=f"mod:{label}", payload='{"a":[1],"k":{}}',
                          state=state, **fields)  # type: ignore[arg-type]

    failed = rec("failed", TaskState.LEASED, lease_owner="w", lease_until=now + 30)
    queued = rec("queued", TaskState.QUEUED, run_at=now + 3600)
    done = rec("done", TaskState.LEASED, lease_owner="w", lease_until=now + 30)
    store.apply(Changes(inserts=[failed, queued, done]))
    store.apply(Changes(failed=[Outcome(failed.id, "w", now, "Traceback...\nValueError: bad host")],
                        succeeded=[Outcome(done.id, "w", now - 8 * 86400)]))
    store.close()
    return {"failed": failed.id, "queued": queued.id, "done": done.id}


def test_list_show_retry_cancel_purge_migrate(durable_url: str) -> None:
    ids = seed(durable_url)
    listed = cli("list", url=durable_url).stdout
    assert ids["failed"] in listed and "ValueError: bad host" in listed
    only_failed = cli("list", "--state", "failed", "--json", url=durable_url).stdout
    assert ids["failed"] in only_failed and ids["queued"] not in only_failed
    shown = cli("show", ids["failed"], url=durable_url).stdout
    assert '"arguments"' in shown and "ValueError: bad host" in shown
    assert "failed -> queued" in cli("retry", ids["failed"], url=durable_url).stdout
    assert "queued -> cancelled" in cli("cancel", ids["queued"], url=durable_url).stdout
    refused = cli("cancel", ids["done"], url=durable_url, check=False)
    assert refused.returncode == 1 and "only queued tasks" in refused.stderr
    assert "deleted 1 finished task(s)" in cli("purge", "--older-than", "7d", url=durable_url).stdout
    assert ids["done"] not in cli("list", url=durable_url).stdout
    newest = len(list((ROOT / "src/afterwork/stores/migrations").glob("*.sql")))
    assert f"schema at version {newest} (newest {newest})" in cli("migrate", url=durable_url).stdout


def test_bad_input_gets_a_clear_error(sqlite_url: str) -> None:
    bad = cli("list", "--state", "bogus", url=sqlite_url, check=False)
    assert bad.returncode == 2 and "unknown state bogus" in bad.stderr
    missing = cli("show", "nope", url=sqlite_url, check=False)
    assert missing.returncode == 2 and "no task nope" in missing.stderr
    assert "30m, 12h, 7d" in cli("purge", "--older-than", "soon", url=sqlite_url, check=False).stderr
    nowhere = cli("worker", "no_such_module:app", url=sqlite_url, check=False)
    assert nowhere.returncode == 2 and "cannot import" in nowhere.stderr


def test_worker_runs_what_a_web_only_app_stored_and_check_sees_it(durable_url: str, tmp_path: Path) -> None:
    from afterwork import Afterwork

    from . import worker_app

    out = tmp_path / "lines.jsonl"
    producer = Afterwork(url=durable_url, run_in_app=False)
    ids = [producer.enqueue_now(worker_app.write_line, (str(out), f"t{n}"), {}).id for n in range(20)]
    assert cli("check", url=durable_url, check=False).returncode == 1  # no runner alive yet
    env = {**os.environ, "AFTERWORK_URL": durable_url, "AFTERWORK_TEST_LEASE": "3"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "afterwork", "worker", "tests.integration.worker_app:app",
         "--concurrency", "4"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if out.exists() and len(out.read_text().splitlines()) >= 20:
                break
            time.sleep(0.1)
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(line["task"] for line in lines) == sorted(ids)
        assert all(line["pid"] == worker.pid and line["lifespan"] for line in lines)
        time.sleep(1.5)  # one heartbeat tick at least (lease 3 s: a tick each second)
        checked = cli("check", url=durable_url)
        assert "(worker) alive" in checked.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=30)[0]
    assert worker.returncode == 0, output
    producer.store.close()
