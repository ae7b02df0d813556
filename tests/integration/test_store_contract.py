"""The Store interface's contract, the same for every store (memory://, SQLite, PostgreSQL)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

import pytest

from afterwork import TaskRecord, TaskState
from afterwork._models import Changes, ClaimSpec, Heartbeat, Outcome
from afterwork.stores import Store, open_store

from ..conftest import store_url

NOW = 1_000_000.0


def rec(state: TaskState = TaskState.QUEUED, *, waiting_on: str | None = None,
        owner: str | None = None, lease_until: float | None = None, run_at: float = NOW,
        max_attempts: int = 1) -> TaskRecord:
    return TaskRecord(
        id=str(uuid.uuid4()), name="m:f", payload='{"a":[],"k":{}}', state=state,
        waiting_on=waiting_on, lease_owner=owner, lease_until=lease_until, run_at=run_at,
        created_at=run_at, max_attempts=max_attempts,
    )


def state_of(store: Store, task_id: str) -> TaskState:
    found = store.get(task_id)
    assert found is not None
    return found.state


def test_inserted_task_reads_back_unchanged(store: Store) -> None:
    r = rec()
    store.apply(Changes(inserts=[r]))
    assert store.get(r.id) == r
    assert store.get("nope") is None


def test_claim_leases_ready_tasks_oldest_first_and_only_once(store: Store) -> None:
    old, new = rec(run_at=NOW - 10), rec(run_at=NOW - 5)
    later = rec(run_at=NOW + 60)
    store.apply(Changes(inserts=[new, old, later]))
    got = store.claim("a", 10, NOW)
    assert [r.id for r in got] == [old.id, new.id]
    assert all(r.state is TaskState.LEASED and r.lease_owner == "a" for r in got)
    assert store.claim("b", 10, NOW) == []


def test_claim_respects_limit(store: Store) -> None:
    store.apply(Changes(inserts=[rec() for _ in range(5)]))
    assert len(store.claim("a", 2, NOW)) == 2
    assert len(store.claim("a", 10, NOW)) == 3


def test_expired_lease_is_claimed_by_another_runner(store: Store) -> None:
    clock = store.lease_clock()  # lease times are on the store's clock, not the caller's
    r = rec(TaskState.RUNNING, owner="dead", lease_until=clock - 1)
    fresh = rec(TaskState.RUNNING, owner="alive", lease_until=clock + 10)
    store.apply(Changes(inserts=[r, fresh]))
    got = store.claim("b", 10, NOW)
    assert [g.id for g in got] == [r.id]


def test_runner_that_lost_its_lease_cannot_complete_or_fail(store: Store) -> None:
    r = rec(TaskState.RUNNING, owner="old", lease_until=store.lease_clock() - 1)
    store.apply(Changes(inserts=[r]))
    store.claim("new", 1, NOW)
    store.apply(Changes(succeeded=[Outcome(r.id, "old", NOW)]))
    store.apply(Changes(failed=[Outcome(r.id, "old", NOW, "x")]))
    assert state_of(store, r.id) is TaskState.LEASED
    store.apply(Changes(started=[Outcome(r.id, "new", NOW)]))
    store.apply(Changes(succeeded=[Outcome(r.id, "new", NOW + 1)]))
    done = store.get(r.id)
    assert done is not None and done.state is TaskState.SUCCEEDED and done.finished_at == NOW + 1


def test_started_counts_attempts(store: Store) -> None:
    r = rec(TaskState.LEASED, owner="a", lease_until=NOW + 30)
    store.apply(Changes(inserts=[r]))
    store.apply(Changes(started=[Outcome(r.id, "a", NOW)]))
    got = store.get(r.id)
    assert got is not None and got.attempts == 1 and got.state is TaskState.RUNNING
    assert got.started_at == NOW


def test_chain_waits_for_its_predecessor_then_unblocks(store: Store) -> None:
    first = rec()
    second = rec(waiting_on=first.id)
    store.apply(Changes(inserts=[first, second]))
    assert [r.id for r in store.claim("a", 10, NOW)] == [first.id]
    store.apply(Changes(started=[Outcome(first.id, "a", NOW)]))
    store.apply(Changes(succeeded=[Outcome(first.id, "a", NOW)]))
    assert [r.id for r in store.claim("a", 10, NOW)] == [second.id]


def test_a_group_of_started_and_succeeded_outcomes_is_fenced_and_unblocks_per_task(store: Store) -> None:
    until = store.lease_clock() + 30
    mine = [rec(TaskState.LEASED, owner="a", lease_until=until) for _ in range(3)]
    theirs = rec(TaskState.LEASED, owner="b", lease_until=until)
    after_mine, after_theirs = rec(waiting_on=mine[0].id), rec(waiting_on=theirs.id)
    store.apply(Changes(inserts=[*mine, theirs, after_mine, after_theirs]))
    tasks = [*mine, theirs]  # "a" reports all four in one group: only its own three count
    store.apply(Changes(started=[Outcome(r.id, "a", NOW, note=f"n{i}") for i, r in enumerate(tasks)],
                        succeeded=[Outcome(r.id, "a", NOW + 1) for r in tasks]))
    for i, r in enumerate(mine):
        done = store.get(r.id)
        assert done is not None and done.state is TaskState.SUCCEEDED and done.attempts == 1
        assert (done.started_at, done.finished_at, done.history) == (NOW, NOW + 1, f"n{i}")
    assert state_of(store, theirs.id) is TaskState.LEASED
    assert [r.id for r in store.claim("c", 10, NOW)] == [after_mine.id]


def test_final_failure_cancels_the_rest_of_its_chain_with_the_reason(store: Store) -> None:
    first = rec(TaskState.LEASED, owner="a", lease_until=NOW + 30)
    second = rec(TaskState.LEASED, owner="a", lease_until=NOW + 30, waiting_on=first.id)
    third = rec(TaskState.LEASED, owner="a", lease_until=NOW + 30, waiting_on=second.id)
    other = rec()
    store.apply(Changes(inserts=[first, second, third, other]))
    store.apply(Changes(failed=[Outcome(first.id, "a", NOW, "boom")]))
    failed = store.get(first.id)
    assert failed is not None and failed.state is TaskState.FAILED and failed.last_error == "boom"
    for later in (second, third):
        got = store.get(later.id)
        assert got is not None and got.state is TaskState.CANCELLED
        assert got.last_error is not None and first.id in got.last_error
    assert state_of(store, other.id) is TaskState.QUEUED


def test_retry_requeues_at_its_time_and_keeps_the_error(store: Store) -> None:
    r = rec(TaskState.LEASED, owner="a", lease_until=NOW + 30, max_attempts=3)
    store.apply(Changes(inserts=[r]))
    store.apply(Changes(started=[Outcome(r.id, "a", NOW)]))
    store.apply(Changes(retried=[Outcome(r.id, "a", NOW, "flaky", retry_at=NOW + 5)]))
    got = store.get(r.id)
    assert got is not None and got.state is TaskState.QUEUED and got.last_error == "flaky"
    assert got.lease_owner is None
    assert store.claim("a", 1, NOW + 4) == []
    assert len(store.claim("a", 1, NOW + 5)) == 1


def test_released_task_is_claimable_at_once(store: Store) -> None:
    r = rec(TaskState.RUNNING, owner="a", lease_until=NOW + 30)
    store.apply(Changes(inserts=[r]))
    store.apply(Changes(released=[Outcome(r.id, "a", NOW)]))
    assert [g.id for g in store.claim("b", 1, NOW)] == [r.id]


def test_heartbeat_extends_only_the_owners_leases_on_the_stores_clock(store: Store) -> None:
    clock = store.lease_clock()
    mine = rec(TaskState.RUNNING, owner="a", lease_until=clock - 1)
    theirs = rec(TaskState.RUNNING, owner="b", lease_until=clock - 1)
    store.apply(Changes(inserts=[mine, theirs]))
    store.lease_seconds = 100.0
    store.apply(Changes(heartbeat=Heartbeat("a", NOW)))  # the wall time `at` plays no part
    assert [r.id for r in store.claim("c", 10, NOW)] == [theirs.id]
    m = store.get(mine.id)
    assert m is not None and m.lease_until is not None
    assert clock + 100 <= m.lease_until <= store.lease_clock() + 100


def test_claim_leases_on_the_stores_clock_whatever_now_the_caller_passes(store: Store) -> None:
    """A claimer whose wall clock is an hour ahead (or behind) neither takes a live lease nor
    writes a lease that expires early: `now` only decides which queued tasks are due."""
    store.lease_seconds = 30.0
    r = rec(run_at=NOW)
    store.apply(Changes(inserts=[r]))
    before = store.lease_clock()
    [got] = store.claim("a", 1, NOW)
    assert got.lease_until is not None and before + 30 <= got.lease_until <= store.lease_clock() + 30
    assert store.claim("ahead", 10, NOW + 3600) == []
    assert store.claim("behind", 10, NOW - 3600) == []


def test_a_runner_never_claims_back_a_task_it_holds_even_with_its_lease_expired(store: Store) -> None:
    r = rec(TaskState.RUNNING, owner="a", lease_until=store.lease_clock() - 1)
    store.apply(Changes(inserts=[r]))
    assert store.claim("a", 10, NOW + 3600) == []
    assert [g.id for g in store.claim("b", 10, NOW)] == [r.id]


def test_a_handed_over_row_gets_its_lease_from_the_store(store: Store) -> None:
    store.lease_seconds = 30.0
    before = store.lease_clock()
    r = rec(TaskState.LEASED, owner="a")  # no lease time: the store starts it
    store.apply(Changes(inserts=[r]))
    got = store.get(r.id)
    assert got is not None and got.lease_until is not None
    assert before + 30 <= got.lease_until <= store.lease_clock() + 30
    assert store.claim("b", 10, NOW) == []


def test_expiring_an_owner_frees_its_tasks_and_lists_owners(store: Store) -> None:
    r = rec(TaskState.LEASED, owner="dead", lease_until=NOW + 100)
    store.apply(Changes(inserts=[r]))
    assert store.lease_owners() == ["dead"]
    store.apply(Changes(expire_owners=["dead"]))
    assert [g.id for g in store.claim("b", 1, NOW)] == [r.id]


def test_apply_is_all_or_nothing(store: Store) -> None:
    r = rec()
    store.apply(Changes(inserts=[r]))
    fresh = rec()
    try:
        store.apply(Changes(inserts=[fresh, r]))  # r's id exists: the whole write fails
    except Exception:
        pass
    else:
        raise AssertionError("a duplicate id must be refused")
    assert store.get(fresh.id) is None


def test_list_filters_and_counts_pending(store: Store) -> None:
    now = time.time()
    a, b = rec(run_at=now - 1), rec(TaskState.SUCCEEDED, run_at=now - 2)
    future = rec(run_at=now + 3600)
    store.apply(Changes(inserts=[a, b, future]))
    assert [r.id for r in store.query(states=[TaskState.SUCCEEDED])] == [b.id]
    assert {r.id for r in store.query()} == {a.id, b.id, future.id}
    assert store.count_pending(now) == 1


def test_operator_requeue_brings_back_a_failed_task_and_the_chain_it_cancelled(store: Store) -> None:
    first = rec(TaskState.LEASED, owner="a", lease_until=NOW + 30)
    second = rec(TaskState.LEASED, owner="a", lease_until=NOW + 30, waiting_on=first.id)
    store.apply(Changes(inserts=[first, second]))
    store.apply(Changes(started=[Outcome(first.id, "a", NOW)]))
    store.apply(Changes(failed=[Outcome(first.id, "a", NOW, "boom")]))
    store.apply(Changes(requeued=[Outcome(first.id, "", NOW + 1)]))
    again = store.get(first.id)
    assert again is not None and again.state is TaskState.QUEUED and again.attempts == 0
    assert state_of(store, second.id) is TaskState.QUEUED
    assert [r.id for r in store.claim("b", 10, NOW + 1)] == [first.id]


def test_operator_cancel_stops_a_queued_task_and_its_chain_but_not_a_running_one(store: Store) -> None:
    first, running = rec(), rec(TaskState.RUNNING, owner="a", lease_until=NOW + 30)
    second = rec(waiting_on=first.id)
    store.apply(Changes(inserts=[first, second, running]))
    store.apply(Changes(cancelled=[Outcome(first.id, "", NOW), Outcome(running.id, "", NOW)]))
    got = store.get(first.id)
    assert got is not None and got.state is TaskState.CANCELLED and "operator" in (got.last_error or "")
    assert state_of(store, second.id) is TaskState.CANCELLED
    assert state_of(store, running.id) is TaskState.RUNNING


def test_purge_deletes_old_finished_tasks_only(store: Store) -> None:
    old = rec(TaskState.LEASED, owner="a", lease_until=NOW + 30)
    queued = rec()
    store.apply(Changes(inserts=[old, queued]))
    store.apply(Changes(succeeded=[Outcome(old.id, "a", NOW)]))
    assert store.purge(NOW) == 0
    assert store.count_purgeable(NOW + 1) == 1
    assert store.purge(NOW + 1) == 1
    assert store.get(old.id) is None and store.get(queued.id) is not None


def test_runners_report_by_heartbeat_and_leave_when_stopped(store: Store) -> None:
    store.apply(Changes(heartbeat=Heartbeat("r1", NOW, "worker")))
    store.apply(Changes(heartbeat=Heartbeat("r1", NOW + 10, "worker")))
    [info] = store.runners()
    assert (info.owner, info.kind, info.started_at, info.heartbeat_at) == ("r1", "worker", NOW, NOW + 10)
    store.apply(Changes(stopped_runners=["r1"]))
    assert store.runners() == []


def test_claim_takes_higher_priority_first_then_oldest(store: Store) -> None:
    low = rec(run_at=NOW - 10)
    high = dataclasses.replace(rec(run_at=NOW - 1), priority=5)
    store.apply(Changes(inserts=[low, high]))
    assert [r.id for r in store.claim("a", 1, NOW)] == [high.id]


def test_claim_only_from_the_runners_queues(store: Store) -> None:
    a, b = dataclasses.replace(rec(), queue="a"), dataclasses.replace(rec(), queue="b")
    store.apply(Changes(inserts=[a, b]))
    assert [r.id for r in store.claim("w", 10, NOW, ClaimSpec(queues=("b",)))] == [b.id]
    assert store.claim("w", 10, NOW, ClaimSpec(queues=())) == []


def test_queue_limit_counts_tasks_leased_by_every_runner(store: Store) -> None:
    tasks = [dataclasses.replace(rec(), queue="hooks") for _ in range(5)]
    store.apply(Changes(inserts=tasks))
    spec = ClaimSpec(queue_limits={"hooks": 2})
    assert len(store.claim("a", 10, NOW, spec)) == 2
    assert store.claim("b", 10, NOW, spec) == []  # another runner: still full


def test_rate_limit_counts_recent_starts_of_that_task(store: Store) -> None:
    named = [dataclasses.replace(rec(), name="m:limited", rate_key="m:limited") for _ in range(4)]
    store.apply(Changes(inserts=[*named, rec()]))
    spec = ClaimSpec(rate_limits={"m:limited": (2, 1.0)})
    first = store.claim("a", 10, NOW, spec)
    assert sorted(r.name for r in first) == ["m:f", "m:limited", "m:limited"]
    assert store.claim("b", 10, NOW + 0.5, spec) == []
    store.apply(Changes(started=[Outcome(r.id, "a", NOW) for r in first]))
    assert len(store.claim("b", 10, NOW + 1.5, spec)) == 2  # the window moved on


def test_insert_if_absent_skips_a_known_id_or_an_active_key(store: Store) -> None:
    keyed = dataclasses.replace(rec(), dedup_key="mail:42")
    store.apply(Changes(inserts_if_absent=[keyed]))
    twin = dataclasses.replace(rec(), dedup_key="mail:42")
    store.apply(Changes(inserts_if_absent=[keyed, twin]))
    assert store.get_many([twin.id]) == {}  # not stored ...
    aliased = store.get(twin.id)  # ... its id names the live task with the key
    assert aliased is not None and aliased.id == keyed.id
    found = store.active_with_key("mail:42")
    assert found is not None and found.id == keyed.id


def test_a_duplicates_alias_goes_when_its_task_is_purged(store: Store) -> None:
    keyed = dataclasses.replace(rec(), dedup_key="mail:43")
    twin = dataclasses.replace(rec(), dedup_key="mail:43")
    store.apply(Changes(inserts_if_absent=[keyed]))
    store.apply(Changes(inserts_if_absent=[twin]))
    assert [r.id for r in store.claim("a", 10, NOW)] == [keyed.id]
    store.apply(Changes(succeeded=[Outcome(keyed.id, "a", NOW)]))
    got = store.get(twin.id)
    assert got is not None and got.state is TaskState.SUCCEEDED  # the alias follows it to the end
    assert store.purge(NOW + 1) == 1
    assert store.get(twin.id) is None
    with store._read() as cur:  # type: ignore[attr-defined]
        cur.execute("SELECT COUNT(*) FROM afterwork_task_aliases")
        assert cur.fetchone()[0] == 0


def test_a_rate_limited_task_in_a_limited_queue_still_runs_under_its_rate(store: Store) -> None:
    both = [dataclasses.replace(rec(), name="m:r", rate_key="m:r", queue="q") for _ in range(3)]
    store.apply(Changes(inserts=both))
    spec = ClaimSpec(queue_limits={"q": 5}, rate_limits={"m:r": (1, 10.0)})
    assert len(store.claim("a", 10, NOW, spec)) == 1


def test_the_migrated_schema_has_exactly_the_columns_the_code_uses(store: Store) -> None:
    from afterwork.stores._sql import SqlStore
    from afterwork.stores._statements import COLUMNS

    assert isinstance(store, SqlStore)  # every store, memory:// too
    with store._read() as cur:
        cur.execute("SELECT * FROM afterwork_tasks WHERE 1 = 0")
        found = [d[0] for d in cur.description]  # type: ignore[attr-defined]
    assert sorted(found) == sorted(COLUMNS)
    applied, newest = store.schema_version()
    assert applied == newest == max(version for version, _ in store.migrations())


def test_a_read_after_close_leaves_no_connection_open_for_the_collector(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A test (or a script) reading what an app left after the app closed its store opens a
    reader again; it must close with the store object, not be collected open."""
    import gc
    import warnings

    s = open_store(store_url(store_kind, tmp_path, request))
    s.open()
    task = rec()
    s.apply(Changes(inserts=[task]))
    s.close()
    assert s.get(task.id) is not None  # a read after close: a new reader connection
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        del s
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []


