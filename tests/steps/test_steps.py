"""Steps in process, on every store (memory, a real SQLite file, a real PostgreSQL): replays
after a failed attempt, each step's own retries, at-most-once steps, code that changed between
attempts, what a task without steps costs, and what purge and an operator's retry do."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

import afterwork
from afterwork import Afterwork, StepError, TaskRecord, TaskState
from afterwork._models import StepRecord
from afterwork.stores._sql import SqlStore
from afterwork.testing import drain

from . import step_tasks


def calls(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    return Counter(json.loads(line)["step"] for line in path.read_text().splitlines()
                   if "step" in json.loads(line))


class Stepped:
    """An Afterwork on a store, its tasks run to their end by `run` (on a private loop)."""

    def __init__(self, url: str) -> None:
        self.aw = Afterwork(FastAPI(), url=url)
        self.store = self.aw.store

    def run(self, func: object, *args: object) -> TaskRecord:
        """Store one task, run it (and its retries) to the end; its record."""
        async def go() -> str:
            await self.aw.startup(run_tasks=False)
            handle = self.aw.defer(func, *args)  # type: ignore[arg-type]
            await drain(self.aw, timeout=20)
            return handle.id

        task_id = asyncio.run(go())
        self.store = self.aw.store
        record = self.store.get(task_id)
        assert record is not None
        return record

    def close(self) -> None:
        asyncio.run(self.aw.shutdown())


@pytest.fixture
def url(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    from tests.conftest import store_url

    return store_url(store_kind, tmp_path, request)


@pytest.fixture
def stepped(url: str) -> Iterator[Stepped]:
    runs = Stepped(url)
    yield runs
    runs.close()


@pytest.mark.parametrize("func", [step_tasks.three_steps, step_tasks.three_steps_sync])
def test_a_retry_replays_finished_steps_and_runs_the_failed_one_again(
        stepped: Stepped, tmp_path: Path, func: object) -> None:
    path = tmp_path / "calls.jsonl"
    record = stepped.run(func, str(path), 1)
    assert record.state is TaskState.SUCCEEDED, record.last_error
    assert record.attempts == 2
    assert calls(path) == {"one": 1, "two": 2, "three": 1}
    steps = stepped.store.steps_of(record.id)
    assert [(s.seq, s.name, s.state, s.runs) for s in steps] == [
        (0, "one", "finished", 1), (1, "two", "finished", 2), (2, "three", "finished", 1)]
    assert json.loads(steps[0].result or "") == "one-done"
    assert all(s.finished_at is not None and s.finished_at >= s.started_at for s in steps)


def test_a_replayed_step_returns_the_same_typed_value(stepped: Stepped, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    record = stepped.run(step_tasks.typed_result, str(path))
    assert record.state is TaskState.SUCCEEDED, record.last_error
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line.get("step") for line in lines if "step" in line] == ["receipt"]
    seen = [(line["seen"], line["at"], line["attempt"]) for line in lines if "seen" in line]
    assert seen == [(7, "2026-01-02T03:04:05+00:00", 1), (7, "2026-01-02T03:04:05+00:00", 2)]


def test_a_step_retries_on_its_own(stepped: Stepped, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    record = stepped.run(step_tasks.step_retries, str(path))
    assert record.state is TaskState.SUCCEEDED, record.last_error
    assert record.attempts == 1
    assert calls(path) == {"flaky": 3}
    assert [(s.name, s.runs) for s in stepped.store.steps_of(record.id)] == [("flaky", 3)]


def test_an_at_most_once_step_that_raised_fails_the_task_at_once(stepped: Stepped, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    record = stepped.run(step_tasks.three_steps, str(path), 1, 0.0, True)
    assert record.state is TaskState.FAILED
    assert record.attempts == 1  # no retry: it would have to call the step again
    assert "StepNotRepeatedError" in (record.last_error or "")
    assert "'two'" in (record.last_error or "") and "at most once" in (record.last_error or "")
    assert calls(path) == {"one": 1, "two": 1}
    assert [(s.name, s.state, s.once) for s in stepped.store.steps_of(record.id)] == [
        ("one", "finished", False), ("two", "failed", True)]


def test_a_step_name_that_no_longer_matches_fails_naming_both(stepped: Stepped, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    record = stepped.run(step_tasks.renamed_between_attempts, str(path))
    assert record.state is TaskState.FAILED
    assert record.attempts == 2  # the mismatch is final: a third attempt would fail alike
    error = record.last_error or ""
    assert "StepMismatchError" in error and "'charge'" in error and "'reserve'" in error
    assert calls(path) == {"first": 1}


def test_a_task_without_steps_reads_and_writes_no_step_records(
        stepped: Stepped, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    original = SqlStore.steps_of

    def counted(self: SqlStore, task_id: str) -> list[StepRecord]:
        reads.append(task_id)
        return original(self, task_id)

    monkeypatch.setattr(SqlStore, "steps_of", counted)  # a spy: the real read still runs
    path = tmp_path / "calls.jsonl"
    plain = stepped.run(step_tasks.no_steps, str(path))
    assert plain.state is TaskState.SUCCEEDED
    assert reads == []
    three = stepped.run(step_tasks.three_steps, str(path))
    assert reads == [three.id]  # one read for a stepped task's run, at its first step
    assert stepped.store.steps_of(plain.id) == []


def test_purge_takes_the_steps_and_an_operator_retry_forgets_unfinished_ones(
        stepped: Stepped, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    failed = stepped.run(step_tasks.three_steps, str(path), 1, 0.0, True)
    assert failed.state is TaskState.FAILED
    stepped.aw.retry(failed.id)  # an operator checked the effect: run the task again
    assert [s.name for s in stepped.store.steps_of(failed.id)] == ["one"]
    done = stepped.run(step_tasks.three_steps, str(path))
    assert stepped.store.steps_of(done.id)
    assert stepped.store.purge(time.time() + 1) >= 1
    assert stepped.store.steps_of(done.id) == []


def test_outside_a_stored_task_a_step_is_a_plain_call(tmp_path: Path) -> None:
    """A task function called directly (a unit test of the application's own code) or run in
    memory: its steps call their functions, with their retries, and record nothing."""
    path = tmp_path / "calls.jsonl"
    asyncio.run(step_tasks.step_retries.func(str(path)))
    assert calls(path) == {"flaky": 3}
    assert afterwork.step_sync("x", step_tasks.called, str(path), "direct") == "direct-done"
    assert calls(path)["direct"] == 1
    with pytest.raises(ValueError, match="once=True"):
        asyncio.run(afterwork.step("x", print, once=True, retries=1))
    with pytest.raises(StepError, match=r"await afterwork\.step"):
        asyncio.run(_step_sync_on_a_loop())


async def _step_sync_on_a_loop() -> None:
    afterwork.step_sync("x", print)


def test_finished_steps_are_the_tasks_progress_unless_it_reports_its_own(
        stepped: Stepped, tmp_path: Path) -> None:
    record = stepped.run(step_tasks.three_steps, str(tmp_path / "calls.jsonl"))
    assert record.state is TaskState.SUCCEEDED, record.last_error
    progress = record.progress_json()
    assert progress is not None
    assert (progress["done"], progress["total"], progress["note"]) == (3, None, "step 'three' done")

    own = stepped.run(step_tasks.steps_and_own_progress, str(tmp_path / "own.jsonl"))
    progress = own.progress_json()
    assert progress is not None
    assert (progress["done"], progress["total"], progress["note"]) == (7, 9, "own")
