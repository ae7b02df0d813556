"""Hosts in network namespaces: two web hosts and two worker hosts, each in a namespace of
its own with its own clock offset, reach PostgreSQL over veth links. Under bounded load one
worker's link is cut in the middle of its tasks for longer than a lease, then restored.

Must hold: every accepted task runs; no task runs on two hosts at once (its tasks are shorter
than a lease, so the owner still held the lease whenever two ran at once); the cut worker's
outcomes, recorded after the link came back, are fenced (the store keeps the outcome of the
host that took the task over); the cut worker rejoins and takes work again. Prints lost,
duplicated and overlapping counts and how long the cut tasks waited."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..faults.conftest import APP, app_env
from ..faults.fault_app import boot_clock
from ..faults.runs import Execution, Load, accepted, executions, overlapping, wait_until_ended
from ..procs import CLOCK_OFFSET, Proc, free_port, runners_alive, wait_for
from .netns import Host, Network

LEASE_SECONDS = 3.0
TASK_SECONDS = 1.5  # shorter than a lease: two runs at once would mean a lease was ignored
CUT_SECONDS = 2.5 * LEASE_SECONDS
REQUESTS_PER_WEB_HOST = 24  # in each of two rounds: before the cut, and once it rejoined
CONCURRENCY = 16  # the other worker has room to take the cut one's tasks over during the cut
# Each host's wall clock, off the machine's by this much. The web hosts are behind every
# worker, so their tasks are due at once everywhere (run times follow the writer's clock).
OFFSETS = {"web1": -40.0, "web2": -35.0, "work1": -30.0, "work2": 45.0}


def _web(host: Host, env: dict[str, str], log: Path) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(host.run(sys.executable, *CLOCK_OFFSET, "-m", "uvicorn", APP, "--host",
                         host.address, "--port", str(port), "--log-level", "warning"), env, log)
    return proc, f"http://{host.address}:{port}"


def _answering(proc: Proc, url: str) -> bool:
    assert proc.popen.poll() is None, proc.output()
    try:
        httpx.get(url, timeout=1)  # any answer: the server is up
    except httpx.TransportError:
        return False
    return True


def _worker(host: Host, env: dict[str, str], log: Path) -> Proc:
    return Proc(host.run(sys.executable, *CLOCK_OFFSET, "-m", "afterwork", "worker", APP,
                         "--concurrency", str(CONCURRENCY)), env, log)


def _running_on(log: Path, pid: int) -> int:
    runs = executions(log)
    return sum(1 for x in runs if x.pid == pid and not x.ended)


def _heartbeat_of(url: str, pid: int) -> float:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT heartbeat_at FROM afterwork_runners WHERE pid = %s",
                           (pid,)).fetchone()
    return float(row[0]) if row else 0.0


def _round(webs: list[tuple[Proc, str]]) -> list[Load]:
    """Bounded load through both web hosts: REQUESTS_PER_WEB_HOST each, at most 30 s."""
    return [Load(url, path=f"/job/{{n}}?seconds={TASK_SECONDS}", clients=3,
                 requests=REQUESTS_PER_WEB_HOST, seconds=30).start() for _, url in webs]


def _finished_at(url: str, ids: set[str]) -> dict[str, tuple[str, float | None]]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, state, finished_at FROM afterwork_tasks WHERE id = ANY(%s)",
                            (list(ids),)).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.mark.timeout(300)
def test_a_worker_cut_off_for_longer_than_a_lease(
        network: Network, store_over_links: str, pg_database: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    hosts = {name: network.add_host(name) for name in OFFSETS}
    log = tmp_path / "tasks.jsonl"
    base = app_env(store_over_links, log, lease_seconds=LEASE_SECONDS, run_in_app=0,
                   poll_seconds=0.2, store_timeout_seconds=2)
    procs: list[Proc] = []

    def env(name: str) -> dict[str, str]:
        return {**base, "AFTERWORK_TEST_CLOCK_OFFSET": str(OFFSETS[name])}

    try:
        workers = {name: _worker(hosts[name], env(name), tmp_path / f"{name}.log")
                   for name in ("work1", "work2")}
        procs.extend(workers.values())
        webs = [_web(hosts[name], env(name), tmp_path / f"{name}.log") for name in ("web1", "web2")]
        procs.extend(proc for proc, _ in webs)
        for proc, url in webs:
            wait_for(lambda: _answering(proc, url), 90, f"the web host at {url}")  # noqa: B023
        wait_for(lambda: runners_alive(pg_database) >= 2, 90, "both workers to report")
        cut = workers["work1"]
        loads = _round(webs)
        wait_for(lambda: _running_on(log, cut.pid) >= 6, 30, "the worker to be mid-tasks")
        cut_at = boot_clock()
        network.cut(hosts["work1"])
        try:
            time.sleep(CUT_SECONDS)
            beat = _heartbeat_of(pg_database, cut.pid)
        finally:
            network.restore(hosts["work1"])
        restored_at = boot_clock()
        wait_for(lambda: _heartbeat_of(pg_database, cut.pid) > beat, 30, "the cut worker's heartbeat")
        loads += _round(webs)
        wait_for(lambda: all(len(load.answers) >= REQUESTS_PER_WEB_HOST for load in loads), 40,
                 "the requests' answers")
        answers = [a for load in loads for a in load.stop()]
        ids = accepted(answers)
        missing = wait_until_ended(log, ids, 120)
        wait_for(lambda: all(s == "succeeded" for s, _ in _finished_at(pg_database, ids).values()),
                 30, "every outcome to be recorded")
    finally:
        for proc in procs:
            proc.stop()
    runs = executions(log)
    by_task: dict[str, list[Execution]] = {}
    for x in runs:
        by_task.setdefault(x.task, []).append(x)
    # The cut worker's tasks that another host took over once their lease ran out: started
    # before the link came back (tasks it held when the link went down start during the cut
    # too, and nothing of them reaches the store), run again elsewhere after the cut began.
    taken = {task: (a, b) for task, xs in by_task.items()
             for a in xs if a.pid == cut.pid and a.start < restored_at
             for b in xs if b.pid != cut.pid and b.start > max(cut_at, a.start)}
    waited = [b.start - cut_at for _, b in taken.values()]
    recorded = _finished_at(pg_database, set(taken))
    late = {task: pair for task, pair in taken.items() if pair[0].ended}  # outcome sent late
    fenced = sum(1 for task, (a, b) in late.items()
                 if abs((recorded[task][1] or 0) - (b.last + b.wall_skew + time.time() - boot_clock())) < 2)
    rejoined = sum(1 for x in runs if x.pid == cut.pid and x.start > restored_at)
    overlaps = overlapping(runs)
    with capsys.disabled():
        print(f"\nhosts: {len(ids)} tasks accepted through 2 web hosts, 2 worker hosts; one worker "
              f"cut off {CUT_SECONDS:.1f}s (lease {LEASE_SECONDS:.0f}s): {len(missing)} lost, "
              f"{len(runs) - len(ids)} duplicated (run again elsewhere after the lease ran out), "
              f"{overlaps} overlapping; {len(taken)} cut tasks taken over after "
              f"{min(waited, default=0):.1f}-{max(waited, default=0):.1f}s "
              f"(median {statistics.median(waited) if waited else 0:.1f}s); {fenced} of "
              f"{len(late)} late outcomes fenced; the cut worker ran {rejoined} tasks after it "
              "came back")
    assert {a.status for a in answers} == {200}, sorted({a.status for a in answers})
    assert len(ids) == 4 * REQUESTS_PER_WEB_HOST
    assert missing == set()
    assert overlaps == 0
    assert taken, "no task of the cut worker was taken over: the cut proved nothing"
    assert len(runs) - len(ids) == len(taken), "a task ran twice with no cut to explain it"
    assert fenced == len(late), "a late outcome of the cut worker overwrote the one kept"
    assert rejoined > 0, "the cut worker never took work again"
