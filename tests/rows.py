"""Task rows for tests that write to a store directly, below the runner."""

from __future__ import annotations

import dataclasses
import time

from afterwork._ids import new_id
from afterwork._models import TaskRecord, TaskState


def task_record(**fields: object) -> TaskRecord:
    """A queued task due now, with `fields` changed."""
    now = time.time()
    base = TaskRecord(id=new_id(), name="m.f", payload='{"a":[],"k":{}}', state=TaskState.QUEUED,
                      run_at=now, created_at=now)
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]
