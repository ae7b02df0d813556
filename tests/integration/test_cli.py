"""The real CLI as a subprocess, against real SQLite files and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from afterwork._models import Changes, Heartbeat, Outcome, TaskRecord, TaskState
from afterwork.stores import open_store

ROOT = Path(__file__).resolve().parents[2]
EXIT_READY, EXIT_DEAD, EXIT_BAD_INPUT, EXIT_STARTING, EXIT_NO_STORE, EXIT_SCHEMA_BEHIND = 0, 1, 2, 3, 4, 5


def cli(*args: str, url: str, check: bool = True, timeout: float = 60, columns: int = 200,
        cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AFTERWORK_URL": url, "COLUMNS": str(columns), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "afterwork", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"afterwork {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def seed(url: str, error: str = "Traceback...\nValueError: bad host", name: str = "mod:{label}",
         payload: str = '{"a":[1],"k":{}}', id_start: str = "") -> dict[str, str]:
    """One task in each interesting state (ids are UUIDs, as afterwork makes them)."""
    store = open_store(url)
    store.open()
    now = time.time()

    def rec(label: str, state: TaskState, **kw: object) -> TaskRecord:
        fields: dict[str, object] = {"run_at": now, "created_at": now, **kw}
        task_id = id_start + str(uuid.uuid4())[len(id_start):]
        return TaskRecord(id=task_id, name=name.format(label=label), payload=payload,
                          state=state, **fields)  # type: ignore[arg-type]

    failed = rec("failed", TaskState.LEASED, lease_owner="w", lease_until=now + 30, attempts=1,
                 history=json.dumps({"attempt": 1, "started_at": now, "finished_at": now,
                                     "outcome": "error"}) + "\n")
    queued = rec("queued", TaskState.QUEUED, run_at=now + 3600)
    done = rec("done", TaskState.LEASED, lease_owner="w", lease_until=now + 30)
    store.apply(Changes(inserts=[failed, queued, done]))
    store.apply(Changes(failed=[Outcome(failed.id, "w", now, error)],
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
    newest = max(int(p.name.split("_")[0])
                 for p in (ROOT / "src/afterwork/stores/migrations").glob("*.sql"))
    assert f"schema at version {newest} (newest {newest})" in cli("migrate", url=durable_url).stdout


def test_bad_input_gets_a_clear_error(sqlite_url: str) -> None:
    cli("migrate", url=sqlite_url)
    bad = cli("list", "--state", "bogus", url=sqlite_url, check=False)
    assert bad.returncode == EXIT_BAD_INPUT and "unknown state bogus" in bad.stderr
    missing = cli("show", "nope", url=sqlite_url, check=False)
    assert missing.returncode == EXIT_BAD_INPUT and "no task nope" in missing.stderr
    assert "30m, 12h, 7d" in cli("purge", "--older-than", "soon", url=sqlite_url, check=False).stderr
    nowhere = cli("worker", "no_such_module:app", url=sqlite_url, check=False)
    assert nowhere.returncode == EXIT_BAD_INPUT and "cannot import" in nowhere.stderr


def _tables(pg_url: str) -> list[str]:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = current_schema()").fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("command", [["list"], ["show", "abc"], ["check"], ["purge"],
                                     ["retry", "abc"], ["cancel", "abc"]])
def test_read_only_commands_never_create_a_store(command: list[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/not-here/aw.db"
    done = cli(*command, url=url, check=False)
    assert done.returncode == EXIT_NO_STORE
    assert f"no afterwork store at {url}" in done.stderr
    assert "--url" in done.stderr and "AFTERWORK_URL" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no folder, no file
    in_cwd = cli(*command, url="", check=False, cwd=tmp_path)  # the default: ./afterwork.db
    assert in_cwd.returncode == EXIT_NO_STORE and "sqlite:///./afterwork.db" in in_cwd.stderr
    assert list(tmp_path.iterdir()) == []


def test_read_only_commands_create_no_tables_in_postgres_and_mask_the_password(pg_url: str) -> None:
    with_password = pg_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@")
    assert with_password != pg_url
    for command in (["list"], ["check"], ["purge"], ["show", "abc"]):
        done = cli(*command, url=with_password, check=False)
        assert done.returncode == EXIT_NO_STORE, done.stderr
        assert "no afterwork store at postgresql://postgres:***@127.0.0.1" in done.stderr
        assert "hunter2" not in done.stderr + done.stdout
    assert _tables(pg_url) == []
    cli("migrate", url=pg_url)  # the command that creates, does
    assert "afterwork_tasks" in _tables(pg_url)


def test_check_tells_ready_starting_dead_and_schema_behind(durable_url: str, tmp_path: Path) -> None:
    cli("migrate", url=durable_url)
    starting = cli("check", url=durable_url, check=False)
    assert starting.returncode == EXIT_STARTING and "no runner has recorded itself" in starting.stdout
    # A long lease: its first heartbeat tick is 100 s away, so only a record made at start
    # lets `check` see the worker within the deadline below.
    env = {**os.environ, "AFTERWORK_URL": durable_url, "AFTERWORK_TEST_LEASE": "300"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "afterwork", "worker", "tests.integration.worker_app:app"], cwd=ROOT,
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while (ready := cli("check", url=durable_url, check=False)).returncode != EXIT_READY:
            assert ready.returncode == EXIT_STARTING, ready.stdout + ready.stderr
            assert time.monotonic() < deadline, "the worker never recorded itself"
            time.sleep(0.2)
        assert "(worker) alive" in ready.stdout and "state      ready (exit 0)" in ready.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert cli("check", url=durable_url, check=False).returncode == EXIT_STARTING  # stopped cleanly

    store = open_store(durable_url)
    store.open()
    long_ago = time.time() - 3600
    store.apply(Changes(heartbeat=Heartbeat("gone-host:1:x", long_ago, "app")))
    dead = cli("check", "--json", url=durable_url, check=False)
    assert dead.returncode == EXIT_DEAD
    verdict = json.loads(dead.stdout)
    assert verdict["state"] == "dead" and verdict["runners"][0]["alive"] is False
    with store._write() as cur:  # as if the store were made by an older afterwork
        cur.execute("DELETE FROM afterwork_migrations WHERE version = (SELECT MAX(version) "
                    "FROM afterwork_migrations)")
    store.close()
    behind = cli("check", url=durable_url, check=False)
    assert behind.returncode == EXIT_SCHEMA_BEHIND and "afterwork migrate" in behind.stdout
    listed = cli("list", url=durable_url, check=False)
    assert listed.returncode == EXIT_SCHEMA_BEHIND and "afterwork migrate" in listed.stderr


def test_ids_are_never_cut_and_a_unique_prefix_works_everywhere(durable_url: str) -> None:
    ids = seed(durable_url, id_start="93ab73f8-")  # three ids with a common start
    narrow = cli("list", url=durable_url, columns=80).stdout
    assert all(task_id in narrow for task_id in ids.values())
    failed, queued = ids["failed"], ids["queued"]
    shown = json.loads(cli("show", "--json", failed[:20], url=durable_url).stdout)
    assert shown["id"] == failed
    assert f"{failed}: failed -> queued" in cli("retry", failed[:20], url=durable_url).stdout
    assert f"{queued}: queued -> cancelled" in cli("cancel", queued[:20], url=durable_url).stdout
    ambiguous = cli("show", "93ab", url=durable_url, check=False)
    assert ambiguous.returncode == EXIT_BAD_INPUT
    assert "matches more than one task" in ambiguous.stderr and failed in ambiguous.stderr


def test_list_json_prints_one_compact_object_a_line(durable_url: str) -> None:
    ids = seed(durable_url)
    lines = cli("list", "--json", url=durable_url).stdout.splitlines()
    assert len(lines) == 3
    assert {json.loads(line)["id"] for line in lines} == set(ids.values())
    assert all(line.startswith('{"id":') and ", " not in line[:40] for line in lines)


def test_text_from_the_store_is_printed_literally_never_as_markup(durable_url: str) -> None:
    error = "Traceback...\nValueError: [/] [link=https://evil.example]x[/link] :smile:"
    ids = seed(durable_url, error=error, name="mod:[bold]{label}[/]")
    listed = cli("list", url=durable_url, columns=250)
    assert "ValueError: [/] [link=https://evil.example]x[/link] :smile:" in listed.stdout
    assert "mod:[bold]failed[/]" in listed.stdout
    assert "\x1b]8;" not in listed.stdout  # no terminal hyperlink escape
    shown = cli("show", ids["failed"], url=durable_url).stdout
    assert error in shown
    bad_id = cli("show", "[/]", url=durable_url, check=False)
    assert bad_id.returncode == EXIT_BAD_INPUT and "no task [/]" in bad_id.stderr


def test_show_redacts_secret_looking_arguments_unless_revealed(durable_url: str) -> None:
    ids = seed(durable_url, payload='{"a":["ann"],"k":{"password":"hunter2","theme":"dark"}}')
    shown = json.loads(cli("show", "--json", ids["queued"], url=durable_url).stdout)
    # a positional value is hidden where the function is unknown (its parameter's name could be
    # a secret's): the CLI never imports the modules named in the store
    hidden = "[redacted: the function is not known to this process]"
    assert shown["arguments"] == {"args": [hidden], "kwargs": {"password": "[redacted]", "theme": "dark"}}
    assert "hunter2" not in cli("show", ids["queued"], url=durable_url).stdout
    revealed = json.loads(cli("show", "--json", "--reveal", ids["queued"], url=durable_url).stdout)
    assert revealed["arguments"] == {"args": ["ann"], "kwargs": {"password": "hunter2", "theme": "dark"}}


def test_cli_and_api_show_a_task_in_one_format(durable_url: str) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from afterwork import Afterwork

    ids = seed(durable_url, payload='{"a":["ann"],"k":{"token":"t-12345","n":2}}',
               error="Traceback...\nValueError: token t-12345 refused")
    from_cli = json.loads(cli("show", "--json", ids["failed"], url=durable_url).stdout)
    listed_by_cli = [json.loads(line) for line in cli("list", "--json", url=durable_url).stdout.splitlines()]
    app = FastAPI()
    Afterwork(app, url=durable_url, run_in_app=False, dashboard=True, dashboard_token="tok")
    with TestClient(app) as client:
        bearer = {"Authorization": "Bearer tok"}
        from_api = client.get(f"/afterwork/api/tasks/{ids['failed']}", headers=bearer).json()
        listed_by_api = client.get("/afterwork/api/tasks", headers=bearer).json()["tasks"]
    assert from_cli == from_api
    assert listed_by_cli == listed_by_api and len(listed_by_cli) == 3
    assert from_cli["arguments"]["kwargs"] == {"token": "[redacted]", "n": 2}
    assert from_cli["last_error"].endswith("ValueError: token [redacted] refused")  # as the API
    assert "t-12345" not in json.dumps(listed_by_cli) + cli("list", url=durable_url).stdout
    times = [from_cli["created_at"], from_cli["finished_at"], *from_cli["history"][0].values()]
    stamps = [dt.datetime.fromisoformat(t) for t in times if isinstance(t, str) and t[:2] == "20"]
    assert len(stamps) == 4 and all(s.utcoffset() == dt.timedelta(0) for s in stamps)


def test_reading_commands_import_neither_the_web_side_nor_the_runner(sqlite_url: str) -> None:
    ids = seed(sqlite_url)
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print(sorted(m for m in ('fastapi', 'starlette', "
             "'afterwork._runner', 'afterwork._app', 'afterwork.web') if m in sys.modules), "
             "file=sys.stderr))\n"
             "sys.argv = ['afterwork', *sys.argv[1:]]\n"
             "from afterwork.cli import main\nmain()\n")
    for args in (["--help"], ["list"], ["list", "--json"], ["show", ids["failed"]],
                 ["show", "--json", ids["failed"]], ["check"]):
        done = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "AFTERWORK_URL": sqlite_url}, timeout=60)
        assert done.returncode in (0, EXIT_STARTING), done.stderr
        assert done.stderr.strip().splitlines()[-1] == "[]", args


def test_worker_runs_what_a_web_only_app_stored_and_check_sees_it(durable_url: str, tmp_path: Path) -> None:
    from afterwork import Afterwork

    from . import worker_app

    out = tmp_path / "lines.jsonl"
    producer = Afterwork(url=durable_url, run_in_app=False)
    ids = [producer.defer(worker_app.write_line, str(out), f"t{n}").id for n in range(20)]
    assert cli("check", url=durable_url, check=False).returncode == EXIT_STARTING  # no runner yet
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
        checked = cli("check", url=durable_url)
        assert "(worker) alive" in checked.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=30)[0]
    assert worker.returncode == 0, output
    producer.store.close()


def test_the_workers_start_up_line_masks_the_stores_password(pg_url: str) -> None:
    """The worker says which store it runs on, never with the store's password (trust
    authentication here accepts any password: the one in the URL is only there to be hidden)."""
    parts = urlsplit(pg_url)
    with_password = urlunsplit(parts._replace(
        netloc=f"{parts.username or 'postgres'}:hunter2-secret@{parts.hostname}:{parts.port or 5432}"))
    env = {**os.environ, "AFTERWORK_URL": with_password}
    worker = subprocess.Popen(
        [sys.executable, "-m", "afterwork", "worker", "tests.integration.worker_app:app"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and cli("check", url=pg_url, check=False).returncode != 0:
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=30)[0]
    assert "running on postgresql://" in output, output
    assert "hunter2-secret" not in output
    assert "***@" in output
