"""Rows whose absent values are written as NULL in the statement (SQLite: binding None costs
an adapter lookup per value) come back whole and in the order they were given, whatever mix
of absent columns a group holds."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from afterwork._ids import new_id
from afterwork._models import Changes, TaskRecord, TaskState
from afterwork.stores import open_store


def _record(**fields: object) -> TaskRecord:
    now = time.time()
    base = TaskRecord(id=new_id(), name="m.f", payload='{"a":[],"k":{}}', state=TaskState.QUEUED,
                      run_at=now, created_at=now)
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def test_rows_with_different_absent_columns_come_back_whole_and_in_order(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    store.open()
    try:
        first = _record()
        records = [
            first,
            _record(waiting_on=first.id, batch_id=first.id, seq=1, meta='{"trace":"x"}'),
            _record(timeout_seconds=2.5, last_error="", history=""),  # empty is not absent
            _record(),
            _record(queue="other", priority=3, rate_key="m.f"),
            _record(state=TaskState.FAILED, started_at=1.0, finished_at=2.0, last_error="boom",
                    attempts=1),
        ]
        store.apply(Changes(inserts=records))
        for record in records:
            assert store.get(record.id) == record
        # The order they were given: the table's own order (rowid) follows it.
        with store._read() as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT id FROM afterwork_tasks ORDER BY rowid")
            assert [row[0] for row in cur.fetchall()] == [r.id for r in records]
    finally:
        store.close()


def test_leased_rows_without_values_get_their_lease_from_the_store(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a.db")
    store.open()
    try:
        record = _record(state=TaskState.LEASED, lease_owner="runner-1")
        store.apply(Changes(inserts=[record]))
        stored = store.get(record.id)
        assert stored is not None and stored.lease_until is not None
        assert stored.lease_until > store.lease_clock()  # leased for lease_seconds from now
        assert dataclasses.replace(stored, lease_until=None) == record
    finally:
        store.close()
