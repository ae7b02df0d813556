"""A task row and its record: the positional mapping the stores rely on."""

from __future__ import annotations

import dataclasses

import pytest

from afterwork._models import TaskRecord, TaskState
from afterwork.stores._rows import from_row, to_row
from afterwork.stores._statements import COLUMNS, READ_COLUMNS


def test_the_records_fields_are_the_read_columns_in_order() -> None:
    assert tuple(f.name for f in dataclasses.fields(TaskRecord)) == READ_COLUMNS


def test_a_row_comes_back_as_the_record_it_was_made_from() -> None:
    record = TaskRecord(id="a", name="m.f", payload='{"a":[],"k":{}}', state=TaskState.RUNNING,
                        attempts=2, max_attempts=3, timeout_seconds=1.5, batch_id="a", seq=1,
                        waiting_on="z", lease_owner="o", lease_until=9.0, run_at=1.0,
                        created_at=0.5, started_at=2.0, last_error="boom", history="{}\n",
                        meta='{"x":1}', queue="q", priority=4, dedup_key="k", rate_key="m.f",
                        tick_key="t")
    assert from_row(to_row(record)) == record
    with_outputs = from_row((*to_row(record), '{"value":1}', '{"done":1}'))
    assert (with_outputs.result, with_outputs.progress) == ('{"value":1}', '{"done":1}')
    assert with_outputs.state is TaskState.RUNNING


def test_a_row_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=f"not {len(COLUMNS)}"):
        from_row(("a", "b"))
