"""afterwork behind PgBouncer in transaction pooling mode: a real uvicorn app enqueues
through it and `afterwork worker` processes run the tasks through it. With
`afterwork_pooler=transaction` every accepted task runs once, hundreds of times past the
point where psycopg would have prepared its statements, and nothing listens through the
pooler (it polls, or listens on the direct URL it is given). Without it, afterwork refuses to
start and says what to add."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from afterwork import ConfigurationError
from afterwork.stores import open_store

from ..faults.conftest import APP, app_env
from ..faults.runs import Load, accepted, executions, overlapping, summary, wait_until_ended
from ..procs import Server, wait_for, worker
from .conftest import Bouncer

REQUESTS = 150  # two tasks each: far past psycopg's fifth run of each statement


def _listening(direct: str, database: str) -> list[str]:
    """The application names of the sessions listening on this database."""
    import psycopg

    with psycopg.connect(direct, autocommit=True) as conn:
        rows = conn.execute("SELECT application_name FROM pg_stat_activity WHERE datname = %s "
                            "AND query ILIKE 'LISTEN%%'", (database,)).fetchall()
    return [str(r[0]) for r in rows]


def _run_through(bouncer: Bouncer, url: str, tmp_path: Path, label: str,
                 capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Enqueue through the app, run through two workers, all through `url`; the listeners
    seen while they ran."""
    log = tmp_path / "tasks.jsonl"
    env = app_env(url, log, lease_seconds=5, run_in_app=0, poll_seconds=0.2)
    server = Server(APP, env, tmp_path / "app.log")
    workers = [worker(APP, env, tmp_path / f"worker{i}.log", "--concurrency", "8")
               for i in range(2)]
    try:
        load = Load(server.url, path="/job/{n}?seconds=0.02&chain=2", clients=4,
                    requests=REQUESTS, seconds=30).start()
        wait_for(lambda: len(load.answers) >= REQUESTS, 40, "the requests' answers")
        answers = load.stop()
        ids = accepted(answers)
        missing = wait_until_ended(log, ids, 60)
        listeners = _listening(bouncer.direct, bouncer.database)
    finally:
        server.stop()
        for w in workers:
            w.stop()
    runs = executions(log)
    overlaps = overlapping(runs)
    with capsys.disabled():
        print(summary(f"PgBouncer (transaction pooling), {label}", accepted=len(ids),
                      lost=len(missing), overlaps=overlaps, duplicates=len(runs) - len(ids),
                      unavailable=sum(1 for a in answers if a.status == 503)))
    assert {a.status for a in answers} == {200}, server.output()
    assert len(ids) == 2 * REQUESTS
    assert missing == set(), "\n".join(w.output() for w in workers)
    assert overlaps == 0
    assert len(runs) == len(ids), "a task ran twice with no fault to explain it"
    for proc in (server, *workers):  # a store error retried would hide behind the retry
        trouble = [line for line in proc.output().splitlines()
                   if "WARNING" in line or "ERROR" in line or "Traceback" in line]
        assert trouble == [], "\n".join(trouble)
    return listeners


@pytest.mark.timeout(180)
def test_web_and_workers_through_pgbouncer_poll(
        bouncer: Bouncer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{bouncer.pooled}?afterwork_pooler=transaction"
    listeners = _run_through(bouncer, url, tmp_path, "polling", capsys)
    assert listeners == [], "a LISTEN went through the pooler: its notifications go nowhere"


@pytest.mark.timeout(180)
def test_web_and_workers_through_pgbouncer_listen_direct(
        bouncer: Bouncer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = f"aw-listen-{uuid.uuid4().hex[:8]}"
    direct = quote(f"{bouncer.direct}?application_name={name}", safe="")
    url = f"{bouncer.pooled}?afterwork_pooler=transaction&afterwork_listen_url={direct}"
    listeners = _run_through(bouncer, url, tmp_path, "listening on the direct URL", capsys)
    assert listeners.count(name) == 2, f"one direct listener per worker expected: {listeners}"


def test_store_refuses_transaction_pooling_it_was_not_told_of(bouncer: Bouncer) -> None:
    store = open_store(bouncer.pooled)
    with pytest.raises(ConfigurationError, match="afterwork_pooler=transaction"):
        store.open()


@pytest.mark.timeout(60)
def test_worker_refuses_at_start_up_saying_what_to_change(
        bouncer: Bouncer, tmp_path: Path) -> None:
    log = tmp_path / "tasks.jsonl"
    proc = worker(APP, app_env(bouncer.pooled, log, run_in_app=0), tmp_path / "worker.log")
    deadline = time.monotonic() + 30
    while proc.popen.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    code = proc.stop()
    assert code != 0
    assert "afterwork_pooler=transaction" in proc.output(), proc.output()
    assert "Traceback" not in proc.output(), proc.output()


def test_the_direct_store_is_not_mistaken_for_a_pooled_one(bouncer: Bouncer) -> None:
    store = open_store(bouncer.direct)
    store.open()
    store.close()
    wait_for(lambda: True, 1, "nothing")
