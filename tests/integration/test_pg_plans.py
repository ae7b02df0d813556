"""PostgreSQL plans every statement of afterwork's with its own parameters, never with a
generic plan cached while the tasks table looked empty (a burst fills it within seconds, long
before autovacuum analyzes it; a generic plan made before then scanned the whole table for
every group of outcomes)."""

from __future__ import annotations

import time
from typing import Any

from afterwork._ids import new_id
from afterwork._models import Changes, Outcome, TaskRecord, TaskState
from afterwork.stores import open_store


def _leased(owner: str, now: float) -> TaskRecord:
    return TaskRecord(id=new_id(), name="m:f", payload='{"a":[],"k":{}}', state=TaskState.LEASED,
                      lease_owner=owner, run_at=now, created_at=now)


def test_no_statement_runs_a_generic_plan_after_many_runs(pg_url: str) -> None:
    store: Any = open_store(pg_url)
    store.open()
    try:
        for _ in range(12):  # psycopg prepares a statement after its fifth run
            now = time.time()
            batch = [_leased("me", now) for _ in range(20)]
            store.apply(Changes(inserts=batch))
            done = [Outcome(r.id, "me", now, unblock=True) for r in batch]
            store.apply(Changes(started=done, succeeded=done))
            store.claim("me", 10, now)
        with store._write() as cur:
            cur.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            prepared = cur.fetchall()
        assert prepared, "psycopg prepared none of the repeated statements: the test shows nothing"
        assert all(generic == 0 for _, generic, _ in prepared), prepared
        assert any(custom >= 5 for _, _, custom in prepared)
    finally:
        store.close()
