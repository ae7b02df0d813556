"""Reads the status API's shared watch relies on, the same on every store."""

from __future__ import annotations

import uuid

from afterwork import TaskRecord, TaskState
from afterwork._models import Changes
from afterwork.stores import Store


def test_get_many_returns_the_found_tasks_by_id_in_one_call(store: Store) -> None:
    records = [TaskRecord(id=str(uuid.uuid4()), name="m:f", payload='{"a":[],"k":{}}',
                          state=TaskState.QUEUED, run_at=1.0, created_at=1.0) for _ in range(3)]
    store.apply(Changes(inserts=records))
    wanted = [records[0].id, "missing", records[2].id, records[0].id]
    assert store.get_many(wanted) == {records[0].id: records[0], records[2].id: records[2]}
    assert store.get_many([]) == {}
    many = [str(uuid.uuid4()) for _ in range(1200)] + [records[1].id]  # past one statement's ids
    assert store.get_many(many) == {records[1].id: records[1]}
