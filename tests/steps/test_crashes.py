"""Real crashes: a task of three steps, its `afterwork worker` SIGKILLed while the second step
runs, on a SQLite file and on PostgreSQL; another worker takes the task over once the lease
ends. Calls are counted from the lines the step functions write (one per call): the first
step ran once, the second at least once (exactly once more after the kill), the third once;
an at-most-once second step is not called again and the task fails with the reason."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from fastapi import FastAPI

from afterwork import Afterwork, TaskRecord, TaskState
from afterwork.stores import open_store

from ..procs import complete_lines, wait_for, worker
from . import step_tasks

APP = "tests.steps.step_app:app"
STEP_SECONDS = 3.0  # the second step's call: the window the first worker is killed in


def _store_task(url: str, func: object, *args: object) -> str:
    """Store one task from this process (which runs nothing): its id."""
    aw = Afterwork(FastAPI(), url=url, run_in_app=False)

    async def go() -> str:
        await aw.startup(run_tasks=False)
        try:
            return aw.defer(func, *args).id  # type: ignore[arg-type]
        finally:
            await aw.shutdown()

    return asyncio.run(go())


def _calls(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in complete_lines(path)] if path.exists() else []


def _final(url: str, task_id: str, seconds: float) -> TaskRecord:
    store = open_store(url)
    store.open()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            record = store.get(task_id)
            if record is not None and record.state in (TaskState.SUCCEEDED, TaskState.FAILED):
                return record
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} did not end within {seconds}s: {store.get(task_id)}")
    finally:
        store.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("once", [False, True], ids=["at-least-once", "at-most-once"])
@pytest.mark.parametrize("func", [step_tasks.three_steps, step_tasks.three_steps_sync],
                         ids=["async", "def"])
def test_a_worker_killed_during_the_second_step(durable_url: str, tmp_path: Path, once: bool,
                                                func: object) -> None:
    path = tmp_path / "calls.jsonl"
    env = {"AFTERWORK_URL": durable_url, "AFTERWORK_TEST_LEASE": "2"}
    first = worker(APP, env, tmp_path / "first.log", "--concurrency", "1")
    second = None
    try:
        task_id = _store_task(durable_url, func, str(path), 0, STEP_SECONDS, once)
        wait_for(lambda: any(c["step"] == "two" for c in _calls(path)), 60,
                 f"the second step to start\n{first.output()}")
        time.sleep(0.5)  # inside the second step's call
        first.kill()
        second = worker(APP, env, tmp_path / "second.log", "--concurrency", "1")
        record = _final(durable_url, task_id, 60)
    finally:
        first.kill()
        if second is not None:
            second.stop()
    calls = _calls(path)
    ran = {name: sum(1 for c in calls if c["step"] == name) for name in ("one", "two", "three")}
    by = {name: {c["pid"] for c in calls if c["step"] == name} for name in ran}
    assert by["one"] == {first.pid}
    assert first.pid in by["two"]
    if once:
        assert ran == {"one": 1, "two": 1, "three": 0}, (ran, calls)
        assert record.state is TaskState.FAILED
        error = record.last_error or ""
        assert "StepNotRepeatedError" in error and "'two'" in error and "at most once" in error
        assert "never recorded" in error
    else:
        assert ran == {"one": 1, "two": 2, "three": 1}, (ran, calls)
        assert by["two"] == {first.pid, second.pid} and by["three"] == {second.pid}
        assert record.state is TaskState.SUCCEEDED, record.last_error
