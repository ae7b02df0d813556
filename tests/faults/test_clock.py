"""Clocks: a second runner whose wall clock is an hour off, and a wall clock that jumps inside
the runner that holds a task, on SQLite and PostgreSQL. Real processes (a web app that only
stores tasks, `afterwork worker` processes that run them); the faked clock is the wall clock
of one process (tests/faults/clock_offset.py). Leases are judged on the store's clock, and a
runner never claims back what it runs: no task may run twice at once.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ..procs import CLOCK_OFFSET, Proc, Server, runners_alive, wait_for, worker
from .conftest import APP, app_env
from .runs import executions, overlapping, summary, wait_until_ended

HOUR_SECONDS = 3600.0
TASK_SECONDS = 3.0
TASKS = 6


def _post_tasks(server: Server, count: int, seconds: float) -> set[str]:
    ids: set[str] = set()
    with httpx.Client(timeout=30) as http:
        for n in range(count):
            r = http.post(f"{server.url}/job/{n}?seconds={seconds}")
            r.raise_for_status()
            ids.update(r.json()["ids"])
    return ids


def _stop_all(procs: list[Proc]) -> None:
    for p in procs:
        p.stop()


@pytest.mark.timeout(180)
def test_a_runner_with_its_clock_an_hour_ahead_never_takes_a_live_task(
    fault_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each runner is an hour off the other: the skewed one sees the honest one's leases an
    hour past their end, the honest one sees the skewed one's an hour early. (A runner an
    hour behind the app claims no queued task until its clock says it is due: run times follow
    the enqueuing machine's clock, leases the store's.)"""
    skew = HOUR_SECONDS
    log = tmp_path / "tasks.jsonl"
    env = app_env(fault_url, log, lease_seconds=1, poll_seconds=0.1, run_in_app=0)
    server = Server(APP, env, tmp_path / "app.log")
    honest = worker(APP, env, tmp_path / "honest.log", "--concurrency", "2")
    skewed = worker(APP, {**env, "AFTERWORK_TEST_CLOCK_OFFSET": str(skew)},
                    tmp_path / "skewed.log", "--concurrency", "2", via=CLOCK_OFFSET)
    procs = [server, honest, skewed]
    try:
        wait_for(lambda: runners_alive(fault_url) >= 2, 30, "both workers to report")
        ids = _post_tasks(server, TASKS, TASK_SECONDS)
        missing = wait_until_ended(log, ids, 90)
    finally:
        _stop_all(procs)
    runs = executions(log)
    overlaps = overlapping(runs)
    by_skewed = [x for x in runs if x.pid == skewed.pid]
    with capsys.disabled():
        print(summary(f"runner clock {skew:+.0f}s ({fault_url.split(':')[0]})", accepted=len(ids),
                      lost=len(missing), overlaps=overlaps, duplicates=len(runs) - len(ids),
                      extra=f"{len(by_skewed)} run by the skewed runner"))
    assert by_skewed, "the skewed runner ran nothing: the test proved nothing"
    assert all(abs(x.wall_skew - skew) < 60 for x in by_skewed), "the fake clock was not in effect"
    assert missing == set()
    assert overlaps == 0
    assert len(runs) == len(ids)  # both alive and renewing: nothing ran twice at all


@pytest.mark.timeout(180)
@pytest.mark.parametrize("jump", [HOUR_SECONDS, -HOUR_SECONDS], ids=["forward", "backward"])
def test_a_wall_clock_jump_inside_the_owner_never_runs_its_task_twice(
    fault_url: str, tmp_path: Path, jump: float, capsys: pytest.CaptureFixture[str]
) -> None:
    """The owner's clock jumps while its tasks run; a second, honest runner polls all along."""
    log = tmp_path / "tasks.jsonl"
    clock = tmp_path / "clock"
    clock.write_text("0")
    env = app_env(fault_url, log, lease_seconds=1, poll_seconds=0.1, run_in_app=0)
    server = Server(APP, env, tmp_path / "app.log")
    owner = worker(APP, {**env, "AFTERWORK_TEST_CLOCK_FILE": str(clock)}, tmp_path / "owner.log",
                   "--concurrency", str(TASKS * 2), via=CLOCK_OFFSET)  # free slots: it polls
    procs = [server, owner]
    try:
        wait_for(lambda: runners_alive(fault_url) >= 1, 30, "the owner to report")
        ids = _post_tasks(server, TASKS, TASK_SECONDS + 3)
        wait_for(lambda: len({x.task for x in executions(log)}) == TASKS, 30, "the owner to start all")
        procs.append(other := worker(APP, env, tmp_path / "other.log", "--concurrency", "4"))
        wait_for(lambda: runners_alive(fault_url) >= 2, 30, "the second runner to report")
        clock.write_text(str(jump))
        missing = wait_until_ended(log, ids, 90)
    finally:
        _stop_all(procs)
    runs = executions(log)
    overlaps = overlapping(runs)
    jumped = [x for x in runs if x.pid == owner.pid]
    with capsys.disabled():
        print(summary(f"clock jump {jump:+.0f}s in the owner ({fault_url.split(':')[0]})",
                      accepted=len(ids), lost=len(missing), overlaps=overlaps,
                      duplicates=len(runs) - len(ids),
                      extra=f"{sum(1 for x in runs if x.pid == other.pid)} run by the other runner"))
    assert len(jumped) == TASKS
    assert missing == set()
    assert overlaps == 0
    assert len(runs) == len(ids)
