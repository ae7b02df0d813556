"""A runner on a SQLite file hears of tasks another process stored, as PostgreSQL's LISTEN
lets it: `SqliteStore.listen` watches the file's data version and wakes the runner when a
task is ready to claim, instead of leaving it to the next poll (`poll_seconds`). Commits that
make nothing claimable (rows leased to a runner, tasks not due, a paused queue) wake nobody."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks
from afterwork._models import Changes, TaskState
from afterwork.stores import Store, open_store
from afterwork.stores._file_watch import WATCH_SECONDS

from ..conftest import store_url
from ..procs import ROOT
from ..rows import task_record
from . import app_tasks

QUIET = 20 * WATCH_SECONDS  # long enough for the watcher to have looked many times


@pytest.fixture
def store_kind() -> str:
    """conftest's `store`, on a SQLite file only (the file of `sqlite_url`)."""
    return "sqlite"


def test_a_task_another_process_stored_wakes_the_listener(store: Store, sqlite_url: str,
                                                          tmp_path: Path) -> None:
    woken = threading.Event()
    stop = store.listen(woken.set)
    try:
        assert not woken.wait(QUIET)  # nothing stored yet: nothing to wake for
        script = ("from afterwork import Afterwork; from tests.integration import worker_app as w; "
                  f"aw = Afterwork(url={sqlite_url!r}, run_in_app=False); "
                  f"aw.defer(w.write_line, {str(tmp_path / 'out')!r}, 'x'); aw.store.close()")
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60,
                       env={**os.environ, "AFTERWORK_URL": sqlite_url})
        assert woken.wait(10), "the listener did not hear of the other process's task"
    finally:
        stop()


def test_commits_that_make_nothing_claimable_wake_nobody(store: Store) -> None:
    woken = threading.Event()
    stop = store.listen(woken.set)
    try:
        store.apply(Changes(inserts=[task_record(state=TaskState.LEASED, lease_owner="elsewhere")]))
        store.apply(Changes(inserts=[task_record(run_at=time.time() + 3600)]))  # not due for an hour
        store.set_queue_paused("held", True, time.time())
        store.apply(Changes(inserts=[task_record(queue="held")]))
        assert not woken.wait(QUIET)
        store.set_queue_paused("held", False, time.time())  # its task is ready now
        assert woken.wait(10)
    finally:
        stop()


def test_a_stopped_listener_ends_its_thread_and_a_store_in_memory_has_none() -> None:
    memory = open_store("memory://")
    memory.open()
    before = {t.name for t in threading.enumerate()}
    memory.listen(lambda: None)()  # a no-op: this process's own writes reach its runner
    assert {t.name for t in threading.enumerate()} == before
    memory.close()


def test_a_worker_with_a_long_poll_runs_another_process_task_at_once(sqlite_url: str,
                                                                      tmp_path: Path) -> None:
    """End to end: `afterwork worker` polling every 60 s still runs a task stored by another
    process within seconds: its store woke it."""
    from afterwork import Afterwork

    from . import worker_app

    out = tmp_path / "lines.jsonl"
    env = {**os.environ, "AFTERWORK_URL": sqlite_url, "AFTERWORK_TEST_POLL": "60"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "afterwork", "worker", "tests.integration.worker_app:app"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    producer = Afterwork(url=sqlite_url, run_in_app=False)
    try:
        producer.store.open()
        _wait_for(lambda: producer.store.runners(), 30, "the worker never recorded itself")
        time.sleep(0.5)  # past the worker's first claim: the next one is the poll's, in 60 s
        stored = time.time()
        producer.defer(worker_app.write_line, str(out), "late")
        _wait_for(out.exists, 20, "the task did not run: the worker waits for its 60 s poll")
        line = json.loads(out.read_text().splitlines()[0])
        assert line["pid"] == worker.pid and line["start"] - stored < 20
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
        producer.store.close()
    assert worker.returncode == 0, output


def _wait_for(check: object, seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


def _listeners() -> int:
    return sum(t.name == "afterwork-listen" for t in threading.enumerate())


def test_a_listener_ends_with_its_runner_and_never_creates_a_file(tmp_path: Path) -> None:
    """A runner a test never shut down leaves no thread behind once it is gone, and a
    deleted directory is not brought back by the listener reading its file."""
    class Runner:
        def wake(self) -> None:
            pass

    folder = tmp_path / "gone"
    store = open_store(f"sqlite:///{folder}/afterwork.db")
    store.open()
    runner, before = Runner(), _listeners()
    store.listen(runner.wake)
    assert _listeners() == before + 1
    try:
        for leftover in folder.iterdir():  # under the open store, as a test's clean-up does
            leftover.unlink()
        folder.rmdir()
        time.sleep(QUIET)
        assert not folder.exists()  # the listener looked and made nothing
        del runner
        gc.collect()
        _wait_for(lambda: _listeners() == before, 10, "the listener outlived its runner")
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_test_client_without_with_keeps_one_listener(kind: str, tmp_path: Path,
                                                       request: pytest.FixtureRequest) -> None:
    """Without `with`, each request of Starlette's TestClient runs on a loop of its own and
    starts the runner again: the listener of the last start replaces the one before (the
    file's watch on SQLite, LISTEN on PostgreSQL, whose thread looks at its stop every 1 s)."""
    app = FastAPI()
    Afterwork(app, url=store_url(kind, tmp_path, request))

    @app.post("/x")
    async def add(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(app_tasks.record, "x").id}

    before = _listeners()
    client = TestClient(app)
    for _ in range(5):
        assert client.post("/x").status_code == 200
    _wait_for(lambda: _listeners() <= before + 1, 5, "a replaced runner's listener went on")


def test_a_process_that_exits_with_its_runner_listening_exits_cleanly(tmp_path: Path) -> None:
    """The listeners end before the interpreter finalizes, and read through connections of
    their own: a process that left 20 of them running crashed on exit in about one run of four
    on Python 3.10 (a segmentation fault), when they read through the store's connections,
    which its finalizer closed under them."""
    script = ("import sys, time; from afterwork.stores import open_store; "
              "stores = [open_store(f'sqlite:///{sys.argv[1]}/a{n}.db') for n in range(20)]; "
              "[(s.open(), s.listen(lambda: None)) for s in stores]; time.sleep(float(sys.argv[2]))")
    for n in range(5):
        done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", script, str(tmp_path),
                               f"0.0{n}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
