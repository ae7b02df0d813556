"""The queries the dashboard and the operator API read, on every store."""

from __future__ import annotations

import dataclasses

from afterwork import TaskState
from afterwork._models import Changes, Outcome
from afterwork.stores import Store

from ..integration.test_store_contract import NOW, rec


def test_pages_follow_the_cursor_without_gaps_or_repeats(store: Store) -> None:
    rows = [rec(run_at=NOW + i) for i in range(7)]
    store.apply(Changes(inserts=rows))
    seen, cursor = [], None
    while True:
        page = store.query(limit=3, before=cursor)
        if not page:
            break
        seen.extend(r.id for r in page)
        cursor = (page[-1].created_at, page[-1].id)
    assert seen == [r.id for r in sorted(rows, key=lambda r: r.created_at, reverse=True)]


def test_time_range_filters_on_creation(store: Store) -> None:
    old, mid, new = rec(run_at=NOW - 100), rec(run_at=NOW), rec(run_at=NOW + 100)
    store.apply(Changes(inserts=[old, mid, new]))
    assert [r.id for r in store.query(since=NOW - 50, until=NOW + 50)] == [mid.id]


def test_counts_by_state_and_name(store: Store) -> None:
    a = dataclasses.replace(rec(), name="m:a")
    b = [dataclasses.replace(rec(TaskState.LEASED, owner="w", lease_until=NOW + 30), name="m:b")
         for _ in range(2)]
    store.apply(Changes(inserts=[a, *b]))
    store.apply(Changes(failed=[Outcome(b[0].id, "w", NOW, "x")]))
    assert store.counts() == {("queued", "m:a"): 1, ("queued", "m:b"): 1, ("failed", "m:b"): 1}


def test_finished_per_minute_splits_succeeded_and_failed(store: Store) -> None:
    minute = 1_000_020.0  # 16667 minutes and 0 s
    held = [rec(TaskState.LEASED, owner="w", lease_until=minute + 300) for _ in range(3)]
    store.apply(Changes(inserts=held))
    store.apply(Changes(succeeded=[Outcome(held[0].id, "w", minute + 1.5),
                                   Outcome(held[1].id, "w", minute + 59.9)],
                        failed=[Outcome(held[2].id, "w", minute + 61, "x")]))
    assert store.finished_per_minute(minute - 60) == [
        (1_000_020, "succeeded", 2), (1_000_080, "failed", 1)]