def test_delete_takes_queued_and_finished_tasks_with_their_rows_never_held_or_awaited_ones(
        store: Store) -> None:
    done, held = (rec(run_at=NOW - 10) for _ in range(2))  # claimed first
    first = rec()
    after = rec(waiting_on=first.id)
    queued = rec()
    store.apply(Changes(inserts=[done, held, first, after, queued]))
    assert {r.id for r in store.claim("a", 2, NOW)} == {done.id, held.id}
    store.apply(Changes(succeeded=[Outcome(done.id, "a", NOW, result='{"value": 1}')]))
    assert store.get(done.id).result is not None  # type: ignore[union-attr]
    ids = [done.id, held.id, first.id, queued.id, "no-such-task"]
    assert sorted(store.delete(ids)) == sorted([done.id, queued.id])
    assert [store.get(i) is None for i in ids] == [True, False, False, True, True]
    with store._read() as cur:  # type: ignore[attr-defined]
        cur.execute("SELECT COUNT(*) FROM afterwork_task_outputs")
        assert cur.fetchone()[0] == 0  # its result went with it
    assert store.delete([after.id]) == [after.id] and store.delete([first.id]) == [first.id]


def test_finished_per_minute_by_queue(store: Store) -> None:
    tasks = [dataclasses.replace(rec(), queue=q) for q in ("a", "a", "b")]
    store.apply(Changes(inserts=tasks))
    store.claim("r", 3, NOW)
    store.apply(Changes(succeeded=[Outcome(t.id, "r", NOW + 61) for t in tasks[:2]],
                        failed=[Outcome(tasks[2].id, "r", NOW + 125, error="x")]))
    minute = int((NOW + 61) // 60) * 60
    assert sorted(store.finished_per_minute_by_queue(NOW)) == [
        ("a", minute, "succeeded", 2), ("b", minute + 60, "failed", 1)]
    assert store.finished_per_minute_by_queue(NOW + 200) == []
