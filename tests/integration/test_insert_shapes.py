"""A group's rows come back whole and in the order they were given, on both durable stores,
however they travel: on SQLite absent values are NULL in the statement (binding None costs an
adapter lookup per value), on PostgreSQL a group's rows and outcomes go as one JSON array
that the server takes apart (psycopg dumps each parameter in Python). So: every mix of absent
columns, text that JSON escapes, floats to the last bit (infinity too), the first of two rows with one key."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import pytest

from afterwork._models import Changes, Outcome, TaskState
from afterwork.stores import Store, open_store

from ..rows import task_record


@pytest.fixture
def durable(durable_url: str) -> Iterator[Store]:
    store = open_store(durable_url)
    store.open()
    yield store
    store.close()


def test_rows_with_different_absent_columns_come_back_whole_and_in_order(durable: Store, durable_url: str
                                                                        ) -> None:
    first = task_record()
    records = [
        first,
        task_record(waiting_on=first.id, batch_id=first.id, seq=1, meta='{"trace":"x"}'),
        task_record(timeout_seconds=2.5, last_error="", history=""),  # empty is not absent
        task_record(),
        task_record(queue="other", priority=3, rate_key="m.f"),
        task_record(state=TaskState.FAILED, started_at=1.0, finished_at=2.0, last_error="boom",
                attempts=1),
    ]
    durable.apply(Changes(inserts=records))
    for record in records:
        assert durable.get(record.id) == record
    # The order they were given: the table's own order (SQLite's rowid, the place in a fresh
    # PostgreSQL table) follows it.
    physical = "ctid" if durable_url.startswith("postgresql") else "rowid"
    with durable._read() as cur:  # type: ignore[attr-defined]
        cur.execute(f"SELECT id FROM afterwork_tasks ORDER BY {physical}")
        assert [row[0] for row in cur.fetchall()] == [r.id for r in records]


def test_text_that_json_escapes_and_floats_to_the_last_bit_come_back_as_given(durable: Store) -> None:
    odd = 'quote " backslash \\ slash / tab \t newline \n bell \x07 é 中文 😀 \\u0000 {"x": [1]}'
    records = [
        task_record(payload='{"s":"\\u00e9\\n","n":1e-07}', meta=odd, last_error=odd, history=odd + "\n"),
        task_record(run_at=1733160000.1234567, created_at=0.1 + 0.2, timeout_seconds=1e-07,
                priority=-(2**31), attempts=2**31 - 1),
        task_record(name="module.käse", queue="q é", run_at=5e-324, created_at=1.7976931348623157e308),
        task_record(timeout_seconds=math.inf, payload='{"x":"NaN","y":"-Infinity"}'),  # JSON has no inf
    ]
    durable.apply(Changes(inserts=records))
    for record in records:
        assert durable.get(record.id) == record


def test_the_first_of_two_rows_with_one_key_in_a_group_is_kept(durable: Store) -> None:
    kept = task_record(dedup_key="k-1", payload='{"which":"first"}')
    skipped = task_record(dedup_key="k-1", payload='{"which":"second"}')
    durable.apply(Changes(inserts_if_absent=[kept, skipped]))
    assert durable.get(kept.id) == kept
    found = durable.get(skipped.id)  # a later duplicate's id resolves to the live task
    assert found is not None and found.id == kept.id


def test_leased_rows_without_values_get_their_lease_from_the_store(durable: Store) -> None:
    record = task_record(state=TaskState.LEASED, lease_owner="runner-1")
    durable.apply(Changes(inserts=[record]))
    stored = durable.get(record.id)
    assert stored is not None and stored.lease_until is not None
    assert stored.lease_until > durable.lease_clock()  # leased for lease_seconds from now
    assert dataclasses.replace(stored, lease_until=None) == record


def test_tasks_started_and_succeeded_in_one_group_are_written_with_their_times(durable: Store) -> None:
    owner = "runner-1"
    first = task_record(state=TaskState.LEASED, lease_owner=owner)
    second = task_record(state=TaskState.LEASED, lease_owner=owner, waiting_on=first.id,
                     batch_id=first.id, seq=1)
    other = task_record(state=TaskState.LEASED, lease_owner="runner-2")  # not ours: fenced off
    durable.apply(Changes(inserts=[first, second, other]))
    durable.apply(Changes(
        started=[Outcome(first.id, owner, 1733160000.25, note="é \"note\"\n"),
                 Outcome(other.id, owner, 1733160000.5)],
        succeeded=[Outcome(first.id, owner, 1733160001.75, unblock=True),
                   Outcome(other.id, owner, 1733160002.0)]))
    done = durable.get(first.id)
    assert done is not None and done.state is TaskState.SUCCEEDED
    assert (done.started_at, done.finished_at, done.attempts) == (1733160000.25, 1733160001.75, 1)
    assert done.lease_owner is None and done.history is not None and done.history.startswith('é "note"\n')
    nxt = durable.get(second.id)
    assert nxt is not None and nxt.waiting_on is None  # unblocked: its chain may go on
    untouched = durable.get(other.id)
    assert untouched is not None and untouched.state is TaskState.LEASED
