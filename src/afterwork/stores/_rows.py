"""A task record as a row of the tasks table, and back: in COLUMNS order for every dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._models import TaskRecord, TaskState
from ._statements import COLUMNS, INSERT, INSERT_IF_ABSENT, READ_COLUMNS


def to_row(r: TaskRecord, lease: float | None = None) -> tuple[Any, ...]:
    """The row's values in COLUMNS order; `lease` (seconds) stands for lease_until in
    INSERT_LEASED, where the store's clock adds it to its now."""
    return (r.id, r.name, r.payload, r.state.value, r.attempts, r.max_attempts, r.timeout_seconds,
            r.batch_id, r.seq, r.waiting_on, r.lease_owner, r.lease_until if lease is None else lease,
            r.run_at, r.created_at,
            r.started_at, r.finished_at, r.last_error, r.history, r.meta, r.queue, r.priority,
            r.dedup_key, r.rate_key, r.tick_key)


def insert_task_statement(record: TaskRecord, *, if_absent: bool = False
                          ) -> tuple[str, tuple[Any, ...]]:
    """(SQL with `?` marks, its parameters) that store `record` through any DB-API connection
    to a store's database, in both dialects: what transactional enqueue runs inside the
    application's own transaction. `if_absent`: skip the row, without an error, when its id,
    its active de-duplication key or its periodic tick is stored already."""
    return (INSERT_IF_ABSENT if if_absent else INSERT), to_row(record)


def from_row(row: Sequence[Any]) -> TaskRecord:
    """A row of COLUMNS (a claim's), or of READ_COLUMNS (a read's: with result and progress)."""
    if len(row) not in (len(COLUMNS), len(READ_COLUMNS)):
        raise ValueError(f"a task row has {len(row)} columns, not {len(COLUMNS)} or {len(READ_COLUMNS)}")
    # TaskRecord's fields are READ_COLUMNS, in order (tests/unit check it): positional is the
    # cheapest way to build one, and a claim builds one per task.
    return TaskRecord(row[0], row[1], row[2], TaskState(row[3]), *row[4:])
