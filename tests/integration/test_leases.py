"""A task waiting for a free slot does not start once its lease may have run out: its runner's
heartbeats did not reach the store for most of a lease, another runner took the task over, and
when the slot frees up (after the store came back) the task is handed back, not run twice.

Found by tests/hosts/test_partition.py: a worker cut off from the store for 7.5 s (lease 3 s)
started four tasks it had claimed before the cut, 13 s after, when another worker had run them.
Here the store's refusals are injected at the store seam (heartbeats only, so that the tasks'
own rows are written), on a real SQLite file; the other runner is a real claim through a second
store on the same file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, BackgroundTasks, StoreUnavailableError
from afterwork._leases import LeaseWatch
from afterwork._models import Changes
from afterwork.stores import open_store

from . import app_tasks
from .app_tasks import EVENTS

LEASE_SECONDS = 1.0


def test_a_waiting_task_whose_lease_ran_out_is_handed_back_not_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.db"
    app = FastAPI()
    aw = Afterwork(app, url=url, lease_seconds=LEASE_SECONDS, concurrency=1, inline_in_tests=False,
                   poll_seconds=60)

    @app.post("/slow")
    async def slow(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(app_tasks.sleepy, "lease: the slow one", 2.5).id}

    @app.post("/waiting")
    async def waiting(tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(app_tasks.record, "lease: the waiting one").id}

    refusing = threading.Event()
    with TestClient(app) as client:
        real_apply = aw.store.apply

        def apply(changes: Changes, timeout_seconds: float | None = None) -> None:
            if refusing.is_set() and changes.heartbeat is not None:
                raise StoreUnavailableError("out of reach (injected by the test)")
            real_apply(changes, timeout_seconds)

        aw.store.apply = apply  # type: ignore[method-assign]
        client.post("/slow").raise_for_status()
        waiting_id = client.post("/waiting").json()["id"]  # concurrency 1: it waits for a slot
        refusing.set()  # from now on no heartbeat reaches the store
        time.sleep(LEASE_SECONDS * 1.4)
        other = open_store(url)
        other.open()
        try:
            taken = other.claim("another-runner", 10, time.time())  # its lease ran out
            assert waiting_id in {r.id for r in taken}
            refusing.clear()  # the store is back: the next heartbeat is written
            deadline = time.monotonic() + 10
            while ("lease: the slow one",) not in EVENTS:
                assert time.monotonic() < deadline, "the slow task never ended"
                time.sleep(0.05)
            time.sleep(0.5)  # the slot is free: the waiting task was started, or not
            assert ("lease: the waiting one",) not in EVENTS  # not run twice
            row = other.get(waiting_id)
            assert row is not None and row.lease_owner == "another-runner"  # the hand-back was fenced
        finally:
            other.close()


def test_a_lease_is_held_until_a_gap_between_renewals_outlasts_its_safe_share() -> None:
    """The rule itself, on plain numbers (times as time.monotonic() gives them)."""
    watch = LeaseWatch(10.0)  # safe for 8 s
    assert watch.held(since=0.0, now=7.9) and not watch.held(since=0.0, now=8.1)
    for began in (3.0, 6.0, 9.0):  # heartbeats every third of the lease
        watch.renewed(began)
    assert watch.held(since=0.0, now=16.9) and not watch.held(since=0.0, now=17.1)
    watch.renewed(30.0)  # 21 s without a renewal: whatever was held before 22.0 may be gone
    assert not watch.held(since=0.0, now=30.1)
    assert not watch.held(since=21.9, now=30.1)  # held 8.1 s before the renewal: lapsed
    assert watch.held(since=22.1, now=30.1)  # claimed within the safe share of it: renewed
    assert watch.held(since=30.5, now=31.0)  # claimed after it
