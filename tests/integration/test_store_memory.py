"""memory:// is the SQLite store on a database in memory: the same SQL, answers and locks as a
SQLite file, nothing on disk, one database per store object for that object's life."""

from __future__ import annotations

import gc
import os
import threading
import uuid
import warnings
from pathlib import Path

import pytest

from afterwork import TaskRecord, TaskState
from afterwork._models import Changes, Heartbeat, Outcome
from afterwork.stores import Store, open_store
from afterwork.stores.sqlite import SqliteStore, _MemoryConnection

NOW = 1_000_000.0


def rec(*, waiting_on: str | None = None, run_at: float = NOW, name: str = "m:f") -> TaskRecord:
    return TaskRecord(id=str(uuid.uuid4()), name=name, payload='{"a":[],"k":{}}',
                      state=TaskState.QUEUED, waiting_on=waiting_on, run_at=run_at,
                      created_at=run_at)


def test_a_success_without_unblock_leaves_the_next_task_waiting(store: Store) -> None:
    """The runner says whether a success unblocks the next task (it hands that task on
    itself otherwise): every store, memory:// included, does exactly what it says."""
    first, kept, freed_first = rec(), rec(), rec()
    after_kept, after_freed = rec(waiting_on=kept.id), rec(waiting_on=freed_first.id)
    store.apply(Changes(inserts=[first, kept, freed_first, after_kept, after_freed]))
    assert {r.id for r in store.claim("a", 10, NOW)} == {first.id, kept.id, freed_first.id}
    store.apply(Changes(started=[Outcome(i, "a", NOW) for i in (kept.id, freed_first.id)]))
    store.apply(Changes(succeeded=[Outcome(kept.id, "a", NOW, unblock=False),
                                   Outcome(freed_first.id, "a", NOW, unblock=True)]))
    waiting = store.get(after_kept.id)
    assert waiting is not None and waiting.waiting_on == kept.id
    freed = store.get(after_freed.id)
    assert freed is not None and freed.waiting_on is None
    assert [r.id for r in store.claim("b", 10, NOW)] == [after_freed.id]


def test_count_pending_counts_a_waiting_task_whatever_its_run_time(store: Store) -> None:
    """Pending: leased, running, queued and due, or queued behind another task (it runs as
    soon as that one does, whenever its own run time was set for)."""
    head = rec()
    due, future = rec(run_at=NOW - 1), rec(run_at=NOW + 60)
    behind_future = rec(waiting_on=head.id, run_at=NOW + 60)
    store.apply(Changes(inserts=[head, due, future, behind_future]))
    assert store.count_pending(NOW) == 3  # head, due, behind_future; not future
    store.claim("a", 1, NOW)
    assert store.count_pending(NOW) == 3  # a lease is still pending
    assert store.count_pending(NOW + 60) == 4


def test_counts_show_leased_tasks_as_queued_added_up(store: Store) -> None:
    store.apply(Changes(inserts=[rec(run_at=NOW - 1) for _ in range(5)] + [rec(name="m:g")]))
    assert {r.name for r in store.claim("a", 2, NOW)} == {"m:f"}
    assert store.counts() == {("queued", "m:f"): 5, ("queued", "m:g"): 1}


def _scenario(store: Store) -> None:
    a, b = rec(), rec(name="m:g")
    chained = rec(waiting_on=a.id)
    failing = rec()
    after_failing = rec(waiting_on=failing.id)
    store.apply(Changes(inserts=[a, b, chained, failing, after_failing, rec(run_at=NOW + 60)]))
    claimed = store.claim("r", 3, NOW)
    store.apply(Changes(started=[Outcome(r.id, "r", NOW) for r in claimed]))
    store.apply(Changes(succeeded=[Outcome(a.id, "r", NOW + 1, unblock=False)],
                        failed=[Outcome(r.id, "r", NOW + 1, "boom") for r in claimed
                                if r.id == failing.id],
                        heartbeat=Heartbeat("r", NOW, "app")))


def test_memory_answers_exactly_as_a_sqlite_file(tmp_path: Path) -> None:
    file_store, memory = open_store(f"sqlite:///{tmp_path}/aw.db"), open_store("memory://")
    answers = []
    for s in (file_store, memory):
        s.open()
        _scenario(s)
        answers.append((s.count_pending(NOW), s.count_pending(NOW + 60), s.counts(),
                        sorted((r.name, r.state, r.waiting_on is None, r.attempts,
                                (r.last_error or "").split(" task ")[0])
                               for r in s.query(limit=100)),
                        s.finished_per_minute(0), [r.owner for r in s.runners()],
                        s.count_purgeable(NOW + 2), s.schema_version()))
        s.close()
    assert answers[0] == answers[1]


def test_memory_is_sqlite_with_nothing_on_disk_and_a_database_per_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    one, other = open_store("memory://"), open_store("memory://")
    assert isinstance(one, SqliteStore) and one.in_memory
    assert not one.exists()  # no schema before it opens
    one.open()
    other.open()
    r = rec()
    one.apply(Changes(inserts=[r]))
    assert one.exists() and other.get(r.id) is None
    one.close()  # the connections end; the database lives as long as the store object
    assert one.get(r.id) == r
    one.open()
    assert one.get(r.id) == r
    one.close()
    other.close()
    assert os.listdir(tmp_path) == []


def test_the_memory_database_is_closed_with_its_store_object(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Never closed, and in a reference cycle as an app's objects are: every connection is
    closed when the collector takes the store (Python 3.13 warns of one left open)."""
    closed: list[object] = []
    close = _MemoryConnection.close

    def counted(conn: _MemoryConnection) -> None:
        closed.append(conn)
        close(conn)

    monkeypatch.setattr(_MemoryConnection, "close", counted)
    store = open_store("memory://")
    assert isinstance(store, SqliteStore)
    store.open()
    store.get("x")  # keeper, writer and this thread's reader
    store.__dict__["cycle"] = [store]
    del store
    with warnings.catch_warnings():  # what other tests left to the collector is not this one's
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert len({id(c) for c in closed}) == 3  # (closing twice is harmless)


def test_memory_reads_from_other_threads_wait_for_a_write_instead_of_failing() -> None:
    """A read that meets a write transaction waits for it, as with a file (shared-cache
    in-memory databases fail such a read at once: 'database table is locked')."""
    store = open_store("memory://")
    store.open()
    first = rec()
    store.apply(Changes(inserts=[first]))
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                assert store.get(first.id) is not None
                store.count_pending(NOW)
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for _ in range(200):
            store.apply(Changes(inserts=[rec() for _ in range(5)]))
            store.claim("a", 5, NOW)
    finally:
        done.set()
        for t in readers:
            t.join(10)
    store.close()
    assert errors == []
    assert sum(store.counts().values()) == 1001
    store.close()
