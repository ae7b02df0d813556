"""The chaos suite: a real uvicorn serving afterwork on SQLite, SIGKILLed at random moments
under load and restarted, several cycles. Every accepted task must run; duplicates only for
tasks the store had not recorded as finished at a kill; no task may run concurrently with
itself.

CHAOS_CYCLES (default 4) and CHAOS_REQUESTS (per cycle, default 150) size it; CHAOS_SEED
replays a run. Bounded: each cycle is a few seconds, the final drain at most 60 s.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ..procs import Server
from .figures import read, unfinished

CYCLES = int(os.environ.get("CHAOS_CYCLES", "4"))
REQUESTS = int(os.environ.get("CHAOS_REQUESTS", "150"))
DRAIN_SECONDS = 60.0
APP = "tests.chaos.chaos_app:app"


def _ended(log: Path) -> set[str]:
    if not log.exists():
        return set()
    return {json.loads(x)["id"] for x in log.read_text().splitlines() if '"end"' in x}


def _load(server: Server, first: int, count: int, accepted: set[str], lock: threading.Lock) -> None:
    local = threading.local()
    clients: list[httpx.Client] = []

    def post(n: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=5.0)
            clients.append(client)
        try:
            r = client.post(f"{server.url}/job/{n}?max_seconds=0.3")
        except httpx.HTTPError:
            return  # the server died under it: not accepted
        if r.status_code == 200:
            with lock:
                accepted.add(r.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(first, first + count)))
    for client in clients:
        client.close()


def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = int(os.environ.get("CHAOS_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    log = tmp_path / "chaos.jsonl"
    env = {"AFTERWORK_URL": f"sqlite:///{tmp_path}/chaos.db", "CHAOS_LOG": str(log),
           "CHAOS_LEASE_SECONDS": "2"}
    accepted: set[str] = set()
    lock = threading.Lock()
    backlog_at_kills = 0
    unfinished_at_kills: set[str] = set()
    for cycle in range(CYCLES):
        server = Server(APP, env, tmp_path / "server.log")
        loader = threading.Thread(target=_load, args=(server, cycle * REQUESTS, REQUESTS, accepted, lock))
        loader.start()
        before = len(accepted)
        deadline = time.monotonic() + 10  # kill under load: once this cycle had some answers
        while time.monotonic() < deadline and len(accepted) < before + 20:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))
        server.kill()
        unfinished_at_kills |= unfinished(env["AFTERWORK_URL"])
        loader.join(30)
        with lock:
            backlog_at_kills += len(accepted - _ended(log))
    server = Server(APP, env, tmp_path / "server.log")
    try:
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and accepted - _ended(log):
            time.sleep(0.2)
    finally:
        server.stop()
    figures = read(log, accepted)
    with capsys.disabled():
        print(f"\n{figures.line(CYCLES)}, {len(figures.duplicated & unfinished_at_kills)} of the "
              f"tasks run twice unfinished in the store at a kill [seed {seed}, backlog at the "
              f"kills: {backlog_at_kills}]")
    assert backlog_at_kills > 0, "no kill caught a backlog: the test proved nothing"
    assert figures.lost == 0, figures
    assert figures.self_overlaps == 0, figures
    # Duplicates only for tasks the store had not recorded as finished when a process died
    # (running, or finished in memory with the outcome not yet committed).
    assert not figures.unexplained(unfinished_at_kills), figures
