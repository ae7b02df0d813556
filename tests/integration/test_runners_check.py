"""`afterwork check` on a deployment of many hosts: each runner's host, pid, queues, tasks
running and last heartbeat, and the dead ones flagged (killed without a word: only their
silence tells)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx

from afterwork.stores import open_store

from ..faults.conftest import APP, app_env
from ..procs import Server, wait_for, worker
from .test_cli import cli

EXIT_DEAD = 1
SILENT_SECONDS = 100  # past RUNNER_ALIVE_SECONDS (90)


def _check(url: str) -> dict[str, object]:
    return dict(json.loads(cli("check", "--json", url=url, check=False).stdout))


def test_check_shows_each_runner_and_flags_the_dead(durable_url: str, tmp_path: Path) -> None:
    env = app_env(durable_url, tmp_path / "tasks.jsonl", run_in_app=0, lease_seconds=30)
    server = Server(APP, env, tmp_path / "app.log")
    runner = worker(APP, env, tmp_path / "worker.log", "--queue", "default", "--concurrency", "4")
    try:
        for n in range(3):
            assert httpx.post(f"{server.url}/job/{n}?seconds=20").status_code == 200

        def three_running() -> bool:
            found = _check(durable_url)["runners"]
            return isinstance(found, list) and len(found) == 1 and found[0]["running"] == 3

        wait_for(three_running, 60, "the worker to run the three tasks")
        (seen,) = _check(durable_url)["runners"]  # type: ignore[misc]
        assert (seen["host"], seen["pid"]) == (socket.gethostname(), runner.pid)
        assert (seen["queues"], seen["concurrency"], seen["alive"]) == (["default"], 4, True)
        text = cli("check", url=durable_url).stdout
        assert f"host {socket.gethostname()}, pid {runner.pid}, queues default, " in text, text
        assert "of 4 running" in text, text
        runner.kill()  # no goodbye: the row stays, only its silence tells
    finally:
        server.stop()
        runner.kill()
    store = open_store(durable_url)
    store.open()
    try:
        with store._write() as cur:  # as if its last heartbeat were long ago
            cur.execute(store._sql("UPDATE afterwork_runners SET heartbeat_at = heartbeat_at - ?"),
                        (SILENT_SECONDS,))
    finally:
        store.close()
    dead = cli("check", url=durable_url, check=False)
    assert dead.returncode == EXIT_DEAD
    assert "(worker) DEAD (silent for " in dead.stdout, dead.stdout
    assert f"pid {runner.pid}" in dead.stdout
