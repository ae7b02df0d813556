"""Shutdown with a `def` task still running and a second runner alive: the task is never
handed back while its thread runs, the process exits within the grace period plus a small
bound, and exactly one other runner runs the task afterwards (once the lease lapsed). A second
SIGTERM during the grace period exits at once, like a crash: the lease decides again.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

import afterwork._runner

from ..procs import Proc, Server, runners_alive, wait_for, worker
from .conftest import APP, app_env
from .fault_app import boot_clock
from .runs import executions, overlapping, summary, wait_until_ended

TASK_SECONDS = 12.0
GRACE_SECONDS = 3.0
STORE_TIMEOUT_SECONDS = 1.0
EXIT_SLACK_SECONDS = 3.0  # the interpreter's own exit on a busy 2-core machine
CANCEL_WAIT_SECONDS = getattr(afterwork._runner, "CANCEL_WAIT_SECONDS", 1.0)
EXIT_BOUND_SECONDS = GRACE_SECONDS + CANCEL_WAIT_SECONDS + STORE_TIMEOUT_SECONDS + EXIT_SLACK_SECONDS


def _holder(kind: str, env: dict[str, str], tmp_path: Path) -> tuple[Proc, str]:
    """The process that will hold the task: a worker, or a web app running its own tasks."""
    if kind == "worker":
        return worker(APP, env, tmp_path / "holder.log"), ""
    server = Server(APP, {**env, "FAULT_RUN_IN_APP": "1"}, tmp_path / "holder.log")
    return server, server.url


def _one_sync_task(url: str) -> str:
    r = httpx.post(f"{url}/job/1?sync=true&seconds={TASK_SECONDS}", timeout=30)
    r.raise_for_status()
    return str(r.json()["ids"][0])


def _run(kind: str, url: str, tmp_path: Path, *, signals: int, grace: float
         ) -> tuple[str, list[int], float, float, int, Path]:
    """A task held by a `kind` process, a second worker alive, then `signals` SIGTERMs a
    second apart. (task id, [holder pid, other pid], seconds to exit, when it exited on the
    boot clock, exit code, log)."""
    log = tmp_path / "tasks.jsonl"
    env = app_env(url, log, lease_seconds=2, poll_seconds=0.1, run_in_app=0,
                  grace_seconds=grace, store_timeout_seconds=STORE_TIMEOUT_SECONDS)
    web = Server(APP, env, tmp_path / "app.log")
    holder, holder_url = _holder(kind, env, tmp_path)
    procs: list[Proc] = [web, holder]
    try:
        task = _one_sync_task(holder_url or web.url)
        wait_for(lambda: any(x.pid == holder.pid for x in executions(log)), 30, "the holder to start it")
        procs.append(other := worker(APP, env, tmp_path / "other.log"))
        wait_for(lambda: runners_alive(url) >= 2, 30, "the second runner to report")
        time.sleep(0.5)  # the task is a little way in
        signalled = boot_clock()
        for n in range(signals):
            if n:
                time.sleep(1.0)
            holder.popen.send_signal(signal.SIGTERM)
        code = holder.popen.wait(60)
        exited = boot_clock()
        missing = wait_until_ended(log, {task}, 90)
        assert missing == set(), f"the task never completed:\n{other.output()}"
    finally:
        for p in procs:
            p.stop()
    return task, [holder.pid, other.pid], exited - signalled, exited, code, log


@pytest.mark.timeout(180)
def test_sigterm_never_hands_back_a_running_def_task_and_exits_within_the_bound(
    fault_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, (holder, other), took, exited, _, log = _run("worker", fault_url, tmp_path, signals=1,
                                                       grace=GRACE_SECONDS)
    runs = executions(log)
    exited_at = {holder: exited}  # its thread ran until then at the latest
    overlaps = overlapping(runs, exited_at)
    with capsys.disabled():
        print(summary(f"SIGTERM, {TASK_SECONDS:.0f}s def task, grace {GRACE_SECONDS:.0f}s "
                      f"({fault_url.split(':')[0]})", accepted=1, lost=0, overlaps=overlaps,
                      duplicates=len(runs) - 1, extra=f"exit {took:.1f}s after SIGTERM "
                      f"(bound {EXIT_BOUND_SECONDS:.0f}s)"))
    assert took < EXIT_BOUND_SECONDS
    assert [x.pid for x in sorted(runs, key=lambda x: x.start)] == [holder, other]
    assert [x.ended for x in sorted(runs, key=lambda x: x.start)] == [False, True]
    assert overlaps == 0


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", ["worker", "app"])
def test_a_second_sigterm_during_the_grace_exits_at_once_and_the_lease_decides(
    kind: str, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, (holder, other), took, exited, code, log = _run(kind, sqlite_url, tmp_path, signals=2,
                                                          grace=60)
    runs = executions(log)
    exited_at = {holder: exited}
    overlaps = overlapping(runs, exited_at)
    with capsys.disabled():
        print(summary(f"two SIGTERMs ({kind}), grace 60s", accepted=1, lost=0, overlaps=overlaps,
                      duplicates=len(runs) - 1, extra=f"exit {took:.1f}s after the first, "
                      f"code {code}"))
    assert code == 128 + signal.SIGTERM
    assert took < 1.0 + EXIT_SLACK_SECONDS  # the second signal came a second after the first
    assert [x.pid for x in sorted(runs, key=lambda x: x.start)] == [holder, other]
    assert overlaps == 0
